# The demo's Python, run inside Pyodide in the IWA: a UDP socket and a TCP server with rooms,
# both talked to by a CPython peer. What happens is printed on the page.
# UDP_PORT and TCP_PORT are set by scripts/demo.py before this runs.
import asyncio

import socketiwa

print(f"socketiwa {socketiwa.__version__} on the {socketiwa.backend_name()} backend")
print("permissions:", await socketiwa.permissions.state())
done = {"udp": asyncio.get_running_loop().create_future(), "tcp": asyncio.get_running_loop().create_future()}

udp = await socketiwa.create_udp(local_address="127.0.0.1", local_port=UDP_PORT)
print(f"UDP socket bound to {udp.local_address}:{udp.local_port}")


async def on_datagram(data, rinfo):
    print(f"UDP  <- {rinfo.address}:{rinfo.port} {data!r}")
    await udp.send(b"IWA says: " + data.upper(), rinfo.port, rinfo.address)
    if not done["udp"].done():
        done["udp"].set_result(data)
udp.on("message", on_datagram)

server = await socketiwa.create_tcp_server("127.0.0.1", TCP_PORT)
print(f"TCP server listening on {server.local_address}:{server.local_port}")


def on_connection(conn):
    print(f"TCP  <- connection from {conn.remote_address}:{conn.remote_port}")
    conn.join("demo")

    async def hello(payload, ack):
        print(f"TCP  <- event 'hello' {payload}")
        ack({"welcome": payload["name"], "rooms": sorted(conn.rooms)})
        reached = await server.to("demo").emit("news", "someone said hello")
        print(f"TCP  -> 'news' to room 'demo' ({reached} connection)")
        if not done["tcp"].done():
            done["tcp"].set_result(payload)
    conn.on("hello", hello)
server.on("connection", on_connection)

await asyncio.wait_for(asyncio.gather(*done.values()), 30)
await asyncio.sleep(0.2)  # let the last replies leave
await udp.close()
await server.close()
print("demo finished: both peers served")
