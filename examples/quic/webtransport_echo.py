"""WebTransport echo server (datagrams and streams), and a client for it.

    python examples/quic/webtransport_echo.py                  # server + socketiwa client, exit
    python examples/quic/webtransport_echo.py serve --port 4433    # serve until Ctrl-C
    socketiwa run examples/quic -- webtransport_echo [serve --port 4433]   # inside the IWA

The server echoes datagrams (``echo:`` + data), bidirectional streams (the same bytes back) and
answers each unidirectional stream with a new one (``uni-echo:`` + data); the datagram ``bye``
makes it close the session with code 4000 and reason ``server-bye``.

A browser is a client too: ``serve`` prints the certificate hash, and
``webtransport_page.html?port=PORT&hash=HASH`` (served from any http://127.0.0.1 or
https origin, e.g. ``python -m http.server -d examples/quic``) connects with Chromium's own
``new WebTransport()`` and shows what came back.
"""
from __future__ import annotations

import asyncio
import sys
import time

from socketiwa import h3
from socketiwa.errors import SocketClosedError

import example_cli


async def on_session(session: h3.WebTransportSession) -> None:
    if session.path != "/echo":
        await session.reject(404)
        return
    await session.accept()
    print(f"session from {session.origin or 'a non-browser client'} on {session.path}", flush=True)
    tasks = [asyncio.ensure_future(until_closed(job, session)) for job in (echo_datagrams, echo_bidi, answer_uni)]
    try:
        code, reason = await session.wait_closed()
        print(f"session closed: code {code}, reason {reason!r}, by the "
              f"{'client' if session.closed_by_peer else 'server'}", flush=True)
    finally:
        for task in tasks:
            task.cancel()


async def until_closed(job, session) -> None:
    try:
        await job(session)
    except SocketClosedError:
        pass        # the session closed: receiving ends here


async def echo_datagrams(session) -> None:
    while True:
        data = await session.receive_datagram()
        if data == b"bye":
            await session.close(4000, "server-bye")
            return
        session.send_datagram(b"echo:" + data)


async def echo_bidi(session) -> None:
    async def echo(stream):
        await stream.write(await stream.read_all(), end=True)
    while True:
        asyncio.ensure_future(echo(await session.accept_bidirectional_stream()))


async def answer_uni(session) -> None:
    while True:
        data = await (await session.accept_unidirectional_stream()).read_all()
        reply = await session.create_unidirectional_stream()
        await reply.write(b"uni-echo:" + data, end=True)


async def start(port: int):
    cert = h3.self_signed_certificate()
    server = await h3.serve("127.0.0.1", port, webtransport=on_session,
                            configuration=h3.server_configuration(cert.cert_pem, cert.key_pem))
    return server, cert


async def serve(port: int):
    server, cert = await start(port)
    print(f"WebTransport echo on https://127.0.0.1:{server.port}/echo", flush=True)
    print(f"certificate sha-256 (serverCertificateHashes): {cert.der_sha256_b64}", flush=True)
    return server


async def demo() -> None:
    server, cert = await start(0)
    config = h3.client_configuration(cadata=cert.cert_pem, server_name="localhost")
    async with h3.connect("127.0.0.1", server.port, configuration=config) as client:
        t0 = time.perf_counter()
        session = await client.webtransport("/echo")
        print(f"session ready in {(time.perf_counter() - t0) * 1000:.1f} ms")
        rtts = []
        for i in range(5):
            t0 = time.perf_counter()
            session.send_datagram(f"ping {i}".encode())
            reply = await asyncio.wait_for(session.receive_datagram(), 5)
            rtts.append((time.perf_counter() - t0) * 1000)
            print("datagram:", reply.decode())
        print(f"datagram round trip median {sorted(rtts)[2]:.2f} ms")
        stream = await session.create_bidirectional_stream()
        await stream.write(b"x" * 100_000, end=True)
        back = await stream.read_all()
        print(f"bidirectional stream: sent 100000 bytes, got {len(back)} back, identical: {back == b'x' * 100_000}")
        uni = await session.create_unidirectional_stream()
        await uni.write(b"hello", end=True)
        reply_stream = await session.accept_unidirectional_stream()
        print("unidirectional stream answered:", (await reply_stream.read_all()).decode())
        session.send_datagram(b"bye")
        print("closed by the server:", await asyncio.wait_for(session.wait_closed(), 5))
    await server.aclose()


def main(argv: list[str]) -> int:
    return example_cli.main(argv, "webtransport_echo", __doc__, demo, serve)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
