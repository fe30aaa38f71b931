"""Chromium 156's own WebTransport client (``new WebTransport(url, {serverCertificateHashes})``
in a plain http page on loopback) against the socketiwa WebTransport server on CPython:
server- and client-opened uni and bidi streams, datagrams, stream resets with codes both ways,
session close with code and reason both ways, several sessions at once."""
import asyncio

import pytest

import chromium_clients
import quic_peers


@pytest.fixture(scope="module")
def browser_cert():
    return chromium_clients.make_browser_cert()


@pytest.fixture
def wt_server(browser_cert):
    """The socketiwa WebTransport server (CPython, native backend) with the behaviour the page
    probe expects; yields (port, what the server saw)."""
    from socketiwa import h3
    seen = {"sessions": [], "closes": [], "client_resets": [], "connections": set()}
    lt = quic_peers.LoopThread()

    async def on_session(session):
        seen["sessions"].append({"path": session.path, "origin": session.origin,
                                 "draft": h3.header_value(session.request_headers, "sec-webtransport-http3-draft02"),
                                 "peer_settings": dict(session.protocol.peer_settings or {})})
        seen["connections"].add(id(session.protocol))
        if not session.path.startswith("/wt"):
            return await session.reject(404)
        await session.accept()
        tasks = []

        async def datagrams():
            while True:
                data = await session.receive_datagram()
                if data == b"close-me":
                    await session.close(4242, "server-bye")
                    return
                session.send_datagram(b"echo:" + data)

        async def bidi_echo(stream):
            # the first 8 bytes say what the page wants: "reset-me", "abort-me" or plain echo
            head = b""
            while len(head) < 8 and (piece := await stream.read(8 - len(head))):
                head += piece
            if head == b"abort-me":   # the page aborts this stream with code 9
                try:
                    await stream.read_all()
                except h3.StreamResetError as exc:
                    seen["client_resets"].append(exc.code)
                return
            data = head + await stream.read_all()
            if data == b"reset-me":
                stream.reset(42)
            else:
                await stream.write(data, end=True)

        async def bidi():
            while True:
                stream = await session.accept_bidirectional_stream()
                tasks.append(asyncio.ensure_future(bidi_echo(stream)))

        async def uni():
            while True:
                stream = await session.accept_unidirectional_stream()
                data = await stream.read_all()
                reply = await session.create_unidirectional_stream()
                await reply.write(b"uni-echo:" + data, end=True)

        tasks += [asyncio.ensure_future(f()) for f in (datagrams, bidi, uni)]
        out_uni = await session.create_unidirectional_stream()
        await out_uni.write(b"server-uni-hello", end=True)
        out_bidi = await session.create_bidirectional_stream()
        await out_bidi.write(b"server-bidi-hello", end=True)
        try:
            seen["closes"].append((session.path, await session.wait_closed(), session.closed_by_peer,
                                   list(session.ignored_capsules)))
        finally:
            for t in tasks:
                t.cancel()

    config = h3.server_configuration(browser_cert["cert"], browser_cert["key"])

    async def start():
        return await h3.serve("127.0.0.1", 0, configuration=config, webtransport=on_session)
    server = lt.run(start())
    yield server.port, seen
    lt.run(server.aclose())
    lt.stop()


def test_chromium_webtransport_against_socketiwa_server(wt_server, browser_cert):
    port, seen = wt_server
    with chromium_clients.browser() as b:
        page = b.open()
        result = b.run(page, chromium_clients.WEBTRANSPORT_PROBE, f"https://127.0.0.1:{port}/wt",
                       browser_cert["der_sha256_b64"], 30, timeout=90)
        console = b.console[-20:]
    print("page result:", result)
    assert "error" not in result, (result, console)
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

    # the server side of the same story
    first = seen["sessions"][0]
    assert first["path"] == "/wt" and first["draft"] == "1"
    assert first["origin"] == b.page_url.rsplit("/", 1)[0]
    assert first["peer_settings"].get(0x2B603742) == 1      # Chromium's ENABLE_WEBTRANSPORT
    assert 9 in seen["client_resets"], seen["client_resets"]
    closes = {path: (info, by_peer) for path, info, by_peer, _ in seen["closes"]}
    assert closes["/wt"] in (((4000, "client-bye"), True), ((4242, "server-bye"), False))
    assert ((4000, "client-bye"), True) in [(info, by_peer) for _, info, by_peer, _ in seen["closes"]]
    assert ((4242, "server-bye"), False) in [(info, by_peer) for _, info, by_peer, _ in seen["closes"]]
    for i in range(3):
        assert closes[f"/wt?n={i}"] == ((100 + i, f"many-{i}"), True)
    # Chromium opens each session stream with a grease capsule: seen, ignored, session fine
    assert any(ignored for *_, ignored in seen["closes"])
    print("ignored capsule types:", {hex(t) for *_, ignored in seen["closes"] for t in ignored},
          "connections:", len(seen["connections"]), "ready ms:", result["readyMs"],
          "datagram rtt median ms:", result["datagramRttMedianMs"])
