"""An unmodified ASGI framework (Starlette) served over HTTP/3 by socketiwa.h3: lifespan state,
path parameters and JSON, a streamed upload and a streamed response, a WebSocket endpoint over
RFC 9220. CPython (Starlette is not in the Pyodide distribution)."""
import asyncio
import json

import pytest

import quic_peers

starlette = pytest.importorskip("starlette")


def make_app():
    import contextlib

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route, WebSocketRoute

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield {"greeting": "hello from lifespan"}

    async def item(request):
        return JSONResponse({"id": int(request.path_params["item_id"]), "q": request.query_params.get("q"),
                             "greeting": request.state.greeting, "http": request.scope["http_version"]})

    async def upload(request):
        total, chunks = 0, 0
        async for chunk in request.stream():
            total += len(chunk)
            chunks += 1
        return JSONResponse({"bytes": total, "chunks": chunks})

    async def count(request):
        async def numbers():
            for i in range(100):
                yield f"{i}\n"
                await asyncio.sleep(0)
        return StreamingResponse(numbers(), media_type="text/plain")

    async def echo(websocket):
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text("starlette:" + text)

    return Starlette(routes=[Route("/items/{item_id:int}", item), Route("/upload", upload, methods=["POST"]),
                             Route("/count", count), WebSocketRoute("/ws", echo)], lifespan=lifespan)


def test_starlette_over_h3():
    from socketiwa import h3
    certs = quic_peers.make_certs()

    async def main():
        server = await h3.serve("127.0.0.1", 0, app=make_app(), lifespan="on",
                                configuration=h3.server_configuration(certs["cert"], certs["key"]))
        config = h3.client_configuration(cadata=certs["ca"], server_name="localhost")
        try:
            async with h3.connect("127.0.0.1", server.port, configuration=config) as client:
                r = await client.get("/items/42?q=quic")
                assert r.status == 200 and r.header("content-type") == "application/json"
                assert json.loads(await r.read()) == {"id": 42, "q": "quic", "greeting": "hello from lifespan",
                                                      "http": "3"}
                assert (await client.get("/items/nope")).status == 404

                async def body():
                    for _ in range(64):
                        yield b"u" * 16384
                r = await client.request("POST", "/upload", body=body())
                result = json.loads(await r.read())
                assert result["bytes"] == 64 * 16384 and result["chunks"] >= 1

                r = await client.get("/count")
                assert (await r.read()).decode() == "".join(f"{i}\n" for i in range(100))

                ws = await client.websocket("/ws")
                await ws.send("hi")
                assert await ws.receive() == "starlette:hi"
                await ws.close()
        finally:
            await server.aclose()
    asyncio.run(asyncio.wait_for(main(), 60))
