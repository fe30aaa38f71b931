"""Drive a real Chromium over DevTools and install Isolated Web Apps in it.

Shared by the ``socketiwa`` CLI (run, doctor) and the test harness (tests/iwa). Three installs:

- ``install_dev_proxy``: dev-mode proxy install of an HTTP-served app directory (Chromium 156 and
  150; no bundle parser needed);
- ``install_dev_bundle``: dev-mode install of a signed ``.swbn`` from a file (needs a Chromium
  with the Signed Web Bundle parser: Debian's 150, see scripts/chromium150.sh);
- ``policy_force_install``: enterprise ``IsolatedWebAppInstallForceList`` with a local key
  distribution allowlist component (150 as well).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Union

StrPath = Union[str, "os.PathLike[str]"]

SYSTEM_CHROMIUM = "/usr/lib/chromium/chromium"
CACHE = Path(os.environ.get("SOCKETIWA_CACHE", Path.home() / ".cache" / "socketiwa"))
# Where scripts/chromium150.sh unpacks Debian's Chromium 150 (the one with the bundle parser).
CHROMIUM150 = CACHE / "chromium150" / "root" / "usr" / "lib" / "chromium" / "chromium"

BASE_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-sync",
    "--no-first-run", "--no-default-browser-check",
    # The app tab must not be throttled as a background page: Pyodide's event loop runs on timers.
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
DEV_FEATURES = "--enable-features=IsolatedWebApps,IsolatedWebAppDevMode"
# Policy installs need the component updater (it loads the allowlist component), so no
# --disable-component-update there.
POLICY_FEATURES = "--enable-features=IsolatedWebApps,IwaKeyDistributionComponent"
DEFAULT_GRANTS = ("localNetwork", "loopbackNetwork")
MIME = {".html": "text/html", ".mjs": "text/javascript", ".js": "text/javascript",
        ".json": "application/json", ".webmanifest": "application/manifest+json",
        ".wasm": "application/wasm", ".zip": "application/zip", ".png": "image/png",
        ".py": "text/plain", ".whl": "application/zip", ".swbn": "application/octet-stream"}


class IwaError(RuntimeError):
    """Chromium or the app did not do what was asked; the message says what and, if known, why."""


def default_chromium() -> str:
    return os.environ.get("SOCKETIWA_CHROMIUM", SYSTEM_CHROMIUM)


def chromium_version(binary: StrPath) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout or out.stderr).strip()


def has_bundle_parser(binary: StrPath) -> bool:
    """Whether this Chromium binary can open Signed Web Bundles (Debian's 156 cannot).

    Looks for a message of the parser in the binary: cheap, and the only sign short of a
    failed install, which stalls silently."""
    needle = b"Wrong magic bytes"
    with open(binary, "rb") as f:
        tail = b""
        while chunk := f.read(1 << 22):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle):]
    return False


def dev_proxy_bundle_id(seed: bytes | None = None) -> str:
    """A dev-mode proxy web bundle ID: base32(32 bytes + 0x00 0x00 0x02), lower case. The 32 bytes
    are random, or with seed its SHA-256 (the same app gets the same ID, so a kept profile's
    install can be found again)."""
    raw = (hashlib.sha256(seed).digest() if seed is not None else secrets.token_bytes(32)) + b"\x00\x00\x02"
    return base64.b32encode(raw).decode().rstrip("=").lower()


class _StaticHandler(http.server.SimpleHTTPRequestHandler):
    def guess_type(self, path: StrPath) -> str:
        return MIME.get(Path(path).suffix.lower(), "application/octet-stream")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_dir(directory: Path, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, int]:
    """Serve a directory on 127.0.0.1 from a daemon thread, on port (0: an ephemeral one; a port
    in use raises OSError)."""
    handler = functools.partial(_StaticHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


class CDP:
    """A DevTools protocol client over --remote-debugging-pipe (fds 3/4, NUL-framed JSON)."""

    def __init__(self, proc: "subprocess.Popen[bytes]", to_browser: int, from_browser: int,
                 log_path: Path | None = None):
        self.proc = proc
        self.log_path = log_path
        self._out = os.fdopen(to_browser, "wb", buffering=0)
        self._in = os.fdopen(from_browser, "rb", buffering=0)
        self._next_id = 0
        self._lock = threading.Lock()
        self._waiters: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self.product = ""
        self.console: list[str] = []
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self._in.read(65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                self._dispatch(json.loads(raw))
        for event, box in list(self._waiters.values()):
            box.append({"error": {"message": "browser exited"}})
            event.set()

    def _dispatch(self, msg: dict[str, Any]) -> None:
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

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30) -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
            event, box = threading.Event(), []  # type: tuple[threading.Event, list[dict[str, Any]]]
            self._waiters[msg_id] = (event, box)
            msg = {"id": msg_id, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            try:
                self._out.write(json.dumps(msg).encode() + b"\0")
            except (BrokenPipeError, ValueError):
                self._waiters.pop(msg_id, None)
                raise IwaError(f"CDP {method}: the browser has exited{self._log_hint()}") from None
        if not event.wait(timeout):
            self._waiters.pop(msg_id, None)
            raise IwaError(f"CDP {method} did not answer within {timeout} s")
        reply = box[0]
        if "error" in reply:
            raise IwaError(f"CDP {method} failed: {reply['error'].get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def _log_hint(self) -> str:
        return f" (its log: {self.log_path})" if self.log_path else ""

    def evaluate(self, session: str, expression: str, timeout: float = 30) -> Any:
        """Runtime.evaluate (awaiting promises, by value); a thrown exception raises IwaError."""
        result = self.send("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True,
            "timeout": int(timeout * 1000)}, session=session, timeout=timeout + 5)
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            raise JsError(d.get("exception", {}).get("description") or d.get("text", "error"))
        return result.get("result", {}).get("value")

    def open_page(self, url: str) -> tuple[str, str]:
        """A new tab at url, attached (flat session). Returns (targetId, sessionId)."""
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Runtime.enable", session=session)
        self.send("Log.enable", session=session)
        return target, session

    def close(self) -> None:
        try:
            self._out.close()
        except OSError:
            pass


class JsError(IwaError):
    """JavaScript evaluated in the page threw."""


def launch_chromium(profile: Path, binary: StrPath | None = None,
                    flags: list[str] | None = None, prefix: list[str] | None = None,
                    env: dict[str, str] | None = None, url: str = "about:blank",
                    headless: bool = True) -> CDP:
    """Start Chromium with DevTools over a pipe, its profile and HOME inside ``profile``.

    ``flags`` default to the dev-mode set; ``prefix`` runs it through a wrapper (nsrun.sh)."""
    binary = str(binary or default_chromium())
    if not Path(binary).exists():
        raise IwaError(f"{binary} not found: run scripts/setup.sh (installs Debian's chromium)")
    profile.mkdir(parents=True, exist_ok=True)
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    home = profile / "home"
    full_env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                    XDG_DATA_HOME=str(home / ".local/share"), XDG_CACHE_HOME=str(home / ".cache"))
    full_env.update(env or {})
    if flags is None:
        flags = [DEV_FEATURES, "--disable-component-update"]
    headless_flags = ["--headless=new"] if headless else []
    cmd = [*(prefix or []), binary, *headless_flags, *BASE_FLAGS, *flags, f"--user-data-dir={profile / 'profile'}",
           "--remote-debugging-pipe", url]
    log_path = profile / "chromium.log"
    # Chromium reads commands on fd 3 and writes replies on fd 4; a shell moves our pipe ends
    # there (robust whatever numbers the pipes got here). Its own session, so we can end exactly
    # the processes it started.
    proc = subprocess.Popen(
        ["/bin/bash", "-c", f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}', "chromium", *cmd],
        env=full_env, pass_fds=(to_browser_r, from_browser_w), start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"))
    os.close(to_browser_r)
    os.close(from_browser_w)
    cdp = CDP(proc, to_browser_w, from_browser_r, log_path)
    try:
        cdp.product = cdp.send("Browser.getVersion", timeout=60)["product"]
    except IwaError:
        close_chromium(cdp)
        raise
    return cdp


def close_chromium(cdp: CDP) -> None:
    """Close the browser; kill its process group (which we created) if it does not go."""
    try:
        cdp.send("Browser.close", timeout=5)
    except Exception:
        pass
    proc = cdp.proc
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)
    cdp.close()


def wait_startup_complete(cdp: CDP, timeout: float = 60) -> float:
    """Wait for Chromium's "startup complete", which un-fences low-priority background work
    (policy installs among it). It fires when a visible tab goes idle (~3.4 s after launch) or
    after a 3-minute failsafe; the histogram below is recorded at that moment. Loading pages in a
    loop meanwhile delays it, so this only polls. Returns its time after launch in ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            h = cdp.send("Browser.getHistogram", {"name": "Startup.AfterStartupTaskDelayedUntilTime"})
            return float(h["histogram"]["sum"])
        except IwaError:
            time.sleep(0.25)
    raise IwaError(f"Chromium did not reach 'startup complete' within {timeout} s")


def grant(cdp: CDP, origin: str, grants: "tuple[str, ...] | list[str]" = DEFAULT_GRANTS) -> None:
    # One call: grantPermissions denies everything it is not given.
    cdp.send("Browser.grantPermissions", {"origin": origin, "permissions": list(grants)})


def install_dev_proxy(cdp: CDP, url: str, bundle_id: str | None = None) -> str:
    """Dev-mode proxy install of the app served at url, as bundle_id (default: a random one).
    Returns its origin (no trailing /)."""
    origin = f"isolated-app://{bundle_id or dev_proxy_bundle_id()}"
    cdp.send("PWA.install", {"manifestId": origin + "/", "installUrlOrBundleUrl": url}, timeout=60)
    return origin


def install_dev_bundle(cdp: CDP, swbn: Path, bundle_id: str, timeout: float = 120) -> str:
    """Dev-mode install of a signed bundle from a file. Returns the origin."""
    origin = f"isolated-app://{bundle_id}"
    try:
        cdp.send("PWA.install", {"manifestId": origin + "/",
                                 "installUrlOrBundleUrl": Path(swbn).resolve().as_uri()}, timeout=timeout)
    except IwaError as e:
        if "did not answer" in str(e) or "browser exited" in str(e):
            raise IwaError(f"{e}: this Chromium cannot open Signed Web Bundles (Debian's 156 has no "
                           "parser); use Chromium 150: bash scripts/chromium150.sh") from None
        raise
    return origin


def is_installed(cdp: CDP, origin: str) -> bool:
    try:
        cdp.send("PWA.getOsAppState", {"manifestId": origin + "/"})
        return True
    except IwaError:
        return False


def write_key_distribution_component(user_data_dir: Path, bundle_ids: list[str], version: str = "1.0.0") -> Path:
    """A local "Iwa Key Distribution" component whose managed allowlist holds bundle_ids.

    Force-installs of bundles not on it fail with "Not in the managed allowlist." (Google ships
    the real one through the component updater). Layout:
    <ud>/IwaKeyDistribution/<version>/{manifest.json, iwa-key-distribution.pb}; the protobuf is
    IwaKeyDistribution{3: IwaAccessControl{1: map<string, ManagedAllowlistItemData>}}."""
    def field(number: int, payload: bytes) -> bytes:  # length-delimited protobuf field
        n, out = len(payload), bytearray([(number << 3) | 2])
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out) + payload

    entries = b"".join(field(1, field(1, i.encode()) + field(2, b"")) for i in bundle_ids)
    d = user_data_dir / "IwaKeyDistribution" / version
    d.mkdir(parents=True, exist_ok=True)
    (d / "iwa-key-distribution.pb").write_bytes(field(3, entries))
    (d / "manifest.json").write_text(json.dumps(
        {"manifest_version": 1, "name": "Iwa Key Distribution", "version": version}))
    return d


def policy_prefix(work: Path, policy: dict[str, Any]) -> list[str]:
    """A command prefix that runs Chromium with ``policy`` as its managed policy.

    Chromium reads managed policy only from /etc/chromium/policies/managed; the prefix gives the
    one process a private mount namespace with a private copy of /etc/chromium bind-mounted over
    it, so the machine's policy is never touched. Needs root or unprivileged user namespaces."""
    etc = work / "etc-chromium"
    (etc / "policies" / "managed").mkdir(parents=True, exist_ok=True)
    prefs = Path("/etc/chromium/master_preferences")
    if prefs.exists():
        shutil.copy(prefs, etc / "master_preferences")
    (etc / "policies" / "managed" / "socketiwa.json").write_text(json.dumps(policy, indent=1))
    if not Path("/etc/chromium").is_dir():
        raise IwaError("/etc/chromium is missing (the mount point for the policy): install Debian's chromium")
    script = 'mount --bind "$0" /etc/chromium && exec "$@"'
    unshare = ["unshare", "-m", "--propagation", "private"] if os.geteuid() == 0 else \
        ["unshare", "-rm", "--propagation", "private"]
    return [*unshare, "/bin/sh", "-c", script, str(etc)]


def policy_force_install(work: Path, swbn: Path, bundle_id: str, version: str,
                         binary: StrPath, timeout: float = 120) -> tuple[CDP, str, dict[str, float]]:
    """Launch Chromium with an IsolatedWebAppInstallForceList policy for this bundle and wait
    until it is installed. The update manifest and bundle are served from 127.0.0.1 only for the
    install: the server is stopped before this returns. Returns (cdp, origin, timings)."""
    srv_dir = work / "update-server"
    srv_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(swbn, srv_dir / "app.swbn")
    server, port = serve_dir(srv_dir)
    timings: dict[str, float] = {"update_port": port}
    try:
        (srv_dir / "update.json").write_text(json.dumps(
            {"versions": [{"version": version, "src": f"http://127.0.0.1:{port}/app.swbn"}]}))
        policy = {"IsolatedWebAppInstallForceList": [
            {"update_manifest_url": f"http://127.0.0.1:{port}/update.json", "web_bundle_id": bundle_id}],
            # A force-installed app refuses DevTools ("Not allowed") unless this is 1.
            "DeveloperToolsAvailability": 1}
        write_key_distribution_component(work / "profile", [bundle_id])
        t0 = time.monotonic()
        cdp = launch_chromium(work, binary, flags=[POLICY_FEATURES], prefix=policy_prefix(work, policy))
        origin = f"isolated-app://{bundle_id}"
        try:
            timings["startup_complete_ms"] = wait_startup_complete(cdp, timeout)
            deadline = t0 + timeout
            # PWA.getOsAppState only: loading pages here would hold the startup fence up.
            while not is_installed(cdp, origin):
                if time.monotonic() > deadline:
                    raise IwaError(f"the policy install of {bundle_id} did not finish within {timeout} s "
                                   f"(Chromium log: {cdp.log_path})")
                time.sleep(0.25)
            timings["installed_s"] = time.monotonic() - t0
        except BaseException:
            close_chromium(cdp)
            raise
    finally:
        server.shutdown()
        server.server_close()
    return cdp, origin, timings


def open_app(cdp: CDP, origin: str, path: str = "/index.html", policy_installed: bool = False) -> str:
    """Open a page of the installed app; returns an attached session.

    A force-installed app is opened with PWA.launch (it lands in its own app window, target type
    'app'); dev-mode installs open fine in a new tab."""
    if not policy_installed:
        return cdp.open_page(origin + path)[1]
    cdp.send("PWA.launch", {"manifestId": origin + "/", "url": origin + path})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        targets = [t for t in cdp.send("Target.getTargets")["targetInfos"]
                   if t["type"] in ("page", "app") and t["url"].startswith(origin)]
        if targets:
            try:
                session = cdp.send("Target.attachToTarget", {"targetId": targets[-1]["targetId"],
                                                             "flatten": True})["sessionId"]
                cdp.send("Runtime.enable", session=session)
                cdp.send("Log.enable", session=session)
                cdp.evaluate(session, "1", timeout=5)
                return str(session)
            except IwaError:
                pass  # the launched tab may be moved into an app window: attach again
        time.sleep(0.25)
    raise IwaError(f"PWA.launch opened no page of {origin}")
