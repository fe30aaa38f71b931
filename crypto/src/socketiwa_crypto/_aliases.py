"""Module tree for the alias packages ``cryptography``, ``OpenSSL``, ``service_identity`` and
``certifi``: each alias package's ``__init__`` calls ``install(name)``, which registers every
submodule aioquic imports in ``sys.modules`` (so ``import cryptography.hazmat...`` resolves
without one file per module) and fills it from the modules of this package."""
from __future__ import annotations

import os
import sys
import types

from . import asymmetric as asym
from . import exceptions, identity, primitives, pyopenssl, serialization, x509


class _Backend:
    """``default_backend()``: aioquic asks it which curves exist."""

    def x25519_supported(self) -> bool:
        return True

    def x448_supported(self) -> bool:
        return False  # not in AWS-LC; aioquic then never offers X448

    def ed25519_supported(self) -> bool:
        return True

    def ed448_supported(self) -> bool:
        return False


_BACKEND = _Backend()


def default_backend() -> _Backend:
    return _BACKEND


def _pick(module, *names):
    return {n: getattr(module, n) for n in names}


_CA_CANDIDATES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def certifi_where() -> str:
    """A CA bundle path: $SSL_CERT_FILE, the system bundle, or an empty bundle (Pyodide has no
    system store: verification then fails unless cadata/cafile is given, which is honest)."""
    for path in (os.environ.get("SSL_CERT_FILE"), *_CA_CANDIDATES):
        if path and os.path.exists(path):
            return path
    return os.path.join(os.path.dirname(__file__), "empty-ca-bundle.crt")  # not .pem: .gitignore keeps *.pem (keys) out


_TREES = {
    "cryptography": {
        "cryptography": {"__version__": "43.0.0+socketiwa"},
        "cryptography.exceptions": vars(exceptions),
        "cryptography.utils": {},
        "cryptography.x509": vars(x509),
        "cryptography.x509.oid": _pick(x509, "NameOID", "ExtensionOID", "ObjectIdentifier"),
        "cryptography.x509.extensions": _pick(x509, "ExtensionNotFound", "DuplicateExtension", "Extension",
                                              "Extensions", "SubjectAlternativeName"),
        "cryptography.hazmat": {},
        "cryptography.hazmat.backends": {"default_backend": default_backend},
        "cryptography.hazmat.primitives": {},
        "cryptography.hazmat.primitives.hashes": _pick(primitives, "HashAlgorithm", "Hash", "SHA1", "SHA224",
                                                       "SHA256", "SHA384", "SHA512"),
        "cryptography.hazmat.primitives.hmac": _pick(primitives, "HMAC"),
        "cryptography.hazmat.primitives.kdf": {},
        "cryptography.hazmat.primitives.kdf.hkdf": _pick(primitives, "HKDF", "HKDFExpand"),
        "cryptography.hazmat.primitives.serialization": vars(serialization),
        "cryptography.hazmat.primitives.ciphers": _pick(primitives, "Cipher", "CipherContext"),
        "cryptography.hazmat.primitives.ciphers.aead": _pick(primitives, "AESGCM", "ChaCha20Poly1305"),
        "cryptography.hazmat.primitives.ciphers.algorithms": _pick(primitives, "AES", "ChaCha20"),
        "cryptography.hazmat.primitives.ciphers.modes": _pick(primitives, "ECB"),
        "cryptography.hazmat.primitives.asymmetric": {},
        "cryptography.hazmat.primitives.asymmetric.x25519": _pick(asym, "X25519PrivateKey", "X25519PublicKey"),
        "cryptography.hazmat.primitives.asymmetric.x448": _pick(asym, "X448PrivateKey", "X448PublicKey"),
        "cryptography.hazmat.primitives.asymmetric.ed25519": _pick(asym, "Ed25519PrivateKey", "Ed25519PublicKey"),
        "cryptography.hazmat.primitives.asymmetric.ed448": _pick(asym, "Ed448PrivateKey", "Ed448PublicKey"),
        "cryptography.hazmat.primitives.asymmetric.ec": {
            **_pick(asym, "EllipticCurve", "SECP256R1", "SECP384R1", "SECP521R1", "ECDH", "ECDSA",
                    "EllipticCurvePrivateKey", "EllipticCurvePublicKey", "generate_private_key")},
        "cryptography.hazmat.primitives.asymmetric.rsa": {
            **_pick(asym, "RSAPrivateKey", "RSAPublicKey", "RSAPublicNumbers"),
            "generate_private_key": asym.generate_rsa_private_key},
        "cryptography.hazmat.primitives.asymmetric.padding": _pick(asym, "AsymmetricPadding", "PSS", "PKCS1v15",
                                                                   "MGF1"),
        "cryptography.hazmat.primitives.asymmetric.dsa": _pick(asym, "DSAPrivateKey", "DSAPublicKey"),
        "cryptography.hazmat.primitives.asymmetric.types": {
            "PrivateKeyTypes": object, "PublicKeyTypes": object, "CertificateIssuerPrivateKeyTypes": object,
            "CertificateIssuerPublicKeyTypes": object, "CertificatePublicKeyTypes": object},
    },
    "OpenSSL": {
        "OpenSSL": {"__version__": "24.0.0+socketiwa"},
        "OpenSSL.crypto": vars(pyopenssl),
    },
    "service_identity": {
        "service_identity": {**vars(identity), "__version__": "24.1.0+socketiwa"},
        "service_identity.cryptography": _pick(identity, "verify_certificate_hostname",
                                               "verify_certificate_ip_address", "extract_patterns"),
        "service_identity.exceptions": _pick(identity, "CertificateError", "VerificationError", "Mismatch",
                                             "DNSMismatch", "IPAddressMismatch", "URIMismatch", "SRVMismatch"),
        "service_identity.hazmat": _pick(identity, "DNSPattern", "IPAddressPattern", "URIPattern", "SRVPattern",
                                         "DNS_ID", "IPAddress_ID", "verify_service_identity"),
    },
    "certifi": {
        "certifi": {"where": certifi_where, "__version__": "2026.1.1+socketiwa"},
    },
}


def install(top: str) -> None:
    for name, attrs in _TREES[top].items():
        module = sys.modules.get(name) if name == top else None
        if module is None:
            module = types.ModuleType(name)
            module.__path__ = []  # a package, so deeper imports are allowed
            sys.modules[name] = module
        for key, value in attrs.items():
            if not key.startswith("__") or key == "__version__":
                setattr(module, key, value)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
