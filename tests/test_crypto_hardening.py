"""The crypto provider's C extension (_awslc) and parsers under misuse: objects made without
their native state, a ChaCha20 counter at its end, key schedules left in freed memory, PEM input
built to make a parser quadratic. CPython only; the provider comes from build/crypto-native.

Misuse that used to crash the interpreter runs in a subprocess, so a segfault fails its test
instead of taking pytest down.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher as RCipher
from cryptography.hazmat.primitives.ciphers import algorithms as ralg

ROOT = Path(__file__).resolve().parent.parent
PROVIDER = ROOT / "build" / "crypto-native"
if not (PROVIDER / "socketiwa_crypto").is_dir():
    pytest.skip("crypto provider not built for this host: run build-wasm.sh (or crypto/build_native.sh)",
                allow_module_level=True)
sys.path.append(str(PROVIDER))  # appended: `cryptography` stays the real one in this process

from socketiwa_crypto import _awslc  # noqa: E402
from socketiwa_crypto import primitives as p  # noqa: E402
from socketiwa_crypto import pyopenssl as pssl  # noqa: E402
from socketiwa_crypto import serialization as pser  # noqa: E402
from socketiwa_crypto import x509 as px509  # noqa: E402


def run_provider(code: str, **env) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that imports the provider from build/crypto-native."""
    prelude = f"import sys; sys.path.insert(0, {str(PROVIDER)!r})\nfrom socketiwa_crypto import _awslc\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})


# ---------------------------------------------------------------- objects without native state
MISUSE = {
    "AEAD.__new__(AEAD).seal": "_awslc.AEAD.__new__(_awslc.AEAD).seal(bytes(12), b'data', b'')",
    "AEAD.__new__(AEAD).open": "_awslc.AEAD.__new__(_awslc.AEAD).open(bytes(12), bytes(32), b'')",
    "AEAD(alg, key)": "_awslc.AEAD(0, bytes(16)).seal(bytes(12), b'data', b'')",
    "AESECB.__new__(AESECB).encrypt": "_awslc.AESECB.__new__(_awslc.AESECB).encrypt(bytes(16))",
    "PKey().kind": "_awslc.PKey().kind()",
    "PKey.__new__(PKey).sign": "_awslc.PKey.__new__(_awslc.PKey).sign(b'm', 'sha256', 0, 0)",
    "object.__new__(PKey).to_der": "object.__new__(_awslc.PKey).to_der('spki')",
    "Certificate().validity": "_awslc.Certificate().validity()",
    "Certificate.__new__(Certificate).san": "_awslc.Certificate.__new__(_awslc.Certificate).san()",
    "verify_chain with an empty Certificate":
        "_awslc.verify_chain(_awslc.Certificate.__new__(_awslc.Certificate), [], [], None)",
    "derive with an empty peer PKey":
        "_awslc.generate('x25519').derive(_awslc.PKey.__new__(_awslc.PKey))",
    "copy.copy of a PKey": "import copy; copy.copy(_awslc.generate('x25519')).kind()",
}


@pytest.mark.parametrize("name", list(MISUSE))
def test_awslc_types_cannot_be_made_without_state(name):
    out = run_provider(f"""
        try:
            {MISUSE[name]}
            print("no error")
        except TypeError as e:
            print("TypeError", e)
    """)
    assert out.returncode == 0, f"crashed with {out.returncode}: {out.stderr[-2000:]}"
    assert out.stdout.startswith("TypeError"), out.stdout + out.stderr[-2000:]


def test_factories_still_make_working_objects():
    key = bytes(range(16))
    sealed = _awslc.aead(0, key).seal(bytes(12), b"data", b"aad")
    assert _awslc.aead(0, key).open(bytes(12), sealed, b"aad") == b"data"
    assert len(_awslc.aes_ecb(key).encrypt(bytes(32))) == 32
    with pytest.raises(ValueError):
        _awslc.aead(0, bytes(15))
    with pytest.raises(ValueError):
        _awslc.aes_ecb(bytes(15))


# ---------------------------------------------------------------- ChaCha20 block counter
def test_chacha20_counter_does_not_wrap():
    key, nonce = bytes(range(32)), bytes(range(12))
    last = (0xFFFFFFFF).to_bytes(4, "little") + nonce
    # the last block before the 32-bit counter runs out is still produced, like cryptography's
    real = RCipher(ralg.ChaCha20(key, last), mode=None).encryptor().update(bytes(64))
    assert p.Cipher(p.ChaCha20(key, last), mode=None).encryptor().update(bytes(64)) == real
    assert _awslc.chacha20(key, last, bytes(64)) == real
    # one byte more would take keystream block 0 again: refused, in one call or across calls
    with pytest.raises(OverflowError):
        _awslc.chacha20(key, last, bytes(65))
    with pytest.raises(OverflowError):
        p.Cipher(p.ChaCha20(key, last), mode=None).encryptor().update(bytes(65))
    ctx = p.Cipher(p.ChaCha20(key, (0xFFFFFFFE).to_bytes(4, "little") + nonce), mode=None).encryptor()
    ctx.update(bytes(64))
    ctx.update(bytes(64))
    with pytest.raises(OverflowError):
        ctx.update(bytes(1))
    with pytest.raises(OverflowError):
        _awslc.chacha20(key, (0xFFFFFFF0).to_bytes(4, "little") + nonce, bytes(64 * 16 + 1))
    assert len(_awslc.chacha20(key, (0xFFFFFFF0).to_bytes(4, "little") + nonce, bytes(64 * 16))) == 64 * 16


# ---------------------------------------------------------------- key schedules wiped on dealloc
WIPE_PROBE = """
    import ctypes
    kind = sys.argv[1]
    make = {"aes_ecb": lambda: _awslc.aes_ecb(bytes(range(1, 33))),
            "aead_gcm": lambda: _awslc.aead(1, bytes(range(1, 33))),
            "aead_chacha": lambda: _awslc.aead(2, bytes(range(1, 33)))}[kind]
    objs = [make() for _ in range(40)]  # live neighbours keep the freed block's memory mapped
    target = objs.pop(20)
    addr, size = id(target), type(target).__basicsize__
    buf = (ctypes.c_char * size)()
    ctypes.memmove(buf, addr, size)
    before = bytes(buf)[24:size - 8]
    del target  # dealloc; the allocator reuses at most the block's first 16 bytes for its lists
    ctypes.memmove(buf, addr, size)
    after = bytes(buf)[24:size - 8]
    print(sum(b != 0 for b in before), sum(b != 0 for b in after))
"""


@pytest.mark.parametrize("kind", ["aes_ecb", "aead_gcm", "aead_chacha"])
def test_key_schedule_wiped_on_dealloc(kind):
    """Reads the object's memory right after it is freed (in a subprocess: it is memory the
    program no longer owns): the expanded key must be gone."""
    code = "import sys\n" + textwrap.dedent(WIPE_PROBE)
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(PROVIDER)!r})\n"
                          "from socketiwa_crypto import _awslc\n" + code, kind],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONMALLOC": "pymalloc"})
    assert out.returncode == 0, out.stderr[-2000:]
    nonzero_before, nonzero_after = map(int, out.stdout.split())
    assert nonzero_before > 32, "the probe did not find the key schedule in the live object"
    assert nonzero_after == 0, f"{nonzero_after} key-schedule bytes left in freed memory"


# ---------------------------------------------------------------- PEM parsing stays linear
_CERT_PEM = None


def _cert_pem() -> bytes:
    global _CERT_PEM
    if _CERT_PEM is None:
        import quic_peers
        _CERT_PEM = quic_peers.make_certs()["cert"]
    return _CERT_PEM


HOSTILE_PEM = {
    "BEGIN lines": lambda n: b"-----BEGIN CERTIFICATE-----\n" * n,
    "BEGIN lines of other labels": lambda n: b"".join(b"-----BEGIN L%d-----\n" % (i % 7) for i in range(n)),
    "one BEGIN, then body lines": lambda n: b"-----BEGIN CERTIFICATE-----\n" + b"QUFBQQ==\n" * n,
    "END lines": lambda n: b"-----END CERTIFICATE-----\n" * n,
    "BEGIN without closing dashes": lambda n: b"-----BEGIN CERTIFICATE\n" * n,
    "certificates": lambda n: _cert_pem() * max(1, n // 16),
}


def _parse_cpu_time(data: bytes, times: int = 1) -> float:
    """CPU time of this thread parsing ``data`` ``times`` times: unlike wall time, it does not
    grow while other processes hold the CPU (the wall-time ratio failed at load 14-18)."""
    start = time.thread_time()
    for _ in range(times):
        for parse in (px509.load_pem_x509_certificates, pser.load_pem_private_key):
            try:
                parse(data)
            except (ValueError, TypeError):
                pass
    return time.thread_time() - start


@pytest.mark.parametrize("name", list(HOSTILE_PEM))
def test_pem_parsing_is_linear(name):
    """Parsing one 16x larger input costs about what parsing the small one 16 times does if the
    parser is linear, and 16x that if it is quadratic (16k BEGIN lines took 43 s before). The
    bound, 4x, sits between the two; CPU times, interleaved and best-of-five, no absolute bound
    beyond a 1 ms floor for inputs rejected at once."""
    small, large = HOSTILE_PEM[name](1000), HOSTILE_PEM[name](16000)
    same_bytes, large_once = [], []
    for _ in range(5):      # interleaved: a slow spell (cache, frequency) touches both sides
        same_bytes.append(_parse_cpu_time(small, 16))
        large_once.append(_parse_cpu_time(large))
    t_linear, t_large = min(same_bytes), min(large_once)
    assert t_large <= 4 * t_linear + 1e-3, \
        f"{t_large / max(t_linear, 1e-9):.1f}x the time of the same bytes in 16 small inputs"


def test_pem_malformed_framing_matches_cryptography():
    pem = _cert_pem()
    assert len(px509.load_pem_x509_certificates(b"junk\n" + pem + b"-----END CERTIFICATE-----\n" + pem)) == 2
    assert len(px509.load_pem_x509_certificates(pem + b"-----BEGIN CERTIFICATE-----\nQUFB\n")) == 1  # cut tail
    for bad in (b"-----BEGIN CERTIFICATE-----\n" + pem, pem.replace(b"END CERTIFICATE", b"END OTHER"),
                pem.replace(b"\n-----END", b"!\n-----END")):
        with pytest.raises(ValueError):
            px509.load_pem_x509_certificates(bad)
    store = pssl.X509Store()
    with pytest.raises(pssl.Error):
        store.load_locations(_write_tmp(b"-----BEGIN CERTIFICATE-----\n" * 3))


def _write_tmp(data: bytes) -> str:
    import tempfile
    f = tempfile.NamedTemporaryFile(delete=False, suffix=".pem")
    f.write(data)
    f.close()
    return f.name
