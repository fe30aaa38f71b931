"""The HTTP/3 connection shared by client and server: aioquic's ``H3Connection`` driven by a
``QuicConnectionProtocol``, with one ``RequestStream`` object per request stream.

Flow control both ways is real, not just buffering:

* sending waits (``drain``) while more than ``SEND_HIGH_WATER`` bytes of a stream are neither
  sent nor acknowledged, so a fast producer cannot grow memory without bound;
* receiving: aioquic widens a stream's receive window as soon as data arrives, whether or not
  anyone reads it. Each connection here makes aioquic judge the window by what the application
  has *consumed*, so a reader that stops reading stops the peer after one window (1 MiB by
  default) instead of queueing the whole upload.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, Mapping, TypeVar, Union

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.asyncio.protocol import QuicStreamHandler
from aioquic.buffer import Buffer, BufferReadError, encode_uint_var
from aioquic.h3.connection import H3Connection, Setting
from aioquic.h3.events import (DatagramReceived, DataReceived, H3Event, HeadersReceived,
                               WebTransportStreamDataReceived)
from aioquic.quic.events import (ConnectionTerminated, HandshakeCompleted, ProtocolNegotiated,
                                 QuicEvent, StopSendingReceived, StreamDataReceived,
                                 StreamReset)

from ..errors import InvalidOptionError, MessageTooLargeError, SocketClosedError

if TYPE_CHECKING:
    from aioquic.quic.connection import QuicConnection

    from .webtransport import WebTransportSession, WebTransportStream

Headers = list[tuple[bytes, bytes]]
# What callers may pass as headers: a mapping or pairs, names and values as str or bytes
# (other values, e.g. ints, are sent as their str()).
HeadersIn = Union[Mapping[Any, Any], Iterable[tuple[Any, Any]], None]
T = TypeVar("T")
logger = logging.getLogger("socketiwa.h3")

SEND_HIGH_WATER = 512 * 1024
READ_COALESCE = 256 * 1024
DEFAULT_DATAGRAM_QUEUE = 256
H3_NO_ERROR = 0x100
H3_INTERNAL_ERROR = 0x102
H3_REQUEST_CANCELLED = 0x10C
H3_MESSAGE_ERROR = 0x10E
H3_DATAGRAM_ERROR = 0x33
# RFC 9297 section 3.5: the DATAGRAM capsule, for datagrams sent on the stream itself
CAPSULE_DATAGRAM = 0x00


class StreamResetError(SocketClosedError):
    """The peer reset the stream (or asked us to stop sending on it). ``code`` is its error code."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class ConnectionTerminatedError(SocketClosedError):
    """The QUIC connection under the stream ended. ``code``/``reason`` are from the close."""

    def __init__(self, message: str, code: int = 0, reason: str = ""):
        super().__init__(message)
        self.code = code
        self.reason = reason


def to_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def normalize_headers(headers: HeadersIn) -> Headers:
    """Accept a mapping or pairs of str/bytes; return lower-case byte pairs (HTTP/3 requires
    lower-case field names, RFC 9114 section 4.2)."""
    if headers is None:
        return []
    items: Iterable[tuple[Any, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for name, value in items:
        name, value = to_bytes(name).lower(), to_bytes(value)
        if not name or any(c in b"\r\n\0" for c in value):
            raise InvalidOptionError(f"invalid header {name!r}: {value!r}")
        out.append((name, value))
    return out


def header_value(headers: Headers, name: str | bytes) -> str | None:
    """The first value of ``name`` in ``headers``, decoded, or None."""
    key = to_bytes(name).lower()
    for k, v in headers:
        if k == key:
            return v.decode("latin-1")
    return None


def encode_capsule(capsule_type: int, payload: bytes) -> bytes:
    """RFC 9297 section 3.2: type, length, value."""
    return encode_uint_var(capsule_type) + encode_uint_var(len(payload)) + payload


class CapsuleParser:
    """Incremental RFC 9297 capsule parser for a stream's data (capsules may be split anywhere).
    ``max_capsule`` bounds what one capsule may buffer."""

    def __init__(self, max_capsule: int = 65536):
        self._buf = bytearray()
        self.max_capsule = max_capsule

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add stream data; return the capsules now complete as (type, payload).
        MessageTooLargeError for a capsule over ``max_capsule``."""
        self._buf += data
        out = []
        while self._buf:
            b = Buffer(data=bytes(self._buf[:16]))
            try:
                ctype = b.pull_uint_var()
                length = b.pull_uint_var()
            except BufferReadError:
                break
            if length > self.max_capsule:
                raise MessageTooLargeError(f"capsule 0x{ctype:x} of {length} bytes", bytes(self._buf[:64]))
            start = b.tell()
            if len(self._buf) < start + length:
                break
            out.append((ctype, bytes(self._buf[start:start + length])))
            del self._buf[:start + length]
        return out

    @property
    def pending(self) -> int:
        """Bytes buffered towards the next capsule."""
        return len(self._buf)


class _ReceiveBuffer:
    """Chunks received on a stream and not yet read; the count of bytes feeds flow control."""

    def __init__(self) -> None:
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.ended = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def push(self, data: bytes, ended: bool) -> None:
        if data:
            self.chunks.append(data)
            self.size += len(data)
        if ended:
            self.ended = True
        self.wake()

    def fail(self, exc: BaseException) -> None:
        if self.error is None and not self.ended:
            self.error = exc
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self, max_bytes: int = -1) -> bytes:
        """Next data (at most ``max_bytes`` if given); b"" once the stream ended."""
        while not self.chunks:
            if self.ended:
                return b""
            if self.error is not None:
                raise self.error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        limit = max_bytes if max_bytes >= 0 else READ_COALESCE
        chunk = self.chunks.popleft()
        if len(self.chunks) and len(chunk) < limit:
            # QUIC hands data over packet by packet; give readers bigger pieces when queued
            parts = [chunk]
            size = len(chunk)
            while self.chunks and size + len(self.chunks[0]) <= limit:
                nxt = self.chunks.popleft()
                parts.append(nxt)
                size += len(nxt)
            chunk = b"".join(parts)
        if len(chunk) > limit:
            self.chunks.appendleft(chunk[limit:])
            chunk = chunk[:limit]
        self.size -= len(chunk)
        return chunk


class _BoundedQueue(Generic[T]):
    """A FIFO with one waiting reader and a limit: ``push`` refuses what does not fit (returns
    False, counts it in ``dropped``); ``fail`` makes ``get`` raise once the queue is empty."""

    def __init__(self, limit: int):
        self.items: collections.deque[T] = collections.deque()
        self.limit = limit
        self.dropped = 0
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def push(self, item: T) -> bool:
        if len(self.items) >= self.limit:
            self.dropped += 1
            return False
        self.items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        return True

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> T:
        while not self.items:
            if self.error is not None:
                raise self.error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.items.popleft()


class _DatagramQueue(_BoundedQueue[bytes]):
    """Bounded: datagrams are unreliable by definition, so when the application falls behind
    the newest are dropped (counted in ``dropped``) as a full UDP buffer would."""

    def __init__(self, limit: int = DEFAULT_DATAGRAM_QUEUE):
        super().__init__(limit)


class RequestStream:
    """One HTTP/3 request stream, seen from either end: the header blocks, the body as a byte
    stream, trailers, and the HTTP datagrams (RFC 9297) bound to it."""

    def __init__(self, protocol: "H3Protocol", stream_id: int):
        self.protocol = protocol
        self.stream_id = stream_id
        self.headers: Headers | None = None   # the first (final) header block received
        self.trailers: Headers | None = None
        self._headers_waiter: asyncio.Future[Headers] = asyncio.get_running_loop().create_future()
        self._body = _ReceiveBuffer()
        self._datagrams = _DatagramQueue()
        self.headers_sent = False
        self.send_ended = False
        self.reset_code: int | None = None       # the peer reset its side
        self.stop_code: int | None = None        # the peer asked us to stop sending
        self.on_headers: Callable[[Headers, bool], None] | None = None
        self.on_data: Callable[[bytes, bool], None] | None = None  # replaces the body buffer
        self._release_pending = False
        # resolved when the peer abandons the stream (reset, stop sending, connection gone)
        self.gone: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------ receiving (from the protocol)
    def _received_headers(self, headers: Headers, ended: bool) -> None:
        if self.headers is None:
            status = header_value(headers, ":status")
            if status is not None and status.startswith("1"):
                return  # interim response (RFC 9114 section 4.1): wait for the final one
            self.headers = headers
            if not self._headers_waiter.done():
                self._headers_waiter.set_result(headers)
        else:
            self.trailers = headers
        if self.on_headers is not None:
            self.on_headers(headers, ended)
        if ended:
            self._received_data(b"", True)

    def _received_data(self, data: bytes, ended: bool) -> None:
        if self.on_data is not None:
            self.on_data(data, ended)
        else:
            self._body.push(data, ended)
        if ended and self._release_pending:
            self.protocol.forget(self.stream_id)

    def _failed(self, exc: BaseException) -> None:
        if not self._headers_waiter.done():
            self._headers_waiter.set_exception(exc)
            self._headers_waiter.exception()  # retrieved: nobody may be waiting
        self._body.fail(exc)
        self._datagrams.fail(exc)
        if not self.gone.done():
            self.gone.set_result(exc)
        if self._release_pending:
            self.protocol.forget(self.stream_id)

    def release(self, stop_sending: bool = True) -> None:
        """The application is done with this stream: forget it once the peer's side has ended
        too (until then late frames must still find it, so trailers are not taken for a new
        request). Unread request data is refused with STOP_SENDING (RFC 9114 section 4.1)
        unless ``stop_sending`` is False (a closing session waits for the peer's FIN)."""
        if self._body.ended or self._body.error is not None:
            self.protocol.forget(self.stream_id)
            return
        self._release_pending = True
        self._body.chunks.clear()
        self._body.size = 0
        if not stop_sending:
            return
        try:
            self.protocol._quic.stop_stream(self.stream_id, H3_NO_ERROR)
            self.protocol.transmit()
        except Exception:  # the stream is already gone on the QUIC side
            self.protocol.forget(self.stream_id)

    @property
    def unconsumed(self) -> int:
        """Bytes received on this stream and not yet read by the application."""
        return self._body.size

    # ------------------------------------------------------------ public: receiving
    async def receive_headers(self) -> Headers:
        """The first (final) header block from the peer; interim 1xx responses are skipped."""
        # Not shielded: the exchange has one waiter for its headers, and when that waiter is
        # cancelled the exchange is abandoned (a shield would log the later reset as unhandled).
        return await self._headers_waiter

    async def read(self, max_bytes: int = -1) -> bytes:
        """The next piece of the body; b"" at its end. Raises StreamResetError if the peer
        reset the stream, ConnectionTerminatedError if the connection ended first."""
        data = await self._body.read(max_bytes)
        if data:
            self.protocol._consumed(self.stream_id)
        return data

    async def read_all(self, limit: int = 64 * 1024 * 1024) -> bytes:
        """The whole rest of the body; MessageTooLargeError beyond ``limit`` bytes."""
        out = bytearray()
        while chunk := await self.read():
            out += chunk
            if len(out) > limit:
                raise MessageTooLargeError(f"body larger than {limit} bytes")
        return bytes(out)

    @property
    def receive_ended(self) -> bool:
        """Whether the peer ended its side and everything was read."""
        return self._body.ended and not self._body.chunks

    async def receive_datagram(self) -> bytes:
        """The next HTTP datagram for this stream (a bounded queue; see ``datagrams_dropped``)."""
        return await self._datagrams.get()

    @property
    def datagrams_dropped(self) -> int:
        """HTTP datagrams dropped because the queue was full."""
        return self._datagrams.dropped

    # ------------------------------------------------------------ public: sending
    def _check_can_send(self) -> None:
        if self.stop_code is not None:
            raise StreamResetError(f"peer stopped stream {self.stream_id} (code 0x{self.stop_code:x})",
                                   self.stop_code)
        self.protocol._check_open()
        if self.send_ended:
            raise SocketClosedError(f"stream {self.stream_id} already ended")

    async def send_headers(self, headers: HeadersIn, end_stream: bool = False) -> None:
        """The first call sends the header block, a later one sends trailers (which end the
        stream)."""
        self._check_can_send()
        trailers = self.headers_sent
        self.protocol.h3.send_headers(self.stream_id, normalize_headers(headers),
                                        end_stream=end_stream or trailers)
        self.headers_sent = True
        self.send_ended = end_stream or trailers
        self.protocol._transmit_soon()  # one flush for everything queued in this loop turn

    async def send_data(self, data: bytes, end_stream: bool = False) -> None:
        """Send body data; waits while the stream has too much unacknowledged data."""
        self._check_can_send()
        if not self.headers_sent:
            raise SocketClosedError("send_headers() first")
        self.protocol.h3.send_data(self.stream_id, bytes(data), end_stream=end_stream)
        self.send_ended = end_stream
        self.protocol._transmit_soon()
        await self.protocol.drain(self.stream_id)

    async def end(self) -> None:
        """End our side of the stream (FIN), unless it already ended."""
        if not self.send_ended:
            await self.send_data(b"", end_stream=True)

    def send_datagram(self, data: bytes) -> None:
        """Send an HTTP datagram bound to this stream (RFC 9297). Too large for one QUIC packet:
        MessageTooLargeError (nothing is sent)."""
        self.protocol.send_datagram(self.stream_id, data)

    @property
    def max_datagram_size(self) -> int:
        """The largest HTTP datagram payload that fits one QUIC packet (0: datagrams off)."""
        return self.protocol.max_datagram_payload(self.stream_id)

    def reset(self, code: int = H3_REQUEST_CANCELLED) -> None:
        """Abort both directions: RESET_STREAM our side, STOP_SENDING theirs."""
        quic = self.protocol._quic
        if not self.send_ended:
            self.send_ended = True
            try:
                quic.reset_stream(self.stream_id, code)
            except Exception:  # already reset or closed: nothing left to abort
                pass
        if not self._body.ended:
            try:
                quic.stop_stream(self.stream_id, code)
            except Exception:
                pass
        self.protocol.transmit()


class H3Protocol(QuicConnectionProtocol):
    """aioquic's QUIC protocol carrying HTTP/3. Subclasses decide what to do with a request
    stream's first headers (``request_received``)."""

    def __init__(self, quic: QuicConnection, stream_handler: QuicStreamHandler | None = None) -> None:
        super().__init__(quic, stream_handler)
        self.http: H3Connection | None = None
        self.streams: dict[int, RequestStream] = {}
        # WebTransport: session id -> session, stream id -> stream (set by webtransport.py)
        self.wt_sessions: dict[int, WebTransportSession] = {}
        self.wt_streams: dict[int, WebTransportStream] = {}
        self.terminated: ConnectionTerminated | None = None
        self.handshake: HandshakeCompleted | None = None
        self._progress: list[asyncio.Future[None]] = []
        self._state_waiters: list[asyncio.Future[None]] = []
        self._datagrams_enabled = quic.configuration.max_datagram_frame_size is not None
        self._bound_receive_windows()
        if quic.configuration.is_client:
            self._start_http()

    # ------------------------------------------------------------ setup
    @property
    def h3(self) -> H3Connection:
        """The HTTP/3 layer (there once ALPN chose h3; on a client from the start)."""
        if self.http is None:
            raise SocketClosedError("HTTP/3 is not set up on this connection yet (no ALPN h3)")
        return self.http

    def _start_http(self) -> None:
        # aioquic announces H3_DATAGRAM only together with WebTransport; both need the QUIC
        # datagram transport parameter, so they are on exactly when it is configured.
        self.http = H3Connection(self._quic, enable_webtransport=self._datagrams_enabled)

    def _bound_receive_windows(self) -> None:
        quic = self._quic
        original = quic._write_stream_limits

        def write_stream_limits(builder: Any, space: Any, stream: Any) -> Any:
            held = self._unconsumed(stream.stream_id)
            if not held:
                return original(builder=builder, space=space, stream=stream)
            # aioquic doubles the window when highest_offset * 2 exceeds it; make it count only
            # what the application has taken, for the duration of this one decision.
            receiver = stream.receiver
            real = receiver.highest_offset
            receiver.highest_offset = real - held
            try:
                return original(builder=builder, space=space, stream=stream)
            finally:
                receiver.highest_offset = real
        quic._write_stream_limits = write_stream_limits  # type: ignore[method-assign]  # see above

    def _stream(self, stream_id: int) -> RequestStream | WebTransportStream | None:
        return self.streams.get(stream_id) or self.wt_streams.get(stream_id)

    def _unconsumed(self, stream_id: int) -> int:
        s = self._stream(stream_id)
        return s.unconsumed if s is not None else 0

    def _consumed(self, stream_id: int) -> None:
        """The application read from a stream: if the window would now grow, say so at once."""
        stream = self._quic._streams.get(stream_id)
        if stream is not None and stream.max_stream_data_local and \
                (stream.receiver.highest_offset - self._unconsumed(stream_id)) * 2 > stream.max_stream_data_local:
            self.transmit()

    # ------------------------------------------------------------ flow control on send
    def _check_open(self) -> None:
        if self.terminated is not None:
            raise ConnectionTerminatedError(
                f"connection closed (0x{self.terminated.error_code:x} {self.terminated.reason_phrase})",
                self.terminated.error_code, self.terminated.reason_phrase)

    def send_buffered(self, stream_id: int) -> int:
        """Bytes of a stream queued in QUIC and not yet acknowledged."""
        stream = self._quic._streams.get(stream_id)
        if stream is None:
            return 0
        return stream.sender._buffer_stop - stream.sender._buffer_start

    async def drain(self, stream_id: int, high_water: int = SEND_HIGH_WATER) -> None:
        """Wait while more than ``high_water`` bytes of the stream are unacknowledged.
        Raises StreamResetError if the peer stopped the stream, ConnectionTerminatedError if the
        connection ended."""
        while self.send_buffered(stream_id) > high_water:
            self._check_open()
            stream = self._stream(stream_id)
            if stream is not None and stream.stop_code is not None:
                raise StreamResetError(f"peer stopped stream {stream_id}", stream.stop_code)
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._progress.append(waiter)
            await waiter

    def _wake_progress(self) -> None:
        waiters, self._progress = self._progress, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        super().datagram_received(data, addr)
        if self._progress:  # ACKs and window updates arrive in datagrams
            self._wake_progress()

    # ------------------------------------------------------------ datagrams (RFC 9297)
    def max_datagram_payload(self, stream_id: int) -> int:
        """The largest HTTP datagram payload that fits one QUIC packet for this stream."""
        quic = self._quic
        remote = quic._remote_max_datagram_frame_size
        if not self._datagrams_enabled or not remote:
            return 0
        # short header (1 + connection id + 2-byte packet number), AEAD tag, DATAGRAM frame type
        # and length, quarter stream id
        overhead = 1 + len(quic._peer_cid.cid) + 2 + 16 + 1 + 2 + len(encode_uint_var(stream_id // 4))
        return min(quic._max_datagram_size - overhead, remote - 3 - len(encode_uint_var(stream_id // 4)))

    def send_datagram(self, stream_id: int, data: bytes) -> None:
        """Send an HTTP datagram bound to request stream ``stream_id`` (RFC 9297).
        InvalidOptionError when datagrams are off, MessageTooLargeError when it cannot fit."""
        self._check_open()
        limit = self.max_datagram_payload(stream_id)
        if limit <= 0:
            raise InvalidOptionError("HTTP datagrams are not enabled on this connection "
                                     "(max_datagram_frame_size, peer's H3_DATAGRAM setting)")
        if len(data) > limit:
            # aioquic would keep an oversize datagram at the head of its queue forever
            raise MessageTooLargeError(f"datagram of {len(data)} bytes; at most {limit} fit", bytes(data[:64]))
        self.h3.send_datagram(stream_id, bytes(data))
        self.transmit()

    async def wait_connected(self) -> None:
        """Until the handshake completed. (aioquic 1.7.2's own only notices a completion that
        happened while someone waited, so after connect(wait_connected=False) it hangs.)"""
        while self.handshake is None:
            self._check_open()
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._state_waiters.append(waiter)   # woken by SETTINGS and HandshakeCompleted
            await waiter

    @property
    def in_early_data(self) -> bool:
        """Server: data arriving now may be 0-RTT (accepted early data, handshake not done).
        Client: requests sent now travel as 0-RTT."""
        if self.handshake is not None:
            return False
        return bool(self._quic.configuration.is_client or self._quic.tls.early_data_accepted)

    # ------------------------------------------------------------ settings
    @property
    def peer_settings(self) -> dict[int, int] | None:
        """The peer's HTTP/3 SETTINGS once they arrived, else None."""
        return self.http.received_settings if self.http else None

    async def wait_peer_settings(self) -> dict[int, int]:
        """The peer's HTTP/3 SETTINGS, waiting for them if needed."""
        while self.peer_settings is None:
            self._check_open()
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._state_waiters.append(waiter)
            await waiter
        return self.peer_settings

    def peer_supports(self, setting: int) -> bool:
        """Whether the peer's SETTINGS turn ``setting`` on."""
        return bool((self.peer_settings or {}).get(setting))

    async def require_extended_connect(self, webtransport: bool = False) -> None:
        """NotSupportedError unless the peer allows Extended CONNECT (and, with
        ``webtransport``, WebTransport)."""
        from ..errors import NotSupportedError
        await self.wait_peer_settings()
        if not self.peer_supports(Setting.ENABLE_CONNECT_PROTOCOL):
            raise NotSupportedError("peer does not allow Extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)")
        if webtransport and not self.peer_supports(Setting.ENABLE_WEBTRANSPORT):
            raise NotSupportedError("peer does not enable WebTransport (SETTINGS_ENABLE_WEBTRANSPORT)")

    # ------------------------------------------------------------ events
    def new_stream(self, stream_id: int) -> RequestStream:
        """Track request stream ``stream_id`` and return its RequestStream."""
        stream = self.streams[stream_id] = RequestStream(self, stream_id)
        return stream

    def request_received(self, stream: RequestStream, headers: Headers, ended: bool) -> None:
        """Server: the first headers of a new request stream. Client: never called."""
        stream.reset(H3_INTERNAL_ERROR)

    def quic_event_received(self, event: QuicEvent) -> None:
        try:
            self._quic_event(event)
        except Exception:
            # A fault here must cost this connection, not the listening socket it shares with
            # every other connection (an exception escaping datagram_received ends it).
            logger.exception("HTTP/3 connection failed handling %s", type(event).__name__)
            self._quic.close(error_code=H3_INTERNAL_ERROR, reason_phrase="internal error")

    def _quic_event(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and self.http is None:
            self._start_http()
        elif isinstance(event, HandshakeCompleted):
            self.handshake = event
        elif isinstance(event, StreamDataReceived) and event.stream_id in self.wt_streams:
            # A WebTransport stream past its header is raw bytes: aioquic's HTTP/3 parser
            # would misread replies on a bidirectional stream we opened (they carry no header).
            self.wt_streams[event.stream_id]._received(event.data, event.end_stream)
            return
        if self.http is not None:
            for h3_event in self.http.handle_event(event):
                self.h3_event_received(h3_event)
            if self._state_waiters and (self.http.received_settings is not None
                                           or isinstance(event, HandshakeCompleted)):
                waiters, self._state_waiters = self._state_waiters, []
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
        if isinstance(event, StreamReset):
            self._stream_reset(event.stream_id, event.error_code)
        elif isinstance(event, StopSendingReceived):
            self._stop_sending(event.stream_id, event.error_code)
        elif isinstance(event, ConnectionTerminated):
            self._connection_terminated(event)

    def h3_event_received(self, event: H3Event) -> None:
        """Route one aioquic HTTP/3 event to its stream or WebTransport session."""
        if isinstance(event, HeadersReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None:
                if self._quic.configuration.is_client:
                    return  # not a stream we opened (push is never enabled)
                stream = self.new_stream(event.stream_id)
                stream._received_headers(event.headers, event.stream_ended)
                self.request_received(stream, event.headers, event.stream_ended)
            else:
                stream._received_headers(event.headers, event.stream_ended)
        elif isinstance(event, DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream._received_data(event.data, event.stream_ended)
        elif isinstance(event, DatagramReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream._datagrams.push(event.data)
            # else: RFC 9297 section 2.1 lets a receiver drop datagrams for unknown streams
        elif isinstance(event, WebTransportStreamDataReceived):
            session = self.wt_sessions.get(event.session_id)
            if session is not None:
                session._stream_data(event.stream_id, event.data, event.stream_ended)
            else:  # no such session (or already gone): refuse the stream, do not buffer it
                self._refuse_stream(event.stream_id)

    def _refuse_stream(self, stream_id: int) -> None:
        from aioquic.quic.connection import stream_is_client_initiated, stream_is_unidirectional
        local = stream_is_client_initiated(stream_id) == self._quic.configuration.is_client
        try:
            if not local or not stream_is_unidirectional(stream_id):
                self._quic.stop_stream(stream_id, H3_REQUEST_CANCELLED)
            if local or not stream_is_unidirectional(stream_id):
                self._quic.reset_stream(stream_id, H3_REQUEST_CANCELLED)
        except Exception:
            pass

    def _stream_reset(self, stream_id: int, code: int) -> None:
        stream = self._stream(stream_id)
        if stream is not None:
            stream.reset_code = code
            stream._failed(StreamResetError(f"peer reset stream {stream_id} (code 0x{code:x})", code))

    def _stop_sending(self, stream_id: int, code: int) -> None:
        stream = self._stream(stream_id)
        if stream is not None:
            stream.stop_code = code
            gone = getattr(stream, "gone", None)
            if gone is not None and not gone.done():
                gone.set_result(StreamResetError(f"peer stopped stream {stream_id}", code))
        self._wake_progress()

    def _connection_terminated(self, event: ConnectionTerminated) -> None:
        self.terminated = event
        exc = ConnectionTerminatedError(
            f"connection closed (0x{event.error_code:x} {event.reason_phrase})",
            event.error_code, event.reason_phrase)
        for stream in list(self.streams.values()) + list(self.wt_streams.values()):
            stream._failed(exc)
        for session in list(self.wt_sessions.values()):
            session._connection_lost(exc)
        self._wake_progress()
        for w in self._state_waiters:
            if not w.done():
                w.set_result(None)

    def forget(self, stream_id: int) -> None:
        """Drop a finished stream's bookkeeping."""
        self.streams.pop(stream_id, None)


__all__ = ["H3Protocol", "RequestStream", "StreamResetError", "ConnectionTerminatedError",
           "CapsuleParser", "encode_capsule", "normalize_headers", "header_value", "Headers"]
