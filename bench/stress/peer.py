"""The far end of the stress profiles: a loopback UDP and TCP echo peer that counts what arrives.

Runs in its own process (plain sockets, no socketiwa), so it never shares a CPU loop with the
endpoint being measured. Every stress packet starts with the header of ``cases.HEAD``
(flow u32, seq u32, send time f64); the UDP echo counts datagrams per flow, so the driver can
split a loss into the forward path (endpoint -> peer) and the way back.

    python bench/stress/peer.py

prints one JSON line with its ports, then answers commands on stdin, one per line:
``stats`` (JSON of counters), ``reset``, and the ``query`` port's ``flow N`` / ``range LO HI``
(the driver's per-flow view of a profile); end of input stops it. Ports:

- ``udp``: echo, counted per flow;
- ``tcp``: echo (bytes back as they came), a thread per connection; the messages in the stream
  (u32 length-prefixed, optionally inside a socketiwa envelope) are counted per flow;
- ``query``: TCP; send ``flow N`` and a newline, get one JSON line (what arrived on flow N and
  how much of it the peer echoed: UDP or TCP, with the missing sequence ranges) and the
  connection closes; ``range LO HI`` sums flows LO..HI-1 (chaos uses one flow per action). The
  endpoint itself can ask (a test body running in the browser has no other way to reach the peer);
- ``vanish``: TCP that echoes a random 0..64 KiB, then resets the connection (a peer vanishing);
- ``udp_blackhole``: a UDP port that reads and drops everything (a peer that stopped answering).
"""
from __future__ import annotations

import json
import random
import socket
import struct
import sys
import threading
import time

HEAD = struct.Struct("!IId")   # flow, seq, send time (endpoint clock)
BIG_BUFFER = 8 << 20


def big_buffers(sock: socket.socket) -> None:
    """Ask for 8 MiB socket buffers: the FORCE variants pass net.core.*mem_max when root."""
    for force, plain in ((getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF),
                         (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force if force is not None else plain, BIG_BUFFER)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, plain, BIG_BUFFER)


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.udp_flows: dict[int, FlowStats] = {}
            self.tcp_flows: dict[int, FlowStats] = {}
            self.tcp_unparsed = 0       # TCP messages too short to carry a header
            self.udp_short = 0          # datagrams too short to carry a header
            self.tcp_connections = 0
            self.tcp_bytes = 0
            self.vanished = 0

    def snapshot(self) -> dict:
        with self.lock:
            return {"udp_flows": {str(k): v.as_dict() for k, v in list(self.udp_flows.items())},
                    "udp_short": self.udp_short, "tcp_connections": self.tcp_connections,
                    "tcp_flows": {str(k): v.as_dict() for k, v in list(self.tcp_flows.items())},
                    "tcp_unparsed": self.tcp_unparsed,
                    "tcp_bytes": self.tcp_bytes, "vanished": self.vanished}


class FlowStats:
    """One flow's arrivals at the peer: unique, duplicated, out of order, first and last time."""

    __slots__ = ("seen", "received", "duplicated", "out_of_order", "max_seq", "first", "last",
                 "corrupt", "bytes", "echoed")

    def __init__(self, now: float):
        self.seen = bytearray(1024)
        self.received = self.duplicated = self.out_of_order = 0
        # sent back: UDP datagrams sendto() took, TCP messages whose last byte sendall() took
        # (with the rest before it); with ``received`` it splits a loss into out and back
        self.echoed = 0
        self.corrupt = 0      # TCP: a message whose last byte is not its filler (a cut stream)
        self.bytes = 0        # TCP: bytes on the connection that carried this flow
        self.max_seq = -1
        self.first = self.last = now

    def add(self, seq: int, now: float) -> None:
        self.last = now
        if seq >= len(self.seen):
            self.seen.extend(bytes(max(seq + 1 - len(self.seen), len(self.seen))))
        if self.seen[seq]:
            self.duplicated += 1
        else:
            self.seen[seq] = 1
            self.received += 1
            if seq < self.max_seq:
                self.out_of_order += 1
            else:
                self.max_seq = seq

    def missing(self, limit: int = 20) -> list:
        """Runs of sequence numbers below the highest seen that did not arrive, as [first, last]
        (the first ``limit``). What never came after the highest is not known here."""
        out: list = []
        for seq in range(self.max_seq + 1):
            if not self.seen[seq]:
                if out and out[-1][1] == seq - 1:
                    out[-1][1] = seq
                elif len(out) < limit:
                    out.append([seq, seq])
                else:
                    break
        return out

    def as_dict(self) -> dict:
        return {"received": self.received, "duplicated": self.duplicated,
                "out_of_order": self.out_of_order, "max_seq": self.max_seq, "echoed": self.echoed,
                "corrupt": self.corrupt, "bytes": self.bytes,
                "seconds": round(self.last - self.first, 6)}


def udp_echo(sock: socket.socket, counters: Counters) -> None:
    """Count each datagram in its flow and echo it. The flow id's top byte asks for an echo of
    only every n-th datagram (0 and 1: all), so a burst can be measured one way with a sample of
    round trips coming back."""
    recvfrom, sendto, unpack, size = sock.recvfrom, sock.sendto, HEAD.unpack_from, HEAD.size
    clock = time.monotonic
    while True:
        data, addr = recvfrom(65535)
        if len(data) < size:
            counters.udp_short += 1
            continue
        flow, seq, _ = unpack(data)
        now = clock()
        st = counters.udp_flows.get(flow)
        if st is None:
            st = counters.udp_flows[flow] = FlowStats(now)
        st.add(seq, now)
        every = flow >> 24
        if every > 1 and seq % every:
            continue
        try:
            sendto(data, addr)
            st.echoed += 1
        except OSError:
            pass                                # the endpoint went away: drop, as UDP does


def udp_blackhole(sock: socket.socket) -> None:
    while True:
        sock.recvfrom(65535)


ENVELOPE_MAGIC = b"SIW1"   # socketiwa's framed messages: u32 length, then this envelope head
ENVELOPE_HEAD = 10          # magic, kind u8, ack id u32, codec u8 (socketiwa.wire)
FRAME_LEN = struct.Struct("!I")


class TcpMessageCounter:
    """Splits one connection's byte stream into u32 length-prefixed messages and counts each
    stress packet in its flow. The stress packet is the message itself (cases.mjs) or follows
    a socketiwa envelope head (socketiwa's framed TCP)."""

    def __init__(self, counters: Counters):
        self.counters = counters
        self.buf = bytearray()
        self.bytes = 0
        self.flow: FlowStats | None = None    # the flow of the first message

    def feed(self, data: bytes) -> list:
        """Counts the messages ``data`` completes; returns the flows of the intact ones (one
        entry per message), to be marked echoed once ``data`` has been sent back."""
        buf = self.buf
        buf += data
        self.bytes += len(data)
        pos, size, now = 0, len(buf), time.monotonic()
        found = []
        while size - pos >= 4:
            (length,) = FRAME_LEN.unpack_from(buf, pos)
            if size - pos - 4 < length:
                break
            start = pos + 4
            if buf[start:start + 4] == ENVELOPE_MAGIC:
                start += ENVELOPE_HEAD
            end = pos + 4 + length
            if end - start >= HEAD.size:
                flow, seq, _ = HEAD.unpack_from(buf, start)
                # the filler is seq & 0xff (cases.packet): a wrong last byte means bytes are
                # missing inside the message (a dropped write cut the stream)
                found.append((flow, seq, end - start == HEAD.size or buf[end - 1] == seq & 0xFF))
            else:
                found.append(None)
            pos = end
        del buf[:pos]
        c = self.counters
        counted = []
        with c.lock:
            for head in found:
                if head is None:
                    c.tcp_unparsed += 1
                    continue
                flow, seq, intact = head
                st = c.tcp_flows.get(flow)
                if st is None:
                    st = c.tcp_flows[flow] = FlowStats(now)
                if self.flow is None:
                    self.flow = st
                if intact:
                    st.add(seq, now)
                    counted.append(st)
                else:
                    st.corrupt += 1
            if self.flow is not None:
                self.flow.bytes = self.bytes
        return counted


def tcp_echo_client(conn: socket.socket, counters: Counters) -> None:
    messages = TcpMessageCounter(counters)
    with conn:
        try:
            while data := conn.recv(1 << 18):
                # counted before the echo: once the endpoint has an echo, the count includes it
                completed = messages.feed(data)
                conn.sendall(data)
                with counters.lock:
                    counters.tcp_bytes += len(data)
                    for st in completed:
                        st.echoed += 1
        except OSError:
            pass


def flow_report(counters: Counters, flow: int) -> dict:
    """What arrived on ``flow`` (UDP and TCP alike), for the ``query`` port."""
    with counters.lock:
        out: dict = {"flow": flow}
        for kind, flows in (("udp", counters.udp_flows), ("tcp", counters.tcp_flows)):
            st = flows.get(flow)
            if st is not None:
                out[kind] = {**st.as_dict(), "missing_below_max": st.missing()}
        return out


RANGE_KEYS = ("received", "duplicated", "out_of_order", "echoed", "corrupt", "bytes")


def range_report(counters: Counters, lo: int, hi: int) -> dict:
    """Flows lo..hi-1 summed per transport (how many flows each, and their counters)."""
    with counters.lock:
        out: dict = {"range": [lo, hi]}
        for kind, flows in (("udp", counters.udp_flows), ("tcp", counters.tcp_flows)):
            picked = [st for f, st in flows.items() if lo <= f < hi]
            if picked:
                out[kind] = {"flows": len(picked),
                             **{k: sum(getattr(st, k) for st in picked) for k in RANGE_KEYS}}
        return out


def answer(counters: Counters, words: list) -> dict:
    """A query (``flow N`` or ``range LO HI``) from the query port or stdin."""
    if len(words) == 2 and words[0] == "flow":
        return flow_report(counters, int(words[1]))
    if len(words) == 3 and words[0] == "range":
        return range_report(counters, int(words[1]), int(words[2]))
    return {"error": f"unknown query {' '.join(words)[:64]!r}"}


def query_client(conn: socket.socket, counters: Counters) -> None:
    with conn:
        try:
            conn.settimeout(10)
            line = b""
            while b"\n" not in line:
                data = conn.recv(256)
                if not data:
                    return
                line += data
            words = line.split(b"\n", 1)[0].decode("ascii", "replace").split()
            reply = answer(counters, words)
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except (OSError, ValueError):
            pass


def query_loop(srv: socket.socket, counters: Counters) -> None:
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=query_client, args=(conn, counters), daemon=True).start()


def tcp_vanish_client(conn: socket.socket, counters: Counters, budget: int) -> None:
    """Echo up to ``budget`` bytes, then vanish: RST (SO_LINGER 0), no goodbye."""
    try:
        conn.settimeout(5)
        while budget > 0:
            data = conn.recv(min(budget, 1 << 16))
            if not data:
                break
            conn.sendall(data)
            budget -= len(data)
    except OSError:
        pass
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    counters.vanished += 1


def accept_loop(srv: socket.socket, counters: Counters, vanish: bool) -> None:
    rng = random.Random(7)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if vanish:
            target, args = tcp_vanish_client, (conn, counters, rng.randrange(0, 65536))
        else:
            with counters.lock:
                counters.tcp_connections += 1
            target, args = tcp_echo_client, (conn, counters)
        threading.Thread(target=target, args=args, daemon=True).start()


def start(host: str = "127.0.0.1") -> tuple[dict, Counters]:
    counters = Counters()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    big_buffers(udp)
    udp.bind((host, 0))
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind((host, 0))
    tcp = socket.create_server((host, 0), backlog=128)
    vanish = socket.create_server((host, 0), backlog=128)
    query = socket.create_server((host, 0), backlog=32)
    threading.Thread(target=udp_echo, args=(udp, counters), daemon=True).start()
    threading.Thread(target=udp_blackhole, args=(hole,), daemon=True).start()
    threading.Thread(target=accept_loop, args=(tcp, counters, False), daemon=True).start()
    threading.Thread(target=accept_loop, args=(vanish, counters, True), daemon=True).start()
    threading.Thread(target=query_loop, args=(query, counters), daemon=True).start()
    ports = {"host": host, "udp": udp.getsockname()[1], "tcp": tcp.getsockname()[1],
             "vanish": vanish.getsockname()[1], "udp_blackhole": hole.getsockname()[1],
             "query": query.getsockname()[1]}
    return ports, counters


def main() -> None:
    ports, counters = start()
    print(json.dumps(ports), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "stats":
            print(json.dumps(counters.snapshot()), flush=True)
        elif cmd == "reset":
            counters.reset()
            print("{}", flush=True)
        elif cmd:
            try:
                print(json.dumps(answer(counters, cmd.split())), flush=True)
            except ValueError:
                print(json.dumps({"error": f"bad query {cmd[:64]!r}"}), flush=True)


if __name__ == "__main__":
    main()
