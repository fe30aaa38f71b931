"""Chromium 156's WebSocket client over HTTP/3 (RFC 9220, behind
--enable-features=EnableWebsocketsOverHttp3) against the socketiwa ASGI server on CPython. The
server speaks only QUIC, so a socket that opens at all came over HTTP/3; the ASGI scope says so
too. Chromium uses an existing h3 connection of the page's partition opened with credentials
(NOTES.md), so the page fetches from the server first."""
import pytest

import chromium_clients
import quic_peers

WS_PROBE = r"""
async (base, url) => {
  const out = {};
  const within = (p, ms, what) => Promise.race([p, new Promise((_, rej) =>
      setTimeout(() => rej(new Error('timeout: ' + what)), ms))]);
  const r = await fetch(base + '/warm', {mode: 'no-cors', credentials: 'include'});
  await r.arrayBuffer();
  out.warm = r.type;
  const open = (u) => new Promise((res, rej) => {
    const ws = new WebSocket(u); ws.binaryType = 'arraybuffer';
    ws.onopen = () => res(ws);
    ws.onclose = (e) => rej(new Error('closed before open: ' + e.code));
  });
  const next = (ws) => new Promise((res) => { ws.onmessage = (e) => res(e.data); });
  try {
    const t0 = performance.now();
    const ws = await within(open(url), 8000, 'open');
    out.openMs = performance.now() - t0;
    out.protocol = ws.protocol;
    const rtts = [];
    for (let i = 0; i < 10; i++) {
      const s = performance.now(); const got = next(ws); ws.send('m' + i);
      if (await within(got, 3000, 'echo') !== 'M' + i) out.mismatch = i;
      rtts.push(performance.now() - s);
    }
    rtts.sort((a, b) => a - b); out.echoRttMedianMs = rtts[5];
    const big = 'z'.repeat(200000);          // Chromium fragments large messages
    let got = next(ws); ws.send(big); out.bigOk = (await within(got, 5000, 'big')) === big.toUpperCase();
    got = next(ws); ws.send(new Uint8Array([1, 2, 3, 250]));
    out.binary = Array.from(new Uint8Array(await within(got, 3000, 'binary')));
    out.clientClose = await within(new Promise((res) => {
      ws.onclose = (e) => res({code: e.code, reason: e.reason, wasClean: e.wasClean});
      ws.close(4000, 'client-bye'); }), 5000, 'close');
    const ws2 = await within(open(url), 8000, 'open 2');
    out.serverClose = await within(new Promise((res) => {
      ws2.onclose = (e) => res({code: e.code, reason: e.reason, wasClean: e.wasClean});
      ws2.send('close-me'); }), 5000, 'server close');
  } catch (e) { out.error = String(e); }
  return out;
}
"""


@pytest.fixture(scope="module")
def browser_cert():
    return chromium_clients.make_browser_cert()


@pytest.fixture
def ws_server(browser_cert):
    from socketiwa import h3
    seen = []
    lt = quic_peers.LoopThread()

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"access-control-allow-origin", b"*"), (b"timing-allow-origin", b"*")]})
            await send({"type": "http.response.body", "body": b"warm"})
            return
        seen.append(("open", scope["path"], scope["http_version"],
                     dict(scope["headers"]).get(b"sec-websocket-key")))
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect":
                seen.append(("disconnect", m["code"], m.get("reason")))
                return
            if m.get("text") == "close-me":
                await send({"type": "websocket.close", "code": 4001, "reason": "server-bye"})
                return
            if m.get("text") is not None:
                await send({"type": "websocket.send", "text": m["text"].upper()})
            else:
                await send({"type": "websocket.send", "bytes": m["bytes"]})

    config = h3.server_configuration(browser_cert["cert"], browser_cert["key"])

    async def start():
        return await h3.serve("127.0.0.1", 0, configuration=config, app=app)
    server = lt.run(start())
    yield server.port, seen
    lt.run(server.aclose())
    lt.stop()


def test_chromium_websocket_over_h3_against_socketiwa_server(ws_server, browser_cert):
    port, seen = ws_server
    flags = chromium_clients.force_quic_flags(port, browser_cert["spki_sha256_b64"]) + \
        ["--enable-features=EnableWebsocketsOverHttp3"]
    with chromium_clients.browser(flags) as b:
        page = b.open()
        result = b.run(page, WS_PROBE, f"https://127.0.0.1:{port}", f"wss://127.0.0.1:{port}/ws", timeout=60)
        console = b.console[-10:]
    print("page:", result, "\nserver:", seen)
    assert "error" not in result, (result, console)
    assert result["warm"] == "opaque"
    assert "mismatch" not in result and result["bigOk"] is True
    assert result["binary"] == [1, 2, 3, 250]
    assert result["clientClose"] == {"code": 4000, "reason": "client-bye", "wasClean": True}
    assert result["serverClose"] == {"code": 4001, "reason": "server-bye", "wasClean": True}
    opens = [s for s in seen if s[0] == "open"]
    assert [s[1:3] for s in opens] == [("/ws", "3"), ("/ws", "3")]
    assert all(s[3] is None for s in opens)        # Chromium's RFC 9220 form: no key
    assert ("disconnect", 4000, "client-bye") in seen
    print(f"open {result['openMs']:.1f} ms, echo rtt median {result['echoRttMedianMs']:.2f} ms")
