#!/usr/bin/env python3
"""Transport benchmark: the same cases on CPython (native backend), in Pyodide under Node (the
Direct Sockets harness), in Pyodide inside the real Chromium IWA, and as plain JavaScript in that
IWA page, side by side in one run, against one echo server process.

    .venv/bin/python bench/bench_transport.py [--runtimes cpython,node] [--seconds 2]
        [--before main]     # also run another commit's code in the IWA (before/after in one run)

Prints a table and appends a record to results/bench.json. Numbers are for comparison within a
run (ratios); machines are noisy. The UDP echo ratios that matter for the browser are each
Python runtime over iwa-js (plain JavaScript in the same IWA, the lean loop a JS developer writes).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
RESULTS = ROOT / "results" / "bench.json"


def save_record(benchmark: str, results: dict) -> None:
    """Append one run to results/bench.json (a list of records, oldest first)."""
    RESULTS.parent.mkdir(exist_ok=True)
    record = {"benchmark": benchmark, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
              "results": results}
    history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    history.append(record)
    RESULTS.write_text(json.dumps(history, indent=1))
    print(f"\nwrote {RESULTS}")


# Python cases whose plain-JS baseline is another function of bench/js_cases.mjs.
JS_EQUIVALENT = {"udp_echo_rate_protocol": "udp_echo_rate", "udp_echo_rate_backend": "udp_echo_rate"}


def cases(host, udp_port, tcp_port, seconds):
    return [
        ("udp_echo_w1", "udp_echo_rate", (host, udp_port), {"window": 1, "seconds": seconds}),
        ("udp_echo_w32", "udp_echo_rate", (host, udp_port), {"window": 32, "seconds": seconds}),
        ("udp_echo_protocol_w1", "udp_echo_rate_protocol", (host, udp_port), {"window": 1, "seconds": seconds}),
        ("udp_echo_protocol_w32", "udp_echo_rate_protocol", (host, udp_port), {"window": 32, "seconds": seconds}),
        ("udp_echo_backend_w1", "udp_echo_rate_backend", (host, udp_port), {"window": 1, "seconds": seconds}),
        ("udp_echo_backend_w32", "udp_echo_rate_backend", (host, udp_port), {"window": 32, "seconds": seconds}),
        ("udp_profile_backend_w1", "udp_echo_backend_profile", (host, udp_port), {"window": 1, "seconds": seconds}),
        ("udp_profile_backend_w32", "udp_echo_backend_profile", (host, udp_port), {"window": 32, "seconds": seconds}),
        ("udp_profile_receive_w1", "udp_echo_backend_profile", (host, udp_port),
         {"window": 1, "seconds": seconds, "case": "udp_echo_rate"}),
        ("udp_profile_receive_w32", "udp_echo_backend_profile", (host, udp_port),
         {"window": 32, "seconds": seconds, "case": "udp_echo_rate"}),
        # Python function calls per round trip (sys.setprofile; any runtime): where a datagram's
        # Python time goes, by function, in results/bench.json ("top").
        ("udp_calls_receive_w1", "udp_calls_profile", (host, udp_port),
         {"case": "udp_echo_rate", "window": 1, "seconds": seconds / 2}),
        ("udp_calls_protocol_w1", "udp_calls_profile", (host, udp_port),
         {"case": "udp_echo_rate_protocol", "window": 1, "seconds": seconds / 2}),
        ("udp_constant_2k", "udp_constant_rate", (host, udp_port), {"rate": 2000, "seconds": seconds}),
        ("tcp_echo_32mb", "tcp_echo_throughput", (host, tcp_port), {}),
    ]


def headline(name: str, result: dict) -> str:
    if "skipped" in result:
        return "n/a"
    if result.get("stalled"):
        return f"stalled after {result['bytes'] / 1e6:.1f} MB"
    if "python_calls_per_round_trip" in result:
        return f"{result['python_calls_per_round_trip']} py + {result['c_calls_per_round_trip']} C calls/rt"
    if "python_us_per_round_trip" in result:
        return f"{result['python_us_per_round_trip']}/{result['us_per_round_trip']} us Python/rt"
    if "round_trips_per_s" in result:
        return f"{result['round_trips_per_s']:,} rt/s"
    if "mb_per_s" in result:
        return f"{result['mb_per_s']} MB/s"
    if "median_rtt_us" in result:
        return f"{result['received']}/{result['sent']} back, median {result['median_rtt_us']} us"
    return json.dumps(result)


def headline_value(result: dict) -> float | None:
    for key in ("round_trips_per_s", "mb_per_s"):
        if result.get(key) is not None:
            return float(result[key])
    return None


def run_cpython(case_list):
    import transport_cases
    out = {}
    for label, fn, args, kwargs in case_list:
        out[label] = asyncio.run(getattr(transport_cases, fn)(*args, **kwargs))
    return out


def run_pyodide(runner, case_list, webloop=None):
    source = (ROOT / "bench" / "transport_cases.py").read_text()
    runner.load_package(["socketiwa"])
    # How WebLoop wake-ups are scheduled (pkg/socketiwa/_webloop.py): None keeps socketiwa's
    # default ("microtask"); "task" keeps JSPI in callbacks; "off" is Pyodide's own WebLoop.
    if webloop:
        runner.run_async(f"import socketiwa._webloop\nsocketiwa._webloop.adapt_webloop(mode={webloop!r})")
    runner.run_async(source + "\nNone")
    out = {}
    for label, fn, args, kwargs in case_list:
        if not re.search(rf"^async def {fn}\(", source, re.M):
            out[label] = {"skipped": "no such case in this version"}
            continue
        code = f"import json\njson.dumps(await {fn}(*{args!r}, **{kwargs!r}))"
        out[label] = json.loads(runner.run_async(code))
    return out


def run_iwa_js(runner, case_list):
    """The same UDP cases in plain JavaScript in the IWA page (bench/js_cases.mjs): the baseline.
    Loaded through DevTools, which the page's CSP does not govern."""
    source = (ROOT / "bench" / "js_cases.mjs").read_text()
    names = re.findall(r"^export async function (\w+)", source, re.M)
    source = re.sub(r"^export async function (\w+)", r"globalThis.__bench.\1 = async function \1", source, flags=re.M)
    runner.run_js("globalThis.__bench = {};" + source + "\nreturn true;")
    out = {}
    for label, fn, args, kwargs in case_list:
        fn = JS_EQUIVALENT.get(fn, fn)
        if fn not in names:
            out[label] = {"skipped": "no JS version of this case"}
            continue
        out[label] = runner.run_js(f"return await __bench.{fn}(...{json.dumps(list(args))}, {json.dumps(kwargs)});")
    return out


def snapshot(ref: str) -> Path:
    """A copy of commit ``ref`` next to this checkout's heavy build outputs (by symlink), so its
    own bench runs its own package, adapter and IWA shell."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], check=True,
                         capture_output=True, text=True).stdout.strip()
    out = Path("/tmp") / f"socketiwa-bench-{sha}"
    if not (out / "bench").exists():
        out.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    for name in ("node_modules", "dist", ".venv"):
        if not (out / name).exists():
            (out / name).symlink_to((ROOT / name).resolve())
    (out / "build" / "pyodide-dist-314").mkdir(parents=True, exist_ok=True)
    (out / "build" / "lib").mkdir(exist_ok=True)   # its own wheel staging, never a shared one
    for name in ("iwa-build.json", "pyodide-dist-314/pyodide-lock.json"):
        if (ROOT / "build" / name).exists() and not (out / "build" / name).exists():
            shutil.copy(ROOT / "build" / name, out / "build" / name)
    if not (out / "build" / "crypto-native").exists() and (ROOT / "build" / "crypto-native").exists():
        (out / "build" / "crypto-native").symlink_to((ROOT / "build" / "crypto-native").resolve())
    return out


def run_before(ref: str, runtimes: str, seconds: float) -> dict[str, dict]:
    """Run commit ``ref``'s own bench_transport.py (its cases, its package) and return its
    results, keyed ``<runtime>@<ref>``."""
    tree = snapshot(ref)
    results_file = tree / "results" / "bench.json"
    before = len(json.loads(results_file.read_text())) if results_file.exists() else 0
    env = dict(__import__("os").environ, PYTHONPATH=str(tree / "pkg"))
    subprocess.run([sys.executable, str(tree / "bench" / "bench_transport.py"), "--runtimes", runtimes,
                    "--seconds", str(seconds)], check=True, env=env, cwd=tree, stdout=sys.stderr)
    history = json.loads(results_file.read_text())
    assert len(history) > before, "the before run wrote no record"
    return {f"{rt}@{ref}": r for rt, r in history[-1]["results"].items()}


def run_iwa_paired(runner, case_list, rounds=3):
    """Python and plain JS in the same IWA page, alternating case by case for ``rounds`` rounds:
    machine load hits both alike. Each case reports the median round's numbers plus
    ``js_round_trips_per_s`` and ``ratio_to_js`` (median of the per-round Python/JS ratios)."""
    source = (ROOT / "bench" / "js_cases.mjs").read_text()
    names = re.findall(r"^export async function (\w+)", source, re.M)
    js_source = re.sub(r"^export async function (\w+)", r"globalThis.__bench.\1 = async function \1",
                       source, flags=re.M)
    runner.run_js("globalThis.__bench = {};" + js_source + "\nreturn true;")
    py_source = (ROOT / "bench" / "transport_cases.py").read_text()
    runner.load_package(["socketiwa"])
    runner.run_async(py_source + "\nNone")
    out = {}
    for label, fn, args, kwargs in case_list:
        js_fn = JS_EQUIVALENT.get(fn, fn)
        if js_fn not in names or "round_trips" not in label and "echo" not in label:
            continue
        rows = []
        for _ in range(rounds):
            py = json.loads(runner.run_async(f"import json\njson.dumps(await {fn}(*{args!r}, **{kwargs!r}))"))
            js = runner.run_js(f"return await __bench.{js_fn}(...{json.dumps(list(args))}, {json.dumps(kwargs)});")
            rows.append((py["round_trips_per_s"] / js["round_trips_per_s"], py, js))
        rows.sort(key=lambda r: r[0])
        ratio, py, js = rows[len(rows) // 2]
        out[label] = dict(py, js_round_trips_per_s=js["round_trips_per_s"], ratio_to_js=round(ratio, 3),
                          ratios=[round(r[0], 3) for r in rows])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtimes", default="cpython,node,iwa,iwa-js,iwa-paired",
                    help="cpython, node (Pyodide in Node), iwa (Python in the Chromium IWA with "
                         "socketiwa's default WebLoop mode; iwa-task / iwa-off / iwa-microtask: "
                         "that configure_webloop mode), iwa-js (plain JavaScript in the same IWA "
                         "page), iwa-paired (Python and plain JS alternating in one IWA page, "
                         "ratio per round: the robust comparison on a loaded machine)")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3,
                    help="iwa-paired: Python/JS rounds per case (the median is reported)")
    ap.add_argument("--cases", help="only the cases whose label contains one of these (comma-separated)")
    ap.add_argument("--before", metavar="REF",
                    help="also run commit REF's own benchmark in the IWA (iwa@REF), e.g. main")
    ap.add_argument("--before-runtimes", default="iwa", help="runtimes for --before (default iwa)")
    args = ap.parse_args()
    runtimes = args.runtimes.split(",")

    servers = subprocess.Popen([sys.executable, str(ROOT / "bench" / "echo_servers.py")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    _, udp_port, _, tcp_port = servers.stdout.readline().split()
    case_list = cases("127.0.0.1", int(udp_port), int(tcp_port), args.seconds)
    if args.cases:
        wanted = args.cases.split(",")
        case_list = [c for c in case_list if any(w in c[0] for w in wanted)]
    results: dict[str, dict] = {}
    try:
        for rt in runtimes:
            t0 = time.perf_counter()
            print(f"==> {rt}", file=sys.stderr, flush=True)
            if rt == "cpython":
                results[rt] = run_cpython(case_list)
            elif rt == "node":
                from runtimes import start_node_runner
                runner = start_node_runner()
                runner.set_script_timeout(120)
                try:
                    results[rt] = run_pyodide(runner, case_list)
                finally:
                    runner.quit()
            elif rt.startswith("iwa"):
                from iwa.runner import start_iwa_runner
                runner = start_iwa_runner()
                runner.set_script_timeout(120)
                try:
                    if rt == "iwa-js":
                        results[rt] = run_iwa_js(runner, case_list)
                    elif rt == "iwa-paired":
                        results[rt] = run_iwa_paired(runner, case_list, rounds=args.rounds)
                    else:
                        results[rt] = run_pyodide(runner, case_list, webloop=rt.partition("-")[2] or None)
                finally:
                    runner.quit()
            else:
                sys.exit(f"unknown runtime {rt}")
            print(f"    {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    finally:
        servers.stdin.close()
        servers.wait(5)
    if args.before:
        print(f"==> before: {args.before} ({args.before_runtimes})", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        for rt, r in run_before(args.before, args.before_runtimes, args.seconds).items():
            results[rt] = r
            runtimes.append(rt)
        print(f"    {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    base = results.get("cpython", {})
    width = max(len(c[0]) for c in case_list) + 2
    print("\ncase".ljust(width + 1) + "".join(rt.ljust(26) for rt in runtimes) + "ratios")
    for label, *_ in case_list:
        row = label.ljust(width)
        ratios = []
        for rt in runtimes:
            row += headline(label, results[rt].get(label, {"skipped": 1})).ljust(26)
            b, v = headline_value(base.get(label, {})), headline_value(results[rt].get(label, {}))
            if rt != "cpython" and b and v is not None:
                ratios.append(f"{rt} {v / b:.2f}")
        paired = results.get("iwa-paired", {}).get(label)
        if paired:
            ratios.append(f"iwa-paired py/js {paired['ratio_to_js']:.2f} (js {paired['js_round_trips_per_s']:,})")
        js = headline_value(results.get("iwa-js", {}).get(label, {}))
        for rt in runtimes:
            py = headline_value(results.get(rt, {}).get(label, {}))
            if rt.startswith("iwa") and not rt.startswith("iwa-js") and js and py is not None:
                ratios.append(f"{rt}/iwa-js {py / js:.2f}")
        print(row + ", ".join(ratios))

    save_record("transport", results)


if __name__ == "__main__":
    main()
