"""The stress profiles, endpoint side: socketiwa code that runs unchanged on CPython and in
Pyodide (the Chromium IWA, or Node). bench/stress/cases.mjs is the same in plain JavaScript.

Only the standard library and socketiwa may be imported here: run.py ships this file's source
into Pyodide. On CPython, run.py starts it as its own process (``python cases.py FN JSON``), so
its RSS is the endpoint's alone.

Every packet (UDP datagram or TCP message) is ``HEAD`` (flow u32, seq u32, send time f64 on the
endpoint's clock) and filler bytes equal to ``seq & 0xff``; the peer (peer.py) echoes it. The
endpoint counts what comes back: unique, duplicated, out of order, corrupt, and the round trip
of each. Functions return raw observations (every round trip in us, counts per 100 ms bin);
stats.py turns them into rates and percentiles the same way for every runtime.

Each profile is bounded: a count or a duration, and an idle timeout after sending ends.
"""
from __future__ import annotations

import array
import asyncio
import struct
import time

HEAD = struct.Struct("!IId")
BIN_S = 0.1
BUFFER = 4 << 20          # socket buffers asked for, the same for every runtime
perf = time.perf_counter


class Rng:
    """mulberry32: the same seeded sequence as cases.mjs, so chaos runs one schedule everywhere."""

    def __init__(self, seed: int):
        self.state = seed & 0xFFFFFFFF

    def random(self) -> float:
        self.state = (self.state + 0x6D2B79F5) & 0xFFFFFFFF
        t = self.state
        t = ((t ^ (t >> 15)) * (t | 1)) & 0xFFFFFFFF
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    def int(self, lo: int, hi: int) -> int:
        """lo..hi inclusive."""
        return lo + int(self.random() * (hi - lo + 1))


def packet(flow: int, seq: int, size: int) -> bytes:
    return HEAD.pack(flow, seq, perf()) + bytes((seq & 0xFF,)) * (size - HEAD.size)


def _bump(bins: list, start: float, now: float) -> None:
    i = int((now - start) / BIN_S)
    while len(bins) <= i:
        bins.append(0)
    bins[i] += 1


class SeqSet:
    """Sequence numbers seen, one bit each: a 5-minute soak (300k+ numbers) adds kilobytes, not
    the ~20 MB a set of ints would, so the endpoint's memory samples measure socketiwa."""

    __slots__ = ("bits", "count")

    def __init__(self) -> None:
        self.bits = bytearray(1 << 12)
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def __contains__(self, seq: int) -> bool:
        i = seq >> 3
        return i < len(self.bits) and bool(self.bits[i] & (1 << (seq & 7)))

    def add(self, seq: int) -> None:
        i = seq >> 3
        if i >= len(self.bits):
            self.bits.extend(bytes(max(i + 1, 2 * len(self.bits)) - len(self.bits)))
        if not self.bits[i] & (1 << (seq & 7)):
            self.bits[i] |= 1 << (seq & 7)
            self.count += 1


class Tally:
    """What came back on one flow."""

    def __init__(self, flow: int, start: float):
        self.flow, self.start = flow, start
        self.seen = SeqSet()
        self.duplicated = self.out_of_order = self.corrupt = 0
        self.max_seq = -1
        # 4 bytes per round trip (an array, not a list of int objects: 28+8 bytes each)
        self.rtt_us = array.array("i")
        self.recv_bins: list[int] = []
        self.last_rx = start

    @property
    def received(self) -> int:
        return len(self.seen)

    def add(self, data: bytes) -> None:
        now = perf()
        self.last_rx = now
        if len(data) < HEAD.size:
            self.corrupt += 1
            return
        flow, seq, sent_at = HEAD.unpack_from(data)
        if flow != self.flow or data[HEAD.size:] != bytes((seq & 0xFF,)) * (len(data) - HEAD.size):
            self.corrupt += 1
            return
        if seq in self.seen:
            self.duplicated += 1
            return
        self.seen.add(seq)
        if seq < self.max_seq:
            self.out_of_order += 1
        else:
            self.max_seq = seq
        self.rtt_us.append(int((now - sent_at) * 1e6))
        _bump(self.recv_bins, self.start, now)

    def received_between(self, lo: int, hi: int) -> int:
        return sum(1 for s in range(lo, hi) if s in self.seen)

    def missing_ranges(self, sent: int, limit: int = 20) -> list:
        """The first ``limit`` runs of sequence numbers that never came back, as [first, last]."""
        out: list = []
        for seq in range(sent):
            if seq not in self.seen:
                if out and out[-1][1] == seq - 1:
                    out[-1][1] = seq
                elif len(out) < limit:
                    out.append([seq, seq])
                else:
                    break
        return out

    def result(self, sent: int, sent_bins: list, send_end: float) -> dict:
        return {"flow": self.flow, "sent": sent, "received": self.received,
                "missing": self.missing_ranges(sent),
                "duplicated": self.duplicated, "out_of_order": self.out_of_order,
                "corrupt": self.corrupt, "send_seconds": round(send_end - self.start, 4),
                "seconds": round(max(self.last_rx, send_end) - self.start, 4),
                "rtt_us": self.rtt_us.tolist(), "sent_bins": sent_bins, "recv_bins": self.recv_bins}


async def _open(transport: str, host: str, port: int, tally: Tally):
    import socketiwa
    if transport == "udp":
        sock = await socketiwa.create_udp(remote_address=host, remote_port=port, max_queue=4096,
                                          receive_buffer_size=BUFFER, send_buffer_size=BUFFER)
    else:
        sock = await socketiwa.create_tcp(host, port, no_delay=True, max_queue=4096)
    sock.on("message", tally.add)
    return sock


async def _drain(tally: Tally, expected: int, send_end: float, idle: float, limit: float) -> str:
    """Wait for the echoes: all back ("done"), or nothing new for ``idle`` s ("idle"), or
    ``limit`` s in all ("limit": echoes may still have been coming)."""
    give_up = send_end + limit
    while tally.received < expected:
        now = perf()
        if now > give_up:
            return "limit"
        if now - max(tally.last_rx, send_end) > idle:
            return "idle"
        await asyncio.sleep(0.01)
    return "done"


async def burst(host: str, port: int, flow: int, transport: str = "udp", count: int = 50000,
                size: int = 64, idle: float = 1.0, limit: float = 60.0,
                yield_every: int = 64, echo_every: int = 16) -> dict:
    """``count`` packets as fast as the socket takes them. Measured one way: the peer counts
    what arrives (run.py asks it) and echoes every ``echo_every``-th packet (UDP) for round-trip
    samples; TCP echoes everything. The sender yields to the event loop every ``yield_every``
    packets (cases.mjs does the same), so the echoes are read while sending."""
    if transport == "udp":
        flow |= echo_every << 24       # the peer reads the echo rate from the flow id
        expected = (count + echo_every - 1) // echo_every
    else:
        expected = count
    start = perf()
    tally = Tally(flow, start)
    sock = await _open(transport, host, port, tally)
    tally.start = start = perf()
    sent_bins: list[int] = []
    for seq in range(count):
        await sock.send(packet(flow, seq, size))
        _bump(sent_bins, start, perf())
        if seq % yield_every == yield_every - 1:
            await asyncio.sleep(0)
    send_end = perf()
    await _drain(tally, expected, send_end, idle if transport == "udp" else max(idle, 5.0), limit)
    await sock.close()
    out = tally.result(count, sent_bins, send_end)
    out["expected_back"] = expected
    return out


async def paced(host: str, port: int, flow: int, steps: list, transport: str = "udp",
                size: int = 64, idle: float = 1.0, stop_loss: float | None = None,
                min_achieved: float = 0.8, grace: float = 0.3, tick: float = 0.001) -> dict:
    """Send at fixed rates: ``steps`` is [[rate per s, seconds], ...]. Each tick sends what is
    due, so a slow timer costs bursts, not rate. With ``stop_loss`` (the ramp) each step waits
    ``grace`` s for its echoes and the run stops at the first step losing more than that share,
    or sending under ``min_achieved`` of its rate (the sender itself cannot go faster)."""
    start = perf()
    tally = Tally(flow, start)
    sock = await _open(transport, host, port, tally)
    tally.start = start = perf()
    sent_bins: list[int] = []
    seq = 0
    step_results = []
    for rate, seconds in steps:
        first = seq
        step_start = perf()
        target = max(1, int(rate * seconds))
        while True:
            now = perf()
            elapsed = now - step_start
            # The last tick may overshoot the step: top up to the step's count before leaving,
            # unless the sender is far behind (more than a tenth short: it cannot keep up, and
            # a catch-up burst would hide that).
            if elapsed >= seconds:
                due = target if target - (seq - first) <= target // 10 else seq - first
            else:
                due = min(target, int(rate * elapsed) + 1)
            while seq - first < due:
                await sock.send(packet(flow, seq, size))
                _bump(sent_bins, start, perf())
                seq += 1
            if elapsed >= seconds:
                break
            await asyncio.sleep(tick)
        step_seconds = perf() - step_start
        step = {"rate": rate, "seconds": round(step_seconds, 4), "sent": seq - first,
                "achieved_rate": round((seq - first) / step_seconds)}
        step_results.append(step)
        if stop_loss is not None:
            await asyncio.sleep(grace)
            step["received"] = tally.received_between(first, seq)
            lost = 1 - step["received"] / max(1, step["sent"])
            if lost > stop_loss or step["achieved_rate"] < min_achieved * rate:
                break
    send_end = perf()
    await _drain(tally, seq, send_end, idle if transport == "udp" else max(idle, 5.0), 30.0)
    for step_result, first in zip(step_results, _firsts(step_results), strict=True):
        step_result["received"] = tally.received_between(first, first + step_result["sent"])
    await sock.close()
    out = tally.result(seq, sent_bins, send_end)
    out["steps"] = step_results
    return out


def _firsts(steps: list) -> list:
    firsts, n = [], 0
    for s in steps:
        firsts.append(n)
        n += s["sent"]
    return firsts


# ---------------------------------------------------------------- chaos
class Chaos:
    """Random traffic on one schedule (seeded): UDP flows of random size and rate, TCP
    connections that send random messages and close or abort, peers that vanish mid-stream,
    refused connects and a UDP peer that never answers. Everything must end in a counted
    outcome; anything else lands in ``unexpected``."""

    def __init__(self, host: str, ports: dict, flow_base: int, seed: int):
        self.host, self.ports, self.flow_base = host, ports, flow_base
        self.rng = Rng(seed)
        self.next_flow = flow_base
        self.start = perf()
        self.udp = {"flows": [], "sent": 0, "received": 0, "duplicated": 0, "out_of_order": 0,
                    "corrupt": 0}
        self.tcp = {"connections": 0, "messages_sent": 0, "messages_back": 0, "bytes_sent": 0,
                    "lost": 0, "duplicated": 0, "out_of_order": 0, "corrupt": 0, "aborted": 0,
                    "aborted_unanswered": 0, "unfinished_idle": 0, "unfinished_limit": 0}
        self.vanish = {"connections": 0, "ended_by_peer": 0, "typed_send_errors": 0}
        self.refused = {"attempts": 0, "typed_errors": 0}
        self.blackhole = {"sockets": 0, "sent": 0, "received": 0}
        self.rtt_us: list[int] = []
        self.recv_bins: list[int] = []
        self.sent_bins: list[int] = []
        self.unexpected: list[str] = []
        self.actions: list[str] = []

    def _note(self, where: str, exc: BaseException) -> None:
        self.unexpected.append(f"{where}: {type(exc).__name__}: {exc}")

    async def udp_flow(self, rng: Rng) -> None:
        flow = self.next_flow
        self.next_flow += 1
        count, size, rate = rng.int(10, 400), rng.int(HEAD.size, 1400), rng.int(500, 20000)
        tally = Tally(flow, self.start)
        sock = await _open("udp", self.host, self.ports["udp"], tally)
        t0 = perf()
        for seq in range(count):
            due = t0 + seq / rate
            if due - perf() > 0.001:
                await asyncio.sleep(due - perf())
            await sock.send(packet(flow, seq, size))
            _bump(self.sent_bins, self.start, perf())
        await _drain(tally, count, perf(), 0.5, 5.0)
        await sock.close()
        u = self.udp
        u["flows"].append(flow)
        u["sent"] += count
        for k in ("received", "duplicated", "out_of_order", "corrupt"):
            u[k] += getattr(tally, k)
        self.rtt_us += tally.rtt_us
        self._merge_bins(tally.recv_bins)

    def _merge_bins(self, bins: list) -> None:
        while len(self.recv_bins) < len(bins):
            self.recv_bins.append(0)
        for i, n in enumerate(bins):
            self.recv_bins[i] += n

    async def tcp_conn(self, rng: Rng) -> None:
        import socketiwa
        flow = self.next_flow
        self.next_flow += 1
        count = rng.int(1, 200)
        abort_after = rng.int(0, count) if rng.random() < 0.2 else None   # one in five aborts
        tally = Tally(flow, self.start)
        conn = await _open("tcp", self.host, self.ports["tcp"], tally)
        t = self.tcp
        t["connections"] += 1
        sent = 0
        for seq in range(count):
            if seq == abort_after:
                break
            size = rng.int(HEAD.size, 16384)
            await conn.send(packet(flow, seq, size))
            _bump(self.sent_bins, self.start, perf())
            t["bytes_sent"] += size
            sent += 1
            if rng.random() < 0.1:
                await asyncio.sleep(rng.random() * 0.01)
        if abort_after is not None:
            await conn.abort()     # in-flight messages may be lost: counted apart, not as loss
            t["aborted"] += 1
            t["aborted_unanswered"] += sent - tally.received
        else:
            ended = await _drain(tally, sent, perf(), 5.0, 20.0)
            await conn.close()
            t["lost"] += sent - tally.received
            if ended != "done":   # "idle": nothing came for 5 s; "limit": still coming at 20 s
                t["unfinished_" + ended] += 1
        if conn.ready_state is not socketiwa.ReadyState.CLOSED:
            self.unexpected.append(f"tcp flow {flow}: not closed after close()")
        t["messages_sent"] += sent
        t["messages_back"] += tally.received
        for k in ("duplicated", "out_of_order", "corrupt"):
            t[k] += getattr(tally, k)
        self.rtt_us += tally.rtt_us
        self._merge_bins(tally.recv_bins)

    async def vanishing_peer(self, rng: Rng) -> None:
        """The peer echoes 0..64 KiB, then resets: we must see the end and get typed errors."""
        import socketiwa
        from socketiwa.errors import SocketIwaError
        flow = self.next_flow
        self.next_flow += 1
        tally = Tally(flow, self.start)
        conn = await _open("tcp", self.host, self.ports["vanish"], tally)
        ended = asyncio.Event()
        conn.on("disconnect", ended.set)
        conn.on("close", ended.set)
        conn.on("error", lambda exc: None)       # the reset is reported; counted via disconnect
        self.vanish["connections"] += 1
        give_up = perf() + 10
        seq = 0
        while not ended.is_set() and perf() < give_up:
            try:
                await conn.send(packet(flow, seq, rng.int(HEAD.size, 4096)))
            except SocketIwaError:
                self.vanish["typed_send_errors"] += 1
                break
            seq += 1
            await asyncio.sleep(0.002)
        try:
            await asyncio.wait_for(ended.wait(), 5)
            self.vanish["ended_by_peer"] += 1
        except asyncio.TimeoutError:
            self.unexpected.append(f"vanish flow {flow}: no disconnect within 5 s of the reset")
        await conn.close(timeout=1)
        if conn.ready_state is not socketiwa.ReadyState.CLOSED:
            self.unexpected.append(f"vanish flow {flow}: not closed")

    async def refused_connect(self, rng: Rng) -> None:
        import socketiwa
        from socketiwa.errors import ConnectError
        self.refused["attempts"] += 1
        try:
            conn = await socketiwa.create_tcp(self.host, self.ports["closed"])
        except ConnectError:
            self.refused["typed_errors"] += 1
            return
        await conn.close()
        self.unexpected.append("connect to a closed port succeeded")

    async def blackhole_udp(self, rng: Rng) -> None:
        import socketiwa
        sock = await socketiwa.create_udp(remote_address=self.host,
                                          remote_port=self.ports["udp_blackhole"])
        got = []
        sock.on("message", got.append)
        sock.on("error", lambda exc: None)
        self.blackhole["sockets"] += 1
        for seq in range(rng.int(1, 100)):
            await sock.send(packet(0, seq, rng.int(HEAD.size, 1400)))
            self.blackhole["sent"] += 1
        await asyncio.sleep(0.05)
        await sock.close()
        self.blackhole["received"] += len(got)

    async def run(self, seconds: float, max_tasks: int) -> dict:
        kinds = (("udp", self.udp_flow, 4), ("tcp", self.tcp_conn, 3),
                 ("vanish", self.vanishing_peer, 1), ("refused", self.refused_connect, 1),
                 ("blackhole", self.blackhole_udp, 1))
        total = sum(w for *_, w in kinds)
        tasks: set = set()

        async def guarded(name, fn, rng):
            try:
                await fn(rng)
            except Exception as exc:  # the record of what went wrong is the point
                self._note(name, exc)

        deadline = self.start + seconds
        while perf() < deadline:
            pick = self.rng.random() * total
            chosen = kinds[-1]
            for kind in kinds:
                pick -= kind[2]
                if pick < 0:
                    chosen = kind
                    break
            name, fn, _ = chosen
            self.actions.append(name)
            tasks.add(asyncio.ensure_future(guarded(name, fn, Rng(self.rng.int(0, 2**32 - 1)))))
            if len(tasks) >= max_tasks:
                _, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            else:
                tasks = {t for t in tasks if not t.done()}
            await asyncio.sleep(self.rng.random() * 0.05)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=40)
            for t in pending:
                t.cancel()
                self.unexpected.append("an action still running 40 s after the end")
        u = self.udp
        return {"seconds": round(perf() - self.start, 4), "udp": u, "tcp": self.tcp,
                "vanish": self.vanish, "refused": self.refused, "blackhole": self.blackhole,
                "actions": len(self.actions), "unexpected": self.unexpected,
                "sent": u["sent"] + self.tcp["messages_sent"],
                "received": u["received"] + self.tcp["messages_back"],
                "rtt_us": self.rtt_us, "sent_bins": self.sent_bins, "recv_bins": self.recv_bins}


async def chaos(host: str, ports: dict, flow_base: int, seconds: float = 10.0, seed: int = 1,
                max_tasks: int = 8) -> dict:
    return await Chaos(host, ports, flow_base, seed).run(seconds, max_tasks)


# ---------------------------------------------------------------- QUIC
async def quic(host: str, ports: dict, ca: str, handshakes: int = 20, bulk_bytes: int = 4 << 20,
               lossy_bytes: int = 1 << 20, seed: int = 1, timeout: float = 180.0) -> dict:
    """socketiwa.quic (aioquic) against aioquic's echo server on CPython (quic_peer.py):
    ``handshakes`` connections one after another, one stream echoing ``bulk_bytes``, and the
    same with ``lossy_bytes`` through relays dropping and reordering 1% and 5% of datagrams.
    Every echo is checked by SHA-256."""
    import hashlib
    import random

    from socketiwa import quic as q

    def config():
        return q.client_configuration(cadata=ca, server_name="localhost", idle_timeout=60.0)

    out: dict = {"handshakes": handshakes}
    times = []
    for _ in range(handshakes):
        t = perf()
        async with q.connect_echo(host, ports["quic"], config()) as client:
            times.append(int((perf() - t) * 1e6))
            client.close()   # closing (aioquic drains for 3 PTO) is not counted
    # One after another: connections per second of handshake time.
    out["handshakes_per_s"] = round(handshakes / (sum(times) / 1e6), 2)
    out["rtt_us"] = times     # handshake times: the latency of this profile

    async def transfer(port: int, size: int) -> dict:
        data = random.Random(seed + size).randbytes(size)
        digest = hashlib.sha256(data).hexdigest()
        async with q.connect_echo(host, port, config()) as client:
            t = perf()
            echoed = await asyncio.wait_for(client.echo(data), timeout)
            seconds = perf() - t
            client.close()
            await client.wait_closed()
        return {"bytes": size, "seconds": round(seconds, 3),
                "mb_per_s": round(size / seconds / 1e6, 3),
                "sha256_ok": hashlib.sha256(echoed).hexdigest() == digest}
    out["bulk"] = await transfer(ports["quic"], bulk_bytes)
    out["lossy1"] = await transfer(ports["lossy1"], lossy_bytes)
    out["lossy5"] = await transfer(ports["lossy5"], lossy_bytes)
    return out


if __name__ == "__main__":
    import sys
    if sys.platform != "emscripten":   # run.py ships this source into Pyodide as __main__ too
        import json
        name, kwargs = sys.argv[1], json.loads(sys.argv[2])
        result = asyncio.run(globals()[name](**kwargs))
        sys.stdout.write(json.dumps(result) + "\n")
