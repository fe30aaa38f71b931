"""Self-signed certificates for servers that Chromium reaches by pinning, made in pure Python.

``self_signed_certificate()`` makes a fresh ECDSA P-256 key and a certificate for a name and
loopback addresses, on CPython and in Pyodide alike: `cryptography`'s CertificateBuilder does
not exist in Pyodide (socketiwa's crypto provider covers what aioquic needs, keys and
signatures, not X.509 building), so the DER is written here and signed with the key.

Chromium accepts such a certificate without any CA when it is pinned:

* WebTransport: ``new WebTransport(url, {serverCertificateHashes: cert.server_certificate_hashes()})``
  (Chromium requires ECDSA and a validity of at most 14 days, hence ``days=10``);
* navigation, ``fetch`` and WebSocket over HTTP/3: start Chromium with ``cert.chromium_flags(port)``
  (``--origin-to-force-quic-on`` and ``--ignore-certificate-errors-spki-list``).

Other clients take ``cert.cert_pem`` as their trust anchor (``h3.client_configuration(cadata=...)``).
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..errors import InvalidOptionError

# Chromium's limit for certificates pinned by serverCertificateHashes (WebTransport).
WEBTRANSPORT_MAX_DAYS = 14


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


_ECDSA_WITH_SHA256 = _seq(_oid("1.2.840.10045.4.3.2"))


@dataclass(frozen=True)
class SelfSignedCertificate:
    """A certificate, its private key and the hashes Chromium pins it by."""

    cert_pem: bytes
    key_pem: bytes
    der_sha256: bytes          # SHA-256 of the certificate (WebTransport's serverCertificateHashes)
    spki_sha256_b64: str       # base64 SHA-256 of the public key (--ignore-certificate-errors-spki-list)

    @property
    def der_sha256_b64(self) -> str:
        """``der_sha256`` in base64, as a page turns it back into bytes for WebTransport."""
        return base64.b64encode(self.der_sha256).decode()

    def server_certificate_hashes(self) -> list[dict[str, str]]:
        """The ``serverCertificateHashes`` option of ``new WebTransport()`` as JSON-able data
        (the value in base64: the page decodes it into a Uint8Array)."""
        return [{"algorithm": "sha-256", "value": self.der_sha256_b64}]

    def chromium_flags(self, port: int, host: str = "127.0.0.1") -> list[str]:
        """Chromium command-line flags that make navigation and ``fetch`` to
        ``https://host:port`` use HTTP/3 and accept this certificate."""
        return [f"--origin-to-force-quic-on={host}:{port}",
                f"--ignore-certificate-errors-spki-list={self.spki_sha256_b64}"]


def self_signed_certificate(name: str = "localhost", days: int = 10,
                            addresses: tuple[str, ...] = ("127.0.0.1", "::1")) -> SelfSignedCertificate:
    """A fresh ECDSA P-256 key and a self-signed certificate for the DNS ``name`` and the IP
    ``addresses``, valid from five minutes ago for ``days`` days (at most 14 for WebTransport).
    Raises InvalidOptionError for an empty name, a bad address or days outside 1..3650."""
    if not isinstance(name, str) or not name or len(name) > 253:
        raise InvalidOptionError(f"certificate name {name!r}: give a DNS name such as 'localhost'")
    if not isinstance(days, int) or not 1 <= days <= 3650:
        raise InvalidOptionError(f"certificate days {days!r}: give 1..3650 (at most "
                                 f"{WEBTRANSPORT_MAX_DAYS} for WebTransport's serverCertificateHashes)")
    try:
        ips = [ipaddress.ip_address(a).packed for a in addresses]
    except ValueError as e:
        raise InvalidOptionError(f"certificate addresses: {e}") from None
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    subject = _seq(_der(0x31, _seq(_oid("2.5.4.3"), _der(0x0C, name.encode()))))  # CN=name
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names = _seq(_der(0x82, name.encode()),                       # dNSName
                     *(_der(0x87, ip) for ip in ips))                  # iPAddress
    extensions = _der(0xA3, _seq(_seq(_oid("2.5.29.17"), _der(0x04, alt_names))))
    tbs = _seq(_der(0xA0, _int(2)),                                   # version 3
               _int(int.from_bytes(os.urandom(16), "big") >> 1),      # positive serial
               _ECDSA_WITH_SHA256, subject,
               _seq(_time(now - datetime.timedelta(minutes=5)), _time(now + datetime.timedelta(days=days))),
               subject, spki, extensions)
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = _seq(tbs, _ECDSA_WITH_SHA256, _der(0x03, b"\x00" + signature))
    b64 = base64.encodebytes(der).replace(b"\n", b"")
    cert_pem = (b"-----BEGIN CERTIFICATE-----\n"
                + b"\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
                + b"\n-----END CERTIFICATE-----\n")
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return SelfSignedCertificate(cert_pem, key_pem, hashlib.sha256(der).digest(),
                                 base64.b64encode(hashlib.sha256(spki).digest()).decode())


__all__ = ["SelfSignedCertificate", "self_signed_certificate", "WEBTRANSPORT_MAX_DAYS"]
