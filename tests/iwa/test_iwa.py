"""What only the real Chromium IWA can show: the signed bundle, and permission denials."""
import base64
import hashlib
import io
import json
import struct
import sys
from pathlib import Path

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from iwa.runner import CHROMIUM, ROOT, build_app, start_iwa_runner

IB_MAGIC = "🖋📦".encode()
BUNDLE_MAGIC = "🌐📦".encode()


def _be_prefixed(*parts: bytes) -> bytes:
    return b"".join(struct.pack(">Q", len(p)) + p for p in parts)


def verify_signed_bundle(data: bytes) -> dict:
    """Check a .swbn independently of wbn-sign: returns {id, urls}; raises on any mismatch."""
    stream = io.BytesIO(data)
    magic, version, attributes, signatures = cbor2.CBORDecoder(stream).decode()
    ib_len = stream.tell()
    assert magic == IB_MAGIC and version == b"2b\x00\x00", "not a v2 integrity block"
    bundle = data[ib_len:]
    assert len(signatures) == 1, "expected exactly one signature"
    sig_attrs, signature = signatures[0]
    public_key = sig_attrs["ed25519PublicKey"]
    # The signed message: SHA-512 of the bundle, the integrity block without signatures and the
    # signature's attributes, each prefixed by its length as a 64-bit big-endian number.
    unsigned_ib = cbor2.dumps([IB_MAGIC, b"2b\x00\x00", attributes, []], canonical=True)
    message = _be_prefixed(hashlib.sha512(bundle).digest(), unsigned_ib, cbor2.dumps(sig_attrs, canonical=True))
    Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    expected_id = base64.b32encode(public_key + b"\x00\x01\x02").decode().rstrip("=").lower()
    assert attributes["webBundleId"] == expected_id, "web bundle ID does not match the signing key"
    top = cbor2.loads(bundle)
    assert top[0] == BUNDLE_MAGIC and top[1] == b"b2\x00\x00", "not a b2 web bundle"
    names = cbor2.loads(top[2])[0::2]
    index = top[3][names.index("index")]
    return {"id": expected_id, "urls": set(index)}


@pytest.fixture(scope="module")
def built_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    info = build_app(out / "app", swbn=out / "app.swbn")
    return info, (out / "app.swbn").read_bytes()


def test_signed_bundle_is_valid_and_complete(built_bundle):
    info, data = built_bundle
    checked = verify_signed_bundle(data)
    assert checked["id"] == info["id"]
    origin = f"isolated-app://{info['id']}/"
    expected = {origin + str(p.relative_to(info["devDir"])) for p in Path(info["devDir"]).rglob("*") if p.is_file()}
    assert len(expected) == info["files"] and origin + ".well-known/manifest.webmanifest" in expected
    assert expected <= checked["urls"], sorted(expected - checked["urls"])[:5]


def test_tampered_bundle_fails_verification(built_bundle):
    _, data = built_bundle
    tampered = bytearray(data)
    tampered[-100] ^= 0x01                      # one bit inside the bundle's content
    with pytest.raises(InvalidSignature):
        verify_signed_bundle(bytes(tampered))


needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium not installed")

PROBE = '''
import socketiwa
out = {"state": await socketiwa.permissions.state(), "errors": {}}
try:
    await socketiwa.assert_permissions("direct_sockets", "loopback_network")
    out["assert"] = "passed"
except socketiwa.PermissionDeniedError as e:
    out["assert"] = list(e.missing)
for name, opener in (("udp", lambda: socketiwa.create_udp(remote_address="127.0.0.1", remote_port=9)),
                     ("udp_bound", lambda: socketiwa.create_udp(local_address="127.0.0.1")),
                     ("tcp", lambda: socketiwa.create_tcp("127.0.0.1", 9)),
                     ("server", lambda: socketiwa.create_tcp_server("127.0.0.1"))):
    try:
        sock = await opener()
        await sock.close()
        out["errors"][name] = None
    except Exception as e:
        out["errors"][name] = [type(e).__name__, isinstance(e, PermissionError), str(e)]
import json
json.dumps(out)
'''


@needs_chromium
def test_iwa_without_direct_sockets_policy(tmp_path):
    """The app's manifest lacks 'direct-sockets': every socket is refused with a typed error."""
    manifest = json.loads((ROOT / "iwa-shell/app/.well-known/manifest.webmanifest").read_text())
    del manifest["permissions_policy"]["direct-sockets"]
    path = tmp_path / "manifest.webmanifest"
    path.write_text(json.dumps(manifest))
    runner = start_iwa_runner(manifest=path)
    try:
        out = json.loads(runner.run_async(PROBE))
    finally:
        runner.quit()
    assert out["state"]["direct_sockets"] == "denied"
    assert out["assert"] == ["direct_sockets"]
    for name, err in out["errors"].items():
        assert err is not None and err[0] == "PermissionDeniedError" and err[1], (name, err)
        assert "Permissions-Policy: direct-sockets are disabled" in err[2]


@needs_chromium
def test_iwa_without_local_network_grants():
    """Installed with no Local Network Access grants: loopback is refused, typed."""
    runner = start_iwa_runner(grants=())
    try:
        out = json.loads(runner.run_async(PROBE))
    finally:
        runner.quit()
    assert out["state"]["loopback_network"] != "granted"
    assert out["assert"] == ["loopback_network"]
    for name in ("udp", "udp_bound", "tcp"):
        err = out["errors"][name]
        assert err is not None and err[0] == "PermissionDeniedError", (name, err)
        assert "Access to local network is blocked" in err[2]
    print("server without grants:", out["errors"]["server"], file=sys.stderr)
