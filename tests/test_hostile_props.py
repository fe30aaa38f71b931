"""Property-based tests (Hypothesis) for the wire format and every receive path.

Each example is a batch of many inputs: valid acked events interleaved with random bytes, mutated
valid envelopes, every kind x codec header, length prefixes 0 / max / max+1 / 2^32-1, split and
merged at random points. The receiver is a real socketiwa socket on loopback (CPython). The
expected outcome comes from an independent model of the framing (not wire.Deframer) and
wire.decode: every valid acked event is answered exactly once and in order, every plain message
arrives in order, each malformed input is exactly one typed error, and the queues, handler tasks
and reassembly buffer stay within their bounds. ``pytest --deep`` runs 20 times as many.
Node gets a lighter, seeded version (no Hypothesis in Pyodide) at the end.
"""
from __future__ import annotations

import asyncio
import random
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runtimes import everywhere

import socketiwa
from socketiwa import wire

MAX = 2048            # max_message_size of the TCP receiver under test
QUEUE = 16            # its max_queue (and so its handler-task bound)
MIN_INPUTS = 50_000   # per transport per run; --deep multiplies the examples by 20
RESERVED = ("open", "message", "error", "close", "connect", "disconnect", "connection")


def _settings(request, examples: int):
    deep = 20 if request.config.getoption("--deep") else 1
    return settings(max_examples=examples * deep, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------- inputs
payloads = st.one_of(st.none(), st.integers(-2**63, 2**63), st.text(max_size=16),
                     st.binary(max_size=32), st.lists(st.integers(0, 9), max_size=4),
                     st.dictionaries(st.text(max_size=4), st.booleans(), max_size=3))


def _header(kind, codec, ack_id, name, body):
    head = wire._HEAD.pack(wire.MAGIC, kind, ack_id, codec)
    return head + (bytes([len(name)]) + name if kind == wire.KIND_EVENT else b"") + body


# One input = one envelope body (TCP frames it, UDP sends it as one datagram). ("echo", p) are
# the valid acked events; the test numbers them so each answer can be matched.
inputs = st.one_of(
    st.tuples(st.just("echo"), payloads),
    st.tuples(st.just("data"), st.binary(max_size=64)),
    st.tuples(st.just("random"), st.binary(max_size=64)),
    st.tuples(st.just("siw1-random"), st.binary(max_size=24)),            # magic + noise
    st.tuples(st.just("mutated"), st.tuples(payloads, st.lists(
        st.tuples(st.integers(0, 4096), st.integers(0, 255)), min_size=1, max_size=3),
        st.integers(0, 64))),
    st.tuples(st.just("header"), st.tuples(st.integers(0, 4), st.integers(0, 4),
                                           st.sampled_from([0, 1, 7, 2**32 - 1]),
                                           st.sampled_from([b"echo", b"other", b"", b"\xff",
                                                            *[n.encode() for n in RESERVED]]),
                                           st.binary(max_size=16))),
    st.tuples(st.just("json"), st.sampled_from([
        b'"x"'.decode().encode("utf-16"), b"\xef\xbb\xbf1", b"NaN", b"1e400", b'"\xff"',
        b"[" * 300 + b"]" * 300, b"[" * 5000, b'"\\ud800"', b"1" * 5000, b"{}", b"[]"])),
)


_PAYLOAD_SAMPLES = (None, 0, -1, 2**63, "", "ü", "x" * 20, b"", b"\x00\xff", [1, 2], {"k": True})
_JSON_SAMPLES = (b'"x"'.decode().encode("utf-16"), b"NaN", b"1e400", b'"\xff"', b"[" * 300,
                 b'"\\ud800"', b"{}", b"[1,", b"1 2", b"\xef\xbb\xbf{}")


def random_items(rng, n: int) -> list:
    """``n`` inputs of the same forms as the ``inputs`` strategy, drawn from a seeded Random
    that Hypothesis supplies: the bulk of each batch, cheap to make (Hypothesis draws the rest,
    which it can shrink)."""
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.35:
            out.append(("echo", rng.choice(_PAYLOAD_SAMPLES)))
        elif r < 0.45:
            out.append(("data", rng.randbytes(rng.randrange(64))))
        elif r < 0.55:
            out.append(("random", rng.randbytes(rng.randrange(64))))
        elif r < 0.65:
            out.append(("siw1-random", rng.randbytes(rng.randrange(24))))
        elif r < 0.85:
            edits = [(rng.randrange(4096), rng.randrange(256)) for _ in range(rng.randrange(1, 4))]
            out.append(("mutated", (rng.choice(_PAYLOAD_SAMPLES), edits, rng.choice((0, 0, 1, 5)))))
        elif r < 0.95:
            out.append(("header", (rng.randrange(5), rng.randrange(5), rng.choice((0, 1, 2**32 - 1)),
                                   rng.choice((b"echo", b"other", b"", b"error", b"close")),
                                   rng.randbytes(rng.randrange(16)))))
        else:
            out.append(("json", rng.choice(_JSON_SAMPLES)))
    return out


def batch(data, hypothesis_items=(10, 30), random_count=(250, 350)) -> list:
    items = data.draw(st.lists(inputs, min_size=hypothesis_items[0], max_size=hypothesis_items[1]))
    # A seed, not st.randoms(): that routes every call through Hypothesis (10x slower).
    rng = random.Random(data.draw(st.integers(0, 2**64), label="seed"))
    items += random_items(rng, rng.randrange(*random_count))
    rng.shuffle(items)
    return items


def _envelope(item, seq: int) -> bytes:
    kind, arg = item
    if kind == "echo":
        return wire.encode_event("echo", arg, ack_id=seq)
    if kind == "data":
        return wire.encode_data(arg)
    if kind in ("random",):
        return arg
    if kind == "siw1-random":
        return wire.MAGIC + arg
    if kind == "mutated":
        payload, edits, cut = arg
        raw = bytearray(wire.encode_event("echo", payload, ack_id=seq))
        for pos, value in edits:
            raw[pos % len(raw)] = value
        return bytes(raw[:len(raw) - cut] if cut < len(raw) else raw)
    if kind == "header":
        k, codec, ack_id, name, body = arg
        return _header(k, codec, ack_id, name, body)
    if kind == "json":
        return _header(wire.KIND_EVENT, wire.CODEC_JSON, seq, b"echo", arg)
    raise AssertionError(kind)


def expected_outcome(body: bytes):
    """What a receiver must do with one envelope: ('ack', id, payload), ('message', data),
    ('error',) or ('none',) (a valid envelope nobody handles)."""
    try:
        env = wire.decode(body)
    except socketiwa.FrameError:
        return ("error",)
    if env.kind == wire.KIND_EVENT:
        if env.name in RESERVED:
            return ("error",)
        if env.name == "echo" and env.ack_id:
            return ("ack", env.ack_id, env.payload)
        return ("none",)
    if env.kind == wire.KIND_DATA:
        return ("message", env.payload)
    return ("none",)                                   # an ACK nobody waits for


def model_frames(stream: bytes, max_message: int):
    """Independent model of the TCP framing: the frame bodies in order (None: oversize, skipped)
    and whether the stream ends inside a frame."""
    out, pos, n = [], 0, len(stream)
    while n - pos >= 4:
        length = int.from_bytes(stream[pos:pos + 4], "big")
        if length > max_message:
            out.append(None)
            pos += 4 + length
            continue
        if n - pos - 4 < length:
            break
        out.append(stream[pos + 4:pos + 4 + length])
        pos += 4 + length
    return out, pos < n


class Receiver:
    """Collects what a socketiwa socket under test does, and the bounds it must keep."""

    def __init__(self):
        self.messages, self.errors = [], []
        self.echoes = 0
        self.peak_tasks = self.peak_queue = self.peak_buffer = 0
        self.sock = None

    def watch(self, sock):
        self.sock = sock
        sock.on("error", self.on_error)
        sock.on("message", self.on_message)
        sock.on("echo", self.on_echo)

    def sample(self):
        s = self.sock
        self.peak_tasks = max(self.peak_tasks, len(s._tasks))
        self.peak_queue = max(self.peak_queue, s._queue.qsize())
        # the session's reassembly buffer (0 for datagrams)
        self.peak_buffer = max(self.peak_buffer, s._session.buffered)

    def on_error(self, exc):
        self.sample()
        self.errors.append(exc)

    def on_message(self, data, *rinfo):
        self.sample()
        self.messages.append(data)

    def on_echo(self, payload, *rest):
        self.sample()
        ack = rest[-1]
        if ack:
            self.echoes += 1
            ack(payload)


def check_receiver(rx: Receiver, expected, n_errors: int, bounds):
    assert all(isinstance(e, socketiwa.SocketIwaError) for e in rx.errors), rx.errors[:5]
    assert rx.messages == [e[1] for e in expected if e[0] == "message"]
    assert len(rx.errors) == n_errors, (len(rx.errors), n_errors, rx.errors[:5])
    max_tasks, max_queue, max_buffer = bounds
    assert rx.peak_tasks <= max_tasks and rx.peak_queue <= max_queue
    assert rx.peak_buffer <= max_buffer


# ---------------------------------------------------------------- wire format alone
def test_property_decode_random_and_mutated_bytes(request):
    """decode() raises FrameError and nothing else; whatever decodes re-encodes to itself."""
    count = [0]

    @_settings(request, 100)
    @given(st.data())
    def check(data):
        bodies = [_envelope(item, 5) for item in batch(data)]
        bodies += data.draw(st.lists(st.binary(max_size=80), max_size=20))
        for body in bodies:
            count[0] += 1
            try:
                env = wire.decode(body)
            except socketiwa.FrameError as exc:
                assert exc.data == body
                continue
            if env.kind == wire.KIND_DATA:
                assert type(env.payload) is bytes
                again = wire.encode_data(env.payload)
            elif env.payload is None:
                again = wire.encode(env.kind, name=env.name, ack_id=env.ack_id) \
                    if body[9] == wire.CODEC_NONE else \
                    wire.encode(env.kind, None, name=env.name, ack_id=env.ack_id)
            else:
                again = wire.encode(env.kind, env.payload, name=env.name, ack_id=env.ack_id)
            assert wire.decode(again) == env
    check()
    assert count[0] >= 25_000, count[0]


def test_property_deframer_matches_model(request):
    """wire.Deframer fed at random split points equals the independent model, with its buffer
    never above max_message + 4."""
    @_settings(request, 300)
    @given(st.data())
    def check(data):
        bodies = data.draw(st.lists(st.binary(max_size=80), max_size=40))
        parts = []
        for b in bodies:
            choice = data.draw(st.integers(0, 9))
            if choice == 0:
                parts.append((len(b) + 200).to_bytes(4, "big") + b)      # oversize, partly given
            elif choice == 1:
                parts.append((2**32 - 1).to_bytes(4, "big"))
            else:
                parts.append(len(b).to_bytes(4, "big") + b)
        stream = b"".join(parts)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
        d = wire.Deframer(max_message=100)
        got, prev = [], 0
        for cut in [*cuts, len(stream)]:
            got += d.feed(stream[prev:cut])
            prev = cut
            assert d.buffered <= 100 + 4
        frames, partial = model_frames(stream, 100)
        assert [None if isinstance(g, socketiwa.MessageTooLargeError) else g for g in got] == frames
        assert (d.buffered > 0) == partial
    check()


# ---------------------------------------------------------------- TCP receive path
@pytest.fixture(scope="module")
def loop():
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def test_property_tcp_framed_stream(request, loop):
    """Random streams into a socketiwa TCP server over loopback, split and merged at random."""
    count = [0]

    async def start():
        srv = await socketiwa.create_tcp_server("127.0.0.1", 0, max_message_size=MAX,
                                                max_queue=QUEUE)
        return srv
    srv = loop.run_until_complete(start())

    async def run(stream: bytes, cuts: list[int]):
        receivers = []
        connected = asyncio.Event()

        def on_connection(conn):
            rx = Receiver()
            rx.watch(conn)
            receivers.append(rx)
            connected.set()
        srv.on("connection", on_connection)
        client = socket.socket()
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await loop.sock_connect(client, ("127.0.0.1", srv.local_port))
            await asyncio.wait_for(connected.wait(), 10)
            prev = 0
            for cut in [*cuts, len(stream)]:
                await loop.sock_sendall(client, stream[prev:cut])
                prev = cut
                if cut % 3 == 0:
                    await asyncio.sleep(0)     # let some pieces arrive on their own
            client.shutdown(socket.SHUT_WR)
            replies = bytearray()
            while True:                        # the server closes after our end of stream
                chunk = await asyncio.wait_for(loop.sock_recv(client, 65536), 20)
                if not chunk:
                    break
                replies += chunk
        finally:
            client.close()
            srv.off("connection", on_connection)
        conn = receivers[0].sock
        await asyncio.wait_for(conn.wait_closed(), 10)
        return receivers[0], bytes(replies)

    @_settings(request, 180)
    @given(st.data())
    def check(data):
        items = batch(data)
        bodies = [_envelope(item, seq) for seq, item in enumerate(items, 1)]
        frames = [wire.frame(b, max_message=2**31) for b in bodies]
        specials = data.draw(st.lists(st.sampled_from(["len0", "max", "max+1"]), max_size=4))
        for special in specials:
            at = data.draw(st.integers(0, len(frames)))
            if special == "len0":
                frames.insert(at, b"\x00\x00\x00\x00")
            elif special == "max":                 # exactly max_message_size: a valid echo
                pad = wire.encode_event("echo", b"", ack_id=1)
                frames.insert(at, wire.frame(wire.encode_event(
                    "echo", b"p" * (MAX - len(pad)), ack_id=10_000 + at)))
            else:
                frames.insert(at, (MAX + 1).to_bytes(4, "big") + b"s" * (MAX + 1))
        tail = data.draw(st.sampled_from([b"", b"", b"\xff\xff\xff\xff" + b"gone",
                                          b"\x00\x00\x01", b"\x00\x00\x00\x09SIW1"]))
        stream = b"".join(frames) + tail
        cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=30)))
        count[0] += len(items) + len(specials) + (1 if tail else 0)

        model, partial = model_frames(stream, MAX)
        expected = [("error",) if f is None else expected_outcome(f) for f in model]
        n_errors = sum(e[0] == "error" for e in expected) + partial
        rx, replies = loop.run_until_complete(run(stream, cuts))
        acks = [wire.decode(f) for f in wire.Deframer().feed(replies)]
        want = [(e[1], e[2]) for e in expected if e[0] == "ack"]
        assert [(a.kind, a.ack_id, a.payload) for a in acks] == [(wire.KIND_ACK, *w) for w in want]
        check_receiver(rx, expected, n_errors, (QUEUE, QUEUE, MAX + 4))
    try:
        check()
    finally:
        loop.run_until_complete(srv.close())
    assert count[0] >= MIN_INPUTS, count[0]


# ---------------------------------------------------------------- UDP receive path
def test_property_udp_datagrams(request, loop):
    """Random datagrams (envelopes, noise, empty, maximum size) into a bound socketiwa socket."""
    count = [0]

    async def start():
        rx_sock = await socketiwa.create_udp(local_address="127.0.0.1",
                                             receive_buffer_size=1 << 20)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        tx.bind(("127.0.0.1", 0))
        tx.setblocking(False)
        return rx_sock, tx
    rx_sock, tx = loop.run_until_complete(start())
    rx = Receiver()
    rx.watch(rx_sock)
    dest = ("127.0.0.1", rx_sock.local_port)

    async def run(datagrams, expected, n_errors):
        rx.messages.clear()
        rx.errors.clear()
        rx.echoes = 0
        observed = 0
        replies = []

        def take_replies():  # the acks must not pile up in our own receive buffer either
            while True:
                try:
                    replies.append(tx.recv(65536))
                except BlockingIOError:
                    return
        for i, d in enumerate(datagrams):
            await loop.sock_sendto(tx, d, dest)
            observed += expected[i][0] in ("ack", "message", "error")
            if i % 32 == 31:
                # Loopback UDP loses nothing while the receive buffer has room: keep it so by
                # letting the receiver take each 32 before sending more.
                for _ in range(2000):
                    if len(rx.messages) + len(rx.errors) + rx.echoes >= observed:
                        break
                    await asyncio.sleep(0.001)
                take_replies()
        want = sum(e[0] == "ack" for e in expected)
        n_messages = sum(e[0] == "message" for e in expected)
        while len(replies) < want:
            replies.append(await asyncio.wait_for(loop.sock_recv(tx, 65536), 20))
        for _ in range(1000):
            if len(rx.messages) >= n_messages and len(rx.errors) >= n_errors:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0)
        return replies

    @_settings(request, 180)
    @given(st.data())
    def check(data):
        items = batch(data)
        datagrams = [_envelope(item, seq) for seq, item in enumerate(items, 1)]
        extras = data.draw(st.lists(st.sampled_from(
            [b"", b"SIW1", b"x" * 65507, b"SIW1" + b"\x00" * 65503]), max_size=2))
        for extra in extras:
            datagrams.insert(data.draw(st.integers(0, len(datagrams))), extra)
        count[0] += len(datagrams)
        expected = [expected_outcome(d) if wire.is_envelope(d) else ("message", d)
                    for d in datagrams]
        n_errors = sum(e[0] == "error" for e in expected)
        replies = loop.run_until_complete(run(datagrams, expected, n_errors))
        acks = [wire.decode(r) for r in replies]
        want = [(e[1], e[2]) for e in expected if e[0] == "ack"]
        assert [(a.kind, a.ack_id, a.payload) for a in acks] == [(wire.KIND_ACK, *w) for w in want]
        check_receiver(rx, expected, n_errors, (1024, 1024, 0))
        assert rx_sock.ready_state == socketiwa.ReadyState.OPEN
    try:
        check()
    finally:
        loop.run_until_complete(rx_sock.close())
        tx.close()
    assert count[0] >= MIN_INPUTS, count[0]


# ---------------------------------------------------------------- every runtime, lighter
@pytest.fixture
def fuzz_seed():
    return random.randrange(2**32)


@everywhere(timeout=180)
async def test_seeded_fuzz_receive_paths(selenium, fuzz_seed):
    """The same properties on every runtime without Hypothesis (not in Pyodide): a seeded mix of
    valid acked events and hostile envelopes through a TCP server (split at random points) and
    a bound UDP socket. Every valid acked event is answered once, in order; only typed errors."""
    import asyncio
    import random
    import socketiwa
    from socketiwa import wire
    rng = random.Random(fuzz_seed)
    reserved = ("open", "message", "error", "close", "connect", "disconnect", "connection")

    def body(seq):
        r = rng.random()
        if r < 0.4:
            return wire.encode_event("echo", rng.choice((None, seq, "ü", b"\x00", [1])), ack_id=seq)
        if r < 0.5:
            return wire.encode_data(rng.randbytes(rng.randrange(40)))
        if r < 0.6:
            return wire.MAGIC + rng.randbytes(rng.randrange(20))
        if r < 0.9:
            raw = bytearray(wire.encode_event("echo", {"s": seq}, ack_id=seq))
            for _ in range(rng.randrange(1, 4)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            return bytes(raw)
        name = rng.choice((b"echo", b"error", b"x"))
        return (wire._HEAD.pack(wire.MAGIC, rng.randrange(4), rng.choice((0, 3)), rng.randrange(4))
                + bytes([len(name)]) + name + rng.randbytes(rng.randrange(8)))

    def outcome(b):
        try:
            env = wire.decode(b)
        except socketiwa.FrameError:
            return ("error",)
        if env.kind == wire.KIND_EVENT:
            if env.name in reserved:
                return ("error",)
            return ("ack", env.ack_id, env.payload) if env.name == "echo" and env.ack_id else ("none",)
        return ("message", env.payload) if env.kind == wire.KIND_DATA else ("none",)

    def receiver(sock, log):
        sock.on("error", lambda e: log["errors"].append(e))
        sock.on("message", lambda data, *r: log["messages"].append(data))
        sock.on("echo", lambda payload, *rest: rest[-1] and rest[-1](payload))

    # TCP: one framed stream, oversize and empty frames included, cut at random points
    srv = await socketiwa.create_tcp_server("127.0.0.1", 0, max_message_size=512, max_queue=16)
    log = {"errors": [], "messages": []}
    conns = []
    srv.on("connection", lambda c: (conns.append(c), receiver(c, log)))
    bodies = [body(seq) for seq in range(1, 801)]
    frames = [wire.frame(b) for b in bodies]
    for _ in range(5):
        frames.insert(rng.randrange(len(frames)), b"\x00\x00\x00\x00")
        frames.insert(rng.randrange(len(frames)), (513).to_bytes(4, "big") + b"s" * 513)
    stream = b"".join(frames)
    expected = [outcome(f[4:]) if len(f) - 4 <= 512 else ("error",) for f in frames]
    want = [(e[1], e[2]) for e in expected if e[0] == "ack"]
    client = await socketiwa.create_tcp("127.0.0.1", srv.local_port, framing="raw", no_delay=True)
    cuts = sorted(rng.sample(range(1, len(stream)), 60))
    prev = 0
    for cut in [*cuts, len(stream)]:
        await client.send(stream[prev:cut])
        prev = cut
    deframer, acks = wire.Deframer(), []
    while len(acks) < len(want):
        acks += [wire.decode(f) for f in deframer.feed(await client.receive(timeout=20))]
    assert [(a.ack_id, a.payload) for a in acks] == want
    for _ in range(500):
        if len(log["errors"]) >= sum(e[0] == "error" for e in expected):
            break
        await asyncio.sleep(0.01)
    assert all(isinstance(e, socketiwa.SocketIwaError) for e in log["errors"]), log["errors"][:3]
    assert len(log["errors"]) == sum(e[0] == "error" for e in expected)
    assert log["messages"] == [e[1] for e in expected if e[0] == "message"]
    assert conns[0].ready_state == socketiwa.ReadyState.OPEN and len(conns[0]._tasks) <= 16
    await client.close()
    await srv.close()

    # UDP: one datagram per envelope (raw, so the sender's escaping does not apply)
    rx = await socketiwa.create_udp(local_address="127.0.0.1")
    tx = await socketiwa.create_udp(local_address="127.0.0.1")
    log = {"errors": [], "messages": []}
    receiver(rx, log)
    replies = []
    tx._resolve_ack = lambda ack_id, payload: replies.append((ack_id, payload))  # record acks
    datagrams = [body(seq) for seq in range(1, 401)]
    expected = [outcome(d) if wire.is_envelope(d) else ("message", d) for d in datagrams]
    echoes = []
    rx.on("echo", lambda payload, rinfo, ack: ack and echoes.append(1))
    observed = 0
    for i, d in enumerate(datagrams):
        tx._transport.send(d, "127.0.0.1", rx.local_port)
        observed += expected[i][0] in ("ack", "message", "error")
        if i % 16 == 15:                      # loopback UDP is lossless while buffers have room
            for _ in range(1000):
                if len(log["messages"]) + len(log["errors"]) + len(echoes) >= observed:
                    break
                await asyncio.sleep(0.002)
    want = [(e[1], e[2]) for e in expected if e[0] == "ack"]
    n_errors = sum(e[0] == "error" for e in expected)
    for _ in range(1000):
        if len(replies) >= len(want) and len(log["errors"]) >= n_errors:
            break
        await asyncio.sleep(0.01)
    assert replies == want
    assert all(isinstance(e, socketiwa.SocketIwaError) for e in log["errors"]), log["errors"][:3]
    assert len(log["errors"]) == n_errors
    assert log["messages"] == [e[1] for e in expected if e[0] == "message"]
    await rx.close()
    await tx.close()
