#!/usr/bin/env python3
"""Run the stress profiles against every runtime in one go and save the results.

    scripts/netns.sh .venv/bin/python bench/stress/run.py [--quick] [--soak] [--runtimes ...]

Runtimes: ``cpython`` (cases.py in its own CPython process, socketiwa's native backend),
``iwa`` (the same cases.py in Pyodide inside the real Chromium IWA), ``iwa-js`` (cases.mjs,
plain Direct Sockets JavaScript, in the same IWA page), ``node`` (Pyodide under Node, optional).
One peer process (peer.py) serves them all; after each profile the driver asks it for the
profile's flows, so every record holds both sides' counts (what the endpoint sent and got back,
what the peer received and echoed). Writes results/stress/stress-<time>.json and
results/stress/latest.json; report.py turns them into tables and plots.

The memory soak alone, every runtime, with a verdict per runtime (results/stress/soak-<time>.json;
about 17 minutes: 5 per runtime plus the IWA's start):

    scripts/netns.sh .venv/bin/python bench/stress/run.py --soak --only soak_udp

(``--soak-seconds 30`` for a short check of the machinery; its verdict is marked indicative.)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))
import memory  # noqa: E402
import stats  # noqa: E402

OUT = ROOT / "results" / "stress"
SOAK_RATE, SOAK_SECONDS = 1000, 300
SOAK_SAMPLE_S = 1.0      # memory sample interval in the soak (0.25 s elsewhere): 300 points, and
                         # the probe's own DevTools calls stay out of the page's way
SOAK_RUNTIMES = ("cpython", "iwa", "iwa-js")
RAMP_RATES = (1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000)


def profiles(scale: float, soak: bool, quic: bool = True, soak_rate: int | None = None,
             soak_seconds: float | None = None) -> list[tuple[str, str, str, dict]]:
    """(name, transport, case function, keyword arguments); ``scale`` shortens everything."""
    def n(x: float) -> int:
        return max(1, int(x * scale))
    out = [
        ("burst_udp", "udp", "burst", {"count": n(50000), "size": 64}),
        ("burst_tcp", "tcp", "burst", {"count": n(20000), "size": 256}),
        ("constant_udp", "udp", "paced", {"steps": [[10000, 10 * scale]], "size": 64}),
        ("constant_tcp", "tcp", "paced", {"steps": [[5000, 5 * scale]], "size": 256}),
        ("ramp_udp", "udp", "paced", {"steps": [[r, max(0.3, scale)] for r in RAMP_RATES],
                                      "size": 64, "stop_loss": 0.01}),
        ("chaos", "mixed", "chaos", {"seconds": 10 * scale, "seed": 1}),
    ]
    if quic:
        out.append(("quic", "quic", "quic", {"handshakes": n(100) if scale < 1 else 20,
                                             "bulk_bytes": n(4 << 20), "lossy_bytes": n(1 << 20)}))
    if soak:
        # 1,000/s: a rate every runtime here sustains (the IWA's receive path falls behind near
        # 2k/s round trips on this loaded 2-core machine, results/stress/diag-constant.md), so
        # memory shows the steady state, not a growing backlog.
        seconds = soak_seconds if soak_seconds is not None else SOAK_SECONDS * min(1.0, scale)
        out.append(("soak_udp", "udp", "paced", {"steps": [[soak_rate or SOAK_RATE, seconds]],
                                                  "size": 64}))
    return out


class Peer:
    """peer.py (and, for QUIC, quic_peer.py) in processes of their own."""

    def __init__(self, quic: bool = False):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "peer.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.ports = json.loads(self.proc.stdout.readline())
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.ports["closed"] = s.getsockname()[1]   # nothing listens there
        s.close()
        self.quic = None
        if quic:
            self.quic = subprocess.Popen([sys.executable, str(HERE / "quic_peer.py")],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            info = json.loads(self.quic.stdout.readline())
            self.ports["ca"] = info.pop("ca")
            self.ports["quic_ports"] = info

    @staticmethod
    def _ask(proc, cmd: str) -> dict:
        proc.stdin.write(cmd + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    def ask(self, cmd: str) -> dict:
        out = self._ask(self.proc, cmd)
        if self.quic is not None and cmd == "stats":
            out["relays"] = self._ask(self.quic, "stats")
        return out

    def flows(self, raw: dict) -> dict | None:
        """The peer's own count of a profile's flow (burst, paced) or flow range (chaos; its
        aborted TCP connections apart, as ``aborted``)."""
        if "flow_range" in raw:
            out = self.ask("range %d %d" % tuple(raw["flow_range"]))
            if "aborted_flow_range" in raw:
                out["aborted"] = self.ask("range %d %d" % tuple(raw["aborted_flow_range"]))
            return out
        if "flow" in raw:
            return self.ask(f"flow {raw['flow']}")
        return None

    def close(self) -> None:
        for proc in (self.proc, self.quic):
            if proc is not None:
                proc.stdin.close()
                proc.wait(5)


def case_call(fn: str, transport: str, ports: dict, flow: int, kwargs: dict) -> tuple[list, dict]:
    """Positional and keyword arguments of one case, the same for Python and JS."""
    host = ports["host"]
    if fn == "quic":
        return [host, ports["quic_ports"], ports["ca"]], kwargs
    if fn == "chaos":
        return [host, ports, flow], kwargs
    port = ports[transport]
    if fn == "paced":
        kw = dict(kwargs)
        steps = kw.pop("steps")
        return [host, port, flow, steps], {**kw, "transport": transport}
    return [host, port, flow], {**kwargs, "transport": transport}


def timeout_for(kwargs: dict) -> float:
    seconds = sum(s for _, s in kwargs.get("steps", [])) + kwargs.get("seconds", 0)
    return 120 + 2 * seconds


# ---------------------------------------------------------------- runtimes
class CPythonRuntime:
    name = "cpython"

    def run(self, fn, args, kwargs, timeout, interval=0.25):
        call = dict(zip(_param_names(fn), args, strict=True), **kwargs)
        proc = subprocess.Popen([sys.executable, str(HERE / "cases.py"), fn, json.dumps(call)],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
        with memory.Sampler(memory.cpython_probe(proc.pid), interval) as sampler:
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
        if proc.returncode:
            raise RuntimeError(f"cases.py {fn} exited with {proc.returncode}")
        return json.loads(out), sampler.samples

    def close(self):
        pass


def _param_names(fn: str) -> list[str]:
    return {"burst": ["host", "port", "flow"], "paced": ["host", "port", "flow", "steps"],
            "chaos": ["host", "ports", "flow_base"], "quic": ["host", "ports", "ca"]}[fn]


class PyodideRuntime:
    """cases.py in Pyodide: in the IWA page (``iwa``) or under Node (``node``)."""

    def __init__(self, name: str, runner, webloop: str | None = None):
        self.name, self.runner = name, runner
        runner.load_package(["socketiwa", "aioquic"])
        # socketiwa's default WebLoop mode unless asked (pkg/socketiwa/_webloop.py): what users get.
        self.webloop = runner.run_async(
            f"import socketiwa._webloop\nsocketiwa._webloop.adapt_webloop(mode={webloop!r})")
        runner.run_async((HERE / "cases.py").read_text() + "\nNone")
        self.probe = memory.ChromiumProbe(runner) if hasattr(runner, "cdp") else None

    def run(self, fn, args, kwargs, timeout, interval=0.25):
        self.runner.set_script_timeout(timeout)
        call = dict(zip(_param_names(fn), args, strict=True), **kwargs)
        code = f"import json\njson.dumps(await {fn}(**json.loads({json.dumps(call)!r})))"
        if self.probe is None:
            return json.loads(self.runner.run_async(code)), []
        with memory.Sampler(self.probe, interval) as sampler:
            out = self.runner.run_async(code)
        return json.loads(out), sampler.samples

    def close(self):
        pass


class JsRuntime:
    """cases.mjs in the IWA page, loaded through DevTools (which the page's CSP does not govern)."""

    name = "iwa-js"

    def __init__(self, runner):
        self.runner = runner
        # cases.mjs ends by publishing its functions on globalThis.__stress.
        runner.run_js((HERE / "cases.mjs").read_text() + "\nreturn true;")
        self.probe = memory.ChromiumProbe(runner)

    def run(self, fn, args, kwargs, timeout, interval=0.25):
        self.runner.set_script_timeout(timeout)
        code = f"return await __stress.{fn}(...{json.dumps(args)}, {json.dumps(kwargs)});"
        with memory.Sampler(self.probe, interval) as sampler:
            out = self.runner.run_js(code)
        return out, sampler.samples

    def close(self):
        pass


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from socketiwa._app.chromium import SYSTEM_CHROMIUM, chromium_version
    try:
        chrome = chromium_version(os.environ.get("SOCKETIWA_CHROMIUM", SYSTEM_CHROMIUM))
    except OSError:
        chrome = "not found"
    return {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "chromium": chrome,
            "loadavg_at_start": os.getloadavg()}


def run_all(runtime_names: list[str], scale: float, soak: bool, webloop: str | None = None,
            quic: bool = True, log=print, soak_runtimes: tuple = SOAK_RUNTIMES,
            only: tuple | None = None, soak_rate: int | None = None,
            soak_seconds: float | None = None) -> dict:
    plan = [p for p in profiles(scale, soak, quic, soak_rate, soak_seconds)
            if only is None or p[0] in only]
    peer = Peer(quic=quic)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results: dict = {"time": started, "machine": machine(), "scale": scale, "webloop": webloop,
                     "profiles": [p[0] for p in plan], "runs": {}, "ua_memory": None}
    runner = None
    try:
        for rt_index, name in enumerate(runtime_names):
            if name == "cpython":
                runtime = CPythonRuntime()
            elif name in ("iwa", "iwa-js"):
                if runner is None:
                    from iwa.runner import start_iwa_runner
                    runner = start_iwa_runner()
                runtime = PyodideRuntime(name, runner, webloop) if name == "iwa" else JsRuntime(runner)
                if name == "iwa":
                    results["webloop"] = runtime.webloop
            elif name == "node":
                from runtimes import start_node_runner
                runtime = PyodideRuntime(name, start_node_runner(), webloop)
            else:
                raise SystemExit(f"unknown runtime {name}")
            runs = results["runs"][name] = {}
            for p_index, (profile, transport, fn, kwargs) in enumerate(plan):
                if fn == "quic" and name == "iwa-js":
                    continue        # no QUIC over Direct Sockets in plain JS to compare with
                if profile == "soak_udp" and name not in soak_runtimes:
                    continue        # 5 minutes each: only where memory growth is the question
                flow = (rt_index + 1) * 1_000_000 + p_index * 10_000
                args, kw = case_call(fn, transport, peer.ports, flow, kwargs)
                t0 = time.monotonic()
                before = peer.ask("stats") if fn == "quic" else None
                # the soak: one sample a second, or 60 in all for a short one (at most 10 a second)
                interval = (max(0.1, min(SOAK_SAMPLE_S, kwargs["steps"][0][1] / 60))
                            if profile == "soak_udp" else 0.25)
                probe = getattr(runtime, "probe", None)
                if probe is not None:   # the soak's JS heap is the live heap: a forced collection per window
                    probe.gc_every = (max(2.0, kwargs["steps"][0][1] / memory.WINDOWS)
                                      if profile == "soak_udp" else None)
                try:
                    # from the profile's own arguments: case_call moves the steps out of them
                    raw, mem = runtime.run(fn, args, kw, timeout_for(kwargs), interval)
                except Exception as exc:
                    log(f"  {name} {profile}: FAILED {exc!r}")
                    runs[profile] = {"profile": profile, "transport": transport, "error": repr(exc)}
                    continue
                # The peer's own count of this profile's flows, after the endpoint closed them.
                peer_view = peer.flows(raw)
                summary = stats.summarize(profile, transport, raw, peer_view)
                if peer_view is not None:
                    summary["peer"] = {k: v for k, v in peer_view.items() if k in ("udp", "tcp", "aborted")}
                    # TCP bytes the peer received (and echoed) on this flow
                    summary["peer_tcp_bytes"] = (peer_view.get("tcp") or {}).get("bytes", 0)
                if before is not None:     # what the lossy relays did during this profile
                    after = peer.ask("stats")
                    summary["relays"] = {k: {c: n - before["relays"][k][c] for c, n in v.items()}
                                         for k, v in after["relays"].items()}
                summary["memory"] = mem
                if profile == "soak_udp":
                    summary["soak_verdict"] = memory.soak_verdict(mem, name, summary.get("send_rate"))
                    log(memory.verdict_line(name, summary["soak_verdict"]))
                summary["wall_seconds"] = round(time.monotonic() - t0, 2)
                runs[profile] = summary
                if fn == "quic":
                    q = summary
                    log(f"  {name:8} quic          {q['handshakes_per_s']} handshakes/s, bulk "
                        f"{q['bulk']['mb_per_s']} MB/s, 1% loss {q['lossy1']['mb_per_s']} MB/s, "
                        f"5% loss {q['lossy5']['mb_per_s']} MB/s, SHA-256 ok: {q['sha256_ok']}")
                    continue
                sides = "; ".join(
                    f"{kind} out {d['out']['sent']}->{d['out']['at_peer']} back "
                    f"{d['back']['echoed']}->{d['back']['received']}"
                    for kind, d in summary.get("directions", {}).items())
                log(f"  {name:8} {profile:13} sent {summary['sent']:>7} received {summary['received']:>7} "
                    f"lost {summary['lost']:>6} late {summary.get('late', 0)} unresolved "
                    f"{summary.get('unresolved', 0)} dup {summary['duplicated']} ooo {summary['out_of_order']} "
                    f"rate {summary['rate']:>7}/s p50 {summary['latency']['p50_us']} us ({sides})")
            if name == "node":
                runtime_runner = runtime.runner
                runtime_runner.quit()
        if runner is not None:
            results["ua_memory"] = memory.measure_ua_memory(runner)
            # The page's console (warnings from the adapter, say), minus the package loader's chatter.
            results["iwa_console"] = [line for line in runner.logs.splitlines()
                                      if "already loaded" not in line and "No new packages" not in line][-100:]
    finally:
        if runner is not None:
            runner.quit()
        peer.close()
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    return results


def save(results: dict, kind: str = "stress") -> Path:
    """results/stress/<kind>-<time>.json; a full run ("stress") is also latest.json, which
    report.py renders (a soak-only run must not replace it)."""
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = results["time"].replace(":", "").replace("-", "")
    path = OUT / f"{kind}-{stamp}.json"
    text = json.dumps(results, indent=1)
    path.write_text(text)
    if kind == "stress":
        (OUT / "latest.json").write_text(text)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtimes", default="cpython,iwa,iwa-js")
    ap.add_argument("--quick", action="store_true", help="a tenth of every count and duration")
    ap.add_argument("--scale", type=float, default=None)
    ap.add_argument("--soak", action="store_true", help="add the 5-minute constant-rate soak")
    ap.add_argument("--webloop", default=None, choices=("off", "task", "microtask"),
                    help="Pyodide WebLoop mode (default: socketiwa's default)")
    ap.add_argument("--no-quic", action="store_true", help="leave out the QUIC profile")
    ap.add_argument("--soak-runtimes", default=",".join(SOAK_RUNTIMES))
    ap.add_argument("--soak-rate", type=int, default=None, help=f"round trips/s (default {SOAK_RATE})")
    ap.add_argument("--soak-seconds", type=float, default=None,
                    help=f"soak length (default {SOAK_SECONDS}; e.g. 30 to check the machinery)")
    ap.add_argument("--only", help="only these profiles (comma-separated names)")
    ap.add_argument("--out", type=Path, help="write here instead of results/stress/stress-<time>.json "
                    "and latest.json (a side run, e.g. a second soak)")
    args = ap.parse_args()
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    only = tuple(args.only.split(",")) if args.only else None
    soak = args.soak or (only is not None and "soak_udp" in only)   # asking for it by name is enough
    results = run_all(args.runtimes.split(","), scale, soak, args.webloop, not args.no_quic,
                      soak_runtimes=tuple(args.soak_runtimes.split(",")), soak_rate=args.soak_rate,
                      only=only, soak_seconds=args.soak_seconds)
    verdicts = [(rt, runs["soak_udp"]) for rt, runs in results["runs"].items() if "soak_udp" in runs]
    if verdicts:
        print("\nsoak verdicts (" + memory.VERDICT_RULE + "):")
        for rt, s in verdicts:
            print(memory.verdict_line(rt, s.get("soak_verdict"), s))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")
        return
    print(f"wrote {save(results, 'soak' if only == ('soak_udp',) else 'stress')}")


if __name__ == "__main__":
    main()
