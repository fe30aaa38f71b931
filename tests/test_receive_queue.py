"""The receive queue under receive(): a datagram is handed straight to a parked reader, read
timeouts share one timer, and a reader that gives up (timeout, cancel) loses nothing and leaves
nothing parked behind."""
from runtimes import everywhere


@everywhere
async def test_parked_readers_timeouts_and_order(selenium, udp_echo):
    import asyncio
    import socketiwa
    host, port = udp_echo
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port)
    # three readers park on the empty queue; the first gives up before anything arrives
    short = asyncio.ensure_future(sock.receive(timeout=0.2))
    first = asyncio.ensure_future(sock.receive(timeout=10))
    second = asyncio.ensure_future(sock.receive())
    try:
        await short
    except asyncio.TimeoutError:
        pass
    else:
        raise AssertionError("receive(timeout=0.2) returned with nothing sent")
    assert not first.done() and not second.done()
    await sock.send(b"one")
    await sock.send(b"two")
    got = await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert [m.data for m in got] == [b"one", b"two"]       # oldest reader first, in order
    assert got[0].rinfo.address == host and got[0].rinfo.size == 3
    # timeouts of any length, many times over: none leaves a parked reader behind
    for i in range(30):
        try:
            await sock.receive(timeout=0.001 * (i % 3))
        except asyncio.TimeoutError:
            pass
    assert len(sock._queue._waiters) == 0
    await sock.send(b"after")
    assert (await sock.receive(timeout=5)).data == b"after"
    await sock.close()


@everywhere
async def test_cancelled_reader_loses_nothing(selenium, udp_echo):
    import asyncio
    import socketiwa
    host, port = udp_echo
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port)
    # cancelled while parked, many times (asyncio.wait_for cancels the inner receive)
    for _ in range(20):
        try:
            await asyncio.wait_for(sock.receive(), 0.001)
        except asyncio.TimeoutError:
            pass
    assert len(sock._queue._waiters) == 0
    # cancelled after a datagram was handed to it, before it ran: the datagram goes back to
    # the front of the queue for the next reader. (The backend's sink is called directly so the
    # cancel lands in that window on every runtime.)
    reader = asyncio.ensure_future(sock.receive())
    await asyncio.sleep(0)                      # parked
    assert len(sock._queue._waiters) == 1
    sock._datagram_received(b"first", host, port)
    sock._datagram_received(b"second", host, port)
    reader.cancel()
    try:
        await reader
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancelled reader returned")
    got = [(await sock.receive(timeout=5)).data for _ in range(2)]
    assert got == [b"first", b"second"]
    await sock.send(b"third")                   # and the socket goes on
    await sock.send(b"fourth")
    got = [(await sock.receive(timeout=5)).data for _ in range(2)]
    assert got == [b"third", b"fourth"]
    await sock.close()
    # queued datagrams stay readable after close; then the end
    try:
        await sock.receive(timeout=1)
    except socketiwa.SocketClosedError:
        pass
    else:
        raise AssertionError("receive() after close and an empty queue returned")
