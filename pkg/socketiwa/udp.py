"""UDP sockets: connected (``remote_address``/``remote_port``) or bound (``local_address``)."""
from __future__ import annotations

import asyncio
from typing import Any

from . import wire
from ._base import Datagram, ReadyState, RemoteInfo, SocketBase
from .backends import get_backend
from .backends.base import MAX_UDP_PAYLOAD, UdpOptions
from .errors import (FrameError, InvalidOptionError, MessageTooLargeError, NotSupportedError,
                     SocketClosedError, SocketIwaError)

_DNS_TYPES = (None, "ipv4", "ipv6")


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


class UDPSocket(SocketBase):
    """A UDP socket with the socketiwa event model.

    Events: ``open``, ``connect`` (connected mode), ``message(data, rinfo)``, ``error(exc)``,
    ``close``, and application events ``name(payload, rinfo, ack)``.
    """

    def __init__(self, *, local_address: str | None = None, local_port: int | None = None,
                 remote_address: str | None = None, remote_port: int | None = None,
                 send_buffer_size: int | None = None, receive_buffer_size: int | None = None,
                 dns_query_type: str | None = None, ipv6_only: bool | None = None,
                 multicast_time_to_live: int | None = None, multicast_loopback: bool | None = None,
                 multicast_allow_address_sharing: bool | None = None,
                 max_queue: int = 1024, ack_timeout: float = 5.0):
        super().__init__(max_queue=max_queue, ack_timeout=ack_timeout)
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
        self._transport = None
        self.local_address: str | None = None
        self.local_port: int | None = None
        self.remote_address: str | None = None
        self.remote_port: int | None = None

    @property
    def connected(self) -> bool:
        return not self.options.bound

    async def open(self) -> "UDPSocket":
        if self.ready_state is not ReadyState.CONNECTING:
            raise SocketClosedError(f"socket is already {self.ready_state.value}")
        try:
            self._transport = await get_backend().open_udp(self.options)
        except BaseException:
            self.ready_state = ReadyState.CLOSED
            self._closed_event.set()
            raise
        ep = self._transport.endpoints
        self.local_address, self.local_port = ep.local_address, ep.local_port
        self.remote_address, self.remote_port = ep.remote_address, ep.remote_port
        self.ready_state = ReadyState.OPEN
        self._reader_task = asyncio.ensure_future(self._receive_loop())
        self._dispatch("open")
        if self.connected:
            self._dispatch("connect")
        return self

    # ---- sending
    def _destination(self, port: int | None, address: str | None) -> tuple[str | None, int | None]:
        if self.connected:
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

        ``send(data)`` (connected), ``send(data, port, address)``, or
        ``send(data, offset, length, port, address)``.
        """
        if len(args) == 2:
            port, address = args
        elif len(args) == 4:
            offset, length, port, address = args
            raw = _as_bytes(data)
            if not (isinstance(offset, int) and isinstance(length, int)) or offset < 0 or length < 0 \
                    or offset + length > len(raw):
                raise InvalidOptionError(f"offset {offset} / length {length} outside data of {len(raw)} bytes")
            data = raw[offset:offset + length]
        elif args:
            raise TypeError("send(data), send(data, port, address) or send(data, offset, length, port, address)")
        payload = _as_bytes(data)
        if wire.is_envelope(payload):  # keep raw data that happens to start with our magic intact
            payload = wire.encode_data(payload)
        await self._send_raw(payload, *self._destination(port, address))

    async def _send_raw(self, payload: bytes, address: str | None, port: int | None) -> None:
        self._require_open()
        if not payload:
            # The same on every runtime: Chromium's UDPSocket refuses empty messages (and its
            # writable is dead afterwards); CPython's asyncio before 3.13 drops them silently.
            raise NotSupportedError("empty datagrams cannot be sent: Chromium's Direct Sockets "
                                    "refuses them (received ones arrive as b\"\")")
        if len(payload) > MAX_UDP_PAYLOAD:
            raise MessageTooLargeError(f"datagram of {len(payload)} bytes exceeds {MAX_UDP_PAYLOAD}")
        await self._transport.send(payload, address, port)

    async def emit(self, event: str, payload: Any = None, *, port: int | None = None,
                   address: str | None = None) -> None:
        """Send an application event (one envelope in one datagram)."""
        self._check_event_name(event)
        await self._send_raw(wire.encode_event(event, payload), *self._destination(port, address))

    async def emit_with_ack(self, event: str, payload: Any = None, *, timeout: float | None = None,
                            port: int | None = None, address: str | None = None) -> Any:
        """Send an event and wait for the receiver's ``ack(response)``; returns the response."""
        self._check_event_name(event)
        dest = self._destination(port, address)
        ack_id, fut = self._new_ack()
        try:
            await self._send_raw(wire.encode_event(event, payload, ack_id), *dest)
        except BaseException:
            self._pending.pop(ack_id, None)
            raise
        return await self._await_ack(ack_id, fut, event, timeout)

    # ---- receiving
    async def _receive_loop(self) -> None:
        transport = self._transport
        try:
            while True:
                try:
                    batch = await transport.recv()
                except SocketClosedError:
                    break
                except OSError as exc:  # ICMP unreachable and the like: report, keep going
                    self._report(exc)
                    continue
                except Exception as exc:  # the transport broke: report it, then close
                    self._report(exc)
                    break
                for data, address, port in batch:
                    await self._handler_room()
                    try:
                        await self._handle_datagram(data, address, port)
                    except Exception as exc:  # one datagram must never end the loop
                        self._report(exc)
        finally:
            if self.ready_state is ReadyState.OPEN:  # the transport ended by itself
                await self._finish()

    async def _handle_datagram(self, data: bytes, address: str, port: int) -> None:
        rinfo = RemoteInfo(address, port, len(data), "IPv6" if ":" in address else "IPv4")
        if wire.is_envelope(data):
            try:
                env = wire.decode(data)
            except FrameError as exc:
                exc.rinfo = rinfo
                self._report(exc)
                return
            if env.kind != wire.KIND_DATA:
                reply_to = (None, None) if self.connected else (address, port)

                def reply(raw: bytes, _dest=reply_to) -> asyncio.Future:
                    return asyncio.ensure_future(self._send_raw(raw, *_dest))
                self._on_envelope(env, reply, (rinfo,))
                return
            data = env.payload  # bytes: wire.decode guarantees it for DATA
            rinfo = rinfo._replace(size=len(data))
        await self._deliver(Datagram(data, rinfo), data, rinfo)

    # ---- closing
    async def close(self, timeout: float | None = None) -> None:
        """Close the socket. Returns at once: a datagram send() has returned for is already with
        the platform. Datagrams already queued stay readable (``receive()``, ``async for``); the
        rest are discarded. ``timeout`` is accepted for symmetry with TCP and has nothing to wait
        for."""
        if self.ready_state in (ReadyState.CLOSING, ReadyState.CLOSED):
            await self._closed_event.wait()
            return
        if self._transport is None:
            self.ready_state = ReadyState.CLOSED
            self._closed_event.set()
            return
        self.ready_state = ReadyState.CLOSING
        self._stop_receiving()
        try:
            await self._transport.close()
        except SocketIwaError as exc:
            self._report(exc)
        await self._finish()

    async def _finish(self) -> None:
        if self.ready_state is ReadyState.CLOSED:
            return
        self.ready_state = ReadyState.CLOSED
        self._fail_pending()
        self._end_queue()
        self._closed_event.set()
        self._dispatch("close")


async def create_udp(**options: Any) -> UDPSocket:
    """Open a UDP socket. Connected: ``remote_address``, ``remote_port``. Bound: ``local_address``
    (and optionally ``local_port``). Also ``send_buffer_size``, ``receive_buffer_size``,
    ``dns_query_type`` ('ipv4'|'ipv6'), ``max_queue``, ``ack_timeout``."""
    return await UDPSocket(**options).open()


__all__ = ["UDPSocket", "create_udp"]
