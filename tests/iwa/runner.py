"""Run Python in Pyodide inside a real Isolated Web App in headless Chromium.

``IwaRunner`` is a pytest-pyodide runner (a ``_BrowserBaseRunner``), so ``run_in_pyodide``
tests, and socketiwa's ``@everywhere`` tests, run in the IWA unchanged. It:

1. lays out the app (iwa-shell/build.mjs) and serves it on 127.0.0.1 (dev-mode proxy install);
2. launches Debian's Chromium headless with DevTools over a pipe (fds 3/4, NUL-framed JSON);
3. installs the app with ``PWA.install``, grants ``localNetwork`` and ``loopbackNetwork`` in one
   ``Browser.grantPermissions`` call, opens ``isolated-app://<id>/index.html?mode=test``;
4. runs JavaScript with ``Runtime.evaluate`` (awaitPromise); Pyodide is the page's own.

The browser console is kept (``logs``) and printed when a test fails.
"""
from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pytest_pyodide.runner import JavascriptException, _BrowserBaseRunner

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SOCKETIWA_CHROMIUM", "/usr/lib/chromium/chromium")
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--no-default-browser-check",
    "--enable-features=IsolatedWebApps,IsolatedWebAppDevMode",
    # The app tab must not be throttled as a background page: Pyodide's event loop runs on timers.
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
DEFAULT_GRANTS = ("localNetwork", "loopbackNetwork")
MIME = {".html": "text/html", ".mjs": "text/javascript", ".js": "text/javascript",
        ".json": "application/json", ".webmanifest": "application/manifest+json",
        ".wasm": "application/wasm", ".zip": "application/zip", ".png": "image/png",
        ".py": "text/plain", ".whl": "application/zip"}


class IwaError(RuntimeError):
    pass


def dev_proxy_bundle_id() -> str:
    """A dev-mode proxy web bundle ID: base32(32 random bytes + 0x00 0x00 0x02), lower case."""
    raw = secrets.token_bytes(32) + b"\x00\x00\x02"
    return base64.b32encode(raw).decode().rstrip("=").lower()


def build_app(dev_dir: Path, manifest: Path | None = None, main: Path | None = None,
              swbn: Path | None = None) -> dict:
    cmd = ["node", str(ROOT / "iwa-shell" / "build.mjs"), "--dev-dir", str(dev_dir),
           "--swbn", str(swbn) if swbn else "none"]
    if manifest:
        cmd += ["--manifest", str(manifest)]
    if main:
        cmd += ["--main", str(main)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise IwaError(f"iwa-shell/build.mjs failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class _StaticHandler(http.server.SimpleHTTPRequestHandler):
    def guess_type(self, path):
        return MIME.get(Path(path).suffix.lower(), "application/octet-stream")

    def log_message(self, *args):
        pass


def serve_dir(directory: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = functools.partial(_StaticHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


class CDP:
    """A DevTools protocol client over --remote-debugging-pipe."""

    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int):
        self.proc = proc
        self._out = os.fdopen(to_browser, "wb", buffering=0)
        self._in = os.fdopen(from_browser, "rb", buffering=0)
        self._next_id = 0
        self._lock = threading.Lock()
        self._waiters: dict[int, tuple[threading.Event, list]] = {}
        self.console: list[str] = []
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def _read_loop(self):
        buf = b""
        while True:
            chunk = self._in.read(65536)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                self._dispatch(json.loads(raw))
        for event, box in list(self._waiters.values()):
            box.append({"error": {"message": "browser exited"}})
            event.set()

    def _dispatch(self, msg: dict):
        if "id" in msg:
            waiter = self._waiters.pop(msg["id"], None)
            if waiter:
                waiter[1].append(msg)
                waiter[0].set()
            return
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append(f"[console.{params.get('type')}] {text}")
        elif method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            self.console.append(f"[exception] {d.get('exception', {}).get('description', d.get('text'))}")
        elif method == "Log.entryAdded":
            e = params.get("entry", {})
            self.console.append(f"[log.{e.get('level')}] {e.get('text')} {e.get('url', '')}")

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict:
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
            event, box = threading.Event(), []
            self._waiters[msg_id] = (event, box)
            msg = {"id": msg_id, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            self._out.write(json.dumps(msg).encode() + b"\0")
        if not event.wait(timeout):
            self._waiters.pop(msg_id, None)
            raise IwaError(f"CDP {method} did not answer within {timeout} s")
        reply = box[0]
        if "error" in reply:
            raise IwaError(f"CDP {method} failed: {reply['error'].get('message')}")
        return reply.get("result", {})

    def close(self):
        try:
            self._out.close()
        except OSError:
            pass


def launch_chromium(profile: Path) -> CDP:
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    home = profile / "home"
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"), XDG_CACHE_HOME=str(home / ".cache"))

    # Chromium reads commands on fd 3 and writes replies on fd 4; a shell moves our pipe ends
    # there (robust whatever numbers the pipes got here).
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile / 'profile'}", "--remote-debugging-pipe",
           "about:blank"]
    proc = subprocess.Popen(
        ["/bin/bash", "-c", f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}', "chromium", *cmd],
        env=env, pass_fds=(to_browser_r, from_browser_w),
        stdout=subprocess.DEVNULL, stderr=open(profile / "chromium.log", "wb"))
    os.close(to_browser_r)
    os.close(from_browser_w)
    return CDP(proc, to_browser_w, from_browser_r)


class IwaRunner(_BrowserBaseRunner):
    """A pytest-pyodide runner whose page is the socketiwa IWA in headless Chromium."""

    browser = "chrome"
    runner = "iwa"

    def __init__(self, *, manifest: Path | None = None, grants=DEFAULT_GRANTS,
                 startup_timeout: float = 60, **kwargs):
        self.manifest = manifest
        self.grants = tuple(grants)
        self.startup_timeout = startup_timeout
        self.script_timeout = 60
        self.default_timeout = 60
        self.timings: dict[str, float] = {}
        self._tmp = Path(tempfile.mkdtemp(prefix="socketiwa-iwa-"))
        super().__init__(server_port=0, dist_dir=ROOT / "build" / "pyodide-dist-314", **kwargs)

    # ---- pytest-pyodide runner interface
    def get_driver(self, jspi=False):
        t0 = time.monotonic()
        info = build_app(self._tmp / "app", manifest=self.manifest)
        self.http, port = serve_dir(Path(info["devDir"]))
        self.cdp = launch_chromium(self._tmp)
        self.cdp.send("Browser.getVersion")
        self.timings["launch_s"] = time.monotonic() - t0
        self.app_id = dev_proxy_bundle_id()
        self.origin = f"isolated-app://{self.app_id}"
        self.cdp.send("PWA.install", {"manifestId": self.origin + "/",
                                      "installUrlOrBundleUrl": f"http://127.0.0.1:{port}/"}, timeout=60)
        # One call: grantPermissions denies everything it is not given.
        self.cdp.send("Browser.grantPermissions", {"origin": self.origin, "permissions": list(self.grants)})
        self.timings["install_s"] = time.monotonic() - t0
        target = self.cdp.send("Target.createTarget", {"url": f"{self.origin}/index.html?mode=test"})
        self.session = self.cdp.send("Target.attachToTarget", {"targetId": target["targetId"],
                                                               "flatten": True})["sessionId"]
        self.cdp.send("Runtime.enable", session=self.session)
        self.cdp.send("Log.enable", session=self.session)
        self._wait_ready()
        self.timings["ready_s"] = time.monotonic() - t0
        return self.cdp

    def _evaluate(self, expression: str, timeout: float) -> Any:
        result = self.cdp.send("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True,
            "timeout": int(timeout * 1000)}, session=self.session, timeout=timeout + 5)
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            exc = d.get("exception", {})
            raise JavascriptException(exc.get("description") or d.get("text", "error"), "")
        return result.get("result", {}).get("value")

    def _wait_ready(self):
        deadline = time.monotonic() + self.startup_timeout
        phase = None
        while time.monotonic() < deadline:
            try:
                phase = self._evaluate("window.socketiwaShell ? socketiwaShell.state.phase : 'no-shell'", 5)
            except (IwaError, JavascriptException):
                phase = "navigating"
            if phase == "ready":
                return
            if phase == "error":
                detail = self._evaluate("socketiwaShell.state.error", 5)
                raise IwaError(f"the IWA shell failed to start:\n{detail}\n{self.logs}")
            time.sleep(0.05)
        raise IwaError(f"the IWA shell was not ready after {self.startup_timeout} s (last phase "
                       f"{phase!r})\n{self.logs}")

    def prepare_driver(self):
        pass  # get_driver already opened the app page

    def load_pyodide(self):
        # The shell already started Pyodide (and socketiwa) the way users get it.
        self.run_js("globalThis.pyodide = socketiwaShell.pyodide;" + self.POST_LOAD_PYODIDE_SCRIPT)

    def set_script_timeout(self, timeout):
        self.script_timeout = timeout

    def run_js_inner(self, code, check_code):
        wrapped = f"(async () => {{ let result = await (async () => {{ {code} }})(); {check_code}; return result; }})()"
        return self._evaluate(wrapped, self.script_timeout)

    def goto(self, page):
        raise NotImplementedError("the IWA runner stays on its app page")

    def refresh(self):
        raise NotImplementedError("restart the runner instead")

    @property
    def logs(self):
        return "\n".join(self.cdp.console[-200:]) if hasattr(self, "cdp") else ""

    def clean_logs(self):
        self.cdp.console.clear()

    def quit(self):
        try:
            self.cdp.send("Browser.close", timeout=5)
        except Exception:
            pass
        proc = self.cdp.proc
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        self.cdp.close()
        self.http.shutdown()
        shutil.rmtree(self._tmp, ignore_errors=True)


def start_iwa_runner(**kwargs) -> IwaRunner:
    from runtimes import pyodide_dist
    from pytest_pyodide.hook import pytest_wrapper
    pytest_wrapper.pyodide_dist_dir = pyodide_dist()   # also assembles build/pyodide-dist-314
    if not Path(CHROMIUM).exists():
        raise IwaError(f"{CHROMIUM} not found: run scripts/setup.sh (installs Debian's chromium)")
    return IwaRunner(**kwargs)


if __name__ == "__main__":  # smoke check: python tests/iwa/runner.py
    sys.path.insert(0, str(ROOT / "tests"))
    r = start_iwa_runner()
    print(r.timings)
    print(r.run_async("import socketiwa, sys; (socketiwa.backend_name(), sys.version.split()[0])"))
    r.quit()
