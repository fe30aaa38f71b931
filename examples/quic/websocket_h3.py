"""WebSocket over HTTP/3 (RFC 9220): an ASGI websocket app and a client for it.

    python examples/quic/websocket_h3.py                  # server + socketiwa client, exit
    python examples/quic/websocket_h3.py serve --port 4433    # serve until Ctrl-C
    socketiwa run examples/quic -- websocket_h3 [serve --port 4433]   # inside the IWA

The app answers text in upper case, echoes binary, and closes with 4001 "server-bye" when told
``close``. The same app serves Chromium's ``new WebSocket("wss://127.0.0.1:PORT/ws")`` when
Chromium runs with ``--enable-features=EnableWebsocketsOverHttp3`` and the flags ``serve``
prints, from a page it loaded over HTTP/3 (``/`` serves one that says hello; Chromium's form of
the handshake has no ``sec-websocket-key``; both forms work).
"""
from __future__ import annotations

import sys
import time

from socketiwa import h3

import example_cli


PAGE = b"""<!doctype html><meta charset="utf-8"><title>WebSocket over HTTP/3</title><pre id="log"></pre>
<script>
const log = (line) => document.getElementById("log").textContent += line + "\\n";
window.result = new Promise((resolve) => {
  const ws = new WebSocket(`wss://${location.host}/ws`), got = [];
  ws.onopen = () => { log("open"); ws.send("hello from chromium"); };
  ws.onmessage = (e) => { log("got " + e.data); got.push(e.data); ws.send("close"); };
  ws.onclose = (e) => { log(`closed ${e.code} ${e.reason}`); resolve({got, code: e.code, reason: e.reason}); };
});
</script>"""


async def app(scope, receive, send):
    if scope["type"] == "http":
        # Chromium sends a WebSocket over an HTTP/3 connection it already has: this page opens
        # one (navigate to https://127.0.0.1:PORT/ with the flags `serve` prints).
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": PAGE})
        return
    if scope["type"] != "websocket":
        return
    await receive()                                   # websocket.connect
    await send({"type": "websocket.accept"})
    print(f"websocket open on {scope['path']} (HTTP/{scope['http_version']})", flush=True)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            print(f"websocket closed by the client: {message['code']} {message.get('reason', '')!r}", flush=True)
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "server-bye"})
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"].upper()})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def start(port: int):
    cert = h3.self_signed_certificate()
    server = await h3.serve("127.0.0.1", port, app=app,
                            configuration=h3.server_configuration(cert.cert_pem, cert.key_pem))
    return server, cert


async def serve(port: int):
    server, cert = await start(port)
    print(f"WebSocket over HTTP/3 on wss://127.0.0.1:{server.port}/ws, a page using it at "
          f"https://127.0.0.1:{server.port}/", flush=True)
    flags = ["--enable-features=EnableWebsocketsOverHttp3", *cert.chromium_flags(server.port)]
    print(f"chromium flags: {' '.join(flags)}", flush=True)
    return server


async def demo() -> None:
    server, cert = await start(0)
    config = h3.client_configuration(cadata=cert.cert_pem, server_name="localhost")
    async with h3.connect("127.0.0.1", server.port, configuration=config) as client:
        ws = await client.websocket("/ws")
        await ws.send("hello over http/3")
        print("text:", await ws.receive())
        await ws.send(bytes(range(8)))
        print("binary:", list(await ws.receive()))
        await ws.send("frag", final=False)             # one message in two frames
        await ws.send("mented")
        print("fragmented:", await ws.receive())
        print(f"ping round trip: {await ws.ping() * 1000:.2f} ms")
        t0 = time.perf_counter()
        for i in range(100):
            await ws.send(f"m{i}")
            await ws.receive()
        print(f"100 echoes in {(time.perf_counter() - t0) * 1000:.0f} ms")
        await ws.send("close")
        print("closed by the server:", await ws.wait_closed())
        second = await client.websocket("/ws")          # a second one on the same connection
        await second.close(1000, "done")
        print("closed by the client:", await second.wait_closed())
    await server.aclose()


def main(argv: list[str]) -> int:
    return example_cli.main(argv, "websocket_h3", __doc__, demo, serve)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
