"""curl's HTTP/3 client (libcurl with its own QUIC stack, through curl_cffi; nothing shared
with aioquic) against the socketiwa HTTP/3 server on every runtime."""
import hashlib
import threading

import pytest
from runtimes import everywhere

import h3_peers
import quic_peers

H3_PACKAGES = ("socketiwa", "aioquic")
curl_requests = pytest.importorskip("curl_cffi.requests")


@pytest.fixture(scope="module")
def certs():
    return quic_peers.make_certs()


@pytest.fixture
def curl_client(free_udp_port):
    """curl's requests, started once the runtime's server listens; checked at the end."""
    port = free_udp_port
    base = f"https://127.0.0.1:{port}"
    box = {}

    def run():
        try:
            h3_peers.wait_for_h3_server(port)
            with curl_requests.Session(http_version="v3only", verify=False, timeout=30) as s:
                r = s.get(base + "/hello?q=1", headers={"x-test": "curl"})
                box["get"] = (r.status_code, r.http_version, r.text, r.headers.get("x-echo"))
                upload = bytes(range(256)) * 4096
                r = s.post(base + "/echo", data=upload)
                box["post"] = (r.status_code, r.content == upload)
                r = s.get(base + "/bytes?n=1000000")
                box["bytes"] = (r.status_code, hashlib.sha256(r.content).hexdigest())
                box["done"] = s.get(base + "/done").status_code
        except Exception as exc:   # noqa: BLE001 - reported below
            box["error"] = repr(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield port
    thread.join(120)
    print("curl saw:", box)
    assert "error" not in box, box
    assert box["get"] == (200, 30, "hello /hello q=1", "curl")    # 30: CURL_HTTP_VERSION_3
    assert box["post"] == (200, True)
    assert box["bytes"] == (200, hashlib.sha256((bytes(range(251)) * 3985)[:1000000]).hexdigest())


@everywhere(timeout=150, packages=H3_PACKAGES)
async def test_curl_h3_client_against_socketiwa_server(selenium, curl_client, certs):
    import asyncio
    from socketiwa import h3

    done = asyncio.Event()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            m = await receive()
            body += m["body"]
            more = m["more_body"]
        path = scope["path"]
        if path == "/echo":
            out = body
        elif path == "/bytes":
            n = int(scope["query_string"].decode().split("=")[1])
            out = (bytes(range(251)) * (n // 251 + 1))[:n]
        else:
            out = f"hello {path} {scope['query_string'].decode()}".encode()
        headers = [(b"content-length", str(len(out)).encode())]
        test = dict(scope["headers"]).get(b"x-test")
        if test:
            headers.append((b"x-echo", test))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": out})
        if path == "/done":
            done.set()

    server = await h3.serve("127.0.0.1", curl_client, app=app,
                            configuration=h3.server_configuration(certs["cert"], certs["key"]))
    try:
        await asyncio.wait_for(done.wait(), 120)
        await asyncio.sleep(0.3)
    finally:
        await server.aclose()
