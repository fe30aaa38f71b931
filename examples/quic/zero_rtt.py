"""TLS 1.3 session tickets and 0-RTT over HTTP/3: what a returning client saves.

    python examples/quic/zero_rtt.py              # server + client, three connections, exit
    socketiwa run examples/quic -- zero_rtt       # the same inside the IWA

The client connects three times to the same server and times the first response:
1. a full handshake (the server sends session tickets; the client keeps them),
2. a resumed one whose GET travels as 0-RTT data, before the handshake completes,
3. a resumed one with a POST first: 0-RTT can be replayed by an attacker, so the server acts
   only on GET/HEAD/OPTIONS as early data and answers anything else 425 Too Early; the
   socketiwa client then sends it again once the handshake is done.
Each ticket resumes once (the server forgets it when used), so a replayed ClientHello gets a
full handshake.
"""
from __future__ import annotations

import asyncio
import sys
import time

from socketiwa import h3

import example_cli

seen: list[str] = []       # what the server acted on, and whether it came as early data


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    early = scope["extensions"]["socketiwa.h3"]["early_data"]
    seen.append(f"{scope['method']} {scope['path']} early_data={early}")
    body = f"hello, {'early' if early else 'after the handshake'}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def timed_request(port, config, tickets, method) -> tuple[float, str, bool, bool]:
    """Milliseconds from connect() to the whole first response, its body, and whether the
    connection resumed and had its early data accepted."""
    t0 = time.perf_counter()
    async with h3.connect("127.0.0.1", port, configuration=config, tickets=tickets) as client:
        response = await client.request(method, "/hello", body=b"data" if method == "POST" else None)
        body = (await response.read()).decode().strip()
        ms = (time.perf_counter() - t0) * 1000
        await client.wait_connected()
        handshake = client.handshake
        # the server's new ticket follows the handshake: keep the connection until it is here
        key = f"localhost:{port}"
        for _ in range(200):
            if tickets.count(key):
                break
            await asyncio.sleep(0.01)
        client.close()
    return ms, body, handshake.session_resumed, handshake.early_data_accepted


async def demo() -> None:
    cert = h3.self_signed_certificate()
    server = await h3.serve("127.0.0.1", 0, app=app, tickets=h3.ServerTicketStore(),
                            configuration=h3.server_configuration(cert.cert_pem, cert.key_pem))
    tickets = h3.ClientTicketStore()      # in memory; dump()/load() persist it (IndexedDB in the IWA)
    config = h3.client_configuration(cadata=cert.cert_pem, server_name="localhost")
    results = []
    for label, method in (("full handshake", "GET"), ("resumed, 0-RTT", "GET"), ("resumed, POST", "POST")):
        ms, body, resumed, early = await timed_request(server.port, config, tickets, method)
        results.append(ms)
        print(f"{label:15} {method:4} {ms:7.1f} ms  resumed={resumed} early_data_accepted={early}  -> {body!r}")
    print(f"0-RTT saved {results[0] - results[1]:.1f} ms of {results[0]:.1f} ms on the first request")
    print("server acted on:", "; ".join(seen))
    await server.aclose()


def main(argv: list[str]) -> int:
    return example_cli.main(argv, "zero_rtt", __doc__, demo)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
