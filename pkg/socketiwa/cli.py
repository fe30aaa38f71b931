"""The ``socketiwa`` command: make, build and run your Python program as an Isolated Web App.

    socketiwa new DIR              a starter app (main.py, pyproject.toml, icon.png) that runs as is
    socketiwa build DIR            a signed .swbn + the dev-mode folder; prints the app's ID and origin
    socketiwa run DIR [-- ARGS]    build, install in headless Chromium, stream the output, exit with
                                   the program's exit code (--signed: the signed bundle in Chromium 150);
                                   the install is kept (one Chromium profile per app in the socketiwa
                                   cache): a second run of an unchanged app starts it without installing
    socketiwa doctor               what is installed and what works here

Errors are one line saying what to do; the exit status is 2 for them.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SocketIwaError

if TYPE_CHECKING:
    from ._app.project import BuildResult

TEMPLATE = Path(__file__).resolve().parent / "_app" / "template"


class Reporter:
    """Progress lines on stderr with the time since the command started (stdout stays the
    program's or the command's result)."""

    def __init__(self, quiet: bool = False):
        self.t0 = time.monotonic()
        self.quiet = quiet

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.t0:5.1f}s] {msg}", file=sys.stderr, flush=True)


def cmd_new(args: argparse.Namespace, report: Reporter) -> int:
    from ._app.project import AppError, canonical
    target = Path(args.dir)
    if target.exists() and any(target.iterdir()):
        raise AppError(f"{target} exists and is not empty: choose a new folder name")
    name = args.name or target.resolve().name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise AppError(f"{name!r} is not usable as an app name (letters, digits, . _ -): pass --name")
    target.mkdir(parents=True, exist_ok=True)
    for src in sorted(p for p in TEMPLATE.iterdir() if p.is_file()):  # not an installer's __pycache__
        dest = target / (".gitignore" if src.name == "gitignore" else src.name)
        if src.suffix in (".py", ".toml"):
            dest.write_text(src.read_text().replace("__NAME__", name))
        else:
            shutil.copy(src, dest)
    print(f"created {target}/ with main.py, pyproject.toml and icon.png (app {canonical(name)})")
    print(f"next: socketiwa run {target}    (or: python {target}/main.py on CPython)")
    return 0


def _build(args: argparse.Namespace, report: Reporter, sign: bool = True) -> "BuildResult":
    from ._app import project
    key = Path(args.key).expanduser() if getattr(args, "key", None) else None
    return project.build(Path(args.dir), key=key, sign=sign, progress=report)


def cmd_build(args: argparse.Namespace, report: Reporter) -> int:
    res = _build(args, report, sign=not args.no_sign)
    report(f"built in {res.seconds:.1f}s")
    print(f"app:     {res.app.name} {res.app.version}")
    print(f"dev:     {res.dev_dir}")
    if res.swbn:
        print(f"bundle:  {res.swbn} ({(res.bytes or 0) / 1e6:.1f} MB, sha256 {res.sha256})")
        print(f"id:      {res.id}")
        print(f"origin:  {res.origin}")
        print(f"key:     {res.key_path}")
    if res.resolved.wheels or res.resolved.packages:
        print("deps:    " + ", ".join([w.name for w in res.resolved.wheels] + res.resolved.packages))
    return 0


def cmd_run(args: argparse.Namespace, report: Reporter) -> int:
    from ._app import launch, project
    how = "policy" if args.policy else "signed" if args.signed else "dev"
    if args.headed and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise project.AppError("--headed needs a display (DISPLAY or WAYLAND_DISPLAY is not set): drop --headed")
    res = _build(args, report, sign=how != "dev")
    report(f"built in {res.seconds:.1f}s")
    code = launch.run(res, argv=args.args, how=how, chromium=args.chromium, headed=args.headed,
                      timeout=args.timeout, progress=report, keep_profile=not args.fresh_profile)
    report(f"{res.app.name} exited with code {code}")
    return code


def cmd_doctor(args: argparse.Namespace, report: Reporter) -> int:
    from ._app import chromium as cr
    from ._app import project
    ok = True

    def line(label: str, good: bool, text: str, fix: str = "") -> None:
        nonlocal ok
        ok = ok and good
        print(f"{'ok ' if good else 'NO '} {label:<22} {text}" + (f"  -> {fix}" if fix and not good else ""))

    print(f"python  {sys.version.split()[0]} ({sys.executable})")
    for label, binary in (("chromium (dev mode)", cr.default_chromium()),
                          ("chromium 150 (signed)", str(cr.CHROMIUM150))):
        if Path(binary).exists():
            version = cr.chromium_version(binary)
            parser = cr.has_bundle_parser(binary)
            line(label, True, f"{version} at {binary}; signed bundles: "
                 + ("yes" if parser else "no (no Signed Web Bundle parser; dev-mode installs only)"))
        else:
            fix = "bash scripts/chromium150.sh" if "150" in label else "bash scripts/setup.sh"
            line(label, False, f"not found at {binary}", fix)
    print("    flags: " + " ".join([cr.DEV_FEATURES, "--headless=new", "--no-sandbox"])
          + "; policy installs: " + cr.POLICY_FEATURES + " + IsolatedWebAppInstallForceList")
    print("    grants at install: localNetwork, loopbackNetwork (Browser.grantPermissions); manifest "
          "permissions_policy: " + ", ".join(project.PERMISSIONS) + " (+ direct-sockets-private for 150)")
    node = shutil.which("node")
    line("node", bool(node), subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
         if node else "not found", "bash scripts/setup.sh")
    try:
        root = project.toolkit_root()
        line("socketiwa tree", True, str(root))
        line("npm packages", (root / "node_modules" / "wbn-sign").exists() and
             (root / "node_modules" / "pyodide" / "pyodide.asm.wasm").exists(),
             "pyodide, wbn, wbn-sign", "bash scripts/setup.sh")
        wheels = sorted(p.name for p in (root / "dist" / "wasm" / "wheels").glob("*.whl"))
        line("browser build", bool(wheels), ", ".join(wheels) or "dist/wasm/wheels is empty (QUIC not available)",
             "bash build-wasm.sh")
    except SocketIwaError as e:
        line("socketiwa tree", False, str(e))
    keys = project.config_dir() / "keys"
    print(f"    signing keys: {keys} ({len(list(keys.glob('*.pem'))) if keys.is_dir() else 0} keys)")
    can_ns = os.geteuid() == 0 or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0
    line("policy installs", can_ns, "private mount namespace for /etc/chromium: "
         + ("available" if can_ns else "not available"), "run as root or enable user namespaces")
    return 0 if ok else 1


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="socketiwa", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("new", help="make a starter app in DIR")
    p.add_argument("dir")
    p.add_argument("--name", help="the app's name (default: the folder's name)")
    p.set_defaults(func=cmd_new)
    for name, func, help_ in (("build", cmd_build, "build DIR into a signed .swbn and the dev folder"),
                              ("run", cmd_run, "build DIR, run it in Chromium, exit with its exit code")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("dir")
        p.add_argument("--key", help="the signing key (PEM, Ed25519 or ECDSA P-256; default ~/.config/socketiwa/keys/NAME.pem)")
        p.set_defaults(func=func)
        if name == "build":
            p.add_argument("--no-sign", action="store_true", help="only the dev-mode folder")
        else:
            p.add_argument("--signed", action="store_true",
                           help="install the signed bundle (dev-mode install from file, Chromium 150)")
            p.add_argument("--policy", action="store_true",
                           help="install the signed bundle by enterprise force-install policy (Chromium 150)")
            p.add_argument("--headed", action="store_true", help="show the window (needs a display)")
            p.add_argument("--fresh-profile", action="store_true",
                           help="install in a new temporary Chromium profile (default: the app's kept "
                                "profile, where an unchanged app is installed already)")
            p.add_argument("--chromium", help="the Chromium binary to use")
            p.add_argument("--timeout", type=float, help="give up after this many seconds")
            p.add_argument("args", nargs="*", help="arguments for the program (after --)")
    p = sub.add_parser("doctor", help="which Chromium, signed-bundle support, toolchain state")
    p.set_defaults(func=cmd_doctor)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after "--" is the program's, wherever the options of `run` were written
    # (argparse alone rejects `run DIR --headed -- x`: its positionals were already filled).
    program_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, program_args = argv[:cut], argv[cut + 1:]
    ap = parser()
    args = ap.parse_args(argv)
    if program_args:
        if not hasattr(args, "args"):
            ap.error(f"{args.command} takes no program arguments (only run does, after --)")
        args.args = [*args.args, *program_args]
    report = Reporter(args.quiet)
    # On SIGTERM unwind like Ctrl-C does, so the Chromium we started is closed on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        code: int = args.func(args, report)
        return code
    except SocketIwaError as e:
        print(f"socketiwa {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"socketiwa {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output went away (`socketiwa doctor | head`): stop quietly, like
        # a command killed by SIGPIPE, without a traceback at exit's flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
