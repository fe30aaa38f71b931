"""TCP server: several clients, rooms, broadcast, a CPython client talking to the runtime's server."""
import socket
import threading
import time

import pytest
from runtimes import everywhere


@everywhere
async def test_server_several_clients_and_rooms(selenium):
    import asyncio
    import socketiwa
    srv = await socketiwa.create_tcp_server("127.0.0.1", 0)
    assert srv.local_address == "127.0.0.1" and srv.local_port > 0
    accepted = []

    def on_connection(conn):
        accepted.append(conn)
        conn.on("join", lambda room, ack: (conn.join(room), ack(sorted(conn.rooms))))
        conn.on("leave", lambda room, ack: (conn.leave(room), ack(sorted(conn.rooms))))
        conn.on("message", lambda data: conn.send(data.upper()))
    srv.on("connection", on_connection)

    clients = [await socketiwa.create_tcp("127.0.0.1", srv.local_port) for _ in range(5)]
    news = {i: [] for i in range(5)}
    for i, c in enumerate(clients):
        c.on("news", lambda payload, ack, i=i: news[i].append(payload))
    assert await clients[0].emit_with_ack("join", "red", timeout=5) == ["red"]
    assert await clients[1].emit_with_ack("join", "red", timeout=5) == ["red"]
    assert await clients[1].emit_with_ack("join", "blue", timeout=5) == ["blue", "red"]
    assert await clients[2].emit_with_ack("join", "blue", timeout=5) == ["blue"]
    assert srv.rooms() == {"red": 2, "blue": 2}
    assert len(srv.connections) == 5

    assert await srv.to("red").emit("news", "to red") == 2
    assert await srv.to("blue").emit("news", {"to": "blue"}) == 2
    assert await srv.to("red").to("blue").emit("news", "red or blue") == 3
    assert await srv.emit("news", "everyone") == 5
    await clients[3].send(b"shout")
    assert await clients[3].receive(timeout=5) == b"SHOUT"

    async def settle():
        while sum(len(v) for v in news.values()) < 12:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(settle(), 5)
    assert news[0] == ["to red", "red or blue", "everyone"]
    assert news[1] == ["to red", {"to": "blue"}, "red or blue", "everyone"]
    assert news[2] == [{"to": "blue"}, "red or blue", "everyone"]
    assert news[3] == news[4] == ["everyone"]

    assert await clients[1].emit_with_ack("leave", "red", timeout=5) == ["blue"]
    await clients[0].close()       # closing removes the connection from its rooms
    async def gone():
        while len(srv.connections) != 4:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(gone(), 5)
    assert srv.rooms() == {"blue": 2}
    assert await srv.to("red").emit("news", "nobody") == 0
    # raw broadcast to a room
    assert await srv.to("blue").send(b"bytes for blue") == 2
    assert await clients[2].receive(timeout=5) == b"bytes for blue"
    await srv.close()
    assert srv.ready_state == socketiwa.ReadyState.CLOSED
    for c in clients[1:]:
        await asyncio.wait_for(c.wait_closed(), 5)    # server close closes every connection


@pytest.fixture
def host_client(free_tcp_port):
    """A CPython client that connects to the runtime's server (retrying until it listens),
    sends an event asking for an ack, and records what came back."""
    from socketiwa import wire
    result = {}

    def run():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                s = socket.create_connection(("127.0.0.1", free_tcp_port), timeout=5)
                break
            except OSError:
                time.sleep(0.05)
        else:
            result["error"] = "server never listened"
            return
        with s:
            s.sendall(wire.frame(wire.encode_event("hello", {"from": "cpython"}, ack_id=42)))
            d = wire.Deframer()
            frames = []
            while not frames:
                chunk = s.recv(4096)
                if not chunk:
                    break
                frames = d.feed(chunk)
            result["ack"] = wire.decode(frames[0]) if frames else None
    t = threading.Thread(target=run, daemon=True)
    t.start()
    yield free_tcp_port
    t.join(30)
    assert "error" not in result, result.get("error")
    ack = result["ack"]
    assert ack is not None and ack.kind == wire.KIND_ACK and ack.ack_id == 42
    assert ack.payload == {"hello": "cpython", "server": "runtime"}


@everywhere
async def test_server_accepts_cpython_client(selenium, host_client):
    import asyncio
    import socketiwa
    got = asyncio.get_running_loop().create_future()
    srv = await socketiwa.create_tcp_server("127.0.0.1", host_client)
    assert srv.local_port == host_client

    def on_connection(conn):
        def hello(payload, ack):
            ack({"hello": payload["from"], "server": "runtime"})
            got.set_result((payload, conn.remote_address))
        conn.on("hello", hello)
    srv.on("connection", on_connection)
    payload, peer = await asyncio.wait_for(got, 20)
    assert payload == {"from": "cpython"} and peer == "127.0.0.1"
    await asyncio.sleep(0.05)    # let the ack leave before closing
    await srv.close()


@everywhere
async def test_server_bad_input(selenium, tcp_echo):
    import socketiwa
    host, port = tcp_echo
    for args in (("127.0.0.1", -1), ("127.0.0.1", 70000)):
        try:
            await socketiwa.create_tcp_server(*args)
        except socketiwa.InvalidOptionError:
            continue
        raise AssertionError(f"{args} accepted")
    try:
        await socketiwa.create_tcp_server("127.0.0.1", 0, backlog=0)
    except socketiwa.InvalidOptionError:
        pass
    else:
        raise AssertionError("backlog 0 accepted")
    client = await socketiwa.create_tcp(host, port)
    try:
        client.join("room")
    except socketiwa.NotSupportedError:
        pass
    else:
        raise AssertionError("join on a client connection accepted")
    await client.close()
    srv = await socketiwa.create_tcp_server("127.0.0.1", 0)
    try:
        await socketiwa.create_tcp_server("127.0.0.1", srv.local_port)   # port in use
    except socketiwa.ConnectError:
        pass
    else:
        raise AssertionError("second server on a used port accepted")
    await srv.close()


@everywhere
async def test_server_close_with_clients_connected(selenium):
    """TCPServer.close() with clients connected and idle returns and closes them. On Python
    3.12+ it used to hang: asyncio's Server.wait_closed() waits for every open connection, and
    the backend awaited it before closing the connections."""
    import asyncio
    import socketiwa
    srv = await socketiwa.create_tcp_server("127.0.0.1", 0)
    conns = []
    srv.on("connection", conns.append)
    clients = [await socketiwa.create_tcp("127.0.0.1", srv.local_port) for _ in range(3)]
    while len(conns) < 3:
        await asyncio.sleep(0.01)
    await clients[0].send(b"unread by anyone")
    await asyncio.wait_for(srv.close(), 10)
    assert srv.ready_state == socketiwa.ReadyState.CLOSED and not srv.connections
    for c in clients:
        await asyncio.wait_for(c.wait_closed(), 10)
    try:
        await socketiwa.create_tcp("127.0.0.1", srv.local_port)
    except socketiwa.ConnectError:
        pass
    else:
        raise AssertionError("the server still listens after close()")


@everywhere
async def test_server_connect_and_disconnect_events(selenium):
    """Server-level events: connect(conn) with each new connection (after connection), and
    disconnect(conn, info) when it ends, whichever side closed it."""
    import asyncio
    import socketiwa
    srv = await socketiwa.create_tcp_server("127.0.0.1", 0)
    log = []
    srv.on("connection", lambda conn: log.append(("connection", conn.remote_port)))
    srv.on("connect", lambda conn: log.append(("connect", conn.remote_port)))
    srv.on("disconnect", lambda conn, info: log.append(("disconnect", conn.remote_port, info.code)))
    a = await socketiwa.create_tcp("127.0.0.1", srv.local_port)
    b = await socketiwa.create_tcp("127.0.0.1", srv.local_port)
    for _ in range(250):
        if len(log) == 4:
            break
        await asyncio.sleep(0.02)
    assert sorted(log) == sorted([("connection", a.local_port), ("connect", a.local_port),
                                  ("connection", b.local_port), ("connect", b.local_port)])
    assert log.index(("connection", a.local_port)) < log.index(("connect", a.local_port))
    await a.close(4002, "a leaves")
    for _ in range(250):
        if len(log) == 5:
            break
        await asyncio.sleep(0.02)
    assert log[4] == ("disconnect", a.local_port, 4002)
    await srv.close()                      # the server closes b's connection itself
    assert log[5:] == [("disconnect", b.local_port, 1000)]
    assert srv.connections == []
    await asyncio.wait_for(b.wait_closed(), 10)
