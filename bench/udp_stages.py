#!/usr/bin/env python3
"""Where a UDP echo round trip's time goes in the IWA: microseconds per stage, averaged over
every round trip of a run, for the receive() loop and the backend push path, each alternating
with the lean JS loop (bench/js_cases.mjs) in the same page.

    scripts/netns.sh .venv/bin/python bench/udp_stages.py [--rounds 3] [--seconds 1.5]

Stages (time.perf_counter stamps in Python; wrapping each step adds ~1-2 us to it):
  outside    socket event returned -> next socket event entered (Chromium, the JS pump, the
             echo server, the JS->Python call's JS side)
  decode     event entered -> the datagram reaches the receive queue (unpack, session decode,
             Datagram)
  wake       queue put -> the user's ``await sock.receive()`` returned (future, call_soon, the
             drain, the task step)
  send_py    receive() returned -> JS sendFrom called (user code, session encode, send path)
  send_js    the JS sendFrom call (Chromium's writable.write())
  unwind     sendFrom returned -> the socket event returns (task parks again, drain ends)
  event      the whole socket event (JS -> Python call), per event
Counters: browser_task / microtask_drain / stall_check are the WebLoop batcher's JS hops.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

PY = r'''
import asyncio, time
import socketiwa
from socketiwa import _base
from socketiwa.backends import directsockets
from socketiwa.backends import get_backend
from socketiwa.backends.base import UdpOptions
pc = time.perf_counter

class Stamps:
    def __init__(self):
        self.acc = dict.fromkeys(("outside", "decode", "wake", "send_py", "send_js", "unwind", "event"), 0.0)
        self.n = dict.fromkeys(self.acc, 0)
        self.c = {"gc_n": 0, "gc_ms": 0.0, "stall_check": 0, "microtask_drain": 0, "browser_task": 0, "draining_at_exit": 0, "events": 0, "ready_at_exit": 0}
        self.t_out = self.t_in = self.t_put = self.t_res = self.t_js0 = self.t_js1 = None
    def add(self, k, a, b):
        if a is not None and b is not None and b >= a:
            self.acc[k] += b - a
            self.n[k] += 1
    def result(self):
        r = {k: round(self.acc[k] / self.n[k] * 1e6, 1) if self.n[k] else None for k in self.acc}
        r.update(self.c)
        return r


import gc
_gc_t = [0.0]
def _gc_cb(phase, info):
    st = ST[0]
    if st is None: return
    if phase == "start":
        _gc_t[0] = pc()
    else:
        st.c["gc_n"] += 1
        st.c["gc_ms"] = round(st.c["gc_ms"] + (pc() - _gc_t[0]) * 1e3, 2)
gc.callbacks.append(_gc_cb)
ST = [None]
def install(st):
    ev = directsockets.DirectUdp._on_event
    put = _base._Inbox.put_nowait
    def on_event(self, kind, a, b):
        st.t_in = t = pc()
        st.add("outside", st.t_out, t)
        st.t_put = st.t_res = st.t_js0 = st.t_js1 = None
        try:
            return ev(self, kind, a, b)
        finally:
            st.t_out = t2 = pc()
            st.c["events"] += 1
            bt = asyncio.get_running_loop()._socketiwa_batcher
            if bt.draining: st.c["draining_at_exit"] += 1
            if bt.ready: st.c["ready_at_exit"] += 1
            st.add("event", t, t2)
            st.add("unwind", st.t_js1, t2)
    def put_nowait(self, item):
        st.t_put = t = pc()
        st.add("decode", st.t_in, t)
        return put(self, item)
    from socketiwa._webloop import adapt_webloop
    adapt_webloop()   # (the first socket would do it)
    bt = asyncio.get_event_loop()._socketiwa_batcher
    if bt is not None and not hasattr(bt, "_u3"):
        bt._u3 = orig_bcs = bt.browser_call_soon
        def bcs(cb):
            ST[0].c["browser_task"] += 1
            return orig_bcs(cb)
        bt.browser_call_soon = bcs
        for name, key in (("_microtask_stall_check", "stall_check"), ("_microtask_drain", "microtask_drain")):
            f = getattr(bt, name)
            if f is not None:
                def counted(f=f, key=key):
                    ST[0].c[key] += 1
                    return f()
                setattr(bt, name, counted)
    ST[0] = st
    directsockets.DirectUdp._on_event = on_event
    _base._Inbox.put_nowait = put_nowait
    def undo():  # the socket's proxy has bound the wrapper by now
        directsockets.DirectUdp._on_event = ev
    def undo_all():
        undo()
        _base._Inbox.put_nowait = put
    return undo, undo_all

def wrap_send(st, transport):
    orig = transport._send_from
    def send_from(n):
        st.t_js0 = t = pc()
        st.add("send_py", st.t_res, t)
        try:
            return orig(n)
        finally:
            st.t_js1 = t2 = pc()
            st.add("send_js", t, t2)
    transport._send_from = send_from

async def stage_receive(host, port, window, seconds, variant=""):
    """variant: "" as bench/transport_cases.py (receive(timeout=0.5), top-level await),
    "notimeout" (receive()), "task" (the loop inside loop.create_task)."""
    if variant == "task":
        return await asyncio.get_running_loop().create_task(_stage_receive(host, port, window, seconds, ""))
    return await _stage_receive(host, port, window, seconds, variant)

async def _stage_receive(host, port, window, seconds, variant):
    st = Stamps()
    undo, undo_all = install(st)
    try:
        sock = await socketiwa.create_udp(remote_address=host, remote_port=port, max_queue=4096)
    finally:
        undo()
    wrap_send(st, sock._transport)
    payload = b"x" * 64
    sent = received = 0
    for _ in range(window):
        await sock.send(payload); sent += 1
    start = pc(); deadline = start + seconds; last = start
    while True:
        try:
            if variant == "notimeout":
                await sock.receive()
            else:
                await sock.receive(timeout=0.5)
        except asyncio.TimeoutError:
            break
        st.t_res = t = pc()
        st.add("wake", st.t_put, t)
        received += 1
        last = t
        if last < deadline:
            await sock.send(payload); sent += 1
        elif received >= sent:
            break
    await sock.close()
    undo_all()
    el = last - start
    return dict(st.result(), rt_per_s=round(received / el), us_per_rt=round(el / received * 1e6, 1), lost=sent - received)

async def stage_backend(host, port, window, seconds):
    st = Stamps()
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    state = {"sent": 0, "received": 0, "start": 0.0, "last": 0.0}
    payload = b"x" * 64
    undo, undo_all = install(st)
    try:
        transport = await get_backend().open_udp(UdpOptions(remote_address=host, remote_port=port))
    finally:
        undo_all()
    wrap_send(st, transport)
    class Echo:
        def datagram_received(self, data, address, port):
            st.t_res = st.t_put = t = pc()
            st.add("decode", st.t_in, t)
            state["received"] += 1
            now = state["last"] = t
            if now < state["start"] + seconds:
                transport.send(payload, None, None); state["sent"] += 1
            elif state["received"] >= state["sent"] and not done.done():
                done.set_result(None)
        def error_received(self, exc): pass
        def pause_writing(self): pass
        def resume_writing(self): pass
        def connection_lost(self, exc): pass
    transport.start(Echo())
    state["start"] = state["last"] = pc()
    for _ in range(window):
        transport.send(payload, None, None); state["sent"] += 1
    while not done.done():
        await asyncio.sleep(0.1)
        if pc() - state["last"] > 0.5:
            break
    await transport.close()
    el = state["last"] - state["start"]
    return dict(st.result(), rt_per_s=round(state["received"] / el), us_per_rt=round(el / state["received"] * 1e6, 1), lost=state["sent"] - state["received"])
'''

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--cases", default="receive,backend",
                    help="receive, backend, receive:notimeout, receive:task")
    ap.add_argument("--windows", default="1,32")
    args = ap.parse_args()
    servers = subprocess.Popen([sys.executable, str(ROOT / "bench" / "echo_servers.py")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    _, udp_port, _, _ = servers.stdout.readline().split()
    from iwa.runner import start_iwa_runner
    runner = start_iwa_runner()
    runner.set_script_timeout(120)
    try:
        source = (ROOT / "bench" / "js_cases.mjs").read_text()
        js_source = re.sub(r"^export async function (\w+)", r"globalThis.__bench.\1 = async function \1",
                           source, flags=re.M)
        runner.run_js("globalThis.__bench = {};" + js_source + "\nreturn true;")
        runner.load_package(["socketiwa"])
        runner.run_async(PY + "\nNone")
        host = "127.0.0.1"
        for spec in args.cases.split(","):
            case, _, variant = spec.partition(":")
            extra = f", variant={variant!r}" if variant else ""
            for window in map(int, args.windows.split(",")):
                rows = []
                for _ in range(args.rounds):
                    py = json.loads(runner.run_async(
                        f"import json\njson.dumps(await stage_{case}({host!r}, {udp_port}, {window}, {args.seconds}{extra}))"))
                    js = runner.run_js(f"return await __bench.udp_echo_rate({host!r}, {udp_port}, "
                                       f"{json.dumps({'window': window, 'seconds': args.seconds})});")
                    py["js_rt_per_s"] = js["round_trips_per_s"]
                    py["js_us_per_rt"] = round(1e6 / js["round_trips_per_s"], 1)
                    py["ratio"] = round(py["rt_per_s"] / js["round_trips_per_s"], 3)
                    rows.append(py)
                keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
                med = {k: statistics.median(r[k] for r in rows if r[k] is not None) for k in keys
                       if any(r[k] is not None for r in rows)}
                print(f"{spec} w{window}: " + " ".join(f"{k}={v:g}" for k, v in med.items())
                      + "  ratios " + " ".join(str(r["ratio"]) for r in rows), flush=True)
    finally:
        runner.quit()
        servers.stdin.close()
        servers.wait(5)


if __name__ == "__main__":
    main()
