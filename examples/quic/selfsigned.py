"""A self-signed ECDSA P-256 certificate for 127.0.0.1 / localhost, made in pure Python.

`cryptography`'s CertificateBuilder is not available in Pyodide (socketiwa's crypto provider
covers what aioquic needs: keys and signatures, not X.509 building), so the DER is written
here and signed with the key. The same code runs on CPython and inside the IWA.

Chromium accepts such a certificate without any CA when it is pinned:
  * WebTransport: `new WebTransport(url, {serverCertificateHashes: [{algorithm: "sha-256",
    value: <der_sha256>}]})` (ECDSA and at most 14 days of validity are required);
  * fetch / WebSocket over HTTP/3: `--ignore-certificate-errors-spki-list=<spki_sha256_b64>`
    with `--origin-to-force-quic-on=127.0.0.1:PORT`.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _seq(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def _int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        while p > 0x7F:
            p >>= 7
            chunk.insert(0, 0x80 | (p & 0x7F))
        body += bytes(chunk)
    return _der(0x06, bytes(body))


def _time(t: datetime.datetime) -> bytes:
    return _der(0x17, t.strftime("%y%m%d%H%M%SZ").encode())   # UTCTime: fine until 2049


ECDSA_WITH_SHA256 = _seq(_oid("1.2.840.10045.4.3.2"))


@dataclass
class Certificate:
    cert_pem: bytes
    key_pem: bytes
    der_sha256: bytes          # for WebTransport's serverCertificateHashes
    spki_sha256_b64: str       # for Chromium's --ignore-certificate-errors-spki-list

    @property
    def der_sha256_b64(self) -> str:
        return base64.b64encode(self.der_sha256).decode()


def make_certificate(name: str = "localhost", days: int = 10) -> Certificate:
    """A fresh key and a certificate for ``name``, 127.0.0.1 and ::1, valid ``days`` days."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    subject = _seq(_der(0x31, _seq(_oid("2.5.4.3"), _der(0x0C, name.encode()))))  # CN=name
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names = _seq(_der(0x82, name.encode()),                        # dNSName
                     _der(0x87, bytes([127, 0, 0, 1])),                # iPAddress
                     _der(0x87, bytes(15) + b"\x01"))
    extensions = _der(0xA3, _seq(_seq(_oid("2.5.29.17"), _der(0x04, alt_names))))
    tbs = _seq(_der(0xA0, _int(2)),                                    # version 3
               _int(int.from_bytes(os.urandom(16), "big") >> 1),       # positive serial
               ECDSA_WITH_SHA256, subject,
               _seq(_time(now - datetime.timedelta(minutes=5)), _time(now + datetime.timedelta(days=days))),
               subject, spki, extensions)
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = _seq(tbs, ECDSA_WITH_SHA256, _der(0x03, b"\x00" + signature))
    b64 = base64.encodebytes(der).replace(b"\n", b"")
    cert_pem = (b"-----BEGIN CERTIFICATE-----\n"
                + b"\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
                + b"\n-----END CERTIFICATE-----\n")
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return Certificate(cert_pem, key_pem, hashlib.sha256(der).digest(),
                       base64.b64encode(hashlib.sha256(spki).digest()).decode())
