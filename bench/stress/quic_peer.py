"""QUIC far end for the stress report: aioquic's own echo server on CPython (tests/quic_peers.py)
and lossy UDP relays in front of it that drop and reorder datagrams (seeded), in one process.

    python bench/stress/quic_peer.py

prints one JSON line: {"quic": port, "lossy1": port, "lossy5": port, "ca": PEM}; runs until its
stdin ends. A relay forwards between the most recent client and the server: the profiles run one
connection at a time through it.
"""
from __future__ import annotations

import json
import random
import select
import socket
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from quic_peers import LoopThread, make_certs, server_port, start_aioquic_echo_server  # noqa: E402


class LossyRelay:
    """Each datagram, either way: dropped with probability ``p``; else held back and sent after
    the next one (reordered) with probability ``p``; else forwarded at once."""

    def __init__(self, upstream: tuple[str, int], p: float, seed: int):
        self.upstream, self.p = upstream, p
        self.rng = random.Random(seed)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.client: tuple[str, int] | None = None
        self.held: dict[str, bytes | None] = {"up": None, "down": None}
        self.counts = {"forwarded": 0, "dropped": 0, "reordered": 0}
        threading.Thread(target=self.run, daemon=True).start()

    @property
    def port(self) -> int:
        return self.front.getsockname()[1]

    def _pass(self, direction: str, data: bytes, send) -> None:
        r = self.rng.random()
        if r < self.p:
            self.counts["dropped"] += 1
            return
        held = self.held[direction]
        if held is None and r < 2 * self.p:
            self.held[direction] = data          # goes out after the next datagram
            self.counts["reordered"] += 1
            return
        send(data)
        self.counts["forwarded"] += 1
        if held is not None:
            self.held[direction] = None
            send(held)

    def run(self) -> None:
        while True:
            ready, _, _ = select.select([self.front, self.back], [], [])
            for sock in ready:
                data, addr = sock.recvfrom(65535)
                if sock is self.front:
                    if addr != self.client:      # a new connection: forget the old one's backlog
                        self.client = addr
                        self.held = {"up": None, "down": None}
                    self._pass("up", data, lambda d: self.back.sendto(d, self.upstream))
                elif self.client is not None:
                    self._pass("down", data, lambda d: self.front.sendto(d, self.client))


def main() -> None:
    certs = make_certs()
    lt = LoopThread()
    server, _ = start_aioquic_echo_server(lt, certs, retry=False)
    port = server_port(server)
    relays = {"lossy1": LossyRelay(("127.0.0.1", port), 0.01, 1),
              "lossy5": LossyRelay(("127.0.0.1", port), 0.05, 5)}
    info = {"quic": port, **{k: r.port for k, r in relays.items()}, "ca": certs["ca"].decode()}
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            print(json.dumps({k: r.counts for k, r in relays.items()}), flush=True)
    lt.stop()


if __name__ == "__main__":
    main()
