"""UDP: connected and bound modes, dgram-style send overloads, bad input."""
import socket
import threading

import pytest
from runtimes import everywhere


@everywhere
async def test_udp_connected_echo(selenium, udp_echo):
    import socketiwa
    host, port = udp_echo
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port)
    assert sock.ready_state == socketiwa.ReadyState.OPEN
    assert sock.remote_address == host and sock.remote_port == port
    assert sock.local_port > 0
    for i in range(5):
        await sock.send(f"ping-{i}".encode())
        msg = await sock.receive(timeout=5)
        assert msg.data == f"ping-{i}".encode()
        assert (msg.rinfo.address, msg.rinfo.port, msg.rinfo.size) == (host, port, len(msg.data))
    await sock.close()
    assert sock.ready_state == socketiwa.ReadyState.CLOSED


@everywhere
async def test_udp_bound_echo_and_send_overloads(selenium, udp_echo):
    import asyncio
    import socketiwa
    host, port = udp_echo
    sock = await socketiwa.create_udp(local_address="127.0.0.1", local_port=0)
    assert sock.local_address == "127.0.0.1" and sock.local_port > 0
    got = []
    seen = asyncio.Event()

    def on_message(data, rinfo):
        got.append((data, rinfo.address, rinfo.port, rinfo.size))
        if len(got) == 3:
            seen.set()
    sock.on("message", on_message)
    await sock.send(b"one", port, host)
    await sock.send(b"xxtwoxx", 2, 3, port, host)           # offset/length overload
    await sock.send("three", port=port, address=host)       # keywords and str
    await asyncio.wait_for(seen.wait(), 5)
    assert sorted(g[0] for g in got) == [b"one", b"three", b"two"]
    assert all(g[1:3] == (host, port) and g[3] == len(g[0]) for g in got)
    # bad overload arguments are rejected before anything is sent
    for bad in [(b"abc", 2, 5, port, host), (b"abc", -1, 1, port, host)]:
        try:
            await sock.send(*bad)
        except socketiwa.InvalidOptionError:
            pass
        else:
            raise AssertionError(f"send{bad[1:3]} was accepted")
    try:
        await sock.send(b"no destination")
    except socketiwa.InvalidOptionError:
        pass
    else:
        raise AssertionError("bound send without destination was accepted")
    await sock.send(b"still usable", port, host)
    assert (await sock.receive(timeout=5)).data == b"still usable"
    await sock.close()


@everywhere
async def test_udp_between_two_sockets_window(selenium):
    """32 datagrams in flight between two of our own sockets, nothing lost on loopback."""
    import socketiwa
    a = await socketiwa.create_udp(local_address="127.0.0.1")
    b = await socketiwa.create_udp(remote_address="127.0.0.1", remote_port=a.local_port)
    payloads = [bytes([i]) * (i + 1) for i in range(32)]
    for p in payloads:
        await b.send(p)
    received = []
    for _ in payloads:
        msg = await a.receive(timeout=5)
        received.append(msg.data)
        assert msg.rinfo.port == b.local_port
    assert sorted(received) == sorted(payloads)
    await a.close()
    await b.close()


@everywhere
async def test_udp_invalid_options_and_closed_socket(selenium, udp_echo):
    import socketiwa
    host, port = udp_echo
    bad_options = [
        dict(remote_address=host),                                   # port missing
        dict(remote_address=host, remote_port=0),                    # port out of range
        dict(remote_address=host, remote_port=port, local_address="127.0.0.1"),
        dict(),                                                      # neither mode
        dict(local_address="127.0.0.1", local_port=70000),
        dict(remote_address=host, remote_port=port, dns_query_type="ipv5"),
    ]
    for opts in bad_options:
        try:
            await socketiwa.create_udp(**opts)
        except socketiwa.InvalidOptionError:
            continue
        raise AssertionError(f"create_udp({opts}) was accepted")
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port)
    try:
        await sock.send(b"x" * 70000)
    except socketiwa.MessageTooLargeError:
        pass
    else:
        raise AssertionError("oversize datagram was accepted")
    await sock.send(b"after oversize")
    assert (await sock.receive(timeout=5)).data == b"after oversize"
    await sock.close()
    try:
        await sock.send(b"late")
    except socketiwa.SocketClosedError:
        pass
    else:
        raise AssertionError("send after close was accepted")
    # iteration ends cleanly after close
    assert [m async for m in sock] == []


@everywhere
async def test_udp_garbage_datagrams_are_reported_not_fatal(selenium):
    """Malformed envelopes give a typed FrameError event; the socket keeps working."""
    import asyncio
    import socketiwa
    rx = await socketiwa.create_udp(local_address="127.0.0.1")
    tx = await socketiwa.create_udp(local_address="127.0.0.1")
    errors = []
    rx.on("error", lambda exc: errors.append(exc))
    events = []
    rx.on("greet", lambda payload, rinfo: events.append((payload, rinfo.port)))
    # raw bytes beginning with the envelope magic travel intact (escaped by the sender)
    await tx.send(b"SIW1 not an envelope", rx.local_port, "127.0.0.1")
    msg = await rx.receive(timeout=5)
    assert msg.data == b"SIW1 not an envelope"
    # hand-made broken envelopes: truncated header, unknown kind, bad JSON
    for garbage in (b"SIW1\x01", b"SIW1\x09\x00\x00\x00\x00\x00", b"SIW1\x01\x00\x00\x00\x00\x01\x02hi{oops"):
        tx._transport.send(garbage, "127.0.0.1", rx.local_port)
    await tx.emit("greet", {"n": 1}, port=rx.local_port, address="127.0.0.1")
    for _ in range(100):
        if events and len(errors) == 3:
            break
        await asyncio.sleep(0.02)
    assert events == [({"n": 1}, tx.local_port)]
    assert len(errors) == 3 and all(isinstance(e, socketiwa.FrameError) for e in errors)
    assert errors[0].data == b"SIW1\x01"
    await tx.send(b"ok", rx.local_port, "127.0.0.1")
    assert (await rx.receive(timeout=5)).data == b"ok"
    await rx.close()
    await tx.close()


@pytest.fixture
def empty_replier():
    """A plain UDP socket that answers each datagram with an empty one, then b"after"."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                _, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            sock.sendto(b"", addr)
            sock.sendto(b"after", addr)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(2)
    sock.close()


@everywhere
async def test_udp_empty_datagrams(selenium, empty_replier):
    """Receiving an empty datagram gives b"" (size 0) on every runtime. Sending one raises
    NotSupportedError on every runtime: Chromium refuses it ("UDPMessage: 'data' field must not
    be empty") and its writable stream is then dead, and CPython's asyncio before 3.13 dropped it
    silently. The socket stays usable."""
    import socketiwa
    sock = await socketiwa.create_udp(remote_address="127.0.0.1", remote_port=empty_replier)
    for empty in (b"", bytearray(), "", memoryview(b"")):
        try:
            await sock.send(empty)
        except socketiwa.NotSupportedError:
            pass
        else:
            raise AssertionError("an empty datagram was accepted")
    await sock.send(b"ping")                       # still usable
    first = await sock.receive(timeout=5)
    assert first.data == b"" and first.rinfo.size == 0 and first.rinfo.port == empty_replier
    assert (await sock.receive(timeout=5)).data == b"after"
    bound = await socketiwa.create_udp(local_address="127.0.0.1")
    try:
        await bound.send(b"xx", 1, 0, empty_replier, "127.0.0.1")   # empty by offset/length
    except socketiwa.NotSupportedError:
        pass
    else:
        raise AssertionError("an empty datagram was accepted")
    await sock.close()
    await bound.close()


@everywhere
async def test_connected_udp_send_with_offset_and_length(selenium):
    """Connected sockets take send(data, offset, length) (Node dgram's form); the
    five-argument form naming the connected peer works too; bad ranges are typed errors."""
    import socketiwa
    rx = await socketiwa.create_udp(local_address="127.0.0.1")
    tx = await socketiwa.create_udp(remote_address="127.0.0.1", remote_port=rx.local_port)
    await tx.send(b"xxhelloxx", 2, 5)
    assert (await rx.receive(timeout=5)).data == b"hello"
    await tx.send("..str..", 2, 3)
    assert (await rx.receive(timeout=5)).data == b"str"
    await tx.send(b"abcdef", 1, 2, rx.local_port, "127.0.0.1")
    assert (await rx.receive(timeout=5)).data == b"bc"
    await tx.send(b"whole", rx.local_port, "127.0.0.1")       # (port, address) still works
    assert (await rx.receive(timeout=5)).data == b"whole"
    for offset, length in ((4, 5), (-1, 2), (0, 10), (True, 1)):
        try:
            await tx.send(b"short", offset, length)
        except socketiwa.InvalidOptionError:
            pass
        else:
            raise AssertionError(f"send(data, {offset}, {length}) accepted")
    try:
        await tx.send(b"xx", 0, 2, rx.local_port + 1, "127.0.0.1")
    except socketiwa.InvalidOptionError:
        pass
    else:
        raise AssertionError("a connected socket sent elsewhere")
    await rx.close()
    await tx.close()
