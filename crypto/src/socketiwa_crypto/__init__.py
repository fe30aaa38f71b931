"""AWS-LC behind the slice of the ``cryptography`` / pyOpenSSL / service_identity / certifi APIs
that aioquic 1.7.2 uses, for Pyodide, where those packages cannot be built (cryptography is Rust).

All logic lives here; the packages named ``cryptography``, ``OpenSSL``, ``service_identity`` and
``certifi`` that the wheel also installs only alias these modules (see _aliases.py). On CPython
the real packages are used and this one is only imported by its tests and benchmarks.
"""
__version__ = "0.1.0"


def has_aes_hardware() -> bool:
    """Whether this AWS-LC runs AES and GHASH on CPU instructions. Never in WebAssembly (no AES
    opcodes; the constant-time software AES is several times slower than ChaCha20-Poly1305), so
    socketiwa.quic prefers ChaCha20-Poly1305 when this is False."""
    from . import _awslc
    return bool(_awslc.aes_hardware)
