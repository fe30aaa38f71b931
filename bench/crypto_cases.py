"""Crypto and QUIC benchmark cases, run unchanged on CPython and inside Pyodide (Node or the IWA).

``cryptography`` here is whatever the runtime has: the real package on CPython, the AWS-LC
provider's aliases in Pyodide (or on CPython when build/crypto-native is put first on sys.path).
Standard library, socketiwa and cryptography names only: the driver ships this source to Pyodide.
"""
import time


def aead_seals(seconds=1.0):
    """Seals/s of 1200-byte packets with 32 bytes of AAD per AEAD, and header-protection masks/s."""
    import cryptography
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    out = {"provider": cryptography.__version__}
    packet, aad, nonce = bytes(1200), bytes(32), bytes(12)
    for name, aead in (("aes128gcm", AESGCM(bytes(16))), ("aes256gcm", AESGCM(bytes(32))),
                       ("chacha20poly1305", ChaCha20Poly1305(bytes(32)))):
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


def aead_seals_paired(baseline_so, rounds=9, seconds=0.2):
    """Before/after in one process: seals/s of 1200-byte packets through the loaded provider's
    extension and through another build of it (``baseline_so``, loaded beside it under another
    package name), alternating in short rounds so that machine load hits both alike. Returns the
    median seals/s of each and the median of the per-round ratios (current / baseline)."""
    import importlib.util
    from socketiwa_crypto import _awslc as current
    spec = importlib.util.spec_from_file_location("baseline_build._awslc", baseline_so)
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)
    packet, aad, nonce = bytes(1200), bytes(32), bytes(12)

    def rate(module, alg, key_len):
        aead = module.aead(alg, bytes(key_len))
        n, start = 0, time.perf_counter()
        while True:
            for _ in range(100):
                aead.seal(nonce, packet, aad)
            n += 100
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return n / elapsed

    def median(values):
        return sorted(values)[len(values) // 2]
    out = {}
    for name, alg, key_len in (("aes128gcm", 0, 16), ("aes256gcm", 1, 32), ("chacha20poly1305", 2, 32)):
        cur, base, ratios = [], [], []
        for r in range(rounds):
            order = ((baseline, base), (current, cur)) if r % 2 else ((current, cur), (baseline, base))
            for module, sink in order:
                sink.append(rate(module, alg, key_len))
            ratios.append(cur[-1] / base[-1])
        out[f"paired_{name}_baseline_seals_per_s"] = round(median(base))
        out[f"paired_{name}_seals_per_s"] = round(median(cur))
        out[f"paired_{name}_speedup"] = round(median(ratios), 2)
    return out


async def quic_handshake_and_bulk(host, port, ca, handshakes=5, bulk=4 * 1024 * 1024):
    """Median QUIC handshake (connect + first echo) and one-stream echo MB/s against aioquic: with
    the runtime's default cipher suites (socketiwa.quic.preferred_cipher_suites) and with each
    suite forced, so the suite's share of bulk speed shows side by side."""
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
    out = {"handshake_ms": round(times[len(times) // 2] * 1000, 1)}
    for key, suites in (("", None), ("_aes128gcm", ["AES_128_GCM_SHA256"]), ("_aes256gcm", ["AES_256_GCM_SHA384"]),
                        ("_chacha20poly1305", ["CHACHA20_POLY1305_SHA256"])):
        config = quic.client_configuration(cadata=ca, server_name="localhost", cipher_suites=suites)
        async with quic.connect_echo(host, port, config) as client:
            if not key:
                out["default_suite"] = client._quic.tls.key_schedule.cipher_suite.name
            start = time.perf_counter()
            echoed = await client.echo(data)
            elapsed = time.perf_counter() - start
            client.close()
        assert echoed == data
        out[f"bulk{key}_mb_per_s"] = round(2 * bulk / elapsed / 1e6, 2)  # both directions moved `bulk` bytes
    return out


async def quic_bulk_profile(host, port, ca, bulk=4 * 1024 * 1024, suite=None, top=40):
    """cProfile around one one-stream echo of ``bulk`` bytes (the runtime's default suite unless
    ``suite``). Returns wall time, profiled time, and per-function rows (file, line, name, calls,
    tottime) for the host to group; the time outside Python (JS, I/O, idle) is wall - profiled."""
    import cProfile
    import os
    import pstats
    from socketiwa import quic
    data = os.urandom(bulk)
    config = quic.client_configuration(cadata=ca, server_name="localhost",
                                       cipher_suites=[suite] if suite else None)
    async with quic.connect_echo(host, port, config) as client:
        negotiated = client._quic.tls.key_schedule.cipher_suite.name
        await client.echo(b"warm up")
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        echoed = await client.echo(data)
        profiler.disable()
        wall = time.perf_counter() - start
        client.close()
    assert echoed == data
    stats = pstats.Stats(profiler).stats
    rows = [[f, line, name, cc, nc, tt, ct] for (f, line, name), (cc, nc, tt, ct, _) in stats.items()]
    return {"suite": negotiated, "wall_s": wall, "profiled_s": sum(r[5] for r in rows),
            "mb_per_s": round(2 * bulk / wall / 1e6, 2), "rows": rows}


def aead_breakdown(c_bench_so=None, rounds=200, n=50):
    """Where the time of one seal of 1200 bytes (32 bytes of AAD) goes, as the best of ``rounds``
    short rounds of ``n`` seals (the fastest round is the one least disturbed by other processes on
    a shared machine; the 1-second means of aead_seals swing with the load). Per AEAD:

      api           cryptography's AESGCM / ChaCha20Poly1305 .encrypt (what aioquic calls)
      api_empty     the same with no plaintext and no AAD: the fixed cost of a call
      direct        the provider's extension called directly (no Python wrapper; provider only)
      c, c_empty    AWS-LC's own loop of seals in C (crypto/bench/aead_bench.c, loaded with ctypes
                    from ``c_bench_so``): no Python at all
    and the parts over 1200 bytes in C: ChaCha20 keystream, Poly1305, AES-128-CTR, GHASH.
    Rates are per second; ``*_us`` are microseconds per seal; python_us = api_us - c_us."""
    import ctypes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    try:
        from socketiwa_crypto import _awslc
    except ImportError:
        _awslc = None
    lib = None
    if c_bench_so:
        lib = ctypes.CDLL(c_bench_so)
        lib.aead_bench_seal.restype = lib.aead_bench_part.restype = ctypes.c_double
        lib.aead_bench_seal.argtypes = [ctypes.c_int] * 4
        lib.aead_bench_part.argtypes = [ctypes.c_int] * 3

    def best(run):
        fastest = min(t for t in (run(n) for _ in range(rounds)) if t > 0)
        return round(n / fastest)

    def loop(fn, *args):
        def run(count):
            start = time.perf_counter()
            for _ in range(count):
                fn(*args)
            return time.perf_counter() - start
        return run

    nonce, packet, aad = bytes(12), bytes(1200), bytes(32)
    out = {"breakdown_rounds": rounds, "breakdown_n": n}
    for name, alg, cls, key_len in (("aes128gcm", 0, AESGCM, 16), ("chacha20poly1305", 2, ChaCha20Poly1305, 32)):
        aead = cls(bytes(key_len))
        out[f"{name}_api_seals_per_s"] = best(loop(aead.encrypt, nonce, packet, aad))
        out[f"{name}_api_empty_seals_per_s"] = best(loop(aead.encrypt, nonce, b"", b""))
        if _awslc is not None:
            out[f"{name}_direct_seals_per_s"] = best(loop(_awslc.aead(alg, bytes(key_len)).seal, nonce, packet, aad))
        if lib is not None:
            out[f"{name}_c_seals_per_s"] = best(lambda count: lib.aead_bench_seal(alg, 1200, 32, count))
            out[f"{name}_c_empty_seals_per_s"] = best(lambda count: lib.aead_bench_seal(alg, 0, 0, count))
            out[f"{name}_api_us"] = round(1e6 / out[f"{name}_api_seals_per_s"], 2)
            out[f"{name}_c_us"] = round(1e6 / out[f"{name}_c_seals_per_s"], 2)
            out[f"{name}_python_us"] = round(out[f"{name}_api_us"] - out[f"{name}_c_us"], 2)
    if lib is not None:
        for part, name in enumerate(("chacha20", "poly1305", "aes128ctr", "ghash")):
            rate = best(lambda count: lib.aead_bench_part(part, 1200, count))
            out[f"{name}_1200_per_s"] = rate
            out[f"{name}_1200_us"] = round(1e6 / rate, 2)
    return out
