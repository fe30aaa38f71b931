"""Key serialization: PEM/DER loading and the Encoding/Format enums."""
from __future__ import annotations

import base64
import enum
import re

from . import _awslc
from .exceptions import UnsupportedAlgorithm


class Encoding(enum.Enum):
    PEM = "PEM"
    DER = "DER"
    Raw = "Raw"
    X962 = "ANSI X9.62"
    OpenSSH = "OpenSSH"


class PublicFormat(enum.Enum):
    SubjectPublicKeyInfo = "X.509 subjectPublicKeyInfo with PKCS#1"
    PKCS1 = "Raw PKCS#1"
    Raw = "Raw"
    CompressedPoint = "X9.62 Compressed Point"
    UncompressedPoint = "X9.62 Uncompressed Point"
    OpenSSH = "OpenSSH"


class PrivateFormat(enum.Enum):
    PKCS8 = "PKCS8"
    TraditionalOpenSSL = "TraditionalOpenSSL"
    Raw = "Raw"
    OpenSSH = "OpenSSH"


class KeySerializationEncryption:
    pass


class NoEncryption(KeySerializationEncryption):
    pass


class BestAvailableEncryption(KeySerializationEncryption):
    def __init__(self, password: bytes):
        self.password = password


# One pass over the BEGIN/END marker lines (each is matched where it starts, so the scan is
# linear): a lazy BEGIN...END pattern re-scanned the rest of the input for every BEGIN, which
# made 16k BEGIN lines take 43 s.
_MARKER = re.compile(rb"-----(BEGIN|END) ([A-Z0-9 ]+)-----")


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """Every PEM block in ``data`` as (label, DER). Text outside blocks is ignored; a BEGIN inside
    an open block, an END that does not match its BEGIN or bad base64 raise ValueError, and an
    unterminated last block is ignored, as the ``pem`` parser behind cryptography does."""
    data = bytes(data)
    blocks, open_label, body_start = [], None, 0
    for marker in _MARKER.finditer(data):
        kind, label = marker.group(1), marker.group(2)
        if kind == b"BEGIN":
            if open_label is not None:
                raise ValueError("Could not deserialize PEM data: BEGIN inside an open PEM block")
            open_label, body_start = label, marker.end()
        elif open_label is not None:
            if label != open_label:
                raise ValueError("Could not deserialize PEM data: END does not match BEGIN")
            body = data[body_start:marker.start()]
            if b"Proc-Type:" in body:
                raise TypeError("Password-protected PEM keys are not supported.")
            try:
                blocks.append((label.decode(), base64.b64decode(b"".join(body.split()), validate=True)))
            except ValueError:
                raise ValueError("Could not deserialize PEM data: bad base64") from None
            open_label = None
    return blocks


def _encode(der: bytes, encoding: Encoding, label: str) -> bytes:
    if encoding is Encoding.DER:
        return der
    if encoding is Encoding.PEM:
        b64 = base64.b64encode(der)
        lines = b"\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
        return b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label.encode(), lines, label.encode())
    raise ValueError(f"unsupported encoding {encoding}")


def _password_check(password) -> None:
    if password is not None:
        raise UnsupportedAlgorithm("encrypted private keys are not supported")


# Key algorithms AWS-LC loads; a well-formed key of any other (Ed448, X448, ...) is unsupported
_KNOWN_KEY_OIDS = {"1.2.840.113549.1.1.1", "1.2.840.113549.1.1.10", "1.2.840.10045.2.1", "1.3.101.112",
                   "1.3.101.110", "1.2.840.10040.4.1"}


def _der_element(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``at``; ValueError if truncated."""
    if at + 2 > len(data):
        raise ValueError("truncated")
    tag, n, at = data[at], data[at + 1], at + 2
    if n & 0x80:
        size = n & 0x7F
        if not 0 < size <= 4 or at + size > len(data):
            raise ValueError("bad length")
        n, at = int.from_bytes(data[at:at + size], "big"), at + size
    if at + n > len(data):
        raise ValueError("truncated")
    return tag, at, at + n


def _key_algorithm(data: bytes, private: bool) -> str | None:
    """The dotted algorithm OID of a SubjectPublicKeyInfo or PKCS#8 key, None if it is neither."""
    try:
        tag, at, _ = _der_element(data, 0)
        if tag != 0x30:
            return None
        if private:  # PrivateKeyInfo: version INTEGER first
            tag, _, at = _der_element(data, at)
            if tag != 0x02:
                return None
        tag, at, _ = _der_element(data, at)  # AlgorithmIdentifier
        if tag != 0x30:
            return None
        tag, start, end = _der_element(data, at)
        if tag != 0x06 or start == end:
            return None
    except ValueError:
        return None
    body, arcs, value = data[start:end], [], 0
    for byte in body:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _load_der_key(data: bytes, private: bool):
    from .asymmetric import wrap
    data = bytes(data)
    try:
        return wrap(_awslc.load_der(data, private), private=private)
    except _awslc.Error:
        oid = _key_algorithm(data, private)
        if oid is not None and oid not in _KNOWN_KEY_OIDS:
            raise UnsupportedAlgorithm(f"Unknown key type: {oid}") from None
        raise ValueError("Could not deserialize key data.") from None


def load_der_private_key(data: bytes, password: bytes | None = None, backend=None, **_):
    _password_check(password)
    return _load_der_key(data, True)


def load_pem_private_key(data: bytes, password: bytes | None = None, backend=None, **_):
    for label, der in pem_blocks(data):
        if label == "ENCRYPTED PRIVATE KEY":
            raise TypeError("Password-protected PEM keys are not supported.")
        if label.endswith("PRIVATE KEY"):
            return load_der_private_key(der, password)
    raise ValueError("Could not deserialize key data: no PEM private key found.")


def load_der_public_key(data: bytes, backend=None):
    return _load_der_key(data, False)


def load_pem_public_key(data: bytes, backend=None):
    for label, der in pem_blocks(data):
        if label == "PUBLIC KEY":
            return load_der_public_key(der)
    raise ValueError("Could not deserialize key data: no PEM public key found.")
