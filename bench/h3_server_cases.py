"""The socketiwa HTTP/3 server as a benchmark subject (bench/bench_h3.py ``servers``): the server
below runs unchanged on CPython and inside the IWA; the clients measuring it are aioquic alone
on CPython (this file's plain-aioquic cases and bench/h3_cases.py) and Chromium's own network
stack (the in-page probes below).

Server paths: ``/hello`` (small answer), ``/bytes?n=N`` (N bytes in 64 KiB pieces), ``/ttfb/...``
(small answer; whether it came as 0-RTT early data is recorded), ``/stats`` (those records, JSON),
``/close-conn`` (answers, then closes the connection: the client's next request needs a new one),
``/done`` (stops the server). WebTransport on ``/wt``: datagrams echoed with the prefix ``echo:``
(as bench/h3_cases.py expects), each bidirectional stream read to its end and answered with the
byte count. Standard library, aioquic and socketiwa names only (this source is shipped to Pyodide).
"""
import asyncio
import json
import statistics
import time

PIECE = 64 * 1024
CORS = [(b"access-control-allow-origin", b"*"), (b"timing-allow-origin", b"*"), (b"cache-control", b"no-store")]


async def serve_bench(port, cert_pem, key_pem, seconds=1800):
    """Serve until ``/done`` (or ``seconds``); returns how many /ttfb requests were early data."""
    from socketiwa import h3

    done = asyncio.Event()
    ttfb_seen = []            # [path, early_data]
    zeros = bytes(PIECE)

    async def respond(send, body, status=200):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(body)).encode()), *CORS]})
        await send({"type": "http.response.body", "body": body})

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        path, ext = scope["path"], scope["extensions"]["socketiwa.h3"]
        if path == "/bytes":
            n = int(dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)["n"])
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(n).encode()), *CORS]})
            while n > 0:
                piece = zeros[:min(n, PIECE)]
                n -= len(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": n > 0})
        elif path == "/hello":
            await respond(send, b"hello /hello")
        elif path.startswith("/ttfb/"):
            ttfb_seen.append([path, ext["early_data"]])
            await respond(send, b"ttfb")
        elif path == "/stats":
            await respond(send, json.dumps(ttfb_seen).encode())
        elif path == "/close-conn":
            await respond(send, b"closing")
            protocol = ext["stream"].protocol
            asyncio.get_running_loop().call_later(0.1, protocol.close, 0x100, "closed for the next sample")
        elif path == "/done":
            await respond(send, b"bye")
            done.set()
        else:
            await respond(send, b"not here", 404)

    async def on_session(session):
        if session.path.split("?")[0] != "/wt":
            return await session.reject(404)
        await session.accept()

        async def echo():
            while True:
                session.send_datagram(b"echo:" + await session.receive_datagram())

        async def count(stream):
            n = 0
            while chunk := await stream.read():
                n += len(chunk)
            await stream.write(str(n).encode(), end=True)

        async def streams():
            while True:
                asyncio.ensure_future(count(await session.accept_bidirectional_stream()))
        tasks = [asyncio.ensure_future(echo()), asyncio.ensure_future(streams())]
        try:
            await session.wait_closed()
        finally:
            for t in tasks:
                t.cancel()

    server = await h3.serve("127.0.0.1", port, app=app, webtransport=on_session, tickets=h3.ServerTicketStore(),
                            configuration=h3.server_configuration(cert_pem, key_pem))
    try:
        await asyncio.wait_for(done.wait(), seconds)
        await asyncio.sleep(0.3)           # the /done answer reaches the client before the close
    finally:
        await server.aclose()
    return sum(1 for _, early in ttfb_seen if early)


# ---------------------------------------------------------------- aioquic clients (CPython)

def _plain_client_class():
    from aioquic.asyncio import QuicConnectionProtocol
    from aioquic.h3.connection import H3Connection
    from aioquic.h3.events import DataReceived, HeadersReceived, WebTransportStreamDataReceived
    from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, StreamDataReceived

    class Client(QuicConnectionProtocol):
        """aioquic's H3Connection as a CPython user drives it."""

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.http = H3Connection(self._quic, enable_webtransport=True)
            self.handshake = None
            self.waiting = {}       # stream id -> (future, headers only)
            self.bodies = {}
            self.raw_streams = set()

        def quic_event_received(self, event):
            if isinstance(event, HandshakeCompleted):
                self.handshake = event
            if isinstance(event, StreamDataReceived) and event.stream_id in self.raw_streams:
                # the answer on a WebTransport stream we opened: raw bytes (aioquic 1.7.2's
                # H3Connection would parse them as HTTP/3 frames and fail)
                self.bodies[event.stream_id] = self.bodies.get(event.stream_id, b"") + event.data
                future, _ = self.waiting.get(event.stream_id, (None, False))
                if event.end_stream and future and not future.done():
                    future.set_result(self.bodies.pop(event.stream_id))
                return
            if isinstance(event, ConnectionTerminated):
                for future, _ in self.waiting.values():
                    if not future.done():
                        future.set_exception(ConnectionError(event.reason_phrase))
            for ev in self.http.handle_event(event):
                if isinstance(ev, (HeadersReceived, DataReceived, WebTransportStreamDataReceived)):
                    if not isinstance(ev, HeadersReceived):
                        self.bodies[ev.stream_id] = self.bodies.get(ev.stream_id, b"") + ev.data
                    future, headers_only = self.waiting.get(ev.stream_id, (None, False))
                    finished = ev.stream_ended or (headers_only and isinstance(ev, HeadersReceived))
                    if future and not future.done() and finished:
                        future.set_result(self.bodies.pop(ev.stream_id, b""))

        def _wait(self, stream_id, headers_only=False):
            future = asyncio.get_running_loop().create_future()
            self.waiting[stream_id] = (future, headers_only)
            return future

        async def get(self, path, headers_only=False, extra=(), method=b"GET"):
            sid = self._quic.get_next_available_stream_id()
            future = self._wait(sid, headers_only)
            self.http.send_headers(sid, [(b":method", method), (b":scheme", b"https"),
                                         (b":authority", b"localhost"), (b":path", path.encode()), *extra],
                                   end_stream=method == b"GET")
            self.transmit()
            return sid, await future
    return Client


def _config(ca):
    from aioquic.h3.connection import H3_ALPN
    from aioquic.quic.configuration import QuicConfiguration
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost",
                               max_datagram_frame_size=65536)
    config.load_verify_locations(cadata=ca.encode())
    return config


async def aioquic_ttfb(host, port, ca, samples=15):
    """Time to the first response byte (the response headers) of a GET on a new connection,
    from the start of the connection: a full handshake (no ticket), resumed with a ticket but
    the GET sent after the handshake, and resumed with the GET as 0-RTT early data. Rounds
    interleave the three, each resumption with the newest ticket (single use on the server)."""
    import dataclasses
    from aioquic.asyncio import connect
    tickets = []
    kinds = {"full": [], "resumed": [], "0rtt": []}
    early_accepted = 0

    async def one(kind, i):
        nonlocal early_accepted
        config = _config(ca)
        if kind != "full":
            config = dataclasses.replace(config, session_ticket=tickets.pop())
        start = time.perf_counter()
        async with connect(host, port, configuration=config, create_protocol=_plain_client_class(),
                           session_ticket_handler=tickets.append, wait_connected=kind != "0rtt") as client:
            await client.get(f"/ttfb/{kind}/{i}", headers_only=True)
            kinds[kind].append((time.perf_counter() - start) * 1000)
            for _ in range(200):      # the handshake's end, then the NewSessionTicket that follows it
                if client.handshake is not None and tickets:
                    break
                await asyncio.sleep(0.005)   # (aioquic's wait_connected cannot follow wait_connected=False)
            if kind == "0rtt" and client.handshake.early_data_accepted:
                early_accepted += 1
            assert (kind == "full") != client.handshake.session_resumed, (kind, client.handshake)
            client.close()
    for i in range(samples):
        for kind in kinds:
            await one(kind, i)
    out = {f"ttfb_{k}_ms": round(statistics.median(v), 2) for k, v in kinds.items()}
    out["ttfb_0rtt_accepted"] = f"{early_accepted}/{samples}"
    return out


async def aioquic_wt_stream_upload(host, port, ca, nbytes=8 * 1024 * 1024):
    """One WebTransport bidirectional stream: ``nbytes`` written, payload MB/s until the
    server's byte count came back."""
    from aioquic.asyncio import connect
    async with connect(host, port, configuration=_config(ca), create_protocol=_plain_client_class()) as client:
        session, _ = await client.get("/wt", headers_only=True, method=b"CONNECT",
                                      extra=[(b":protocol", b"webtransport"), (b"origin", b"https://localhost")])
        sid = client.http.create_webtransport_stream(session, is_unidirectional=False)
        client.raw_streams.add(sid)
        answer = client._wait(sid)
        piece = bytes(PIECE)
        start = time.perf_counter()
        for offset in range(0, nbytes, PIECE):
            client._quic.send_stream_data(sid, piece, end_stream=offset + PIECE >= nbytes)
            client.transmit()
            await asyncio.sleep(0)            # let acknowledgements in (aioquic buffers without limit)
        counted = int(await answer)
        elapsed = time.perf_counter() - start
        client.close()
    assert counted == nbytes, (counted, nbytes)
    return {"wt_stream_mb_per_s": round(nbytes / elapsed / 1e6, 2)}


async def aioquic_stop(host, port, ca):
    """GET /stats then /done: returns the server's /ttfb records."""
    from aioquic.asyncio import connect
    async with connect(host, port, configuration=_config(ca), create_protocol=_plain_client_class()) as client:
        _, stats = await client.get("/stats")
        await client.get("/done")
        client.close()
    return json.loads(stats)


# ---------------------------------------------------------------- Chromium probes (in a page)

# Resource Timing gives the time to the first byte of the response (responseStart) from the
# fetch's start, which covers setting up the connection when the fetch needed a new one.
CHROMIUM_TTFB = r"""
async (base, label, samples, closeFirst) => {
  const ms = [];
  for (let i = 0; i < samples; i++) {
    if (closeFirst) {           // the server closes the connection: the next fetch resumes on a new one
      await (await fetch(base + '/close-conn?' + label + i, {cache: 'no-store'})).text();
      await new Promise(r => setTimeout(r, 400));
    }
    const url = base + '/ttfb/' + label + '/' + i;
    await (await fetch(url, {cache: 'no-store'})).text();
    const e = performance.getEntriesByName(url).pop();
    if (e.nextHopProtocol !== 'h3') throw new Error('not h3: ' + e.nextHopProtocol);
    ms.push(e.responseStart - e.startTime);
  }
  return ms;
}
"""

CHROMIUM_GET = r"""
async (base, nbytes, runs) => {
  await (await fetch(base + '/hello', {cache: 'no-store'})).text();      // the connection is up
  const rates = [];
  for (let i = 0; i < runs; i++) {
    const url = base + '/bytes?n=' + nbytes + '&i=' + i;
    const t = performance.now();
    const body = await (await fetch(url, {cache: 'no-store'})).arrayBuffer();
    const s = (performance.now() - t) / 1000;
    if (body.byteLength !== nbytes) throw new Error('short body ' + body.byteLength);
    if (performance.getEntriesByName(url).pop().nextHopProtocol !== 'h3') throw new Error('not h3');
    rates.push(nbytes / s / 1e6);
  }
  return rates;
}
"""

CHROMIUM_WT = r"""
async (url, hashB64, seconds, window, nbytes) => {
  const hash = Uint8Array.from(atob(hashB64), c => c.charCodeAt(0));
  const wt = new WebTransport(url, {serverCertificateHashes: [{algorithm: 'sha-256', value: hash}]});
  await wt.ready;
  const out = {};
  // datagram echoes, `window` in flight; a datagram may be lost: refill after 200 ms of silence
  const w = wt.datagrams.writable.getWriter(), r = wt.datagrams.readable.getReader();
  const payload = new Uint8Array(64);
  let echoes = 0, lost = 0, running = true;
  const send = () => w.write(payload);
  for (let i = 0; i < window; i++) send();
  const t0 = performance.now();
  let seen = -1;
  const refill = setInterval(() => {
    if (seen === echoes) { lost += window; for (let i = 0; i < window; i++) send(); }
    seen = echoes;
  }, 200);
  const stop = new Promise(res => setTimeout(res, seconds * 1000));
  const loop = (async () => { while (running) { const {value, done} = await r.read(); if (done) break;
                                               if (value.byteLength === 69) { echoes++; send(); } } })();
  await stop; running = false; clearInterval(refill);
  out.wt_datagram_echo_w16_per_s = Math.round(echoes / ((performance.now() - t0) / 1000));
  out.wt_datagram_w16_lost = lost;
  // one bidirectional stream, nbytes up, the server answers the count
  const s = await wt.createBidirectionalStream();
  const sw = s.writable.getWriter();
  const piece = new Uint8Array(65536);
  const t1 = performance.now();
  for (let sent = 0; sent < nbytes; sent += piece.length) await sw.write(piece);
  await sw.close();
  const reader = s.readable.getReader(); let text = '';
  for (;;) { const {value, done} = await reader.read(); if (done) break; text += new TextDecoder().decode(value); }
  const secs = (performance.now() - t1) / 1000;
  if (Number(text) !== nbytes) throw new Error('server counted ' + text);
  out.wt_stream_mb_per_s = Math.round(nbytes / secs / 1e6 * 100) / 100;
  wt.close({closeCode: 0, reason: 'done'});
  return out;
}
"""
