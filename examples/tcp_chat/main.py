"""A TCP chat server with rooms, and scripted clients talking through it.

    python examples/tcp_chat/main.py                        # server + three clients, then exit
    python examples/tcp_chat/main.py server --port 8765     # serve until Ctrl-C
    python examples/tcp_chat/main.py clients --port 8765    # the three clients against a server
    socketiwa run examples/tcp_chat [-- server|clients ...] # the same inside the IWA

Messages are events (socketiwa's framed wire format: they arrive whole, never split or
merged). A client sends ``join`` (acknowledged with who is in the room) and ``say``; the
server broadcasts ``said`` to the speaker's room only.
"""
import argparse
import asyncio
import sys

import socketiwa


async def start_server(port: int, host: str = "127.0.0.1"):
    server = await socketiwa.create_tcp_server(host, local_port=port)
    names = {}                                    # connection -> (name, room)

    @server.on("connection")
    def on_connection(conn):
        def join(payload, ack):
            name, room = payload["name"], payload["room"]
            if conn in names:
                conn.leave(names[conn][1])
            names[conn] = (name, room)
            conn.join(room)
            print(f"{name} joined #{room}", flush=True)
            if ack:
                ack(sorted(n for c, (n, r) in names.items() if r == room))

        async def say(text, ack):
            name, room = names[conn]
            reached = await server.to(room).emit("said", {"room": room, "name": name, "text": text})
            if ack:
                ack(reached)

        conn.on("join", join)
        conn.on("say", say)
        conn.on("disconnect", lambda: print(f"{names.pop(conn, ('someone',))[0]} left", flush=True))

    return server, names


async def run_clients(host: str, port: int) -> int:
    """alice and bob in #python, carol in #rust: each room hears only its own people."""
    heard = {}
    clients = {}
    for name, room in (("alice", "python"), ("bob", "python"), ("carol", "rust")):
        conn = await socketiwa.create_tcp(host, port)
        heard[name] = []
        conn.on("said", lambda msg, ack, name=name:
                heard[name].append(f"[#{msg['room']}] {msg['name']}: {msg['text']}"))
        members = await conn.emit_with_ack("join", {"name": name, "room": room}, timeout=5)
        print(f"{name} joined #{room}, members now: {', '.join(members)}")
        clients[name] = conn
    reached = await clients["alice"].emit_with_ack("say", "hello, pythonistas", timeout=5)
    print(f"alice's message reached {reached} connections")
    await clients["carol"].emit_with_ack("say", "anyone into borrow checkers?", timeout=5)
    await asyncio.sleep(0.3)                      # let the broadcasts arrive
    for name, lines in heard.items():
        print(f"{name} heard: {lines}")
    for conn in clients.values():
        await conn.close()
    return 0 if heard["bob"] and not any("alice" in line for line in heard["carol"]) else 1


async def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", nargs="?", choices=["demo", "server", "clients"], default="demo")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args(argv)
    print(f"socketiwa backend: {socketiwa.backend_name()}")
    if args.mode == "clients":
        return await run_clients(args.host, args.port)
    server, members = await start_server(0 if args.mode == "demo" else args.port, args.host)
    print(f"chat server on {server.local_address}:{server.local_port}", flush=True)
    try:
        if args.mode == "server":
            await asyncio.Event().wait()          # until Ctrl-C
        status = await run_clients(args.host, server.local_port)
        for _ in range(100):                      # until the server saw everyone leave
            if not members:
                break
            await asyncio.sleep(0.05)
        return status
    finally:
        await server.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
