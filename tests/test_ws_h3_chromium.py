"""Chromium 156's WebSocket client over HTTP/3 (RFC 9220, behind
--enable-features=EnableWebsocketsOverHttp3) against the socketiwa ASGI server on CPython. The
server speaks only QUIC, so a socket that opens at all came over HTTP/3; the ASGI scope says so
too. Chromium uses an existing h3 connection of the page's partition opened with credentials
(NOTES.md), so the page fetches from the server first."""
import pytest

import chromium_clients
import quic_peers



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
        result = b.run(page, chromium_clients.WS_PROBE, f"https://127.0.0.1:{port}",
                       f"wss://127.0.0.1:{port}/ws", timeout=60)
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
