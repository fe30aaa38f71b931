"""Crypto and QUIC benchmark cases, run unchanged on CPython and inside Pyodide (Node or the IWA).

``cryptography`` here is whatever the runtime has: the real package on CPython, the AWS-LC
provider's aliases in Pyodide (or on CPython when build/crypto-native is put first on sys.path).
Standard library, socketiwa and cryptography names only: the driver ships this source to Pyodide.
"""
import time


def aead_seals(seconds=1.0):
    """Seals/s of 1200-byte packets with 32 bytes of AAD, and header-protection masks/s."""
    import cryptography
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    out = {"provider": cryptography.__version__}
    packet, aad, nonce = bytes(1200), bytes(32), bytes(12)
    for name, aead in (("aes128gcm", AESGCM(bytes(16))), ("chacha20poly1305", ChaCha20Poly1305(bytes(32)))):
        n, start = 0, time.perf_counter()
        while True:
            for _ in range(500):
                aead.encrypt(nonce, packet, aad)
            n += 500
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        out[f"{name}_seals_per_s"] = round(n / elapsed)
    ecb = Cipher(algorithms.AES(bytes(16)), modes.ECB()).encryptor()
    sample = bytes(16)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            ecb.update(sample)
        n += 1000
    out["aes_hp_masks_per_s"] = round(n / (time.perf_counter() - start))
    return out


async def quic_handshake_and_bulk(host, port, ca, handshakes=5, bulk=4 * 1024 * 1024):
    """Median QUIC handshake (connect + first echo) and one-stream echo MB/s against aioquic."""
    import os
    from socketiwa import quic
    times = []
    for _ in range(handshakes):
        config = quic.client_configuration(cadata=ca, server_name="localhost")
        start = time.perf_counter()
        async with quic.connect_echo(host, port, config) as client:
            await client.echo(b"ping")
            times.append(time.perf_counter() - start)
            client.close()
    times.sort()
    data = os.urandom(bulk)
    config = quic.client_configuration(cadata=ca, server_name="localhost")
    async with quic.connect_echo(host, port, config) as client:
        start = time.perf_counter()
        echoed = await client.echo(data)
        elapsed = time.perf_counter() - start
        client.close()
    assert echoed == data
    return {"handshake_ms": round(times[len(times) // 2] * 1000, 1),
            "bulk_mb_per_s": round(2 * bulk / elapsed / 1e6, 2)}  # both directions moved `bulk` bytes
