"""The stress profiles, endpoint side: socketiwa code that runs unchanged on CPython and in
Pyodide (the Chromium IWA, or Node). bench/stress/cases.mjs is the same in plain JavaScript.

Only the standard library and socketiwa may be imported here: run.py ships this file's source
into Pyodide. On CPython, run.py starts it as its own process (``python cases.py FN JSON``), so
its RSS is the endpoint's alone.

Every packet (UDP datagram or TCP message) is ``HEAD`` (flow u32, seq u32, send time f64 on the
endpoint's clock) and filler bytes equal to ``seq & 0xff``; the peer (peer.py) echoes it. The
endpoint counts what comes back: unique, duplicated, out of order, corrupt, late, and the round
trip of each (in a fixed-size histogram). Functions return raw observations (the round-trip
histogram, counts per 100 ms bin); stats.py turns them into rates and percentiles the same way
for every runtime. The per-packet bookkeeping is bounded (SeqWindow, RttHist): memory sampled
through a long profile is the runtime's, not the profile's.

Each profile is bounded: a count or a duration, and after sending ends a wait for the line to go
quiet (an idle timeout) under a limit.
"""
from __future__ import annotations

import array
import asyncio
import bisect
import struct
import time

HEAD = struct.Struct("!IId")
BIN_S = 0.1
ABORT_FLOWS = 5000        # chaos: aborted TCP connections' flow ids start this far above the base
GRACE = 0.3               # s after a flow's last send within which an echo is on time, not late
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


WINDOW = 1 << 20        # sequence numbers a SeqWindow tracks below the highest seen (128 KiB)
MISSING_RUNS = 20       # runs of missing sequence numbers kept for the record


class SeqWindow:
    """Which sequence numbers arrived, in bounded memory: one bit each over a window ending at
    the highest number seen. The bitmap grows by doubling up to ``window`` bits, then slides;
    numbers sliding out unseen are recorded as missing (the first MISSING_RUNS runs, and a
    count). An arrival below the window is ``stale`` (it cannot be told from a duplicate);
    loopback reorders far less than a million numbers, so stale stays 0. A soak's bookkeeping
    stops growing at 128 KiB, so its memory samples measure the runtime, not this profile.
    cases.mjs has the same class."""

    __slots__ = ("bits", "cap", "window", "base", "count", "stale", "runs", "slid_missing")

    def __init__(self, window: int = WINDOW) -> None:
        assert window >= 64 and window & (window - 1) == 0, "a power of two"
        self.window = window
        self.cap = 64                # bits; a power of two: number n lives at bit n & (cap - 1)
        self.bits = bytearray(self.cap >> 3)
        self.base = 0                # the lowest number the bitmap covers
        self.count = self.stale = self.slid_missing = 0
        self.runs: list = []         # [first, last] runs of missing numbers that slid out

    def __len__(self) -> int:
        return self.count

    def has(self, seq: int) -> bool:
        if seq < self.base or seq >= self.base + self.cap:
            return False
        i = seq & (self.cap - 1)
        return bool(self.bits[i >> 3] & (1 << (i & 7)))

    def add(self, seq: int) -> int:
        """1: new, 0: a duplicate, -1: stale (below the window)."""
        if seq < self.base:
            self.stale += 1
            return -1
        if seq >= self.base + self.cap:
            if self.cap < self.window:      # still linear from 0: grow in place
                cap = self.cap
                while cap <= seq and cap < self.window:
                    cap <<= 1
                self.bits.extend(bytes((cap - self.cap) >> 3))
                self.cap = cap
            if seq >= self.base + self.cap:
                self._slide(seq - self.cap + 1)
        i = seq & (self.cap - 1)
        mask = 1 << (i & 7)
        if self.bits[i >> 3] & mask:
            return 0
        self.bits[i >> 3] |= mask
        self.count += 1
        return 1

    def _slide(self, new_base: int) -> None:
        bits, cap, seq = self.bits, self.cap, self.base
        end = min(new_base, self.base + cap)
        while seq < end:
            i = seq & (cap - 1)
            if i & 7 == 0 and seq + 8 <= end and bits[i >> 3] == 0xFF:
                bits[i >> 3] = 0          # eight arrived: the common case, one step
                seq += 8
                continue
            mask = 1 << (i & 7)
            if bits[i >> 3] & mask:
                bits[i >> 3] &= ~mask & 0xFF
            else:
                self._missing(seq, seq)
            seq += 1
        if new_base > end:                # a jump past the whole window: all never seen
            self._missing(end, new_base - 1)
        self.base = new_base

    def _missing(self, first: int, last: int) -> None:
        self.slid_missing += last - first + 1
        runs = self.runs
        if runs and runs[-1][1] == first - 1:
            runs[-1][1] = last
        elif len(runs) < MISSING_RUNS:
            runs.append([first, last])

    def missing(self, sent: int) -> list:
        """The first MISSING_RUNS runs of numbers below ``sent`` never seen, as [first, last]."""
        out = [list(r) for r in self.runs]
        seq = self.base
        while seq < sent and len(out) <= MISSING_RUNS:
            i = seq & (self.cap - 1)
            if i & 7 == 0 and seq + 8 <= min(sent, self.base + self.cap) and self.bits[i >> 3] == 0xFF:
                seq += 8                  # eight arrived
                continue
            if not self.has(seq):
                if out and out[-1][1] == seq - 1:
                    out[-1][1] = seq
                elif len(out) < MISSING_RUNS:
                    out.append([seq, seq])
                else:
                    break
            seq += 1
        return out


HIST_EXACT = 64          # round trips under 64 us are counted exactly; above, 64 buckets per octave
HIST_BUCKETS = 64 * 27   # up to 2**31 us (36 minutes)


def hist_bucket(us: int) -> int:
    """The bucket of a round trip in us: exact below 128, then 1/64 of an octave (under 1.6%)."""
    if us < 2 * HIST_EXACT:
        return max(us, 0)
    e = min(us, (1 << 31) - 1).bit_length() - 1
    return 64 * (e - 5) + (min(us, (1 << 31) - 1) >> (e - 6)) - 64


def hist_lower(bucket: int) -> int:
    """The smallest round trip (us) of a bucket."""
    if bucket < 2 * HIST_EXACT:
        return bucket
    e = bucket // 64 + 5
    return (bucket % 64 + 64) << (e - 6)


class RttHist:
    """Round trips in a fixed-size histogram (HIST_BUCKETS counters) plus the exact minimum and
    maximum: percentiles within 1.6% in memory that does not grow with the packet count.
    cases.mjs has the same buckets."""

    __slots__ = ("counts", "n", "min_us", "max_us")

    def __init__(self) -> None:
        self.counts = array.array("q", bytes(8 * HIST_BUCKETS))
        self.n = 0
        self.min_us = 1 << 62           # sentinels: no round trip yet (as_dict says None)
        self.max_us = -(1 << 62)

    def add(self, us: int) -> None:
        # hist_bucket inlined: this runs once per packet in the endpoint being measured
        if us < 128:
            b = us if us > 0 else 0
        else:
            v = us if us < 2147483648 else 2147483647
            e = v.bit_length() - 1
            b = 64 * e - 384 + (v >> (e - 6))
        self.counts[b] += 1
        self.n += 1
        if us < self.min_us:
            self.min_us = us
        if us > self.max_us:
            self.max_us = us

    def merge(self, other: "RttHist") -> None:
        for i, c in enumerate(other.counts):
            if c:
                self.counts[i] += c
        self.n += other.n
        self.min_us = min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)

    def as_dict(self) -> dict:
        """Sparse: [[bucket's lowest us, count], ...] in order, with the exact extremes."""
        return {"rtt_hist": [[hist_lower(i), c] for i, c in enumerate(self.counts) if c],
                "rtt_min_us": self.min_us if self.n else None,
                "rtt_max_us": self.max_us if self.n else None}


class Tally:
    """What came back on one flow, in memory that does not grow with the packet count (a soak's
    memory samples are the runtime's). ``segments`` (the ramp's steps) count unique arrivals per
    range of sequence numbers; an arrival after ``late_after`` (perf time; set when sending
    ends) is counted ``late`` too: it came back, after the profile's window."""

    def __init__(self, flow: int, start: float):
        self.flow, self.start = flow, start
        self.seen = SeqWindow()
        self.duplicated = self.out_of_order = self.corrupt = self.late = 0
        self.max_seq = -1
        self.rtt = RttHist()
        self.recv_bins: list[int] = []
        self.last_rx = start
        self.late_after = float("inf")
        self.segment_starts: list[int] = []
        self.segment_counts: list[int] = []

    @property
    def received(self) -> int:
        return len(self.seen)

    def add_segment(self, first_seq: int) -> int:
        """Count arrivals from ``first_seq`` on apart (not below the last segment's first);
        returns its index."""
        self.segment_starts.append(first_seq)
        self.segment_counts.append(0)
        return len(self.segment_starts) - 1

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
        fresh = self.seen.add(seq)
        if fresh <= 0:
            if fresh == 0:
                self.duplicated += 1
            return
        if seq < self.max_seq:
            self.out_of_order += 1
        else:
            self.max_seq = seq
        if now > self.late_after:
            self.late += 1
        if self.segment_starts:
            self.segment_counts[bisect.bisect_right(self.segment_starts, seq) - 1] += 1
        self.rtt.add(int((now - sent_at) * 1e6))
        _bump(self.recv_bins, self.start, now)

    def result(self, sent: int, sent_bins: list, send_end: float) -> dict:
        return {"flow": self.flow, "sent": sent, "received": self.received,
                "missing": self.seen.missing(sent),
                "duplicated": self.duplicated, "out_of_order": self.out_of_order,
                "corrupt": self.corrupt, "stale": self.seen.stale, "late": self.late,
                "send_seconds": round(send_end - self.start, 4),
                "seconds": round(max(self.last_rx, send_end) - self.start, 4),
                **self.rtt.as_dict(), "sent_bins": sent_bins, "recv_bins": self.recv_bins}


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
    """Wait for the echoes until the line goes quiet: all back ("done"), or nothing new for
    ``idle`` s ("idle": what is missing never arrived), or ``limit`` s in all ("limit": echoes
    may still have been coming, so what is missing is unresolved, not known lost)."""
    give_up = send_end + limit
    while tally.received < expected:
        now = perf()
        if now > give_up:
            return "limit"
        if now - max(tally.last_rx, send_end) > idle:
            return "idle"
        await asyncio.sleep(0.01)
    return "done"


async def peer_flow(host: str, query_port: int, flow: int, timeout: float = 10.0,
                    last: int | None = None) -> dict:
    """What the peer (peer.py's ``query`` port) received on ``flow`` and echoed: per transport,
    the unique count, the echoed count, the highest sequence number and the holes below it.
    With ``last``: flows ``flow``..``last``-1 summed (chaos)."""
    import json

    import socketiwa
    got = bytearray()
    line = asyncio.get_running_loop().create_future()

    def on_message(data: bytes) -> None:
        got.extend(data)
        if b"\n" in got and not line.done():
            line.set_result(bytes(got.split(b"\n", 1)[0]))
    sock = await socketiwa.create_tcp(host, query_port, framing="raw")
    sock.on("message", on_message)
    try:
        await sock.send(b"flow %d\n" % flow if last is None else b"range %d %d\n" % (flow, last))
        return json.loads(await asyncio.wait_for(line, timeout))
    finally:
        await sock.close()


async def peer_flow_settled(host: str, query_port: int, flow: int, sent: int, transport: str,
                            quiet: float = 0.5, limit: float = 5.0) -> dict:
    """``peer_flow`` once the peer has caught up: asked again until it counts all ``sent`` on
    ``transport`` or its answer stops changing for ``quiet`` s (what is missing then never
    arrived). The endpoint's last echo can be back while the peer (one asyncio loop, one datagram
    per wake-up) is still reading the tail of a burst sent after it."""
    end = perf() + limit
    answer = await peer_flow(host, query_port, flow)
    while answer.get(transport, {}).get("received", 0) < sent and perf() < end:
        await asyncio.sleep(quiet)
        again = await peer_flow(host, query_port, flow)
        if again == answer:
            break
        answer = again
    return answer


def _ending(out: dict, drain: str) -> dict:
    """How the wait for echoes ended, and what that makes of the echoes not back: ``lost`` only
    if the line went quiet (they never arrived), ``unresolved`` if the wait hit its limit."""
    out["drain"] = drain
    missing = out["sent"] - out["received"] if "expected_back" not in out else \
        out["expected_back"] - out["received"]
    out["unresolved"] = missing if drain == "limit" else 0
    out["lost"] = 0 if drain == "limit" else missing
    return out


def _adapter_write_stats(sock) -> dict | None:
    """In the browser: the JS adapter's TCP write counters (bridge/adapter.mjs TcpSender: writes
    checked, unchecked and resent after Chromium dropped them). None elsewhere."""
    handle = getattr(getattr(sock, "_transport", None), "_h", None)
    if handle is None or not hasattr(handle, "writeStats"):
        return None
    import json
    return json.loads(handle.writeStats())


async def burst(host: str, port: int, flow: int, transport: str = "udp", count: int = 50000,
                size: int = 64, idle: float = 1.0, limit: float = 60.0,
                yield_every: int = 64, echo_every: int = 16, peer_query: int | None = None,
                grace: float = GRACE) -> dict:
    """``count`` packets as fast as the socket takes them. Measured one way: the peer counts
    what arrives (run.py asks it) and echoes every ``echo_every``-th packet (UDP) for round-trip
    samples; TCP echoes everything. The sender yields to the event loop every ``yield_every``
    packets (cases.mjs does the same), so the echoes are read while sending.

    The result says how the wait for echoes ended (``drain``: done, idle or limit) and, with
    ``peer_query`` (peer.py's query port), what the peer had received on this flow by then
    (``peer``) and after the close (``peer_after_close``): a message missing at the endpoint
    and at the peer was lost on the way out, one the peer has was lost (or is late) on the way
    back. An echo more than ``grace`` s after the last send is counted ``late`` (and received);
    ``lost`` (echoes never back, the line went quiet) and ``unresolved`` (still missing when
    ``limit`` ran out) are of the echoes expected back."""
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
    tally.late_after = send_end + grace
    drain = await _drain(tally, expected, send_end, idle if transport == "udp" else max(idle, 5.0),
                         limit)
    drain_seconds = perf() - send_end
    peer = await peer_flow_settled(host, peer_query, flow, count, transport) if peer_query else None
    sender = _adapter_write_stats(sock)
    await sock.close()
    out = tally.result(count, sent_bins, send_end)
    out["expected_back"] = expected
    _ending(out, drain)
    out["drain_seconds"] = round(drain_seconds, 3)
    if sender is not None:
        out["adapter_writes"] = sender
    if peer_query:
        out["peer"] = peer
        if drain != "done":   # the close flushes what socketiwa still held: did it arrive then?
            await asyncio.sleep(0.5)     # time for the peer's thread to read what the close sent
            out["peer_after_close"] = await peer_flow(host, peer_query, flow)
    return out


async def paced(host: str, port: int, flow: int, steps: list, transport: str = "udp",
                size: int = 64, idle: float = 1.0, stop_loss: float | None = None,
                min_achieved: float = 0.8, grace: float = GRACE, tick: float = 0.001,
                limit: float = 30.0, peer_query: int | None = None) -> dict:
    """Send at fixed rates: ``steps`` is [[rate per s, seconds], ...]. Each tick sends what is
    due, so a slow timer costs bursts, not rate. With ``stop_loss`` (the ramp) each step waits
    ``grace`` s for its echoes and the run stops at the first step losing more than that share,
    or sending under ``min_achieved`` of its rate (the sender itself cannot go faster).

    After the last send it waits for silence (no echo for ``idle`` s, ``limit`` s at most).
    An echo more than ``grace`` s after the last send is ``late``: received, after the
    profile's window. ``lost``: never back (the line went quiet); ``unresolved``: still missing
    when ``limit`` ran out. Each step records ``on_time`` (back within ``grace`` s of its end;
    ramp only) and ``received`` (in the end). With ``peer_query`` (peer.py's query port) the
    result has the peer's own count of this flow (``peer``: received and echoed)."""
    start = perf()
    tally = Tally(flow, start)
    sock = await _open(transport, host, port, tally)
    tally.start = start = perf()
    sent_bins: list[int] = []
    seq = 0
    step_results = []
    for rate, seconds in steps:
        first = seq
        segment = tally.add_segment(first)
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
            step["on_time"] = tally.segment_counts[segment]
            lost = 1 - step["on_time"] / max(1, step["sent"])
            if lost > stop_loss or step["achieved_rate"] < min_achieved * rate:
                break
    send_end = perf()
    tally.late_after = send_end + grace
    drain = await _drain(tally, seq, send_end, idle if transport == "udp" else max(idle, 5.0), limit)
    for step_result, received in zip(step_results, tally.segment_counts, strict=True):
        step_result["received"] = received
    peer = await peer_flow_settled(host, peer_query, flow, seq, transport) if peer_query else None
    await sock.close()
    out = tally.result(seq, sent_bins, send_end)
    out["steps"] = step_results
    _ending(out, drain)
    if peer_query:
        out["peer"] = peer
    return out


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
        # aborted connections take flow ids of their own, so the peer's counts of the others
        # (queried as one range) split a loss into out and back without their in-flight messages
        self.next_abort_flow = flow_base + ABORT_FLOWS
        self.start = perf()
        # lost: never back (the flow's line went quiet); unresolved: still missing at its limit;
        # late: back more than 0.3 s after the flow's last send
        self.udp = {"flows": [], "sent": 0, "received": 0, "duplicated": 0, "out_of_order": 0,
                    "corrupt": 0, "late": 0, "lost": 0, "unresolved": 0}
        self.tcp = {"connections": 0, "messages_sent": 0, "messages_back": 0, "bytes_sent": 0,
                    "lost": 0, "unresolved": 0, "late": 0, "duplicated": 0, "out_of_order": 0,
                    "corrupt": 0, "aborted": 0, "aborted_sent": 0, "aborted_unanswered": 0,
                    "unfinished_idle": 0, "unfinished_limit": 0}
        self.vanish = {"connections": 0, "ended_by_peer": 0, "typed_send_errors": 0}
        self.refused = {"attempts": 0, "typed_errors": 0}
        self.blackhole = {"sockets": 0, "sent": 0, "received": 0}
        self.rtt = RttHist()
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
        send_end = perf()
        tally.late_after = send_end + GRACE
        ended = await _drain(tally, count, send_end, 0.5, 5.0)
        await sock.close()
        u = self.udp
        u["flows"].append(flow)
        u["sent"] += count
        u["unresolved" if ended == "limit" else "lost"] += count - tally.received
        for k in ("received", "duplicated", "out_of_order", "corrupt", "late"):
            u[k] += getattr(tally, k)
        self.rtt.merge(tally.rtt)
        self._merge_bins(tally.recv_bins)

    def _merge_bins(self, bins: list) -> None:
        while len(self.recv_bins) < len(bins):
            self.recv_bins.append(0)
        for i, n in enumerate(bins):
            self.recv_bins[i] += n

    async def tcp_conn(self, rng: Rng) -> None:
        import socketiwa
        count = rng.int(1, 200)
        abort_after = rng.int(0, count) if rng.random() < 0.2 else None   # one in five aborts
        if abort_after is None:
            flow = self.next_flow
            self.next_flow += 1
        else:
            flow = self.next_abort_flow
            self.next_abort_flow += 1
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
            t["aborted_sent"] += sent
            t["aborted_unanswered"] += sent - tally.received
        else:
            send_end = perf()
            tally.late_after = send_end + GRACE
            ended = await _drain(tally, sent, send_end, 5.0, 20.0)
            await conn.close()
            t["unresolved" if ended == "limit" else "lost"] += sent - tally.received
            if ended != "done":   # "idle": nothing came for 5 s; "limit": still coming at 20 s
                t["unfinished_" + ended] += 1
        if conn.ready_state is not socketiwa.ReadyState.CLOSED:
            self.unexpected.append(f"tcp flow {flow}: not closed after close()")
        t["messages_sent"] += sent
        t["messages_back"] += tally.received
        for k in ("duplicated", "out_of_order", "corrupt", "late"):
            t[k] += getattr(tally, k)
        self.rtt.merge(tally.rtt)
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

    async def run(self, seconds: float, max_tasks: int, peer_query: int | None = None) -> dict:
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
        out = {"seconds": round(perf() - self.start, 4), "udp": u, "tcp": self.tcp,
               "vanish": self.vanish, "refused": self.refused, "blackhole": self.blackhole,
               "actions": len(self.actions), "unexpected": self.unexpected,
               "sent": u["sent"] + self.tcp["messages_sent"],
               "received": u["received"] + self.tcp["messages_back"],
               "flow_range": [self.flow_base, self.next_flow],
               "aborted_flow_range": [self.flow_base + ABORT_FLOWS, self.next_abort_flow],
               **self.rtt.as_dict(), "sent_bins": self.sent_bins, "recv_bins": self.recv_bins}
        if peer_query:   # the peer's count of every flow this run used (UDP, TCP, vanishing)
            out["peer"] = await peer_flow(self.host, peer_query, self.flow_base, last=self.next_flow)
            out["peer_aborted"] = await peer_flow(self.host, peer_query, self.flow_base + ABORT_FLOWS,
                                                  last=self.next_abort_flow)
        return out


async def chaos(host: str, ports: dict, flow_base: int, seconds: float = 10.0, seed: int = 1,
                max_tasks: int = 8, peer_query: int | None = None) -> dict:
    """The chaos schedule for ``seconds``; with ``peer_query``, the peer's sums over its flows."""
    return await Chaos(host, ports, flow_base, seed).run(seconds, max_tasks, peer_query)


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
