"""Benchmark cases run unchanged on CPython and inside Pyodide (Node or the IWA).

Each returns a dict of numbers. The driver (bench_transport.py) ships this file's source to
Pyodide, so it must only import the standard library and socketiwa.
"""
import asyncio
import time


async def udp_echo_rate(host, port, window=32, seconds=2.0, size=64):
    """UDP echo round trips per second with ``window`` datagrams in flight."""
    import socketiwa
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port, max_queue=4096)
    payload = b"x" * size
    sent = received = 0
    for _ in range(window):
        await sock.send(payload)
        sent += 1
    start = time.perf_counter()
    deadline = start + seconds
    last = start
    while True:
        try:
            await sock.receive(timeout=0.5)
        except asyncio.TimeoutError:
            break                      # a lost datagram: stop rather than hang
        received += 1
        last = time.perf_counter()
        if last < deadline:
            await sock.send(payload)
            sent += 1
        elif received >= sent:
            break
    await sock.close()
    elapsed = last - start
    return {"window": window, "sent": sent, "received": received, "lost": sent - received,
            "seconds": round(elapsed, 3), "round_trips_per_s": round(received / elapsed) if elapsed else 0}


async def udp_echo_rate_protocol(host, port, window=32, seconds=2.0, size=64):
    """The same echo loop written as an asyncio DatagramProtocol (what aioquic and most asyncio
    code use): each datagram_received sends the next datagram, no await per packet. In Pyodide
    through socketiwa.aio (loop.create_datagram_endpoint on Direct Sockets)."""
    import sys
    loop = asyncio.get_running_loop()
    if sys.platform == "emscripten":
        from socketiwa import aio
        aio.install(loop)
    payload = b"x" * size
    done = loop.create_future()
    state = {"sent": 0, "received": 0, "start": 0.0, "last": 0.0}

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            state["received"] += 1
            now = state["last"] = time.perf_counter()
            if now < state["start"] + seconds:
                self.transport.sendto(payload)
                state["sent"] += 1
            elif state["received"] >= state["sent"] and not done.done():
                done.set_result(None)

    transport, proto = await loop.create_datagram_endpoint(Echo, remote_addr=(host, port))
    state["start"] = state["last"] = time.perf_counter()
    for _ in range(window):
        transport.sendto(payload)
        state["sent"] += 1
    while not done.done():      # a lost datagram: stop 0.5 s after the last one arrived
        await asyncio.sleep(0.1)
        if time.perf_counter() - state["last"] > 0.5:
            break
    transport.close()
    elapsed = state["last"] - state["start"]
    received = state["received"]
    return {"window": window, "sent": state["sent"], "received": received,
            "lost": state["sent"] - received, "seconds": round(elapsed, 3),
            "round_trips_per_s": round(received / elapsed) if elapsed else 0}


async def udp_echo_rate_backend(host, port, window=32, seconds=2.0, size=64):
    """The protocol-style echo straight on socketiwa's transport backend (the push interface of
    socketiwa/backends/base.py, no asyncio transport layer on top): what the backend costs."""
    from socketiwa.backends import get_backend
    from socketiwa.backends.base import UdpOptions
    loop = asyncio.get_running_loop()
    payload = b"x" * size
    done = loop.create_future()
    state = {"sent": 0, "received": 0, "start": 0.0, "last": 0.0}
    transport = await get_backend().open_udp(UdpOptions(remote_address=host, remote_port=port))

    class Echo:
        def datagram_received(self, data, address, port):
            state["received"] += 1
            now = state["last"] = time.perf_counter()
            if now < state["start"] + seconds:
                transport.send(payload, None, None)
                state["sent"] += 1
            elif state["received"] >= state["sent"] and not done.done():
                done.set_result(None)

        def error_received(self, exc):
            pass

        def pause_writing(self):
            pass

        def resume_writing(self):
            pass

        def connection_lost(self, exc):
            pass

    transport.start(Echo())
    state["start"] = state["last"] = time.perf_counter()
    for _ in range(window):
        transport.send(payload, None, None)
        state["sent"] += 1
    while not done.done():      # a lost datagram: stop 0.5 s after the last one arrived
        await asyncio.sleep(0.1)
        if time.perf_counter() - state["last"] > 0.5:
            break
    await transport.close()
    elapsed = state["last"] - state["start"]
    received = state["received"]
    return {"window": window, "sent": state["sent"], "received": received,
            "lost": state["sent"] - received, "seconds": round(elapsed, 3),
            "round_trips_per_s": round(received / elapsed) if elapsed else 0}


async def udp_constant_rate(host, port, rate=2000, seconds=2.0, size=64, grace=0.3, quiet=1.0,
                            max_wait=30.0):
    """Send at a fixed rate; report the echoes back and the median round trip.

    After the last send it waits for silence: until no echo came for ``quiet`` s (``max_wait``
    s at most). ``received`` counts every echo back; ``late`` those of them that came more than
    ``grace`` s after the last send (the old fixed wait, which counted them as missing);
    ``lost`` those that never came (the line went quiet without them); ``unresolved`` those
    still missing when ``max_wait`` ran out while echoes were still arriving (not known lost).
    The median round trip is of all echoes, late ones included."""
    import socketiwa
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port, max_queue=4096)
    sent_at = {}
    rtts = []
    clock = time.perf_counter
    state = {"last_rx": 0.0, "late_after": float("inf"), "late": 0}

    async def reader():
        async for msg in sock:
            now = state["last_rx"] = clock()
            i = int.from_bytes(msg.data[:4], "big")
            t0 = sent_at.pop(i, None)
            if t0 is not None:
                rtts.append(now - t0)
                if now > state["late_after"]:
                    state["late"] += 1
    task = asyncio.ensure_future(reader())
    interval = 1.0 / rate
    start = clock()
    n = 0
    while clock() - start < seconds:
        due = start + n * interval
        now = clock()
        if due > now:
            await asyncio.sleep(due - now)
        sent_at[n] = clock()
        await sock.send(n.to_bytes(4, "big") + b"x" * (size - 4))
        n += 1
    send_end = clock()
    state["late_after"] = send_end + grace
    drain = "done"
    while sent_at:               # until every echo is back or the line goes quiet
        now = clock()
        if now - send_end > max_wait:
            drain = "limit"
            break
        if now - max(state["last_rx"], send_end) > quiet:
            drain = "quiet"
            break
        await asyncio.sleep(0.01)
    waited = clock() - send_end
    await sock.close()
    await task
    rtts.sort()
    missing = n - len(rtts)
    return {"rate": rate, "sent": n, "received": len(rtts),
            "median_rtt_us": round(rtts[len(rtts) // 2] * 1e6) if rtts else None,
            "late": state["late"], "lost": 0 if drain == "limit" else missing,
            "unresolved": missing if drain == "limit" else 0, "drain": drain,
            "waited_s": round(waited, 3)}


async def tcp_echo_throughput(host, port, total=32 * 1024 * 1024, chunk=256 * 1024):
    """MB/s through a TCP echo server (raw framing), both directions at once."""
    import socketiwa
    sock = await socketiwa.create_tcp(host, port, framing="raw", no_delay=True)
    block = b"y" * chunk

    async def writer():
        for _ in range(total // chunk):
            await sock.send(block)
    start = time.perf_counter()
    task = asyncio.ensure_future(writer())
    got = 0
    stalled = False
    while got < total:
        try:
            got += len(await sock.receive(timeout=5))
        except asyncio.TimeoutError:
            stalled = True          # nothing for 5 s: report it instead of hanging
            break
    elapsed = time.perf_counter() - start
    task.cancel()
    await sock.close()
    result = {"bytes": got, "seconds": round(elapsed, 3), "mb_per_s": round(got / elapsed / 1e6, 1)}
    if stalled:
        result["stalled"] = True
        result["mb_per_s"] = None
    return result


async def udp_echo_backend_profile(host, port, window=1, seconds=2.0, size=64,
                                   case="udp_echo_rate_backend"):
    """An echo case (``case``: udp_echo_rate_backend, or udp_echo_rate for the receive() loop)
    with the time inside each socket event measured (Pyodide only): the JS -> Python call's
    Python side, which in socketiwa's "microtask" WebLoop mode also runs what the datagram made
    ready (the woken receive() and the next send). How much of a round trip is Python and how
    much is everything else (Chromium's socket tasks, the JS pump, the FFI crossing)."""
    import sys
    if sys.platform != "emscripten":
        return {"skipped": "Pyodide only"}
    from socketiwa.backends import directsockets
    spent = [0.0, 0]
    original = directsockets.DirectUdp._on_event

    def timed(self, kind, a, b):
        t0 = time.perf_counter()
        try:
            return original(self, kind, a, b)
        finally:
            spent[0] += time.perf_counter() - t0
            spent[1] += 1
    directsockets.DirectUdp._on_event = timed   # before the socket opens: its proxy binds it
    try:
        result = await globals()[case](host, port, window=window, seconds=seconds, size=size)
    finally:
        directsockets.DirectUdp._on_event = original
    rt = result["received"] or 1
    result["us_per_round_trip"] = round(result["seconds"] / rt * 1e6, 1)
    result["python_us_per_round_trip"] = round(spent[0] / rt * 1e6, 1)
    result["events"] = spent[1]
    return result


async def udp_calls_profile(host, port, case="udp_echo_rate", window=1, seconds=1.0, top=30):
    """Python function calls per UDP round trip in one of the echo cases (``case``: the function
    name), counted with sys.setprofile: which socketiwa steps a datagram costs, on any runtime.
    Frame entries count generator/coroutine resumptions too (an ``await`` that suspends and is
    resumed costs one more). Timing is meaningless here (profiling slows every call)."""
    import collections
    import sys
    calls = collections.Counter()
    c_calls = collections.Counter()

    def count(frame, event, arg):
        if event == "call":
            code = frame.f_code
            calls[f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_qualname}"] += 1
        elif event == "c_call":
            c_calls[getattr(arg, "__qualname__", None) or repr(arg)] += 1

    run = globals()[case]
    await run(host, port, window=window, seconds=0.2)   # warm up: first-use imports are not counted
    sys.setprofile(count)
    try:
        result = await run(host, port, window=window, seconds=seconds)
    finally:
        sys.setprofile(None)
    rt = result["received"] or 1
    return {"case": case, "window": window, "received": result["received"],
            "python_calls_per_round_trip": round(sum(calls.values()) / rt, 1),
            "c_calls_per_round_trip": round(sum(c_calls.values()) / rt, 1),
            "top": [(name, round(n / rt, 2)) for name, n in calls.most_common(top)],
            "top_c": [(name, round(n / rt, 2)) for name, n in c_calls.most_common(top // 2)]}
