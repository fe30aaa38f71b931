"""Chromium 156's own WebTransport client (``new WebTransport(url, {serverCertificateHashes})``)
against the socketiwa WebTransport server (socketiwa.h3.echo.WebTransportEcho): server- and
client-opened uni and bidi streams, datagrams, stream resets with codes both ways, session
close with code and reason both ways, several sessions at once.

Placements: a plain http page on loopback -> the server on CPython; the IWA's own page -> the
server on CPython; the IWA's page -> the server running in Pyodide in that same IWA."""
import pytest
from runtimes import everywhere

import chromium_clients
import quic_peers

H3_PACKAGES = ("socketiwa", "aioquic")


@pytest.fixture(scope="module")
def browser_cert():
    return chromium_clients.make_browser_cert()


@pytest.fixture
def wt_server(browser_cert):
    """The socketiwa WebTransport echo server on CPython; yields (port, its echo handler)."""
    from socketiwa import h3
    from socketiwa.h3.echo import WebTransportEcho
    lt = quic_peers.LoopThread()
    echo = WebTransportEcho()
    config = h3.server_configuration(browser_cert["cert"], browser_cert["key"])

    async def start():
        return await h3.serve("127.0.0.1", 0, configuration=config, webtransport=echo)
    server = lt.run(start())
    yield server.port, echo
    lt.run(server.aclose())
    lt.stop()


def check_probe(result: dict) -> None:
    """What the page must have seen (chromium_clients.WEBTRANSPORT_PROBE against the echo)."""
    assert "error" not in result, result
    assert result["serverUni"] == "server-uni-hello"
    assert result["serverBidi"] == "server-bidi-hello"
    assert result["datagramsEchoed"] >= 28, result   # loopback: at most a stray loss
    assert result["maxDatagramSize"] > 1000
    assert result["bidiEchoOk"] is True
    assert result["uniEcho"] == "uni-echo:hello uni"
    assert result["serverReset"] == {"name": "WebTransportError", "streamErrorCode": 42}
    assert result["clientClose"] == {"closeCode": 4000, "reason": "client-bye"}
    assert result["serverClose"] == {"closeCode": 4242, "reason": "server-bye"}
    assert result["manyEchoes"] == ["echo:many-0", "echo:many-1", "echo:many-2"]
    assert result["manyClosed"] == [{"closeCode": 100 + i, "reason": f"many-{i}"} for i in range(3)]


def check_server(echo, page_origin: str | None) -> None:
    """What the server must have seen of the same probe."""
    import time
    deadline = time.monotonic() + 5
    while len(echo.closes) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)   # the page may see its close before the server has handled it
    first, sessions, closes, resets = echo.sessions[0], echo.sessions, echo.closes, echo.client_resets
    assert first["path"] == "/wt" and first["draft"] == "1"
    if page_origin is not None:
        assert first["origin"] == page_origin
    assert first["peer_settings"].get(0x2B603742) == 1      # Chromium's ENABLE_WEBTRANSPORT
    assert len(sessions) == 5
    assert 9 in resets, resets                              # the page's abort code
    seen = [(c["path"], tuple(c["info"]), c["by_peer"]) for c in closes]
    assert ("/wt", (4000, "client-bye"), True) in seen
    assert ("/wt", (4242, "server-bye"), False) in seen
    for i in range(3):
        assert (f"/wt?n={i}", (100 + i, f"many-{i}"), True) in seen
    # Chromium opens each session stream with a grease capsule: seen, ignored, session fine
    assert any(c["ignored_capsules"] for c in closes)


def test_chromium_webtransport_against_socketiwa_server(wt_server, browser_cert):
    port, echo = wt_server
    with chromium_clients.browser() as b:
        page = b.open()
        result = b.run(page, chromium_clients.WEBTRANSPORT_PROBE, f"https://127.0.0.1:{port}/wt",
                       browser_cert["der_sha256_b64"], 30, timeout=90)
        console = b.console[-20:]
    print("page result:", result, console)
    check_probe(result)
    check_server(echo, b.page_url.rsplit("/", 1)[0])
    print("ready ms:", result["readyMs"], "datagram rtt median ms:", result["datagramRttMedianMs"])


def test_iwa_page_webtransport_client_against_cpython_server(runtime_env, wt_server, browser_cert):
    """The page inside the IWA is the client (its CSP allows https: connections). The probe is
    run over DevTools: the IWA's CSP forbids eval from the page itself."""
    if runtime_env.name != "iwa":
        pytest.skip("the IWA page is the client here")
    port, echo = wt_server
    runner = runtime_env.runner
    expr = f"({chromium_clients.WEBTRANSPORT_PROBE})('https://127.0.0.1:{port}/wt', " \
           f"'{browser_cert['der_sha256_b64']}', 30)"
    result = runner.cdp.evaluate(runner.session, expr, timeout=90)
    check_probe(result)
    check_server(echo, runner.origin)


@pytest.fixture
def iwa_page_probe(runtime_env, browser_cert, free_udp_port):
    """Chromium's WebTransport client in the IWA page, started from the host over DevTools
    against 127.0.0.1:<port>, retried until the server (started by the test body in Pyodide,
    in that same page) answers. Yields the port; checks what the page saw at the end."""
    import threading
    import time
    if runtime_env.name != "iwa":
        yield free_udp_port
        return
    runner = runtime_env.runner
    expr = f"({chromium_clients.WEBTRANSPORT_PROBE})('https://127.0.0.1:{free_udp_port}/wt', " \
           f"'{browser_cert['der_sha256_b64']}', 30)"
    box = {}

    def run():
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                box["result"] = runner.cdp.evaluate(runner.session, expr, timeout=60)
            except Exception as exc:   # noqa: BLE001 - reported below
                box["result"] = {"error": repr(exc)}
            if "ready" in box["result"].get("steps", []) or "error" not in box["result"]:
                return
            time.sleep(0.5)    # the server is not listening yet
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield free_udp_port
    thread.join(100)
    print("page result:", box.get("result"))
    check_probe(box["result"])


@everywhere(timeout=150, packages=H3_PACKAGES, only=("iwa",))
async def test_iwa_page_webtransport_client_against_server_in_the_iwa(selenium, iwa_page_probe, browser_cert):
    """The socketiwa server runs in Pyodide inside the IWA (Direct Sockets UDP); Chromium's
    WebTransport client in the same page connects to it over loopback."""
    import asyncio
    from socketiwa import h3
    from socketiwa.h3.echo import WebTransportEcho
    echo = WebTransportEcho()
    server = await h3.serve("127.0.0.1", iwa_page_probe, webtransport=echo,
                            configuration=h3.server_configuration(browser_cert["cert"], browser_cert["key"]))
    try:
        for _ in range(1200):   # the probe closes five sessions in the end
            if len(echo.closes) >= 5:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
    finally:
        await server.aclose()
    seen = [(c["path"], tuple(c["info"]), c["by_peer"]) for c in echo.closes]
    assert ("/wt", (4000, "client-bye"), True) in seen and ("/wt", (4242, "server-bye"), False) in seen
    for i in range(3):
        assert (f"/wt?n={i}", (100 + i, f"many-{i}"), True) in seen
    assert 9 in echo.client_resets
    assert echo.sessions[0]["origin"].startswith("isolated-app://")
    assert echo.sessions[0]["peer_settings"].get(0x2B603742) == 1
