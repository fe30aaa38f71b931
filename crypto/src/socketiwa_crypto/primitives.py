"""Symmetric primitives: hashes, HMAC, HKDF, AEADs and the ciphers QUIC header protection uses.

Hashes and HMAC run on the interpreter's hashlib/hmac (C in Pyodide too); AEADs, AES-ECB and
ChaCha20 run in AWS-LC through pre-keyed objects, one call per packet."""
from __future__ import annotations

import hashlib
import hmac as _stdlib_hmac
import os

from . import _awslc
from .exceptions import AlreadyFinalized, InvalidSignature, InvalidTag, UnsupportedAlgorithm


# ---------------------------------------------------------------- hashes
class HashAlgorithm:
    name: str
    digest_size: int
    block_size: int

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(self.name)


def _algorithm(name: str, digest: int, block: int):
    return type(name.upper(), (HashAlgorithm,), {"name": name, "digest_size": digest, "block_size": block})


SHA1 = _algorithm("sha1", 20, 64)
SHA224 = _algorithm("sha224", 28, 64)
SHA256 = _algorithm("sha256", 32, 64)
SHA384 = _algorithm("sha384", 48, 128)
SHA512 = _algorithm("sha512", 64, 128)


def _check_algorithm(algorithm) -> HashAlgorithm:
    if isinstance(algorithm, type):
        raise TypeError("Expected instance of hashes.HashAlgorithm.")
    if not isinstance(algorithm, HashAlgorithm):
        raise UnsupportedAlgorithm(f"{algorithm!r} is not supported")
    return algorithm


class Hash:
    def __init__(self, algorithm, backend=None, _ctx=None):
        self.algorithm = _check_algorithm(algorithm)
        self._ctx = _ctx if _ctx is not None else hashlib.new(algorithm.name)

    def update(self, data: bytes) -> None:
        if self._ctx is None:
            raise AlreadyFinalized("Context was already finalized.")
        self._ctx.update(data)

    def copy(self) -> Hash:
        if self._ctx is None:
            raise AlreadyFinalized("Context was already finalized.")
        return Hash(self.algorithm, _ctx=self._ctx.copy())

    def finalize(self) -> bytes:
        if self._ctx is None:
            raise AlreadyFinalized("Context was already finalized.")
        digest, self._ctx = self._ctx.digest(), None
        return digest


class HMAC:
    def __init__(self, key: bytes, algorithm, backend=None, _ctx=None):
        self.algorithm = _check_algorithm(algorithm)
        self._ctx = _ctx if _ctx is not None else _stdlib_hmac.new(bytes(key), digestmod=algorithm.name)

    def update(self, data: bytes) -> None:
        if self._ctx is None:
            raise AlreadyFinalized("Context was already finalized.")
        self._ctx.update(data)

    def copy(self) -> HMAC:
        if self._ctx is None:
            raise AlreadyFinalized("Context was already finalized.")
        return HMAC(b"", self.algorithm, _ctx=self._ctx.copy())

    def finalize(self) -> bytes:
        if self._ctx is None:
            raise AlreadyFinalized("Context was already finalized.")
        digest, self._ctx = self._ctx.digest(), None
        return digest

    def verify(self, signature: bytes) -> None:
        if not _stdlib_hmac.compare_digest(self.finalize(), signature):
            raise InvalidSignature("Signature did not match digest.")


# ---------------------------------------------------------------- HKDF (RFC 5869)
def _expand(algorithm: HashAlgorithm, prk: bytes, info: bytes, length: int) -> bytes:
    if length > 255 * algorithm.digest_size:
        raise ValueError(f"Cannot derive keys larger than {255 * algorithm.digest_size} octets.")
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = _stdlib_hmac.digest(prk, block + info + bytes([counter]), algorithm.name)
        out += block
        counter += 1
    return out[:length]


class HKDFExpand:
    def __init__(self, algorithm, length: int, info: bytes | None, backend=None):
        self._algorithm = _check_algorithm(algorithm)
        self._length, self._info, self._used = length, info or b"", False

    def derive(self, key_material: bytes) -> bytes:
        if self._used:
            raise AlreadyFinalized
        self._used = True
        return _expand(self._algorithm, bytes(key_material), self._info, self._length)


class HKDF:
    def __init__(self, algorithm, length: int, salt: bytes | None, info: bytes | None, backend=None):
        self._algorithm = _check_algorithm(algorithm)
        self._salt = salt or bytes(algorithm.digest_size)
        self._length, self._info, self._used = length, info or b"", False

    def derive(self, key_material: bytes) -> bytes:
        if self._used:
            raise AlreadyFinalized
        self._used = True
        prk = _stdlib_hmac.digest(self._salt, bytes(key_material), self._algorithm.name)
        return _expand(self._algorithm, prk, self._info, self._length)


# ---------------------------------------------------------------- AEADs
class _AEAD:
    _alg: int
    _key_sizes: tuple[int, ...]

    def __init__(self, key: bytes):
        if not isinstance(key, (bytes, bytearray, memoryview)):
            raise TypeError("key must be bytes")
        if len(key) not in self._key_sizes:
            raise ValueError(f"{type(self).__name__} key must be {' or '.join(map(str, self._key_sizes))} bytes.")
        self._aead = _awslc.aead(self._alg + (len(key) == 32 and self._alg == 0), key)
        # Once per QUIC packet: straight to the extension, which checks the arguments as below
        # (a Python frame here was ~10% of a ChaCha20-Poly1305 seal of 1200 bytes in Pyodide).
        self.encrypt = self._aead.seal

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        """Replaced per instance by the extension's seal (see __init__); the same checks."""
        if len(nonce) != 12:
            raise ValueError("Nonce must be 12 bytes")
        return self._aead.seal(nonce, data, associated_data)

    # decrypt stays in Python: it turns the extension's TagError into InvalidTag.
    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        if len(nonce) != 12:
            raise ValueError("Nonce must be 12 bytes")
        try:
            return self._aead.open(nonce, data, associated_data or b"")
        except _awslc.TagError:
            raise InvalidTag from None

    @classmethod
    def generate_key(cls, bit_length: int = 256) -> bytes:
        return os.urandom(bit_length // 8)


class AESGCM(_AEAD):
    _alg = 0  # 0: AES-128-GCM, 1: AES-256-GCM (chosen by key length)
    _key_sizes = (16, 32)


class ChaCha20Poly1305(_AEAD):
    _alg = 2
    _key_sizes = (32,)

    @classmethod
    def generate_key(cls) -> bytes:
        return os.urandom(32)


# ---------------------------------------------------------------- Cipher (AES-ECB, ChaCha20)
class AES:
    name = "AES"
    block_size = 128

    def __init__(self, key: bytes):
        if len(key) not in (16, 24, 32):
            raise ValueError(f"Invalid key size ({len(key) * 8}) for AES.")
        self.key = bytes(key)
        self.key_size = len(key) * 8


class ChaCha20:
    name = "ChaCha20"
    key_size = 256

    def __init__(self, key: bytes, nonce: bytes):
        if len(key) != 32:
            raise ValueError("key must be 32 bytes")
        if len(nonce) != 16:
            raise ValueError("nonce must be 128-bits (16 bytes)")
        self.key, self.nonce = bytes(key), bytes(nonce)


class ECB:
    name = "ECB"


class CipherContext:
    """Encrypts as AES-ECB (whole blocks) or ChaCha20 (one keystream from the nonce's counter)."""

    def __init__(self, algorithm, mode):
        if isinstance(algorithm, AES) and isinstance(mode, ECB):
            self._ecb = _awslc.aes_ecb(algorithm.key)
            self._chacha = None
        elif isinstance(algorithm, ChaCha20) and mode is None:
            self._ecb = None
            self._chacha = algorithm
            self._offset = 0
        else:
            raise UnsupportedAlgorithm(f"{type(algorithm).__name__} with {type(mode).__name__} is not supported")
        self._done = False

    def update(self, data: bytes) -> bytes:
        if self._done:
            raise AlreadyFinalized("Context was already finalized.")
        if self._ecb is not None:
            if len(data) % 16:
                raise ValueError("The length of the provided data is not a multiple of the block length.")
            return self._ecb.encrypt(data)
        if self._offset % 64:
            raise UnsupportedAlgorithm("ChaCha20 updates must be multiples of 64 bytes except the last")
        nonce = self._chacha.nonce
        counter = int.from_bytes(nonce[:4], "little") + self._offset // 64
        if counter + (len(data) + 63) // 64 > 1 << 32:
            # the 32-bit block counter would wrap and repeat keystream (the C layer refuses too)
            raise OverflowError("ChaCha20 block counter would wrap past 2**32 blocks")
        out = _awslc.chacha20(self._chacha.key, counter.to_bytes(4, "little") + nonce[4:], data)
        self._offset += len(data)
        return out

    def reset_nonce(self, nonce: bytes) -> None:
        """Restart the ChaCha20 keystream at a new nonce (aioquic does this per packet)."""
        if self._chacha is None:
            raise UnsupportedAlgorithm("reset_nonce is only for ChaCha20")
        if len(nonce) != 16:
            raise ValueError("nonce must be 128-bits (16 bytes)")
        if self._done:
            raise AlreadyFinalized("Context was already finalized.")
        self._chacha = ChaCha20(self._chacha.key, nonce)
        self._offset = 0

    def finalize(self) -> bytes:
        if self._done:
            raise AlreadyFinalized("Context was already finalized.")
        self._done = True
        return b""


class Cipher:
    def __init__(self, algorithm, mode, backend=None):
        self.algorithm, self.mode = algorithm, mode

    def encryptor(self) -> CipherContext:
        return CipherContext(self.algorithm, self.mode)
