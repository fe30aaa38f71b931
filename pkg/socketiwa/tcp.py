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
from .backends.base import TcpOptions
from .errors import FrameError, InvalidOptionError, NotSupportedError, SocketClosedError
from .udp import _as_bytes, _check_port

if TYPE_CHECKING:
    from .server import TCPServer

FRAMINGS = ("frames", "raw")
# How long close() waits for the peer to take the data already handed to send(), by default.
DEFAULT_CLOSE_TIMEOUT = 5.0


class TCPSocket(SocketBase):
    """Events: ``open``, ``connect``, ``message(data)``, ``error(exc)``, ``disconnect`` (peer
    closed or connection lost), ``close``, and application events ``name(payload, ack)``."""

    def __init__(self, host: str | None = None, port: int | None = None, *, no_delay: bool = False,
                 keep_alive_delay: int | None = None, send_buffer_size: int | None = None,
                 receive_buffer_size: int | None = None, dns_query_type: str | None = None,
                 framing: str = "frames", max_message_size: int = wire.DEFAULT_MAX_MESSAGE,
                 max_queue: int = 1024, ack_timeout: float = 5.0,
                 close_timeout: float = DEFAULT_CLOSE_TIMEOUT):
        super().__init__(max_queue=max_queue, ack_timeout=ack_timeout)
        if not isinstance(close_timeout, (int, float)) or close_timeout < 0:
            raise InvalidOptionError("close_timeout must be a number of seconds >= 0")
        self.close_timeout = close_timeout
        if framing not in FRAMINGS:
            raise InvalidOptionError(f"framing must be one of {FRAMINGS}, got {framing!r}")
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
        self._deframer = wire.Deframer(max_message_size) if framing == "frames" else None
        self._transport = None
        self._write_lock = asyncio.Lock()
        self._writing: asyncio.Task | None = None        # the task inside transport.write()
        self._cancelled_writer: asyncio.Task | None = None
        self._aborted = False
        self._abort_closer: asyncio.Future | None = None
        self._admitted = 0                    # sends admitted by _send_envelope_soon, not done
        self._sends_idle = asyncio.Event()
        self._sends_idle.set()
        self.server: TCPServer | None = None
        self.rooms: set[str] = set()
        self.local_address: str | None = None
        self.local_port: int | None = None
        self.remote_address: str | None = None
        self.remote_port: int | None = None

    async def open(self) -> "TCPSocket":
        if self.ready_state is not ReadyState.CONNECTING:
            raise SocketClosedError(f"socket is already {self.ready_state.value}")
        if self.host is None:
            raise InvalidOptionError("no host/port to connect to")
        try:
            transport = await get_backend().open_tcp(self.host, self.port, self.options)
        except BaseException:
            self.ready_state = ReadyState.CLOSED
            self._closed_event.set()
            raise
        self._attach(transport)
        return self

    def _attach(self, transport) -> None:
        self._transport = transport
        ep = transport.endpoints
        self.local_address, self.local_port = ep.local_address, ep.local_port
        self.remote_address, self.remote_port = ep.remote_address, ep.remote_port
        self.ready_state = ReadyState.OPEN
        self._reader_task = asyncio.ensure_future(self._receive_loop())
        self._dispatch("open")
        self._dispatch("connect")

    # ---- sending
    async def _write(self, raw: bytes, admitted: bool = False) -> None:
        if not admitted:
            self._require_open()
        # One writer at a time so concurrent frames never interleave on the stream.
        async with self._write_lock:
            if self._aborted:
                raise SocketClosedError("connection aborted before this send was written")
            task = asyncio.current_task()
            self._writing = task
            try:
                await self._transport.write(raw)
            except asyncio.CancelledError:
                # Cancelled by abort (a peer that does not read held this write up): a typed
                # error, unless someone else cancelled the task too.
                if task is not None and self._cancelled_writer is task:
                    self._cancelled_writer = None
                    uncancel = getattr(task, "uncancel", None)
                    if uncancel is None or uncancel() == 0:
                        raise SocketClosedError("connection closed before this send completed") from None
                raise
            finally:
                self._writing = None

    async def send(self, data: Any) -> None:
        """Send a message (framed mode) or bytes (raw mode)."""
        payload = _as_bytes(data)
        if self._deframer is None:
            await self._write(payload)
        else:
            await self._write(wire.frame(wire.encode_data(payload), self.max_message_size))

    async def _send_envelope(self, envelope: bytes) -> None:
        await self._write(wire.frame(envelope, self.max_message_size))

    def _send_envelope_soon(self, envelope: bytes) -> asyncio.Future:
        """Send from a task of its own (acks), admitted now: a close() that starts after this
        call still writes it (close waits for every admitted send)."""
        try:
            self._require_open()
            raw = wire.frame(envelope, self.max_message_size)
        except Exception as exc:
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(exc)
            return fut
        self._admitted += 1
        self._sends_idle.clear()

        async def write() -> None:
            try:
                await self._write(raw, admitted=True)
            finally:
                self._admitted -= 1
                if not self._admitted:
                    self._sends_idle.set()
        return asyncio.ensure_future(write())

    def _require_frames(self) -> None:
        if self._deframer is None:
            raise NotSupportedError("events need framing='frames'; this connection is raw")

    async def emit(self, event: str, payload: Any = None) -> None:
        """Send an application event to the peer."""
        self._check_event_name(event)
        self._require_frames()
        await self._send_envelope(wire.encode_event(event, payload))

    async def emit_with_ack(self, event: str, payload: Any = None, *, timeout: float | None = None) -> Any:
        """Send an event and wait for the peer handler's ``ack(response)``; returns the response."""
        self._check_event_name(event)
        self._require_frames()
        ack_id, fut = self._new_ack()
        try:
            await self._send_envelope(wire.encode_event(event, payload, ack_id))
        except BaseException:
            self._pending.pop(ack_id, None)
            raise
        return await self._await_ack(ack_id, fut, event, timeout)

    # ---- rooms (connections accepted by a TCPServer)
    def join(self, room: str) -> None:
        if self.server is None:
            raise NotSupportedError("rooms exist only on connections accepted by a server")
        self.server._join(self, room)

    def leave(self, room: str) -> None:
        if self.server is not None:
            self.server._leave(self, room)

    # ---- receiving
    async def _receive_loop(self) -> None:
        transport = self._transport
        lost: BaseException | None = None
        try:
            while True:
                try:
                    chunk = await transport.read()
                except SocketClosedError:
                    break
                except OSError as exc:
                    lost = exc
                    break
                if not chunk:
                    break
                if self._deframer is None:
                    await self._handler_room()
                    await self._deliver(chunk, chunk)
                    continue
                for item in self._deframer.feed(chunk):
                    await self._handler_room()
                    if isinstance(item, FrameError):
                        self._report(item)
                        continue
                    try:
                        await self._handle_frame(item)
                    except Exception as exc:  # one frame must never end the loop
                        self._report(exc)
        except Exception as exc:  # the transport broke in a way it does not map: report, close
            lost = exc
        finally:
            if self.ready_state is ReadyState.OPEN:  # ended by the peer or the network, not close()
                if self._deframer is not None and self._deframer.buffered and lost is None:
                    self._report(FrameError(
                        f"stream ended inside a frame ({self._deframer.buffered} bytes left)"))
                if lost is not None:
                    self._report(lost)
                self._dispatch("disconnect")
                await self.close()

    async def _handle_frame(self, frame: bytes) -> None:
        try:
            env = wire.decode(frame)
        except FrameError as exc:
            self._report(exc)
            return
        if not self._on_envelope(env, self._send_envelope_soon):
            await self._deliver(env.payload, env.payload)

    # ---- closing
    async def close(self, timeout: float | None = None) -> None:
        """Close the connection; returns within ``timeout`` seconds (default ``close_timeout``,
        5 s) whatever the peer does.

        Receiving stops at once: messages already queued stay readable (``receive()``,
        ``async for``), anything later is discarded. Sending: every ``send()``/``emit()`` called
        before ``close()`` (including ones still waiting for their turn or for the peer to read)
        is written in order, then our side is shut down (FIN). If the peer takes it all within
        ``timeout`` it is all delivered. Otherwise the connection is aborted at the deadline:
        unsent data is discarded, the sends still waiting raise ``SocketClosedError``, and the
        peer sees a reset (a socketiwa peer may report the cut last frame as ``FrameError``).
        ``close(timeout=0)`` and ``abort()`` do that at once. Sends after ``close()`` raise
        ``SocketClosedError``; acks still pending fail with it."""
        timeout = self.close_timeout if timeout is None else timeout
        if self.ready_state in (ReadyState.CLOSING, ReadyState.CLOSED):
            if timeout <= 0 and self.ready_state is ReadyState.CLOSING:
                self._abort_transport()  # hurry a graceful close already under way
            await self._closed_event.wait()
            return
        if self._transport is None:
            self.ready_state = ReadyState.CLOSED
            self._closed_event.set()
            return
        self.ready_state = ReadyState.CLOSING
        self._stop_receiving()
        if timeout <= 0:
            self._abort_transport()
        else:
            try:
                await asyncio.wait_for(self._flush_and_close(), timeout)
            except asyncio.TimeoutError:
                self._abort_transport()
            except Exception as exc:  # closing failed (connection already broken): it is closed
                self._abort_transport()
                if not isinstance(exc, OSError):
                    self._report(exc)
        await self._finish()

    async def _flush_and_close(self) -> None:
        # Acks admitted before close() may not have reached the lock yet: let them.
        await self._sends_idle.wait()
        # Behind the lock: sends queued before close() go out first, in order.
        async with self._write_lock:
            await self._transport.close()

    def _abort_transport(self) -> None:
        if self._aborted:
            return
        self._aborted = True
        abort = getattr(self._transport, "abort", None)
        if abort is not None:
            abort()
        elif self._abort_closer is None:
            # A backend without abort(): start its close and do not wait for it.
            self._abort_closer = asyncio.ensure_future(self._transport.close())
            self._abort_closer.add_done_callback(
                lambda f: f.cancelled() or f.exception())  # retrieved: nobody awaits it
        writer = self._writing
        if writer is not None and not writer.done() and writer is not asyncio.current_task():
            self._cancelled_writer = writer
            writer.cancel()

    async def _finish(self) -> None:
        if self.ready_state is ReadyState.CLOSED:
            return
        self.ready_state = ReadyState.CLOSED
        if self.server is not None:
            self.server._forget(self)
        self._fail_pending()
        self._end_queue()
        self._closed_event.set()
        self._dispatch("close")


async def create_tcp(host: str, port: int, **options: Any) -> TCPSocket:
    """Connect a TCP socket. Options: ``no_delay``, ``keep_alive_delay`` (ms),
    ``send_buffer_size``, ``receive_buffer_size``, ``dns_query_type``, ``framing`` ('frames' or
    'raw'), ``max_message_size``, ``max_queue``, ``ack_timeout``, ``close_timeout``."""
    return await TCPSocket(host, port, **options).open()
