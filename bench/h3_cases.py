"""QUIC / HTTP/3 / WebTransport benchmark cases, run unchanged on CPython and inside Pyodide (Node
or the IWA) against aioquic servers on CPython (bench/bench_h3.py starts them).

Each case takes ``plain``: False runs it as a socketiwa user writes it (``socketiwa.quic`` /
``socketiwa.h3``, on socketiwa's transport); True runs the same work as a CPython user writes it
with aioquic alone (aioquic's asyncio API and ``H3Connection``, no socketiwa): the baseline.
Standard library, aioquic and socketiwa names only (this source is shipped to Pyodide).
"""
import asyncio
import time

SINK_ALPN = "sink"


def _quic_config(ca, alpn, plain, **kwargs):
    if alpn != SINK_ALPN:    # HTTP/3 with WebTransport: QUIC datagrams must be on (H3_DATAGRAM)
        kwargs.setdefault("max_datagram_frame_size", 65536)
    if plain:
        from aioquic.quic.configuration import QuicConfiguration
        config = QuicConfiguration(is_client=True, alpn_protocols=[alpn], server_name="localhost", **kwargs)
        config.load_verify_locations(cadata=ca.encode())
        return config
    from socketiwa import quic
    return quic.client_configuration(cadata=ca, server_name="localhost", alpn=alpn, **kwargs)


def _connect(host, port, config, plain, **kwargs):
    from aioquic.asyncio import connect
    if not plain:
        from socketiwa import aio
        aio.install()        # aioquic's connect() then runs on socketiwa's transport
    return connect(host, port, configuration=config, **kwargs)


async def quic_upload(host, port, ca, nbytes=8 * 1024 * 1024, plain=False):
    """QUIC bulk, one direction: ``nbytes`` written on one stream with aioquic's stream API
    (reader/writer), to a sink that answers with the byte count at FIN. Payload MB/s from the
    first write to the answer (the answer means every byte arrived)."""
    config = _quic_config(ca, SINK_ALPN, plain)
    piece = bytes(range(256)) * 256                       # 64 KiB
    async with _connect(host, port, config, plain) as client:
        suite = client._quic.tls.key_schedule.cipher_suite.name
        reader, writer = await client.create_stream()
        samples = []
        sampler = asyncio.ensure_future(_sample_sender(client, samples))
        start = time.perf_counter()
        for _ in range(nbytes // len(piece)):
            writer.write(piece)
            await writer.drain()
        writer.write_eof()
        counted = int((await reader.read()).decode())
        elapsed = time.perf_counter() - start
        sampler.cancel()
        client.close()
    assert counted == nbytes, (counted, nbytes)
    out = {"quic_upload_mb_per_s": round(nbytes / elapsed / 1e6, 2), "quic_upload_mb": nbytes / 1e6,
           "suite": suite}
    if samples:   # medians over the transfer: where the congestion window sits (see _sample_sender)
        for i, key in enumerate(("quic_upload_srtt_ms", "quic_upload_cwnd_kb", "quic_upload_sendq_kb")):
            values = sorted(s[i] for s in samples)
            out[key] = round(values[len(values) // 2], 1)
    return out


async def _sample_sender(client, samples, every=0.02):
    """Every 20 ms during quic_upload: aioquic's smoothed RTT (ms), congestion window (KB) and
    the bytes the socket has accepted but not yet handed to the OS (KB: the transport's write
    buffer, in the IWA Chromium's UDPSocket write queue). Throughput is cwnd / RTT; a send queue
    near the cwnd means the RTT is spent in the local send path, not on the wire. aioquic's
    private attributes are read only here, in the benchmark."""
    loss = client._quic._loss
    transport = client._transport
    while True:
        await asyncio.sleep(every)
        samples.append((loss._rtt_smoothed * 1000, loss._cc.congestion_window / 1024,
                        transport.get_write_buffer_size() / 1024))


def quic_memory_bulk(ca, cert_pem, key_pem, nbytes=8 * 1024 * 1024):
    """QUIC bulk in memory, one direction: an aioquic client and server (QuicConnection, sans
    I/O) in this process hand datagrams to each other directly, no sockets, no event loop, a
    simulated clock. Payload MB/s of process CPU time for both ends together: the speed of
    aioquic's code itself in this runtime (plain or compiled ahead of time), free of the machine's
    I/O and of other processes' load."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.events import StreamDataReceived
    client_config = QuicConfiguration(is_client=True, alpn_protocols=[SINK_ALPN], server_name="localhost")
    client_config.load_verify_locations(cadata=ca.encode())
    server_config = QuicConfiguration(is_client=False, alpn_protocols=[SINK_ALPN])
    server_config.certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    server_config.private_key = load_pem_private_key(key_pem.encode(), password=None)
    client = QuicConnection(configuration=client_config)
    server = QuicConnection(configuration=server_config,
                            original_destination_connection_id=client.original_destination_connection_id)
    now = 1000.0
    client_addr, server_addr = ("10.0.0.1", 1234), ("10.0.0.2", 4433)
    client.connect(server_addr, now=now)
    received = 0

    def exchange():
        nonlocal received, now
        moved = 0
        for data, _ in client.datagrams_to_send(now=now):
            server.receive_datagram(data, client_addr, now=now)
            moved += 1
        for data, _ in server.datagrams_to_send(now=now):
            client.receive_datagram(data, server_addr, now=now)
            moved += 1
        event = server.next_event()
        while event is not None:
            if isinstance(event, StreamDataReceived):
                received += len(event.data)
            event = server.next_event()
        while client.next_event() is not None:
            pass
        now += 0.001       # 1 ms per round trip: no timer fires early, no loss is declared
        return moved
    while exchange():      # handshake
        pass
    stream_id = client.get_next_available_stream_id()
    piece = bytes(range(256)) * 256                   # 64 KiB, as quic_upload writes
    sent = 0
    start = time.process_time()
    while received < nbytes:
        # keep about 1 MiB queued: aioquic sends what flow and congestion control allow
        while sent < nbytes and sent - received < 1024 * 1024:
            client.send_stream_data(stream_id, piece, end_stream=sent + len(piece) >= nbytes)
            sent += len(piece)
        if not exchange() and received < nbytes:
            for conn in (client, server):  # nothing to send: let the timers (ack delay) fire
                timer = conn.get_timer()
                if timer is not None and timer <= now + 1:
                    now = max(now, timer)
                    conn.handle_timer(now=now)
    cpu = time.process_time() - start
    assert received == nbytes, (received, nbytes)
    return {"quic_memory_mb_per_cpu_s": round(nbytes / cpu / 1e6, 2),
            "suite": client.tls.key_schedule.cipher_suite.name}


class _PlainH3:
    """aioquic's H3Connection as a CPython user drives it: requests, WebTransport datagrams."""

    @staticmethod
    def protocol_class():
        from aioquic.asyncio import QuicConnectionProtocol
        from aioquic.h3.connection import H3Connection
        from aioquic.h3.events import DatagramReceived, DataReceived, HeadersReceived
        from aioquic.quic.events import ConnectionTerminated

        class Client(QuicConnectionProtocol):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                self.http = H3Connection(self._quic, enable_webtransport=True)
                self.waiters = {}
                self.bodies = {}
                self.datagrams = asyncio.Queue()

            def quic_event_received(self, event):
                if isinstance(event, ConnectionTerminated):   # fail whoever waits
                    for done, _ in self.waiters.values():
                        if not done.done():
                            done.set_exception(ConnectionError(event.reason_phrase))
                for ev in self.http.handle_event(event):
                    if isinstance(ev, DatagramReceived):
                        self.datagrams.put_nowait(ev.data)
                    elif isinstance(ev, (HeadersReceived, DataReceived)):
                        if isinstance(ev, DataReceived):
                            self.bodies[ev.stream_id] = self.bodies.get(ev.stream_id, 0) + len(ev.data)
                        waiter = self.waiters.get(ev.stream_id)
                        if waiter and (ev.stream_ended or (isinstance(ev, HeadersReceived) and waiter[1])) \
                                and not waiter[0].done():
                            waiter[0].set_result(self.bodies.pop(ev.stream_id, 0))

            async def request(self, path, headers_only=False, extra=()):
                sid = self._quic.get_next_available_stream_id()
                done = asyncio.get_running_loop().create_future()
                self.waiters[sid] = (done, headers_only)
                method = b"CONNECT" if extra else b"GET"
                self.http.send_headers(sid, [(b":method", method), (b":scheme", b"https"),
                                             (b":authority", b"localhost"), (b":path", path), *extra],
                                       end_stream=not extra)
                self.transmit()
                size = await done
                del self.waiters[sid]
                return sid, size
        return Client


async def h3_requests(host, port, ca, seconds=3.0, concurrency=16, plain=False):
    """HTTP/3 GETs (small response) per second over one connection, ``concurrency`` in flight."""
    from aioquic.h3.connection import H3_ALPN
    config = _quic_config(ca, H3_ALPN[0], plain)
    done = 0
    if plain:
        ctx = _connect(host, port, config, plain, create_protocol=_PlainH3.protocol_class())
    else:
        from socketiwa import h3
        ctx = h3.connect(host, port, configuration=h3.client_configuration(cadata=ca, server_name="localhost"))
    async with ctx as client:
        async def one():
            if plain:
                _, size = await client.request(b"/hello")
            else:
                response = await client.get("/hello")
                size = len(await response.read())
            assert size == len(b"hello /hello"), size

        await one()                                       # warm: settings exchanged
        deadline = time.perf_counter() + seconds

        async def worker():
            nonlocal done
            while time.perf_counter() < deadline:
                await one()
                done += 1
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        client.close()
    return {f"h3_requests_c{concurrency}_per_s": round(done / elapsed)}


async def h3_download(host, port, ca, nbytes=8 * 1024 * 1024, plain=False):
    """One HTTP/3 GET of ``nbytes``: payload MB/s from the request to the last byte."""
    from aioquic.h3.connection import H3_ALPN
    config = _quic_config(ca, H3_ALPN[0], plain)
    path = f"/bytes?n={nbytes}&seed=1"
    if plain:
        ctx = _connect(host, port, config, plain, create_protocol=_PlainH3.protocol_class())
    else:
        from socketiwa import h3
        ctx = h3.connect(host, port, configuration=h3.client_configuration(cadata=ca, server_name="localhost"))
    async with ctx as client:
        start = time.perf_counter()
        if plain:
            _, size = await client.request(path.encode())
        else:
            response = await client.get(path)
            size = 0
            async for chunk in response:
                size += len(chunk)
        elapsed = time.perf_counter() - start
        client.close()
    assert size == nbytes, size
    return {"h3_get_mb_per_s": round(nbytes / elapsed / 1e6, 2)}


async def wt_datagram_echo(host, port, ca, seconds=3.0, window=8, size=64, plain=False):
    """WebTransport datagram echoes per second in one session, ``window`` datagrams in flight
    (each echo answered with a new datagram). Datagrams may be lost: when nothing comes back
    for 200 ms a new window is sent; ``lost`` counts the datagrams given up on."""
    from aioquic.h3.connection import H3_ALPN
    payload = bytes(size)
    if plain:
        config = _quic_config(ca, H3_ALPN[0], plain)
        ctx = _connect(host, port, config, plain, create_protocol=_PlainH3.protocol_class())
    else:
        from socketiwa import h3
        ctx = h3.connect(host, port, configuration=h3.client_configuration(cadata=ca, server_name="localhost"))
    async with ctx as client:
        if plain:
            sid, _ = await client.request(b"/wt", headers_only=True, extra=[(b":protocol", b"webtransport"),
                                                                            (b"origin", b"https://localhost")])

            def send():
                client.http.send_datagram(sid, payload)
                client.transmit()
            receive = client.datagrams.get
        else:
            session = await client.webtransport("/wt")

            def send():
                session.send_datagram(payload)
            receive = session.receive_datagram
        echoes = lost = 0

        async def echo():
            nonlocal echoes
            while True:
                data = await receive()
                assert data == b"echo:" + payload
                echoes += 1
                send()

        async def refill():   # nothing back for 200 ms: the window was lost, send a new one
            nonlocal lost
            seen = -1
            while True:
                await asyncio.sleep(0.2)
                if echoes == seen:
                    lost += window
                    for _ in range(window):
                        send()
                seen = echoes
        for _ in range(window):
            send()
        start = time.perf_counter()
        tasks = [asyncio.ensure_future(echo()), asyncio.ensure_future(refill())]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        counted = echoes
        elapsed = time.perf_counter() - start
        client.close()
    return {f"wt_datagram_echo_w{window}_per_s": round(counted / elapsed), f"wt_datagram_w{window}_lost": lost}


CASES = ("quic_upload", "h3_get", "h3_requests", "wt_datagram", "quic_memory")


async def run_all(host, quic_port, h3_port, ca, plain=False, seconds=3.0, cases=CASES, cert=None, key=None):
    out = {}
    if "quic_memory" in cases:
        out.update(quic_memory_bulk(ca, cert, key))
    if "quic_upload" in cases:
        out.update(await quic_upload(host, quic_port, ca, plain=plain))
    if "h3_get" in cases:
        out.update(await h3_download(host, h3_port, ca, plain=plain))
    if "h3_requests" in cases:
        out.update(await h3_requests(host, h3_port, ca, seconds=seconds, concurrency=1, plain=plain))
        out.update(await h3_requests(host, h3_port, ca, seconds=seconds, concurrency=16, plain=plain))
    if "wt_datagram" in cases:
        out.update(await wt_datagram_echo(host, h3_port, ca, seconds=seconds, window=1, plain=plain))
        out.update(await wt_datagram_echo(host, h3_port, ca, seconds=seconds, window=16, plain=plain))
    return out
