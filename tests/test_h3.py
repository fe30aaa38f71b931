"""HTTP/3 (socketiwa.h3) end to end: the socketiwa client against aioquic's own HTTP/3 server
on CPython, aioquic's own client against the socketiwa ASGI server in the runtime, and both
socketiwa ends in the runtime (streaming both ways, trailers, concurrency, flow control,
Extended CONNECT with HTTP datagrams, resets, application errors)."""
import hashlib
import os

import pytest
from runtimes import everywhere

import h3_peers
import quic_peers

H3_PACKAGES = ("socketiwa", "aioquic")


@pytest.fixture(scope="module")
def certs():
    return quic_peers.make_certs()


@pytest.fixture(scope="module")
def aioquic_h3_server(certs):
    lt = quic_peers.LoopThread()
    server = h3_peers.start_aioquic_h3_server(lt, certs)
    yield quic_peers.server_port(server)
    server.close()
    lt.stop()


@everywhere(timeout=120, packages=H3_PACKAGES)
async def test_h3_client_against_aioquic_server(selenium, aioquic_h3_server, certs):
    import asyncio
    import hashlib
    import os
    import random
    from socketiwa import h3
    from socketiwa.errors import MessageTooLargeError

    config = h3.client_configuration(cadata=certs["ca"], server_name="localhost")

    async def scenario():
        async with h3.connect("127.0.0.1", aioquic_h3_server, configuration=config) as client:
            r = await client.get("/hello?x=1", headers={"X-Test": "abc"})
            assert (r.status, r.header("x-echo"), await r.read()) == (200, "abc", b"hello /hello?x=1")
            assert r.header("content-length") == "16"

            # streaming upload, echoed as it arrives; trailers carry the server's digest
            data = os.urandom(2 * 1024 * 1024)

            async def chunks():
                for i in range(0, len(data), 65536):
                    yield data[i:i + 65536]
            r = await client.request("POST", "/echo", body=chunks())
            assert r.status == 200 and r.header("x-method") == "POST"
            got = bytearray()
            async for piece in r:
                got += piece
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
            assert dict(r.trailers) == {b"x-sha256": hashlib.sha256(data).hexdigest().encode(),
                                        b"x-length": str(len(data)).encode()}

            # download with content-length, by digest
            r = await client.get("/bytes?n=3000000&seed=7")
            body = await r.read()
            assert body == random.Random(7).randbytes(3000000)

            # many requests at once on one connection
            rs = await asyncio.gather(*[client.get(f"/hello/{i}") for i in range(12)])
            assert [await x.read() for x in rs] == [f"hello /hello/{i}".encode() for i in range(12)]
            assert len(client.streams) == 0     # every finished exchange was released

            # the server resets a stream: a typed error with its code
            # (the reset may overtake the headers, so it can surface at either step)
            try:
                await (await client.get("/reset")).read()
            except h3.StreamResetError as exc:
                assert exc.code == 0x10C
            else:
                raise AssertionError("reading a reset stream did not raise")

            # Extended CONNECT (RFC 9220) with HTTP datagrams (RFC 9297) both ways
            tunnel = await client.extended_connect("/tunnel", "echo-tunnel")
            stream = tunnel.stream
            assert 1000 < stream.max_datagram_size < 1200
            stream.send_datagram(b"dg-1")
            assert await asyncio.wait_for(stream.receive_datagram(), 10) == b"echo:dg-1"
            try:
                stream.send_datagram(b"x" * (stream.max_datagram_size + 1))
            except MessageTooLargeError:
                pass
            else:
                raise AssertionError("an oversize datagram was accepted")
            stream.send_datagram(b"x" * stream.max_datagram_size)   # the largest that fits
            assert await asyncio.wait_for(stream.receive_datagram(), 10) == b"x" * stream.max_datagram_size
            await stream.send_data(b"through the tunnel", end_stream=True)
            assert await tunnel.read() == b"through the tunnel"
    await asyncio.wait_for(scenario(), 100)


@pytest.fixture
def aioquic_h3_client(certs, free_udp_port):
    """aioquic's own HTTP/3 client on CPython, started at once (its Initial is retransmitted
    until the server in the runtime listens). Yields the port; asserts what it saw at the end."""
    lt = quic_peers.LoopThread()
    upload = os.urandom(1024 * 1024)
    fut = lt.submit(h3_peers.aioquic_h3_client_session(free_udp_port, certs, upload=upload, timeout=90))
    yield free_udp_port
    try:
        seen = fut.result(120)
    finally:
        lt.stop()
    assert seen["hello"] == (b"200", b"abc", b"hello /hello?who=aioquic")
    digest = hashlib.sha256(upload).hexdigest()
    assert seen["echo"] == (b"200", digest, digest)
    assert seen["concurrent"] == [b"hello /hello/%d" % i for i in range(8)]
    assert seen["settings_connect"] == 1
    assert seen["tunnel_status"] == b"200"
    assert seen["tunnel_datagram"] == b"echo:ping-1"
    assert seen["tunnel_data"] == b"tunnel bytes"
    assert seen["fail_status"] == b"500"
    assert seen["done"] == b"200"


@everywhere(timeout=150, packages=H3_PACKAGES)
async def test_h3_asgi_server_with_aioquic_client(selenium, aioquic_h3_client, certs):
    import asyncio
    import hashlib
    from socketiwa import h3

    done = asyncio.Event()

    async def app(scope, receive, send):
        assert scope["type"] == "http" and scope["http_version"] == "3"
        path = scope["path"]
        if scope["method"] == "CONNECT":
            ext = scope["extensions"]["socketiwa.h3"]
            assert ext["protocol"] == "echo-tunnel"
            stream = ext["stream"]
            await send({"type": "http.response.start", "status": 200, "headers": []})

            async def echo_datagrams():
                while True:
                    stream.send_datagram(b"echo:" + await stream.receive_datagram())
            task = asyncio.ensure_future(echo_datagrams())
            while True:
                m = await receive()
                if m["type"] != "http.request":
                    break
                await send({"type": "http.response.body", "body": m["body"], "more_body": m["more_body"]})
                if not m["more_body"]:
                    break
            task.cancel()
        elif path == "/echo":
            await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
            digest = hashlib.sha256()
            more = True
            while more:
                m = await receive()
                digest.update(m["body"])
                more = m["more_body"]
                await send({"type": "http.response.body", "body": m["body"], "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            await send({"type": "http.response.trailers", "headers": [(b"x-sha256", digest.hexdigest().encode())]})
        elif path == "/fail":
            raise RuntimeError("this route fails on purpose")
        else:
            headers = dict(scope["headers"])
            body = b"hello " + path.encode() + (b"?" + scope["query_string"] if scope["query_string"] else b"")
            out = [(b"content-type", b"text/plain")]
            if b"x-test" in headers:
                out.append((b"x-echo", headers[b"x-test"]))
            await send({"type": "http.response.start", "status": 200, "headers": out})
            await send({"type": "http.response.body", "body": body})
            if path == "/done":
                done.set()

    config = h3.server_configuration(certs["cert"], certs["key"])
    server = await h3.serve("127.0.0.1", aioquic_h3_client, configuration=config, app=app)
    try:
        await asyncio.wait_for(done.wait(), 120)
    finally:
        await asyncio.sleep(0.2)   # let the last response and the client's close go out
        await server.aclose()


@everywhere(timeout=150, packages=H3_PACKAGES)
async def test_h3_socketiwa_both_ends(selenium, certs):
    import asyncio
    import hashlib
    import os
    from socketiwa import h3
    from socketiwa.errors import MessageTooLargeError

    seen = {}

    async def app(scope, receive, send):
        path = scope["path"]
        if path == "/hold":
            # read nothing for a while: flow control must stop the client after one window
            await asyncio.sleep(1.0)
            seen["held_bytes"] = scope["extensions"]["socketiwa.h3"]["stream"].unconsumed
            digest, total, more = hashlib.sha256(), 0, True
            while more:
                m = await receive()
                digest.update(m["body"])
                total += len(m["body"])
                more = m["more_body"]
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": f"{total} {digest.hexdigest()}".encode()})
        elif path == "/disconnect":
            m = await receive()
            while m["type"] == "http.request" and m["more_body"]:
                m = await receive()
            seen["disconnect"] = m["type"]
        elif path == "/dg-hold":
            # datagrams nobody reads for a while: the queue keeps a bounded number, counts the rest
            stream = scope["extensions"]["socketiwa.h3"]["stream"]
            await send({"type": "http.response.start", "status": 200, "headers": []})
            m = await receive()     # the client says "sent" after its datagrams (sent before it)
            assert m["body"] == b"sent", m
            await asyncio.sleep(0.3)
            got = 0
            while True:
                try:
                    await asyncio.wait_for(stream.receive_datagram(), 0.2)
                except asyncio.TimeoutError:
                    break
                got += 1
            seen["datagrams"] = (got, stream.datagrams_dropped)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif path == "/events":
            # an endless event stream; the client's reset must reach the app as http.disconnect
            await send({"type": "http.response.start", "status": 200, "headers": []})
            assert (await receive())["type"] == "http.request"

            async def produce():
                i = 0
                while True:
                    await send({"type": "http.response.body", "body": b"event %d\n" % i, "more_body": True})
                    i += 1
                    await asyncio.sleep(0.01)
            producer = asyncio.ensure_future(produce())
            seen["events_end"] = (await receive())["type"]
            producer.cancel()
        elif path == "/error":
            raise ValueError("boom")
        elif path == "/no-response":
            return
        elif path == "/stream-out":
            await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"1")]})
            for i in range(50):
                await send({"type": "http.response.body", "body": b"%04d" % i, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": scope["method"].encode() + b" " + path.encode()})

    server = await h3.serve("127.0.0.1", 0, configuration=h3.server_configuration(certs["cert"], certs["key"]),
                            app=app)
    config = h3.client_configuration(cadata=certs["ca"], server_name="localhost")
    try:
        async with h3.connect("127.0.0.1", server.port, configuration=config) as client:
            r = await client.request("DELETE", "/thing")
            assert (r.status, await r.read()) == (200, b"DELETE /thing")
            r = await client.get("/stream-out")
            assert r.status == 201 and r.header("x-a") == "1"
            assert await r.read() == b"".join(b"%04d" % i for i in range(50))

            # flow control: 6 MB to a handler that does not read for a second
            data = os.urandom(6 * 1024 * 1024)
            produced = [0]

            async def chunks():
                for i in range(0, len(data), 32768):
                    produced[0] = i
                    yield data[i:i + 32768]

            async def watch():
                await asyncio.sleep(0.8)
                return produced[0]
            watcher = asyncio.ensure_future(watch())
            r = await client.request("POST", "/hold", body=chunks())
            produced_while_held = await watcher
            assert (await r.read()).decode() == f"{len(data)} {hashlib.sha256(data).hexdigest()}"
            # one stream window (1 MiB) on the server, plus the client's send buffer limit
            assert seen["held_bytes"] <= 1024 * 1024 + 65536, seen["held_bytes"]
            assert produced_while_held <= 1024 * 1024 + 512 * 1024 + 65536, produced_while_held

            # ASGI errors: 500 for an exception and for an app that never answered
            for path in ("/error", "/no-response"):
                r = await client.get(path)
                assert r.status == 500 and (await r.read()).startswith(b"Internal Server Error")

            # the client abandons an upload: the app sees http.disconnect
            async def endless():
                while True:
                    yield b"z" * 1000
                    await asyncio.sleep(0.01)
            task = asyncio.ensure_future(client.request("PUT", "/disconnect", body=endless()))
            await asyncio.sleep(0.3)
            client.streams[max(client.streams)].reset()   # the newest stream is the upload
            task.cancel()
            for _ in range(100):
                if "disconnect" in seen:
                    break
                await asyncio.sleep(0.05)
            assert seen.get("disconnect") == "http.disconnect"

            # the client walks away from an endless response: the app learns it from receive()
            r = await client.get("/events")
            assert (await r.stream.read()).startswith(b"event 0")
            r.close()
            for _ in range(100):
                if "events_end" in seen:
                    break
                await asyncio.sleep(0.05)
            assert seen.get("events_end") == "http.disconnect"

            # 600 datagrams to a handler that does not read them yet: at most 256 wait, the
            # rest are counted as dropped (nothing grows without bound)
            tunnel = await client.extended_connect("/dg-hold", "echo-tunnel")
            for i in range(600):
                tunnel.stream.send_datagram(b"d%d" % i)
                if i % 50 == 0:
                    await asyncio.sleep(0.01)
            await tunnel.stream.send_data(b"sent", end_stream=True)
            await tunnel.read()
            got, dropped = seen["datagrams"]
            assert 0 < got <= 256 and dropped > 0 and got + dropped <= 600, seen["datagrams"]

            # datagrams need the setting: an oversize one is refused with a typed error
            tunnel = await client.extended_connect("/dg", "echo-tunnel")
            try:
                tunnel.stream.send_datagram(b"y" * 5000)
            except MessageTooLargeError:
                pass
            else:
                raise AssertionError("oversize datagram accepted")
            tunnel.close()
    finally:
        await server.aclose()
