"""CPython backend: asyncio's own sockets."""
from __future__ import annotations

import asyncio
import collections
import ipaddress
import socket
import struct

from ..errors import (ConnectError, InvalidOptionError, MessageTooLargeError, NotSupportedError,
                      SocketClosedError)
from .base import MAX_UDP_PAYLOAD, Endpoints, PermissionState, TcpOptions, UdpOptions

name = "native"
READ_CHUNK = 256 * 1024
# Python < 3.12 lacks these constants; the values are Linux's (<linux/in.h>).
IP_ADD_SOURCE_MEMBERSHIP = getattr(socket, "IP_ADD_SOURCE_MEMBERSHIP", 39)
IP_DROP_SOURCE_MEMBERSHIP = getattr(socket, "IP_DROP_SOURCE_MEMBERSHIP", 40)


def _unpatched(loop, name):
    """The loop class's own method: socketiwa.aio.install() may have replaced the instance's
    with ones that call this backend, which must not call itself."""
    return getattr(type(loop), name).__get__(loop)


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


async def _resolve(host: str, port: int, dns_query_type: str | None, kind: int) -> tuple:
    loop = asyncio.get_running_loop()
    family = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}.get(dns_query_type or "", 0)
    try:
        infos = await _unpatched(loop, "getaddrinfo")(host, port, family=family, type=kind)
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


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, max_queue: int):
        self.queue: collections.deque = collections.deque()
        self.max_queue = max_queue
        self.waiter: asyncio.Future | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = False
        self.paused_reading = False
        self.error: Exception | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()

    def connection_made(self, transport):
        self.transport = transport

    def _wake(self):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def datagram_received(self, data, addr):
        self.queue.append((data, addr[0], addr[1]))
        if len(self.queue) >= self.max_queue and not self.paused_reading:
            # Stop reading: the kernel buffer fills and drops, as UDP does, instead of our memory.
            self.transport.pause_reading()
            self.paused_reading = True
        self._wake()

    def error_received(self, exc):
        # ICMP errors (port unreachable) on connected sockets: report, keep the socket usable.
        self.error = exc
        self._wake()

    def connection_lost(self, exc):
        self.closed = True
        self._can_write.set()
        self._wake()

    def pause_writing(self):
        self._can_write.clear()

    def resume_writing(self):
        self._can_write.set()


class NativeUdp:
    def __init__(self, sock: socket.socket, transport, protocol: _UdpProtocol, opts: UdpOptions):
        self._sock = sock
        self._transport = transport
        self._proto = protocol
        self._groups: list[tuple[str, str | None, str | None]] = []
        self.endpoints = _endpoints(sock, not opts.bound)
        self.family = sock.family

    async def recv(self):
        p = self._proto
        while not p.queue:
            if p.error is not None:
                err, p.error = p.error, None
                raise _os_error(err, "UDP peer unreachable") if isinstance(err, OSError) else err
            if p.closed:
                raise SocketClosedError("UDP socket closed")
            p.waiter = asyncio.get_running_loop().create_future()
            try:
                await p.waiter
            finally:
                p.waiter = None
        batch = list(p.queue)
        p.queue.clear()
        if p.paused_reading and not p.closed:
            p.paused_reading = False
            self._transport.resume_reading()
        return batch

    async def send(self, data, address, port):
        if not self._proto._can_write.is_set():
            await self._proto._can_write.wait()
        self.send_nowait(data, address, port)

    def send_nowait(self, data, address, port):
        """Queue one datagram without waiting (asyncio's DatagramTransport.sendto semantics)."""
        if self._proto.closed:
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

    async def close(self):
        if not self._proto.closed:
            self._transport.close()
            await asyncio.sleep(0)
        self._proto.closed = True
        self._proto._wake()

    # ---- multicast
    def _mreq(self, group: str, interface: str | None, source: str | None):
        iface = socket.inet_aton(interface or "0.0.0.0")
        if source:
            # struct ip_mreq_source on Linux: multiaddr, interface, sourceaddr
            return (IP_ADD_SOURCE_MEMBERSHIP, IP_DROP_SOURCE_MEMBERSHIP,
                    socket.inet_aton(group) + iface + socket.inet_aton(source))
        return (socket.IP_ADD_MEMBERSHIP, socket.IP_DROP_MEMBERSHIP,
                socket.inet_aton(group) + iface)

    async def join_group(self, group, interface=None, source=None):
        if self.family != socket.AF_INET:
            raise NotSupportedError("multicast membership is implemented for IPv4 sockets")
        add, _, req = self._mreq(group, interface, source)
        try:
            self._sock.setsockopt(socket.IPPROTO_IP, add, req)
        except OSError as e:
            raise InvalidOptionError(f"cannot join {group}: {e.strerror}") from None
        self._groups.append((group, interface, source))

    async def leave_group(self, group, interface=None, source=None):
        key = (group, interface, source)
        if key not in self._groups:
            raise InvalidOptionError(f"not a member of {group}" + (f" from {source}" if source else ""))
        _, drop, req = self._mreq(group, interface, source)
        self._sock.setsockopt(socket.IPPROTO_IP, drop, req)
        self._groups.remove(key)

    def joined_groups(self):
        return [g if s is None else f"{s}->{g}" for g, _, s in self._groups]

    def set_multicast_ttl(self, ttl):
        self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)

    def set_multicast_loopback(self, flag):
        self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1 if flag else 0)


async def open_udp(opts: UdpOptions) -> NativeUdp:
    loop = asyncio.get_running_loop()
    if opts.bound:
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
        if opts.bound:
            host = opts.local_address or ("::" if family == socket.AF_INET6 else "0.0.0.0")
            sock.bind((host, opts.local_port or 0))
        else:
            sock.connect(target)
        transport, proto = await _unpatched(loop, "create_datagram_endpoint")(
            lambda: _UdpProtocol(opts.max_queue), sock=sock)
    except OSError as e:
        sock.close()
        raise _os_error(e, "cannot open UDP socket") from None
    return NativeUdp(sock, transport, proto, opts)


class NativeStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        sock = writer.get_extra_info("socket")
        self.endpoints = _endpoints(sock, True)

    async def read(self):
        try:
            return await self._reader.read(READ_CHUNK)
        except OSError as e:  # reset by peer: report as end of stream with an error
            raise _os_error(e, "connection lost") from None

    async def write(self, data):
        if self._writer.is_closing():
            raise SocketClosedError("TCP connection closed")
        self._writer.write(data)
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as e:
            raise SocketClosedError(f"TCP write failed: {e}") from None

    def abort(self):
        """Close now: discard unsent data and reset the connection (SO_LINGER 0 makes the kernel
        drop its send buffer too); a write() waiting for the peer fails with SocketClosedError."""
        sock = self._writer.get_extra_info("socket")
        try:
            if sock is not None and sock.fileno() >= 0:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self._writer.transport.abort()

    async def close(self):
        if not self._writer.is_closing():
            try:
                if self._writer.can_write_eof():
                    self._writer.write_eof()
            except OSError:
                pass
            self._writer.close()
        try:
            await self._writer.wait_closed()
        except (OSError, ConnectionError):
            pass


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
    reader = asyncio.StreamReader(limit=READ_CHUNK, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    try:
        transport, _ = await _unpatched(loop, "create_connection")(lambda: protocol, host, port, family=family)
    except OSError as e:
        raise _os_error(e, f"cannot connect to {host}:{port}") from None
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    _apply_tcp_options(writer.get_extra_info("socket"), opts)
    return NativeStream(reader, writer)


class NativeServer:
    def __init__(self, backlog: int):
        self._accepted: asyncio.Queue = asyncio.Queue(maxsize=max(1, backlog))
        self._server: asyncio.AbstractServer | None = None
        self.endpoints = Endpoints()
        self.closed = False

    async def _on_client(self, reader, writer):
        if self.closed:
            writer.transport.abort()
            return
        await self._accepted.put(NativeStream(reader, writer))
        if self.closed:  # closed while this connection waited for room
            self._discard_unaccepted()

    async def accept(self):
        if self.closed and self._accepted.empty():
            return None
        item = await self._accepted.get()
        return item

    def _discard_unaccepted(self):
        """Reset connections the OS accepted that accept() never handed out, then leave the
        None that wakes (and ends) a pending accept()."""
        while True:
            try:
                stream = self._accepted.get_nowait()
            except asyncio.QueueEmpty:
                break
            if stream is not None:
                stream.abort()
        self._accepted.put_nowait(None)

    async def close(self):
        """Stop listening (the listening socket is closed when this returns) and reset the
        connections not yet accepted. Accepted connections are their owners' to close; so this
        does not await Server.wait_closed(), which from Python 3.12 on also waits for every
        connection the server ever accepted to close."""
        if self.closed:
            return
        self.closed = True
        self._server.close()
        self._discard_unaccepted()


async def open_tcp_server(host: str, port: int, backlog: int | None, ipv6_only: bool | None) -> NativeServer:
    srv = NativeServer(backlog or 128)
    loop = asyncio.get_running_loop()

    def factory():
        reader = asyncio.StreamReader(limit=READ_CHUNK, loop=loop)
        return asyncio.StreamReaderProtocol(reader, srv._on_client, loop=loop)
    try:
        srv._server = await _unpatched(loop, "create_server")(factory, host, port, backlog=backlog or 128)
    except OSError as e:
        raise _os_error(e, f"cannot listen on {host}:{port}") from None
    sockname = srv._server.sockets[0].getsockname()
    srv.endpoints = Endpoints(sockname[0], sockname[1])
    return srv


async def permissions() -> PermissionState:
    # Desktop Python is bound by the OS, not by a browser permissions policy.
    return PermissionState(details={"backend": "native"})


def mtu_hint() -> int:
    return MAX_UDP_PAYLOAD


