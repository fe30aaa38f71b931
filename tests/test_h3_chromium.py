"""Chromium 156's own HTTP/3 stack (navigation and fetch, forced onto QUIC with
--origin-to-force-quic-on and the certificate trusted by SPKI hash) against the socketiwa
HTTP/3 server (an ASGI app) on CPython; ``nextHopProtocol == "h3"`` asserted in the page."""
import hashlib

import pytest

import chromium_clients
import quic_peers



@pytest.fixture(scope="module")
def browser_cert():
    return chromium_clients.make_browser_cert()


@pytest.fixture
def h3_site(browser_cert):
    """The socketiwa HTTP/3 server (CPython) with a small site; yields (port, requests seen)."""
    from socketiwa import h3
    seen = []
    protocols = []   # every connection the app saw a request on
    lt = quic_peers.LoopThread()

    async def app(scope, receive, send):
        headers = dict(scope["headers"])
        ext = scope["extensions"]["socketiwa.h3"]
        if ext["stream"].protocol not in protocols:
            protocols.append(ext["stream"].protocol)
        seen.append((scope["method"], scope["path"], scope["http_version"],
                     headers.get(b"user-agent", b"").decode(), ext["early_data"]))
        path = scope["path"]
        if path == "/close-conn":   # answer, then end this connection so the next one resumes
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"2"), (b"access-control-allow-origin", b"*"),
                                    (b"timing-allow-origin", b"*")]})
            await send({"type": "http.response.body", "body": b"ok"})
            stream = ext["stream"]
            stream.protocol._loop.call_later(0.2, stream.protocol.close, 0x100, "closing for resumption")
            return
        cors = [(b"access-control-allow-origin", b"*"), (b"timing-allow-origin", b"*")]
        if path == "/page.html":
            body = b"<!doctype html><title>served over h3 by socketiwa</title><p>hello"
            ctype = b"text/html; charset=utf-8"
        elif path == "/bytes":
            n = int(scope["query_string"].decode().split("=")[1])
            body = bytes(i % 251 for i in range(n))
            ctype = b"application/octet-stream"
        elif path == "/echo":
            body = b""
            more = True
            while more:
                m = await receive()
                body += m["body"]
                more = m["more_body"]
            ctype = b"text/plain"
            cors.append((b"x-probe-seen", headers.get(b"x-probe", b"-")))
        elif path.startswith("/hello/"):
            body, ctype = b"hello " + path.encode(), b"text/plain"
        else:
            await send({"type": "http.response.start", "status": 404, "headers": cors})
            await send({"type": "http.response.body", "body": b"not here"})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                                (b"cache-control", b"no-store")] + cors})
        # in pieces, so the response really streams
        for i in range(0, len(body), 65536):
            await send({"type": "http.response.body", "body": body[i:i + 65536],
                        "more_body": i + 65536 < len(body)})
        if not body:
            await send({"type": "http.response.body", "body": b""})

    config = h3.server_configuration(browser_cert["cert"], browser_cert["key"])

    async def start():
        return await h3.serve("127.0.0.1", 0, configuration=config, app=app, tickets=tickets)
    tickets = h3.ServerTicketStore()
    server = lt.run(start())
    yield server.port, seen, tickets, lambda: [(p.handshake.session_resumed, p.handshake.early_data_accepted)
                                             for p in protocols if p.handshake]
    lt.run(server.aclose())
    lt.stop()


def test_chromium_fetch_and_navigation_over_h3(h3_site, browser_cert):
    port, seen, _, _ = h3_site
    base = f"https://127.0.0.1:{port}"
    flags = chromium_clients.force_quic_flags(port, browser_cert["spki_sha256_b64"])
    with chromium_clients.browser(flags) as b:
        page = b.open(base + "/page.html")        # navigation over h3
        same_origin = b.run(page, chromium_clients.FETCH_PROBE, base, timeout=60)
        other = b.open()                          # the plain http page: cross-origin fetches
        cross = b.run(other, "async (u) => { const r = await fetch(u); const t = await r.text();"
                             " return [r.status, t, performance.getEntriesByName(u)[0].nextHopProtocol]; }",
                      base + "/hello/x", timeout=30)
        console = b.console[-10:]
    print("same origin:", same_origin, "\ncross origin:", cross)
    assert same_origin["navigationProtocol"] == "h3", (same_origin, console)
    assert same_origin["title"] == "served over h3 by socketiwa"
    expected = hashlib.sha256(bytes(i % 251 for i in range(2000000))).hexdigest()
    assert same_origin["bytes"]["status"] == 200 and same_origin["bytes"]["length"] == 2000000
    assert same_origin["bytes"]["digest"] == expected
    assert same_origin["bytes"]["protocol"] == "h3"
    assert same_origin["echo"] == {"status": 200, "length": 300000, "ok": True, "probe": "yes",
                                   "protocol": "h3"}
    assert same_origin["parallel"] == {"ok": True, "protocols": ["h3"]}
    assert same_origin["missing"] == 404
    assert cross == [200, "hello /hello/x", "h3"]
    # the server saw Chromium, over HTTP/3
    assert {s[2] for s in seen} == {"3"}
    assert all("Chrome/" in s[3] for s in seen)
    print(f"2 MB fetch: {same_origin['bytes']['ms']:.1f} ms "
          f"({2 / (same_origin['bytes']['ms'] / 1000):.1f} MB/s)")




def test_chromium_fetch_resumes_with_0rtt(h3_site, browser_cert):
    """After the server closes the connection, Chromium's next fetch resumes the TLS session
    with a ticket from the socketiwa server's store and sends the GET as 0-RTT data."""
    port, seen, tickets, handshakes = h3_site
    base = f"https://127.0.0.1:{port}"
    flags = chromium_clients.force_quic_flags(port, browser_cert["spki_sha256_b64"])
    with chromium_clients.browser(flags) as b:
        page = b.open()
        try:
            result = b.run(page, chromium_clients.RESUME_PROBE, base, timeout=60)
        finally:
            print("server:", [s[:2] + s[4:] for s in seen], handshakes(), tickets.issued, tickets.resumed,
                  b.console[-8:])
    print("page:", result, "\nserver:", [s[:2] + s[4:] for s in seen], handshakes(), tickets.issued, tickets.resumed)
    assert result["first"]["status"] == 200 and result["first"]["protocol"] == "h3"
    assert result["resumed"]["status"] == 200 and result["resumed"]["protocol"] == "h3"
    assert result["resumed"]["text"].startswith("hello /hello/resumed")
    assert tickets.issued >= 1 and tickets.resumed >= 1
    assert (True, True) in handshakes()           # resumed, early data accepted
    # Chromium mostly sends this GET in its 0-RTT flight (the server then acts on it as early
    # data); when it opens the new connection ahead of the request, the GET follows the
    # handshake.
    resumed = [s for s in seen if s[1] == "/hello/resumed"]
    assert resumed
    print("the resumed GET came as 0-RTT data:", resumed[0][4])
