"""TCP client: raw and framed echo, 10 MB transfers, options, failures."""
import hashlib
import os
import random

import pytest
from runtimes import everywhere


@pytest.fixture(scope="module")
def ten_mb():
    """(seed, size, sha256): the body regenerates the bytes from the seed, so 10 MB never has to
    travel through the test runner's own channel; the host computes the digest independently."""
    seed, size = int.from_bytes(os.urandom(4), "big"), 10 * 1024 * 1024
    return seed, size, hashlib.sha256(random.Random(seed).randbytes(size)).hexdigest()


@everywhere(timeout=60)
async def test_tcp_raw_echo_10mb(selenium, tcp_echo, ten_mb):
    import asyncio
    import hashlib
    import socketiwa
    import random
    host, port = tcp_echo
    seed, size, digest = ten_mb
    data = random.Random(seed).randbytes(size)
    sock = await socketiwa.create_tcp(host, port, framing="raw", no_delay=True)
    assert sock.ready_state == socketiwa.ReadyState.OPEN
    assert (sock.remote_address, sock.remote_port) == (host, port) and sock.local_port > 0

    async def writer():
        for i in range(0, len(data), 256 * 1024):
            await sock.send(data[i:i + 256 * 1024])
    task = asyncio.ensure_future(writer())
    h = hashlib.sha256()
    n = 0
    async for chunk in sock:
        h.update(chunk)
        n += len(chunk)
        if n >= len(data):
            break
    await task
    assert n == len(data)
    assert h.hexdigest() == digest
    await sock.close()
    assert sock.ready_state == socketiwa.ReadyState.CLOSED


@everywhere(timeout=120)
async def test_tcp_framed_echo_keeps_message_boundaries(selenium, tcp_echo, ten_mb):
    """A plain echo server returns our frames; messages arrive whole, in order, 10 MB included."""
    import hashlib
    import socketiwa
    import random
    host, port = tcp_echo
    seed, size, digest = ten_mb
    data = random.Random(seed).randbytes(size)
    sock = await socketiwa.create_tcp(host, port)
    sizes = [0, 1, 3, 1000, 65536, 70001]
    for s in sizes:
        await sock.send(bytes([s % 251]) * s)
    await sock.send(data)
    for s in sizes:
        assert await sock.receive(timeout=10) == bytes([s % 251]) * s
    big = await sock.receive(timeout=60)
    assert len(big) == len(data) and hashlib.sha256(big).hexdigest() == digest
    await sock.close()


@everywhere
async def test_tcp_connect_refused_is_typed(selenium, closed_port):
    import socketiwa
    try:
        await socketiwa.create_tcp("127.0.0.1", closed_port)
    except socketiwa.ConnectError as e:
        assert isinstance(e, ConnectionError)
    else:
        raise AssertionError("connect to a closed port succeeded")


@everywhere
async def test_tcp_options_and_bad_input(selenium, tcp_echo):
    import socketiwa
    host, port = tcp_echo
    for kwargs in (dict(keep_alive_delay=10), dict(framing="lines"), dict(dns_query_type="x")):
        try:
            await socketiwa.create_tcp(host, port, **kwargs)
        except socketiwa.InvalidOptionError:
            continue
        raise AssertionError(f"{kwargs} accepted")
    for bad_port in (0, 65536, "80"):
        try:
            await socketiwa.create_tcp(host, bad_port)
        except socketiwa.InvalidOptionError:
            continue
        raise AssertionError(f"port {bad_port!r} accepted")
    sock = await socketiwa.create_tcp(host, port, no_delay=True, keep_alive_delay=2000,
                                      send_buffer_size=65536, receive_buffer_size=65536,
                                      max_message_size=1024)
    try:
        await sock.send(b"x" * 2048)
    except socketiwa.MessageTooLargeError:
        pass
    else:
        raise AssertionError("oversize message accepted")
    try:
        await sock.send(12345)
    except TypeError:
        pass
    else:
        raise AssertionError("int accepted as data")
    await sock.send(b"fine")
    assert await sock.receive(timeout=5) == b"fine"
    raw = await socketiwa.create_tcp(host, port, framing="raw")
    try:
        await raw.emit("event", 1)
    except socketiwa.NotSupportedError:
        pass
    else:
        raise AssertionError("emit on a raw connection accepted")
    await raw.close()
    await sock.close()
    try:
        await sock.send(b"late")
    except socketiwa.SocketClosedError:
        pass
    else:
        raise AssertionError("send after close accepted")


@everywhere
async def test_tcp_disconnect_and_close_events(selenium, event_server):
    import asyncio
    import socketiwa
    host, port = event_server
    sock = socketiwa.TCPSocket(host, port)
    seen = []
    for name in ("open", "connect", "disconnect", "close"):
        sock.on(name, lambda name=name: seen.append(name))
    await sock.open()
    assert seen == ["open", "connect"]
    await sock.close()
    await asyncio.wait_for(sock.wait_closed(), 5)
    assert seen[-1] == "close" and "disconnect" not in seen   # we closed: not a disconnect
    assert sock.closed


@everywhere(timeout=90)
async def test_tcp_backpressure_bounded_queue_nothing_lost(selenium):
    """A reader that stalls: its queue stays within max_queue, the sender is held back by TCP
    flow control, and once the reader resumes every message arrives, in order."""
    import asyncio
    import socketiwa
    srv = await socketiwa.create_tcp_server("127.0.0.1", 0, max_queue=4)
    conns = []
    srv.on("connection", conns.append)
    client = await socketiwa.create_tcp("127.0.0.1", srv.local_port)
    # 32 MB: more than every buffer on the way holds (socketiwa's ~3 MB plus the kernel's
    # loopback buffers, about 11 MB in the IWA here), so a finished producer means no backpressure.
    count, size = 8000, 4096

    async def produce():
        for i in range(count):
            await client.send(i.to_bytes(4, "big") + b"z" * (size - 4))
    producer = asyncio.ensure_future(produce())
    while not conns:
        await asyncio.sleep(0.01)
    conn = conns[0]
    await asyncio.sleep(0.5)                     # the reader stalls
    assert conn._queue.qsize() <= 4
    assert not producer.done(), "32 MB went through a stalled reader: no backpressure"
    for i in range(count):
        msg = await conn.receive(timeout=10)
        assert int.from_bytes(msg[:4], "big") == i and len(msg) == size
    await asyncio.wait_for(producer, 10)
    await client.close()
    await srv.close()


@everywhere
async def test_udp_unreachable_peer_gives_typed_error(selenium, closed_port):
    """Connected UDP to a port nobody listens on. The OS (native backend) reports ICMP
    port-unreachable: a typed error event, the socket still usable. Chromium's Direct Sockets
    report nothing (the datagrams are lost, as UDP allows): no error, the socket stays open."""
    import asyncio
    import socketiwa
    sock = await socketiwa.create_udp(remote_address="127.0.0.1", remote_port=closed_port)
    errors = []
    sock.on("error", errors.append)
    for _ in range(50):
        if errors or sock.closed:
            break
        try:
            await sock.send(b"anyone?")
        except socketiwa.SocketIwaError as e:
            errors.append(e)
            break
        await asyncio.sleep(0.02)
    if socketiwa.backend_name() == "directsockets":
        assert not errors and not sock.closed, errors
        await sock.send(b"still usable")
        await sock.close()
        return
    assert errors, "no error for an unreachable UDP peer"
    assert all(isinstance(e, (socketiwa.SocketIwaError, ConnectionError)) for e in errors), errors
    if not sock.closed:
        await sock.send(b"still usable")   # no exception: the socket survived
    await sock.close()
    assert sock.ready_state == socketiwa.ReadyState.CLOSED
