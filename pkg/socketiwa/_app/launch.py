"""Install a built app in Chromium, run its program, stream its output, return its exit code."""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import chromium as cr
from .project import AppError, BuildResult

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
    http: object | None = None

    def close(self) -> None:
        cr.close_chromium(self.cdp)
        if self.http is not None:
            self.http.shutdown()  # type: ignore[attr-defined]
        shutil.rmtree(self.work, ignore_errors=True)


def find_chromium150() -> Path:
    if not cr.CHROMIUM150.exists():
        raise AppError("Chromium 150 (the Debian build that can install signed bundles) is not "
                       "unpacked: run 'bash scripts/chromium150.sh'")
    return cr.CHROMIUM150


def install(build: BuildResult, how: str = "dev", chromium: str | None = None,
            page: str = "/index.html", headed: bool = False, progress: Progress = lambda m: None) -> Session:
    """Launch Chromium and install the app: how = 'dev' (dev-mode proxy of the dev folder),
    'signed' (dev-mode install of the .swbn from its file) or 'policy' (enterprise
    force-install of the .swbn). The signed routes need Chromium 150 (default for them)."""
    work = Path(tempfile.mkdtemp(prefix="socketiwa-run-"))
    t0 = time.monotonic()
    flags = [cr.DEV_FEATURES, "--disable-component-update"]
    try:
        if how == "dev":
            binary = chromium or cr.default_chromium()
            if not Path(binary).exists():
                raise AppError(f"Chromium not found at {binary}: run 'bash scripts/setup.sh' "
                               "(installs Debian's chromium) or set SOCKETIWA_CHROMIUM")
            http, port = cr.serve_dir(build.dev_dir)
            progress(f"launching Chromium ({binary})")
            cdp = cr.launch_chromium(work, binary, flags=flags, headless=not headed)
            progress(f"installing {build.app.name} (dev mode, from {build.dev_dir})")
            origin = cr.install_dev_proxy(cdp, f"http://127.0.0.1:{port}/")
            sess = Session(cdp, origin, "", work, http=http)
        elif how in ("signed", "policy"):
            if build.swbn is None or not build.swbn.exists():
                raise AppError("no signed bundle: run 'socketiwa build DIR' (not --no-sign)")
            binary = chromium or str(find_chromium150())
            if not cr.has_bundle_parser(binary):
                raise AppError(f"{binary} cannot open signed web bundles (Debian's Chromium 156 has "
                               "no parser): run 'bash scripts/chromium150.sh' and use its Chromium 150")
            if how == "signed":
                progress(f"launching Chromium 150 ({binary})")
                cdp = cr.launch_chromium(work, binary, flags=flags, headless=not headed)
                progress(f"installing the signed bundle {build.swbn.name} (dev mode, from the file)")
                origin = cr.install_dev_bundle(cdp, build.swbn, build.id)
                sess = Session(cdp, origin, "", work)
            else:
                progress(f"launching Chromium 150 with a force-install policy for {build.id}")
                cdp, origin, timings = cr.policy_force_install(work, build.swbn, build.id,
                                                               build.app.version, binary)
                sess = Session(cdp, origin, "", work, timings=timings)
        else:
            raise ValueError(how)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        sess.timings["installed_s"] = time.monotonic() - t0
        cr.grant(cdp, origin, build.app.grants)
        sess.session = cr.open_app(cdp, origin, page, policy_installed=(how == "policy"))
        sess.timings["opened_s"] = time.monotonic() - t0
    except BaseException:
        sess.close()
        raise
    return sess


def run(build: BuildResult, argv: list[str] | None = None, how: str = "dev", chromium: str | None = None,
        headed: bool = False, timeout: float | None = None, progress: Progress = lambda m: None,
        output: Output = _print_output) -> int:
    """Run the app's program in Chromium; its output goes to ``output`` as it comes. Returns the
    program's exit code."""
    query = "?" + urllib.parse.urlencode({"argv": json.dumps(argv or [])})
    sess = install(build, how, chromium, page="/index.html" + query, headed=headed, progress=progress)
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
