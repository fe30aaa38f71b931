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


def load_der_private_key(data: bytes, password: bytes | None = None, backend=None, **_):
    from .asymmetric import wrap
    _password_check(password)
    try:
        return wrap(_awslc.load_der(data, True), private=True)
    except _awslc.Error:
        raise ValueError("Could not deserialize key data.") from None


def load_pem_private_key(data: bytes, password: bytes | None = None, backend=None, **_):
    for label, der in pem_blocks(data):
        if label == "ENCRYPTED PRIVATE KEY":
            raise TypeError("Password-protected PEM keys are not supported.")
        if label.endswith("PRIVATE KEY"):
            return load_der_private_key(der, password)
    raise ValueError("Could not deserialize key data: no PEM private key found.")


def load_der_public_key(data: bytes, backend=None):
    from .asymmetric import wrap
    try:
        return wrap(_awslc.load_der(data, False), private=False)
    except _awslc.Error:
        raise ValueError("Could not deserialize key data.") from None


def load_pem_public_key(data: bytes, backend=None):
    for label, der in pem_blocks(data):
        if label == "PUBLIC KEY":
            return load_der_public_key(der)
    raise ValueError("Could not deserialize key data: no PEM public key found.")
