"""A stdlib-compatible ``socket.socket`` over socketiwa's backend (Direct Sockets in Pyodide).

Pyodide's own socket module cannot reach the network. This class can:

* non-blocking mode (``setblocking(False)``): operations that cannot finish at once raise
  ``BlockingIOError`` while a background task does the work on the running event loop, as a
  non-blocking OS socket would;
* blocking mode: each call suspends WebAssembly on the JS promise through JSPI
  (``pyodide.ffi.run_sync``) where ``pyodide.ffi.can_run_sync()`` is true (inside an IWA page it
  is); where it is not, a clear ``NotSupportedError`` says what to do instead.

Socket options are recorded and applied when the socket opens (Direct Sockets fixes them then).
"""
from __future__ import annotations

import asyncio
import collections
import enum
import errno
import socket as _std
import types
from typing import Any, Callable, Coroutine, Protocol, Self, TypeVar, overload

from .backends import get_backend
from .backends.base import ServerTransport, StreamTransport, TcpOptions, UdpOptions, UdpTransport
from .errors import NotSupportedError, SocketClosedError

AF_INET, AF_INET6 = _std.AF_INET, _std.AF_INET6
SOCK_STREAM, SOCK_DGRAM = _std.SOCK_STREAM, _std.SOCK_DGRAM
# Pyodide's socket module lacks a few option names libraries use; Linux values.
_MISSING_CONSTANTS = {"SO_REUSEADDR": 2, "SO_REUSEPORT": 15}
SO_REUSEADDR = getattr(_std, "SO_REUSEADDR", _MISSING_CONSTANTS["SO_REUSEADDR"])
_original_socket = _std.socket
_T = TypeVar("_T")
_Addr = tuple[Any, ...]  # (host, port), or (host, port, flowinfo, scope_id) for AF_INET6
_Buffer = bytes | bytearray | memoryview


class _NotReady(enum.Enum):
    """What a non-blocking attempt returns when the result is not there yet."""
    NOT_READY = 0


_NOT_READY = _NotReady.NOT_READY


class _Pausable(Protocol):
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


def _run_blocking(coro: Coroutine[Any, Any, _T], timeout: float | None) -> _T:
    try:
        from pyodide.ffi import can_run_sync, run_sync
    except ImportError:
        coro.close()
        raise NotSupportedError("blocking socketiwa sockets need Pyodide with JSPI; on CPython "
                                "use the standard socket module") from None
    if not can_run_sync():
        coro.close()
        raise NotSupportedError(
            "blocking socket calls need JSPI here (pyodide.ffi.can_run_sync() is false): call "
            "setblocking(False) and use asyncio, or socketiwa's async API")
    if timeout is not None:
        coro = asyncio.wait_for(coro, timeout)
    try:
        result: _T = run_sync(coro)
        return result
    except asyncio.TimeoutError:
        raise TimeoutError("timed out") from None


class socket:  # noqa: N801  (stdlib name)
    """``socket.socket`` for AF_INET/AF_INET6 TCP and UDP over socketiwa's backend (see the
    module documentation for blocking and non-blocking mode). ``aio.install()`` puts it in
    place of ``socket.socket`` in Pyodide. File descriptors, ``SOCK_RAW`` and AF_UNIX do not
    exist here (OSError/NotSupportedError)."""

    def __init__(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0,
                 fileno: int | None = None):
        if fileno is not None:
            raise NotSupportedError("socketiwa sockets cannot wrap file descriptors")
        if family not in (AF_INET, AF_INET6):
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        base_type = type & ~(getattr(_std, "SOCK_NONBLOCK", 0) | getattr(_std, "SOCK_CLOEXEC", 0))
        if base_type not in (SOCK_STREAM, SOCK_DGRAM):
            raise OSError(errno.ESOCKTNOSUPPORT, "Socket type not supported")
        self.family, self.type, self.proto = family, base_type, proto
        self._opts: dict[tuple[int, int], Any] = {}  # values as setsockopt() got them
        self._timeout: float | None = None
        self._bound: _Addr | None = None
        self._peer: _Addr | None = None
        self._udp: UdpTransport | None = None
        self._stream: StreamTransport | None = None
        self._server: ServerTransport | None = None
        self._pending: asyncio.Future[Any] | None = None   # a non-blocking connect/open in progress
        self._error: BaseException | None = None
        # Filled by the backend's sinks (bounded: past the bound reading pauses until recv*()
        # takes some); blocking calls wait on _arrived, set by the sinks, never on a timer
        # (timer-driven polling starves Chromium's socket notifications in the IWA).
        self._rx_bytes = bytearray()
        self._rx_dgrams: collections.deque[tuple[bytes, str, int]] = collections.deque()
        self._accepted: collections.deque[StreamTransport] = collections.deque()
        self._reading_paused = False
        self._write_paused = False
        self._arrived = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._eof = False
        self._closed = False
        if getattr(_std, "SOCK_NONBLOCK", 0) & type:
            self._timeout = 0.0

    # ---- context, identity
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<socketiwa.compat.socket family={self.family} type={self.type} closed={self._closed}>"

    def fileno(self) -> int:
        """-1: there is no file descriptor."""
        return -1

    def detach(self) -> int:
        """NotSupportedError: there is no file descriptor."""
        raise NotSupportedError("socketiwa sockets have no file descriptor")

    # ---- options and modes
    def setsockopt(self, level: int, optname: int, value: int | _Buffer | None,
                   optlen: int | None = None) -> None:
        """Record an option; the ones Direct Sockets knows (SO_REUSEADDR, SO_RCVBUF, SO_SNDBUF,
        TCP_NODELAY, IPV6_V6ONLY) apply when the socket opens, the others are only kept."""
        self._opts[(level, optname)] = value

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        """The value setsockopt() recorded, else 0."""
        return self._opts.get((level, optname), 0)

    def setblocking(self, flag: bool) -> None:
        """Blocking (needs JSPI in Pyodide) or non-blocking (BlockingIOError, as an OS socket)."""
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        """Whether the socket is in blocking mode."""
        return self._timeout != 0.0

    def settimeout(self, value: float | None) -> None:
        """Seconds a blocking call may take (TimeoutError after); 0.0 is non-blocking mode."""
        self._timeout = value

    def gettimeout(self) -> float | None:
        """The timeout settimeout() set (None: blocking without one)."""
        return self._timeout

    # ---- addresses
    def bind(self, address: _Addr) -> None:
        """Record the local address; the socket opens on it at listen() or first use (UDP)."""
        self._check_open()
        if self._bound is not None:
            raise OSError(errno.EINVAL, "Invalid argument")
        self._bound = tuple(address)

    def getsockname(self) -> _Addr:
        """The local address: the open socket's, else the bound one, else the wildcard."""
        transport = self._udp or self._stream or self._server
        if transport is not None:
            ep = transport.endpoints
            return self._fmt(ep.local_address, ep.local_port)
        if self._bound is not None:
            return self._bound
        return ("::", 0, 0, 0) if self.family == AF_INET6 else ("0.0.0.0", 0)

    def getpeername(self) -> _Addr:
        """The connected peer's address (OSError ENOTCONN if there is none)."""
        if self._peer is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return self._peer

    def _fmt(self, host: str | None, port: int | None) -> _Addr:
        return (host, port, 0, 0) if self.family == AF_INET6 else (host, port)

    # ---- opening (async cores shared by both modes)
    def _udp_options(self, remote: _Addr | None = None) -> UdpOptions:
        opts = UdpOptions()
        if remote is not None:
            opts.remote_address, opts.remote_port = remote[0], remote[1]
        else:
            host, port = (self._bound or ("0.0.0.0", 0))[:2]
            opts.local_address = "0.0.0.0" if host in ("", "::") and not self._opts.get(
                (_std.IPPROTO_IPV6, getattr(_std, "IPV6_V6ONLY", 26))) else (host or "0.0.0.0")
            opts.local_port = port
        opts.multicast_allow_address_sharing = bool(self._opts.get((_std.SOL_SOCKET, SO_REUSEADDR))) or None
        opts.receive_buffer_size = self._opts.get((_std.SOL_SOCKET, _std.SO_RCVBUF)) or None
        opts.send_buffer_size = self._opts.get((_std.SOL_SOCKET, _std.SO_SNDBUF)) or None
        return opts

    async def _open_udp(self, remote: _Addr | None = None) -> UdpTransport:
        if self._udp is None:
            self._udp = await get_backend().open_udp(self._udp_options(remote))
            self._udp.start(types.SimpleNamespace(
                datagram_received=self._datagram_received, error_received=self._error_received,
                pause_writing=self._pause_writing, resume_writing=self._resume_writing,
                connection_lost=self._connection_lost))
        return self._udp

    async def _connect_tcp(self, address: _Addr) -> None:
        opts = TcpOptions(no_delay=bool(self._opts.get((_std.IPPROTO_TCP, _std.TCP_NODELAY))))
        stream = self._stream = await get_backend().open_tcp(address[0], int(address[1]), opts)
        ep = stream.endpoints
        self._peer = self._fmt(ep.remote_address, ep.remote_port)
        self._start_stream(stream)

    def _start_stream(self, stream: StreamTransport) -> None:
        stream.start(types.SimpleNamespace(
            data_received=self._data_received, eof_received=self._eof_received,
            pause_writing=self._pause_writing, resume_writing=self._resume_writing,
            connection_lost=self._connection_lost))

    async def _listen(self, backlog: int) -> None:
        host, port = (self._bound or ("0.0.0.0", 0))[:2]
        server = self._server = await get_backend().open_tcp_server(host or "0.0.0.0", port, backlog or None, None)
        server.start(types.SimpleNamespace(connection_made=self._connection_made,
                                                 connection_lost=self._connection_lost))

    # ---- the backend's sinks fill the buffers that recv*/accept read
    def _datagram_received(self, data: bytes, host: str, port: int) -> None:
        self._rx_dgrams.append((data, host, port))
        if len(self._rx_dgrams) >= _MAX_DATAGRAMS:
            self._pause(self._udp)
        self._arrived.set()

    def _error_received(self, exc: Exception) -> None:
        self._error = exc
        self._arrived.set()

    def _data_received(self, data: bytes) -> None:
        self._rx_bytes += data
        if len(self._rx_bytes) > _MAX_BYTES:
            self._pause(self._stream)
        self._arrived.set()

    def _eof_received(self) -> None:
        self._eof = True
        self._arrived.set()

    def _connection_made(self, stream: StreamTransport) -> None:
        self._accepted.append(stream)
        if len(self._accepted) >= _MAX_ACCEPTED:
            self._pause(self._server)
        self._arrived.set()

    def _connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self._closed:
            self._error = exc
        self._eof = True
        self._writable.set()
        self._arrived.set()

    def _pause_writing(self) -> None:
        self._writable.clear()

    def _resume_writing(self) -> None:
        self._writable.set()

    def _pause(self, transport: _Pausable | None) -> None:
        assert transport is not None  # what arrived came from it
        if not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()

    def _took(self, transport: _Pausable | None, below: bool) -> None:
        """recv*/accept made room: resume reading once below the bound."""
        if self._reading_paused and below and not self._closed:
            assert transport is not None  # it was paused (_pause), so it exists
            self._reading_paused = False
            transport.resume_reading()

    async def _until(self, take: Callable[[], _T | _NotReady], check_error: bool = True) -> _T:
        """Wait (blocking mode) until ``take()`` has a result, woken by the sinks."""
        while True:
            self._arrived.clear()
            result = take()
            if not isinstance(result, _NotReady):
                return result
            if check_error and self._error is not None:
                err, self._error = self._error, None
                raise err
            await self._arrived.wait()

    # ---- the two modes
    def _do(self, make_coro: Callable[[], Coroutine[Any, Any, _T]],
            ready: Callable[[], _T | _NotReady]) -> _T:
        """Blocking: run the coroutine to completion via JSPI. Non-blocking: if ``ready()`` says
        the result is available return it, otherwise make sure work is under way and raise
        BlockingIOError."""
        self._check_open()
        if self._timeout == 0.0:
            if self._error is not None:
                err, self._error = self._error, None
                raise err
            result = ready()
            if not isinstance(result, _NotReady):
                return result
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return _run_blocking(make_coro(), self._timeout)

    def connect(self, address: _Addr) -> None:
        """TCP: connect (non-blocking: BlockingIOError EINPROGRESS, then the connection opens in
        the background). UDP: set the default destination."""
        self._check_open()
        if self.type == SOCK_DGRAM:
            self._peer = tuple(address)
            return
        if self._timeout == 0.0:
            if self._stream is not None:
                raise OSError(errno.EISCONN, "Transport endpoint is already connected")
            if self._pending is None:
                self._pending = asyncio.ensure_future(self._connect_tcp(address))
                self._pending.add_done_callback(self._connect_done)
                raise BlockingIOError(errno.EINPROGRESS, "Operation now in progress")
            raise OSError(errno.EALREADY, "Operation already in progress")
        _run_blocking(self._connect_tcp(address), self._timeout)

    def _connect_done(self, task: asyncio.Future[Any]) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            self._error = exc

    def connect_ex(self, address: _Addr) -> int:
        """connect() returning an errno (0 when connected) instead of raising."""
        try:
            self.connect(address)
        except BlockingIOError as e:
            return e.errno or errno.EINPROGRESS
        except OSError as e:
            return e.errno or errno.ECONNREFUSED
        return 0

    def listen(self, backlog: int = 128) -> None:
        """Start listening on the bound address (TCP)."""
        self._check_open()
        if self.type != SOCK_STREAM:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        if self._timeout == 0.0:
            self._pending = asyncio.ensure_future(self._listen(backlog))
            self._pending.add_done_callback(self._connect_done)
            return
        _run_blocking(self._listen(backlog), self._timeout)

    def accept(self) -> tuple[socket, _Addr]:
        """The next connection: ``(socket, address)``."""
        async def wait() -> tuple[socket, _Addr]:
            return await self._until(take)

        def take() -> tuple[socket, _Addr] | _NotReady:
            if not self._accepted:
                return _NOT_READY
            stream = self._accepted.popleft()
            self._took(self._server, len(self._accepted) < _MAX_ACCEPTED)
            conn = socket(self.family, SOCK_STREAM)
            conn._stream = stream
            ep = stream.endpoints
            peer = conn._peer = conn._fmt(ep.remote_address, ep.remote_port)
            conn._start_stream(stream)
            return conn, peer
        return self._do(wait, take)

    # ---- TCP data
    def send(self, data: _Buffer, flags: int = 0) -> int:
        """Send bytes; returns how many (all: the backend queues them). Non-blocking: EAGAIN
        while 4 MiB are still unsent. UDP: one datagram to the connect()ed address."""
        if self.type == SOCK_DGRAM:
            if self._peer is None:
                raise OSError(errno.EDESTADDRREQ, "Destination address required")
            return self.sendto(data, self._peer)
        stream = self._stream
        if stream is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        data = bytes(data)

        async def write() -> int:
            stream.write(data)
            while not self._writable.is_set():     # the backend said pause: wait for resume
                await self._writable.wait()
                self._raise_lost()
            return len(data)

        def queued() -> int | _NotReady:
            # The backend queues every write; past _SEND_BUFFER unsent bytes send() says EAGAIN,
            # as an OS socket with a full send buffer does.
            if stream.get_write_buffer_size() >= _SEND_BUFFER:
                return _NOT_READY
            stream.write(data)
            return len(data)
        return self._do(write, queued)

    def _raise_lost(self) -> None:
        if self._eof and self._error is not None:
            err, self._error = self._error, None
            raise err

    def sendall(self, data: _Buffer, flags: int = 0) -> None:
        """send(): every byte is queued at once."""
        self.send(data, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Up to ``bufsize`` bytes; b"" at end of stream. UDP: one datagram (cut to bufsize)."""
        if self.type == SOCK_DGRAM:
            return self.recvfrom(bufsize, flags)[0]
        if self._stream is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")

        def take() -> bytes | _NotReady:
            if self._rx_bytes:
                out = bytes(self._rx_bytes[:bufsize])
                del self._rx_bytes[:bufsize]
                self._took(self._stream, len(self._rx_bytes) <= _MAX_BYTES // 2)
                return out
            if self._eof:
                return b""
            return _NOT_READY

        async def wait() -> bytes:
            return await self._until(take)
        return self._do(wait, take)

    def recv_into(self, buffer: bytearray | memoryview, nbytes: int = 0, flags: int = 0) -> int:
        """recv() into ``buffer``; returns how many bytes."""
        data = self.recv(nbytes or len(buffer), flags)
        buffer[:len(data)] = data
        return len(data)

    # ---- UDP data
    @overload
    def sendto(self, data: _Buffer, address: _Addr, /) -> int: ...
    @overload
    def sendto(self, data: _Buffer, flags: int, address: _Addr, /) -> int: ...

    def sendto(self, data: _Buffer, *args: Any) -> int:
        """Send one datagram to ``address`` (``sendto(data, [flags,] address)``); the first one
        opens the socket (on the bound address, if any)."""
        address = args[-1]
        data = bytes(data)
        if self.type != SOCK_DGRAM:
            raise OSError(errno.EISCONN, "sendto on a stream socket")

        async def send() -> int:
            udp = await self._open_udp()
            udp.send(data, address[0], address[1])
            if not self._writable.is_set():
                await self._writable.wait()
            return len(data)

        def now() -> int | _NotReady:
            if self._udp is None:
                if self._pending is None:
                    self._pending = asyncio.ensure_future(self._open_udp())
                    self._pending.add_done_callback(self._connect_done)
                return _NOT_READY
            if not self._writable.is_set():
                return _NOT_READY
            self._udp.send(data, address[0], address[1])
            return len(data)
        return self._do(send, now)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, _Addr]:
        """One datagram (cut to ``bufsize``) and its sender's address."""
        def take() -> tuple[bytes, _Addr] | _NotReady:
            if self._udp is None and self._pending is None and self._bound is not None:
                self._pending = asyncio.ensure_future(self._open_udp())
            if self._rx_dgrams:
                data, host, port = self._rx_dgrams.popleft()
                self._took(self._udp, len(self._rx_dgrams) < _MAX_DATAGRAMS // 2)
                return data[:bufsize], self._fmt(host, port)
            return _NOT_READY

        def take_or_closed() -> tuple[bytes, _Addr] | _NotReady:
            result = take()
            if isinstance(result, _NotReady) and self._eof:
                raise SocketClosedError("socket closed")
            return result

        async def wait() -> tuple[bytes, _Addr]:
            await self._open_udp()
            return await self._until(take_or_closed, check_error=False)
        return self._do(wait, take)

    # ---- closing
    def _check_open(self) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "Bad file descriptor")

    def close(self) -> None:
        """Close; what send() queued still goes out (the backend flushes it), as with an OS
        socket."""
        if self._closed:
            return
        self._closed = True
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
        for transport in (self._udp, self._stream, self._server):
            if transport is not None:
                try:
                    # Like an OS socket's close: bytes already accepted by send() still go out
                    # (the backend's close flushes its write queue first).
                    task = asyncio.ensure_future(transport.close())
                    task.add_done_callback(lambda t: t.cancelled() or t.exception())
                except RuntimeError:  # no event loop any more: nothing left to flush
                    pass

    def shutdown(self, how: int) -> None:
        """close(): half-close is not available."""
        self.close()


_SEND_BUFFER = 4 << 20  # bytes accepted by non-blocking send() but not yet written
_MAX_BYTES = 1 << 20    # received stream bytes held before reading pauses
_MAX_DATAGRAMS = 1024   # received datagrams held before reading pauses
_MAX_ACCEPTED = 128     # accepted connections held before accepting pauses


def patch_socket_module() -> None:
    """Make ``socket.socket`` this class (Pyodide only: its own cannot reach the network)."""
    # (replacing the stdlib's class is the point: type checkers rightly object)
    _std.socket = socket  # type: ignore[misc, assignment]
    _std.SocketType = socket  # type: ignore[assignment]
    for name, value in _MISSING_CONSTANTS.items():
        if not hasattr(_std, name):
            setattr(_std, name, value)


def unpatch_socket_module() -> None:
    """Put the stdlib's ``socket.socket`` back."""
    _std.socket = _original_socket  # type: ignore[misc]
    _std.SocketType = _original_socket  # type: ignore[assignment]
