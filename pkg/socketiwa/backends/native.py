"""CPython backend: asyncio's own sockets, pushing into base.py's sinks.

Each socket is an asyncio protocol that calls its sink directly (no task per socket waits in a
receive call); pause/resume map to the asyncio transport's pause_reading/resume_reading, and
asyncio's write flow control (pause_writing/resume_writing) passes through unchanged."""
from __future__ import annotations

import asyncio
import collections
import ipaddress
import socket
import struct
from typing import Any, Callable, Protocol, cast

from ..errors import (ConnectError, InvalidOptionError, MessageTooLargeError, SocketClosedError,
                      SocketIwaError)
from .base import (MAX_UDP_PAYLOAD, AcceptSink, DatagramSink, Endpoints, PermissionState, StreamSink,
                   TcpOptions, UdpOptions)

name = "native"
# Python < 3.12 lacks these constants; the values are Linux's (<linux/in.h>).
IP_ADD_SOURCE_MEMBERSHIP = getattr(socket, "IP_ADD_SOURCE_MEMBERSHIP", 39)
IP_DROP_SOURCE_MEMBERSHIP = getattr(socket, "IP_DROP_SOURCE_MEMBERSHIP", 40)
MCAST_JOIN_SOURCE_GROUP = getattr(socket, "MCAST_JOIN_SOURCE_GROUP", 46)
MCAST_LEAVE_SOURCE_GROUP = getattr(socket, "MCAST_LEAVE_SOURCE_GROUP", 47)


# Loop methods are called as the loop class's own (``type(loop).create_connection(loop, ...)``):
# socketiwa.aio.install() may have replaced the instance's with ones that call this backend,
# which must not call itself.


class _ReadingTransport(Protocol):
    def is_closing(self) -> bool: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class _DatagramTransport(_ReadingTransport, Protocol):
    """asyncio's datagram transport as CPython's selector loop implements it: typeshed's
    DatagramTransport leaves out the reading and write-buffer methods it has."""
    def sendto(self, data: bytes, addr: tuple[Any, ...] | None = None) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def close(self) -> None: ...


_AnySink = DatagramSink | StreamSink


def _family_for(address: str | None, dns_query_type: str | None) -> int:
    if dns_query_type == "ipv6":
        return socket.AF_INET6
    if dns_query_type == "ipv4":
        return socket.AF_INET
    if address:
        try:
            return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        except ValueError:
            pass
    return socket.AF_INET


async def _resolve(host: str, port: int | None, dns_query_type: str | None,
                   kind: int) -> tuple[int, tuple[Any, ...]]:
    loop = asyncio.get_running_loop()
    family = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}.get(dns_query_type or "", 0)
    try:
        infos = await type(loop).getaddrinfo(loop, host, port, family=family, type=kind)
    except socket.gaierror as e:
        raise ConnectError(f"cannot resolve {host!r}: {e}") from None
    return infos[0][0], infos[0][4]


def _os_error(e: OSError, what: str) -> ConnectError:
    return ConnectError(f"{what}: {e.strerror or e}")


def _set_buffers(sock: socket.socket, send: int | None, recv: int | None) -> None:
    if send:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send)
    if recv:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv)


def _endpoints(sock: socket.socket, connected: bool) -> Endpoints:
    local = sock.getsockname()
    ep = Endpoints(local[0], local[1])
    if connected:
        peer = sock.getpeername()
        ep.remote_address, ep.remote_port = peer[0], peer[1]
    return ep


def _report_sink_error(loop: asyncio.AbstractEventLoop, exc: BaseException, where: str,
                       transport: object) -> None:
    # base.py: an exception in a sink goes to the loop's handler and delivery goes on.
    loop.call_exception_handler({"message": f"Exception in socketiwa sink {where}()",
                                 "exception": exc, "transport": transport})


def _lost_error(exc: Exception | None) -> Exception | None:
    if exc is None or isinstance(exc, SocketIwaError):
        return exc
    if isinstance(exc, OSError):
        return _os_error(exc, "connection lost")
    return exc


class _Pusher:
    """What both asyncio protocols share: a sink set by start(), flow control passed through,
    connection_lost exactly once, and a future close() waits on."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.sink: _AnySink | None = None
        self.transport: _ReadingTransport | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self._lost_called = False
        self._write_paused = False

    def _call(self, name: str, *args: Any) -> None:
        try:
            getattr(self.sink, name)(*args)
        except Exception as exc:
            _report_sink_error(self.loop, exc, name, self.transport)

    def pause_writing(self) -> None:
        self._write_paused = True
        if self.sink is not None:
            self._call("pause_writing")

    def resume_writing(self) -> None:
        self._write_paused = False
        if self.sink is not None:
            self._call("resume_writing")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self._lost_called or self.sink is None:
            return
        self._lost_called = True
        self._call("connection_lost", _lost_error(exc))

    def start(self, sink: _AnySink) -> None:
        if self.sink is not None:
            raise RuntimeError("start() may be called once")
        self.sink = sink
        if self.lost.done():   # lost before anyone listened: still tell the sink, scheduled
            self.loop.call_soon(self.connection_lost, None)
            return
        if self._write_paused:
            self.loop.call_soon(self._call, "pause_writing")
        assert self.transport is not None  # connection_made ran before the socket was handed out
        self.transport.resume_reading()


class _UdpProtocol(_Pusher, asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        reading = cast(_DatagramTransport, transport)  # what the loop really gives (see there)
        self.transport = reading
        reading.pause_reading()  # until start(sink): nothing arrives with nowhere to go

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._call("datagram_received", data, addr[0], addr[1])

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable) on connected sockets: report, keep the socket usable.
        if self.sink is not None:
            self._call("error_received", _os_error(exc, "UDP peer unreachable")
                       if isinstance(exc, OSError) else exc)


class _Reading:
    """start/pause_reading/resume_reading for a transport over an asyncio transport + protocol
    (``self._transport``, ``self._proto``); shared by NativeUdp and NativeStream."""

    _transport: _ReadingTransport
    _proto: _Pusher

    def start(self, sink: _AnySink) -> None:
        self._proto.start(sink)

    def pause_reading(self) -> None:
        if not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if not self._transport.is_closing():
            self._transport.resume_reading()


class NativeUdp(_Reading):
    """A UdpTransport (base.py) over asyncio's datagram transport."""

    _transport: _DatagramTransport

    def __init__(self, sock: socket.socket, transport: _DatagramTransport, protocol: _UdpProtocol,
                 opts: UdpOptions):
        self._sock = sock
        self._transport = transport
        self._proto = protocol
        self._groups: list[tuple[str, str | None, str | None]] = []
        self.endpoints = _endpoints(sock, not opts.bound)
        self.family = sock.family

    def send(self, data: bytes, address: str | None, port: int | None) -> None:
        """Queue one datagram (asyncio's DatagramTransport.sendto semantics)."""
        if self._transport.is_closing():
            raise SocketClosedError("UDP socket closed")
        if len(data) > MAX_UDP_PAYLOAD:
            raise MessageTooLargeError(f"datagram of {len(data)} bytes exceeds {MAX_UDP_PAYLOAD}")
        try:
            if address is None:
                self._transport.sendto(data)
            else:
                self._transport.sendto(data, (address, port))
        except (OSError, ValueError) as e:
            raise ConnectError(f"UDP send to {address}:{port} failed: {e}") from None

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    async def close(self) -> None:
        self._transport.close()
        await asyncio.shield(self._proto.lost)

    # ---- multicast
    def _ipv6_interface(self, interface: str | None) -> int:
        if interface in (None, "", "::", "0"):
            return 0
        if interface.isdigit():
            return int(interface)
        name = interface.rpartition("%")[2] if "%" in interface else interface
        try:
            return socket.if_nametoindex(name)
        except OSError:
            raise InvalidOptionError(f"no network interface {interface!r} (IPv6 multicast takes an "
                                     "interface name, index or '::%name')") from None

    def _mreq(self, group: str, interface: str | None, source: str | None) -> tuple[int, int, int, bytes]:
        if self.family == socket.AF_INET6:
            index = self._ipv6_interface(interface)
            if source:
                # struct group_source_req (Linux, 64-bit): u32 interface, 4 pad, two
                # sockaddr_storage (128 bytes each) holding sockaddr_in6.
                def storage(addr: str) -> bytes:  # sockaddr_in6: family, port, flowinfo, address, scope
                    sin6 = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 0, 0) + \
                        socket.inet_pton(socket.AF_INET6, addr) + struct.pack("=I", 0)
                    return sin6.ljust(128, b"\0")
                req = struct.pack("=I4x", index) + storage(group) + storage(source)
                return (socket.IPPROTO_IPV6, MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP, req)
            req = socket.inet_pton(socket.AF_INET6, group) + struct.pack("=I", index)
            return (socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.IPV6_LEAVE_GROUP, req)
        if ":" in group:
            raise InvalidOptionError(f"IPv6 group {group} on an IPv4 socket")
        iface = socket.inet_aton(interface or "0.0.0.0")
        if source:
            # struct ip_mreq_source on Linux: multiaddr, interface, sourceaddr
            return (socket.IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, IP_DROP_SOURCE_MEMBERSHIP,
                    socket.inet_aton(group) + iface + socket.inet_aton(source))
        return (socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.IP_DROP_MEMBERSHIP,
                socket.inet_aton(group) + iface)

    async def join_group(self, group: str, interface: str | None = None, source: str | None = None) -> None:
        try:
            level, add, _, req = self._mreq(group, interface, source)
            self._sock.setsockopt(level, add, req)
        except OSError as e:
            raise InvalidOptionError(f"cannot join {group}: {e.strerror or e}") from None
        self._groups.append((group, interface, source))

    async def leave_group(self, group: str, interface: str | None = None, source: str | None = None) -> None:
        key = (group, interface, source)
        if key not in self._groups:
            raise InvalidOptionError(f"not a member of {group}" + (f" from {source}" if source else ""))
        level, _, drop, req = self._mreq(group, interface, source)
        self._sock.setsockopt(level, drop, req)
        self._groups.remove(key)

    def joined_groups(self) -> list[str]:
        return [g if s is None else f"{s}->{g}" for g, _, s in self._groups]

    def set_multicast_ttl(self, ttl: int) -> None:
        if self.family == socket.AF_INET6:
            self._sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
        else:
            self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)

    def set_multicast_loopback(self, flag: bool) -> None:
        if self.family == socket.AF_INET6:
            self._sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1 if flag else 0)
        else:
            self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1 if flag else 0)


async def open_udp(opts: UdpOptions) -> NativeUdp:
    loop = asyncio.get_running_loop()
    target: tuple[Any, ...] | None
    if opts.remote_address is None:  # opts.bound
        family = _family_for(opts.local_address, opts.dns_query_type)
        target = None
    else:
        family, target = await _resolve(opts.remote_address, opts.remote_port,
                                        opts.dns_query_type, socket.SOCK_DGRAM)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        _set_buffers(sock, opts.send_buffer_size, opts.receive_buffer_size)
        if family == socket.AF_INET6 and opts.ipv6_only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(opts.ipv6_only))
        if opts.multicast_allow_address_sharing:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET:
            if opts.multicast_time_to_live is not None:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, opts.multicast_time_to_live)
            if opts.multicast_loopback is not None:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(opts.multicast_loopback))
        else:
            if opts.multicast_time_to_live is not None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, opts.multicast_time_to_live)
            if opts.multicast_loopback is not None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(opts.multicast_loopback))
        if target is None:  # opts.bound
            host = opts.local_address or ("::" if family == socket.AF_INET6 else "0.0.0.0")
            sock.bind((host, opts.local_port or 0))
        else:
            sock.connect(target)
        transport, proto = await type(loop).create_datagram_endpoint(
            loop, lambda: _UdpProtocol(loop), sock=sock)
    except OSError as e:
        sock.close()
        raise _os_error(e, "cannot open UDP socket") from None
    # (the selector loop's datagram transport: see _DatagramTransport)
    return NativeUdp(sock, cast(_DatagramTransport, transport), proto, opts)


class _StreamProtocol(_Pusher, asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop,
                 on_made: Callable[[NativeStream], None] | None = None):
        super().__init__(loop)
        self._on_made = on_made  # a server's: hand the new stream to the accept sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # a socket connection's: read and write
        self.transport = stream
        stream.pause_reading()  # until start(sink)
        if self._on_made is not None:
            self._on_made(NativeStream(stream, self))

    def data_received(self, data: bytes) -> None:
        self._call("data_received", data)

    def eof_received(self) -> bool:
        self._call("eof_received")
        return True  # half-closed: the owner still writes, then closes (base.py: close())


class NativeStream(_Reading):
    """A StreamTransport (base.py) over asyncio's socket transport."""

    _transport: asyncio.Transport

    def __init__(self, transport: asyncio.Transport, protocol: _StreamProtocol):
        self._transport = transport
        self._proto = protocol
        self._aborted = False
        # The addresses asyncio read when it made the transport: a peer that resets at once
        # (a server refusing the connection) makes a later getpeername() fail with ENOTCONN,
        # which must not turn a connect that succeeded into an untyped OSError.
        local = transport.get_extra_info("sockname")
        peer = transport.get_extra_info("peername")
        self.endpoints = Endpoints(local[0], local[1]) if local else Endpoints()
        if peer:
            self.endpoints.remote_address, self.endpoints.remote_port = peer[0], peer[1]

    def write(self, data: bytes) -> None:
        if self._transport.is_closing() or self._proto.lost.done():
            raise SocketClosedError("TCP connection closed")
        self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def abort(self) -> None:
        """Close now: discard unsent data and reset the connection (SO_LINGER 0 makes the kernel
        drop its send buffer too)."""
        self._aborted = True
        sock = self._transport.get_extra_info("socket")
        try:
            if sock is not None and sock.fileno() >= 0:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self._transport.abort()

    async def close(self) -> None:
        if not self._transport.is_closing():
            try:
                if self._transport.can_write_eof():
                    self._transport.write_eof()  # FIN once the buffer is flushed
            except OSError:
                pass
            self._transport.close()
        await asyncio.shield(self._proto.lost)


def _apply_tcp_options(sock: socket.socket, opts: TcpOptions) -> None:
    if opts.no_delay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if opts.keep_alive_delay is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, opts.keep_alive_delay // 1000))
    _set_buffers(sock, opts.send_buffer_size, opts.receive_buffer_size)


async def open_tcp(host: str, port: int, opts: TcpOptions) -> NativeStream:
    family = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}.get(opts.dns_query_type or "", 0)
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await type(loop).create_connection(
            loop, lambda: _StreamProtocol(loop), host, port, family=family)
    except OSError as e:
        raise _os_error(e, f"cannot connect to {host}:{port}") from None
    _apply_tcp_options(transport.get_extra_info("socket"), opts)
    return NativeStream(transport, protocol)


class NativeServer:
    """A ServerTransport (base.py) over asyncio's server."""

    def __init__(self, loop: asyncio.AbstractEventLoop, backlog: int):
        self._loop = loop
        self._server: asyncio.AbstractServer | None = None
        self._sink: AcceptSink | None = None
        self._paused = False
        self._waiting: collections.deque[NativeStream] = collections.deque()  # accepted before start/while paused
        self._backlog = backlog
        self.endpoints = Endpoints()
        self.closed = False

    def _on_made(self, stream: NativeStream) -> None:
        if self.closed:
            stream.abort()
            return
        if self._sink is None or self._paused or self._waiting:
            if len(self._waiting) >= self._backlog:
                stream.abort()  # as a full OS backlog would refuse it
                return
            self._waiting.append(stream)
            return
        self._hand_over(self._sink, stream)

    def _hand_over(self, sink: AcceptSink, stream: NativeStream) -> None:
        try:
            sink.connection_made(stream)
        except Exception as exc:
            # As directsockets.py: nobody owns the connection now, so reset it rather than
            # leave the peer waiting on an open socket nothing will ever read or close.
            _report_sink_error(self._loop, exc, "connection_made", self)
            stream.abort()

    def _flush_waiting(self) -> None:
        sink = self._sink
        if sink is None:
            return  # resume_reading() before start(): they wait for start()
        while self._waiting and not self._paused and not self.closed:
            self._hand_over(sink, self._waiting.popleft())

    def start(self, sink: AcceptSink) -> None:
        self._sink = sink
        self._loop.call_soon(self._flush_waiting)

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self._loop.call_soon(self._flush_waiting)

    async def close(self) -> None:
        """Stop listening (the listening socket is closed when this returns) and reset the
        connections not handed over. Accepted connections are their owners' to close; so this
        does not await Server.wait_closed(), which from Python 3.12 on also waits for every
        connection the server ever accepted to close."""
        if self.closed:
            return
        self.closed = True
        assert self._server is not None  # set by open_tcp_server before it returns this object
        self._server.close()
        while self._waiting:
            self._waiting.popleft().abort()
        if self._sink is not None:
            sink = self._sink
            self._loop.call_soon(lambda: sink.connection_lost(None))


async def open_tcp_server(host: str, port: int, backlog: int | None, ipv6_only: bool | None) -> NativeServer:
    loop = asyncio.get_running_loop()
    srv = NativeServer(loop, backlog or 128)
    try:
        srv._server = server = await type(loop).create_server(
            loop, lambda: _StreamProtocol(loop, srv._on_made), host, port, backlog=backlog or 128)
    except OSError as e:
        raise _os_error(e, f"cannot listen on {host}:{port}") from None
    sockname = server.sockets[0].getsockname()
    srv.endpoints = Endpoints(sockname[0], sockname[1])
    return srv


async def permissions() -> PermissionState:
    # Desktop Python is bound by the OS, not by a browser permissions policy.
    return PermissionState(details={"backend": "native"})


def mtu_hint() -> int:
    return MAX_UDP_PAYLOAD


