"""Run Python in Pyodide inside a real Isolated Web App in headless Chromium.

``IwaRunner`` is a pytest-pyodide runner (a ``_BrowserBaseRunner``), so ``run_in_pyodide``
tests, and socketiwa's ``@everywhere`` tests, run in the IWA unchanged. It:

1. lays out the app (iwa-shell/build.mjs) and serves it on 127.0.0.1 (dev-mode proxy install;
   with SOCKETIWA_IWA_INSTALL=signed it signs it and installs the .swbn in Chromium 150);
2. launches Debian's Chromium headless with DevTools over a pipe (fds 3/4, NUL-framed JSON);
3. installs the app with ``PWA.install``, grants ``localNetwork`` and ``loopbackNetwork`` in one
   ``Browser.grantPermissions`` call, opens ``isolated-app://<id>/index.html?mode=test``;
4. runs JavaScript with ``Runtime.evaluate`` (awaitPromise); Pyodide is the page's own.

The browser console is kept (``logs``) and printed when a test fails.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_pyodide.runner import JavascriptException, _BrowserBaseRunner

# Chromium, DevTools and IWA installs are shared with the socketiwa CLI.
from socketiwa._app.chromium import (CDP, CHROMIUM150, DEFAULT_GRANTS, IwaError, JsError,  # noqa: F401
                                     close_chromium, dev_proxy_bundle_id, grant, install_dev_bundle,
                                     install_dev_proxy, launch_chromium, serve_dir)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SOCKETIWA_CHROMIUM", "/usr/lib/chromium/chromium")
# SOCKETIWA_IWA_INSTALL=signed: every IWA test runs in the signed bundle in Chromium 150
# (scripts/chromium150.sh) instead of a dev-mode proxy install in the system's Chromium.
INSTALL = os.environ.get("SOCKETIWA_IWA_INSTALL", "dev")


def build_app(dev_dir: Path, manifest: Path | None = None, main: Path | None = None,
              swbn: Path | None = None, overlay: Path | None = None, key: Path | None = None) -> dict:
    """Lay out (and with swbn, sign) the socketiwa shell app with iwa-shell/build.mjs."""
    cmd = ["node", str(ROOT / "iwa-shell" / "build.mjs"), "--dev-dir", str(dev_dir),
           "--swbn", str(swbn) if swbn else "none"]
    for flag, value in (("--manifest", manifest), ("--main", main), ("--overlay", overlay), ("--key", key)):
        if value:
            cmd += [flag, str(value)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise IwaError(f"iwa-shell/build.mjs failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


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
        if INSTALL == "signed":
            # The signed bundle, installed from its file in Chromium 150 (156 has no bundle
            # parser); a throwaway key, no HTTP server at all.
            info = build_app(self._tmp / "app", manifest=self.manifest, swbn=self._tmp / "app.swbn",
                             key=self._tmp / "key.pem")
            self.http = None
            self.cdp = launch_chromium(self._tmp, CHROMIUM150)
            self.timings["launch_s"] = time.monotonic() - t0
            self.origin = install_dev_bundle(self.cdp, self._tmp / "app.swbn", info["id"])
        else:
            info = build_app(self._tmp / "app", manifest=self.manifest)
            self.http, port = serve_dir(Path(info["devDir"]))
            self.cdp = launch_chromium(self._tmp, CHROMIUM)
            self.timings["launch_s"] = time.monotonic() - t0
            self.origin = install_dev_proxy(self.cdp, f"http://127.0.0.1:{port}/")
        self.app_id = self.origin.removeprefix("isolated-app://")
        grant(self.cdp, self.origin, self.grants)
        self.timings["install_s"] = time.monotonic() - t0
        _, self.session = self.cdp.open_page(f"{self.origin}/index.html?mode=test")
        self._wait_ready()
        self.timings["ready_s"] = time.monotonic() - t0
        return self.cdp

    def _evaluate(self, expression: str, timeout: float) -> Any:
        try:
            return self.cdp.evaluate(self.session, expression, timeout)
        except JsError as e:
            raise JavascriptException(str(e), "") from None

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
        close_chromium(self.cdp)
        if self.http is not None:
            self.http.shutdown()
        shutil.rmtree(self._tmp, ignore_errors=True)


def start_iwa_runner(**kwargs) -> IwaRunner:
    from runtimes import pyodide_dist
    from pytest_pyodide.hook import pytest_wrapper
    pytest_wrapper.pyodide_dist_dir = pyodide_dist()   # also assembles build/pyodide-dist-314
    if INSTALL not in ("dev", "signed"):
        raise IwaError(f"SOCKETIWA_IWA_INSTALL={INSTALL!r}: use 'dev' or 'signed'")
    if INSTALL == "signed" and not CHROMIUM150.exists():
        raise IwaError("SOCKETIWA_IWA_INSTALL=signed needs Chromium 150: run bash scripts/chromium150.sh")
    if not Path(CHROMIUM).exists():
        raise IwaError(f"{CHROMIUM} not found: run scripts/setup.sh (installs Debian's chromium)")
    return IwaRunner(**kwargs)


if __name__ == "__main__":  # smoke check: python tests/iwa/runner.py
    sys.path.insert(0, str(ROOT / "tests"))
    r = start_iwa_runner()
    print(r.timings)
    print(r.run_async("import socketiwa, sys; (socketiwa.backend_name(), sys.version.split()[0])"))
    r.quit()
