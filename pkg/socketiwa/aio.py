"""asyncio on socketiwa's backends: the "syscall bridge" for unmodified asyncio libraries.

``install()`` gives an event loop working ``create_datagram_endpoint``, ``create_connection``,
``create_server`` and ``getaddrinfo`` backed by socketiwa's transport backend (Direct Sockets in
Pyodide). ``asyncio.open_connection`` and ``asyncio.start_server`` are built on those, so they
work too; so do ``aioquic.asyncio.connect`` and ``serve``. In Pyodide it also replaces
``socket.socket`` with :class:`socketiwa.compat.socket`, because Pyodide's own socket module
cannot open AF_INET6 sockets and aioquic creates one before handing it to the loop.
"""
from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket as _stdlib_socket
import sys
from typing import Any, Callable, Iterable, Protocol, TypeVar, cast

from .backends import get_backend
from .backends.base import ServerTransport as BackendServer
from .backends.base import StreamTransport as BackendStream
from .backends.base import TcpOptions, UdpOptions
from .backends.base import UdpTransport as BackendUdp
from .errors import InvalidOptionError, NotSupportedError, SocketClosedError

_MAPPED = "::ffff:"
_WRITE_HIGH = 64 * 1024
_WRITE_LOW = 16 * 1024
_ProtocolT = TypeVar("_ProtocolT", bound=asyncio.BaseProtocol)
_Buffer = bytes | bytearray | memoryview  # what asyncio transports take to send
_Addr = tuple[Any, ...]  # a socket address: (host, port) or (host, port, flowinfo, scope_id)
_StreamProtocol = asyncio.Protocol | asyncio.BufferedProtocol  # what a stream transport drives


class _SocketLike(Protocol):
    """What the loop methods read from a ``sock=`` argument: a stdlib socket, or
    socketiwa.compat.socket where install() replaced socket.socket."""

    @property
    def family(self) -> int: ...
    def getsockname(self) -> Any: ...
    def getpeername(self) -> Any: ...
    def getsockopt(self, level: int, optname: int, /) -> int: ...
    def close(self) -> None: ...


class _BackendCommon(Protocol):
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    async def close(self) -> None: ...


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _unmap(host: str) -> str:
    """'::ffff:1.2.3.4' -> '1.2.3.4' (dual-stack sockets are served by an IPv4 socket)."""
    if host.lower().startswith(_MAPPED) and "." in host:
        return host[len(_MAPPED):]
    return host


class _BaseTransport:
    """What both transports share. Each is the backend transport's sink and passes what arrives
    straight to the asyncio protocol: no task, no buffer of its own."""

    _backend: _BackendCommon
    _protocol: asyncio.BaseProtocol

    def __init__(self, loop: asyncio.AbstractEventLoop, backend: _BackendCommon,
                 protocol: asyncio.BaseProtocol):
        self._loop = loop
        self._backend = backend
        self._protocol = protocol
        self._closing = False
        self._lost = False
        self._reading = True
        self._extra: dict[str, Any] = {}

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def pause_reading(self) -> None:
        if self._reading and not self._lost:
            self._reading = False
            self._backend.pause_reading()

    def resume_reading(self) -> None:
        if not self._reading and not self._lost:
            self._reading = True
            self._backend.resume_reading()

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def get_write_buffer_size(self) -> int:
        return self._backend.get_write_buffer_size()

    # ---- sink methods (base.py); the backend reports exceptions raised here to the loop
    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost:
            self._lost = True
            self._closing = True
            self._protocol.connection_lost(exc)

    def _close_backend(self) -> None:
        task = self._loop.create_task(self._backend.close())
        # retrieved here: the outcome reaches the protocol as connection_lost
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


class DatagramTransport(_BaseTransport, asyncio.DatagramTransport):
    """asyncio DatagramTransport over a backend UDP socket."""

    _backend: BackendUdp
    _protocol: asyncio.DatagramProtocol

    def __init__(self, loop: asyncio.AbstractEventLoop, udp: BackendUdp,
                 protocol: asyncio.DatagramProtocol, *, mapped: bool, family: int):
        super().__init__(loop, udp, protocol)
        self._mapped = mapped
        ep = udp.endpoints
        self._connected = ep.remote_address is not None
        self._extra["sockname"] = self._addr(ep.local_address, ep.local_port)
        if ep.remote_address is not None:  # self._connected
            self._extra["peername"] = self._addr(ep.remote_address, ep.remote_port)
        self._extra["socket"] = _TransportSocket(family, _stdlib_socket.SOCK_DGRAM, self._extra)

    def _start(self) -> None:
        self._protocol.connection_made(self)
        self._backend.start(self)

    def _addr(self, host: str, port: int | None) -> _Addr:
        if self._mapped:
            return (_MAPPED + host if "." in host else host, port, 0, 0)
        return (host, port)

    def datagram_received(self, data: bytes, host: str, port: int) -> None:
        """Backend sink: a datagram arrived; the protocol gets it with the sender's address."""
        if self._mapped:
            self._protocol.datagram_received(data, (_MAPPED + host if "." in host else host, port, 0, 0))
        else:
            self._protocol.datagram_received(data, (host, port))

    def error_received(self, exc: Exception) -> None:
        """Backend sink: a non-fatal error (ICMP unreachable); passed to the protocol."""
        self._protocol.error_received(exc)

    # (typeshed's addr also takes AF_UNIX paths, str or bytes: no such sockets here)
    def sendto(self, data: _Buffer, addr: _Addr | None = None) -> None:  # type: ignore[override]
        if self._closing:
            return
        host: str | None
        port: int | None
        if self._connected:
            if addr is not None and addr[:2] != self._extra["peername"][:2]:
                raise ValueError(f"Invalid address: must be None or {self._extra['peername']}")
            host = port = None
        else:
            if addr is None:
                raise ValueError("Invalid address: must not be None")
            host, port = _unmap(addr[0]), addr[1]
        try:
            self._backend.send(bytes(data), host, port)
        except OSError as e:
            self._protocol.error_received(e)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._close_backend()

    def abort(self) -> None:
        self.close()


class StreamTransport(_BaseTransport, asyncio.Transport):
    """asyncio Transport over a backend TCP stream; the backend queues writes and says when to
    pause (pause_writing/resume_writing reach the protocol unchanged)."""

    _backend: BackendStream
    _protocol: _StreamProtocol

    def __init__(self, loop: asyncio.AbstractEventLoop, stream: BackendStream,
                 protocol: _StreamProtocol):
        super().__init__(loop, stream, protocol)
        self._fatal: BaseException | None = None  # a BufferedProtocol's failure that ended the connection
        ep = stream.endpoints
        family = _stdlib_socket.AF_INET6 if ":" in (ep.local_address or "") else _stdlib_socket.AF_INET
        self._extra.update(sockname=(ep.local_address, ep.local_port),
                           peername=(ep.remote_address, ep.remote_port))
        self._extra["socket"] = _TransportSocket(family, _stdlib_socket.SOCK_STREAM, self._extra)
        self._high, self._low = _WRITE_HIGH, _WRITE_LOW

    def _start(self) -> None:
        self._protocol.connection_made(self)
        self._backend.start(self)

    def data_received(self, data: bytes) -> None:
        """Backend sink: bytes arrived; passed to the protocol (a BufferedProtocol gets them
        copied into the buffers it hands out)."""
        protocol = self._protocol
        if isinstance(protocol, asyncio.BufferedProtocol):
            self._feed_buffered(protocol, data)
        else:
            protocol.data_received(data)

    def _feed_buffered(self, protocol: asyncio.BufferedProtocol, data: bytes) -> None:
        if self._fatal is not None:
            return  # the connection already failed: as asyncio, nothing more is delivered
        rest = memoryview(data)
        try:
            while rest:
                buf = memoryview(protocol.get_buffer(len(rest))).cast("B")
                n = min(len(buf), len(rest))
                if n == 0:
                    raise RuntimeError("get_buffer() returned an empty buffer")
                buf[:n] = rest[:n]
                protocol.buffer_updated(n)
                rest = rest[n:]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() or buffer_updated() call failed.")

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        # asyncio's transports treat a failing BufferedProtocol call as fatal: report it, drop
        # the connection, and hand the protocol that exception in connection_lost.
        self._fatal = exc
        self._loop.call_exception_handler({"message": message, "exception": exc,
                                           "transport": self, "protocol": self._protocol})
        self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        """Backend sink: the stream ended; a buffered protocol's own failure is what it reports."""
        if isinstance(self._fatal, Exception):
            exc = self._fatal
        super().connection_lost(exc)

    def eof_received(self) -> None:
        """Backend sink: the peer finished sending. Closes this transport unless the protocol's
        ``eof_received`` returns true (asyncio's rule)."""
        if not self._closing and not self._protocol.eof_received():
            self.close()

    def write(self, data: _Buffer) -> None:
        if not data:
            return
        if self._closing:
            raise SocketClosedError("write after close")
        self._backend.write(bytes(data))

    def writelines(self, list_of_data: Iterable[_Buffer]) -> None:
        for c in list_of_data:
            self.write(c)

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotSupportedError("half-close is not exposed by this transport")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        # The backend owns its marks (base.py); recorded for callers that read them back.
        self._high = _WRITE_HIGH if high is None else high
        self._low = (self._high // 4) if low is None else low

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._close_backend()  # flushes what write() queued, then FIN

    def abort(self) -> None:
        self._closing = True
        if not self._lost:
            self._backend.abort()


class _TransportSocket:
    """What ``transport.get_extra_info('socket')`` returns: enough for getsockname/peername."""

    def __init__(self, family: int, type_: int, extra: dict[str, Any]):
        self.family, self.type, self._extra = family, type_, extra

    def getsockname(self) -> _Addr:
        return cast(_Addr, self._extra["sockname"])

    def getpeername(self) -> _Addr:
        if "peername" not in self._extra:
            raise OSError(107, "Transport endpoint is not connected")
        return cast(_Addr, self._extra["peername"])

    def setsockopt(self, *args: Any) -> None:
        pass  # options are fixed at open under Direct Sockets

    def fileno(self) -> int:
        return -1


class Server(asyncio.AbstractServer):
    """What ``loop.create_server`` returns; the backend listener's accept sink."""

    def __init__(self, loop: asyncio.AbstractEventLoop, server_transport: BackendServer,
                 protocol_factory: Callable[[], asyncio.BaseProtocol]):
        self._loop = loop
        self._transport = server_transport
        self._factory = protocol_factory
        self._serving = False
        self._started = False
        self._closed = asyncio.Event()
        self._listener_gone = asyncio.Event()
        self._connections: set[StreamTransport] = set()
        ep = server_transport.endpoints
        family = _stdlib_socket.AF_INET6 if ":" in ep.local_address else _stdlib_socket.AF_INET
        self._sockets = [_TransportSocket(family, _stdlib_socket.SOCK_STREAM,
                                          {"sockname": (ep.local_address, ep.local_port)})]

    @property
    def sockets(self) -> tuple[_TransportSocket, ...]:
        """The listening socket, as a stand-in object: ``getsockname()``, ``family``, ``type``."""
        return tuple(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if not self._serving and not self._closed.is_set():
            self._serving = True
            if not self._started:
                self._started = True
                self._transport.start(self)
            else:
                self._transport.resume_reading()

    # ---- accept sink (base.py)
    def connection_made(self, stream: BackendStream) -> None:
        """Backend accept sink: a new connection gets a protocol from the factory."""
        # A stream protocol, as asyncio's own loop assumes of create_server's factory.
        transport = StreamTransport(self._loop, stream, cast(_StreamProtocol, self._factory()))
        self._connections.add(transport)
        transport._start()

    def connection_lost(self, exc: Exception | None) -> None:
        """Backend accept sink: the listener ended."""
        self._listener_gone.set()

    async def serve_forever(self) -> None:
        await self.start_serving()
        await self._closed.wait()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._serving = False
        self._closed.set()
        task = self._loop.create_task(self._transport.close())
        task.add_done_callback(lambda t: self._listener_gone.set())

    def close_clients(self) -> None:
        """Close every connection this server accepted (what was written is sent first)."""
        for t in list(self._connections):
            t.close()

    def abort_clients(self) -> None:
        """Abort every connection this server accepted (unsent data is discarded)."""
        for t in list(self._connections):
            t.abort()

    async def wait_closed(self) -> None:
        await self._closed.wait()
        await asyncio.wait({asyncio.ensure_future(self._listener_gone.wait())}, timeout=5)


# ------------------------------------------------------------------ loop methods
async def create_datagram_endpoint(
        loop: asyncio.AbstractEventLoop, protocol_factory: Callable[[], _ProtocolT],
        local_addr: tuple[str, int] | None = None,  # (the stdlib also takes AF_UNIX paths)
        remote_addr: tuple[str, int] | None = None, *, family: int = 0, proto: int = 0,
        flags: int = 0, reuse_address: bool | None = None, reuse_port: bool | None = None,
        allow_broadcast: bool | None = None, sock: _SocketLike | None = None,
) -> tuple[DatagramTransport, _ProtocolT]:
    ipv6_only = None
    if sock is not None:
        if local_addr or remote_addr:
            raise ValueError("socket modifier keyword arguments can not be used when sock is specified")
        family = sock.family
        ipv6_only = _sock_option(sock, _stdlib_socket.IPPROTO_IPV6, getattr(_stdlib_socket, "IPV6_V6ONLY", 26))
        local_addr = _sock_bound(sock)
        try:
            remote_addr = sock.getpeername()
        except OSError:
            remote_addr = None
        sock.close()  # the backend opens its own socket on the same address
    opts = UdpOptions(multicast_allow_address_sharing=bool(reuse_port) or None)
    mapped = False
    if remote_addr is not None:
        opts.remote_address, opts.remote_port = _unmap(remote_addr[0]), remote_addr[1]
    else:
        host, port = (local_addr or ("0.0.0.0", 0))[:2]
        if host in ("::", "") and family != _stdlib_socket.AF_INET and not ipv6_only:
            # A dual-stack wildcard: serve it with an IPv4 socket and present IPv4-mapped
            # addresses, as the kernel would (Direct Sockets has no dual-stack switch).
            host, mapped = "0.0.0.0", True
        opts.local_address, opts.local_port = host or "0.0.0.0", port
    udp = await get_backend().open_udp(opts)
    protocol = protocol_factory()
    # A datagram protocol, as asyncio's own loop assumes of this factory.
    transport = DatagramTransport(loop, udp, cast(asyncio.DatagramProtocol, protocol), mapped=mapped,
                                  family=family or _stdlib_socket.AF_INET)
    transport._start()
    return transport, protocol


def _sock_option(sock: _SocketLike, level: int, name: int) -> bool | None:
    try:
        return bool(sock.getsockopt(level, name))
    except (OSError, AttributeError):
        return None


def _sock_bound(sock: _SocketLike) -> Any:  # the bound address tuple, or None
    bound = getattr(sock, "_bound", None)
    if bound is not None:
        return bound
    try:
        return sock.getsockname()
    except OSError:
        return None


async def create_connection(
        loop: asyncio.AbstractEventLoop, protocol_factory: Callable[[], _ProtocolT],
        host: str | None = None, port: int | None = None, *, ssl: Any = None, family: int = 0,
        proto: int = 0, flags: int = 0, sock: _SocketLike | None = None,
        local_addr: tuple[str, int] | None = None, server_hostname: str | None = None,
        **kwargs: Any) -> tuple[StreamTransport, _ProtocolT]:
    if ssl:
        raise NotSupportedError("TLS over TCP is not available here: Pyodide has no ssl module "
                                "(QUIC carries its own TLS 1.3: see socketiwa.quic)")
    if sock is not None:
        host, port = sock.getpeername()[:2]
        sock.close()
    if host is None or port is None:
        raise ValueError("host and port are required")
    stream = await get_backend().open_tcp(_unmap(host), int(port), TcpOptions(no_delay=True))
    protocol = protocol_factory()
    # A stream protocol, as asyncio's own loop assumes of this factory.
    transport = StreamTransport(loop, stream, cast(_StreamProtocol, protocol))
    transport._start()
    return transport, protocol


async def create_server(
        loop: asyncio.AbstractEventLoop, protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | list[str] | tuple[str, ...] | None = None, port: int | None = None, *, family: int = 0,
        flags: int = 0, sock: _SocketLike | None = None, backlog: int = 100, ssl: Any = None,
        reuse_address: bool | None = None, reuse_port: bool | None = None,
        start_serving: bool = True, **kwargs: Any) -> Server:
    if ssl:
        raise NotSupportedError("TLS servers are not available here (no ssl module in Pyodide)")
    if sock is not None:
        host, port = _sock_bound(sock)[:2]
        sock.close()
    if isinstance(host, (list, tuple)):
        if len(host) != 1:
            raise NotSupportedError("one listening address per server under Direct Sockets")
        host = host[0]
    server_transport = await get_backend().open_tcp_server(host or "0.0.0.0", port or 0, backlog, None)
    server = Server(loop, server_transport, protocol_factory)
    if start_serving:
        await server.start_serving()
    return server


async def getaddrinfo(loop: asyncio.AbstractEventLoop, host: bytes | str | None,
                      port: bytes | str | int | None, *, family: int = 0, type: int = 0,
                      proto: int = 0, flags: int = 0) -> list[tuple[int, int, int, str, _Addr]]:
    """Resolve without a resolver: IP literals and localhost answer locally; other names pass
    through unresolved, because Direct Sockets resolves names itself when it connects."""
    if isinstance(host, bytes):
        host = host.decode()
    if host is None or host in ("", "localhost"):
        host = "::1" if family == _stdlib_socket.AF_INET6 else "127.0.0.1"
    port = int(port or 0)
    fam: int
    if _is_ip(host):
        fam = _stdlib_socket.AF_INET6 if ":" in host else _stdlib_socket.AF_INET
        if family and family != fam:
            raise _stdlib_socket.gaierror(-9, "Address family for hostname not supported")
        addr = (host, port, 0, 0) if fam == _stdlib_socket.AF_INET6 else (host, port)
    else:
        fam = family or _stdlib_socket.AF_INET
        addr = (host, port, 0, 0) if fam == _stdlib_socket.AF_INET6 else (host, port)
    types = [type] if type else [_stdlib_socket.SOCK_STREAM, _stdlib_socket.SOCK_DGRAM]
    return [(fam, t, proto or (17 if t == _stdlib_socket.SOCK_DGRAM else 6), "", addr) for t in types]


def install(loop: asyncio.AbstractEventLoop | None = None, *,
            patch_socket: bool | None = None) -> asyncio.AbstractEventLoop:
    """Back ``loop``'s networking with socketiwa. Idempotent. In Pyodide (the default for
    ``patch_socket``) also replace ``socket.socket`` with socketiwa's compatible class."""
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.get_event_loop()
    if getattr(loop, "_socketiwa_installed", False):
        return loop
    for name, fn in (("create_datagram_endpoint", create_datagram_endpoint),
                     ("create_connection", create_connection),
                     ("create_server", create_server),
                     ("getaddrinfo", getaddrinfo)):
        setattr(loop, name, functools.partial(fn, loop))
    setattr(loop, "_socketiwa_installed", True)  # (not an attribute asyncio's loops declare)
    if patch_socket if patch_socket is not None else sys.platform == "emscripten":
        from . import compat
        compat.patch_socket_module()
    return loop


__all__ = ["install", "DatagramTransport", "StreamTransport", "Server", "InvalidOptionError"]
