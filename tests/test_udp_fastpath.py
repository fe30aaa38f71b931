"""UDPSocket's written-out common paths (plain datagram in, plain send out with the default
codec) give exactly what the general path gives: the same Datagram/RemoteInfo, envelope-magic
data still wrapped and unwrapped, the bounded queue and backlog order kept, nothing after close;
and a callback that raises reaches the loop's exception handler as asyncio reports it."""
from runtimes import everywhere


@everywhere
async def test_plain_datagrams_same_as_general_path(selenium, udp_echo):
    import asyncio
    import socketiwa
    from socketiwa import Datagram, RemoteInfo
    host, port = udp_echo
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port)
    # raw bytes, data that starts with the envelope magic (sent wrapped, must come back as
    # sent), a bytearray (not the bytes fast path), the largest datagram
    payloads = [b"plain", b"SIW1 not an envelope", bytearray(b"from a bytearray"), b"z" * 9000]
    for data in payloads:
        await sock.send(data)
        got = await sock.receive(timeout=5)
        assert type(got) is Datagram and type(got.rinfo) is RemoteInfo
        assert got.data == bytes(data) and type(got.data) is bytes
        assert got.rinfo == RemoteInfo(host, port, len(data), "IPv4")
        assert (got.rinfo.address, got.rinfo.port, got.rinfo.size, got.rinfo.family) == \
            (host, port, len(data), "IPv4")
    # what a message handler gets (the general path) equals what receive() got
    seen = []
    sock.on("message", lambda data, rinfo: seen.append((data, rinfo)))
    await sock.send(b"handled")
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.02)
    assert seen == [(b"handled", RemoteInfo(host, port, 7, "IPv4"))]
    # a reader that iterates gets it queued as well (receive() made the socket iterate)
    assert await sock.receive(timeout=5) == Datagram(b"handled", RemoteInfo(host, port, 7, "IPv4"))
    # a sender address with a colon is IPv6, as the general path says
    sock.off("message")
    sock._datagram_received(b"six", "::1", 4242)
    got = await sock.receive(timeout=5)
    assert got.rinfo == RemoteInfo("::1", 4242, 3, "IPv6")
    # the same errors as before for what cannot be sent
    for bad, error in ((b"", socketiwa.NotSupportedError), (b"x" * 65508, socketiwa.MessageTooLargeError)):
        try:
            await sock.send(bad)
        except error:
            pass
        else:
            raise AssertionError(f"send of {len(bad)} bytes did not raise {error.__name__}")
    await sock.close()
    try:
        await sock.send(b"late")
    except socketiwa.SocketClosedError:
        pass
    else:
        raise AssertionError("send after close did not raise")


@everywhere
async def test_bounded_queue_backlog_order_and_close(selenium, udp_echo):
    import socketiwa
    host, port = udp_echo
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port, max_queue=2)
    feed = sock._datagram_received          # the backend's sink, called directly
    for i in range(5):
        feed(b"d%d" % i, host, port)
    # two queued, two held in the backlog, the fifth dropped (as the kernel would)
    assert sock._queue.qsize() == 2 and len(sock._backlog) == 2 and sock.dropped == 1
    first = await sock.receive(timeout=5)    # makes room: the backlog moves up, in order
    feed(b"late", host, port)                # must not overtake what waited in the backlog
    got = [first.data] + [(await sock.receive(timeout=5)).data for _ in range(4)]
    assert got == [b"d0", b"d1", b"d2", b"d3", b"late"]
    # an envelope with a bad body still goes the general way: an error event, nothing queued
    errors = []
    sock.on("error", errors.append)
    feed(b"SIW1\xff\xff", host, port)
    assert len(errors) == 1 and sock._queue.qsize() == 0
    feed(b"kept", host, port)
    await sock.close()
    feed(b"after close", host, port)         # receiving stopped: nothing new is queued
    assert (await sock.receive(timeout=5)).data == b"kept"
    try:
        await sock.receive(timeout=1)
    except socketiwa.SocketClosedError:
        pass
    else:
        raise AssertionError("a datagram fed after close was queued")


@everywhere
async def test_raising_callback_reaches_exception_handler(selenium):
    import asyncio
    from socketiwa._webloop import adapt_webloop
    loop = asyncio.get_running_loop()
    adapt_webloop(loop)   # Pyodide: socketiwa's drain runs the callbacks (elsewhere: "off")
    reported = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))
    try:
        ran = []

        def boom(arg):
            raise ValueError(arg)

        loop.call_soon(ran.append, 1)
        handle = loop.call_soon(boom, "bad callback")
        loop.call_soon(ran.append, 2)
        cancelled = loop.call_soon(ran.append, "cancelled")
        cancelled.cancel()
        for _ in range(50):
            if len(ran) == 2:
                break
            await asyncio.sleep(0.01)
        assert ran == [1, 2]                 # the one that raised did not stop the others
        assert len(reported) == 1
        ctx = reported[0]
        assert ctx["message"].startswith("Exception in callback") and "boom" in ctx["message"]
        assert type(ctx["exception"]) is ValueError and ctx["exception"].args == ("bad callback",)
        assert ctx["handle"] is handle
    finally:
        loop.set_exception_handler(old)
