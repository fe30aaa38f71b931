"""Service discovery on the LAN by multicast: every node announces itself to a group and
lists the nodes it hears.

    python examples/multicast_discovery/main.py                 # two nodes in one process
    python examples/multicast_discovery/main.py node --name printer --seconds 10
    socketiwa run examples/multicast_discovery [-- node --name iwa-node]   # inside the IWA

Announcements are small JSON datagrams ``{"id", "name", "service_port"}`` sent to
239.255.70.77:5070 twice a second with TTL 1 (they never pass a router). Run several nodes, on
one machine or several: each prints the others as it finds them. In the IWA this needs the
``direct-sockets-multicast`` permission (pyproject.toml).
"""
import argparse
import asyncio
import json
import os
import sys
import time

import socketiwa

GROUP, PORT = "239.255.70.77", 5070


class Node:
    def __init__(self, name: str, service_port: int):
        self.id = os.urandom(4).hex()           # tells our own announcements apart
        self.name = name
        self.service_port = service_port
        self.peers = {}                         # id -> (name, address, service_port)

    async def open(self):
        # Several programs on one machine may listen on the group's port: share it.
        self.listener = await socketiwa.create_multicast_socket(
            "0.0.0.0", PORT, allow_address_sharing=True, multicast_loopback=True)
        await self.listener.add_membership(GROUP)
        self.listener.on("message", self.heard)
        self.sender = await socketiwa.create_udp(local_address="0.0.0.0", multicast_time_to_live=1,
                                                 multicast_loopback=True)
        return self

    def heard(self, data, rinfo):
        try:
            msg = json.loads(data)
            peer_id, name, port = msg["id"], str(msg["name"]), int(msg["service_port"])
        except (ValueError, KeyError, TypeError):
            return                              # not one of ours: ignore, keep listening
        if peer_id != self.id and peer_id not in self.peers:
            self.peers[peer_id] = (name, rinfo.address, port)
            print(f"{self.name}: found {name} at {rinfo.address} (service port {port})", flush=True)

    async def announce(self):
        msg = {"id": self.id, "name": self.name, "service_port": self.service_port}
        await self.sender.send(json.dumps(msg).encode(), PORT, GROUP)

    async def run(self, seconds: float, until_peers: int | None = None):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.announce()
            if until_peers is not None and len(self.peers) >= until_peers:
                break
            await asyncio.sleep(0.5)

    async def close(self):
        await self.listener.drop_membership(GROUP)
        await self.listener.close()
        await self.sender.close()


async def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", nargs="?", choices=["demo", "node"], default="demo")
    ap.add_argument("--name", default=f"node-{os.getpid()}")
    ap.add_argument("--service-port", type=int, default=8080)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--until-peers", type=int, help="stop once this many peers were found")
    args = ap.parse_args(argv)
    print(f"socketiwa backend: {socketiwa.backend_name()}; group {GROUP}:{PORT}", flush=True)
    if args.mode == "node":
        node = await Node(args.name, args.service_port).open()
        await node.run(args.seconds, args.until_peers)
        await node.close()
        print(f"{node.name} knows {sorted(n for n, _, _ in node.peers.values())}")
        return 0
    nodes = [await Node("camera", 8554).open(), await Node("speaker", 7000).open()]
    await asyncio.gather(*(n.run(10, until_peers=1) for n in nodes))
    for n in nodes:
        print(f"{n.name} knows {sorted(name for name, _, _ in n.peers.values())}")
        await n.close()
    return 0 if all(n.peers for n in nodes) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
