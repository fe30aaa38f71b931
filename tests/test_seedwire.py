"""wire="socketiwa-js": socketiwa.seedwire against the JavaScript Socket.IWA library's envelopes.

The reference bytes come from Node running the seed's own envelope object literals through
JSON.stringify and TextEncoder (tests/seedwire_fixture.mjs); the codec must write exactly those
bytes and read them back. The stream decoder is checked at every split of a stream of them, on
hostile input (seeded here, so it runs in Pyodide too; Hypothesis on CPython below), and the
interop tests exchange events and acks with tests/seedwire_peer.mjs, a Node program that speaks
the seed's wire behaviour over plain net/dgram sockets.
"""
from __future__ import annotations

import base64
import json
import math
import struct
import subprocess
from pathlib import Path

import pytest
from runtimes import everywhere

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "seedwire_fixture.mjs"


def _node(*args: str, stdin: str | None = None) -> str:
    out = subprocess.run(["node", str(FIXTURE), *args], input=stdin, capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout


@pytest.fixture(scope="module")
def seed_envelopes() -> dict:
    """{case name: the bytes the seed writes for it}, made by Node."""
    return {name: base64.b64decode(b64) for name, b64 in json.loads(_node("cases")).items()}


# ---------------------------------------------------------------- the seed's bytes, both ways
@everywhere
async def test_seed_envelopes_byte_for_byte(selenium, seed_envelopes):
    """Each case: seedwire writes the seed's exact bytes, and reads the seed's bytes back to the
    Python values (decode(encode(x)) == x both ways)."""
    from socketiwa import seedwire, wire

    nested = []
    for _ in range(199):
        nested = [nested]
    numbers = (0, -0.0, 1.5, 0.1, 1e21, 1e-7, 1.2345678901234568e20, 5e-324,
               1.7976931348623157e308, 2**53, -(2**53), 10**16, 100, 0.000001,
               1.0000000000000002, 4.35, 1 / 3, -1e-7, 2**60, 1e300, 0.1 + 0.2)
    keys = {"b": 1, "2": "two", "a": 3, "1": "one", "01": "x", "4294967295": "big",
            "4294967294": "max", "-1": "neg", "1.5": "frac"}
    # name: (t, event name, args, id, args as decoded when they differ from what was encoded)
    cases = {
        "event-no-args": ("event", "ping", (), 0, None),
        "event-multi": ("event", "move", (1, "two", True, None, [3, {"k": "v"}]), 0, None),
        "ack-request": ("ack_request", "greet", ({"name": "py"},), 1, None),
        "ack-request-undefined": ("ack_request", "greet", (None,), 2, None),
        "ack-response": ("ack_response", "", ("ok", 2), 7, None),
        "ack-response-empty": ("ack_response", "", (), 8, None),
        "unicode": ("event", "ünï", ("ü€😀", "\u2028\u2029", "\x7f\x80",
                                      'a\x00b\x1f\b\f\n\r\t"\\/'), 0, None),
        "lone-surrogates": ("event", "s", ("\ud800", "x\udfffy", "\ude00\ud83d", "\udbff"), 0, None),
        # two surrogate code points in Python are one character in JavaScript
        "surrogate-pair": ("event", "p", ("\ud83d\ude00",), 0, ("😀",)),
        "numbers": ("event", "n", numbers, 0, None),
        "keys": ("event", "k", (keys,), 0, None),
        "nested": ("event", "deep", (nested,), 0, None),
        "empty-name": ("event", "", ("x",), 0, None),
        "long-string": ("event", "big", ("x" * 70000,), 0, None),
        "ack-request-multi-id": ("ack_request", "q", ([1, 2],), 4294967295, None),
    }
    assert sorted(cases) == sorted(seed_envelopes)
    for name, (t, event, args, ack_id, decoded_args) in cases.items():
        seed = seed_envelopes[name]
        mine = (seedwire.encode_ack(ack_id, args) if t == "ack_response"
                else seedwire.encode_event(event, args, ack_id))
        assert mine == seed, (name, mine[:300], seed[:300])
        env = seedwire.decode_datagram(seed)
        expected = args if decoded_args is None else decoded_args
        kind = wire.KIND_ACK if t == "ack_response" else wire.KIND_EVENT
        assert (env.kind, env.ack_id, env.name, env.args) == (kind, ack_id, event, expected), name
        if name == "numbers":   # equal; int only where JavaScript's text is an integer <= 2**53
            for got, want in zip(env.args, expected, strict=True):
                text = seedwire.js_number(float(want))
                is_int = "." not in text and "e" not in text and abs(int(text)) <= 2**53
                assert got == want and isinstance(got, int) == is_int, (got, want)
        # and what was decoded encodes to the seed's bytes again
        again = (seedwire.encode_ack(env.ack_id, env.args) if t == "ack_response"
                 else seedwire.encode_event(env.name, env.args, env.ack_id))
        assert again == seed, name


@everywhere
async def test_seed_stream_decodes_at_every_split(selenium, seed_envelopes):
    """The seed's envelopes and plain writes on one TCP stream, cut at every byte boundary into
    two and three pieces, decode to the same items: what the seed's own chunk-at-a-time
    JSON.parse cannot do."""
    from socketiwa import seedwire, wire
    small = [seed_envelopes[n] for n in ("event-multi", "ack-request", "unicode",
                                        "lone-surrogates", "ack-response-empty", "keys")]
    plain = [b"hello seed ", b'{"a":1}', b"[1,2]", b"}} not json {x", b"\xff\xfe binary"]
    stream = b"".join(p for pair in zip(small, plain + [b""]) for p in pair)

    def items(chunks):
        d = seedwire.StreamDecoder(max_message=4096)
        out = []
        for c in chunks:
            out += d.feed(c)
            assert d.buffered <= 4096
        cut = d.end()
        merged = []                                # plain data has no boundaries in a stream
        for it in out:
            if it.kind == wire.KIND_DATA and merged and merged[-1][0] == wire.KIND_DATA:
                merged[-1] = (wire.KIND_DATA, merged[-1][1] + it.payload)
            else:
                merged.append((it.kind, it.payload if it.kind == wire.KIND_DATA else (it.name, it.args, it.ack_id)))
        return merged, cut

    whole, cut = items([stream])
    assert cut is None
    kinds = [k for k, _ in whole]
    assert kinds.count(wire.KIND_EVENT) == 5 and kinds.count(wire.KIND_ACK) == 1
    data = b"".join(v for k, v in whole if k == wire.KIND_DATA)
    assert data == b"".join(plain)                      # every plain byte, in order
    for i in range(1, len(stream)):
        assert items([stream[:i], stream[i:]]) == (whole, None), i
    step = max(1, len(stream) // 60)
    for i in range(1, len(stream), step):
        for j in range(i + 1, len(stream), step):
            assert items([stream[:i], stream[i:j], stream[j:]]) == (whole, None), (i, j)
    assert items([bytes([b]) for b in stream]) == (whole, None)
    # the 70 kB envelope in 1 kB pieces, merged with the others
    big = seed_envelopes["long-string"]
    longer = seed_envelopes["event-no-args"] + big + seed_envelopes["ack-response"]
    d = seedwire.StreamDecoder(max_message=100_000)
    out = []
    for k in range(0, len(longer), 1000):
        out += d.feed(longer[k:k + 1000])
    assert [(e.kind, e.name) for e in out] == [(wire.KIND_EVENT, "ping"), (wire.KIND_EVENT, "big"),
                                              (wire.KIND_ACK, "")]
    assert out[1].args == ("x" * 70000,) and d.buffered == 0


# ---------------------------------------------------------------- rules and hostile input
@everywhere
async def test_seed_datagram_rules(selenium):
    """What one datagram (or one whole JSON text) means: envelope, plain data or FrameError."""
    import socketiwa
    from socketiwa import seedwire, wire
    E, A, D = wire.KIND_EVENT, wire.KIND_ACK, wire.KIND_DATA

    def verdict(raw):
        try:
            env = seedwire.decode_datagram(raw)
        except socketiwa.FrameError as exc:
            assert exc.data == raw and not isinstance(exc, socketiwa.MessageTooLargeError)
            return "FrameError"
        if env.kind == D:
            assert env.payload == raw and env.args == (raw,)
            return "data"
        return (env.kind, env.name, env.args, env.ack_id)

    table = [
        (b'{"__socketiwa":1,"t":"event","e":"a","args":[1]}', (E, "a", (1,), 0)),
        (b' \n{"args":[1],"e":"a","t":"event","__socketiwa":1}\t', (E, "a", (1,), 0)),  # any order, JSON.parse's whitespace
        (b'{"__socketiwa":1.0,"t":"event","e":"a"}', (E, "a", (), 0)),     # 1.0 === 1; no args: []
        (b'{"__socketiwa":1,"t":"event","e":"a","args":null}', (E, "a", (), 0)),   # args || []
        (b'{"__socketiwa":1,"t":"event","e":"a","args":0}', (E, "a", (), 0)),
        (b'{"__socketiwa":1,"t":"ack_request","e":"q","args":[],"id":9}', (E, "q", (), 9)),
        (b'{"__socketiwa":1,"t":"ack_response","id":9}', (A, "", (), 9)),
        (b'{"__socketiwa":1,"t":"event","e":"a","args":[],"__socketiwa":1}', (E, "a", (), 0)),
        # plain data: not JSON, not an object, not tagged 1
        (b"hello", "data"), (b"", "data"), (b"[1,2]", "data"), (b'"str"', "data"), (b"{}", "data"),
        (b'{"__socketiwa":2,"t":"event","e":"a"}', "data"),
        (b'{"__socketiwa":true,"t":"event","e":"a"}', "data"),
        (b'{"__socketiwa":"1","t":"event","e":"a"}', "data"),
        (b'{"__socketiwa":1,"t":"event","e":"a"} x', "data"),               # JSON.parse refuses
        (b'{"__socketiwa":1,"t":"event","e":"a"}{}', "data"),
        (b'{"__socketiwa":1,"t":"event","e":"\xff"}', "data"),              # not UTF-8: strict
        (b'\xef\xbb\xbf{"__socketiwa":1,"t":"event","e":"a"}', "data"),     # BOM: not JSON
        (b'{"__socketiwa":1,"t":"event","e":"a","args":[NaN]}', "data"),
        (b'{"__socketiwa":1,"t":"event","e":"a",}', "data"),
        (b'{"__socketiwa":1,"t":"event","e":"a\x01"}', "data"),             # raw control char
        (b'{"__socketiwa":1,"t":"event","e":"a","args":[01]}', "data"),
        (b'{"__socketiwa":1,"t":"event","e":"a","args":[1.]}', "data"),
        (b'{"__socketiwa":1,"t":"event","e":"a","args":[tru]}', "data"),
        (b'{"__socketiwa":1,"t":"event","e":"a","args":[1e400 x]}', "data"),   # not JSON first
        (b'{"__socketiwa":1,"t":"event","e":"a","args":[NaN]}   ', "data"),

        # envelopes we cannot act on: reported, with the bytes
        (b'{"__socketiwa":1,"t":"evnt","e":"a","args":[]}', "FrameError"),
        (b'{"__socketiwa":1,"e":"a","args":[]}', "FrameError"),
        (b'{"__socketiwa":1,"t":"event","args":[]}', "FrameError"),
        (b'{"__socketiwa":1,"t":"event","e":5,"args":[]}', "FrameError"),
        (b'{"__socketiwa":1,"t":"event","e":"a","args":{}}', "FrameError"),
        (b'{"__socketiwa":1,"t":"event","e":"a","args":"ab"}', "FrameError"),
        (b'{"__socketiwa":1,"t":"ack_request","e":"a","args":[]}', "FrameError"),
        (b'{"__socketiwa":1,"t":"ack_request","e":"a","args":[],"id":0}', "FrameError"),
        (b'{"__socketiwa":1,"t":"ack_request","e":"a","args":[],"id":"7"}', "FrameError"),
        (b'{"__socketiwa":1,"t":"ack_request","e":"a","args":[],"id":1.5}', "FrameError"),
        (b'{"__socketiwa":1,"t":"ack_response","id":true,"args":[]}', "FrameError"),
        (b'{"__socketiwa":1,"t":"ack_response","id":9007199254740993,"args":[]}', "FrameError"),
        (b'{"__socketiwa":1,"t":"event","e":"a","args":[1e400]}', "FrameError"),
        (b'{"__socketiwa":1,"t":"event","e":"a","args":[' + b"1" * 5000 + b"]}", "FrameError"),
        (b'{"__socketiwa":1,"t":"event","e":"a","args":' + b"[" * 300 + b"]" * 300 + b"}", "FrameError"),
        (b'{"a":' * 100000, "FrameError"),            # refused before json.loads recurses
    ]
    for raw, want in table:
        assert verdict(raw) == want, (raw[:80], verdict(raw), want)
    # lifecycle names decode; the session refuses them (a peer must not fake close)
    from socketiwa.session import ProtocolError, Session
    s = Session("datagram", codec=seedwire.SEED_CODEC)
    s.connection_made()
    (ev,) = s.receive_datagram(seedwire.encode_event("close", ({"code": 1},)), "127.0.0.1", 9)
    assert isinstance(ev, ProtocolError)


@everywhere
async def test_seed_encoder_refuses_what_javascript_would_change(selenium):
    """TypeError/ValueError, never a silently different value on the other side."""
    from socketiwa import seedwire
    def nested(levels):
        v = []
        for _ in range(levels - 1):
            v = [v]
        return v
    # envelope object + args array + 254 levels = 256, the receivers' limit (wire.MAX_JSON_DEPTH)
    ok = seedwire.encode_event("a", (nested(254),))
    assert seedwire.decode_datagram(ok).args == (nested(254),)
    bad_args = [(nested(255),), ({"k": nested(254)},), (b"bytes",), (bytearray(b"x"),), (float("nan"),), (float("inf"),), (2**60 + 1,), (123456789012345680000,),
                (10**400,), ({1: "int key"},), ({("t",): 1},), ({1j},), (object(),)]
    for args in bad_args:
        try:
            seedwire.encode_event("a", args)
        except TypeError:
            pass
        else:
            raise AssertionError(f"encoded {args!r:.60}")
    for ack_id in (-1, 2**53 + 1, 1.0, "7", True):
        for call in (lambda: seedwire.encode_event("a", (), ack_id),
                     lambda: seedwire.encode_ack(ack_id, ())):
            try:
                call()
            except (TypeError, ValueError):
                pass
            else:
                raise AssertionError(f"ack id {ack_id!r} accepted")
    for args in ("abc", b"abc", {"a": 1}, 5):
        try:
            seedwire.encode_event("a", args)
        except TypeError:
            pass
        else:
            raise AssertionError(f"args {args!r} accepted")
    # integers beyond 2**53 that JavaScript holds exactly and writes back the same way
    assert seedwire.stringify(10**21) == "1e+21" and seedwire.stringify(2**53 + 2) == "9007199254740994"
    assert seedwire.stringify(2**60) == "1152921504606847000"
    assert seedwire.decode_datagram(seedwire.encode_event("n", (2**60,))).args == (2.0**60,)


@everywhere(timeout=120)
async def test_seed_stream_decoder_hostile(selenium):
    """Seeded hostile streams: garbage full of braces and quotes, cut envelopes, endless values,
    deep nesting. Only typed errors; the buffer stays within max_message; the verdict does not
    depend on how the stream is cut; valid envelopes between plain text all arrive."""
    import random
    import socketiwa
    from socketiwa import seedwire, wire
    MAX = 512
    rng = random.Random(20261125)

    def run(chunks):
        d = seedwire.StreamDecoder(max_message=MAX)
        out = []
        for c in chunks:
            out += d.feed(c)
            assert d.buffered <= MAX, d.buffered
        end = d.end()
        norm = []
        for it in out + ([end] if end is not None else []):
            if isinstance(it, socketiwa.FrameError):
                norm.append(("error", type(it).__name__, it.data))
            elif it.kind == wire.KIND_DATA:
                if norm and norm[-1][0] == "data":
                    norm[-1] = ("data", norm[-1][1] + it.payload)
                else:
                    norm.append(("data", it.payload))
            else:
                assert isinstance(it, wire.Envelope) and it.kind in (wire.KIND_EVENT, wire.KIND_ACK)
                norm.append(("env", it.kind, it.name, it.args, it.ack_id))
        return norm

    def cuts(stream, n):
        points = sorted(rng.sample(range(1, len(stream)), min(n, len(stream) - 1))) if len(stream) > 1 else []
        return [stream[a:b] for a, b in zip([0] + points, points + [len(stream)])]

    alphabet = b'{}[]":,\\ ae1-.tfnu\xff\xc3\xa9\n'
    valid = [seedwire.encode_event("ev", (i, "é")) for i in range(5)]
    for _ in range(400):
        parts = []
        for _ in range(rng.randrange(1, 12)):
            r = rng.random()
            if r < 0.3:
                parts.append(rng.choice(valid))
            elif r < 0.6:
                parts.append(bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 40))))
            elif r < 0.75:
                e = bytearray(rng.choice(valid))       # mutated envelope
                e[rng.randrange(len(e))] = rng.choice(alphabet)
                parts.append(bytes(e[:rng.randrange(1, len(e) + 1)]))
            elif r < 0.8:
                parts.append(b'{"__socketiwa":1,"t":"event","e":"x","args":["' + b"y" * rng.randrange(MAX) + b'"]}')
            elif r < 0.85:   # refused numbers, in valid and in broken objects
                parts.append(b'{"__socketiwa":1,"t":"event","e":"x","args":[1e400' + rng.choice([b"]}", b" x]}", b"]"]))
            else:
                parts.append(b"[" * rng.randrange(300) + b'{"a":' * rng.randrange(300))
        stream = b"".join(parts)
        whole = run([stream])
        for n in (1, 3, 17):
            assert run(cuts(stream, n)) == whole, stream[:200]

    # plain text around envelopes: every envelope arrives, plain bytes in order
    for _ in range(200):
        texts = [bytes(rng.choice(b"abc }]\":,x\xc3\xa9") for _ in range(rng.randrange(30))) for _ in range(4)]
        stream = b"".join(t + v for t, v in zip(texts, valid[:4]))
        got = run(cuts(stream, rng.randrange(1, 10)))
        assert [g[3] for g in got if g[0] == "env"] == [((i, "é")) for i in range(4)], got
        assert b"".join(g[1] for g in got if g[0] == "data") == b"".join(texts)

    # an endless value: one MessageTooLargeError, nothing stored, the stream resyncs after it
    d = seedwire.StreamDecoder(max_message=MAX)
    out = d.feed(b'{"__socketiwa":1,"t":"event","e":"x","args":["')
    for _ in range(2000):
        out += d.feed(b"z{}[]" * 200)
        assert d.buffered <= MAX
    out += d.feed(b'"]}' + valid[0])
    assert [type(o).__name__ for o in out] == ["MessageTooLargeError", "Envelope"]
    assert out[1].args == (0, "é")
    # an endless run of openers: the depth limit, not memory, stops it
    d = seedwire.StreamDecoder(max_message=MAX)
    out = []
    for _ in range(200):
        out += d.feed(b'{"a":[' * 100)
        assert d.buffered <= MAX
    assert any(isinstance(o, socketiwa.FrameError) for o in out)
    assert not any(isinstance(o, wire.Envelope) and o.kind != wire.KIND_DATA for o in out)
    # end of stream inside an object: a FrameError carrying the held bytes
    d = seedwire.StreamDecoder(max_message=MAX)
    assert d.feed(b'x{"__socketiwa":1,"t":"ev')[0].payload == b"x"
    cut = d.end()
    assert isinstance(cut, socketiwa.FrameError) and cut.data == b'{"__socketiwa":1,"t":"ev'
    assert d.end() is None and d.buffered == 0


# ---------------------------------------------------------------- CPython: Hypothesis + Node
def _json_values():
    from hypothesis import strategies as st
    text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=()),
                   max_size=12)
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-2**53, 2**53), text,
        st.floats(allow_nan=False, allow_infinity=False),
        st.builds(lambda b: struct.unpack("<d", b)[0], st.binary(min_size=8, max_size=8)).filter(math.isfinite),
        st.sampled_from([10**21, 2**60, 1.2345678901234568e20, -0.0, 5e-324, 1e-7, 1e21, 2**53 + 2]))
    keys = st.one_of(st.text(max_size=5), st.integers(0, 2**32).map(str), st.sampled_from(["01", "-1", "1.5", "4294967294", "4294967295"]))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)), max_leaves=20)


def _random_value(rng, depth=0):
    r = rng.random()
    if depth > 3 or r < 0.55:
        kind = rng.randrange(8)
        if kind == 0:
            return rng.choice([None, True, False])
        if kind == 1:
            return rng.randint(-2**53, 2**53)
        if kind in (2, 3):   # any code point, surrogates included
            return "".join(chr(rng.choice([rng.randrange(0x80), rng.randrange(0xD800, 0xE000),
                                           rng.randrange(0x110000)])) for _ in range(rng.randrange(8)))
        if kind == 4:        # any finite double, by its bits
            while True:
                x = struct.unpack("<d", rng.randbytes(8))[0]
                if math.isfinite(x):
                    return x
        if kind == 5:
            return rng.choice([0.1, 1e21, 1e-7, 1e-6, 5e-324, -0.0, 2.0**60, 1e16, 123.0])
        if kind == 6:
            return rng.uniform(-1e6, 1e6)
        return float(rng.randint(-2**60, 2**60))
    if r < 0.8:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = [rng.choice([str(rng.randrange(2**33)), rng.choice(["01", "-1", "a", "é", "1.5", ""]),
                        "k" + str(rng.randrange(100))]) for _ in range(rng.randrange(5))]
    return {k: _random_value(rng, depth + 1) for k in keys}


def _check_against_javascript(values):
    from socketiwa import seedwire
    mine = [seedwire.encode_event("v", (v,), i + 1) for i, v in enumerate(values)]
    theirs = json.loads(_node("restringify", stdin=json.dumps(
        [base64.b64encode(m).decode() for m in mine])))
    for value, m, t in zip(values, mine, theirs, strict=True):
        assert base64.b64decode(t) == m, (value, m)
        back = seedwire.decode_datagram(m).args[0]
        assert back == _js_view(value), (value, back)


def test_seed_stringify_matches_javascript_random_values(request):
    """20,000 seeded random values and Hypothesis-drawn ones (any string including lone
    surrogates, any finite double by its bits, integer-like keys): what seedwire writes is what
    JavaScript writes after JSON.parse of it, byte for byte; seedwire reads it back equal."""
    import random
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    deep = 20 if request.config.getoption("--deep") else 1
    rng = random.Random(1125)
    _check_against_javascript([_random_value(rng) for _ in range(20_000 * deep)])

    @settings(max_examples=10 * deep, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(_json_values(), min_size=1, max_size=30))
    def check(values):
        _check_against_javascript(values)
    check()


def _js_view(value):
    """``value`` as JavaScript holds it: surrogate pairs joined, dict keys as they come back."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    if isinstance(value, list):
        return [_js_view(v) for v in value]
    if isinstance(value, dict):
        return {_js_view(k): _js_view(v) for k, v in value.items()}
    return value


def test_seed_stream_decoder_properties(request):
    """Hypothesis streams of envelopes, non-envelope JSON, malformed envelopes, plain text and
    broken objects, cut anywhere: the items come out as an independent model says."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    import socketiwa
    from socketiwa import seedwire, wire
    deep = 20 if request.config.getoption("--deep") else 1
    MAX = 1024
    values = _json_values()
    names = st.text(max_size=8)
    # (bytes, expected item): "env" items, "data" (plain bytes), "error" (FrameError)
    piece = st.one_of(
        st.builds(lambda n, a: (seedwire.encode_event(n, a), ("env", n, tuple(_js_view(a)), 0)),
                  names, st.lists(values, max_size=3)),
        st.builds(lambda i, a: (seedwire.encode_ack(i, a), ("ack", i, tuple(_js_view(a)))),
                  st.integers(1, 2**53), st.lists(values, max_size=3)),
        st.builds(lambda b: (b, ("data", b)), st.binary(max_size=40).map(lambda b: b.replace(b"{", b"("))),
        st.builds(lambda d: (seedwire.stringify(d).encode(), ("data", seedwire.stringify(d).encode())),
                  st.dictionaries(st.text(max_size=5).filter(lambda k: k != "__socketiwa"), values, max_size=3)),
        st.builds(lambda t: ((b'{"__socketiwa":1,"t":' + seedwire.stringify(t).encode() + b',"e":"x","args":[]}'),
                             ("error",)), st.text(max_size=5).filter(lambda t: t not in ("event", "ack_request", "ack_response"))),
        st.builds(lambda b: (b"{x" + b, ("data", b"{x" + b)), st.binary(max_size=20).map(lambda b: b.replace(b"{", b"("))),
    )

    @settings(max_examples=150 * deep, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(piece, max_size=8), st.lists(st.integers(0, 10**6), max_size=6))
    def check(pieces, cut_points):
        stream = b"".join(p for p, _ in pieces)
        expected = []
        for raw, want in pieces:
            if len(raw) > MAX and raw[:1] == b"{" and raw[:2] != b"{x":   # a whole JSON object
                want = ("too-large",)
            if want[0] == "data" and expected and expected[-1][0] == "data":
                expected[-1] = ("data", expected[-1][1] + want[1])
            elif want[0] != "data" or want[1]:
                expected.append(want)
        points = sorted({c % (len(stream) + 1) for c in cut_points})
        d = seedwire.StreamDecoder(max_message=MAX)
        got = []
        for a, b in zip([0] + points, points + [len(stream)]):
            for it in d.feed(stream[a:b]):
                if isinstance(it, socketiwa.MessageTooLargeError):
                    got.append(("too-large",))
                elif isinstance(it, socketiwa.FrameError):
                    got.append(("error",))
                elif it.kind == wire.KIND_DATA:
                    if got and got[-1][0] == "data":
                        got[-1] = ("data", got[-1][1] + it.payload)
                    else:
                        got.append(("data", it.payload))
                elif it.kind == wire.KIND_ACK:
                    got.append(("ack", it.ack_id, it.args))
                else:
                    got.append(("env", it.name, it.args, it.ack_id))
            assert d.buffered <= MAX + (b - a)
        assert d.end() is None
        assert got == expected
    check()


# ---------------------------------------------------------------- interop with a seed app
PEER = HERE / "seedwire_peer.mjs"


@pytest.fixture
def seed_peer():
    """tests/seedwire_peer.mjs: the seed's wire behaviour on Node net/dgram. (host, tcp, udp)."""
    proc = subprocess.Popen(["node", str(PEER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        ports = json.loads(proc.stdout.readline())
        yield ("127.0.0.1", ports["tcp"], ports["udp"])
    finally:
        proc.stdin.close()                    # the peer exits when its stdin closes
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@everywhere(timeout=120)
async def test_seed_peer_udp_and_tcp_events_and_acks(selenium, seed_peer):
    """A socketiwa UDP socket and TCP socket with wire="socketiwa-js" against a Node program
    that behaves on the wire like an app built on the JavaScript Socket.IWA library: acks both
    ways with several arguments, events, plain data, the seed's merged and split TCP writes, a
    faked lifecycle event."""
    import asyncio
    import socketiwa
    host, tcp_port, udp_port = seed_peer

    async def talk(conn, extra):
        # extra: arguments our handlers get after the event's own (UDP: rinfo, ack; TCP: ack)
        inbox = {n: asyncio.Queue() for n in ("noted", "got-plain", "after", "message")}
        ticks, errors, closes = [], [], []
        conn.on("noted", lambda *a: inbox["noted"].put_nowait(a[:-extra]))
        conn.on("got-plain", lambda *a: inbox["got-plain"].put_nowait(a[0]))
        conn.on("after", lambda *a: inbox["after"].put_nowait(a[0]))
        conn.on("tick", lambda *a: ticks.append(a[:-extra]))
        conn.on("message", lambda data, *rinfo: inbox["message"].put_nowait(data))
        conn.on("error", errors.append)
        conn.on("close", closes.append)
        # an ack with two arguments: the seed's emitWithAck resolves with the first
        conn.on("question", lambda *a: a[-1]({"answer_to": a[0], "from": "python"}, "dropped by the seed"))

        async def next_of(name):
            return await asyncio.wait_for(inbox[name].get(), 10)

        # acks both ways, several arguments, non-ASCII, lone surrogates, numbers JS holds
        assert await conn.emit_with_ack("echo", "ü€😀", 2, [True, None], {"k": 1.5}, timeout=10) == \
            ("ü€😀", 2, [True, None], {"k": 1.5})
        assert await conn.emit_with_ack("echo", "\ud800x", 2**60, 1e21, -0.0, timeout=10) == \
            ("\ud800x", 2.0**60, 1e21, 0)
        assert await conn.emit_with_ack("echo", timeout=10) is None       # respond() with nothing
        assert await conn.emit_with_ack("ask", {"q": 42}, timeout=10) == \
            {"asked": {"q": 42}, "answer": {"answer_to": {"q": 42}, "from": "python"}}
        # events without ack, several arguments, both ways
        await conn.emit("note", "one", 2, {"three": [3]})
        assert await next_of("noted") == ("one", 2, {"three": [3]})
        await conn.emit("note")
        assert await next_of("noted") == (None,)   # no arguments: handlers get None, as before
        # plain data both ways, next to envelopes
        await conn.send(b"plain from python \xe2\x9c\x93")
        assert await next_of("got-plain") == "plain from python ✓"
        assert await conn.emit_with_ack("plain", "plain from the seed ✓", timeout=10) == "sent"
        assert await next_of("message") == "plain from the seed ✓".encode()
        # many envelopes at once, and (TCP) merged in one write and one cut into three writes
        assert await conn.emit_with_ack("burst", 50, timeout=10) == "burst sent"
        assert ticks == [(i, "é" * (i % 7)) for i in range(50)] + [(50, "split ✓")]
        # a seed peer cannot fire our lifecycle events: 'close' from it is a FrameError
        assert await conn.emit_with_ack("fake-lifecycle", timeout=10) == "done"
        assert await next_of("after") == "fake sent"
        assert conn.ready_state is socketiwa.ReadyState.OPEN and closes == []
        assert len(errors) == 1 and isinstance(errors[0], socketiwa.FrameError), errors
        # the seed parses each chunk whole: each envelope of ours arrived in a chunk of its own
        report = await conn.emit_with_ack("report", timeout=10)
        assert report == {"messages": ["plain from python ✓"], "unparsed": 0}, report
        await conn.close()
        assert len(closes) == 1

    udp = await socketiwa.create_udp(remote_address=host, remote_port=udp_port, wire="socketiwa-js")
    await talk(udp, 2)
    tcp = await socketiwa.create_tcp(host, tcp_port, wire="socketiwa-js", no_delay=True)
    await talk(tcp, 1)


@everywhere(timeout=90)
async def test_seed_peer_connects_to_socketiwa_server(selenium, seed_peer):
    """create_tcp_server(wire="socketiwa-js"): a seed app connects; acks to it, room broadcast."""
    import asyncio
    import socketiwa
    host, tcp_port, _ = seed_peer
    server = await socketiwa.create_tcp_server("127.0.0.1", 0, wire="socketiwa-js")
    accepted = asyncio.Queue()

    def on_connection(conn):
        conn.join("seeds")
        accepted.put_nowait(conn)
    server.on("connection", on_connection)
    control = await socketiwa.create_tcp(host, tcp_port, wire="socketiwa-js")
    assert await control.emit_with_ack("dial", server.local_port, timeout=10) == "dialed"
    conn = await asyncio.wait_for(accepted.get(), 10)
    assert await conn.emit_with_ack("echo", "via the server", [1, 2], timeout=10) == ("via the server", [1, 2])
    noted = asyncio.Queue()
    conn.on("noted", lambda *a: noted.put_nowait(a[:-1]))
    assert await server.to("seeds").emit("note", "to the room", {"n": 1}) == 1
    assert await asyncio.wait_for(noted.get(), 10) == ("to the room", {"n": 1})
    # the seed app closes: a plain end of stream (it sends no close envelope), so our handlers
    # get code 1005 (no status), as for any peer that ends without saying why
    infos = asyncio.Queue()
    conn.on("disconnect", infos.put_nowait)
    conn.on("close", infos.put_nowait)
    assert await conn.emit_with_ack("hangup", timeout=10) == "bye"
    disconnect = await asyncio.wait_for(infos.get(), 10)
    close = await asyncio.wait_for(infos.get(), 10)
    assert (disconnect.code, close.code) == (1005, 1005)
    assert conn.ready_state is socketiwa.ReadyState.CLOSED and server.connections == []
    await control.close()
    await server.close()


@everywhere
async def test_seed_wire_option_is_checked(selenium):
    import socketiwa
    from socketiwa import seedwire
    for make in (lambda **kw: socketiwa.UDPSocket(local_address="127.0.0.1", **kw),
                 lambda **kw: socketiwa.TCPSocket("127.0.0.1", 9, **kw),
                 lambda **kw: socketiwa.TCPServer("127.0.0.1", 0, **kw)):
        for bad in ({"wire": "socketio"}, {"wire": None},
                    {"wire": "socketiwa-js", "codec": object()}):
            try:
                make(**bad)
            except socketiwa.InvalidOptionError:
                pass
            else:
                raise AssertionError(f"accepted {bad}")
        assert make(wire="socketiwa-js", codec=seedwire.SEED_CODEC)


def test_seed_hostile_streams_through_real_sockets(request):
    """Hypothesis streams through a real socketiwa TCP server with wire="socketiwa-js" on
    loopback, written by a plain socket in random pieces: acked 'echo' requests between plain
    bytes, non-envelope JSON, malformed envelopes, faked lifecycle events and broken objects.
    Every request is answered exactly once and in order, every plain byte arrives in order, each
    bad envelope is exactly one FrameError, and the server's buffer stays within its bound."""
    import asyncio
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    import socketiwa
    from socketiwa import seedwire, wire
    deep = 20 if request.config.getoption("--deep") else 1
    MAX = 2048
    values = _json_values()
    bad_type = st.text(max_size=5).filter(lambda t: t not in ("event", "ack_request", "ack_response"))
    piece = st.one_of(
        st.tuples(st.just("echo"), st.lists(values, max_size=3)),
        st.tuples(st.just("data"), st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"{", b"("))),
        st.tuples(st.just("data"), st.dictionaries(st.text(max_size=4).filter(lambda k: k != "__socketiwa"),
                                                   values, max_size=3).map(lambda d: seedwire.stringify(d).encode())),
        st.tuples(st.just("data"), st.binary(max_size=30).map(lambda b: b"{x" + b.replace(b"{", b"("))),
        st.tuples(st.just("error"), bad_type.map(
            lambda t: b'{"__socketiwa":1,"t":' + seedwire.stringify(t).encode() + b',"e":"x","args":[]}')),
        st.tuples(st.just("error"), st.sampled_from(["close", "error", "message", "connect"]).map(
            lambda n: seedwire.encode_event(n, ("fake",)))),
        st.tuples(st.just("error"), st.just(b'{"__socketiwa":1,"t":"event","e":"x","args":[1e999]}')),
    )

    async def exchange(pieces, cut_points):
        got_data, errors, peak = bytearray(), [], [0]
        server = await socketiwa.create_tcp_server("127.0.0.1", 0, wire="socketiwa-js",
                                                   max_message_size=MAX)

        def on_connection(conn):
            conn.on("echo", lambda *a: a[-1] and a[-1](*a[:-1]))
            conn.on("message", lambda data: got_data.extend(data))
            conn.on("error", errors.append)
            conn.on("message", lambda data: peak.__setitem__(0, max(peak[0], conn._session.buffered)))
        server.on("connection", on_connection)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.local_port)
        stream, expected_acks, expected_data, expected_errors = bytearray(), [], bytearray(), 0
        # a last request: once it is answered, everything before it has been handled
        for n, (kind, arg) in enumerate(pieces + [("echo", ["sync"])], start=1):
            if kind == "echo":
                stream += seedwire.encode_event("echo", arg, n)
                # (a handler of an event without arguments gets None, so echoes (None,))
                expected_acks.append((n, tuple(_js_view(arg)) if arg else (None,)))
            elif kind == "data":
                stream += arg
                expected_data += arg
            else:
                stream += arg
                expected_errors += 1
        points = sorted({c % (len(stream) + 1) for c in cut_points})
        for a, b in zip([0] + points, points + [len(stream)]):
            writer.write(bytes(stream[a:b]))
            await writer.drain()
        decoder = seedwire.StreamDecoder()
        acks = []
        while len(acks) < len(expected_acks):
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            assert chunk, "server closed early"
            for item in decoder.feed(chunk):
                assert isinstance(item, wire.Envelope) and item.kind == wire.KIND_ACK, item
                acks.append((item.ack_id, item.args))
        writer.close()
        await server.close()
        assert acks == expected_acks
        assert bytes(got_data) == bytes(expected_data)
        assert len(errors) == expected_errors and all(isinstance(e, socketiwa.FrameError) for e in errors), errors
        assert peak[0] <= MAX

    @settings(max_examples=60 * deep, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(piece, max_size=25), st.lists(st.integers(0, 10**6), max_size=8))
    def check(pieces, cut_points):
        asyncio.run(asyncio.wait_for(exchange(pieces, cut_points), 60))
    check()


@everywhere(timeout=90)
async def test_seed_udp_hostile_datagrams(selenium):
    """Seeded hostile datagrams into a socketiwa UDP socket with wire="socketiwa-js" (sent raw
    by a second socketiwa socket): each valid request is answered exactly once, each bad
    envelope is one FrameError, everything else is a plain message, and the socket stays open."""
    import asyncio
    import random
    import socketiwa
    from socketiwa import seedwire, wire
    rng = random.Random(9)
    receiver = await socketiwa.create_udp(local_address="127.0.0.1", wire="socketiwa-js")
    sender = await socketiwa.create_udp(remote_address="127.0.0.1", remote_port=receiver.local_port)
    errors, plain, answers = [], [], asyncio.Queue()
    receiver.on("echo", lambda *a: a[-1] and a[-1](*a[:-2]))          # (args..., rinfo, ack)
    receiver.on("error", errors.append)
    receiver.on("message", lambda data, rinfo: plain.append(data))
    sender.on("message", lambda data, rinfo: answers.put_nowait(seedwire.decode_datagram(data)))
    want_errors, want_plain = 0, []
    alphabet = b'{}[]":,\\ ae1-.\xff'
    for n in range(1, 302):
        r = rng.random() if n < 301 else 0.0     # the last one: a request, to sync on
        if r < 0.4:
            # each request waits for its answer: a burst of datagrams larger than the
            # kernel's receive buffer would be dropped, as UDP does
            args = (n, "é" * (n % 5), {"k": [n]})
            await sender.send(seedwire.encode_event("echo", args, n))
            env = await asyncio.wait_for(answers.get(), 10)
            assert (env.kind, env.ack_id, env.args) == (wire.KIND_ACK, n, args)
            continue
        if r < 0.55:
            raw = b'{"__socketiwa":1,"t":"event","e":"x","args":' + rng.choice([b"{}", b'"s"', b"[1e999]"]) + b"}"
            want_errors += 1
        elif r < 0.65:
            raw = seedwire.encode_event(rng.choice(["close", "error", "open"]), (1,))
            want_errors += 1
        else:
            raw = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 60)))
            want_plain.append(raw)
        await sender.send(raw)
    await asyncio.sleep(0.2)                      # nothing else may come back
    assert answers.empty() and len(errors) == want_errors and plain == want_plain
    assert all(isinstance(e, socketiwa.FrameError) for e in errors)
    assert receiver.ready_state is socketiwa.ReadyState.OPEN
    await sender.close()
    await receiver.close()
