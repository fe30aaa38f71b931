"""The event protocol without I/O: bytes and time in, events and bytes out.

A :class:`Session` is what one socketiwa connection (a TCP stream, a UDP socket) knows about the
protocol, in the style of aioquic's ``QuicConnection`` and h11: it never touches a socket, a
task or a clock. The socket objects (``udp.py``, ``tcp.py``) feed it what the backend delivered
and the current time, act on the events it returns, and write the bytes it gives them::

    s = Session(mode="stream")                  # or "datagram"; framing="raw" for plain streams
    s.connection_made()                         # CONNECTING -> OPEN
    out, ack_id = s.emit("greet", ("py",), want_ack=True, now=0.0, timeout=5)
    for event in s.receive_data(chunk):         # datagram mode: s.receive_datagram(d, addr, port)
        ...                                     # MessageReceived, EventReceived, AckReceived, ...
    s.next_deadline()                           # 5.0: when the ack times out
    s.handle_timer(now=5.0)                     # [AckTimedOut(ack_id, "greet")]

``ready_state`` changes only in :meth:`Session._transition` (the one table of legal moves).

The bytes on the wire come from a *codec* (``codec=``), so another envelope format can replace
socketiwa's own (:class:`SocketiwaCodec`, the default; see :class:`Codec` for what one provides).
"""
from __future__ import annotations

import enum
import heapq
import itertools
from dataclasses import dataclass
from typing import Any, Protocol, Union

from . import wire
from .backends.base import MAX_UDP_PAYLOAD
from .errors import (BackpressureError, FrameError, MessageTooLargeError, NotSupportedError,
                     SocketClosedError)

RESERVED_EVENTS = frozenset({"open", "message", "error", "close", "connect", "disconnect",
                             "connection"})

# Close codes as WebSocket uses them (RFC 6455 section 7.4.1), for the cases without a CLOSE
# frame: a plain close(), a peer that ended without saying why, a connection lost to an error.
CLOSE_NORMAL = 1000
CLOSE_NO_STATUS = 1005
CLOSE_ABNORMAL = 1006


class ReadyState(str, enum.Enum):
    """A socket's or server's ``ready_state`` (a str enum: equal to "open" and so on).

    CONNECTING until open() succeeds, then OPEN; CLOSING while close() flushes; CLOSED at the
    end (also when open() failed)."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """What ``close`` and ``disconnect`` handlers receive: ``info.code``, ``info.reason``."""
    code: int
    reason: str = ""

    def __getitem__(self, key: str) -> Any:  # info["code"], as the JS object reads
        if key not in ("code", "reason"):
            raise KeyError(key)
        return getattr(self, key)


# ---------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A plain message: a datagram, a DATA frame, or a chunk of a raw stream."""
    data: bytes
    address: str | None = None
    port: int | None = None


@dataclass(frozen=True, slots=True)
class EventReceived:
    """An application event. ``ack_id`` is 0 unless the sender waits for ``ack(...)``."""
    name: str
    args: tuple[Any, ...]
    ack_id: int = 0
    address: str | None = None
    port: int | None = None


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An answer to ``emit(..., want_ack=True)``. ``expected`` is False for an id nobody waits
    for (already timed out, or never asked)."""
    ack_id: int
    args: tuple[Any, ...]
    expected: bool
    address: str | None = None
    port: int | None = None

    @property
    def value(self) -> Any:
        """What ``emit_with_ack`` returns: None, the one argument, or the tuple of several."""
        return ack_value(self.args)


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """One malformed input (reported, then skipped: the session goes on)."""
    error: FrameError
    address: str | None = None
    port: int | None = None


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer announced its close (a CLOSE envelope); its end of stream follows."""
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The stream ended from the peer's side (FIN or error). ``info`` is what the peer's CLOSE
    said, or CLOSE_NO_STATUS (clean end) / CLOSE_ABNORMAL (error)."""
    info: CloseInfo
    error: Exception | None = None


@dataclass(frozen=True, slots=True)
class AckTimedOut:
    ack_id: int
    event: str


@dataclass(frozen=True, slots=True)
class AckFailed:
    """A pending ack that can never arrive: the session closed."""
    ack_id: int
    event: str


Event = Union[MessageReceived, EventReceived, AckReceived, ProtocolError, CloseReceived,
              PeerClosed, AckTimedOut, AckFailed]


def ack_value(args: tuple[Any, ...]) -> Any:
    return None if not args else args[0] if len(args) == 1 else args


# ---------------------------------------------------------------- codecs
class StreamDecoder(Protocol):
    """Turns stream chunks into envelopes. One per connection."""

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete envelope (bounded by the max message size)."""

    def feed(self, chunk: bytes) -> list["wire.Envelope | FrameError"]:
        """The envelopes (and errors, in stream order) that ``chunk`` completes."""

    def end(self) -> FrameError | None:
        """The stream ended: an error if it ended inside an envelope."""


class Codec(Protocol):
    """An envelope format. Decoders return :class:`wire.Envelope` values that the session reads
    as: DATA -> ``payload`` (bytes, the message); EVENT -> ``name``, ``args`` (tuple),
    ``ack_id`` (0: no ack wanted); ACK -> ``ack_id``, ``args``; CLOSE -> ``payload`` =
    ``[code, reason]``. Encoders raise TypeError/ValueError for what the format cannot carry;
    decoders raise (datagrams) or yield in order (streams) a :class:`FrameError` carrying the
    raw bytes for each malformed input, and go on with the next. The session itself checks
    reserved event names, ack bookkeeping and sizes, so a codec only translates."""

    name: str

    def encode_event(self, name: str, args: tuple[Any, ...], ack_id: int) -> bytes: ...
    def encode_ack(self, ack_id: int, args: tuple[Any, ...]) -> bytes: ...
    def encode_close(self, code: int, reason: str) -> bytes | None:
        """The envelope announcing a close, or None if the format has none."""
    def encode_message(self, data: bytes, stream: bool) -> bytes:
        """A plain message: for a datagram (``stream`` False) the bytes to send as they are;
        for a framed stream the unframed envelope."""
    def decode_datagram(self, data: bytes) -> "wire.Envelope":
        """One datagram: an envelope, or a plain message as a DATA envelope."""
    def frame(self, envelope: bytes, max_message: int) -> bytes:
        """An envelope as it goes onto a stream (MessageTooLargeError past ``max_message``)."""
    def stream_decoder(self, max_message: int) -> StreamDecoder: ...


class _SiwStreamDecoder:
    """socketiwa's framing: u32 length + envelope (wire.Deframer), then wire.decode."""

    __slots__ = ("deframer",)

    def __init__(self, max_message: int):
        self.deframer = wire.Deframer(max_message)

    @property
    def buffered(self) -> int:
        return self.deframer.buffered

    def feed(self, chunk: bytes) -> list[wire.Envelope | FrameError]:
        out: list[wire.Envelope | FrameError] = []
        for item in self.deframer.feed(chunk):
            if isinstance(item, FrameError):
                out.append(item)
                continue
            try:
                out.append(wire.decode(item))
            except FrameError as exc:
                out.append(exc)
        return out

    def end(self) -> FrameError | None:
        if self.deframer.buffered:
            return FrameError(f"stream ended inside a frame ({self.deframer.buffered} bytes left)")
        return None


class SocketiwaCodec:
    """The default: socketiwa's binary envelopes (``wire.py``). Plain datagrams travel raw
    (interoperable with any UDP peer) unless they start with the envelope magic."""

    name = "socketiwa"

    def encode_event(self, name: str, args: tuple[Any, ...], ack_id: int) -> bytes:
        return wire.encode_event(name, ack_id=ack_id, args=args)

    def encode_ack(self, ack_id: int, args: tuple[Any, ...]) -> bytes:
        return wire.encode_ack(ack_id, args=args)

    def encode_close(self, code: int, reason: str) -> bytes:
        return wire.encode_close(code, reason)

    def encode_message(self, data: bytes, stream: bool) -> bytes:
        if stream or wire.is_envelope(data):
            return wire.encode_data(data)
        return data

    def decode_datagram(self, data: bytes) -> wire.Envelope:
        if wire.is_envelope(data):
            return wire.decode(data)
        return wire.Envelope(wire.KIND_DATA, payload=data, args=(data,))

    def frame(self, envelope: bytes, max_message: int) -> bytes:
        return wire.frame(envelope, max_message)

    def stream_decoder(self, max_message: int) -> _SiwStreamDecoder:
        return _SiwStreamDecoder(max_message)


DEFAULT_CODEC = SocketiwaCodec()


# ---------------------------------------------------------------- the session
class Session:
    """Protocol state of one connection; see the module docstring.

    ``mode``: "datagram" (one envelope per datagram; plain datagrams pass raw) or "stream"
    (framed envelopes). ``framing="raw"`` (streams only): no envelopes at all, every chunk is a
    message and events are unavailable. ``ack_timeout``: default seconds an ack may take
    (None: no limit). ``max_pending_acks`` bounds the ids waiting for an answer.
    """

    def __init__(self, mode: str = "stream", *, codec: Codec | None = None,
                 framing: str = "frames", max_message: int = wire.DEFAULT_MAX_MESSAGE,
                 ack_timeout: float | None = 5.0, max_pending_acks: int = 4096):
        if mode not in ("stream", "datagram"):
            raise ValueError(f"mode must be 'stream' or 'datagram', got {mode!r}")
        if framing not in ("frames", "raw") or (framing == "raw" and mode != "stream"):
            raise ValueError(f"framing {framing!r} is not available in {mode} mode")
        self.mode = mode
        self.codec: Codec = codec or DEFAULT_CODEC
        self.framing = framing
        self.max_message = MAX_UDP_PAYLOAD if mode == "datagram" else max_message
        self.ack_timeout = ack_timeout
        self.max_pending_acks = max_pending_acks
        self._state = ReadyState.CONNECTING
        # The socket layer's fast path (udp.py): with the default codec a datagram that does not
        # start with the envelope magic is a plain message both ways, its bytes unchanged. The
        # socket then reads ``_state`` itself (OPEN: accepting and sending) instead of calling
        # receive_datagram/send, which give the same result through ~6 calls and 2 objects.
        self.raw_plain = mode == "datagram" and type(self.codec) is SocketiwaCodec
        self._decoder = (self.codec.stream_decoder(max_message)
                         if mode == "stream" and framing == "frames" else None)
        self._pending: dict[int, tuple[float | None, str]] = {}  # ack id -> (deadline, event)
        self._deadlines: list[tuple[float, int]] = []            # heap; stale entries skipped
        self._ack_ids = itertools.cycle(range(1, 2**32))
        self.close_info: CloseInfo | None = None  # set once: by us, by the peer, or by a loss
        self._peer_close: CloseInfo | None = None

    # ---- ready state: every transition goes through here
    _LEGAL = {
        ReadyState.CONNECTING: (ReadyState.OPEN, ReadyState.CLOSED),
        ReadyState.OPEN: (ReadyState.CLOSING, ReadyState.CLOSED),
        ReadyState.CLOSING: (ReadyState.CLOSED,),
        ReadyState.CLOSED: (),
    }

    def _transition(self, new: ReadyState) -> None:
        if new not in self._LEGAL[self._state]:
            raise SocketClosedError(f"socket is {self._state.value}")
        self._state = new

    @property
    def ready_state(self) -> ReadyState:
        return self._state

    @property
    def events_enabled(self) -> bool:
        return self._decoder is not None or self.mode == "datagram"

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (0 for datagrams and raw streams)."""
        return self._decoder.buffered if self._decoder is not None else 0

    def connection_made(self) -> None:
        self._transition(ReadyState.OPEN)

    def close(self, code: int | None = None, reason: str = "") -> bytes:
        """Start closing (OPEN -> CLOSING). Returns the bytes to send before the end of stream:
        a CLOSE envelope when ``code`` is given on a framed stream, else b"" (a plain close sends
        nothing new, so peers of earlier versions see exactly what they saw before)."""
        if code is not None:
            wire.check_close(code, reason)
        self._transition(ReadyState.CLOSING)
        if self.close_info is None:
            self.close_info = CloseInfo(CLOSE_NORMAL if code is None else code, reason)
        if code is None or self._decoder is None:
            return b""
        envelope = self.codec.encode_close(code, reason)
        return b"" if envelope is None else self.codec.frame(envelope, self.max_message)

    def terminate(self) -> list[Event]:
        """The transport is gone (-> CLOSED). Every pending ack fails."""
        if self._state is ReadyState.CLOSED:
            return []
        self._transition(ReadyState.CLOSED)
        if self.close_info is None:
            self.close_info = CloseInfo(CLOSE_NORMAL)
        failed: list[Event] = [AckFailed(ack_id, event) for ack_id, (_, event) in self._pending.items()]
        self._pending.clear()
        self._deadlines.clear()
        return failed

    def _require_open(self) -> None:
        if self._state is not ReadyState.OPEN:
            raise SocketClosedError(f"socket is {self._state.value}")

    # ---- outgoing
    def _out(self, envelope: bytes) -> bytes:
        if self.mode == "stream":
            return self.codec.frame(envelope, self.max_message)
        if len(envelope) > self.max_message:
            raise MessageTooLargeError(f"datagram of {len(envelope)} bytes exceeds {self.max_message}")
        return envelope

    def send(self, data: bytes) -> bytes:
        """The bytes for one plain message."""
        self._require_open()
        if self._decoder is None and self.mode == "stream":
            return data
        raw = self._out(self.codec.encode_message(data, self.mode == "stream"))
        if not raw and self.mode == "datagram":
            # The same on every runtime: Chromium's UDPSocket refuses empty messages (and its
            # writable is dead afterwards); CPython's asyncio before 3.13 drops them silently.
            raise NotSupportedError("empty datagrams cannot be sent: Chromium's Direct Sockets "
                                    "refuses them (received ones arrive as b\"\")")
        return raw

    def check_event_name(self, event: str) -> None:
        if event in RESERVED_EVENTS:
            raise ValueError(f"{event!r} is a reserved lifecycle event and cannot be emitted")
        if not self.events_enabled:
            raise NotSupportedError("events need framing='frames'; this connection is raw")

    def emit(self, event: str, args: tuple[Any, ...] = (), *, want_ack: bool = False,
             now: float = 0.0, timeout: float | None = None) -> tuple[bytes, int]:
        """The bytes for one event, and its ack id (0 unless ``want_ack``). With ``want_ack``
        the id is pending until its AckReceived, AckTimedOut (at ``now + timeout``, default
        ``ack_timeout``), :meth:`cancel_ack` or :meth:`terminate`."""
        self._require_open()
        self.check_event_name(event)
        if not want_ack:
            return self._out(self.codec.encode_event(event, tuple(args), 0)), 0
        if len(self._pending) >= self.max_pending_acks:
            raise BackpressureError(f"{len(self._pending)} acknowledgements already pending")
        ack_id = next(self._ack_ids)
        while ack_id in self._pending:
            ack_id = next(self._ack_ids)
        raw = self._out(self.codec.encode_event(event, tuple(args), ack_id))
        timeout = self.ack_timeout if timeout is None else timeout
        deadline = None if timeout is None else now + timeout
        self._pending[ack_id] = (deadline, event)
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, ack_id))
        return raw, ack_id

    def ack(self, ack_id: int, args: tuple[Any, ...] = ()) -> bytes:
        """The bytes answering event ``ack_id``."""
        self._require_open()
        return self._out(self.codec.encode_ack(ack_id, tuple(args)))

    def cancel_ack(self, ack_id: int) -> None:
        """Stop waiting for ``ack_id`` (the caller gave up); a late answer is unexpected."""
        self._pending.pop(ack_id, None)

    @property
    def pending_acks(self) -> int:
        return len(self._pending)

    # ---- timers
    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` has something to do, or None."""
        heap = self._deadlines
        while heap:
            deadline, ack_id = heap[0]
            entry = self._pending.get(ack_id)
            if entry is not None and entry[0] == deadline:
                return deadline
            heapq.heappop(heap)  # answered, cancelled or re-used id: stale
        return None

    def handle_timer(self, now: float) -> list[Event]:
        out: list[Event] = []
        while True:
            deadline = self.next_deadline()
            if deadline is None or deadline > now:
                return out
            _, ack_id = heapq.heappop(self._deadlines)
            _, event = self._pending.pop(ack_id)
            out.append(AckTimedOut(ack_id, event))

    # ---- incoming
    def _on_envelope(self, env: wire.Envelope, address: str | None, port: int | None) -> Event | None:
        kind = env.kind
        if kind == wire.KIND_DATA:
            return MessageReceived(env.payload, address, port)
        if kind == wire.KIND_EVENT:
            if env.name in RESERVED_EVENTS:  # a peer must not fake our lifecycle events
                return ProtocolError(FrameError(f"peer sent reserved event name {env.name!r}"),
                                     address, port)
            return EventReceived(env.name, env.args, env.ack_id, address, port)
        if kind == wire.KIND_ACK:
            expected = self._pending.pop(env.ack_id, None) is not None
            return AckReceived(env.ack_id, env.args, expected, address, port)
        if kind == wire.KIND_CLOSE:
            code, reason = env.payload
            if self._peer_close is None:
                self._peer_close = CloseInfo(code, reason)
            return CloseReceived(code, reason)
        return ProtocolError(FrameError(f"unknown envelope kind {kind}"), address, port)

    def _accepting(self) -> bool:
        # Input after close() is discarded: receiving stops at once.
        return self._state is ReadyState.OPEN

    def receive_datagram(self, data: bytes, address: str | None = None,
                         port: int | None = None) -> list[Event]:
        if self.mode != "datagram":
            raise ValueError("receive_datagram on a stream session")
        if not self._accepting():
            return []
        try:
            env = self.codec.decode_datagram(data)
        except FrameError as exc:
            return [ProtocolError(exc, address, port)]
        event = self._on_envelope(env, address, port)
        return [] if event is None else [event]

    def receive_data(self, chunk: bytes) -> list[Event]:
        if self.mode != "stream":
            raise ValueError("receive_data on a datagram session")
        if not self._accepting() or not chunk:
            return []
        if self._decoder is None:
            return [MessageReceived(bytes(chunk))]
        out: list[Event] = []
        for item in self._decoder.feed(chunk):
            if isinstance(item, FrameError):
                out.append(ProtocolError(item))
            else:
                event = self._on_envelope(item, None, None)
                if event is not None:
                    out.append(event)
        return out

    def receive_eof(self, error: Exception | None = None) -> list[Event]:
        """The peer ended the stream (``error`` None: a clean FIN; else what broke it)."""
        if self._state is not ReadyState.OPEN:
            return []
        out: list[Event] = []
        if self._decoder is not None and error is None:
            cut = self._decoder.end()
            if cut is not None:
                out.append(ProtocolError(cut))
        if self._peer_close is not None:
            info = self._peer_close
        elif error is not None:
            info = CloseInfo(CLOSE_ABNORMAL, str(error))
        else:
            info = CloseInfo(CLOSE_NO_STATUS)
        self.close_info = info
        out.append(PeerClosed(info, error))
        return out


__all__ = ["Session", "Codec", "StreamDecoder", "SocketiwaCodec", "DEFAULT_CODEC", "ReadyState",
           "CloseInfo", "MessageReceived", "EventReceived", "AckReceived", "ProtocolError",
           "CloseReceived", "PeerClosed", "AckTimedOut", "AckFailed", "RESERVED_EVENTS",
           "CLOSE_NORMAL", "CLOSE_NO_STATUS", "CLOSE_ABNORMAL", "ack_value"]
