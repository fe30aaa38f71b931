"""Chromium's own HTTP/3 clients (navigation, fetch with 0-RTT resumption, WebSocket over h3,
WebTransport from a plain page) against the socketiwa HTTP/3 server running in Pyodide: under
Node, and inside the IWA (a second, plain Chromium is the client; the IWA's Chromium runs the
server). The server side of each exchange is asserted in the runtime, the client side on the
host."""
import hashlib
import threading

import pytest
from runtimes import everywhere

import chromium_clients
import h3_peers

H3_PACKAGES = ("socketiwa", "aioquic", "wsproto")


@pytest.fixture(scope="module")
def browser_cert():
    return chromium_clients.make_browser_cert()


@pytest.fixture
def chromium_client(runtime_env, free_udp_port, browser_cert):
    """Runs Chromium's probes against https://127.0.0.1:<port> once the runtime's server
    listens; yields the port, then checks what the pages saw."""
    if runtime_env.name == "cpython":
        yield free_udp_port   # the body skips: test_h3_chromium.py covers CPython
        return
    port = free_udp_port
    base = f"https://127.0.0.1:{port}"
    box = {}

    def run():
        try:
            h3_peers.wait_for_h3_server(port)
            flags = chromium_clients.force_quic_flags(port, browser_cert["spki_sha256_b64"]) + \
                ["--enable-features=EnableWebsocketsOverHttp3"]
            with chromium_clients.browser(flags) as b:
                page = b.open(base + "/page.html")
                box["fetch"] = b.run(page, chromium_clients.FETCH_PROBE, base, timeout=120)
                plain = b.open()
                box["ws"] = b.run(plain, chromium_clients.WS_PROBE, base, f"wss://127.0.0.1:{port}/ws", timeout=60)
                box["resume"] = b.run(plain, chromium_clients.RESUME_PROBE, base, timeout=60)
                box["webtransport"] = b.run(plain, chromium_clients.WEBTRANSPORT_PROBE, base + "/wt",
                                            browser_cert["der_sha256_b64"], 30, timeout=120)
                b.run(plain, "async (u) => (await fetch(u)).status", base + "/done", timeout=30)
        except Exception as exc:   # noqa: BLE001 - reported at the end
            box["error"] = repr(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield port
    thread.join(240)
    print("pages:", box)
    assert "error" not in box, box
    fetch = box["fetch"]
    assert fetch["navigationProtocol"] == "h3" and fetch["title"] == "served over h3 by socketiwa"
    assert fetch["bytes"]["protocol"] == "h3" and fetch["bytes"]["length"] == 2000000
    assert fetch["bytes"]["digest"] == hashlib.sha256((bytes(range(251)) * 7969)[:2000000]).hexdigest()
    assert fetch["echo"] == {"status": 200, "length": 300000, "ok": True, "probe": "yes", "protocol": "h3"}
    assert fetch["parallel"] == {"ok": True, "protocols": ["h3"]} and fetch["missing"] == 404
    ws = box["ws"]
    assert "error" not in ws, ws
    assert ws["bigOk"] is True and ws["binary"] == [1, 2, 3, 250]
    assert ws["clientClose"] == {"code": 4000, "reason": "client-bye", "wasClean": True}
    assert ws["serverClose"] == {"code": 4001, "reason": "server-bye", "wasClean": True}
    from test_webtransport_chromium import check_probe
    check_probe(box["webtransport"])
    resume = box["resume"]
    assert resume["resumed"]["status"] == 200 and resume["resumed"]["protocol"] == "h3"
    print(f"2 MB fetch from the {runtime_env.name} server: {fetch['bytes']['ms']:.0f} ms; "
          f"first fetch {resume['first']['ms']:.1f} ms, resumed (0-RTT) {resume['resumed']['ms']:.1f} ms; "
          f"WebSocket echo rtt median {ws['echoRttMedianMs']:.2f} ms; WebTransport ready "
          f"{box['webtransport']['readyMs']:.0f} ms, datagram rtt median "
          f"{box['webtransport']['datagramRttMedianMs']:.2f} ms")


@everywhere(timeout=300, packages=H3_PACKAGES, only=("node", "iwa"))
async def test_chromium_h3_clients_against_runtime_server(selenium, chromium_client, browser_cert):
    import asyncio
    from socketiwa import h3

    seen = []
    connections = []
    done = asyncio.Event()
    cors = [(b"access-control-allow-origin", b"*"), (b"timing-allow-origin", b"*")]

    async def respond(send, body, ctype=b"text/plain", extra=()):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                                (b"cache-control", b"no-store"), *cors, *extra]})
        for i in range(0, max(len(body), 1), 65536):
            await send({"type": "http.response.body", "body": body[i:i + 65536],
                        "more_body": i + 65536 < len(body)})

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return
        ext = scope["extensions"]["socketiwa.h3"]
        seen.append((scope["type"], scope["path"], scope["http_version"], ext["early_data"]))
        if ext["stream"].protocol not in connections:
            connections.append(ext["stream"].protocol)
        path = scope["path"]
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                m = await receive()
                if m["type"] == "websocket.disconnect":
                    seen.append(("ws-disconnect", m["code"], m.get("reason")))
                    return
                if m.get("text") == "close-me":
                    await send({"type": "websocket.close", "code": 4001, "reason": "server-bye"})
                    return
                if m.get("text") is not None:
                    await send({"type": "websocket.send", "text": m["text"].upper()})
                else:
                    await send({"type": "websocket.send", "bytes": m["bytes"]})
        elif path == "/page.html":
            await respond(send, b"<!doctype html><title>served over h3 by socketiwa</title>", b"text/html")
        elif path == "/bytes":
            n = int(scope["query_string"].decode().split("=")[1])
            await respond(send, (bytes(range(251)) * (n // 251 + 1))[:n], b"application/octet-stream")
        elif path == "/echo":
            body, more = b"", True
            while more:
                m = await receive()
                body += m["body"]
                more = m["more_body"]
            probe = dict(scope["headers"]).get(b"x-probe", b"-")
            await respond(send, body, extra=[(b"x-probe-seen", probe)])
        elif path.startswith("/hello/") or path == "/warm":
            await respond(send, b"hello " + path.encode())
        elif path == "/close-conn":
            await respond(send, b"ok")
            proto = ext["stream"].protocol
            proto._loop.call_later(0.2, proto.close, 0x100, "closing for resumption")
        elif path == "/done":
            await respond(send, b"bye")
            done.set()
        else:
            await send({"type": "http.response.start", "status": 404, "headers": cors})
            await send({"type": "http.response.body", "body": b"not here"})

    from socketiwa.h3.echo import WebTransportEcho
    echo = WebTransportEcho()
    server = await h3.serve("127.0.0.1", chromium_client, app=app, tickets=h3.ServerTicketStore(),
                            webtransport=echo,
                            configuration=h3.server_configuration(browser_cert["cert"], browser_cert["key"]))
    try:
        await asyncio.wait_for(done.wait(), 280)
        await asyncio.sleep(0.5)   # the /done answer must reach the page before the close
    finally:
        await server.aclose()
    assert {s[2] for s in seen if s[0] in ("http", "websocket")} == {"3"}
    assert ("websocket", "/ws", "3", False) in seen and ("ws-disconnect", 4000, "client-bye") in seen
    resumed = [s for s in seen if s[0] == "http" and s[1] == "/hello/resumed"]
    assert resumed
    # a connection resumed with a ticket from this server and its 0-RTT accepted (the GET
    # itself rides in it when Chromium does not open the connection ahead of the request)
    assert any(p.handshake.session_resumed and p.handshake.early_data_accepted
               for p in connections if p.handshake is not None)
    # (other GETs may ride 0-RTT too: Chromium shares tickets between its connections)
    seen_closes = [(c["path"], tuple(c["info"]), c["by_peer"]) for c in echo.closes]
    assert ("/wt", (4000, "client-bye"), True) in seen_closes
    assert ("/wt", (4242, "server-bye"), False) in seen_closes
    assert 9 in echo.client_resets and echo.sessions[0]["origin"].startswith("http://127.0.0.1:")
