"""UDP echo: a server that sends every datagram back, and a client that measures round trips.

    python examples/udp_echo/main.py                        # both in one process, then exit
    python examples/udp_echo/main.py server --port 9999     # serve until Ctrl-C
    python examples/udp_echo/main.py client --host 127.0.0.1 --port 9999 --count 5
    socketiwa run examples/udp_echo [-- server|client ...]  # the same inside the IWA

The same code runs on CPython (the OS's sockets) and in the IWA (Chromium's Direct Sockets).
"""
import argparse
import asyncio
import statistics
import sys
import time

import socketiwa


async def start_server(port: int, host: str = "127.0.0.1"):
    """A bound UDP socket that echoes each datagram to whoever sent it."""
    server = await socketiwa.create_udp(local_address=host, local_port=port)
    # dgram-style send(data, port, address) back to the sender
    server.on("message", lambda data, rinfo: server.send(data, rinfo.port, rinfo.address))
    return server


async def run_client(host: str, port: int, count: int) -> int:
    """Send ``count`` datagrams one at a time; print each reply and the round-trip times."""
    client = await socketiwa.create_udp(remote_address=host, remote_port=port)
    rtts = []
    for i in range(count):
        payload = f"ping {i}".encode()
        t0 = time.perf_counter()
        await client.send(payload)
        try:
            reply = await client.receive(timeout=2)
        except TimeoutError:
            print(f"ping {i}: no reply (UDP may drop; this is not an error)")
            continue
        rtts.append((time.perf_counter() - t0) * 1000)
        print(f"reply from {reply.rinfo.address}:{reply.rinfo.port}: {reply.data.decode()!r}")
    await client.close()
    if rtts:
        print(f"{len(rtts)}/{count} echoed, round trip median {statistics.median(rtts):.3f} ms")
    return 0 if rtts else 1


async def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", nargs="?", choices=["demo", "server", "client"], default="demo")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9999)
    ap.add_argument("--count", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"socketiwa backend: {socketiwa.backend_name()}")
    if args.mode == "client":
        return await run_client(args.host, args.port, args.count)
    server = await start_server(0 if args.mode == "demo" else args.port, args.host)
    print(f"echo server on {server.local_address}:{server.local_port}", flush=True)
    try:
        if args.mode == "server":
            await asyncio.Event().wait()       # until Ctrl-C
        return await run_client(args.host, server.local_port, args.count)
    finally:
        await server.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
