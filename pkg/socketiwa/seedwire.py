"""``wire="socketiwa-js"``: the JSON envelopes of the JavaScript Socket.IWA library (the seed).

The seed sends every event as the UTF-8 text of ``JSON.stringify`` of one object, with no framing
on TCP and one text per datagram on UDP; plain data (``send``) travels as raw bytes:

    event         {"__socketiwa":1,"t":"event","e":NAME,"args":[...]}
    ack request   {"__socketiwa":1,"t":"ack_request","e":NAME,"args":[...],"id":ID}
    ack response  {"__socketiwa":1,"t":"ack_response","id":ID,"args":[...]}

Encoding reproduces ``JSON.stringify`` byte for byte for every value a JavaScript peer could hold:
no spaces, keys in JavaScript's property order (integer-like keys first, ascending, then the
others in insertion order), non-ASCII written as UTF-8, lone surrogates as lowercase ``\\udxxx``
escapes (a Python string's surrogate *pair* is one character, as in JavaScript), numbers as
``Number.prototype.toString`` writes them (``1`` for 1.0, ``1e+21``, ``1e-7``). What JavaScript
would change silently is refused with TypeError instead: bytes (JSON.stringify turns a
Uint8Array into an object), NaN and infinities (written as ``null``), integers a JavaScript number
cannot hold exactly, non-string keys, nesting deeper than ``wire.MAX_JSON_DEPTH``.

Decoding is strict: the text must be UTF-8 (the seed's TextDecoder would substitute U+FFFD) and
JSON (RFC 8259). Anything that is not an object with ``"__socketiwa": 1`` is plain data, like in
the seed; an envelope object that is malformed (unknown ``t``, ``e`` not a string, ``args`` not an
array, no ``id``) or JSON we refuse to interpret (nested deeper than 256, a number beyond float
range) is a FrameError with the bytes attached.

On TCP the seed parses each received chunk whole, so writes the network splits or merges break
it. ``StreamDecoder`` does not depend on chunking: a JSON object is self-delimiting, so it scans
each ``{`` incrementally (a real JSON syntax check, so a ``}`` inside a string does not end it)
and hands out whole envelopes however the stream was cut. Bytes before a ``{`` are plain data at
once; a ``{`` that turns out not to start JSON (the first byte that breaks the syntax) is plain
data up to that byte. A candidate longer than ``max_message`` is reported once as
MessageTooLargeError and skipped to its end without being stored, so the buffer never holds more
than ``max_message`` bytes. Whole objects already in the buffer take a fast path (brackets matched
by regex outside strings, then json.loads) that gives the same verdicts; the tests hold the two
paths to each other by cutting the same streams in different places.

Known ambiguity, shared with the seed: plain data that is itself an envelope's text is read as an
envelope; plain data that starts a JSON object waits until the object completes or breaks (it is
delivered at end of stream if neither happens).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn, Sequence, Union

from .errors import FrameError, InvalidOptionError, MessageTooLargeError
from .wire import DEFAULT_MAX_MESSAGE, KIND_ACK, KIND_DATA, KIND_EVENT, MAX_JSON_DEPTH, Envelope

Buffer = Union[bytes, bytearray]
WIRE_NAME = "socketiwa-js"
T_EVENT, T_ACK_REQUEST, T_ACK_RESPONSE = "event", "ack_request", "ack_response"


def _data(raw: bytes) -> Envelope:
    return Envelope(KIND_DATA, payload=raw, args=(raw,))


def _args_payload(args: tuple[Any, ...]) -> Any:
    # Envelope.payload as socketiwa's own codec fills it: None, the one argument, or the tuple.
    return None if not args else args[0] if len(args) == 1 else args


# ---------------------------------------------------------------- JSON.stringify, byte for byte
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_SAFE = 2**53


def js_number(value: float) -> str:
    """``String(value)`` in JavaScript (Number::toString) for a finite float.

    Python's repr and JavaScript both give the shortest digit string that reads back as the same
    double; only the layout differs (where JavaScript switches to exponent form, ``e+``, no
    ``.0``), so the digits are taken from repr and laid out by ECMA-262's rules."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number (JSON.stringify would write null)")
    if value == 0:
        return "0"                                   # -0 too, as JavaScript writes it
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + (int(exp) if exp else 0)  # decimal point position after digits[:point]
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + digits
    else:
        e = n - 1
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + out


def _js_int(value: int) -> str:
    if -_MAX_SAFE <= value <= _MAX_SAFE:
        return str(value)
    # Beyond 2**53 a JavaScript number holds only doubles: accept the integer if it is one (then
    # JavaScript holds, and writes, exactly this value), never round it silently.
    try:
        exact = float(value) == value
    except OverflowError:
        exact = False
    if not exact:
        raise TypeError(f"integer {value} cannot be held exactly by a JavaScript number")
    return js_number(float(value))


def _js_int_literal(text: str) -> int | float:
    # JSON.parse gives a double; past 2**53 an integer literal is a rounded double there, so it
    # is read as the same double here (71759745924943350 is 71759745924943352.0).
    value = int(text)
    return value if len(text) < 16 or -_MAX_SAFE <= value <= _MAX_SAFE else float(value)


def js_string(value: str) -> str:
    """A JSON string literal as JSON.stringify writes it (well-formed JSON.stringify, ES2019)."""
    if _SURROGATE.search(value) is None:
        # Same escapes as JavaScript: \" \\ \b \f \n \r \t, other controls as lowercase \u00xx,
        # everything else (DEL, U+2028/9, non-ASCII) as itself.
        return json.dumps(value, ensure_ascii=False)
    # A JavaScript string is UTF-16: adjacent high+low surrogates are one character there.
    joined = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    text = json.dumps(joined, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _is_array_index(key: str) -> bool:
    return (key.isascii() and key.isdigit() and (key == "0" or key[0] != "0")
            and int(key) < 2**32 - 1)


def _stringify(value: Any, out: list[str], depth: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(js_string(value))
    elif isinstance(value, int):
        out.append(_js_int(value))
    elif isinstance(value, float):
        try:
            out.append(js_number(value))
        except ValueError as exc:
            raise TypeError(str(exc)) from None
    elif isinstance(value, (list, tuple)):
        if depth >= MAX_JSON_DEPTH:
            raise TypeError(f"JSON nested deeper than {MAX_JSON_DEPTH}")
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _stringify(item, out, depth + 1)
        out.append("]")
    elif isinstance(value, dict):
        if depth >= MAX_JSON_DEPTH:
            raise TypeError(f"JSON nested deeper than {MAX_JSON_DEPTH}")
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"object keys must be str (JavaScript keys are strings), got {key!r}")
        keys = list(value)
        indices = sorted((k for k in keys if _is_array_index(k)), key=int)
        if indices:   # JavaScript's own property order: array indices first, ascending
            keys = indices + [k for k in keys if not _is_array_index(k)]
        out.append("{")
        for i, key in enumerate(keys):
            if i:
                out.append(",")
            out.append(js_string(key))
            out.append(":")
            _stringify(value[key], out, depth + 1)
        out.append("}")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError("the socketiwa-js wire carries JSON only: send bytes with send(), "
                        "or encode them (base64, a list of ints) in the event")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def stringify(value: Any, depth: int = 0) -> str:
    """``JSON.stringify(value)`` for a Python JSON value; TypeError for what JavaScript could not
    receive unchanged (see the module docstring)."""
    out: list[str] = []
    _stringify(value, out, depth)
    return "".join(out)


def _args_json(args: Sequence[Any]) -> str:
    if isinstance(args, (str, bytes, dict)) or not isinstance(args, Sequence):
        raise TypeError(f"args must be a list or tuple of arguments, not {type(args).__name__}")
    return stringify(list(args), depth=1)        # inside the envelope object


def _id_json(ack_id: int) -> str:
    # The seed numbers its requests 1, 2, ... (``this._ackSeq++``); socketiwa's session uses
    # 1..2**32-1, and 0 means "no ack wanted".
    if isinstance(ack_id, bool) or not isinstance(ack_id, int) or not 0 < ack_id <= _MAX_SAFE:
        raise ValueError(f"ack id must be an integer in 1..2**53, got {ack_id!r}")
    return str(ack_id)


def encode_event(name: str, args: Sequence[Any] = (), ack_id: int = 0) -> bytes:
    """An ``event`` envelope, or an ``ack_request`` when ``ack_id`` is not 0. The seed itself
    sends one argument with a request (``emitWithAck(name, payload)``) but reads any number."""
    if not isinstance(name, str):
        raise TypeError(f"event name must be str, not {type(name).__name__}")
    if not ack_id:
        text = f'{{"__socketiwa":1,"t":"event","e":{js_string(name)},"args":{_args_json(args)}}}'
    else:
        text = (f'{{"__socketiwa":1,"t":"ack_request","e":{js_string(name)},'
                f'"args":{_args_json(args)},"id":{_id_json(ack_id)}}}')
    return text.encode()


def encode_ack(ack_id: int, args: Sequence[Any] = ()) -> bytes:
    """An ``ack_response`` answering the peer's request ``ack_id``. The seed resolves its
    ``emitWithAck`` with the first argument only."""
    return f'{{"__socketiwa":1,"t":"ack_response","id":{_id_json(ack_id)},"args":{_args_json(args)}}}'.encode()


# ---------------------------------------------------------------- decoding one text
def _reject_constant(name: str) -> NoReturn:
    # A syntax error (as JSON.parse says), not a refused value: NaN is not JSON text at all.
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} out of range")
    return value


_NOT_JSON = object()


def _parse(raw: bytes) -> Any:
    """The JSON value of ``raw`` (nested at most MAX_JSON_DEPTH: callers check first), or
    _NOT_JSON; FrameError for JSON we refuse to interpret."""
    try:
        text = raw.decode("utf-8")              # strict: invalid UTF-8 is not JSON text
    except UnicodeDecodeError:
        return _NOT_JSON
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                          parse_int=_js_int_literal)
    except json.JSONDecodeError:
        return _NOT_JSON
    except (ValueError, RecursionError, OverflowError) as exc:  # 1e400, a 5000-digit integer: JSON we refuse
        raise FrameError(f"JSON value refused: {exc}", raw) from None


def _envelope(raw: bytes) -> Envelope | None:
    """Interpret ``raw``, one whole text that the scanner found to be a JSON object. None: not
    an envelope (plain data); FrameError for a malformed envelope or JSON we refuse."""
    value = _parse(raw)
    return None if value is _NOT_JSON else _interpret(value, raw)


def _interpret(value: Any, raw: bytes) -> Envelope | None:
    if not isinstance(value, dict):
        return None
    tag = value.get("__socketiwa")
    if tag is None or isinstance(tag, bool) or not isinstance(tag, (int, float)) or tag != 1:
        return None                              # the seed's test: parsed.__socketiwa === 1
    kind = value.get("t")
    if kind not in (T_EVENT, T_ACK_REQUEST, T_ACK_RESPONSE):
        raise FrameError(f"socketiwa-js envelope of unknown type {kind!r}", raw)
    args = value.get("args")
    if isinstance(args, list):
        args = tuple(args)
    elif not isinstance(args, dict) and not args:   # the seed reads `envelope.args || []`
        args = ()
    else:
        raise FrameError("socketiwa-js envelope whose args is not an array", raw)
    ack_id: Any = 0
    if kind != T_EVENT:
        ack_id = value.get("id")
        # The seed's ids are 1, 2, ...; anything else could not be told from "no ack" (0) or
        # matched to a request of ours.
        if isinstance(ack_id, bool) or not isinstance(ack_id, int) or not 0 < ack_id <= _MAX_SAFE:
            raise FrameError(f"socketiwa-js {kind} whose id is not an integer 1..2**53", raw)
        if kind == T_ACK_RESPONSE:
            return Envelope(KIND_ACK, ack_id, "", _args_payload(args), args)
    name = value.get("e")
    if not isinstance(name, str):
        raise FrameError(f"socketiwa-js {kind} whose event name is not a string", raw)
    return Envelope(KIND_EVENT, ack_id, name, _args_payload(args), args)


def decode_datagram(data: bytes) -> Envelope:
    """One UDP datagram (the seed parses it whole): an EVENT or ACK envelope, or plain data as a
    DATA envelope; FrameError for a malformed envelope. The same rules as the stream: one JSON object (JSON
    whitespace around it allowed, as JSON.parse does) checked by the same scanner."""
    data = bytes(data)
    i = _WS.match(data).end()  # type: ignore[union-attr]
    if data[i:i + 1] != b"{":
        return _data(data)                       # no JSON object starts here: plain data
    k = _balanced_end(data, i, len(data))        # fast path: one whole JSON object
    if k > 0 and _WS.match(data, k).end() == len(data):  # type: ignore[union-attr]
        try:
            value = _parse(data)
        except FrameError:              # refused mid-parse: the scanner checks the syntax first
            value = _NOT_JSON
        if value is not _NOT_JSON:
            env = _interpret(value, data)
            return _data(data) if env is None else env
    status, k = _Scanner().run(data, i + 1, len(data))
    if status == DEEP:                           # before json.loads recurses (Pyodide's stack)
        raise FrameError(f"JSON nested deeper than {MAX_JSON_DEPTH}", data)
    if status != END or _WS.match(data, k).end() != len(data):  # type: ignore[union-attr]
        return _data(data)
    env = _envelope(data)
    return _data(data) if env is None else env


# ---------------------------------------------------------------- the TCP stream
# These patterns match the empty string, so match() never returns None (the type: ignore
# comments on their .end() calls say so to mypy).
_WS = re.compile(rb"[ \t\n\r]*")
_STR_RUN = re.compile(rb'[^"\\\x00-\x1f]*')
_DIGITS = re.compile(rb"[0-9]*")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = frozenset(b'"\\/bfnrt')
_LITERALS = {ord("t"): b"rue", ord("f"): b"alse", ord("n"): b"ull"}

# scanner states: what comes next
(_OBJ_FIRST, _OBJ_KEY, _COLON, _VALUE, _ARR_FIRST, _AFTER, _STRING, _ESCAPE, _UNICODE, _NUMBER,
 _LITERAL) = range(11)
# number sub-states (RFC 8259 number grammar); _NUM_ENDS are the ones a number may end in
_N_MINUS, _N_ZERO, _N_INT, _N_DOT, _N_FRAC, _N_E, _N_ESIGN, _N_EXP = range(8)
_NUM_ENDS = frozenset((_N_ZERO, _N_INT, _N_FRAC, _N_EXP))
MORE, END, BAD, DEEP = range(4)
# Everything up to the next bracket outside a string: other bytes and whole strings (possessive,
# so an unterminated string costs one linear pass, never backtracking).
_TO_BRACKET = re.compile(rb'(?:[^"{}\[\]]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+', re.DOTALL)


def _balanced_end(buf: Buffer, i: int, end: int) -> int:
    """Fast path: where the object starting at ``buf[i]`` ("{") would end if it is JSON, found
    by matching brackets outside strings (C-speed regex jumps, no per-token work), or -1 when it
    does not close within ``buf[:end]`` or nests deeper than MAX_JSON_DEPTH. The caller parses
    the slice to know whether it is JSON; the incremental scanner decides everything else."""
    depth = 0
    while True:
        i = _TO_BRACKET.match(buf, i, end).end()  # type: ignore[union-attr]
        if i >= end:
            return -1
        c = buf[i]
        if c == 0x22:                           # a string that does not end in the buffer
            return -1
        if c == 0x7B or c == 0x5B:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return -1
        else:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1


class _Scanner:
    """Incremental JSON syntax check of one value that starts with ``{`` (already consumed).

    ``run`` can stop anywhere, even inside a token, and continue with the next bytes, so the
    bytes already scanned need not be kept (the oversize skip relies on that)."""

    __slots__ = ("stack", "state", "key", "num", "rest")

    def __init__(self) -> None:
        self.stack = bytearray(b"}")    # closers expected, innermost last
        self.state = _OBJ_FIRST
        self.key = False                # the string being scanned is an object key
        self.num = 0
        self.rest = b""                 # literal bytes still expected / \\u hex digits left (len)

    def run(self, buf: Buffer, i: int, end: int) -> tuple[int, int]:
        """Scan ``buf[i:end]``: (MORE, end), (END, index after the value), (BAD, index of the
        first byte that is not JSON), (DEEP, index of the opener past MAX_JSON_DEPTH)."""
        stack = self.stack
        while True:
            state = self.state
            if state == _STRING:
                i = _STR_RUN.match(buf, i, end).end()  # type: ignore[union-attr]
                if i == end:
                    return MORE, i
                c = buf[i]
                if c == 0x22:                             # closing quote
                    i += 1
                    if self.key:
                        self.state = _COLON
                        continue
                    self.state = _AFTER
                    continue
                if c == 0x5C:
                    self.state = _ESCAPE
                    i += 1
                    continue
                return BAD, i                             # raw control character
            if state == _ESCAPE:
                if i == end:
                    return MORE, i
                c = buf[i]
                if c in _SIMPLE_ESCAPES:
                    self.state = _STRING
                elif c == 0x75:                           # \u: four hex digits follow
                    self.state, self.num = _UNICODE, 4
                else:
                    return BAD, i
                i += 1
                continue
            if state == _UNICODE:
                while self.num:
                    if i == end:
                        return MORE, i
                    if buf[i] not in _HEX:
                        return BAD, i
                    i += 1
                    self.num -= 1
                self.state = _STRING
                continue
            if state == _NUMBER:
                status = self._number(buf, i, end)
                if status[0] != END:
                    return status
                i = status[1]
                self.state = _AFTER
                continue
            if state == _LITERAL:
                rest = self.rest
                n = min(len(rest), end - i)
                if buf[i:i + n] != rest[:n]:
                    for j in range(n):                    # the first byte that differs
                        if buf[i + j] != rest[j]:
                            return BAD, i + j
                i += n
                self.rest = rest[n:]
                if self.rest:
                    return MORE, i
                self.state = _AFTER
                continue
            # structural states: skip whitespace, then one token
            i = _WS.match(buf, i, end).end()  # type: ignore[union-attr]
            if i == end:
                return MORE, i
            c = buf[i]
            if state == _AFTER:
                if c == 0x2C:                             # ,
                    self.state = _OBJ_KEY if stack[-1] == 0x7D else _VALUE
                elif c == stack[-1]:                      # the matching } or ]
                    stack.pop()
                    if not stack:
                        return END, i + 1
                else:
                    return BAD, i
                i += 1
                continue
            if state == _COLON:
                if c != 0x3A:
                    return BAD, i
                self.state = _VALUE
                i += 1
                continue
            if state == _OBJ_FIRST or state == _OBJ_KEY:
                if c == 0x22:
                    self.state, self.key = _STRING, True
                elif c == 0x7D and state == _OBJ_FIRST:   # {}
                    stack.pop()
                    if not stack:
                        return END, i + 1
                    self.state = _AFTER
                else:
                    return BAD, i
                i += 1
                continue
            if state == _ARR_FIRST and c == 0x5D:         # []
                stack.pop()
                self.state = _AFTER
                i += 1
                continue
            # _VALUE or the first value of an array
            if c == 0x22:
                self.state, self.key = _STRING, False
            elif c == 0x7B or c == 0x5B:                  # { or [
                if len(stack) >= MAX_JSON_DEPTH:
                    return DEEP, i
                stack.append(c + 2)                       # { -> }, [ -> ]
                self.state = _OBJ_FIRST if c == 0x7B else _ARR_FIRST
            elif c == 0x2D or 0x30 <= c <= 0x39:
                self.state = _NUMBER
                self.num = _N_MINUS if c == 0x2D else (_N_ZERO if c == 0x30 else _N_INT)
            elif c in _LITERALS:
                self.state, self.rest = _LITERAL, _LITERALS[c]
            else:
                return BAD, i
            i += 1

    def _number(self, buf: Buffer, i: int, end: int) -> tuple[int, int]:
        num = self.num
        while i < end:
            c = buf[i]
            digit = 0x30 <= c <= 0x39
            if num == _N_INT or num == _N_FRAC or num == _N_EXP:
                if digit:
                    i = _DIGITS.match(buf, i, end).end()  # type: ignore[union-attr]
                    continue
                if num != _N_EXP and (c == 0x2E or c | 0x20 == 0x65):
                    if c == 0x2E and num == _N_FRAC:
                        return BAD, i
                    num = _N_DOT if c == 0x2E else _N_E
                    i += 1
                    continue
                self.num = num
                return END, i
            if num == _N_ZERO:
                if c == 0x2E:
                    num = _N_DOT
                elif c | 0x20 == 0x65:
                    num = _N_E
                elif digit:
                    return BAD, i                         # no leading zeros
                else:
                    self.num = num
                    return END, i
                i += 1
                continue
            if num == _N_MINUS:
                if not digit:
                    return BAD, i
                num = _N_ZERO if c == 0x30 else _N_INT
            elif num == _N_DOT:
                if not digit:
                    return BAD, i
                num = _N_FRAC
            elif num == _N_E:
                if c == 0x2B or c == 0x2D:
                    num = _N_ESIGN
                elif digit:
                    num = _N_EXP
                else:
                    return BAD, i
            elif num == _N_ESIGN:
                if not digit:
                    return BAD, i
                num = _N_EXP
            i += 1
        self.num = num
        return MORE, i


class StreamDecoder:
    """Turns a TCP byte stream in the seed's format into envelopes, however it was split or
    merged (the session's ``StreamDecoder`` interface).

    ``feed(chunk)`` returns, in stream order, EVENT / ACK envelopes, DATA envelopes (plain data;
    the plain bytes of one chunk come as one message) and FrameError / MessageTooLargeError
    instances (the stream stays usable after each). At most ``max_message`` bytes (plus the
    chunk being scanned) are ever held."""

    __slots__ = ("max_message", "_buf", "_scanner", "_skipping")

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE):
        self.max_message = max_message
        self._buf = bytearray()       # the candidate object scanned so far (starts with "{")
        self._scanner: _Scanner | None = None
        self._skipping = False        # inside an oversize candidate: scanned, not stored

    @property
    def buffered(self) -> int:
        """Bytes held for a JSON object not finished yet."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[Envelope | FrameError]:
        """What ``chunk`` completes, in stream order (see the class documentation)."""
        out: list[Envelope | FrameError] = []
        if not chunk:
            return out
        plain = bytearray()           # plain bytes not yet handed out (merged into one message)

        def emit(item: Envelope | FrameError) -> None:
            if plain:
                out.append(_data(bytes(plain)))
                plain.clear()
            out.append(item)

        buf = self._buf
        start = 0                     # where the current candidate starts in buf
        i = len(buf)                  # scanning resumes at the first new byte
        buf += chunk
        # Whole objects in the buffer take the fast path (bracket matching + json.loads); the
        # first one that does not (cut, or not JSON) hands the rest of this chunk to the
        # incremental scanner, so garbage never costs more than one extra pass.
        fast = True
        while i < len(buf):
            scanner = self._scanner
            if scanner is None:
                j = buf.find(b"{", i)
                if j < 0:
                    plain += buf[i:]
                    i = len(buf)
                    break
                plain += buf[i:j]
                p = _WS.match(buf, j + 1).end()  # type: ignore[union-attr]
                if p < len(buf) and buf[p] != 0x22 and buf[p] != 0x7D:
                    # "{" not followed by a key or "}": not JSON, decided without a scanner
                    # (what the scanner says too), so "{x{x{x..." costs one regex per brace
                    plain += buf[j:p]
                    i = p
                    continue
                start, i = j, j + 1
                k = _balanced_end(buf, j, len(buf)) if fast else -1
                if 0 < k and k - j <= self.max_message:   # longer: the scanner decides
                    raw = bytes(buf[j:k])
                    try:
                        value = _parse(raw)
                    except FrameError:
                        # json.loads refuses a value (1e400) before it has seen the rest:
                        # the scanner checks the syntax first, as for any other object
                        value = _NOT_JSON
                    if value is not _NOT_JSON:
                        try:
                            env = _interpret(value, raw)
                        except FrameError as exc:
                            emit(exc)
                            i = start = k
                            continue
                        if env is None:
                            plain += raw                  # JSON, but not an envelope
                        else:
                            emit(env)
                        i = start = k
                        continue
                fast = False
                self._scanner = _Scanner()
                continue
            status, k = scanner.run(buf, i, len(buf))
            if status == MORE:
                i = k
                if not self._skipping and len(buf) - start > self.max_message:
                    emit(MessageTooLargeError(
                        f"JSON value longer than max_message_size {self.max_message} (skipped)",
                        bytes(buf[start:start + 64])))
                    self._skipping = True
                break
            if self._skipping:
                pass                                      # its error was reported already
            elif k - start > self.max_message:
                # Whatever it turned out to be: the same verdict as when it arrives in pieces
                # (then the buffer overflows before the end is seen).
                emit(MessageTooLargeError(
                    f"JSON value longer than max_message_size {self.max_message} (skipped)",
                    bytes(buf[start:start + 64])))
            elif status == END:
                raw = bytes(buf[start:k])
                try:
                    env = _envelope(raw)
                except FrameError as exc:
                    emit(exc)
                else:
                    if env is None:
                        plain += raw                      # JSON, but not an envelope
                    else:
                        emit(env)
            elif status == BAD:
                plain += buf[start:k]                     # not JSON after all: plain data
            else:                                         # DEEP
                emit(FrameError(f"JSON nested deeper than {MAX_JSON_DEPTH}", bytes(buf[start:k])))
            # END: go on after the value; BAD/DEEP: the offending byte is looked at afresh
            self._scanner, self._skipping = None, False
            i = start = k
        if plain:
            out.append(_data(bytes(plain)))
        if self._scanner is None or self._skipping:
            buf.clear()
        elif start:
            del buf[:start]
        return out

    def end(self) -> FrameError | None:
        """The stream ended. An unfinished JSON object that was held comes back as a FrameError
        carrying its bytes (``exc.data``): a cut envelope, or plain data that began like one."""
        held = bytes(self._buf)
        skipping = self._skipping
        self._buf.clear()
        self._scanner, self._skipping = None, False
        if held:
            return FrameError(f"stream ended inside a JSON object ({len(held)} bytes attached)", held)
        if skipping:
            return FrameError("stream ended inside an oversize JSON value")
        return None


class SeedCodec:
    """The session codec for ``wire="socketiwa-js"`` (see ``session.Codec``)."""

    name = WIRE_NAME

    def encode_event(self, name: str, args: tuple[Any, ...], ack_id: int) -> bytes:
        """An ``event`` envelope, or ``ack_request`` when ``ack_id`` is not 0."""
        return encode_event(name, args, ack_id)

    def encode_ack(self, ack_id: int, args: tuple[Any, ...]) -> bytes:
        """An ``ack_response`` envelope."""
        return encode_ack(ack_id, args)

    def encode_close(self, code: int, reason: str) -> None:
        """None: the seed has no close envelope."""
        return None                   # the seed has no close envelope: close() ends the stream

    def encode_message(self, data: bytes, stream: bool) -> bytes:
        """Plain data as it is (no envelope), on TCP and UDP alike."""
        return bytes(data)            # plain data travels as itself, as the seed sends it

    def decode_datagram(self, data: bytes) -> Envelope:
        """One datagram (``decode_datagram``): an envelope, plain data as a DATA envelope, or
        FrameError for a malformed envelope."""
        return decode_datagram(data)

    def frame(self, envelope: bytes, max_message: int) -> bytes:
        """The envelope unchanged (the seed has no framing); MessageTooLargeError past
        ``max_message`` bytes."""
        # No framing: the seed writes each JSON text on its own and relies on it being read whole.
        if len(envelope) > max_message:
            raise MessageTooLargeError(
                f"message of {len(envelope)} bytes exceeds max_message_size {max_message}")
        return envelope

    def stream_decoder(self, max_message: int) -> StreamDecoder:
        """A ``StreamDecoder`` for one connection."""
        return StreamDecoder(max_message)


SEED_CODEC = SeedCodec()
WIRES = {"socketiwa": None, WIRE_NAME: SEED_CODEC}   # wire= option -> codec (None: the default)


def codec_for(wire: str, codec: Any = None) -> Any:
    """The session codec for the sockets' ``wire=`` option (None: socketiwa's own, the default).
    ``codec=`` (any object with the session's Codec interface) may be given instead."""
    if wire not in WIRES:
        raise InvalidOptionError(f"wire must be one of {sorted(WIRES)}, got {wire!r}")
    if codec is not None:
        if wire != "socketiwa" and codec is not WIRES[wire]:
            raise InvalidOptionError("give wire= or codec=, not both")
        return codec
    return WIRES[wire]


__all__ = ["WIRE_NAME", "SeedCodec", "SEED_CODEC", "StreamDecoder", "codec_for",
           "decode_datagram", "encode_event", "encode_ack", "stringify", "js_number", "js_string"]
