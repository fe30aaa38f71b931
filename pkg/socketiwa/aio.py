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
import collections
import functools
import ipaddress
import socket as _stdlib_socket
import sys
from typing import Any

from .backends import get_backend
from .backends.base import TcpOptions, UdpOptions
from .errors import InvalidOptionError, NotSupportedError, SocketClosedError

_MAPPED = "::ffff:"
_WRITE_HIGH = 64 * 1024
_WRITE_LOW = 16 * 1024


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
    def __init__(self, loop, protocol):
        self._loop = loop
        self._protocol = protocol
        self._closing = False
        self._lost = False
        self._extra: dict[str, Any] = {}
        self._reading = asyncio.Event()
        self._reading.set()
        self._reader: asyncio.Task | None = None

    def get_extra_info(self, name, default=None):
        return self._extra.get(name, default)

    def is_closing(self):
        return self._closing

    def set_protocol(self, protocol):
        self._protocol = protocol

    def get_protocol(self):
        return self._protocol

    def pause_reading(self):
        self._reading.clear()

    def resume_reading(self):
        self._reading.set()

    def is_reading(self):
        return self._reading.is_set() and not self._closing

    def _connection_lost(self, exc):
        if not self._lost:
            self._lost = True
            self._protocol.connection_lost(exc)


class DatagramTransport(_BaseTransport, asyncio.DatagramTransport):
    """asyncio DatagramTransport over a backend UDP socket."""

    def __init__(self, loop, udp, protocol, *, mapped: bool, family: int):
        super().__init__(loop, protocol)
        self._udp = udp
        self._mapped = mapped
        ep = udp.endpoints
        self._connected = ep.remote_address is not None
        self._extra["sockname"] = self._addr(ep.local_address, ep.local_port)
        if self._connected:
            self._extra["peername"] = self._addr(ep.remote_address, ep.remote_port)
        self._extra["socket"] = _TransportSocket(family, _stdlib_socket.SOCK_DGRAM, self._extra)

    def _addr(self, host, port):
        if self._mapped:
            return (_MAPPED + host if "." in host else host, port, 0, 0)
        return (host, port)

    def _start(self):
        self._protocol.connection_made(self)
        self._reader = self._loop.create_task(self._read_loop())

    async def _read_loop(self):
        exc = None
        try:
            while True:
                if not self._reading.is_set():
                    await self._reading.wait()
                try:
                    batch = await self._udp.recv()
                except SocketClosedError:
                    break
                except OSError as e:       # ICMP errors and the like: the protocol decides
                    self._protocol.error_received(e)
                    continue
                for data, host, port in batch:
                    try:
                        self._protocol.datagram_received(data, self._addr(host, port))
                    except Exception as e:
                        # As asyncio's own transports: the loop's exception handler reports a
                        # protocol bug and the transport keeps receiving (aioquic's QuicServer
                        # ignores connection_lost, so ending here stopped a server silently).
                        self._loop.call_exception_handler({
                            "message": "Exception in datagram_received()", "exception": e,
                            "transport": self, "protocol": self._protocol})
        except Exception as e:  # a protocol bug must not vanish silently
            exc = e
        finally:
            self._closing = True
            self._connection_lost(exc)

    def sendto(self, data, addr=None):
        if self._closing:
            return
        if self._connected:
            if addr is not None and addr[:2] != self._extra["peername"][:2]:
                raise ValueError(f"Invalid address: must be None or {self._extra['peername']}")
            host = port = None
        else:
            if addr is None:
                raise ValueError("Invalid address: must not be None")
            host, port = _unmap(addr[0]), addr[1]
        try:
            self._udp.send_nowait(bytes(data), host, port)
        except OSError as e:
            self._protocol.error_received(e)

    def get_write_buffer_size(self):
        return 0

    def close(self):
        if self._closing:
            return
        self._closing = True
        self._loop.create_task(self._udp.close())

    def abort(self):
        self.close()


class StreamTransport(_BaseTransport, asyncio.Transport):
    """asyncio Transport over a backend TCP stream, with write buffering and flow control."""

    def __init__(self, loop, stream, protocol):
        super().__init__(loop, protocol)
        self._stream = stream
        self._buffer = collections.deque()
        self._buffered = 0
        self._writer: asyncio.Task | None = None
        self._write_paused = False
        self._high, self._low = _WRITE_HIGH, _WRITE_LOW
        ep = stream.endpoints
        family = _stdlib_socket.AF_INET6 if ":" in (ep.local_address or "") else _stdlib_socket.AF_INET
        self._extra.update(sockname=(ep.local_address, ep.local_port),
                           peername=(ep.remote_address, ep.remote_port))
        self._extra["socket"] = _TransportSocket(family, _stdlib_socket.SOCK_STREAM, self._extra)

    def _start(self):
        self._protocol.connection_made(self)
        self._reader = self._loop.create_task(self._read_loop())

    async def _read_loop(self):
        exc = None
        try:
            while True:
                if not self._reading.is_set():
                    await self._reading.wait()
                try:
                    chunk = await self._stream.read()
                except (SocketClosedError, OSError) as e:
                    if not self._closing:
                        exc = e
                    break
                if not chunk:
                    if not self._closing and not self._protocol.eof_received():
                        self.close()
                    break
                self._protocol.data_received(chunk)
        except Exception as e:
            exc = e
            self.abort()
        if exc is not None:
            self.abort()
        if self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})
        self._connection_lost(exc)

    def write(self, data):
        if not data:
            return
        if self._closing:
            raise SocketClosedError("write after close")
        self._buffer.append(bytes(data))
        self._buffered += len(data)
        if self._writer is None or self._writer.done():
            self._writer = self._loop.create_task(self._write_loop())
        if not self._write_paused and self._buffered > self._high:
            self._write_paused = True
            self._protocol.pause_writing()

    def writelines(self, chunks):
        for c in chunks:
            self.write(c)

    async def _write_loop(self):
        try:
            while self._buffer:
                chunk = b"".join(self._buffer)
                self._buffer.clear()
                await self._stream.write(chunk)
                self._buffered -= len(chunk)
                if self._write_paused and self._buffered <= self._low:
                    self._write_paused = False
                    self._protocol.resume_writing()
        except (SocketClosedError, OSError) as e:
            self._buffer.clear()
            self._buffered = 0
            self._closing = True
            self._loop.create_task(self._stream.close())
            self._connection_lost(e)
            return
        if self._closing:
            await self._stream.close()

    def can_write_eof(self):
        return False

    def write_eof(self):
        raise NotSupportedError("half-close is not exposed by this transport")

    def get_write_buffer_size(self):
        return self._buffered

    def get_write_buffer_limits(self):
        return (self._low, self._high)

    def set_write_buffer_limits(self, high=None, low=None):
        self._high = _WRITE_HIGH if high is None else high
        self._low = (self._high // 4) if low is None else low

    def close(self):
        if self._closing:
            return
        self._closing = True
        if self._writer is None or self._writer.done():
            self._writer = self._loop.create_task(self._stream.close())

    def abort(self):
        self._closing = True
        self._buffer.clear()
        self._buffered = 0
        self._loop.create_task(self._stream.close())


class _TransportSocket:
    """What ``transport.get_extra_info('socket')`` returns: enough for getsockname/peername."""

    def __init__(self, family, type_, extra):
        self.family, self.type, self._extra = family, type_, extra

    def getsockname(self):
        return self._extra["sockname"]

    def getpeername(self):
        if "peername" not in self._extra:
            raise OSError(107, "Transport endpoint is not connected")
        return self._extra["peername"]

    def setsockopt(self, *args):
        pass  # options are fixed at open under Direct Sockets

    def fileno(self):
        return -1


class Server(asyncio.AbstractServer):
    """What ``loop.create_server`` returns."""

    def __init__(self, loop, server_transport, protocol_factory):
        self._loop = loop
        self._transport = server_transport
        self._factory = protocol_factory
        self._serving = False
        self._accept_task: asyncio.Task | None = None
        self._closed = asyncio.Event()
        self._connections: set[StreamTransport] = set()
        ep = server_transport.endpoints
        family = _stdlib_socket.AF_INET6 if ":" in ep.local_address else _stdlib_socket.AF_INET
        self._sockets = [_TransportSocket(family, _stdlib_socket.SOCK_STREAM,
                                          {"sockname": (ep.local_address, ep.local_port)})]

    @property
    def sockets(self):
        return tuple(self._sockets)

    def get_loop(self):
        return self._loop

    def is_serving(self):
        return self._serving

    async def start_serving(self):
        if not self._serving and not self._closed.is_set():
            self._serving = True
            self._accept_task = self._loop.create_task(self._accept_loop())

    async def _accept_loop(self):
        while True:
            try:
                stream = await self._transport.accept()
            except OSError:
                continue
            if stream is None:
                break
            transport = StreamTransport(self._loop, stream, self._factory())
            self._connections.add(transport)
            transport._start()

    async def serve_forever(self):
        await self.start_serving()
        await self._closed.wait()

    def close(self):
        if self._closed.is_set():
            return
        self._serving = False
        self._closed.set()
        self._loop.create_task(self._transport.close())

    def close_clients(self):
        for t in list(self._connections):
            t.close()

    def abort_clients(self):
        for t in list(self._connections):
            t.abort()

    async def wait_closed(self):
        await self._closed.wait()
        if self._accept_task is not None:
            await asyncio.wait({self._accept_task}, timeout=5)


# ------------------------------------------------------------------ loop methods
async def create_datagram_endpoint(loop, protocol_factory, local_addr=None, remote_addr=None, *,
                                   family=0, proto=0, flags=0, reuse_address=None, reuse_port=None,
                                   allow_broadcast=None, sock=None):
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
    transport = DatagramTransport(loop, udp, protocol, mapped=mapped,
                                  family=family or _stdlib_socket.AF_INET)
    transport._start()
    return transport, protocol


def _sock_option(sock, level, name):
    try:
        return bool(sock.getsockopt(level, name))
    except (OSError, AttributeError):
        return None


def _sock_bound(sock):
    bound = getattr(sock, "_bound", None)
    if bound is not None:
        return bound
    try:
        return sock.getsockname()
    except OSError:
        return None


async def create_connection(loop, protocol_factory, host=None, port=None, *, ssl=None, family=0,
                            proto=0, flags=0, sock=None, local_addr=None, server_hostname=None,
                            **kwargs):
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
    transport = StreamTransport(loop, stream, protocol)
    transport._start()
    return transport, protocol


async def create_server(loop, protocol_factory, host=None, port=None, *, family=0, flags=0,
                        sock=None, backlog=100, ssl=None, reuse_address=None, reuse_port=None,
                        start_serving=True, **kwargs):
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


async def getaddrinfo(loop, host, port, *, family=0, type=0, proto=0, flags=0):
    """Resolve without a resolver: IP literals and localhost answer locally; other names pass
    through unresolved, because Direct Sockets resolves names itself when it connects."""
    if isinstance(host, bytes):
        host = host.decode()
    if host in (None, "", "localhost"):
        host = "::1" if family == _stdlib_socket.AF_INET6 else "127.0.0.1"
    port = int(port or 0)
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
    loop._socketiwa_installed = True
    if patch_socket if patch_socket is not None else sys.platform == "emscripten":
        from . import compat
        compat.patch_socket_module()
    return loop


__all__ = ["install", "DatagramTransport", "StreamTransport", "Server", "InvalidOptionError"]
