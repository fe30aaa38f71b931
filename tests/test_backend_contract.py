"""The backend push interface (backends/base.py) held to its rules directly, on every runtime:
sinks get what arrives, pause_reading stops delivery and resume_reading restarts it, an exception
in a sink goes to the loop's exception handler and delivery goes on, connection_lost comes
exactly once and last, writes never block."""
from runtimes import everywhere


@everywhere(timeout=60)
async def test_udp_backend_pushes_pauses_and_survives_a_failing_sink(selenium):
    import asyncio
    from socketiwa.backends import get_backend
    from socketiwa.backends.base import UdpOptions
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda loop, ctx: reported.append(ctx.get("exception")))
    backend = get_backend()
    rx = await backend.open_udp(UdpOptions(local_address="127.0.0.1", local_port=0))
    tx = await backend.open_udp(UdpOptions(local_address="127.0.0.1", local_port=0))
    got, lost = [], []

    class Sink:
        def datagram_received(self, data, address, port):
            if self is not receiver:
                return
            got.append((data, address, port))
            if data == b"boom":
                raise RuntimeError("sink failed")

        def error_received(self, exc):
            got.append(("error", exc))

        def pause_writing(self):
            pass

        def resume_writing(self):
            pass

        def connection_lost(self, exc):
            if self is receiver:
                lost.append(exc)
    receiver = Sink()
    rx.start(receiver)
    tx.start(Sink())          # base.py: every transport is started right after open
    dest = ("127.0.0.1", rx.endpoints.local_port)

    async def wait_for(n):
        for _ in range(250):
            if len(got) >= n:
                return
            await asyncio.sleep(0.02)
    tx.send(b"boom", *dest)
    tx.send(b"after", *dest)
    await wait_for(2)
    assert [g[0] for g in got] == [b"boom", b"after"], got
    assert got[0][1:] == ("127.0.0.1", tx.endpoints.local_port), got
    assert len(reported) == 1 and isinstance(reported[0], RuntimeError), reported
    rx.pause_reading()
    await asyncio.sleep(0.1)                  # anything in flight before the pause lands
    before = len(got)
    tx.send(b"while paused", *dest)
    await asyncio.sleep(0.3)
    assert len(got) == before, got            # held by the platform, not delivered
    rx.resume_reading()
    await wait_for(before + 1)
    assert got[-1][0] == b"while paused"
    assert tx.get_write_buffer_size() >= 0
    await rx.close()
    await asyncio.sleep(0.1)
    await rx.close()                           # twice: still one connection_lost
    await asyncio.sleep(0.1)
    assert lost == [None], lost
    try:
        rx.send(b"x", *dest)
    except Exception as exc:                  # SocketClosedError after close
        assert type(exc).__name__ == "SocketClosedError", exc
    else:
        raise AssertionError("send after close accepted")
    await tx.close()


@everywhere(timeout=60)
async def test_stream_backend_pushes_data_eof_and_one_connection_lost(selenium):
    import asyncio
    from socketiwa.backends import get_backend
    from socketiwa.backends.base import TcpOptions
    backend = get_backend()
    server = await backend.open_tcp_server("127.0.0.1", 0, None, None)
    accepted = []

    class Accept:
        def connection_made(self, stream):
            accepted.append(stream)

        def connection_lost(self, exc):
            accepted.append(("listener lost", exc))
    server.start(Accept())

    class Sink:
        def __init__(self):
            self.data, self.events = bytearray(), []

        def data_received(self, data):
            self.data += data

        def eof_received(self):
            self.events.append("eof")

        def pause_writing(self):
            self.events.append("pause")

        def resume_writing(self):
            self.events.append("resume")

        def connection_lost(self, exc):
            self.events.append(("lost", exc))
    client = await backend.open_tcp("127.0.0.1", server.endpoints.local_port, TcpOptions())
    client_sink = Sink()
    client.start(client_sink)
    for _ in range(250):
        if accepted:
            break
        await asyncio.sleep(0.02)
    peer, peer_sink = accepted[0], Sink()
    peer.start(peer_sink)
    block = bytes(range(256)) * 4096           # 1 MiB, queued without waiting
    for _ in range(4):
        client.write(block)
    await client.close()                       # flushes, then FIN
    for _ in range(500):
        if "eof" in peer_sink.events:
            break
        await asyncio.sleep(0.02)
    assert bytes(peer_sink.data) == block * 4 and peer_sink.events[-1] == "eof"
    assert client_sink.events.count(("lost", None)) == 1
    assert client_sink.events[-1] == ("lost", None)
    peer.write(b"after your FIN")              # half-closed: the peer still writes
    await peer.close()
    await asyncio.sleep(0.1)
    assert [e for e in peer_sink.events if isinstance(e, tuple)] == [("lost", None)]
    try:
        peer.write(b"late")
    except Exception as exc:
        assert type(exc).__name__ == "SocketClosedError", exc
    else:
        raise AssertionError("write after close accepted")
    await server.close()


@everywhere(timeout=60)
async def test_server_aborts_a_connection_its_sink_refused_by_raising(selenium):
    """An accept sink whose connection_made raises: the error goes to the loop's exception
    handler (with the server as its transport) and the connection is reset, not left open with
    no owner; the server goes on accepting."""
    import asyncio
    from socketiwa.backends import get_backend
    from socketiwa.backends.base import TcpOptions
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda loop, ctx: reported.append(ctx))
    backend = get_backend()
    server = await backend.open_tcp_server("127.0.0.1", 0, None, None)
    accepted = []

    class Accept:
        def connection_made(self, stream):
            accepted.append(stream)
            if len(accepted) == 1:
                raise RuntimeError("sink refused the connection")

        def connection_lost(self, exc):
            pass
    server.start(Accept())

    class Sink:
        def __init__(self):
            self.data, self.events = bytearray(), []

        def data_received(self, data):
            self.data += data

        def eof_received(self):
            self.events.append("eof")

        def pause_writing(self):
            pass

        def resume_writing(self):
            pass

        def connection_lost(self, exc):
            self.events.append(("lost", exc))

    async def wait_until(cond):
        for _ in range(250):
            if cond():
                return
            await asyncio.sleep(0.02)
    refused = await backend.open_tcp("127.0.0.1", server.endpoints.local_port, TcpOptions())
    refused_sink = Sink()
    refused.start(refused_sink)
    await wait_until(lambda: refused_sink.events)
    assert len(reported) == 1, reported
    assert isinstance(reported[0]["exception"], RuntimeError), reported
    assert reported[0]["transport"] is server, reported
    # The reset reaches the client as a connection error or (if it raced the reset) an EOF;
    # either way the connection is over, where before the fix it stayed open forever.
    first = refused_sink.events[0] if refused_sink.events else None
    assert first == "eof" or (isinstance(first, tuple) and first[0] == "lost"), refused_sink.events
    # The server still accepts, and the next connection works.
    client = await backend.open_tcp("127.0.0.1", server.endpoints.local_port, TcpOptions())
    client_sink = Sink()
    client.start(client_sink)
    await wait_until(lambda: len(accepted) == 2)
    peer_sink = Sink()
    accepted[1].start(peer_sink)
    client.write(b"still serving")
    await wait_until(lambda: bytes(peer_sink.data) == b"still serving")
    assert bytes(peer_sink.data) == b"still serving"
    assert len(reported) == 1, reported
    await client.close()
    await accepted[1].close()
    await refused.close()
    await server.close()
    loop.set_exception_handler(None)
