"""The AWS-LC crypto provider (socketiwa_crypto) against the real `cryptography`, on CPython.

Same inputs through both, outputs compared byte for byte; the same failures for tampered data,
bad signatures, untrusted/expired/wrong-host certificates; then aioquic itself running on the
provider (in a subprocess where the alias packages shadow the real ones) against aioquic on the
real `cryptography`, both directions. The provider is built for this host by
crypto/build_native.sh into build/crypto-native (build-wasm.sh runs it).
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography import exceptions as real_exc
from cryptography import x509 as rx509
from cryptography.hazmat.primitives import hashes as rhashes
from cryptography.hazmat.primitives import hmac as rhmac
from cryptography.hazmat.primitives import serialization as rser
from cryptography.hazmat.primitives.asymmetric import ec as rec
from cryptography.hazmat.primitives.asymmetric import ed25519 as red
from cryptography.hazmat.primitives.asymmetric import padding as rpad
from cryptography.hazmat.primitives.asymmetric import rsa as rrsa
from cryptography.hazmat.primitives.asymmetric import x25519 as rx
from cryptography.hazmat.primitives.ciphers import Cipher as RCipher
from cryptography.hazmat.primitives.ciphers import aead as raead
from cryptography.hazmat.primitives.ciphers import algorithms as ralg
from cryptography.hazmat.primitives.ciphers import modes as rmodes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF as RHKDF
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand as RHKDFExpand
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
PROVIDER = ROOT / "build" / "crypto-native"
if not (PROVIDER / "socketiwa_crypto").is_dir():
    pytest.skip("crypto provider not built for this host: run build-wasm.sh (or crypto/build_native.sh)",
                allow_module_level=True)
sys.path.append(str(PROVIDER))  # appended: `cryptography` stays the real one in this process

from socketiwa_crypto import asymmetric as pasym  # noqa: E402
from socketiwa_crypto import exceptions as pexc  # noqa: E402
from socketiwa_crypto import identity as pident  # noqa: E402
from socketiwa_crypto import primitives as p  # noqa: E402
from socketiwa_crypto import pyopenssl as pssl  # noqa: E402
from socketiwa_crypto import serialization as pser  # noqa: E402
from socketiwa_crypto import x509 as px509  # noqa: E402

LENGTHS = (0, 1, 15, 16, 17, 1200, 1500)
AEADS = [("AES-128-GCM", raead.AESGCM, p.AESGCM, 16), ("AES-256-GCM", raead.AESGCM, p.AESGCM, 32),
         ("ChaCha20-Poly1305", raead.ChaCha20Poly1305, p.ChaCha20Poly1305, 32)]


def rnd(n: int, seed: int) -> bytes:
    import random
    return random.Random(seed).randbytes(n)


# ---------------------------------------------------------------- symmetric
@pytest.mark.parametrize("name,real_cls,prov_cls,key_len", AEADS, ids=[a[0] for a in AEADS])
def test_aead_matches_and_rejects_tampering(name, real_cls, prov_cls, key_len):
    key, nonce = rnd(key_len, 1), rnd(12, 2)
    real, prov = real_cls(key), prov_cls(key)
    for n in LENGTHS:
        for aad in (b"", rnd(32, n)):
            data = rnd(n, n + 7)
            sealed = prov.encrypt(nonce, data, aad)
            assert sealed == real.encrypt(nonce, data, aad), (name, n)
            assert prov.decrypt(nonce, sealed, aad) == data
            tampered = bytearray(sealed)
            tampered[n // 2] ^= 1  # ciphertext (or tag when n == 0)
            for bad_ct, bad_aad in ((bytes(tampered), aad), (sealed, aad + b"x")):
                with pytest.raises(pexc.InvalidTag):
                    prov.decrypt(nonce, bad_ct, bad_aad)
                with pytest.raises(real_exc.InvalidTag):
                    real.decrypt(nonce, bad_ct, bad_aad)
    with pytest.raises(pexc.InvalidTag):
        prov.decrypt(nonce, b"short", b"")  # shorter than a tag
    with pytest.raises(ValueError):
        prov_cls(bytes(key_len + 1))
    with pytest.raises(ValueError):
        real_cls(bytes(key_len + 1))


@pytest.mark.parametrize("key_len", [16, 32])
def test_aes_ecb_header_protection_mask(key_len):
    key = rnd(key_len, 3)
    samples = rnd(16 * 5, 4)
    real = RCipher(ralg.AES(key), rmodes.ECB()).encryptor().update(samples)
    prov = p.Cipher(p.AES(key), p.ECB()).encryptor().update(samples)
    assert prov == real
    with pytest.raises(ValueError):
        p.Cipher(p.AES(key), p.ECB()).encryptor().update(b"not a block")


def test_chacha20_header_protection_mask():
    key = rnd(32, 5)
    for counter in (0, 1, 0xFFFFFFF0):
        nonce = counter.to_bytes(4, "little") + rnd(12, counter & 0xFF)
        real = RCipher(ralg.ChaCha20(key, nonce), mode=None).encryptor().update(bytes(5))
        prov = p.Cipher(p.ChaCha20(key, nonce), mode=None).encryptor().update(bytes(5))
        assert prov == real
    # aioquic keeps one context and resets the nonce to each packet's sample
    real_ctx = RCipher(ralg.ChaCha20(key, bytes(16)), mode=None).encryptor()
    prov_ctx = p.Cipher(p.ChaCha20(key, bytes(16)), mode=None).encryptor()
    for i in range(3):
        sample = rnd(16, 50 + i)
        real_ctx.reset_nonce(sample)
        prov_ctx.reset_nonce(sample)
        assert prov_ctx.update(bytes(5)) == real_ctx.update(bytes(5))


def test_hashes_hmac_hkdf():
    data = rnd(1000, 6)
    for real_alg, prov_alg in ((rhashes.SHA256(), p.SHA256()), (rhashes.SHA384(), p.SHA384())):
        rh, ph = rhashes.Hash(real_alg), p.Hash(prov_alg)
        rh.update(data[:300])
        ph.update(data[:300])
        rc, pc = rh.copy(), ph.copy()
        rh.update(data[300:])
        ph.update(data[300:])
        assert ph.finalize() == rh.finalize()
        assert pc.finalize() == rc.finalize()  # the copy kept only the first part
        with pytest.raises(pexc.AlreadyFinalized):
            ph.update(b"x")
        rm, pm = rhmac.HMAC(b"k" * 32, real_alg), p.HMAC(b"k" * 32, prov_alg)
        rm.update(data)
        pm.update(data)
        assert pm.finalize() == rm.finalize()
        prk = b"s" * 32
        assert p.HKDFExpand(prov_alg, 48, b"info").derive(prk) == RHKDFExpand(real_alg, 48, b"info").derive(prk)
        assert p.HKDF(prov_alg, 40, b"salt", b"i").derive(data) == RHKDF(real_alg, 40, b"salt", b"i").derive(data)
    bad = p.HMAC(b"k", p.SHA256())
    bad.update(b"data")
    with pytest.raises(pexc.InvalidSignature):
        bad.verify(b"\0" * 32)


# ---------------------------------------------------------------- key exchange
def test_x25519_exchange_both_ways():
    raw = rnd(32, 8)
    real_priv = rx.X25519PrivateKey.from_private_bytes(raw)
    prov_priv = pasym.X25519PrivateKey.from_private_bytes(raw)
    raw_pub = rser.Encoding.Raw, rser.PublicFormat.Raw
    assert prov_priv.public_key().public_bytes(pser.Encoding.Raw, pser.PublicFormat.Raw) == \
        real_priv.public_key().public_bytes(*raw_pub)
    real_peer, prov_peer = rx.X25519PrivateKey.generate(), pasym.X25519PrivateKey.generate()
    prov_peer_pub = prov_peer.public_key().public_bytes(pser.Encoding.Raw, pser.PublicFormat.Raw)
    assert prov_priv.exchange(pasym.X25519PublicKey.from_public_bytes(real_peer.public_key().public_bytes(*raw_pub))) \
        == real_peer.exchange(rx.X25519PublicKey.from_public_bytes(
            prov_priv.public_key().public_bytes(pser.Encoding.Raw, pser.PublicFormat.Raw)))
    assert real_priv.exchange(rx.X25519PublicKey.from_public_bytes(prov_peer_pub)) == \
        prov_peer.exchange(pasym.X25519PublicKey.from_public_bytes(real_priv.public_key().public_bytes(*raw_pub)))
    with pytest.raises(ValueError):
        pasym.X25519PublicKey.from_public_bytes(b"short")
    with pytest.raises(pexc.UnsupportedAlgorithm):
        pasym.X448PrivateKey.generate()


@pytest.mark.parametrize("curve", ["SECP256R1", "SECP384R1", "SECP521R1"])
def test_ecdh_both_ways(curve):
    real_key = rec.generate_private_key(getattr(rec, curve)())
    prov_key = pasym.generate_private_key(getattr(pasym, curve)())
    x962 = rser.Encoding.X962, rser.PublicFormat.UncompressedPoint
    prov_point = prov_key.public_key().public_bytes(pser.Encoding.X962, pser.PublicFormat.UncompressedPoint)
    real_point = real_key.public_key().public_bytes(*x962)
    real_peer = rec.EllipticCurvePublicKey.from_encoded_point(getattr(rec, curve)(), prov_point)
    prov_peer = pasym.EllipticCurvePublicKey.from_encoded_point(getattr(pasym, curve)(), real_point)
    real_secret = real_key.exchange(rec.ECDH(), real_peer)
    prov_secret = prov_key.exchange(pasym.ECDH(), prov_peer)
    assert prov_secret == real_secret
    with pytest.raises(ValueError):
        pasym.EllipticCurvePublicKey.from_encoded_point(getattr(pasym, curve)(), b"\x04" + bytes(len(real_point) - 1))


# ---------------------------------------------------------------- signatures
def _cross_sign(real_priv, prov_priv, sign_args_real, sign_args_prov, data=b"TLS 1.3, CertificateVerify" * 4):
    real_spki = real_priv.public_key().public_bytes(rser.Encoding.DER, rser.PublicFormat.SubjectPublicKeyInfo)
    prov_spki = prov_priv.public_key().public_bytes(pser.Encoding.DER, pser.PublicFormat.SubjectPublicKeyInfo)
    prov_pub, real_pub = pser.load_der_public_key(real_spki), rser.load_der_public_key(prov_spki)
    real_sig = real_priv.sign(data, *sign_args_real)
    prov_sig = prov_priv.sign(data, *sign_args_prov)
    prov_pub.verify(real_sig, data, *sign_args_prov)      # provider verifies what cryptography signed
    real_pub.verify(prov_sig, data, *sign_args_real)      # and the other way round
    bad = bytearray(real_sig)
    bad[len(bad) // 2] ^= 0x40
    with pytest.raises(pexc.InvalidSignature):
        prov_pub.verify(bytes(bad), data, *sign_args_prov)
    with pytest.raises(pexc.InvalidSignature):
        prov_pub.verify(real_sig, data + b"!", *sign_args_prov)
    return real_sig, prov_sig


@pytest.mark.parametrize("curve,hash_name", [("SECP256R1", "SHA256"), ("SECP384R1", "SHA384")])
def test_ecdsa_cross(curve, hash_name):
    real_priv = rec.generate_private_key(getattr(rec, curve)())
    der = real_priv.private_bytes(rser.Encoding.DER, rser.PrivateFormat.PKCS8, rser.NoEncryption())
    prov_priv = pser.load_der_private_key(der)
    _cross_sign(rec.generate_private_key(getattr(rec, curve)()), prov_priv,
                (rec.ECDSA(getattr(rhashes, hash_name)()),), (pasym.ECDSA(getattr(p, hash_name)()),))


def test_rsa_pss_and_pkcs1_cross():
    real_priv = rrsa.generate_private_key(65537, 2048)
    prov_priv = pasym.generate_rsa_private_key(65537, 2048)
    assert prov_priv.key_size == 2048
    for real_hash, prov_hash in ((rhashes.SHA256(), p.SHA256()), (rhashes.SHA384(), p.SHA384())):
        _cross_sign(real_priv, prov_priv,
                    (rpad.PSS(rpad.MGF1(real_hash), rpad.PSS.DIGEST_LENGTH), real_hash),
                    (pasym.PSS(pasym.MGF1(prov_hash), pasym.PSS.DIGEST_LENGTH), prov_hash))
        _cross_sign(real_priv, prov_priv, (rpad.PKCS1v15(), real_hash), (pasym.PKCS1v15(), prov_hash))
    # PKCS#1 v1.5 is deterministic: the same key signs the same bytes
    der = real_priv.private_bytes(rser.Encoding.DER, rser.PrivateFormat.PKCS8, rser.NoEncryption())
    same = pser.load_der_private_key(der)
    assert same.sign(b"m", pasym.PKCS1v15(), p.SHA256()) == real_priv.sign(b"m", rpad.PKCS1v15(), rhashes.SHA256())
    assert same.public_key().public_numbers().n == real_priv.public_key().public_numbers().n


def test_ed25519_identical_signatures():
    raw = rnd(32, 9)
    real_priv = red.Ed25519PrivateKey.from_private_bytes(raw)
    prov_priv = pasym.Ed25519PrivateKey.from_private_bytes(raw)
    assert prov_priv.sign(b"hello") == real_priv.sign(b"hello")  # Ed25519 is deterministic
    _cross_sign(red.Ed25519PrivateKey.generate(), pasym.Ed25519PrivateKey.generate(), (), ())


# ---------------------------------------------------------------- keys and certificates
def test_private_key_pem_round_trip():
    for real_priv in (rec.generate_private_key(rec.SECP256R1()), rrsa.generate_private_key(65537, 2048),
                      red.Ed25519PrivateKey.generate()):
        pkcs8 = real_priv.private_bytes(rser.Encoding.PEM, rser.PrivateFormat.PKCS8, rser.NoEncryption())
        prov = pser.load_pem_private_key(pkcs8, password=None)
        assert prov.private_bytes(pser.Encoding.PEM, pser.PrivateFormat.PKCS8, pser.NoEncryption()) == pkcs8
        spki = (rser.Encoding.DER, rser.PublicFormat.SubjectPublicKeyInfo)
        assert prov.public_key().public_bytes(pser.Encoding.DER, pser.PublicFormat.SubjectPublicKeyInfo) == \
            real_priv.public_key().public_bytes(*spki)
        if not isinstance(real_priv, red.Ed25519PrivateKey):
            trad = real_priv.private_bytes(rser.Encoding.PEM, rser.PrivateFormat.TraditionalOpenSSL,
                                           rser.NoEncryption())
            assert pser.load_pem_private_key(trad, None).private_bytes(
                pser.Encoding.PEM, pser.PrivateFormat.PKCS8, pser.NoEncryption()) == pkcs8
    with pytest.raises(ValueError):
        pser.load_pem_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None)
    enc = rec.generate_private_key(rec.SECP256R1()).private_bytes(
        rser.Encoding.PEM, rser.PrivateFormat.PKCS8, rser.BestAvailableEncryption(b"pw"))
    with pytest.raises(TypeError):
        pser.load_pem_private_key(enc, None)


def make_pki(*, leaf_days=(-1, 30), names=("localhost",), ips=("127.0.0.1",), ca_cn="provider test CA"):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rec.generate_private_key(rec.SECP256R1())
    ca_name = rx509.Name([rx509.NameAttribute(NameOID.COMMON_NAME, ca_cn)])
    ca = (rx509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(rx509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=2))
          .not_valid_after(now + datetime.timedelta(days=60))
          .add_extension(rx509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, rhashes.SHA256()))
    key = rec.generate_private_key(rec.SECP256R1())
    san = [rx509.DNSName(n) for n in names] + [rx509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    leaf = (rx509.CertificateBuilder().subject_name(rx509.Name([rx509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(rx509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=leaf_days[0]))
            .not_valid_after(now + datetime.timedelta(days=leaf_days[1]))
            .add_extension(rx509.SubjectAlternativeName(san), critical=False)
            .sign(ca_key, rhashes.SHA256()))
    pem = rser.Encoding.PEM
    return {"ca": ca.public_bytes(pem), "cert": leaf.public_bytes(pem),
            "key": key.private_bytes(pem, rser.PrivateFormat.PKCS8, rser.NoEncryption())}


def test_certificate_fields_match():
    pki = make_pki(names=("localhost", "*.example.test"), ips=("127.0.0.1", "::1"))
    real = rx509.load_pem_x509_certificate(pki["cert"])
    prov = px509.load_pem_x509_certificate(pki["cert"])
    assert prov.public_bytes(pser.Encoding.DER) == real.public_bytes(rser.Encoding.DER)
    assert prov.not_valid_before_utc == real.not_valid_before_utc
    assert prov.not_valid_after_utc == real.not_valid_after_utc
    assert prov.serial_number == real.serial_number
    assert [a.value for a in prov.subject] == [a.value for a in real.subject]
    assert prov.issuer.get_attributes_for_oid(px509.NameOID.COMMON_NAME)[0].value == "provider test CA"
    real_san = real.extensions.get_extension_for_class(rx509.SubjectAlternativeName).value
    prov_san = prov.extensions.get_extension_for_class(px509.SubjectAlternativeName).value
    assert prov_san.get_values_for_type(px509.DNSName) == real_san.get_values_for_type(rx509.DNSName)
    assert prov_san.get_values_for_type(px509.IPAddress) == real_san.get_values_for_type(rx509.IPAddress)
    assert prov.public_key().public_bytes(pser.Encoding.DER, pser.PublicFormat.SubjectPublicKeyInfo) == \
        real.public_key().public_bytes(rser.Encoding.DER, rser.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError):
        px509.load_der_x509_certificate(real.public_bytes(rser.Encoding.DER)[:-10])


def _verify(pki, ca_pem):
    store = pssl.X509Store()
    for cert in px509.load_pem_x509_certificates(ca_pem):
        store.add_cert(pssl.X509.from_cryptography(cert))
    leaf = pssl.X509.from_cryptography(px509.load_pem_x509_certificate(pki["cert"]))
    pssl.X509StoreContext(store, leaf, []).verify_certificate()


def test_chain_verification_and_identity():
    pki = make_pki()
    _verify(pki, pki["ca"])  # trusted: no exception
    with pytest.raises(pssl.X509StoreContextError, match="local issuer"):
        _verify(pki, make_pki(ca_cn="another CA")["ca"])  # no trusted issuer at all
    with pytest.raises(pssl.X509StoreContextError, match="signature failure"):
        _verify(pki, make_pki()["ca"])  # a trusted CA of the same name did not sign it
    expired = make_pki(leaf_days=(-30, -1))
    with pytest.raises(pssl.X509StoreContextError, match="expired"):
        _verify(expired, expired["ca"])
    cert = px509.load_pem_x509_certificate(pki["cert"])
    pident.verify_certificate_hostname(cert, "localhost")
    pident.verify_certificate_ip_address(cert, "127.0.0.1")
    with pytest.raises(pident.VerificationError):
        pident.verify_certificate_hostname(cert, "example.com")
    with pytest.raises(pident.VerificationError):
        pident.verify_certificate_ip_address(cert, "10.0.0.1")
    wild = px509.load_pem_x509_certificate(make_pki(names=("*.example.test",), ips=())["cert"])
    pident.verify_certificate_hostname(wild, "a.example.test")
    for host in ("example.test", "a.b.example.test"):
        with pytest.raises(pident.VerificationError):
            pident.verify_certificate_hostname(wild, host)


# ---------------------------------------------------------------- aioquic on the provider
PEER_SCRIPT = textwrap.dedent(r'''
    import asyncio, hashlib, json, os, sys, tempfile
    sys.path.insert(0, os.environ["PROVIDER"])   # the alias packages shadow the real ones
    import cryptography, OpenSSL, service_identity, certifi
    assert "crypto-native" in cryptography.__file__, cryptography.__file__
    from aioquic.asyncio import QuicConnectionProtocol, connect, serve
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import StreamDataReceived
    from aioquic.tls import CipherSuite
    args = json.loads(sys.argv[1])

    class Echo(QuicConnectionProtocol):
        def quic_event_received(self, event):
            if isinstance(event, StreamDataReceived):
                self._quic.send_stream_data(event.stream_id, event.data, end_stream=event.end_stream)

    class Client(QuicConnectionProtocol):
        last = None
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            Client.last = self
            self.buf, self.done = bytearray(), asyncio.get_running_loop().create_future()
        def quic_event_received(self, event):
            if isinstance(event, StreamDataReceived):
                self.buf += event.data
                if event.end_stream:
                    self.done.set_result(bytes(self.buf))

    async def main():
        if args["role"] == "server":
            config = QuicConfiguration(is_client=False, alpn_protocols=["echo"])
            d = tempfile.mkdtemp()
            for name in ("cert", "key"):
                open(os.path.join(d, name), "w").write(args[name])
            config.load_cert_chain(os.path.join(d, "cert"), os.path.join(d, "key"))
            server = await serve("127.0.0.1", 0, configuration=config, create_protocol=Echo)
            print(json.dumps({"port": server._transport.get_extra_info("sockname")[1]}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            return
        config = QuicConfiguration(is_client=True, alpn_protocols=["echo"], server_name=args["server_name"],
                                   cipher_suites=[CipherSuite[args["suite"]]],
                                   idle_timeout=args.get("idle_timeout", 60))
        config.load_verify_locations(cadata=args["ca"].encode())
        data = os.urandom(200_000)
        try:
            async with connect("127.0.0.1", args["port"], configuration=config, create_protocol=Client) as c:
                sid = c._quic.get_next_available_stream_id()
                c._quic.send_stream_data(sid, data, end_stream=True)
                c.transmit()
                echoed = await asyncio.wait_for(c.done, 20)
                ok = hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
                print(json.dumps({"ok": ok, "suite": CipherSuite(c._quic.tls.key_schedule.cipher_suite).name}))
        except ConnectionError as e:
            close = Client.last._quic._close_event
            print(json.dumps({"ok": False, "error": type(e).__name__, "reason": close.reason_phrase if close else "",
                              "code": close.error_code if close else None}))
    asyncio.run(main())
''')


def _run_peer(args: dict, **kw):
    env = dict(os.environ, PROVIDER=str(PROVIDER))
    return subprocess.run([sys.executable, "-c", PEER_SCRIPT, json.dumps(args)], env=env, capture_output=True,
                          text=True, timeout=60, **kw)


@pytest.fixture(scope="module")
def real_server():
    """aioquic with the real cryptography, serving echo."""
    import quic_peers
    certs = quic_peers.make_certs()
    lt = quic_peers.LoopThread()
    server, _ = quic_peers.start_aioquic_echo_server(lt, certs, retry=False)
    yield quic_peers.server_port(server), certs
    lt.run(_close(server))
    lt.stop()


async def _close(server):
    server.close()


@pytest.mark.parametrize("suite", ["AES_128_GCM_SHA256", "AES_256_GCM_SHA384", "CHACHA20_POLY1305_SHA256"])
def test_aioquic_client_on_provider(real_server, suite):
    port, certs = real_server
    out = _run_peer({"role": "client", "port": port, "ca": certs["ca"].decode(), "server_name": "localhost",
                     "suite": suite})
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"ok": True, "suite": suite}


def test_aioquic_client_on_provider_rejects_wrong_host(real_server):
    port, certs = real_server
    out = _run_peer({"role": "client", "port": port, "ca": certs["ca"].decode(), "server_name": "example.com",
                     "suite": "AES_128_GCM_SHA256"})
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"] is False and result["error"] == "ConnectionError", result
    assert "hostname" in result["reason"].lower() and "example.com" in result["reason"], result


def test_aioquic_server_on_provider():
    import asyncio

    import quic_peers
    certs = quic_peers.make_certs()
    proc = subprocess.Popen([sys.executable, "-c", PEER_SCRIPT, json.dumps(
        {"role": "server", "cert": certs["cert"].decode(), "key": certs["key"].decode()})],
        env=dict(os.environ, PROVIDER=str(PROVIDER)), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()[-3000:]
        port = json.loads(line)["port"]
        data = rnd(300_000, 11)
        import hashlib
        digest = asyncio.run(quic_peers.aioquic_echo_client(port, certs, data, timeout=30))
        assert digest == hashlib.sha256(data).hexdigest()
    finally:
        proc.stdin.close()
        proc.wait(10)


def test_certifi_fallback_bundle_is_shipped(monkeypatch):
    """Pyodide has no system CA store: certifi.where() falls back to the provider's own empty
    bundle, which must exist in the build (a missing file made aioquic hang, not refuse)."""
    from socketiwa_crypto import _aliases
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setattr(_aliases, "_CA_CANDIDATES", ())
    path = _aliases.certifi_where()
    assert os.path.isfile(path) and os.path.getsize(path) == 0
    store = pssl.X509Store()
    store.load_locations(path)  # loads nothing, raises nothing
    assert store._roots == []


def test_unknown_key_algorithms_are_unsupported():
    """A well-formed key of an algorithm AWS-LC lacks is UnsupportedAlgorithm (as cryptography
    says for one it lacks), not ValueError; a malformed key stays ValueError."""
    from test_crypto_attacks import der, der_items, der_oid
    spki = rec.generate_private_key(rec.SECP256R1()).public_key().public_bytes(
        rser.Encoding.DER, rser.PublicFormat.SubjectPublicKeyInfo)
    alg, bits = der_items(der_items(spki)[0][1])
    alg_items = der_items(alg[1])
    alg_items[0] = (0x06, der_items(der_oid("1.2.3.4.5.6"))[0][1])
    unknown = der(0x30, der(0x30, b"".join(der(t, c) for t, c in alg_items)) + der(*bits))
    with pytest.raises(real_exc.UnsupportedAlgorithm):
        rser.load_der_public_key(unknown)
    with pytest.raises(pexc.UnsupportedAlgorithm):
        pser.load_der_public_key(unknown)
    from cryptography.hazmat.primitives.asymmetric import ed448
    ed = ed448.Ed448PrivateKey.generate()  # absent from AWS-LC
    ed_spki = ed.public_key().public_bytes(rser.Encoding.DER, rser.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(pexc.UnsupportedAlgorithm):
        pser.load_der_public_key(ed_spki)
    with pytest.raises(pexc.UnsupportedAlgorithm):
        pser.load_der_private_key(ed.private_bytes(rser.Encoding.DER, rser.PrivateFormat.PKCS8, rser.NoEncryption()))
    for garbage in (b"\x30\x03\x02\x01\x00", spki[:-5], b""):
        with pytest.raises(ValueError):
            pser.load_der_public_key(garbage)
        with pytest.raises(ValueError):
            rser.load_der_public_key(garbage)


@pytest.fixture(scope="module")
def bad_time_server():
    """aioquic (real cryptography) serving a certificate whose notBefore is a UTCTime with a
    +0100 offset: bytes the real package refuses to load, so the server is handed the DER as is."""
    import quic_peers
    from aioquic.asyncio import serve
    from aioquic.quic.configuration import QuicConfiguration
    from test_crypto_attacks import issue, resign, with_validity
    root = issue("root", ca=True)
    leaf = issue("leaf", root, sans=("localhost",))
    after = b"\x17" + (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)).strftime(
        "%y%m%d%H%M%SZ").encode()
    bad_der = resign(leaf.cert, root.key, with_validity(b"\x17" + b"250101000000+0100", after))
    with pytest.raises(ValueError):
        rx509.load_der_x509_certificate(bad_der)

    class RawCertificate:  # all aioquic's server does with its certificate is send its DER
        def public_bytes(self, encoding):
            return bad_der

    config = QuicConfiguration(is_client=False, alpn_protocols=["echo"])
    config.certificate, config.private_key = RawCertificate(), leaf.key
    lt = quic_peers.LoopThread()
    server = lt.run(serve("127.0.0.1", 0, configuration=config))
    yield quic_peers.server_port(server), root.cert.public_bytes(rser.Encoding.PEM)
    lt.run(_close(server))
    lt.stop()


def test_aioquic_on_provider_refuses_malformed_validity_with_an_alert(bad_time_server):
    """The provider refuses the certificate when aioquic loads it, so aioquic answers with a
    bad_certificate alert. (It used to accept it at load and fail when reading the date, an
    exception aioquic does not catch: the handshake stalled until the idle timeout.)"""
    port, ca = bad_time_server
    out = _run_peer({"role": "client", "port": port, "ca": ca.decode(), "server_name": "localhost",
                     "suite": "AES_128_GCM_SHA256", "idle_timeout": 30})
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"ok": False, "error": "ConnectionError", "reason": "Certificate could not be parsed",
                      "code": 0x100 + 42}, result  # CRYPTO_ERROR + TLS bad_certificate(42)
