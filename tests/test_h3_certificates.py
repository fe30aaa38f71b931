"""socketiwa.h3.self_signed_certificate: the pure-Python certificate read back by an independent
X.509 parser (cryptography's), its hashes, a TLS handshake that trusts it, and typed errors for
bad input. (In the IWA the QUIC examples make theirs with it: tests/test_examples.py.)"""
import asyncio
import base64
import datetime
import hashlib
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from socketiwa import h3
from socketiwa.errors import InvalidOptionError


def test_certificate_parses_and_its_hashes_match():
    cert = h3.self_signed_certificate("media.local", days=7, addresses=("127.0.0.1", "10.1.2.3", "::1"))
    parsed = x509.load_pem_x509_certificate(cert.cert_pem)
    assert parsed.version == x509.Version.v3
    assert parsed.subject == parsed.issuer
    assert parsed.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "media.local"
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["media.local"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(a) for a in ("127.0.0.1", "10.1.2.3", "::1")]
    now = datetime.datetime.now(datetime.timezone.utc)
    assert parsed.not_valid_before_utc <= now < parsed.not_valid_after_utc
    assert datetime.timedelta(days=6, hours=23) < parsed.not_valid_after_utc - now <= datetime.timedelta(days=7)
    # self-signed with the key it comes with (ECDSA P-256, as WebTransport pinning requires)
    key = serialization.load_pem_private_key(cert.key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    parsed.public_key().verify(parsed.signature, parsed.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    der = parsed.public_bytes(serialization.Encoding.DER)
    assert cert.der_sha256 == hashlib.sha256(der).digest()
    assert cert.server_certificate_hashes() == [{"algorithm": "sha-256",
                                                 "value": base64.b64encode(hashlib.sha256(der).digest()).decode()}]
    spki = parsed.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    assert cert.spki_sha256_b64 == base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert cert.chromium_flags(4433) == ["--origin-to-force-quic-on=127.0.0.1:4433",
                                         f"--ignore-certificate-errors-spki-list={cert.spki_sha256_b64}"]
    # each call makes a new key
    assert h3.self_signed_certificate().spki_sha256_b64 != cert.spki_sha256_b64


def test_a_client_that_trusts_it_completes_the_handshake_and_another_does_not():
    async def main():
        async def app(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        cert, other = h3.self_signed_certificate(), h3.self_signed_certificate()
        server = await h3.serve("127.0.0.1", 0, app=app,
                                configuration=h3.server_configuration(cert.cert_pem, cert.key_pem))
        try:
            for host in ("localhost", "127.0.0.1"):       # the name and the address both verify
                config = h3.client_configuration(cadata=cert.cert_pem, server_name=host)
                async with h3.connect("127.0.0.1", server.port, configuration=config) as client:
                    assert await (await client.get("/")).read() == b"ok"
            config = h3.client_configuration(cadata=other.cert_pem, server_name="localhost")
            with pytest.raises(ConnectionError):
                async with h3.connect("127.0.0.1", server.port, configuration=config) as client:
                    await client.get("/")
        finally:
            await server.aclose()
    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize("kwargs", [{"name": ""}, {"name": 5}, {"days": 0}, {"days": 1.5}, {"days": 5000},
                                    {"addresses": ("127.0.0.1", "not-an-ip")}])
def test_bad_input_is_a_typed_error(kwargs):
    with pytest.raises(InvalidOptionError):
        h3.self_signed_certificate(**kwargs)
