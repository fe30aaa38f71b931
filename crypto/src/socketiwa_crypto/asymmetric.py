"""Asymmetric keys: X25519, Ed25519, ECDSA/ECDH on P-256/P-384/P-521, RSA (PSS and PKCS#1 v1.5).

X448 and Ed448 are not in AWS-LC: their classes exist (aioquic names them) but using them raises
UnsupportedAlgorithm, and ``default_backend().x448_supported()`` says False so aioquic never
offers them."""
from __future__ import annotations

from . import _awslc
from .exceptions import InvalidSignature, UnsupportedAlgorithm
from .primitives import HashAlgorithm
from . import serialization as ser


class _Key:
    """Shared plumbing: every key object wraps one _awslc.PKey."""

    __slots__ = ("_pkey",)

    def __init__(self, pkey):
        self._pkey = pkey

    def _raw_check(self, encoding, fmt, expect_fmt):
        if encoding is not ser.Encoding.Raw or fmt is not expect_fmt:
            raise ValueError("raw keys need Encoding.Raw with the Raw format")

    def __eq__(self, other):
        return type(self) is type(other) and self._pkey.to_der("spki") == other._pkey.to_der("spki")

    def __hash__(self):
        return hash(self._pkey.to_der("spki"))


def _public_bytes(pkey, encoding, fmt) -> bytes:
    if fmt is ser.PublicFormat.SubjectPublicKeyInfo:
        return ser._encode(pkey.to_der("spki"), encoding, "PUBLIC KEY")
    if fmt is ser.PublicFormat.PKCS1 and pkey.kind() == "rsa":
        return ser._encode(pkey.to_der("pkcs1"), encoding, "RSA PUBLIC KEY")
    raise ValueError(f"unsupported public format {fmt}")


def _private_bytes(pkey, encoding, fmt, encryption) -> bytes:
    if not isinstance(encryption, ser.NoEncryption):
        raise UnsupportedAlgorithm("encrypted private key serialization is not supported")
    if fmt is ser.PrivateFormat.PKCS8:
        return ser._encode(pkey.to_der("pkcs8"), encoding, "PRIVATE KEY")
    if fmt is ser.PrivateFormat.TraditionalOpenSSL:
        label = {"rsa": "RSA PRIVATE KEY", "ec": "EC PRIVATE KEY"}.get(pkey.kind())
        if label is None:
            raise ValueError("TraditionalOpenSSL is only for RSA and EC keys")
        return ser._encode(pkey.to_der("traditional"), encoding, label)
    raise ValueError(f"unsupported private format {fmt}")


# ---------------------------------------------------------------- X25519 / Ed25519
class _RawPublicKey(_Key):
    """32-byte raw public keys; ``_kind``/``_label`` name the algorithm."""

    _kind: str
    _label: str

    @classmethod
    def from_public_bytes(cls, data: bytes):
        if len(data) != 32:
            raise ValueError(f"An {cls._label} public key is 32 bytes long")
        return cls(_awslc.from_raw(cls._kind, data, False))

    def public_bytes(self, encoding, format) -> bytes:
        if encoding is ser.Encoding.Raw:
            self._raw_check(encoding, format, ser.PublicFormat.Raw)
            return self._pkey.raw(False)
        return _public_bytes(self._pkey, encoding, format)

    def public_bytes_raw(self) -> bytes:
        return self._pkey.raw(False)


class _RawPrivateKey(_Key):
    """32-byte raw private keys; ``_public`` is the matching public key class."""

    _public: type[_RawPublicKey]

    @classmethod
    def generate(cls):
        return cls(_awslc.generate(cls._public._kind))

    @classmethod
    def from_private_bytes(cls, data: bytes):
        if len(data) != 32:
            raise ValueError(f"An {cls._public._label} private key is 32 bytes long")
        return cls(_awslc.from_raw(cls._public._kind, data, True))

    def public_key(self):
        return self._public(_awslc.from_raw(self._public._kind, self._pkey.raw(False), False))

    def private_bytes(self, encoding, format, encryption_algorithm) -> bytes:
        if encoding is ser.Encoding.Raw:
            self._raw_check(encoding, format, ser.PrivateFormat.Raw)
            return self._pkey.raw(True)
        return _private_bytes(self._pkey, encoding, format, encryption_algorithm)

    def private_bytes_raw(self) -> bytes:
        return self._pkey.raw(True)


class X25519PublicKey(_RawPublicKey):
    _kind, _label = "x25519", "X25519"


class X25519PrivateKey(_RawPrivateKey):
    _public = X25519PublicKey

    def exchange(self, peer_public_key: X25519PublicKey) -> bytes:
        if not isinstance(peer_public_key, X25519PublicKey):
            raise TypeError("peer_public_key must be an X25519PublicKey")
        try:
            return self._pkey.derive(peer_public_key._pkey)
        except _awslc.Error:
            raise ValueError("Error computing shared key.") from None


class Ed25519PublicKey(_RawPublicKey):
    _kind, _label = "ed25519", "Ed25519"

    def verify(self, signature: bytes, data: bytes) -> None:
        if not self._pkey.verify(signature, data, None, 0, 0):
            raise InvalidSignature


class Ed25519PrivateKey(_RawPrivateKey):
    _public = Ed25519PublicKey

    def sign(self, data: bytes) -> bytes:
        return self._pkey.sign(data, None, 0, 0)


class _Unsupported:
    """X448 / Ed448: named by aioquic, absent from AWS-LC."""

    @classmethod
    def generate(cls):
        raise UnsupportedAlgorithm(f"{cls.__name__[:-10] or cls.__name__} is not supported by AWS-LC")

    from_public_bytes = from_private_bytes = generate


class X448PublicKey(_Unsupported):
    pass


class X448PrivateKey(_Unsupported):
    pass


class Ed448PublicKey(_Unsupported):
    pass


class Ed448PrivateKey(_Unsupported):
    pass


# ---------------------------------------------------------------- EC
class EllipticCurve:
    name: str
    key_size: int

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(self.name)


class SECP256R1(EllipticCurve):
    name, key_size = "secp256r1", 256


class SECP384R1(EllipticCurve):
    name, key_size = "secp384r1", 384


class SECP521R1(EllipticCurve):
    name, key_size = "secp521r1", 521


_CURVES = {c.name: c for c in (SECP256R1, SECP384R1, SECP521R1)}


def _curve(curve) -> EllipticCurve:
    if isinstance(curve, type):
        curve = curve()
    if not isinstance(curve, EllipticCurve) or curve.name not in _CURVES:
        raise UnsupportedAlgorithm(f"curve {curve!r} is not supported")
    return curve


class ECDH:
    pass


class ECDSA:
    def __init__(self, algorithm):
        self.algorithm = algorithm


def _md_name(algorithm) -> str:
    if not isinstance(algorithm, HashAlgorithm):
        raise UnsupportedAlgorithm(f"{algorithm!r} is not a supported hash")
    return algorithm.name


class EllipticCurvePublicKey(_Key):
    @property
    def curve(self) -> EllipticCurve:
        return _CURVES[self._pkey.curve()]()

    @property
    def key_size(self) -> int:
        return self.curve.key_size

    @classmethod
    def from_encoded_point(cls, curve, data: bytes) -> EllipticCurvePublicKey:
        curve = _curve(curve)
        if not data or data[0] not in (2, 3, 4):
            raise ValueError("Unsupported elliptic curve point type")
        try:
            return cls(_awslc.ec_from_point(curve.name, data))
        except _awslc.Error:
            raise ValueError("Invalid EC key.") from None

    def public_bytes(self, encoding, format) -> bytes:
        if encoding is ser.Encoding.X962:
            if format is ser.PublicFormat.UncompressedPoint:
                return self._pkey.ec_point(False)
            if format is ser.PublicFormat.CompressedPoint:
                return self._pkey.ec_point(True)
            raise ValueError("X962 encoding needs a point format")
        return _public_bytes(self._pkey, encoding, format)

    def verify(self, signature: bytes, data: bytes, signature_algorithm: ECDSA) -> None:
        if not self._pkey.verify(signature, data, _md_name(signature_algorithm.algorithm), 0, 0):
            raise InvalidSignature


class EllipticCurvePrivateKey(_Key):
    @property
    def curve(self) -> EllipticCurve:
        return _CURVES[self._pkey.curve()]()

    @property
    def key_size(self) -> int:
        return self.curve.key_size

    def public_key(self) -> EllipticCurvePublicKey:
        return EllipticCurvePublicKey(_awslc.ec_from_point(self._pkey.curve(), self._pkey.ec_point(False)))

    def exchange(self, algorithm: ECDH, peer_public_key: EllipticCurvePublicKey) -> bytes:
        if not isinstance(algorithm, ECDH):
            raise UnsupportedAlgorithm("only ECDH key exchange is supported")
        if not isinstance(peer_public_key, EllipticCurvePublicKey) or peer_public_key.curve != self.curve:
            raise ValueError("peer_public_key and self are not on the same curve")
        return self._pkey.derive(peer_public_key._pkey)

    def sign(self, data: bytes, signature_algorithm: ECDSA) -> bytes:
        return self._pkey.sign(data, _md_name(signature_algorithm.algorithm), 0, 0)

    def private_bytes(self, encoding, format, encryption_algorithm) -> bytes:
        return _private_bytes(self._pkey, encoding, format, encryption_algorithm)


def generate_private_key(curve, backend=None) -> EllipticCurvePrivateKey:
    return EllipticCurvePrivateKey(_awslc.generate("ec", _curve(curve).name))


# ---------------------------------------------------------------- RSA
class MGF1:
    def __init__(self, algorithm):
        self._algorithm = algorithm


class AsymmetricPadding:
    name: str


class PKCS1v15(AsymmetricPadding):
    name = "EMSA-PKCS1-v1_5"


class PSS(AsymmetricPadding):
    name = "EMSA-PSS"
    MAX_LENGTH = object()
    DIGEST_LENGTH = object()
    AUTO = object()

    def __init__(self, mgf: MGF1, salt_length):
        self._mgf, self._salt_length = mgf, salt_length


def _padding(padding, algorithm, signing: bool) -> tuple[int, int]:
    if isinstance(padding, PKCS1v15):
        return 1, 0
    if isinstance(padding, PSS):
        if not isinstance(padding._mgf, MGF1) or type(padding._mgf._algorithm) is not type(algorithm):
            raise UnsupportedAlgorithm("PSS is supported with MGF1 over the signature's hash only")
        salt = padding._salt_length
        if salt is PSS.DIGEST_LENGTH:
            return 2, -1
        if salt is PSS.MAX_LENGTH or (salt is PSS.AUTO and not signing):
            return 2, -2
        if isinstance(salt, int) and salt >= 0:
            return 2, salt
        raise ValueError("unsupported PSS salt length")
    raise UnsupportedAlgorithm(f"padding {padding!r} is not supported")


class RSAPublicNumbers:
    def __init__(self, e: int, n: int):
        self.e, self.n = e, n


class RSAPublicKey(_Key):
    @property
    def key_size(self) -> int:
        return self._pkey.bits()

    def public_numbers(self) -> RSAPublicNumbers:
        n, e = self._pkey.rsa_numbers()
        return RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big"))

    def public_bytes(self, encoding, format) -> bytes:
        return _public_bytes(self._pkey, encoding, format)

    def verify(self, signature: bytes, data: bytes, padding, algorithm) -> None:
        mode, salt = _padding(padding, algorithm, signing=False)
        if not self._pkey.verify(signature, data, _md_name(algorithm), mode, salt):
            raise InvalidSignature


class RSAPrivateKey(_Key):
    @property
    def key_size(self) -> int:
        return self._pkey.bits()

    def public_key(self) -> RSAPublicKey:
        return RSAPublicKey(_awslc.load_der(self._pkey.to_der("spki"), False))

    def sign(self, data: bytes, padding, algorithm) -> bytes:
        mode, salt = _padding(padding, algorithm, signing=True)
        return self._pkey.sign(data, _md_name(algorithm), mode, salt)

    def private_bytes(self, encoding, format, encryption_algorithm) -> bytes:
        return _private_bytes(self._pkey, encoding, format, encryption_algorithm)


def generate_rsa_private_key(public_exponent: int, key_size: int, backend=None) -> RSAPrivateKey:
    if public_exponent != 65537:
        raise ValueError("only public_exponent=65537 is supported")
    return RSAPrivateKey(_awslc.generate("rsa", key_size))


class DSAPrivateKey:
    """Named in aioquic's type hints only; DSA is not supported."""


class DSAPublicKey:
    """Named in aioquic's type hints only; DSA is not supported."""


_PRIVATE = {"x25519": X25519PrivateKey, "ed25519": Ed25519PrivateKey, "ec": EllipticCurvePrivateKey,
            "rsa": RSAPrivateKey}
_PUBLIC = {"x25519": X25519PublicKey, "ed25519": Ed25519PublicKey, "ec": EllipticCurvePublicKey,
           "rsa": RSAPublicKey}


def wrap(pkey, private: bool):
    """The key class for an _awslc.PKey."""
    cls = (_PRIVATE if private else _PUBLIC).get(pkey.kind())
    if cls is None:
        raise UnsupportedAlgorithm(f"{pkey.kind()} keys are not supported")
    return cls(pkey)
