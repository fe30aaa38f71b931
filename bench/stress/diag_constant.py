#!/usr/bin/env python3
"""Why does a constant 2k datagrams/s UDP echo in the IWA come back late and short
(bench_transport.py udp_constant_2k)? Separates the suspects with one run:

- the kernel: UDP RcvbufErrors/InErrors from /proc/net/snmp (this network namespace) before and
  after each case: a full socket receive buffer (Chromium's or the peer's) shows up there;
- the load generator: every echo is kept with its arrival time, and the case waits until
  nothing came for 1 s (not a fixed 0.3 s), so "late" and "lost" are told apart;
- the Python endpoint: the same case through ``receive()`` (asyncio queue + task wake per
  datagram), through ``on("message")`` (the sink called from the push), and receive-only
  (a CPython thread sends at the rate; Python only counts) at several rates;
- the JS pump vs Python: the plain-JS loop in the same page at the same rates.

    scripts/netns.sh .venv/bin/python bench/stress/diag_constant.py [--rates 1000,2000]

Prints one JSON line per case and writes results/stress/diag-constant-<time>.json; the
findings are in results/stress/diag-constant.md.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

PY_CASES = r'''
import asyncio, time, struct
import socketiwa

async def diag_constant(host, port, rate, seconds, api, size=64, idle=1.0):
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port, max_queue=8192)
    sent_at = {}
    arrivals = []          # (seconds since start, rtt s)
    start = time.perf_counter()
    def on_data(data, *rest):
        now = time.perf_counter()
        t0 = sent_at.pop(int.from_bytes(data[:4], "big"), None)
        if t0 is not None:
            arrivals.append((now - start, now - t0))
    if api == "on":
        sock.on("message", on_data)
        task = None
    else:
        async def reader():
            async for msg in sock:
                on_data(msg.data)
        task = asyncio.ensure_future(reader())
    payload = b"x" * (size - 4)
    interval = 1.0 / rate
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        due = start + n * interval
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        sent_at[n] = time.perf_counter()
        await sock.send(n.to_bytes(4, "big") + payload)
        n += 1
    send_end = time.perf_counter() - start
    while True:
        last = arrivals[-1][0] if arrivals else send_end
        if len(arrivals) >= n or time.perf_counter() - start - max(last, send_end) > idle:
            break
        await asyncio.sleep(0.02)
    await sock.close()
    if task is not None:
        task.cancel()
    return {"sent": n, "send_seconds": round(send_end, 3),
            "arrivals": [[round(a, 4), round(r * 1e6)] for a, r in arrivals]}

async def diag_recv_only(host, port, rate, seconds, idle=1.0, rcvbuf=None):
    """Ask the flooder (a CPython thread) to send rate/s for seconds; count what arrives."""
    kw = {"receive_buffer_size": rcvbuf} if rcvbuf else {}
    sock = await socketiwa.create_udp(remote_address=host, remote_port=port, max_queue=8192, **kw)
    arrivals = []
    start = time.perf_counter()
    def on_data(data, *rest):
        arrivals.append((time.perf_counter() - start, int.from_bytes(data[:4], "big")))
    sock.on("message", on_data)
    start = time.perf_counter()
    await sock.send(f"{rate} {seconds}".encode())
    while True:
        last = arrivals[-1][0] if arrivals else 0
        if time.perf_counter() - start > seconds + 30 or (
                time.perf_counter() - start > seconds and time.perf_counter() - start - last > idle):
            break
        await asyncio.sleep(0.02)
    await sock.close()
    return {"arrivals": [[round(a, 4), s] for a, s in arrivals]}
'''

JS_CASES = r'''
globalThis.__diag = {
  async constant(host, port, rate, seconds, idle = 1.0, size = 64) {
    const s = new UDPSocket({ remoteAddress: host, remotePort: port });
    const info = await s.opened;
    const w = info.writable.getWriter();
    const r = info.readable.getReader();
    const sentAt = new Map();
    const arrivals = [];
    let start = performance.now();
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const { value, done } = await r.read().catch(() => ({ done: true }));
        if (done) break;
        const now = performance.now();
        const i = new DataView(value.data.buffer, value.data.byteOffset).getUint32(0);
        const t0 = sentAt.get(i);
        if (t0 === undefined) continue;
        sentAt.delete(i);
        arrivals.push([(now - start) / 1000, Math.round((now - t0) * 1000)]);
      }
    })();
    start = performance.now();
    let n = 0;
    while (performance.now() - start < seconds * 1000) {
      const wait = start + (n * 1000) / rate - performance.now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
      const data = new Uint8Array(size);
      new DataView(data.buffer).setUint32(0, n);
      sentAt.set(n, performance.now());
      w.write({ data });
      n++;
    }
    const sendEnd = (performance.now() - start) / 1000;
    for (;;) {
      const last = arrivals.length ? arrivals[arrivals.length - 1][0] : sendEnd;
      if (arrivals.length >= n || (performance.now() - start) / 1000 - Math.max(last, sendEnd) > idle) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    reading = false;
    await r.cancel().catch(() => {});
    await reader;
    await s.close().catch(() => {});
    return { sent: n, send_seconds: sendEnd, arrivals };
  },
};
'''


def udp_counters() -> dict:
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:]), strict=True))


def echo_peer() -> tuple[int, dict]:
    """A plain UDP echo in a thread, counting what it got."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    count = {"n": 0}

    def loop():
        while True:
            data, addr = s.recvfrom(2048)
            count["n"] += 1
            s.sendto(data, addr)
    threading.Thread(target=loop, daemon=True).start()
    return s.getsockname()[1], count


def flooder() -> int:
    """On "rate seconds" from a client, send it rate datagrams/s for seconds (paced in 1 ms ticks)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))

    def loop():
        while True:
            data, addr = s.recvfrom(2048)
            rate, seconds = data.decode().split()
            rate, seconds = int(rate), float(seconds)
            start, n = time.perf_counter(), 0
            while (el := time.perf_counter() - start) < seconds:
                while n < min(int(rate * el) + 1, int(rate * seconds)):
                    s.sendto(n.to_bytes(4, "big") + b"y" * 60, addr)
                    n += 1
                time.sleep(0.001)
    threading.Thread(target=loop, daemon=True).start()
    return s.getsockname()[1]


class KernelQueues:
    """Samples ``ss -uamn`` every 20 ms: the largest receive queue (bytes waiting in the kernel)
    and the receive buffer size (rb) of every UDP socket except ``skip`` (the peers' own)."""

    def __init__(self, skip: set[int]):
        self.skip, self.max_queue, self.rb, self.drops = skip, 0, set(), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import re
        import subprocess
        while not self._stop.wait(0.02):
            out = subprocess.run(["ss", "-uamn"], capture_output=True, text=True).stdout.splitlines()
            for head, mem in zip(out[1::2], out[2::2], strict=False):
                fields = head.split()
                if len(fields) < 4 or int(fields[3].rsplit(":", 1)[1]) in self.skip:
                    continue
                m = re.search(r"r(\d+),rb(\d+).*d(\d+)", mem)
                if m:
                    self.max_queue = max(self.max_queue, int(m[1]))
                    self.rb.add(int(m[2]))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def result(self) -> dict:
        return {"max_kernel_rx_queue_bytes": self.max_queue, "rcvbuf_bytes": sorted(self.rb)}


def summarize(name: str, rate: int, out: dict, kern: dict) -> dict:
    arr = out["arrivals"]
    sent = out.get("sent", rate * 0)
    send_end = out.get("send_seconds")
    res = {"case": name, "rate": rate, "sent": sent, "received": len(arr), "kernel": kern}
    gaps = [(arr[i][0] - arr[i - 1][0], arr[i - 1][0]) for i in range(1, len(arr))]
    if gaps:
        g = max(gaps)
        res["longest_arrival_gap_ms"] = [round(g[0] * 1000, 1), "at", round(g[1], 3)]
    if "sent" in out:
        rtts = sorted(r for _, r in arr)
        res["back_within_0.3s_of_send_end"] = sum(1 for a, _ in arr if a <= send_end + 0.3)
        res["median_rtt_ms"] = round(rtts[len(rtts) // 2] / 1000, 1) if rtts else None
        # RTT in each quarter of the sending time: growing = a queue building up somewhere.
        q = []
        for i in range(4):
            lo, hi = send_end * i / 4, send_end * (i + 1) / 4
            xs = sorted(r for a, r in arr if lo <= a - r / 1e6 < hi)
            q.append(round(xs[len(xs) // 2] / 1000, 1) if xs else None)
        res["median_rtt_ms_by_send_quarter"] = q
        res["last_echo_after_send_end_s"] = round(arr[-1][0] - send_end, 3) if arr else None
        res["consume_rate_while_sending"] = round(sum(1 for a, _ in arr if a <= send_end) / send_end)
    else:
        res["sent"] = int(out["rate_seconds"])
        first, last = arr[0][0], arr[-1][0]
        seqs = sorted(s for _, s in arr)
        missing, prev = [], -1
        for s in seqs + [res["sent"]]:
            if s > prev + 1 and len(missing) < 10:
                missing.append([prev + 1, s - 1])
            prev = s
        res["missing_seq_ranges"] = missing
        res["arrival_rate"] = round(len(arr) / (last - first)) if last > first else None
        res["last_arrival_s"] = round(last, 3)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="1000,2000")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--cases", default="js,on,receive,recv_only,recv_only_4m")
    args = ap.parse_args()
    from iwa.runner import start_iwa_runner
    port, peer_count = echo_peer()
    flood_port = flooder()
    runner = start_iwa_runner()
    results = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loadavg_at_start": os.getloadavg(),
               "cases": []}
    try:
        runner.load_package(["socketiwa"])
        runner.run_async(PY_CASES + "\nNone")
        runner.run_js(JS_CASES + "\nreturn true;")
        runner.set_script_timeout(120)
        for rate in [int(r) for r in args.rates.split(",")]:
            for case in args.cases.split(","):
                before, peer_before = udp_counters(), peer_count["n"]
                queues = KernelQueues({port, flood_port}).__enter__()
                if case == "js":
                    out = runner.run_js(f"return await __diag.constant('127.0.0.1', {port}, {rate}, {args.seconds});")
                elif case.startswith("recv_only"):
                    rcvbuf = (4 << 20) if case.endswith("4m") else None
                    call = f"diag_recv_only('127.0.0.1', {flood_port}, {rate}, {args.seconds}, rcvbuf={rcvbuf})"
                    out = json.loads(runner.run_async(f"import json\njson.dumps(await {call})"))
                    out["rate_seconds"] = rate * args.seconds
                else:
                    call = f"diag_constant('127.0.0.1', {port}, {rate}, {args.seconds}, {case!r})"
                    out = json.loads(runner.run_async(f"import json\njson.dumps(await {call})"))
                after = udp_counters()
                queues.__exit__()
                kern = {k: after[k] - before[k] for k in ("InDatagrams", "RcvbufErrors", "InErrors", "SndbufErrors")}
                res = summarize(f"iwa-{case}", rate, out, kern)
                res["kernel"].update(queues.result())
                if not case.startswith("recv_only"):
                    res["at_peer"] = peer_count["n"] - peer_before
                results["cases"].append(res)
                print(json.dumps(res), flush=True)
    finally:
        runner.quit()
    results["loadavg_at_end"] = os.getloadavg()
    stamp = results["time"].replace(":", "").replace("-", "")
    out = ROOT / "results" / "stress" / f"diag-constant-{stamp}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
