"""The part of pyOpenSSL's ``OpenSSL.crypto`` that aioquic uses: chain verification."""
from __future__ import annotations

import os

from . import _awslc
from .serialization import pem_blocks
from .x509 import Certificate, load_der_x509_certificate

FILETYPE_PEM = 1
FILETYPE_ASN1 = 2


class Error(Exception):
    pass


class X509:
    def __init__(self, certificate: Certificate | None = None):
        self._certificate = certificate

    @classmethod
    def from_cryptography(cls, crypto_cert: Certificate) -> X509:
        if not isinstance(crypto_cert, Certificate):
            raise TypeError("Must be a certificate")
        return cls(crypto_cert)

    def to_cryptography(self) -> Certificate:
        return self._certificate


def load_certificate(type: int, buffer: bytes) -> X509:
    if type == FILETYPE_PEM:
        try:
            blocks = [der for label, der in pem_blocks(buffer) if label == "CERTIFICATE"]
        except ValueError as e:
            raise Error(str(e)) from None
        if not blocks:
            raise Error("no certificate in PEM data")
        der = blocks[0]
    elif type == FILETYPE_ASN1:
        der = bytes(buffer)
    else:
        raise ValueError("type argument must be FILETYPE_PEM or FILETYPE_ASN1")
    try:
        return X509(load_der_x509_certificate(der))
    except ValueError as e:
        raise Error(str(e)) from None


def dump_certificate(type: int, cert: X509) -> bytes:
    from .serialization import Encoding
    return cert._certificate.public_bytes(Encoding.PEM if type == FILETYPE_PEM else Encoding.DER)


class X509Store:
    def __init__(self):
        self._roots: list[Certificate] = []

    def add_cert(self, cert: X509) -> None:
        if not isinstance(cert, X509):
            raise TypeError("cert must be an X509 instance")
        self._roots.append(cert._certificate)

    def load_locations(self, cafile=None, capath=None) -> None:
        paths = [cafile] if cafile else []
        if capath:
            paths += sorted(os.path.join(capath, n) for n in os.listdir(capath))
        if not paths:
            raise Error("cafile and capath cannot be both None")
        for path in paths:
            with open(path, "rb") as f:
                data = f.read()
            try:
                blocks = pem_blocks(data)
            except ValueError as e:
                raise Error(f"{path}: {e}") from None
            for label, der in blocks:
                if label in ("CERTIFICATE", "TRUSTED CERTIFICATE"):
                    try:
                        self._roots.append(load_der_x509_certificate(der))
                    except ValueError:
                        continue  # OpenSSL skips what it cannot parse in a bundle, too


class X509StoreContextError(Exception):
    def __init__(self, message: str, errors: list, certificate: X509):
        super().__init__(message)
        self.errors = errors
        self.certificate = certificate


class X509StoreContext:
    def __init__(self, store: X509Store, certificate: X509, chain: list[X509] | None = None):
        self._store, self._certificate, self._chain = store, certificate, list(chain or [])

    def verify_certificate(self) -> None:
        leaf = self._certificate._certificate
        try:
            _awslc.verify_chain(leaf._cert, [c._certificate._cert for c in self._chain],
                                [c._cert for c in self._store._roots], None)
        except _awslc.VerifyError as e:
            code, message, depth = e.args
            raise X509StoreContextError(message, [code, depth, message], self._certificate) from None
