"""CPython's backend (backends/native.py) in cases the runtime-independent backend tests do not
reach: the server's accept queue when reading is paused and resumed before start()."""
import asyncio

from socketiwa.backends import native


class AcceptRecorder:
    """An AcceptSink that keeps what it is handed."""

    def __init__(self):
        self.streams = []
        self.arrived = asyncio.Event()

    def connection_made(self, stream):
        self.streams.append(stream)
        self.arrived.set()

    def connection_lost(self, exc):
        pass


def test_server_resumed_before_start_keeps_accepted_connections_for_the_sink():
    """pause_reading()/resume_reading() before start(): the connection accepted meanwhile waits
    for the sink start() gives (it used to be handed to no sink: an AttributeError went to the
    loop's exception handler and the connection was dropped without being closed)."""
    async def main():
        loop = asyncio.get_running_loop()
        reported = []
        loop.set_exception_handler(lambda loop, ctx: reported.append(ctx))
        server = await native.open_tcp_server("127.0.0.1", 0, None, None)
        server.pause_reading()
        _, writer = await asyncio.open_connection("127.0.0.1", server.endpoints.local_port)
        for _ in range(500):  # until the server has accepted it (held: no sink yet)
            if server._waiting:
                break
            await asyncio.sleep(0.01)
        assert len(server._waiting) == 1
        server.resume_reading()
        await asyncio.sleep(0.05)  # the flush resume_reading() scheduled has run
        sink = AcceptRecorder()
        server.start(sink)
        await asyncio.wait_for(sink.arrived.wait(), 10)
        assert len(sink.streams) == 1 and reported == []
        assert sink.streams[0].endpoints.remote_port == writer.get_extra_info("sockname")[1]
        sink.streams[0].abort()
        writer.close()
        await server.close()

    asyncio.run(main())
