"""An HTTP/3 file server: a plain ASGI app served over QUIC by socketiwa.h3.

    python examples/quic/http3_app.py                 # serve, fetch from it with the h3 client, exit
    python examples/quic/http3_app.py serve --port 4433   # serve until Ctrl-C
    socketiwa run examples/quic -- http3_app [serve --port 4433]   # the same inside the IWA

Routes: ``/`` lists the files of the served folder (HTML), ``/files/NAME`` sends one (streamed
in 64 KiB pieces, with content-length), ``POST /upload`` reads a streamed body and answers its
SHA-256. ``serve`` prints the Chromium flags that make ``fetch``/navigation use HTTP/3 with the
self-signed certificate. Any ASGI framework (Starlette, ...) could take the app's place.
"""
from __future__ import annotations

import hashlib
import html
import os
import sys
import time

from socketiwa import h3

import example_cli

FOLDER = os.path.dirname(os.path.abspath(__file__))
CHUNK = 64 * 1024


async def app(scope, receive, send):
    if scope["type"] != "http":
        return                                  # lifespan: nothing to set up
    method, path = scope["method"], scope["path"]
    early = scope["extensions"]["socketiwa.h3"]["early_data"]
    status = await route(method, path, receive, send)
    print(f"{method} {path} -> {status} (HTTP/{scope['http_version']}"
          f"{', 0-RTT' if early else ''})", flush=True)


async def route(method, path, receive, send) -> int:
    names = sorted(n for n in os.listdir(FOLDER) if os.path.isfile(os.path.join(FOLDER, n)))
    if method == "GET" and path == "/":
        items = "".join(f'<li><a href="/files/{html.escape(n)}">{html.escape(n)}</a></li>' for n in names)
        return await respond(send, 200, f"<!doctype html><title>socketiwa h3 files</title><ul>{items}</ul>"
                             .encode(), "text/html")
    if method == "GET" and path.startswith("/files/") and path[7:] in names:
        file = os.path.join(FOLDER, path[7:])
        size = os.path.getsize(file)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"content-length", str(size).encode()),
                                (b"access-control-allow-origin", b"*")]})
        with open(file, "rb") as f:
            while True:
                piece = f.read(CHUNK)
                more = len(piece) == CHUNK
                await send({"type": "http.response.body", "body": piece, "more_body": more})
                if not more:
                    return 200
    if method == "POST" and path == "/upload":
        digest, size, more = hashlib.sha256(), 0, True
        while more:
            message = await receive()
            digest.update(message.get("body", b""))
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        return await respond(send, 200, f"{size} bytes, sha256 {digest.hexdigest()}\n".encode())
    return await respond(send, 404, b"not found\n")


async def respond(send, status: int, body: bytes, content_type: str = "text/plain") -> int:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode()),
                            (b"access-control-allow-origin", b"*")]})
    await send({"type": "http.response.body", "body": body})
    return status


async def start(port: int):
    cert = h3.self_signed_certificate()
    server = await h3.serve("127.0.0.1", port, app=app,
                            configuration=h3.server_configuration(cert.cert_pem, cert.key_pem))
    return server, cert


async def serve(port: int):
    server, cert = await start(port)
    print(f"serving https://127.0.0.1:{server.port}/ over HTTP/3", flush=True)
    print(f"chromium flags: {' '.join(cert.chromium_flags(server.port))}", flush=True)
    return server


async def demo() -> None:
    server, cert = await start(0)
    config = h3.client_configuration(cadata=cert.cert_pem, server_name="localhost")
    async with h3.connect("127.0.0.1", server.port, configuration=config) as client:
        index = await client.get("/")
        print("index:", index.status, index.header("content-type"), len(await index.read()), "bytes")
        name = "http3_app.py"                     # this program, downloaded from itself
        t0 = time.perf_counter()
        response = await client.get(f"/files/{name}")
        body = await response.read()
        with open(os.path.join(FOLDER, name), "rb") as f:
            same = f.read() == body
        print(f"download {name}: {response.status}, {len(body)} bytes in "
              f"{(time.perf_counter() - t0) * 1000:.1f} ms, identical: {same}")

        async def pieces():                     # a streamed upload: 1 MiB in 64 KiB pieces
            for i in range(16):
                yield bytes([i]) * 65536
        expected = hashlib.sha256(b"".join(bytes([i]) * 65536 for i in range(16))).hexdigest()
        upload = await client.request("POST", "/upload", body=pieces())
        answer = (await upload.read()).decode().strip()
        print(f"upload: {upload.status} {answer}; matches: {answer.endswith(expected)}")
        missing = await client.get("/files/nope")
        print("missing file:", missing.status)
    await server.aclose()


def main(argv: list[str]) -> int:
    return example_cli.main(argv, "http3_app", __doc__, demo, serve)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
