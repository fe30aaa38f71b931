#!/usr/bin/env python3
"""Run the stress profiles against every runtime in one go and save the results.

    scripts/netns.sh .venv/bin/python bench/stress/run.py [--quick] [--soak] [--runtimes ...]

Runtimes: ``cpython`` (cases.py in its own CPython process, socketiwa's native backend),
``iwa`` (the same cases.py in Pyodide inside the real Chromium IWA), ``iwa-js`` (cases.mjs,
plain Direct Sockets JavaScript, in the same IWA page), ``node`` (Pyodide under Node, optional).
One peer process (peer.py) serves them all. Writes results/stress/stress-<time>.json and
results/stress/latest.json; report.py turns them into tables and plots.
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
RAMP_RATES = (1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000)


def profiles(scale: float, soak: bool) -> list[tuple[str, str, str, dict]]:
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
    if soak:
        out.append(("soak_udp", "udp", "paced", {"steps": [[10000, 300]], "size": 64}))
    return out


class Peer:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "peer.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.ports = json.loads(self.proc.stdout.readline())
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.ports["closed"] = s.getsockname()[1]   # nothing listens there
        s.close()

    def ask(self, cmd: str) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(5)


def case_call(fn: str, transport: str, ports: dict, flow: int, kwargs: dict) -> tuple[list, dict]:
    """Positional and keyword arguments of one case, the same for Python and JS."""
    host = ports["host"]
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

    def run(self, fn, args, kwargs):
        call = dict(zip(_param_names(fn), args), **kwargs)
        proc = subprocess.Popen([sys.executable, str(HERE / "cases.py"), fn, json.dumps(call)],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
        with memory.Sampler(memory.cpython_probe(proc.pid)) as sampler:
            out, _ = proc.communicate(timeout=timeout_for(kwargs))
        if proc.returncode:
            raise RuntimeError(f"cases.py {fn} exited with {proc.returncode}")
        return json.loads(out), sampler.samples

    def close(self):
        pass


def _param_names(fn: str) -> list[str]:
    return {"burst": ["host", "port", "flow"], "paced": ["host", "port", "flow", "steps"],
            "chaos": ["host", "ports", "flow_base"]}[fn]


class PyodideRuntime:
    """cases.py in Pyodide: in the IWA page (``iwa``) or under Node (``node``)."""

    def __init__(self, name: str, runner, webloop: str = "off"):
        self.name, self.runner = name, runner
        runner.load_package(["socketiwa"])
        # Pyodide's own scheduling unless asked (pkg/socketiwa/_webloop.py): what users get.
        runner.run_async(f"import socketiwa._webloop\nsocketiwa._webloop.adapt_webloop(mode={webloop!r})")
        runner.run_async((HERE / "cases.py").read_text() + "\nNone")
        self.probe = memory.ChromiumProbe(runner) if hasattr(runner, "cdp") else None

    def run(self, fn, args, kwargs):
        self.runner.set_script_timeout(timeout_for(kwargs))
        call = dict(zip(_param_names(fn), args), **kwargs)
        code = f"import json\njson.dumps(await {fn}(**json.loads({json.dumps(call)!r})))"
        if self.probe is None:
            return json.loads(self.runner.run_async(code)), []
        with memory.Sampler(self.probe) as sampler:
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

    def run(self, fn, args, kwargs):
        self.runner.set_script_timeout(timeout_for(kwargs))
        code = f"return await __stress.{fn}(...{json.dumps(args)}, {json.dumps(kwargs)});"
        with memory.Sampler(self.probe) as sampler:
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


def run_all(runtime_names: list[str], scale: float, soak: bool, webloop: str = "off",
            log=print) -> dict:
    plan = profiles(scale, soak)
    peer = Peer()
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
            elif name == "node":
                from runtimes import start_node_runner
                runtime = PyodideRuntime(name, start_node_runner(), webloop)
            else:
                raise SystemExit(f"unknown runtime {name}")
            runs = results["runs"][name] = {}
            for p_index, (profile, transport, fn, kwargs) in enumerate(plan):
                flow = (rt_index + 1) * 1_000_000 + p_index * 10_000
                args, kw = case_call(fn, transport, peer.ports, flow, kwargs)
                t0 = time.monotonic()
                before = peer.ask("stats")
                try:
                    raw, mem = runtime.run(fn, args, kw)
                except Exception as exc:
                    log(f"  {name} {profile}: FAILED {exc!r}")
                    runs[profile] = {"profile": profile, "transport": transport, "error": repr(exc)}
                    continue
                after = peer.ask("stats")
                summary = stats.summarize(profile, transport, raw, after)
                # TCP bytes the peer received (and echoed) during this profile: tells a message
                # that never came back on the way out from one lost on the way back.
                summary["peer_tcp_bytes"] = after["tcp_bytes"] - before["tcp_bytes"]
                summary["memory"] = mem
                summary["wall_seconds"] = round(time.monotonic() - t0, 2)
                runs[profile] = summary
                log(f"  {name:8} {profile:13} sent {summary['sent']:>7} received {summary['received']:>7} "
                    f"lost {summary['lost']:>6} dup {summary['duplicated']} ooo {summary['out_of_order']} "
                    f"rate {summary['rate']:>7}/s p50 {summary['latency']['p50_us']} us")
            if name == "node":
                runtime_runner = runtime.runner
                runtime_runner.quit()
        if runner is not None:
            results["ua_memory"] = memory.measure_ua_memory(runner)
    finally:
        if runner is not None:
            runner.quit()
        peer.close()
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    return results


def save(results: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = results["time"].replace(":", "").replace("-", "")
    path = OUT / f"stress-{stamp}.json"
    text = json.dumps(results, indent=1)
    path.write_text(text)
    (OUT / "latest.json").write_text(text)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtimes", default="cpython,iwa,iwa-js")
    ap.add_argument("--quick", action="store_true", help="a tenth of every count and duration")
    ap.add_argument("--scale", type=float, default=None)
    ap.add_argument("--soak", action="store_true", help="add the 5-minute constant-rate soak")
    ap.add_argument("--webloop", default="off", choices=("off", "task", "microtask"))
    args = ap.parse_args()
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    results = run_all(args.runtimes.split(","), scale, args.soak, args.webloop)
    print(f"wrote {save(results)}")


if __name__ == "__main__":
    main()
