"""TCP connections, client side and accepted by a server.

``framing="frames"`` (default): every ``send``/``emit`` is one length-prefixed frame, and the
receiver gets whole messages however the network splits or merges them. ``framing="raw"``: a
plain byte stream (``message`` gets chunks as they arrive; ``emit`` is not available), for
talking to peers that are not socketiwa.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from . import wire
from ._base import ReadyState, SocketBase
from .backends import get_backend
from .backends.base import StreamTransport, TcpOptions
from .errors import InvalidOptionError, NotSupportedError, SocketClosedError
from .seedwire import codec_for
from .session import PeerClosed, Session
from .udp import _as_bytes, _check_port

if TYPE_CHECKING:  # server.py imports this module
    from .server import TCPServer

FRAMINGS = ("frames", "raw")
# How long close() waits for the peer to take the data already handed to send(), by default.
DEFAULT_CLOSE_TIMEOUT = 5.0


class TCPSocket(SocketBase):
    """Events: ``open``, ``connect``, ``message(data)``, ``error(exc)``, ``disconnect(info)``
    (the peer closed or the connection was lost), ``close(info)``, and application events
    ``name(*args, ack)``. ``info`` is a CloseInfo: ``code`` and ``reason``."""

    # SocketBase's transport, narrowed: here it is a stream.
    _transport: StreamTransport | None

    def __init__(self, host: str | None = None, port: int | None = None, *, no_delay: bool = False,
                 keep_alive_delay: int | None = None, send_buffer_size: int | None = None,
                 receive_buffer_size: int | None = None, dns_query_type: str | None = None,
                 framing: str = "frames", max_message_size: int = wire.DEFAULT_MAX_MESSAGE,
                 max_queue: int = 1024, ack_timeout: float = 5.0,
                 close_timeout: float = DEFAULT_CLOSE_TIMEOUT, codec: Any = None,
                 wire: str = "socketiwa"):
        codec = codec_for(wire, codec)  # wire="socketiwa-js": the JS library's envelopes
        if framing not in FRAMINGS:
            raise InvalidOptionError(f"framing must be one of {FRAMINGS}, got {framing!r}")
        super().__init__(Session("stream", codec=codec, framing=framing,
                                 max_message=max_message_size, ack_timeout=ack_timeout),
                         max_queue=max_queue)
        if not isinstance(close_timeout, (int, float)) or close_timeout < 0:
            raise InvalidOptionError("close_timeout must be a number of seconds >= 0")
        self.close_timeout = close_timeout
        if keep_alive_delay is not None and (not isinstance(keep_alive_delay, int) or keep_alive_delay < 1000):
            # Direct Sockets rejects delays under one second; keep both backends alike.
            raise InvalidOptionError("keep_alive_delay is in milliseconds and must be >= 1000")
        if dns_query_type not in (None, "ipv4", "ipv6"):
            raise InvalidOptionError(f"dns_query_type must be 'ipv4' or 'ipv6', got {dns_query_type!r}")
        if host is not None:
            _check_port(port, "port", allow_zero=False)
        self.host, self.port = host, port
        self.options = TcpOptions(no_delay, keep_alive_delay, send_buffer_size, receive_buffer_size,
                                  dns_query_type)
        self.framing = framing
        self.max_message_size = max_message_size
        self._aborted = False
        self._lost = False
        self._closer: asyncio.Task[None] | None = None
        self.server: TCPServer | None = None  # the server that accepted this connection, if any
        self.rooms: set[str] = set()
        self.local_address: str | None = None
        self.local_port: int | None = None
        self.remote_address: str | None = None
        self.remote_port: int | None = None

    async def open(self) -> "TCPSocket":
        """Connect to ``host``:``port``; returns this socket, OPEN (``open`` and ``connect``
        handlers have run). Raises ConnectError (refused, unreachable, DNS) or
        PermissionDeniedError; the socket is then CLOSED. ``create_tcp`` does both steps."""
        if self.ready_state is not ReadyState.CONNECTING:
            raise SocketClosedError(f"socket is already {self.ready_state.value}")
        if self.host is None or self.port is None:
            raise InvalidOptionError("no host/port to connect to")
        try:
            transport = await get_backend().open_tcp(self.host, self.port, self.options)
        except BaseException:
            self._finish_state()
            raise
        self._attach(transport)
        return self

    def _attach(self, transport: StreamTransport) -> None:
        self._transport = transport
        ep = transport.endpoints
        self.local_address, self.local_port = ep.local_address, ep.local_port
        self.remote_address, self.remote_port = ep.remote_address, ep.remote_port
        self._session.connection_made()
        transport.start(self._sink_namespace(data_received=self._data_received,
                                             eof_received=self._eof_received,
                                             connection_lost=self._connection_lost))
        self._dispatch("open")
        self._dispatch("connect")

    # ---- sending: written at once (in call order), then wait while the backend says pause
    def _write_now(self, raw: bytes, dest: tuple[Any, ...] = (None, None)) -> asyncio.Future[None]:
        if self._aborted:
            raise SocketClosedError("connection aborted")
        transport = self._transport
        assert transport is not None  # attached before the session opens (it refuses sends before)
        transport.write(raw)
        return self._drain_future()

    async def _write(self, raw: bytes, dest: tuple[Any, ...] = (None, None)) -> None:
        if self._aborted:
            raise SocketClosedError("connection aborted")
        transport = self._transport
        assert transport is not None  # attached before the session opens (it refuses sends before)
        transport.write(raw)
        if self._write_paused:
            await self._drain_future()

    async def send(self, data: Any) -> None:
        """Send a message (framed mode) or bytes (raw mode)."""
        await self._write(self._session.send(_as_bytes(data)))

    async def _send_envelope(self, envelope: bytes) -> None:
        """Send an already encoded envelope (a server's broadcast encodes once for all)."""
        self._require_open()
        await self._write(self._session.codec.frame(envelope, self.max_message_size))

    async def emit(self, event: str, *args: Any) -> None:
        """Send an application event with any number of arguments."""
        raw, _ = self._session.emit(event, args)
        await self._write(raw)

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None) -> Any:
        """Send an event and wait for the peer handler's ``ack(...)``: returns its one argument
        (None for none, a tuple for several). Raises AckTimeoutError after ``timeout``."""
        return await self._emit_with_ack(event, args, timeout, (None, None))

    # ---- rooms (connections accepted by a TCPServer)
    def join(self, room: str) -> None:
        """Add this connection to ``room`` of its server (``server.to(room)`` reaches it).
        Only connections a TCPServer accepted have rooms (NotSupportedError otherwise)."""
        if self.server is None:
            raise NotSupportedError("rooms exist only on connections accepted by a server")
        self.server._join(self, room)

    def leave(self, room: str) -> None:
        """Leave ``room`` (nothing happens if this connection is not in it)."""
        if self.server is not None:
            self.server._leave(self, room)

    # ---- receiving (the backend's sink)
    def _data_received(self, data: bytes) -> None:
        events = self._session.receive_data(data)
        if events:
            self._feed(events)

    def _eof_received(self) -> None:
        self._feed(self._session.receive_eof())

    def _connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if exc is not None or self._aborted:
            self._wake_drain(SocketClosedError("connection closed before this send completed"))
        else:
            self._wake_drain(None)  # flushed: every send written before the end went out
        if self.ready_state is ReadyState.OPEN:
            # Ended by the peer or the network, not by close(): after what is still held back.
            self._feed(self._session.receive_eof(exc))

    def _peer_closed(self, ev: PeerClosed) -> None:
        if ev.error is not None:
            self._report(ev.error)
        self._dispatch("disconnect", ev.info)
        if self._closer is None:
            self._closer = asyncio.ensure_future(self.close())

    # ---- closing
    async def close(self, code: int | None = None, reason: str = "", *,
                    timeout: float | None = None) -> None:
        """Close the connection; returns within ``timeout`` seconds (default ``close_timeout``,
        5 s) whatever the peer does.

        ``code``/``reason``: on a framed connection a CLOSE envelope carrying them goes out after
        everything sent before, and the peer's ``disconnect`` and ``close`` handlers get
        ``CloseInfo(code, reason)``; ours get it too. Without a code nothing extra is sent;
        handlers get code 1000 here and 1005 (no status) at the peer.

        Receiving stops at once: messages already queued stay readable (``receive()``,
        ``async for``), anything later is discarded. Sending: every ``send()``/``emit()`` called
        before ``close()`` (including ones still waiting for the peer to read) is written in
        order, then our side is shut down (FIN). If the peer takes it all within ``timeout`` it
        is all delivered. Otherwise the connection is aborted at the deadline: unsent data is
        discarded, the sends still waiting raise ``SocketClosedError``, and the peer sees a
        reset (a socketiwa peer may report the cut last frame as ``FrameError``).
        ``close(timeout=0)`` and ``abort()`` do that at once. Sends after ``close()`` raise
        ``SocketClosedError``; acks still pending fail with it."""
        timeout = self.close_timeout if timeout is None else timeout
        if code is not None:
            wire.check_close(code, reason)  # ValueError/TypeError before any state changes
        if self.ready_state in (ReadyState.CLOSING, ReadyState.CLOSED):
            if timeout <= 0 and self.ready_state is ReadyState.CLOSING:
                self._abort_transport()  # hurry a graceful close already under way
            await self._closed_event.wait()
            return
        if self._transport is None:
            self._finish_state()
            return
        bye = self._session.close(code, reason)  # -> CLOSING
        self._stop_receiving()
        if bye and not self._lost:
            try:
                self._transport.write(bye)
            except SocketClosedError:
                pass
        if timeout <= 0:
            self._abort_transport()
        else:
            try:
                await asyncio.wait_for(self._transport.close(), timeout)
            except asyncio.TimeoutError:
                self._abort_transport()
            except Exception as exc:  # closing failed (connection already broken): it is closed
                self._abort_transport()
                if not isinstance(exc, OSError):
                    self._report(exc)
        self._finish()

    def _abort_transport(self) -> None:
        if self._aborted:
            return
        self._aborted = True
        assert self._transport is not None  # only reached once open: close() returns before otherwise
        self._transport.abort()
        self._wake_drain(SocketClosedError("connection closed before this send completed"))

    def _finish(self) -> None:
        if not self._finish_state():
            return
        if self.server is not None:
            self.server._forget(self)
        self._dispatch("close", self._session.close_info)


async def create_tcp(host: str, port: int, **options: Any) -> TCPSocket:
    """Connect a TCP socket. Options: ``no_delay``, ``keep_alive_delay`` (ms),
    ``send_buffer_size``, ``receive_buffer_size``, ``dns_query_type``, ``framing`` ('frames' or
    'raw'), ``max_message_size``, ``max_queue``, ``ack_timeout``, ``close_timeout``, ``codec``,
    ``wire`` ('socketiwa', or 'socketiwa-js' for the JS Socket.IWA library's JSON envelopes)."""
    return await TCPSocket(host, port, **options).open()
