"""A media stream over LAN multicast: a sender paces numbered packets to a group, receivers
count what arrived, what was lost, duplicated or out of order, the rate and the jitter.

    python examples/multicast_media/main.py                  # sender + receiver in one process
    python examples/multicast_media/main.py receive          # until a sender finishes (or --seconds)
    python examples/multicast_media/main.py send --rate 200 --count 1000 --size 1200
    socketiwa run examples/multicast_media [-- receive]      # the same inside the IWA

Each packet: a 21-byte header (magic ``SIWM``, kind, a random 32-bit source id, a 32-bit
sequence number, the send time in microseconds) and ``--size`` bytes of payload, to
239.255.70.78:5072 with TTL 1 (it never passes a router). When done the sender sends an end
packet (three times: it may be lost too) carrying how many packets it numbered, so receivers
can count losses at the tail. ``send --drop N --duplicate N --reorder N`` impairs every Nth
packet on purpose (dropped; sent twice; held back and sent after the next one) and prints
what it did, so the receiver's counters can be checked against it. Several senders may share
the group: receivers keep counters per source. In the IWA this needs the
``direct-sockets-multicast`` permission (pyproject.toml).
"""
import argparse
import asyncio
import os
import struct
import sys
import time

import socketiwa

GROUP, PORT = "239.255.70.78", 5072
HEADER = struct.Struct(">4sBIIQ")          # magic, kind, source, sequence (or total), send time µs
MAGIC, MEDIA, END = b"SIWM", 0, 1
WINDOW = 4096   # how far back a missing packet may still arrive; bounds the receiver's memory


def now_us() -> int:
    return time.monotonic_ns() // 1000


class SourceStats:
    """Counters for one sender, RTP style: a gap in the sequence marks packets missing; one of
    them arriving later is out of order, a number seen before is a duplicate."""

    def __init__(self, source: int):
        self.source = source
        self.highest = -1
        self.missing: set[int] = set()    # gaps within WINDOW of the highest number seen
        self.received = 0                 # distinct packets, in time
        self.duplicates = self.out_of_order = self.late = 0
        self.bytes = 0
        self.first_at = self.last_at = 0.0
        self.total: int | None = None     # from the sender's end packet
        self.jitter_us = 0.0              # RFC 3550 interarrival jitter
        self._transit: int | None = None

    def packet(self, seq: int, sent_us: int, size: int) -> None:
        arrived = now_us()
        self.last_at = time.monotonic()
        if not self.first_at:
            self.first_at = self.last_at
        if seq > self.highest:
            self.missing.update(range(max(self.highest + 1, seq - WINDOW), seq))
            self.highest = seq
            if len(self.missing) > WINDOW:      # too old to arrive in time: lost for good
                self.missing = {s for s in self.missing if s > seq - WINDOW}
        elif seq in self.missing:
            self.missing.discard(seq)
            self.out_of_order += 1
        elif seq <= self.highest - WINDOW:
            self.late += 1
            return
        else:
            self.duplicates += 1
            return
        self.received += 1
        self.bytes += size
        # jitter: how much the one-way transit time varies (the clocks' offset cancels out)
        transit = arrived - sent_us
        if self._transit is not None:
            self.jitter_us += (abs(transit - self._transit) - self.jitter_us) / 16
        self._transit = transit

    @property
    def lost(self) -> int:
        if self.total is not None:
            return self.total - self.received
        return len(self.missing)

    def report(self) -> str:
        seconds = self.last_at - self.first_at
        pps = (self.received - 1) / seconds if seconds > 0 else 0.0
        kbits = self.bytes * 8 / 1000 / seconds if seconds > 0 else 0.0
        total = "?" if self.total is None else self.total
        return (f"source {self.source:08x}: {self.received}/{total} received, {self.lost} lost, "
                f"{self.duplicates} duplicates, {self.out_of_order} out of order, {self.late} late; "
                f"{pps:.1f} packets/s, {kbits:.0f} kbit/s, jitter {self.jitter_us / 1000:.2f} ms")


class Receiver:
    def __init__(self, group: str, port: int):
        self.group, self.port = group, port
        self.sources: dict[int, SourceStats] = {}
        self.ignored = 0                   # datagrams on the port that are not ours
        self.finished = asyncio.Event()
        self.expect_senders = 1

    async def open(self) -> "Receiver":
        # Several receivers on one machine may listen on the group's port: share it.
        self.sock = await socketiwa.create_multicast_socket(
            "0.0.0.0", self.port, allow_address_sharing=True, multicast_loopback=True)
        await self.sock.add_membership(self.group)
        self.sock.on("message", self.heard)
        return self

    def heard(self, data, rinfo) -> None:
        if len(data) < HEADER.size:
            self.ignored += 1
            return
        magic, kind, source, seq, sent_us = HEADER.unpack_from(data)
        if magic != MAGIC or kind not in (MEDIA, END):
            self.ignored += 1
            return
        stats = self.sources.get(source)
        if stats is None:
            stats = self.sources[source] = SourceStats(source)
            print(f"receiving source {source:08x} from {rinfo.address}", flush=True)
        if kind == MEDIA:
            stats.packet(seq, sent_us, len(data) - HEADER.size)
        elif stats.total is None:
            stats.total = seq
            print(f"final {stats.report()}", flush=True)
            if sum(s.total is not None for s in self.sources.values()) >= self.expect_senders:
                self.finished.set()

    async def run(self, seconds: float, senders: int) -> None:
        """Print the counters every second until ``senders`` senders finished or time is up."""
        self.expect_senders = senders
        deadline = time.monotonic() + seconds
        while not self.finished.is_set() and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self.finished.wait(), 1)
            except asyncio.TimeoutError:
                for stats in self.sources.values():
                    if stats.total is None:
                        print(stats.report(), flush=True)

    async def close(self) -> None:
        await self.sock.drop_membership(self.group)
        await self.sock.close()


async def send(group: str, port: int, *, rate: float, count: int, size: int,
               drop: int = 0, duplicate: int = 0, reorder: int = 0) -> dict:
    """Send ``count`` packets at ``rate`` per second; returns what was sent and impaired."""
    sock = await socketiwa.create_udp(local_address="0.0.0.0", multicast_time_to_live=1,
                                      multicast_loopback=True)
    source = int.from_bytes(os.urandom(4), "big")
    payload = os.urandom(size)
    done = {"source": f"{source:08x}", "numbered": count, "datagrams": 0, "dropped": 0,
            "duplicated": 0, "reordered": 0}
    held = None   # (packet, copies) waiting to go out after the next one

    async def out(packet: bytes, copies: int) -> None:
        for _ in range(copies):
            await sock.send(packet, port, group)
        done["datagrams"] += copies
        done["duplicated"] += copies - 1

    start = time.monotonic()
    for seq in range(count):
        # pace by the clock, not by sleeping a fixed time: late wake-ups do not slow the rate
        delay = start + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if drop and seq % drop == drop - 1:
            done["dropped"] += 1
            continue
        packet = HEADER.pack(MAGIC, MEDIA, source, seq, now_us()) + payload
        copies = 2 if duplicate and seq % duplicate == duplicate - 1 else 1
        if reorder and seq % reorder == reorder - 1 and held is None:
            held = (packet, copies)
            continue
        await out(packet, copies)
        if held is not None:
            await out(*held)
            done["reordered"] += 1
            held = None
    if held is not None:
        await out(*held)                   # nothing came after it: it goes in order
    seconds = time.monotonic() - start
    for _ in range(3):
        await sock.send(HEADER.pack(MAGIC, END, source, count, now_us()), port, group)
        await asyncio.sleep(0.02)
    await sock.close()
    done["rate"] = (count - 1) / seconds if seconds > 0 else 0.0
    print(f"sent source {done['source']}: {count} packets of {size} bytes at {done['rate']:.1f} packets/s "
          f"({done['datagrams']} datagrams); on purpose {done['dropped']} dropped, "
          f"{done['duplicated']} duplicated, {done['reordered']} reordered", flush=True)
    return done


async def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", nargs="?", choices=["demo", "send", "receive"], default="demo")
    ap.add_argument("--group", default=GROUP)
    ap.add_argument("--port", type=int, default=PORT)
    ap.add_argument("--rate", type=float, default=100, help="packets per second (send)")
    ap.add_argument("--count", type=int, default=300, help="packets to send (send)")
    ap.add_argument("--size", type=int, default=1000, help="payload bytes per packet (send)")
    for name in ("drop", "duplicate", "reorder"):
        ap.add_argument(f"--{name}", type=int, default=0, metavar="N", help=f"{name} every Nth packet (send)")
    ap.add_argument("--seconds", type=float, default=60, help="give up after this long (receive)")
    ap.add_argument("--senders", type=int, default=1, help="stop when this many senders finished (receive)")
    args = ap.parse_args(argv)
    if args.rate <= 0 or args.count < 1 or not 0 <= args.size <= 65000:
        ap.error("--rate must be > 0, --count >= 1, --size in 0..65000")
    print(f"socketiwa backend: {socketiwa.backend_name()}; group {args.group}:{args.port}", flush=True)
    sending = dict(rate=args.rate, count=args.count, size=args.size, drop=args.drop,
                   duplicate=args.duplicate, reorder=args.reorder)
    if args.mode == "send":
        await send(args.group, args.port, **sending)
        return 0
    receiver = await Receiver(args.group, args.port).open()
    print(f"receiving on {args.group}:{args.port}", flush=True)
    if args.mode == "receive":
        await receiver.run(args.seconds, args.senders)
    else:
        # the demo impairs its own stream so every counter has something to count
        if not (args.drop or args.duplicate or args.reorder):
            sending.update(drop=50, duplicate=40, reorder=30)
        sent = asyncio.ensure_future(send(args.group, args.port, **sending))
        await receiver.run(args.seconds, 1)
        await sent
    await receiver.close()
    finished = [s for s in receiver.sources.values() if s.total is not None]
    return 0 if len(finished) >= args.senders else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
