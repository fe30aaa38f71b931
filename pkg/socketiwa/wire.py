"""The socketiwa wire format for application events.

Envelope (identical on UDP and TCP), big-endian:

    magic   4 bytes  b"SIW1"
    kind    1 byte   0 = DATA (a plain message), 1 = EVENT, 2 = ACK, 3 = CLOSE
    ack_id  4 bytes  EVENT: 0 when no acknowledgement is wanted; ACK: the id being answered
    codec   1 byte   payload encoding: 0 = BYTES (raw), 1 = JSON, 2 = NONE (no payload),
                     3 = ARGS (several arguments)
    name    1 byte length + UTF-8 (EVENT only; 1..255 bytes)
    payload the rest

What each kind x codec combination means (anything else is a FrameError):

    kind   ack_id              name       codec BYTES   codec JSON        codec NONE   codec ARGS
    DATA   must be 0           absent     bytes         FrameError        FrameError   FrameError
    EVENT  0 = no ack, else id 1..255 B   bytes         the JSON value    no args      2+ args
    ACK    the id, 1..2^32-1   absent     bytes         the JSON value    no args      2+ args
    CLOSE  must be 0           absent     FrameError    [code, reason]    FrameError   FrameError

Arguments: ``emit(event, *args)`` and ``ack(*args)`` carry zero arguments as NONE, one argument
as BYTES or JSON (exactly the single-payload format of earlier versions, so old and new peers
exchange one-argument events unchanged) and two or more as ARGS: a body of parts, each
``codec (1 byte: BYTES or JSON) + u32 length + body``, at least two parts. ``Envelope.args`` is
the tuple of arguments; ``Envelope.payload`` is the single argument (None for none; the tuple
for several). CLOSE is what ``close(code, reason)`` sends on a framed stream before FIN: a JSON
array ``[code, reason]`` with ``code`` an integer 0..65535 and ``reason`` a string.

A DATA envelope is a plain message, so it always carries bytes: ``message`` handlers and
``receive()`` get ``bytes`` and nothing else. JSON bodies are RFC 8259 JSON text in UTF-8: no byte
order mark, no UTF-16/32, no ``NaN``/``Infinity`` (JavaScript's ``JSON.parse`` refuses them too) and no number too
large for a float,
nesting at most ``MAX_JSON_DEPTH`` (256) arrays/objects deep. A NONE body must be empty. Unknown kinds and codecs are
FrameErrors, so a newer peer's envelope is reported, never misread.

UDP carries exactly one envelope per datagram; plain ``send(data)`` datagrams travel raw (no
envelope) so socketiwa interoperates with any UDP peer. TCP in ``framed`` mode carries a stream of
frames, each ``u32 length`` + envelope, so messages the network splits or merges arrive whole.
"""
from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from typing import Any, NoReturn

from .errors import FrameError, MessageTooLargeError

MAGIC = b"SIW1"
KIND_DATA, KIND_EVENT, KIND_ACK, KIND_CLOSE = 0, 1, 2, 3
CODEC_BYTES, CODEC_JSON, CODEC_NONE, CODEC_ARGS = 0, 1, 2, 3
_PART = struct.Struct("!BI")  # one ARGS part: codec, length
_HEAD = struct.Struct("!4sBIB")  # magic, kind, ack_id, codec
_LEN = struct.Struct("!I")
HEADER_SIZE = _HEAD.size
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024
# Deeper JSON is refused before parsing: json.loads recurses per level, and in Pyodide a few
# thousand levels overflow the WebAssembly stack (a fatal error, not a RecursionError).
MAX_JSON_DEPTH = 256
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Payload encodings are chosen by type so bytes never pay for JSON.
_NO_PAYLOAD = object()


@dataclass(slots=True)
class Envelope:
    kind: int
    ack_id: int = 0
    name: str = ""
    payload: Any = None
    args: tuple[Any, ...] = ()


def _encode_payload(payload: Any) -> tuple[int, bytes]:
    if payload is _NO_PAYLOAD:
        return CODEC_NONE, b""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return CODEC_BYTES, bytes(payload)
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        try:
            body = text.encode()
        except UnicodeEncodeError:  # lone surrogates (JSON allows them as \u escapes)
            body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        _check_json_depth(body)  # never send what a receiver must refuse
        return CODEC_JSON, body
    except (TypeError, ValueError, RecursionError) as e:
        raise TypeError(f"event payload must be bytes or JSON-serialisable: {e}") from None


def _encode_args(args: tuple[Any, ...]) -> tuple[int, bytes]:
    if len(args) == 0:
        return CODEC_NONE, b""
    if len(args) == 1:
        return _encode_payload(args[0])
    parts: list[bytes] = []
    for arg in args:
        codec, body = _encode_payload(arg)
        parts += (_PART.pack(codec, len(body)), body)
    return CODEC_ARGS, b"".join(parts)


def encode(kind: int, payload: Any = _NO_PAYLOAD, *, name: str = "", ack_id: int = 0,
           args: tuple[Any, ...] | None = None) -> bytes:
    """One envelope. Give either ``payload`` (one argument, or none) or ``args`` (any number)."""
    codec, body = _encode_payload(payload) if args is None else _encode_args(tuple(args))
    head = _HEAD.pack(MAGIC, kind, ack_id, codec)
    if kind == KIND_EVENT:
        raw_name = name.encode()
        if not 0 < len(raw_name) < 256:
            raise ValueError("event name must be 1..255 UTF-8 bytes")
        return b"".join((head, bytes((len(raw_name),)), raw_name, body))
    return head + body


def encode_event(name: str, payload: Any = _NO_PAYLOAD, ack_id: int = 0, *,
                 args: tuple[Any, ...] | None = None) -> bytes:
    return encode(KIND_EVENT, payload, name=name, ack_id=ack_id, args=args)


def encode_ack(ack_id: int, payload: Any = _NO_PAYLOAD, *, args: tuple[Any, ...] | None = None) -> bytes:
    return encode(KIND_ACK, payload, ack_id=ack_id, args=args)


def check_close(code: Any, reason: Any) -> None:
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 65535:
        raise ValueError(f"close code must be an integer in 0..65535, got {code!r}")
    if not isinstance(reason, str):
        raise TypeError(f"close reason must be a str, not {type(reason).__name__}")


def encode_close(code: int, reason: str = "") -> bytes:
    check_close(code, reason)
    return encode(KIND_CLOSE, [code, reason])


def encode_data(data: bytes) -> bytes:
    return _HEAD.pack(MAGIC, KIND_DATA, 0, CODEC_BYTES) + data


def is_envelope(data: bytes) -> bool:
    return data[:4] == MAGIC


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):  # 1e400: not representable, and not re-encodable
        raise ValueError(f"number {text[:20]} out of range")
    return value


def _check_json_depth(body: bytes) -> None:
    """Raise ValueError if ``body`` nests deeper than MAX_JSON_DEPTH (or its brackets cannot
    balance, which json.loads would refuse anyway, after recursing as deep as they go)."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return                                   # the common case: cannot be too deep
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    # Each pass removes the innermost level of every branch; C-speed, passes <= depth.
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(brackets):
            raise ValueError("unbalanced brackets")
        brackets = shorter
    if brackets:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH}")


def _decode_json(body: bytes) -> Any:
    # json.loads(bytes) guesses UTF-16/32; the format says UTF-8, so decode strictly first. A BOM
    # then fails in json.loads ("Unexpected UTF-8 BOM"), as do NaN/Infinity via parse_constant.
    _check_json_depth(body)
    text = body.decode("utf-8")
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def decode(data: bytes) -> Envelope:
    """Decode one envelope; raises FrameError (with the raw bytes attached) if malformed.

    Only the combinations in the module docstring's table decode; every other input raises
    FrameError and nothing else."""
    if len(data) < HEADER_SIZE:
        raise FrameError(f"envelope too short ({len(data)} bytes)", bytes(data))
    magic, kind, ack_id, codec = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise FrameError("bad envelope magic", bytes(data))
    pos = HEADER_SIZE
    name = ""
    if kind == KIND_EVENT:
        if len(data) <= pos:
            raise FrameError("event envelope without a name", bytes(data))
        n = data[pos]
        pos += 1
        if n == 0 or len(data) < pos + n:
            raise FrameError("event name length out of range", bytes(data))
        try:
            name = bytes(data[pos:pos + n]).decode()
        except UnicodeDecodeError:
            raise FrameError("event name is not UTF-8", bytes(data)) from None
        pos += n
    elif kind == KIND_DATA:
        if codec != CODEC_BYTES:
            raise FrameError(f"DATA envelope with codec {codec}: plain messages are bytes", bytes(data))
        if ack_id:
            raise FrameError("DATA envelope with an ack id", bytes(data))
    elif kind == KIND_ACK:
        if not ack_id:
            raise FrameError("ACK envelope for ack id 0", bytes(data))
    elif kind == KIND_CLOSE:
        if codec != CODEC_JSON or ack_id:
            raise FrameError("CLOSE envelope must be JSON [code, reason] without an ack id", bytes(data))
    else:
        raise FrameError(f"unknown envelope kind {kind}", bytes(data))
    body = bytes(data[pos:])
    if codec == CODEC_NONE:
        if body:
            raise FrameError("payload present with codec NONE", bytes(data))
        return Envelope(kind, ack_id, name, None, ())
    if codec == CODEC_ARGS:
        args = _decode_parts(body, data)
        return Envelope(kind, ack_id, name, args, args)
    payload = _decode_part(codec, body, data)
    if kind == KIND_CLOSE:
        if not (isinstance(payload, list) and len(payload) == 2):
            raise FrameError("CLOSE body is not [code, reason]", bytes(data))
        try:
            check_close(*payload)
        except (TypeError, ValueError) as e:
            raise FrameError(f"bad CLOSE envelope: {e}", bytes(data)) from None
    return Envelope(kind, ack_id, name, payload, (payload,))


def _decode_part(codec: int, body: bytes, data: bytes) -> Any:
    if codec == CODEC_BYTES:
        return body
    if codec == CODEC_JSON:
        try:
            return _decode_json(body)
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise FrameError("event payload is not UTF-8 JSON", bytes(data)) from None
    raise FrameError(f"unknown payload codec {codec}", bytes(data))


def _decode_parts(body: bytes, data: bytes) -> tuple[Any, ...]:
    args = []
    pos, end = 0, len(body)
    while pos < end:
        if end - pos < _PART.size:
            raise FrameError("ARGS part header cut short", bytes(data))
        codec, length = _PART.unpack_from(body, pos)
        pos += _PART.size
        if codec not in (CODEC_BYTES, CODEC_JSON) or end - pos < length:
            raise FrameError("ARGS part with a bad codec or length", bytes(data))
        args.append(_decode_part(codec, body[pos:pos + length], data))
        pos += length
    if len(args) < 2:  # one argument has exactly one encoding: the plain single payload
        raise FrameError("ARGS envelope with fewer than two arguments", bytes(data))
    return tuple(args)


def frame(envelope: bytes, max_message: int = DEFAULT_MAX_MESSAGE) -> bytes:
    """Length-prefix one envelope for a byte stream."""
    if len(envelope) > max_message:
        raise MessageTooLargeError(
            f"message of {len(envelope)} bytes exceeds max_message_size {max_message}")
    return _LEN.pack(len(envelope)) + envelope


class Deframer:
    """Turns stream chunks back into whole frames.

    An oversize frame is skipped (its length is known) and reported as MessageTooLargeError, so
    the stream stays in sync and usable.
    """

    __slots__ = ("_buf", "_skip", "max_message")

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE):
        self._buf = bytearray()
        self._skip = 0
        self.max_message = max_message

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[bytes | FrameError]:
        """Return the complete frames (and errors, in stream order) that ``chunk`` completes."""
        out: list[bytes | FrameError] = []
        buf = self._buf
        if self._skip:
            n = min(self._skip, len(chunk))
            self._skip -= n
            chunk = chunk[n:]
        buf += chunk
        pos = 0
        size = len(buf)
        while size - pos >= 4:
            (length,) = _LEN.unpack_from(buf, pos)
            if length > self.max_message:
                out.append(MessageTooLargeError(
                    f"incoming frame of {length} bytes exceeds max_message_size {self.max_message}"))
                pos += 4
                take = min(length, size - pos)
                pos += take
                self._skip = length - take
                continue
            if size - pos - 4 < length:
                break
            out.append(bytes(buf[pos + 4:pos + 4 + length]))
            pos += 4 + length
        if pos:
            del buf[:pos]
        return out
