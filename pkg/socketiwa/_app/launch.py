"""Install a built app in Chromium, run its program, stream its output, return its exit code."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from . import chromium as cr
from .project import AppError, BuildResult, cache_dir

Progress = Callable[[str], None]
Output = Callable[[str, str], None]


def _print_output(stream: str, text: str) -> None:
    out = sys.stderr if stream == "stderr" else sys.stdout
    out.write(text + "\n")
    out.flush()


@dataclass
class Session:
    """An installed app in a running Chromium (kept open by callers that inspect the page)."""
    cdp: cr.CDP
    origin: str
    session: str
    work: Path
    timings: dict[str, float] = field(default_factory=dict)
    http: ThreadingHTTPServer | None = None
    kept: "KeptProfile | None" = None   # the profile stays (and is unlocked) at close
    reused: bool = False                # the app was installed already (a kept profile)

    def close(self) -> None:
        cr.close_chromium(self.cdp)
        if self.http is not None:
            self.http.shutdown()
        if self.kept is not None:
            self.kept.release()
        else:
            shutil.rmtree(self.work, ignore_errors=True)


# ---- kept profiles: a second run of an unchanged app skips the install

# Profiles kept (the most recently used); older ones are deleted when another is taken.
PROFILES_KEPT = 8
STATE_FILE = "socketiwa-install.json"


def profiles_dir() -> Path:
    """Where `socketiwa run` keeps one Chromium profile per app (SOCKETIWA_PROFILES, else the
    socketiwa cache): outside the app's folder, as an installed app's data is outside its code."""
    env = os.environ.get("SOCKETIWA_PROFILES")
    return Path(env) if env else cache_dir() / "profiles"


def dev_bundle_id(build: BuildResult) -> str:
    """The dev-mode install's ID: fixed per app folder (a fresh profile could use a random one)."""
    return cr.dev_proxy_bundle_id(b"socketiwa dev-mode app\0" + str(build.app.root.resolve()).encode())


def folder_digest(folder: Path) -> str:
    """SHA-256 over a folder's file names and contents: what a dev-mode install serves."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class KeptProfile:
    """One app's Chromium profile, kept between runs under profiles_dir()/BUNDLE_ID, with a file
    saying what was installed in it (STATE_FILE). A run holds an exclusive lock on it: Chromium
    cannot share a profile, so a second run of the same app at the same time gets a fresh one."""

    def __init__(self, root: Path, bundle_id: str):
        self.root = root
        self.dir = root / bundle_id
        self._lock_path = root / f"{bundle_id}.lock"
        self._lock: int | None = None

    @classmethod
    def take(cls, root: Path, bundle_id: str) -> "KeptProfile | None":
        """The app's profile, locked; None when another run holds it."""
        kept = cls(root, bundle_id)
        root.mkdir(parents=True, exist_ok=True)
        if not kept._try_lock():
            return None
        if kept._chromium_alive():
            kept.release()
            return None
        kept.dir.mkdir(exist_ok=True)
        kept._prune()
        return kept

    def _chromium_alive(self) -> bool:
        """A Chromium still runs on this profile (its run was killed without closing it): a new
        one would hand over to it and exit. Chromium's lock is a symlink to "HOST-PID"."""
        try:
            pid = int(os.readlink(self.dir / "profile" / "SingletonLock").rpartition("-")[2])
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _try_lock(self) -> bool:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock = fd
        return True

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing drops the flock
            self._lock = None

    def state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads((self.dir / STATE_FILE).read_text())
            return state
        except (OSError, ValueError):
            return None

    def save(self, state: dict[str, Any]) -> None:
        tmp = self.dir / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=1) + "\n")
        tmp.replace(self.dir / STATE_FILE)

    def wipe(self) -> None:
        """An empty profile (what was installed in it is gone)."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _prune(self) -> None:
        """Delete the least recently used profiles beyond PROFILES_KEPT (not those in use)."""
        def used(d: Path) -> float:
            try:
                return (d / STATE_FILE).stat().st_mtime
            except OSError:
                return d.stat().st_mtime
        others = sorted((d for d in self.root.iterdir() if d.is_dir() and d != self.dir), key=used, reverse=True)
        for old in others[PROFILES_KEPT - 1:]:
            other = KeptProfile(self.root, old.name)
            if other._try_lock():
                shutil.rmtree(old, ignore_errors=True)
                other._lock_path.unlink(missing_ok=True)
                other.release()


def _binary_identity(binary: str) -> list[Any]:
    """Which Chromium a profile was made by: an upgraded or another binary gets a new profile
    (Chromium refuses profiles of newer versions)."""
    st = Path(binary).stat()
    return [str(Path(binary).resolve()), st.st_size, st.st_mtime_ns]


def find_chromium150() -> Path:
    if not cr.CHROMIUM150.exists():
        raise AppError("Chromium 150 (the Debian build that can install signed bundles) is not "
                       "unpacked: run 'bash scripts/chromium150.sh'")
    return cr.CHROMIUM150


def _chromium_for(build: BuildResult, how: str, chromium: str | None) -> str:
    if how == "dev":
        binary = chromium or cr.default_chromium()
        if not Path(binary).exists():
            raise AppError(f"Chromium not found at {binary}: run 'bash scripts/setup.sh' "
                           "(installs Debian's chromium) or set SOCKETIWA_CHROMIUM")
        return binary
    if how not in ("signed", "policy"):
        raise ValueError(how)
    if build.swbn is None or not build.swbn.exists():
        raise AppError("no signed bundle: run 'socketiwa build DIR' (not --no-sign)")
    binary = chromium or str(find_chromium150())
    if not cr.has_bundle_parser(binary):
        raise AppError(f"{binary} cannot open signed web bundles (Debian's Chromium 156 has "
                       "no parser): run 'bash scripts/chromium150.sh' and use its Chromium 150")
    return binary


def install(build: BuildResult, how: str = "dev", chromium: str | None = None,
            page: str = "/index.html", headed: bool = False, progress: Progress = lambda m: None,
            keep_profile: bool = False) -> Session:
    """Launch Chromium and install the app: how = 'dev' (dev-mode proxy of the dev folder),
    'signed' (dev-mode install of the .swbn from its file) or 'policy' (enterprise
    force-install of the .swbn). The signed routes need Chromium 150 (default for them).

    keep_profile (dev and signed): use the app's kept profile (KeptProfile); if the same build
    was installed there by the same Chromium, launch and open it without installing again (a
    relaunch, as a user's second start of an installed app); if the app changed, install it in
    the profile emptied. Otherwise, and for 'policy', a fresh temporary profile."""
    binary = _chromium_for(build, how, chromium)
    kept = None
    if keep_profile and how != "policy":
        bundle_id = build.id if how == "signed" else dev_bundle_id(build)
        kept = KeptProfile.take(profiles_dir(), bundle_id)
        if kept is None:
            progress(f"the kept profile of {build.app.name} is in use by another run or Chromium: "
                     "using a fresh one")
    work = kept.dir if kept else Path(tempfile.mkdtemp(prefix="socketiwa-run-"))
    t0 = time.monotonic()
    flags = [cr.DEV_FEATURES, "--disable-component-update"]
    http = None
    sess: Session | None = None
    reuse: dict[str, Any] | None = None
    wanted: dict[str, Any] = {}
    try:
        if kept:
            wanted = {"how": how, "chromium": _binary_identity(binary),
                      "bundle": build.sha256 if how == "signed" else folder_digest(build.dev_dir)}
            state = kept.state()
            if state and all(state.get(k) == v for k, v in wanted.items()):
                reuse = state
            else:  # (also what an interrupted install left behind)
                if state:
                    progress(f"{build.app.name} changed since its last run: installing it again in a fresh profile")
                kept.wipe()
        if how == "dev":
            try:
                # A dev-mode install proxies to the URL it was installed from: the same port again.
                http, port = cr.serve_dir(build.dev_dir, reuse["port"] if reuse else 0)
            except OSError:
                assert kept is not None
                progress(f"port {reuse and reuse['port']} of the kept install is taken: installing again")
                reuse = None
                kept.wipe()
                http, port = cr.serve_dir(build.dev_dir)
            wanted["port"] = port
        progress(f"launching Chromium {'150 ' if how != 'dev' else ''}({binary})"
                 if how != "policy" else f"launching Chromium 150 with a force-install policy for {build.id}")
        if how == "policy":
            assert build.swbn is not None  # _chromium_for refused a build without one
            cdp, origin, timings = cr.policy_force_install(work, build.swbn, build.id,
                                                           build.app.version, binary)
            sess = Session(cdp, origin, "", work, timings=timings)
        else:
            cdp = cr.launch_chromium(work, binary, flags=flags, headless=not headed)
            sess = Session(cdp, "", "", work, http=http, kept=kept)
            http = None  # the session shuts it down from here on
            if reuse and cr.is_installed(cdp, reuse["origin"]):
                progress(f"reusing the installed {build.app.name} (unchanged since its last run; "
                         f"profile {work})")
                sess.origin, sess.reused = reuse["origin"], True
            elif how == "dev":
                progress(f"installing {build.app.name} (dev mode, from {build.dev_dir})")
                sess.origin = cr.install_dev_proxy(cdp, f"http://127.0.0.1:{port}/",
                                                   dev_bundle_id(build) if kept else None)
            else:
                assert build.swbn is not None  # _chromium_for refused a build without one
                progress(f"installing the signed bundle {build.swbn.name} (dev mode, from the file)")
                sess.origin = cr.install_dev_bundle(cdp, build.swbn, build.id)
            if kept and not sess.reused:
                kept.save({**wanted, "origin": sess.origin, "app": build.app.name,
                           "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            elif kept:
                os.utime(kept.dir / STATE_FILE)  # recently used: pruned last
    except BaseException:
        if sess is not None:
            sess.close()
        else:
            if http is not None:
                http.shutdown()
            if kept:
                kept.release()
            else:
                shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        sess.timings["installed_s"] = time.monotonic() - t0
        cr.grant(sess.cdp, sess.origin, build.app.grants)
        sess.session = cr.open_app(sess.cdp, sess.origin, page, policy_installed=(how == "policy"))
        sess.timings["opened_s"] = time.monotonic() - t0
    except BaseException:
        sess.close()
        raise
    return sess


def run(build: BuildResult, argv: list[str] | None = None, how: str = "dev", chromium: str | None = None,
        headed: bool = False, timeout: float | None = None, progress: Progress = lambda m: None,
        output: Output = _print_output, keep_profile: bool = False) -> int:
    """Run the app's program in Chromium; its output goes to ``output`` as it comes. Returns the
    program's exit code. keep_profile: see install."""
    query = "?" + urllib.parse.urlencode({"argv": json.dumps(argv or [])})
    sess = install(build, how, chromium, page="/index.html" + query, headed=headed, progress=progress,
                   keep_profile=keep_profile)
    try:
        return follow(sess, progress, output, timeout)
    finally:
        sess.close()


def follow(sess: Session, progress: Progress = lambda m: None, output: Output = _print_output,
           timeout: float | None = None) -> int:
    """Stream the page's program output until it exits; return its exit code."""
    t0 = time.monotonic()
    last_phase = None
    poll = ("(() => { const s = window.socketiwaShell; if (!s) return null;"
            " return {phase: s.state.phase, detail: s.state.detail, out: s.takeOutput(),"
            " exit: s.state.exitCode, error: s.state.error, dropped: s.state.outputDropped}; })()")
    dropped = 0
    while True:
        try:
            state = sess.cdp.evaluate(sess.session, poll, timeout=10)
        except cr.JsError:
            state = None  # the page is between documents
        except cr.IwaError as e:
            if sess.cdp.proc.poll() is not None or "exited" in str(e):
                raise AppError(f"Chromium exited while the program ran (its log: {sess.cdp.log_path})") from None
            state = None  # the page is busy (a program that does not yield); ask again
        if state:
            if state["phase"] != last_phase:
                last_phase = state["phase"]
                if last_phase in ("loading", "running"):
                    progress(f"{last_phase} {state['detail']}".strip())
            if state.get("dropped", 0) > dropped:
                output("stderr", f"[socketiwa: {state['dropped'] - dropped} output lines were dropped "
                                 "(the page keeps at most 10000 between reads)]")
                dropped = state["dropped"]
            for stream, text in state["out"]:
                output(stream, text)
            if state["exit"] is not None:
                return int(state["exit"])
            if state["phase"] == "error":
                lines = (state["error"] or "unknown error").strip().splitlines()
                raise AppError(f"the app failed to start: {lines[0]}")
        if timeout is not None and time.monotonic() - t0 > timeout:
            raise AppError(f"the program did not finish within {timeout} s")
        time.sleep(0.1)
