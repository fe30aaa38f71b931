"""The signed bundle (.swbn) really installs and runs, in Debian's Chromium 150.

Debian's Chromium 156 has no Signed Web Bundle parser (the rest of the suite uses dev-mode proxy
installs there); its 150 build, unpacked by scripts/chromium150.sh, has one. Two routes:

- dev-mode install of the .swbn from its file (what a developer does);
- enterprise force-install: IsolatedWebAppInstallForceList policy (in a private mount
  namespace) + a local allowlist component (how organizations deploy IWAs).

Each test builds an app with the socketiwa CLI's build, installs the bundle with no HTTP server
serving the app, proves the page comes from the bundle (a random marker that exists only inside
it), and runs socket code in it: UDP to a CPython echo peer on loopback, the reply printed, the
exit code returned.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from socketiwa._app import chromium as cr
from socketiwa._app import launch, project

APP_MAIN = '''
import asyncio
import sys

import socketiwa


async def main():
    host, port = sys.argv[1], int(sys.argv[2])
    with open("marker.txt") as f:           # unpacked from the bundle's code zip
        print("marker:", f.read().strip())
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port)
    await sock.send(b"ping from the signed bundle")
    reply = await sock.receive(timeout=10)
    print("reply:", reply.data.decode())
    await sock.close()
    return 0 if reply.data == b"echo: ping from the signed bundle" else 3


sys.exit(asyncio.run(main()))
'''


@pytest.fixture(autouse=True)
def _iwa_selected(request):
    if "iwa" not in request.config.getoption("--runtimes"):
        pytest.skip("the iwa runtime is not selected (--runtimes)")


@pytest.fixture(scope="module")
def chromium150():
    if not cr.CHROMIUM150.exists():
        pytest.fail("Chromium 150 is not unpacked: run 'bash scripts/chromium150.sh' (scripts/setup.sh does)")
    assert cr.has_bundle_parser(cr.CHROMIUM150)
    return str(cr.CHROMIUM150)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The app, built and signed; its key lives in the test's own config dir."""
    base = tmp_path_factory.mktemp("signed")
    app = base / "sbapp"
    app.mkdir()
    (app / "main.py").write_text(APP_MAIN)
    marker = secrets.token_hex(16)
    (app / "marker.txt").write_text(marker + "\n")
    (app / "pyproject.toml").write_text('[project]\nname = "sbapp"\nversion = "1.2.3"\n')
    (app / "icon.png").write_bytes((Path(cr.__file__).parent / "template" / "icon.png").read_bytes())
    res = project.build(app, key=base / "keys" / "sbapp.pem")
    return res, marker


@pytest.fixture
def udp_echo_peer():
    """A plain CPython UDP echo peer on loopback: replies b'echo: ' + datagram."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    stop = threading.Event()
    seen = []

    def loop():
        while not stop.is_set():
            try:
                data, addr = s.recvfrom(65535)
            except TimeoutError:
                continue
            seen.append(data)
            s.sendto(b"echo: " + data, addr)
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield s.getsockname()[1], seen
    stop.set()
    t.join(2)
    s.close()


def internals(cdp) -> str:
    """chrome://web-app-internals as JSON text (read once, after the install: loading chrome://
    pages while waiting for an install would hold Chromium's startup fence up)."""
    target, session = cdp.open_page("chrome://web-app-internals")
    expr = ("(()=>{const a=document.querySelector('web-app-internals-app');"
            "if(a&&a.shadowRoot){const j=a.shadowRoot.querySelector('#json');if(j)return j.textContent}"
            "const p=document.querySelector('pre');"
            "return p?p.textContent:(document.body?document.body.innerText:'')})()")
    text = ""
    for _ in range(40):
        text = cdp.evaluate(session, expr) or ""
        if '"InstalledWebApps"' in text:
            break
        time.sleep(0.25)
    cdp.send("Target.closeTarget", {"targetId": target})
    return text


def check_installed_from_bundle(sess, res, marker, peer, output):
    """The app page is the bundle's: origin, its files, no server; the program ran its socket code."""
    port, seen = peer
    code = launch.follow(sess, output=lambda stream, text: output.append((stream, text)), timeout=240)
    text = "\n".join(t for _, t in output)
    assert code == 0, text
    assert f"marker: {marker}" in text           # a file that exists only inside the bundle
    assert "reply: echo: ping from the signed bundle" in text
    assert seen == [b"ping from the signed bundle"]   # the CPython peer really got it
    assert sess.cdp.evaluate(sess.session, "location.origin") == res.origin.rstrip("/")
    app_json = sess.cdp.evaluate(sess.session, "fetch('/app/app.json').then(r => r.json())")
    assert app_json["name"] == "sbapp" and app_json["version"] == "1.2.3"
    return app_record(internals(sess.cdp), res.origin)


def app_record(text: str, origin: str) -> dict:
    """The installed app's record in web-app-internals (the dict whose start_url is origin)."""
    def walk(node):
        if isinstance(node, dict):
            if node.get("start_url") == origin and "isolation_data" in node:
                return node
            node = list(node.values())
        if isinstance(node, list):
            for child in node:
                if (found := walk(child)) is not None:
                    return found
        return None
    found = walk(json.loads(text))
    assert found is not None, f"{origin} not in web-app-internals: {text[:1000]}"
    return found


def check_record(record: dict, res, source: str, dev_mode: bool) -> None:
    """Installed as a bundle Chromium owns, signed by our key, by the expected route."""
    assert record["sources"] == [source]
    iso = record["isolation_data"]
    assert iso["isolated_web_app_location"]["owned_bundle"]["dev_mode"] is dev_mode
    public_key = base64.b32decode(res.id.upper() + "=" * (-len(res.id) % 8))[:32]   # the ID is the key + type bytes
    (sig,) = iso["integrity_block_data"]["signatures"]
    assert base64.b64decode(sig["ed25519"]["public_key"]) == public_key
    assert iso["version"] == "1.2.3"


def test_signed_bundle_dev_install_from_file(chromium150, built, udp_echo_peer):
    res, marker = built
    argv = ["127.0.0.1", str(udp_echo_peer[0])]
    page = "/index.html?" + urllib.parse.urlencode({"argv": json.dumps(argv)})
    sess = launch.install(res, how="signed", chromium=chromium150, page=page)
    try:
        assert "Chrome/150." in sess.cdp.product
        output: list = []
        record = check_installed_from_bundle(sess, res, marker, udp_echo_peer, output)
        check_record(record, res, "IwaUserInstalled", dev_mode=True)
    finally:
        sess.close()


def _can_use_mount_namespace() -> bool:
    if os.geteuid() == 0:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_use_mount_namespace(), reason="policy installs need a private mount "
                    "namespace (root or user namespaces) to give Chromium its own /etc/chromium")
def test_signed_bundle_policy_force_install(chromium150, built, udp_echo_peer):
    res, marker = built
    argv = ["127.0.0.1", str(udp_echo_peer[0])]
    page = "/index.html?" + urllib.parse.urlencode({"argv": json.dumps(argv)})
    sess = launch.install(res, how="policy", chromium=chromium150, page=page)
    try:
        assert "Chrome/150." in sess.cdp.product
        # The update server that handed Chromium the bundle is gone before the app opened.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", int(sess.timings["update_port"])), timeout=2).close()
        assert sess.timings["startup_complete_ms"] > 0
        output: list = []
        record = check_installed_from_bundle(sess, res, marker, udp_echo_peer, output)
        check_record(record, res, "IwaPolicy", dev_mode=False)
    finally:
        sess.close()


def test_policy_install_needs_the_allowlist(chromium150, built, tmp_path, monkeypatch):
    """Without the allowlist component the same force-install is refused: the component is what
    makes the policy route work, not something else."""
    if not _can_use_mount_namespace():
        pytest.skip("needs a private mount namespace")
    res, _ = built
    monkeypatch.setattr(cr, "write_key_distribution_component", lambda *a, **k: None)
    with pytest.raises(cr.IwaError, match="did not finish"):
        cr.policy_force_install(tmp_path, res.swbn, res.id, res.app.version, chromium150, timeout=20)


def test_chromium156_has_no_bundle_parser():
    """Why the signed routes use 150: the system's 156 cannot open a .swbn."""
    if not Path(cr.SYSTEM_CHROMIUM).exists():
        pytest.skip("no system Chromium")
    version = cr.chromium_version(cr.SYSTEM_CHROMIUM)
    if " 156." not in version:
        pytest.skip(f"system Chromium is {version}")
    assert not cr.has_bundle_parser(cr.SYSTEM_CHROMIUM)
