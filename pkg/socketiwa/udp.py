"""UDP sockets: connected (``remote_address``/``remote_port``) or bound (``local_address``)."""
from __future__ import annotations

import asyncio
from typing import Any

from . import wire
from ._base import Datagram, ReadyState, RemoteInfo, SocketBase
from .backends import get_backend
from .backends.base import UdpOptions, UdpTransport
from .errors import InvalidOptionError, SocketClosedError, SocketIwaError
from .seedwire import codec_for
from .session import EventReceived, MessageReceived, ProtocolError, Session

_DNS_TYPES = (None, "ipv4", "ipv6")
_OPEN = ReadyState.OPEN
_tuple_new = tuple.__new__
_MAGIC = wire.MAGIC


def _check_port(port: Any, what: str, allow_zero: bool) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not (0 if allow_zero else 1) <= port <= 65535:
        raise InvalidOptionError(f"{what} must be an integer in {0 if allow_zero else 1}..65535, got {port!r}")
    return port


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"data must be bytes-like or str, not {type(data).__name__}")


def _check_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"{what} must be an integer, got {value!r}")
    return value


def _slice(data: Any, offset: Any, length: Any) -> bytes:
    raw = _as_bytes(data)
    _check_int(offset, "offset")
    _check_int(length, "length")
    if offset < 0 or length < 0 or offset + length > len(raw):
        raise InvalidOptionError(f"offset {offset} / length {length} outside data of {len(raw)} bytes")
    return raw[offset:offset + length]


class UDPSocket(SocketBase):
    """A UDP socket with the socketiwa event model.

    Events: ``open``, ``connect`` (connected mode), ``message(data, rinfo)``, ``error(exc)``,
    ``close(info)``, and application events ``name(*args, rinfo, ack)``.
    """

    # Set by open() before the session opens; the session refuses sends until then, so the send
    # paths below use it unchecked (no per-send None test).
    _transport: UdpTransport | None

    def __init__(self, *, local_address: str | None = None, local_port: int | None = None,
                 remote_address: str | None = None, remote_port: int | None = None,
                 send_buffer_size: int | None = None, receive_buffer_size: int | None = None,
                 dns_query_type: str | None = None, ipv6_only: bool | None = None,
                 multicast_time_to_live: int | None = None, multicast_loopback: bool | None = None,
                 multicast_allow_address_sharing: bool | None = None,
                 max_queue: int = 1024, ack_timeout: float = 5.0, codec: Any = None,
                 wire: str = "socketiwa") -> None:
        codec = codec_for(wire, codec)  # wire="socketiwa-js": the JS library's envelopes
        super().__init__(Session("datagram", codec=codec, ack_timeout=ack_timeout),
                         max_queue=max_queue)
        if (remote_address is None) != (remote_port is None):
            raise InvalidOptionError("connected mode needs both remote_address and remote_port")
        if remote_address is not None:
            if local_address is not None or local_port is not None:
                raise InvalidOptionError("give either remote_* (connected mode) or local_* (bound mode), not both")
            _check_port(remote_port, "remote_port", allow_zero=False)
        else:
            if local_address is None:
                raise InvalidOptionError("bound mode needs local_address (connected mode needs remote_address)")
            if local_port is not None:
                _check_port(local_port, "local_port", allow_zero=True)
        if dns_query_type not in _DNS_TYPES:
            raise InvalidOptionError(f"dns_query_type must be 'ipv4' or 'ipv6', got {dns_query_type!r}")
        for name, size in (("send_buffer_size", send_buffer_size), ("receive_buffer_size", receive_buffer_size)):
            if size is not None and (not isinstance(size, int) or size <= 0):
                raise InvalidOptionError(f"{name} must be a positive integer")
        if multicast_time_to_live is not None and not 0 <= multicast_time_to_live <= 255:
            raise InvalidOptionError("multicast_time_to_live must be in 0..255")
        self.options = UdpOptions(local_address, local_port, remote_address, remote_port,
                                  send_buffer_size, receive_buffer_size, dns_query_type, ipv6_only,
                                  multicast_time_to_live, multicast_loopback,
                                  multicast_allow_address_sharing, max_queue)
        self.local_address: str | None = None
        self.local_port: int | None = None
        self.remote_address: str | None = None
        self.remote_port: int | None = None
        self._connected = not self.options.bound  # read per send: a plain attribute

    @property
    def connected(self) -> bool:
        """True in connected mode (``remote_address``/``remote_port`` given): sends go to that
        peer only. False in bound mode: each send names its destination."""
        return self._connected

    async def open(self) -> "UDPSocket":
        """Open the socket; returns it, OPEN (``open`` handlers, and in connected mode ``connect``
        handlers, have run), with ``local_address``/``local_port`` (and ``remote_*``) filled in.
        Raises the backend's error (ConnectError, PermissionDeniedError); the
        socket is then CLOSED. ``create_udp`` does both steps."""
        if self.ready_state is not ReadyState.CONNECTING:
            raise SocketClosedError(f"socket is already {self.ready_state.value}")
        try:
            transport = await get_backend().open_udp(self.options)
        except BaseException:
            self._finish_state()
            raise
        self._transport = transport
        ep = transport.endpoints
        self.local_address, self.local_port = ep.local_address, ep.local_port
        self.remote_address, self.remote_port = ep.remote_address, ep.remote_port
        self._session.connection_made()
        transport.start(self._sink_namespace(datagram_received=self._datagram_received,
                                             error_received=self._error_received,
                                             connection_lost=self._connection_lost))
        self._dispatch("open")
        if self.connected:
            self._dispatch("connect")
        return self

    # ---- sending
    def _destination(self, port: int | None, address: str | None) -> tuple[str | None, int | None]:
        if self._connected:
            if port is not None or address is not None:
                if (address, port) != (self.remote_address, self.remote_port) and \
                        (address, port) != (self.options.remote_address, self.options.remote_port):
                    raise InvalidOptionError("a connected UDP socket sends only to its remote address")
            return None, None
        if port is None or address is None:
            raise InvalidOptionError("a bound UDP socket needs port and address for each send")
        _check_port(port, "port", allow_zero=False)
        return address, port

    async def send(self, data: Any, *args: Any, port: int | None = None, address: str | None = None) -> None:
        """Send one datagram, dgram-style.

        ``send(data)`` (connected), ``send(data, port, address)``,
        ``send(data, offset, length, port, address)``, and on a connected socket
        ``send(data, offset, length)``.
        """
        if not args:
            if port is None and address is None and self._connected:  # the common case, lean
                session = self._session
                if (type(data) is bytes and session.raw_plain and session._state is _OPEN
                        and 0 < len(data) <= session.max_message and data[:4] != _MAGIC):
                    raw = data   # what session.send returns for it (see Session.raw_plain)
                else:
                    raw = session.send(data if type(data) is bytes else _as_bytes(data))
                self._transport.send(raw, None, None)  # type: ignore[union-attr]  # see _transport
                if self._write_paused:
                    await self._drain_future()
                return
        elif len(args) == 2:
            if self._connected and not isinstance(args[1], str):  # connected: (offset, length)
                data = _slice(data, *args)
            else:
                port, address = args
        elif len(args) == 4:
            offset, length, port, address = args
            data = _slice(data, offset, length)
        else:
            raise TypeError("send(data), send(data, port, address), send(data, offset, length, "
                            "port, address) or, connected, send(data, offset, length)")
        payload = _as_bytes(data)
        # session.send keeps raw data that happens to start with the envelope magic intact
        raw = self._session.send(payload)
        self._transport.send(raw, *self._destination(port, address))  # type: ignore[union-attr]  # see _transport
        if self._write_paused:
            await self._drain_future()

    def _write_now(self, raw: bytes, dest: tuple[str | None, int | None]) -> asyncio.Future[None]:
        self._transport.send(raw, *dest)  # type: ignore[union-attr]  # see _transport
        return self._drain_future()

    async def _write(self, raw: bytes, dest: tuple[str | None, int | None]) -> None:
        self._transport.send(raw, *dest)  # type: ignore[union-attr]  # see _transport
        if self._write_paused:
            await self._drain_future()

    async def emit(self, event: str, *args: Any, port: int | None = None,
                   address: str | None = None) -> None:
        """Send an application event with any number of arguments (one envelope, one datagram)."""
        dest = self._destination(port, address)
        raw, _ = self._session.emit(event, args)
        await self._write(raw, dest)

    async def emit_with_ack(self, event: str, *args: Any, timeout: float | None = None,
                            port: int | None = None, address: str | None = None) -> Any:
        """Send an event and wait for the receiver's ``ack(...)``: returns its one argument (None
        for none, a tuple for several). Raises AckTimeoutError after ``timeout`` seconds."""
        return await self._emit_with_ack(event, args, timeout, self._destination(port, address))

    # ---- receiving (the backend's sink)
    def _datagram_received(self, data: bytes, address: str, port: int) -> None:
        session = self._session
        # The common case written out: a plain datagram (Session.raw_plain: no envelope magic,
        # the bytes are the message), an open session, no backlog, no message handler and room
        # in the queue goes straight in, as session.receive_datagram + the branch below would
        # put it (the NamedTuples built with tuple.__new__: no Python __new__ frame).
        if (session.raw_plain and session._state is _OPEN and not self._backlog
                and data[:4] != _MAGIC and "message" not in self._handlers):
            queue = self._queue
            if len(queue._items) < queue.maxsize and len(self._tasks) < self.max_handler_tasks:
                queue.put_nowait(_tuple_new(Datagram, (data, _tuple_new(RemoteInfo, (
                    address, port, len(data), "IPv6" if ":" in address else "IPv4")))))
                return
        events = session.receive_datagram(data, address, port)
        if not events:
            return
        if self._backlog:
            if len(self._backlog) >= self.max_queue:
                self.dropped += 1  # as the kernel drops when its buffer is full
                return
        elif len(events) == 1:
            ev = events[0]
            queue = self._queue
            # The common case written out (what _feed/_has_room/_process do for it, without
            # their steps): a plain message, no message handler, room for it in the queue.
            if (type(ev) is MessageReceived and "message" not in self._handlers
                    and len(queue._items) < queue.maxsize
                    and len(self._tasks) < self.max_handler_tasks):
                payload = ev.data  # (its address and port are this call's own)
                queue.put_nowait(Datagram(payload, RemoteInfo(
                    address, port, len(payload), "IPv6" if ":" in address else "IPv4")))
                return
        self._feed(events, len(data))

    def _error_received(self, exc: Exception) -> None:
        # ICMP unreachable and the like: report, keep going
        if self.ready_state is ReadyState.OPEN:
            self._report(exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        self._wake_drain(SocketClosedError("UDP socket closed") if exc is not None else None)
        if self.ready_state is ReadyState.OPEN:  # the transport ended by itself
            if exc is not None:
                self._report(exc)
            self._finish()

    def _rinfo(self, address: str | None, port: int | None, size: int) -> RemoteInfo:
        # A datagram session's events always carry the sender's address and port (never None).
        return RemoteInfo(address, port, size, "IPv6" if ":" in address else "IPv4")  # type: ignore[arg-type, operator]

    def _message_args(self, ev: MessageReceived, size: int) -> tuple[bytes, RemoteInfo]:
        return ev.data, self._rinfo(ev.address, ev.port, len(ev.data))

    def _message_item(self, ev: MessageReceived, size: int) -> Datagram:
        return Datagram(ev.data, self._rinfo(ev.address, ev.port, len(ev.data)))

    def _event_extra(self, ev: EventReceived, size: int) -> tuple[RemoteInfo]:
        return (self._rinfo(ev.address, ev.port, size),)

    def _reply_to(self, ev: EventReceived) -> tuple[str | None, int | None]:
        return (None, None) if self.connected else (ev.address, ev.port)

    def _annotate_error(self, ev: ProtocolError, size: int) -> Exception:
        exc = ev.error
        exc.rinfo = self._rinfo(ev.address, ev.port, size)
        return exc

    # ---- closing
    async def close(self, code: int | None = None, reason: str = "", *,
                    timeout: float | None = None) -> None:
        """Close the socket. Returns at once: a datagram send() has returned for is already with
        the platform. Datagrams already queued stay readable (``receive()``, ``async for``); the
        rest are discarded. ``close`` handlers get ``CloseInfo(code, reason)`` (1000 and "" by
        default); UDP has no connection, so nothing is sent to any peer. ``timeout`` is accepted
        for symmetry with TCP and has nothing to wait for."""
        if code is not None:
            wire.check_close(code, reason)  # ValueError/TypeError before any state changes
        if self.ready_state in (ReadyState.CLOSING, ReadyState.CLOSED):
            await self._closed_event.wait()
            return
        if self._transport is None:
            self._finish_state()
            return
        self._session.close(code, reason)
        self._stop_receiving()
        try:
            await self._transport.close()
        except SocketIwaError as exc:
            self._report(exc)
        self._finish()

    def _finish(self) -> None:
        if self._finish_state():
            self._dispatch("close", self._session.close_info)


async def create_udp(**options: Any) -> UDPSocket:
    """Open a UDP socket. Connected: ``remote_address``, ``remote_port``. Bound: ``local_address``
    (and optionally ``local_port``). Also ``send_buffer_size``, ``receive_buffer_size``,
    ``dns_query_type`` ('ipv4'|'ipv6'), ``max_queue``, ``ack_timeout``."""
    return await UDPSocket(**options).open()


__all__ = ["UDPSocket", "create_udp"]
