"""Event envelopes and acks over TCP and UDP, split frames, ack timeouts, malformed frames."""
from runtimes import everywhere


@everywhere
async def test_wire_roundtrip_and_deframer_every_split(selenium):
    """Every byte boundary of a two-frame stream yields the same whole messages."""
    from socketiwa import wire
    frames = [wire.frame(wire.encode_event("ev", {"k": [1, 2, "ü"]}, ack_id=7)),
              wire.frame(wire.encode_data(b"\x00" * 50)), wire.frame(wire.encode_ack(7, b"bin"))]
    stream = b"".join(frames)
    expected = [f[4:] for f in frames]
    for cut in range(1, len(stream)):
        d = wire.Deframer()
        out = d.feed(stream[:cut]) + d.feed(stream[cut:])
        assert out == expected, cut
        assert d.buffered == 0
    d = wire.Deframer()
    out = []
    for b in stream:                      # one byte at a time
        out += d.feed(bytes([b]))
    assert out == expected
    env = wire.decode(expected[0])
    assert (env.kind, env.ack_id, env.name, env.payload) == (wire.KIND_EVENT, 7, "ev", {"k": [1, 2, "ü"]})
    assert wire.decode(expected[2]).payload == b"bin"


@everywhere
async def test_deframer_skips_oversize_frame_and_stays_in_sync(selenium):
    import socketiwa
    from socketiwa import wire
    d = wire.Deframer(max_message=100)
    big = wire.frame(wire.encode_data(b"x" * 500), max_message=1000)
    ok = wire.frame(wire.encode_data(b"after"))
    out = []
    for i in range(0, len(big + ok), 7):
        out += d.feed((big + ok)[i:i + 7])
    assert isinstance(out[0], socketiwa.MessageTooLargeError)
    assert wire.decode(out[1]).payload == b"after" and len(out) == 2


@everywhere
async def test_tcp_events_and_acks_with_cpython_server(selenium, event_server):
    import socketiwa
    host, port = event_server
    sock = await socketiwa.create_tcp(host, port)
    assert await sock.emit_with_ack("echo", {"a": 1, "b": [True, None]}, timeout=5) == {"a": 1, "b": [True, None]}
    assert await sock.emit_with_ack("echo", b"\x00\xffbinary", timeout=5) == b"\x00\xffbinary"
    assert await sock.emit_with_ack("echo", None, timeout=5) is None
    # many acks in flight at once, each answered with its own payload
    import asyncio
    answers = await asyncio.gather(*(sock.emit_with_ack("echo", i, timeout=5) for i in range(50)))
    assert answers == list(range(50))
    try:
        await sock.emit_with_ack("slow", 1, timeout=0.3)
    except socketiwa.AckTimeoutError as e:
        assert isinstance(e, TimeoutError)
    else:
        raise AssertionError("ack timeout not raised")
    try:
        await sock.emit("message", b"x")
    except ValueError:
        pass
    else:
        raise AssertionError("reserved event name accepted")
    # still usable after the timeout
    assert await sock.emit_with_ack("echo", "again", timeout=5) == "again"
    await sock.close()


@everywhere
async def test_tcp_event_frames_split_at_every_byte_boundary(selenium, event_server):
    """A raw client writes an event frame in two pieces cut at every position; each is acked."""
    import asyncio
    import socketiwa
    from socketiwa import wire
    host, port = event_server
    raw = await socketiwa.create_tcp(host, port, framing="raw", no_delay=True)
    frame_for = lambda i: wire.frame(wire.encode_event("echo", {"i": i, "pad": "x" * 20}, ack_id=i + 1))
    n = len(frame_for(0))
    deframer = wire.Deframer()
    acks = []
    for cut in range(1, n):
        f = frame_for(cut)
        await raw.send(f[:cut])
        await asyncio.sleep(0.002)   # let the first piece leave on its own
        await raw.send(f[cut:])
    while len(acks) < n - 1:
        chunk = await raw.receive(timeout=10)
        acks += [wire.decode(x) for x in deframer.feed(chunk)]
    assert [(a.kind, a.ack_id, a.payload["i"]) for a in acks] == [(wire.KIND_ACK, c + 1, c) for c in range(1, n)]
    await raw.close()


@everywhere
async def test_tcp_malformed_frames_reported_connection_survives(selenium):
    import asyncio
    import socketiwa
    from socketiwa import wire
    srv = await socketiwa.create_tcp_server("127.0.0.1", 0, max_message_size=1000)
    errors, events = [], []
    conns = []

    def on_connection(conn):
        conns.append(conn)
        conn.on("error", errors.append)
        conn.on("ping", lambda payload, ack: (events.append(payload), ack(payload)))
    srv.on("connection", on_connection)
    raw = await socketiwa.create_tcp("127.0.0.1", srv.local_port, framing="raw")
    await raw.send(wire.frame(b"garbage-without-magic"))
    await raw.send(wire.frame(b"SIW1\x01\x00\x00\x00\x00\x01\x00"))     # event with empty name
    await raw.send(wire.frame(wire.encode_data(b"y" * 5000), max_message=10**6))  # oversize
    client = await socketiwa.create_tcp("127.0.0.1", srv.local_port)
    await raw.send(wire.frame(wire.encode_event("ping", 1, ack_id=9)))
    deframer = wire.Deframer()
    got = []
    while not got:
        got = deframer.feed(await raw.receive(timeout=5))
    assert wire.decode(got[0]).ack_id == 9 and events == [1]
    kinds = [type(e) for e in errors]
    assert kinds == [socketiwa.FrameError, socketiwa.FrameError, socketiwa.MessageTooLargeError], kinds
    assert conns[0].ready_state == socketiwa.ReadyState.OPEN
    await client.close()
    await raw.close()
    await asyncio.wait_for(srv.close(), 5)


@everywhere
async def test_udp_events_and_acks_with_cpython_peer(selenium, udp_event_peer):
    import socketiwa
    host, port = udp_event_peer
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port)
    reply = await sock.emit_with_ack("echo", {"x": 1}, timeout=5)
    assert reply == {"echo": {"x": 1}, "from_port": sock.local_port}
    bound = await socketiwa.create_udp(local_address="127.0.0.1")
    reply = await bound.emit_with_ack("echo", [1, 2], timeout=5, port=port, address=host)
    assert reply["echo"] == [1, 2] and reply["from_port"] == bound.local_port
    try:
        await sock.emit_with_ack("nobody-acks-this", 1, timeout=0.3)
    except socketiwa.AckTimeoutError:
        pass
    else:
        raise AssertionError("ack timeout not raised")
    await sock.send(b"plain")
    assert (await sock.receive(timeout=5)).data == b"plain"
    await sock.close()
    await bound.close()


@everywhere
async def test_on_and_once_with_the_same_function(selenium):
    """Firing a once() registration removes that entry only, not an on() of the same function."""
    from socketiwa.events import EventEmitter
    em = EventEmitter()
    calls = []

    def f(x):
        calls.append(x)
    em.on("ev", f)
    em.once("ev", f)
    em._dispatch("ev", 1)
    assert calls == [1, 1] and em.listener_count("ev") == 1
    em._dispatch("ev", 2)
    em._dispatch("ev", 3)
    assert calls == [1, 1, 2, 3]
    em.once("ev", f)                      # once registered after on: the same
    em._dispatch("ev", 4)
    em._dispatch("ev", 5)
    assert calls == [1, 1, 2, 3, 4, 4, 5]
    em.once("x", f)
    em.once("x", f)                       # two once() entries: each fires once
    em._dispatch("x", 6)
    em._dispatch("x", 7)
    assert calls[-2:] == [6, 6] and em.listener_count("x") == 0
    em.off("ev", f)
    em._dispatch("ev", 8)
    assert calls[-1] == 6


@everywhere(timeout=90)
async def test_events_and_acks_with_several_arguments(selenium):
    """emit(event, *args) and ack(*args) carry any number of arguments (bytes and JSON mixed)
    over TCP and UDP; one argument keeps the single-payload form, none arrives as None."""
    import asyncio
    import socketiwa
    srv = await socketiwa.create_tcp_server("127.0.0.1", 0)
    seen = []

    def on_connection(conn):
        conn.on("sum", lambda a, b, c, ack: ack(a + b + c, "done"))
        conn.on("echo", lambda *args: args[-1](*args[:-1]))
        conn.on("nothing", lambda payload, ack: ack())
        conn.on("note", lambda *args: seen.append(args))
    srv.on("connection", on_connection)
    client = await socketiwa.create_tcp("127.0.0.1", srv.local_port)
    assert await client.emit_with_ack("sum", 1, 2, 3, timeout=5) == (6, "done")
    assert await client.emit_with_ack("echo", b"\x00bin", {"k": [1]}, None, timeout=5) == \
        (b"\x00bin", {"k": [1]}, None)
    assert await client.emit_with_ack("echo", [1, 2], timeout=5) == [1, 2]   # one argument
    assert await client.emit_with_ack("nothing", timeout=5) is None
    await client.emit("note", "a", 2)
    await client.emit("note")
    for _ in range(250):
        if len(seen) == 2:
            break
        await asyncio.sleep(0.02)
    assert seen == [("a", 2, None), (None, None)]          # (*args, ack): no ack wanted
    await client.close()
    await srv.close()

    rx = await socketiwa.create_udp(local_address="127.0.0.1")
    tx = await socketiwa.create_udp(remote_address="127.0.0.1", remote_port=rx.local_port)
    rx.on("pair", lambda a, b, rinfo, ack: ack(b, a, rinfo.port))
    assert await tx.emit_with_ack("pair", "x", b"y", timeout=5) == (b"y", "x", tx.local_port)
    await rx.close()
    await tx.close()


@everywhere(timeout=60)
async def test_close_code_and_reason_reach_both_sides(selenium):
    """close(code, reason) on a framed TCP connection: our close handlers and the peer's
    disconnect and close handlers (and its server's disconnect) get CloseInfo(code, reason).
    A plain close() sends nothing new: 1000 here, 1005 (no status) at the peer. UDP: local."""
    import asyncio
    import socketiwa
    srv = await socketiwa.create_tcp_server("127.0.0.1", 0)
    server_side, server_level = [], []
    conns = []

    def on_connection(conn):
        conns.append(conn)
        conn.on("disconnect", lambda info: server_side.append(("disconnect", info.code, info.reason)))
        conn.on("close", lambda info: server_side.append(("close", info["code"], info["reason"])))
    srv.on("connection", on_connection)
    srv.on("disconnect", lambda conn, info: server_level.append((conn in conns, info.code)))

    client = await socketiwa.create_tcp("127.0.0.1", srv.local_port)
    mine = []
    client.on("close", lambda info: mine.append(info))
    client.on("disconnect", lambda info: mine.append(("disconnect?", info)))
    while not conns:
        await asyncio.sleep(0.01)
    await client.close(4000, "bye now")
    assert mine == [socketiwa.CloseInfo(4000, "bye now")] and client.close_info.code == 4000
    await asyncio.wait_for(conns[0].wait_closed(), 10)
    assert server_side == [("disconnect", 4000, "bye now"), ("close", 4000, "bye now")]
    assert server_level == [(True, 4000)]

    server_side.clear()
    client = await socketiwa.create_tcp("127.0.0.1", srv.local_port)
    while len(conns) < 2:
        await asyncio.sleep(0.01)
    await client.close()
    assert client.close_info == socketiwa.CloseInfo(1000, "")
    await asyncio.wait_for(conns[1].wait_closed(), 10)
    assert server_side == [("disconnect", 1005, ""), ("close", 1005, "")]
    # the server closes its side with a code: the client's disconnect says so
    client = await socketiwa.create_tcp("127.0.0.1", srv.local_port)
    got = []
    client.on("disconnect", lambda info: got.append(info))
    while len(conns) < 3:
        await asyncio.sleep(0.01)
    await conns[2].close(4100, "server says go")
    await asyncio.wait_for(client.wait_closed(), 10)
    assert got == [socketiwa.CloseInfo(4100, "server says go")]
    try:
        await socketiwa.TCPSocket("127.0.0.1", srv.local_port).close(70000)
    except ValueError:
        pass
    else:
        raise AssertionError("close code out of range accepted")
    await srv.close()

    udp = await socketiwa.create_udp(local_address="127.0.0.1")
    closes = []
    udp.on("close", closes.append)
    await udp.close(4001, "done")
    assert closes == [socketiwa.CloseInfo(4001, "done")]
