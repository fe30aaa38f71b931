"""The AEADs the QUIC packets go through, on every runtime, against the real `cryptography`.

In Pyodide `cryptography` is the AWS-LC provider built for wasm32, whose ChaCha20 is wasm SIMD
code of ours (crypto/awslc-wasm/chacha_simd128.c, four blocks at a time, the portable code for
tails). The build checks it against AWS-LC's portable code; this test checks what ships, as
aioquic calls it, against ciphertexts the real `cryptography` made on CPython: every length
around the 64- and 256-byte block boundaries, QUIC's packet sizes, in-place-sized inputs, and
tampering."""
from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from runtimes import everywhere

LENGTHS = sorted({*range(0, 300), *range(500, 530), 1023, 1024, 1025, 1200, 1350, 1452, 4096,
                  4100, 16383, 65000})


@pytest.fixture(scope="module")
def aead_vectors():
    rng = random.Random(8439)
    vectors = []
    for name, cls, key_len in (("chacha", ChaCha20Poly1305, 32), ("aes128", AESGCM, 16),
                               ("aes256", AESGCM, 32)):
        for n in (LENGTHS if name == "chacha" else LENGTHS[::7]):
            key, nonce = rng.randbytes(key_len), rng.randbytes(12)
            aad, plain = rng.randbytes(rng.choice((0, 20, 41))), rng.randbytes(n)
            sealed = cls(key).encrypt(nonce, plain, aad or None)
            vectors.append((name, key.hex(), nonce.hex(), aad.hex(), plain.hex(), sealed.hex()))
    return vectors


@everywhere(timeout=120, packages=("socketiwa", "socketiwa-crypto"))
async def test_aead_seal_and_open_match_cryptography(selenium, aead_vectors):
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    classes = {"chacha": ChaCha20Poly1305, "aes128": AESGCM, "aes256": AESGCM}
    checked = 0
    for name, key, nonce, aad, plain, sealed in aead_vectors:
        cipher = classes[name](bytes.fromhex(key))
        nonce_b, aad_b, plain_b, sealed_b = (bytes.fromhex(x) for x in (nonce, aad, plain, sealed))
        assert cipher.encrypt(nonce_b, plain_b, aad_b or None) == sealed_b, (name, len(plain_b))
        assert cipher.decrypt(nonce_b, sealed_b, aad_b or None) == plain_b, (name, len(plain_b))
        # one flipped bit anywhere (ciphertext, tag, associated data) is refused
        flipped = bytearray(sealed_b)
        flipped[(len(plain_b) * 7) % len(flipped)] ^= 0x01
        for bad_sealed, bad_aad in ((bytes(flipped), aad_b), (sealed_b, aad_b + b"x")):
            try:
                cipher.decrypt(nonce_b, bad_sealed, bad_aad or None)
            except InvalidTag:
                pass
            else:
                raise AssertionError(f"{name}: a tampered message of {len(plain_b)} B opened")
        checked += 1
    assert checked == len(aead_vectors) > 400
