# ruff: noqa: F821  (Recorder, asyncio, skip_without_push come from the helpers source, exec'd in each body)
"""The push interface of the transport backends (backends/base.py), exercised directly: a sink
receives what arrives, in order; pause/resume; errors in sinks; close; the JS pump's memory and
proxies (Pyodide); the WebLoop adaptation's ordering and timers (Pyodide).

On CPython these run against backends/native.py once it implements the push interface."""
import pytest
from runtimes import everywhere

COMMON = '''
import asyncio

class Recorder:
    """A sink that records every call (both datagram and stream methods)."""
    def __init__(self):
        self.calls = []
        self.data = []
        self.changed = asyncio.Event()
    def _note(self, *call):
        self.calls.append(call)
        self.changed.set()
    def datagram_received(self, data, address, port):
        self.data.append(data)
        self._note("datagram", address, port)
    def data_received(self, data):
        self.data.append(data)
        self._note("data", len(data))
    def eof_received(self):
        self._note("eof")
    def error_received(self, exc):
        self._note("error", exc)
    def pause_writing(self):
        self._note("pause_writing")
    def resume_writing(self):
        self._note("resume_writing")
    def connection_made(self, stream):
        self._note("made", stream)
    def connection_lost(self, exc):
        self._note("lost", exc)
    def kinds(self, kind):
        return [c for c in self.calls if c[0] == kind]
    async def until(self, predicate, timeout=10):
        async def wait():
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), timeout)

async def skip_without_push(transport):
    if not hasattr(transport, "start"):   # CPython before helper core's native backend lands
        await transport.close()
        import pytest
        pytest.skip("this backend has no push interface yet")
'''


@pytest.fixture
def helpers():
    """Shared test code, as source: only the test function travels to Pyodide."""
    return COMMON


@everywhere
async def test_udp_push_delivers_in_order_batched(selenium, helpers, udp_echo):
    exec(helpers, globals())
    from socketiwa.backends import get_backend
    from socketiwa.backends.base import UdpOptions
    backend = get_backend()
    host, port = udp_echo
    t = await backend.open_udp(UdpOptions(remote_address=host, remote_port=port))
    await skip_without_push(t)
    sink = Recorder()
    t.start(sink)
    n = 300
    for i in range(n):
        t.send(i.to_bytes(4, "big") + b"x" * 60, None, None)   # never awaited
        if i % 50 == 49:
            await asyncio.sleep(0.01)   # stay inside the socket buffers: no loss on loopback
    await sink.until(lambda: len(sink.data) >= n)
    assert [int.from_bytes(d[:4], "big") for d in sink.data] == list(range(n))
    assert all(c[1:] == (host, port) for c in sink.kinds("datagram"))
    await t.close()
    await sink.until(lambda: sink.kinds("lost"))
    await asyncio.sleep(0.05)
    assert sink.kinds("lost") == [("lost", None)]
    assert sink.calls[-1][0] == "lost"


@everywhere
async def test_udp_push_bound_reports_sender_and_survives_sink_errors(selenium, helpers, udp_echo):
    exec(helpers, globals())
    from socketiwa.backends import get_backend
    from socketiwa.backends.base import UdpOptions
    backend = get_backend()
    host, port = udp_echo
    t = await backend.open_udp(UdpOptions(local_address="127.0.0.1"))
    await skip_without_push(t)
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda loop, ctx: reported.append(ctx.get("exception")))

    class Faulty(Recorder):
        def datagram_received(self, data, address, port):
            super().datagram_received(data, address, port)
            if data == b"bad":
                raise ValueError("handler bug")
    sink = Faulty()
    t.start(sink)
    try:
        for payload in (b"one", b"bad", b"three"):
            t.send(payload, host, port)
        await sink.until(lambda: len(sink.data) == 3)
    finally:
        loop.set_exception_handler(None)
    assert sink.data == [b"one", b"bad", b"three"]
    assert all(c[1:] == (host, port) for c in sink.kinds("datagram"))
    assert len(reported) == 1 and isinstance(reported[0], ValueError)
    await t.close()
    await sink.until(lambda: sink.kinds("lost"))
    assert len(sink.kinds("lost")) == 1


@everywhere
async def test_udp_push_pause_and_resume_reading(selenium, helpers, udp_echo):
    exec(helpers, globals())
    from socketiwa.backends import get_backend
    from socketiwa.backends.base import UdpOptions
    host, port = udp_echo
    t = await get_backend().open_udp(UdpOptions(remote_address=host, remote_port=port))
    await skip_without_push(t)
    sink = Recorder()
    t.start(sink)
    t.send(b"first", None, None)
    await sink.until(lambda: len(sink.data) == 1)
    t.pause_reading()
    t.pause_reading()   # idempotent
    for i in range(5):
        t.send(b"held-%d" % i, None, None)
    await asyncio.sleep(0.3)
    assert sink.data == [b"first"]          # nothing while paused
    t.resume_reading()
    await sink.until(lambda: len(sink.data) == 6)
    assert sink.data[1:] == [b"held-%d" % i for i in range(5)]
    await t.close()


@everywhere
async def test_udp_push_refuses_bad_sends(selenium, helpers, udp_echo):
    exec(helpers, globals())
    import socketiwa
    from socketiwa.backends import get_backend
    from socketiwa.backends.base import UdpOptions
    host, port = udp_echo
    t = await get_backend().open_udp(UdpOptions(remote_address=host, remote_port=port))
    await skip_without_push(t)
    t.start(Recorder())
    try:
        t.send(b"x" * 65508, None, None)
    except socketiwa.MessageTooLargeError:
        pass
    else:
        raise AssertionError("oversize datagram accepted")
    await t.close()
    try:
        t.send(b"late", None, None)
    except socketiwa.SocketClosedError:
        pass
    else:
        raise AssertionError("send after close accepted")


@everywhere
async def test_tcp_push_echo_eof_and_write_backpressure(selenium, helpers, tcp_echo, free_tcp_port):
    exec(helpers, globals())
    import hashlib
    import random
    from socketiwa.backends import get_backend
    from socketiwa.backends.base import TcpOptions
    backend = get_backend()
    host, port = tcp_echo
    t = await backend.open_tcp(host, port, TcpOptions(no_delay=True))
    await skip_without_push(t)
    sink = Recorder()
    t.start(sink)
    data = random.Random(7).randbytes(3 << 20)
    for i in range(0, len(data), 1000):        # small writes, never awaited
        t.write(data[i:i + 1000])
    t.write(data[:0])
    await sink.until(lambda: sum(map(len, sink.data)) >= len(data), timeout=60)
    got = b"".join(sink.data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    await t.close()
    await sink.until(lambda: sink.kinds("lost"))
    assert sink.calls[-1] == ("lost", None) and len(sink.kinds("lost")) == 1

    # A server that accepts and never reads: writes must pause, then resume once it reads.
    srv = await backend.open_tcp_server("127.0.0.1", 0, None, None)
    accepted = Recorder()
    srv.start(accepted)
    c = await backend.open_tcp("127.0.0.1", srv.endpoints.local_port, TcpOptions())
    csink = Recorder()
    c.start(csink)
    await accepted.until(lambda: accepted.kinds("made"))
    peer = accepted.kinds("made")[0][1]
    psink = Recorder()
    peer.start(psink)
    peer.pause_reading()
    block = b"z" * 65536
    sent = 0
    while not csink.kinds("pause_writing") and sent < (256 << 20):
        c.write(block)
        sent += len(block)
        if sent % (4 << 20) == 0:
            await asyncio.sleep(0)
    await csink.until(lambda: csink.kinds("pause_writing"))
    assert c.get_write_buffer_size() > 0
    peer.resume_reading()
    await csink.until(lambda: csink.kinds("resume_writing"), timeout=60)
    await psink.until(lambda: sum(map(len, psink.data)) >= sent, timeout=60)
    assert sum(map(len, psink.data)) == sent
    await c.close()
    await psink.until(lambda: psink.kinds("eof") or psink.kinds("lost"), timeout=10)
    await peer.close()
    await srv.close()
    await accepted.until(lambda: accepted.kinds("lost"))
    assert accepted.calls[-1] == ("lost", None)


@everywhere(only=("node", "iwa"))
async def test_pyodide_proxies_released_and_heap_growth(selenium, helpers, udp_echo):
    """Each socket's sink proxy is destroyed when it ends; deliveries stay right after the wasm
    heap grows (the JS side re-reads its view of Python's buffer)."""
    exec(helpers, globals())
    import gc
    import weakref
    import js
    from socketiwa.backends import directsockets
    from socketiwa.backends.base import UdpOptions
    host, port = udp_echo
    before = directsockets.live_proxies
    t = await directsockets.open_udp(UdpOptions(remote_address=host, remote_port=port))
    hoard = []

    class Grower(Recorder):
        def datagram_received(self, data, address, port):
            super().datagram_received(data, address, port)
            hoard.append(bytearray(32 << 20))   # grows the wasm heap between deliveries
    sink = Grower()
    t.start(sink)
    assert directsockets.live_proxies == before + 1
    refreshes = js.socketiwaBridge.memoryRefreshes()
    for i in range(4):
        t.send(b"grow-%d" % i, None, None)
        await sink.until(lambda: len(sink.data) == i + 1)
    assert sink.data == [b"grow-%d" % i for i in range(4)]
    assert js.socketiwaBridge.memoryRefreshes() > refreshes   # the view was re-read
    hoard.clear()
    proxy = t._proxy
    await t.close()
    await asyncio.sleep(0)
    assert directsockets.live_proxies == before
    try:
        proxy(0, 0, 0)
    except Exception as e:
        assert "destroyed" in str(e).lower()
    else:
        raise AssertionError("the sink proxy still works after close")
    ref = weakref.ref(t)
    del t, proxy
    gc.collect()
    assert ref() is None   # nothing on the JS side keeps the transport alive


@everywhere(only=("node", "iwa"))
async def test_webloop_microtask_drain_keeps_asyncio_order_and_one_timer(selenium, helpers, udp_echo):
    """Callbacks made ready from a socket event run in asyncio's FIFO order, after the event
    returns; aioquic-style timer re-arms do not re-arm the JS timer per call."""
    exec(helpers, globals())
    from socketiwa import _webloop
    from socketiwa.backends import directsockets
    from socketiwa.backends.base import UdpOptions
    host, port = udp_echo
    t = await directsockets.open_udp(UdpOptions(remote_address=host, remote_port=port))
    loop = asyncio.get_running_loop()
    assert _webloop.webloop_mode(loop) == _webloop.DEFAULT_MODE == "microtask"
    order = []

    class Ordering(Recorder):
        def datagram_received(self, data, address, port):
            super().datagram_received(data, address, port)
            order.append(("event", data))
            fut = loop.create_future()
            fut.add_done_callback(lambda f: order.append(("future", f.result())))
            loop.call_soon(order.append, ("soon", 1))
            fut.set_result(data)
            loop.call_soon(order.append, ("soon", 2))
            order.append(("event-end", data))
    sink = Ordering()
    t.start(sink)
    t.send(b"a", None, None)
    await sink.until(lambda: len(sink.data) == 1)
    await asyncio.sleep(0.05)
    assert order == [("event", b"a"), ("event-end", b"a"), ("soon", 1), ("future", b"a"), ("soon", 2)]

    batcher = loop._socketiwa_batcher
    arms = batcher.timer_arms
    fired = []
    handle = None
    for i in range(500):                     # re-arm later and later, as aioquic does per packet
        if handle is not None:
            handle.cancel()
        handle = loop.call_at(loop.time() + 0.05 + i * 1e-5, fired.append, i)
    assert batcher.timer_arms - arms <= 2
    early = loop.call_later(0.01, fired.append, "early")   # moves earlier: one re-arm
    late = loop.call_at(loop.time() - 1, fired.append, "past")  # a past deadline runs soon
    await asyncio.sleep(0.15)
    assert fired == ["past", "early", 499]
    assert not early.cancelled() and late is not None
    assert len(batcher.timers) < 100          # cancelled re-arms do not pile up
    await t.close()


@everywhere(only=("node", "iwa"))
async def test_configure_webloop_switches_modes_keeping_order(selenium, helpers, udp_echo):
    """configure_webloop() applies at once; every mode keeps FIFO order and runs timers, and a
    switch hands queued callbacks and timers over."""
    exec(helpers, globals())
    import socketiwa
    from socketiwa import _webloop
    from socketiwa.backends import directsockets
    from socketiwa.backends.base import UdpOptions
    host, port = udp_echo
    loop = asyncio.get_running_loop()
    try:
        for mode in ("task", "off", "microtask"):
            pending = []
            loop.call_later(0.05, pending.append, "timer-from-before")
            assert socketiwa.configure_webloop(mode) == mode
            assert _webloop.webloop_mode(loop) == mode
            t = await directsockets.open_udp(UdpOptions(remote_address=host, remote_port=port))
            order = []

            class Ordering(Recorder):
                def datagram_received(self, data, address, port):
                    super().datagram_received(data, address, port)
                    for i in range(3):
                        loop.call_soon(order.append, (data, i))
            sink = Ordering()
            t.start(sink)
            for p in (b"x", b"y"):
                t.send(p, None, None)
            await sink.until(lambda: len(sink.data) == 2)
            await asyncio.sleep(0.1)
            assert order == [(b"x", 0), (b"x", 1), (b"x", 2), (b"y", 0), (b"y", 1), (b"y", 2)], mode
            assert pending == ["timer-from-before"], mode
            await t.close()
    finally:
        socketiwa.configure_webloop(_webloop.DEFAULT_MODE)
    try:
        socketiwa.configure_webloop("fast")
    except ValueError as e:
        assert "fast" in str(e)
    else:
        raise AssertionError("unknown mode accepted")
