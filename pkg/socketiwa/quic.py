"""QUIC over socketiwa: aioquic's asyncio client and server, unmodified, on socketiwa's loop
integration (Direct Sockets in Pyodide, asyncio sockets on CPython).

The echo pair here (ALPN ``echo``: every stream's bytes come straight back) is the smallest
complete QUIC application, used for tests and benchmarks and as a pattern for your own.
"""
from __future__ import annotations

import asyncio
import os
import tempfile
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, cast

from . import aio

try:
    from aioquic.asyncio import QuicConnectionProtocol, connect, serve
    from aioquic.asyncio.server import QuicServer
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived
    from aioquic.tls import CipherSuite
except ImportError as exc:  # pragma: no cover - aioquic is an optional dependency
    raise ImportError("socketiwa.quic needs aioquic (pip install 'socketiwa[quic]'; in Pyodide "
                      "load the aioquic wheel built by build-wasm.sh)") from exc

ALPN_ECHO = "echo"
CIPHER_SUITES = {
    "AES_128_GCM_SHA256": CipherSuite.AES_128_GCM_SHA256,
    "AES_256_GCM_SHA384": CipherSuite.AES_256_GCM_SHA384,
    "CHACHA20_POLY1305_SHA256": CipherSuite.CHACHA20_POLY1305_SHA256,
}


# aioquic's own order (tls.Context), kept wherever AES runs on CPU instructions.
_AES_FIRST = ["AES_256_GCM_SHA384", "AES_128_GCM_SHA256", "CHACHA20_POLY1305_SHA256"]


def aes_hardware() -> bool:
    """Whether the crypto backend here runs AES-GCM on CPU instructions. False in Pyodide (the
    socketiwa-crypto provider is AWS-LC compiled to WebAssembly, which has no AES opcodes); True
    with the real ``cryptography`` on CPython (OpenSSL uses AES-NI / ARMv8 AES)."""
    # Ask the package aioquic will use: socketiwa_crypto may be importable on CPython too (the
    # provider's own tests put it on the path) while `cryptography` is the real one.
    from cryptography.hazmat.backends import default_backend
    if not type(default_backend()).__module__.startswith("socketiwa_crypto"):
        return True
    from socketiwa_crypto import has_aes_hardware
    return bool(has_aes_hardware())


def preferred_cipher_suites(*, is_client: bool) -> list[str]:
    """The TLS 1.3 suites, in preference order, that ``client_configuration`` and
    ``server_configuration`` use when not given ``cipher_suites``.

    With AES hardware: aioquic's default order (AES-256-GCM, AES-128-GCM, ChaCha20-Poly1305).
    Without it (Pyodide), ChaCha20-Poly1305 is several times faster than software AES-GCM, so,
    as BoringSSL does on such CPUs: a server lists it first (aioquic's server picks the first
    suite of its own list that the client offers), and a client offers only ChaCha20-Poly1305,
    because aioquic servers ignore the client's order and would pick AES. A client that must
    reach a server without ChaCha20 (e.g. FIPS-only) passes ``cipher_suites=["AES_128_GCM_SHA256"]``
    or this list with ``is_client=False``. QUIC Initial packets use AES-128-GCM either way.
    """
    if aes_hardware():
        return list(_AES_FIRST)
    if is_client:
        return ["CHACHA20_POLY1305_SHA256"]
    return ["CHACHA20_POLY1305_SHA256", "AES_128_GCM_SHA256", "AES_256_GCM_SHA384"]


def _pem_file(data: bytes | str, suffix: str) -> str:
    """aioquic loads certificates from paths; write PEM given as bytes to a private temp file."""
    if isinstance(data, str) and not data.lstrip().startswith("-----"):
        return data  # already a path
    fd, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def server_configuration(certificate: bytes | str, private_key: bytes | str, *,
                         alpn: str = ALPN_ECHO, cipher_suites: list[str] | None = None,
                         **kwargs: Any) -> QuicConfiguration:
    """aioquic's server QuicConfiguration with a certificate chain and key (PEM bytes/str or
    file paths), ALPN ``alpn`` and the suites of ``preferred_cipher_suites`` unless
    ``cipher_suites`` names others. Further keyword arguments go to QuicConfiguration."""
    config = QuicConfiguration(is_client=False, alpn_protocols=[alpn], **kwargs)
    config.cipher_suites = [CIPHER_SUITES[c] for c in
                            cipher_suites or preferred_cipher_suites(is_client=False)]
    cert, key = _pem_file(certificate, ".crt"), _pem_file(private_key, ".key")
    try:
        config.load_cert_chain(cert, key)
    finally:
        for path, src in ((cert, certificate), (key, private_key)):
            if path is not src:
                os.unlink(path)
    return config


def client_configuration(*, cadata: bytes | str | None = None, server_name: str | None = None,
                         alpn: str = ALPN_ECHO, cipher_suites: list[str] | None = None,
                         verify: bool = True, **kwargs: Any) -> QuicConfiguration:
    """aioquic's client QuicConfiguration: trusts ``cadata`` (PEM) when given, checks the
    server's name (``server_name``; ``verify=False`` skips verification), ALPN ``alpn``."""
    import ssl
    config = QuicConfiguration(is_client=True, alpn_protocols=[alpn], server_name=server_name,
                               **kwargs)
    config.cipher_suites = [CIPHER_SUITES[c] for c in
                            cipher_suites or preferred_cipher_suites(is_client=True)]
    if cadata is not None:  # aioquic parses PEM as bytes
        config.load_verify_locations(cadata=cadata.encode() if isinstance(cadata, str) else cadata)
    if not verify:
        config.verify_mode = ssl.CERT_NONE
    return config


class EchoServerProtocol(QuicConnectionProtocol):
    """Echoes every stream; records how each connection ended."""

    closed: list[tuple[int, str]] = []

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            self._quic.send_stream_data(event.stream_id, event.data, end_stream=event.end_stream)
        elif isinstance(event, ConnectionTerminated):
            type(self).closed.append((event.error_code, event.reason_phrase))


class EchoClientProtocol(QuicConnectionProtocol):
    """Client side of the echo ALPN: ``await echo(data)`` sends data on a new stream and
    returns what came back; ``terminated`` holds the close event once the connection ended."""
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._streams: dict[int, tuple[bytearray, asyncio.Future[bytes]]] = {}
        self.terminated: ConnectionTerminated | None = None

    async def echo(self, data: bytes) -> bytes:
        """Send ``data`` on a new bidirectional stream; return what comes back."""
        stream_id = self._quic.get_next_available_stream_id()
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._streams[stream_id] = (bytearray(), waiter)
        self._quic.send_stream_data(stream_id, data, end_stream=True)
        self.transmit()
        return await waiter

    def key_update(self) -> None:
        """Start a 1-RTT key update (RFC 9001 section 6)."""
        self._quic.request_key_update()
        self.transmit()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived) and event.stream_id in self._streams:
            buf, waiter = self._streams[event.stream_id]
            buf += event.data
            if event.end_stream:
                del self._streams[event.stream_id]
                if not waiter.done():
                    waiter.set_result(bytes(buf))
        elif isinstance(event, ConnectionTerminated):
            self.terminated = event
            for _, waiter in self._streams.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError(f"QUIC connection closed: {event.reason_phrase}"))


async def serve_echo(host: str, port: int, configuration: QuicConfiguration, *,
                     retry: bool = False,
                     protocol: type[QuicConnectionProtocol] = EchoServerProtocol) -> QuicServer:
    """Start a QUIC echo server; returns aioquic's QuicServer (``.close()`` to stop)."""
    aio.install()
    return await serve(host, port, configuration=configuration, create_protocol=protocol, retry=retry)


@asynccontextmanager
async def connect_echo(host: str, port: int, configuration: QuicConfiguration,
                       **kwargs: Any) -> AsyncIterator[EchoClientProtocol]:
    """Connect a QUIC echo client (aioquic's ``connect``, on socketiwa's transport)."""
    aio.install()
    async with connect(host, port, configuration=configuration,
                       create_protocol=EchoClientProtocol, **kwargs) as client:
        yield cast(EchoClientProtocol, client)   # create_protocol made it; aioquic types the base class
