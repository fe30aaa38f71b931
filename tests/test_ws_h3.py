"""WebSocket over HTTP/3 (RFC 9220, socketiwa.h3.websocket, frames by wsproto) on every runtime:
the socketiwa client against a plain aioquic + wsproto server on CPython, and the socketiwa ASGI
server with the socketiwa client (text, binary, fragmentation, ping/pong, close codes both
ways, subprotocols, both request forms, denial). Chromium as the client: test_ws_h3_chromium.py."""
import pytest
from runtimes import everywhere

import h3_peers
import quic_peers

WS_PACKAGES = ("socketiwa", "aioquic", "wsproto")


@pytest.fixture(scope="module")
def certs():
    return quic_peers.make_certs()


@pytest.fixture(scope="module")
def aioquic_ws_server(certs):
    lt = quic_peers.LoopThread()
    server = h3_peers.start_aioquic_h3_server(lt, certs)
    yield quic_peers.server_port(server)
    server.close()
    lt.stop()


@everywhere(timeout=90, packages=WS_PACKAGES)
async def test_ws_h3_client_against_aioquic_server(selenium, aioquic_ws_server, certs):
    import asyncio
    from socketiwa import h3
    from socketiwa.h3.websocket import WebSocketClosed

    config = h3.client_configuration(cadata=certs["ca"], server_name="localhost")

    async def scenario():
        async with h3.connect("127.0.0.1", aioquic_ws_server, configuration=config) as client:
            for send_key in (False, True):   # RFC 9220 form, and the key/accept form
                ws = await client.websocket("/ws", send_key=send_key)
                await ws.send("hello")
                assert await ws.receive() == "hello"
                await ws.send(b"\x00\x01binary")
                assert await ws.receive() == b"\x00\x01binary"
                # one message in three fragments; the peer echoes frame by frame
                await ws.send("frag-", final=False)
                await ws.send("men-", final=False)
                await ws.send("ted")
                assert await ws.receive() == "frag-men-ted"
                assert 0 < await ws.ping(b"p1") < 5
                await ws.close(1000, "done")
                assert await ws.wait_closed() == (1000, "done")   # the server echoed our close
            ws = await client.websocket("/ws")
            await ws.send("close-me")
            try:
                await ws.receive()
            except WebSocketClosed as exc:
                assert (exc.code, exc.reason) == (4001, "server-bye")
            else:
                raise AssertionError("no close from the server")
            assert await ws.wait_closed() == (4001, "server-bye")
            for _ in range(100):          # released once the server's FIN is in
                if not client.streams:
                    break
                await asyncio.sleep(0.02)
            assert not client.streams
    await asyncio.wait_for(scenario(), 60)


@everywhere(timeout=120, packages=WS_PACKAGES)
async def test_ws_h3_asgi_server_and_client(selenium, certs):
    import asyncio
    from socketiwa import h3
    from socketiwa.errors import ConnectError, InvalidOptionError
    from socketiwa.h3.websocket import WebSocketClosed

    seen = []

    async def app(scope, receive, send):
        assert scope["type"] == "websocket" and scope["http_version"] == "3"
        assert (await receive())["type"] == "websocket.connect"
        if scope["path"] == "/deny":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["path"] == "/burst":   # 4 MB at once, to a client that is not reading
            await send({"type": "websocket.accept"})
            for i in range(400):
                await send({"type": "websocket.send", "bytes": i.to_bytes(2, "big") * 5000})
            seen.append(("/burst", "sent"))
            m = await receive()
            seen.append(("/burst", m["type"]))
            return
        subprotocol = "chat.v2" if "chat.v2" in scope["subprotocols"] else None
        await send({"type": "websocket.accept", "subprotocol": subprotocol,
                    "headers": [(b"x-server", b"socketiwa")]})
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect":
                seen.append((scope["path"], m["code"], m.get("reason")))
                return
            if m.get("text") == "close-me":
                await send({"type": "websocket.close", "code": 4002, "reason": "server-bye"})
                seen.append((scope["path"], "server closed"))
                return
            if m.get("text") is not None:
                await send({"type": "websocket.send", "text": m["text"].upper()})
            else:
                await send({"type": "websocket.send", "bytes": m["bytes"][::-1]})

    server = await h3.serve("127.0.0.1", 0, app=app,
                            configuration=h3.server_configuration(certs["cert"], certs["key"]))
    config = h3.client_configuration(cadata=certs["ca"], server_name="localhost")
    try:
        async with h3.connect("127.0.0.1", server.port, configuration=config) as client:
            ws = await client.websocket("/a", subprotocols=["chat.v1", "chat.v2"])
            assert ws.subprotocol == "chat.v2"
            await ws.send("abc")
            assert await ws.receive() == "ABC"
            big = bytes(range(256)) * 4096   # 1 MiB, one binary message
            await ws.send(big)
            assert await ws.receive() == big[::-1]
            await ws.send("x" * 10, final=False)
            await ws.send("y" * 10)
            assert await ws.receive() == "X" * 10 + "Y" * 10
            await ws.ping()
            try:
                await ws.send(12345)
            except InvalidOptionError:
                pass
            else:
                raise AssertionError("an int was sent as a message")
            await ws.close(4003, "client-bye")

            keyed = await client.websocket("/b", send_key=True)   # accept header checked inside
            await keyed.send("close-me")
            try:
                await keyed.receive()
            except WebSocketClosed as exc:
                assert (exc.code, exc.reason) == (4002, "server-bye")
            else:
                raise AssertionError("no close from the server")

            try:
                await client.websocket("/deny")
            except ConnectError as exc:
                assert "403" in str(exc)
            else:
                raise AssertionError("a denied WebSocket opened")

            # a client that does not read: its queue stays bounded (64 messages), the reader
            # stops, QUIC flow control holds the server back (it can get about 2.2 MB out: the
            # queue, one 1 MiB stream window, its 512 KiB send buffer); then all 4 MB arrive
            # in order
            burst = await client.websocket("/burst")
            await asyncio.sleep(1.0)
            assert len(burst._messages) <= 64, len(burst._messages)
            assert ("/burst", "sent") not in seen     # the server is held back
            for i in range(400):
                assert await burst.receive() == i.to_bytes(2, "big") * 5000
            await burst.close()

            # several sockets at once on one connection
            sockets = [await client.websocket(f"/m{i}") for i in range(4)]
            for i, s in enumerate(sockets):
                await s.send(f"m{i}")
            assert [await s.receive() for s in sockets] == ["M0", "M1", "M2", "M3"]
            for s in sockets:
                await s.close()
            for _ in range(100):
                if len(seen) >= 8:
                    break
                await asyncio.sleep(0.02)
            assert ("/a", 4003, "client-bye") in seen
            assert ("/b", "server closed") in seen
            assert sorted(x for x in seen if x[0].startswith("/m")) == \
                [(f"/m{i}", 1000, "") for i in range(4)]
    finally:
        await server.aclose()
