"""asyncio's own APIs over socketiwa (socketiwa.aio.install): streams, servers, datagrams."""
from runtimes import everywhere


@everywhere
async def test_open_connection_and_start_server(selenium):
    import asyncio
    import hashlib
    import socketiwa.aio
    socketiwa.aio.install()

    async def handle(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    assert port > 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert writer.get_extra_info("peername") == ("127.0.0.1", port)
    payload = bytes(range(256)) * 4096                       # 1 MiB
    writer.write(payload)
    await writer.drain()
    got = await reader.readexactly(len(payload))
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    writer.write(b"line one\nline two\n")
    assert await reader.readline() == b"line one\n"
    assert await reader.readline() == b"line two\n"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


@everywhere
async def test_create_datagram_endpoint(selenium, udp_echo):
    import asyncio
    import socketiwa.aio
    loop = asyncio.get_running_loop()
    socketiwa.aio.install(loop)
    host, port = udp_echo
    got = asyncio.Queue()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            got.put_nowait((data, addr))
        def error_received(self, exc):
            got.put_nowait((None, exc))

    # connected
    transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=(host, port))
    transport.sendto(b"connected")
    data, addr = await asyncio.wait_for(got.get(), 5)
    assert data == b"connected" and addr[:2] == (host, port)
    transport.close()
    # bound, IPv4
    transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
    assert transport.get_extra_info("sockname")[1] > 0
    transport.sendto(b"bound", (host, port))
    data, addr = await asyncio.wait_for(got.get(), 5)
    assert data == b"bound" and addr == (host, port)
    transport.close()
    # dual-stack wildcard as aioquic opens it: peers appear as IPv4-mapped addresses
    transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=("::", 0))
    transport.sendto(b"mapped", ("::ffff:" + host, port, 0, 0))
    data, addr = await asyncio.wait_for(got.get(), 5)
    assert data == b"mapped" and addr[:2] == ("::ffff:" + host, port)
    transport.close()


@everywhere
async def test_aio_errors_are_typed(selenium, closed_port):
    import asyncio
    import socketiwa
    import socketiwa.aio
    socketiwa.aio.install()
    try:
        await asyncio.open_connection("127.0.0.1", closed_port)
    except ConnectionError as e:
        assert isinstance(e, socketiwa.ConnectError)
    else:
        raise AssertionError("connected to a closed port")
    try:
        await asyncio.open_connection("127.0.0.1", 1, ssl=True)
    except socketiwa.NotSupportedError as e:
        assert "TLS" in str(e)
    else:
        raise AssertionError("ssl=True accepted")
    infos = await asyncio.get_running_loop().getaddrinfo("localhost", 80)
    assert infos[0][4][0] in ("127.0.0.1", "::1")


@everywhere(timeout=30)
async def test_timers_with_past_deadlines_run_at_once(selenium):
    """asyncio runs call_at/call_later with a deadline already passed as soon as possible;
    Pyodide's WebLoop raised ValueError instead, which killed aioquic's loss-detection timer.
    socketiwa adapts the loop when its Direct Sockets backend starts (here: by opening a socket)."""
    import asyncio

    import socketiwa
    sock = await socketiwa.create_udp(remote_address="127.0.0.1", remote_port=9)
    loop = asyncio.get_running_loop()
    fired = []
    loop.call_at(loop.time() - 1.0, fired.append, "call_at")
    loop.call_later(-0.5, fired.append, "call_later")
    for _ in range(50):
        if len(fired) == 2:
            break
        await asyncio.sleep(0.01)
    assert sorted(fired) == ["call_at", "call_later"]
    await sock.close()


@everywhere
async def test_datagram_protocol_exception_is_reported_and_receiving_goes_on(selenium):
    """As asyncio's own transports: a failing datagram_received goes to the loop's exception
    handler and the endpoint keeps receiving (it used to end the transport silently)."""
    import asyncio
    import socketiwa.aio
    socketiwa.aio.install()
    loop = asyncio.get_running_loop()
    reported = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda lp, ctx: reported.append(ctx.get("exception")))
    got = asyncio.Queue()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            if data == b"boom":
                raise ValueError("protocol bug")
            got.put_nowait(data)

    try:
        transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                        remote_addr=("127.0.0.1", port))
        sender.sendto(b"boom")
        await asyncio.sleep(0.2)
        sender.sendto(b"after")
        assert await asyncio.wait_for(got.get(), 5) == b"after"
        assert [type(e) for e in reported] == [ValueError]
        assert not transport.is_closing()
        sender.close()
        transport.close()
    finally:
        loop.set_exception_handler(previous)


@everywhere
async def test_buffered_protocol_gets_data_through_its_buffers(selenium, tcp_echo):
    """An asyncio.BufferedProtocol (as asyncio code passes to loop.create_connection) receives
    through get_buffer/buffer_updated; a buffer smaller than what arrived is filled in pieces."""
    import asyncio
    import hashlib
    import socketiwa.aio
    socketiwa.aio.install()
    loop = asyncio.get_running_loop()
    host, port = tcp_echo
    small = 1000                                   # far below any TCP read: forces pieces

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(small)
            self.got = bytearray()
            self.hints, self.updates = [], []
            self.lost = loop.create_future()
            self.called_data_received = False

        def get_buffer(self, sizehint):
            self.hints.append(sizehint)
            return self.buf

        def buffer_updated(self, nbytes):
            self.updates.append(nbytes)
            self.got += self.buf[:nbytes]

        def data_received(self, data):         # not part of BufferedProtocol: must not be used
            self.called_data_received = True

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    transport, proto = await loop.create_connection(Buffered, host, port)
    assert isinstance(proto, Buffered)
    payload = bytes(range(251)) * 4177             # ~1 MiB, not a multiple of the buffer
    transport.write(payload)
    for _ in range(1000):
        if len(proto.got) >= len(payload):
            break
        await asyncio.sleep(0.01)
    assert hashlib.sha256(proto.got).digest() == hashlib.sha256(payload).digest(), len(proto.got)
    assert not proto.called_data_received
    assert all(0 < n <= small for n in proto.updates), max(proto.updates)
    assert len(proto.updates) >= len(payload) // small
    assert all(h > 0 for h in proto.hints)
    assert max(proto.hints) > small, max(proto.hints)  # the hint is what arrived, not the buffer
    transport.close()
    assert await asyncio.wait_for(proto.lost, 10) is None


@everywhere
async def test_buffered_protocol_empty_buffer_is_fatal_as_in_asyncio(selenium, tcp_echo):
    """get_buffer() returning an empty buffer: asyncio's transports report a RuntimeError to the
    loop's exception handler, close the connection and pass that error to connection_lost."""
    import asyncio
    import socketiwa.aio
    socketiwa.aio.install()
    loop = asyncio.get_running_loop()
    reported = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))
    host, port = tcp_echo

    class EmptyBuffer(asyncio.BufferedProtocol):
        def __init__(self):
            self.updates = 0
            self.lost = loop.create_future()

        def get_buffer(self, sizehint):
            return bytearray()

        def buffer_updated(self, nbytes):
            self.updates += 1

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    try:
        transport, proto = await loop.create_connection(EmptyBuffer, host, port)
        transport.write(b"echo me")
        exc = await asyncio.wait_for(proto.lost, 10)
        assert isinstance(exc, RuntimeError) and "empty buffer" in str(exc), exc
        assert transport.is_closing()
        assert proto.updates == 0
        assert len(reported) == 1, reported
        assert reported[0]["exception"] is exc
        assert reported[0]["transport"] is transport and reported[0]["protocol"] is proto
    finally:
        loop.set_exception_handler(previous)
