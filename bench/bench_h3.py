#!/usr/bin/env python3
"""QUIC, HTTP/3 and WebTransport benchmark, side by side in one run, every client against the
same aioquic servers on CPython (plain aioquic, no socketiwa: a QUIC byte sink and the HTTP/3 +
WebTransport server of tests/h3_peers.py):

  aioquic   the baseline: aioquic alone on CPython, written as a CPython user would (asyncio
            stream API for QUIC, H3Connection for HTTP/3 and WebTransport)
  cpython   socketiwa.quic / socketiwa.h3 on CPython (native backend)
  node/iwa  the same socketiwa code in Pyodide under Node / inside the Chromium IWA

Cases (bench/h3_cases.py):
  quic_memory_mb_per_cpu_s    QUIC bulk in memory: aioquic client and server in the runtime's own process,
                              datagrams handed over directly (no sockets, no loop); payload MB per CPU
                              second: aioquic's own speed in that runtime (plain or compiled)
  quic_upload_mb_per_s        QUIC bulk, ONE direction: 8 MiB written on one stream (aioquic's
                              reader/writer API) to a sink; payload MB/s until the sink's count
                              came back
  h3_get_mb_per_s             one HTTP/3 GET of 8 MiB: payload MB/s
  h3_requests_c1/c16_per_s    small HTTP/3 GETs per second on one connection, 1 / 16 in flight
  wt_datagram_echo_w1/w16     WebTransport datagram echoes per second (64 B), 1 / 16 in flight

Prints a table with each runtime's ratio to aioquic, then the issue 9 row (QUIC bulk: Python in
the IWA / aioquic on CPython, target >= 0.5), and appends to results/bench.json.

    scripts/netns.sh .venv/bin/python bench/bench_h3.py [--runtimes aioquic,cpython,node,iwa] [--seconds 3]
        [--cases quic_upload] [--rounds 3] [--compiled-aioquic DIR --runtimes aioquic,aioquic-compiled,...]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from bench_transport import save_record  # noqa: E402

CASES_SOURCE = (ROOT / "bench" / "h3_cases.py").read_text()
CASE_NAMES = ("quic_upload", "h3_get", "h3_requests", "wt_datagram", "quic_memory")   # h3_cases.CASES
COLUMNS = ("quic_upload_mb_per_s", "quic_memory_mb_per_cpu_s", "h3_get_mb_per_s", "h3_requests_c1_per_s",
           "h3_requests_c16_per_s",
           "wt_datagram_echo_w1_per_s", "wt_datagram_echo_w16_per_s", "wt_datagram_w1_lost", "wt_datagram_w16_lost",
           "suite")


def start_sink_server(lt, certs):
    """aioquic on CPython: every stream's bytes are counted; at its FIN the count goes back."""
    from aioquic.asyncio import QuicConnectionProtocol, serve
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import StreamDataReceived
    import h3_cases
    import h3_peers

    class Sink(QuicConnectionProtocol):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.counts: dict[int, int] = {}

        def quic_event_received(self, event):
            if isinstance(event, StreamDataReceived):
                n = self.counts.get(event.stream_id, 0) + len(event.data)
                self.counts[event.stream_id] = n
                if event.end_stream:
                    self._quic.send_stream_data(event.stream_id, str(n).encode(), end_stream=True)
                    self.transmit()

    config = QuicConfiguration(is_client=False, alpn_protocols=[h3_cases.SINK_ALPN])
    config.load_cert_chain(*h3_peers._cert_files(certs))

    async def start():
        return await serve("127.0.0.1", 0, configuration=config, create_protocol=Sink)
    return lt.run(start())


def run_cpython(quic_port: int, h3_port: int, ca: str, plain: bool, seconds: float, cases, keys: tuple,
                extra_path: str | None = None) -> dict:
    """In a fresh CPython process; the baseline imports no socketiwa at all. ``extra_path`` goes
    first on sys.path (an aioquic compiled ahead of time, see --compiled-aioquic)."""
    code = ("import sys, json, asyncio\n"
            + (f"sys.path.insert(0, {extra_path!r})\n" if extra_path else "")
            + f"sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
            + ("" if plain else f"sys.path.insert(0, {str(ROOT / 'pkg')!r})\n")
            + "import h3_cases, aioquic.quic.connection as qc\n"
            + f"r = asyncio.run(h3_cases.run_all('127.0.0.1', {quic_port}, {h3_port}, {ca!r}, "
              f"plain={plain}, seconds={seconds}, cases={tuple(cases)!r}, cert={keys[0]!r}, key={keys[1]!r}))\n"
            + "r['aioquic_compiled'] = not qc.__file__.endswith('.py')\n"
            + ("" if not plain else "assert 'socketiwa' not in sys.modules\n")
            + "print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_pyodide(rt: str):
    if rt == "node":
        from runtimes import start_node_runner as start
    else:
        from iwa.runner import start_iwa_runner as start
    runner = start()
    runner.set_script_timeout(600)
    runner.load_package(["socketiwa", "aioquic"])
    runner.run_async(CASES_SOURCE + "\nimport aioquic.quic.connection as _qc\nNone")
    return runner


def run_pyodide(runner, quic_port: int, h3_port: int, ca: str, seconds: float, cases, keys: tuple) -> dict:
    return json.loads(runner.run_async(
        f"import json\nr = await run_all('127.0.0.1', {quic_port}, {h3_port}, {ca!r}, seconds={seconds}, "
        f"cases={tuple(cases)!r}, cert={keys[0]!r}, key={keys[1]!r})\n"
        "r['aioquic_compiled'] = not _qc.__file__.endswith('.py')\njson.dumps(r)"))


def median_of(rounds: list[dict]) -> dict:
    """Per column: the median of the rounds' numbers (the other values from the last round)."""
    import statistics
    out = dict(rounds[-1])
    for key, value in rounds[-1].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [r[key] for r in rounds if isinstance(r.get(key), (int, float))]
            out[key] = round(statistics.median(values), 2)
    for key, name in (("quic_upload_mb_per_s", "quic_upload_rounds"),
                      ("quic_memory_mb_per_cpu_s", "quic_memory_rounds")):
        if len(rounds) > 1 and key in out:
            out[name] = [r.get(key) for r in rounds]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtimes", default="aioquic,cpython,node,iwa")
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each rate case")
    ap.add_argument("--cases", default=",".join(CASE_NAMES),
                    help=f"comma-separated subset of {','.join(CASE_NAMES)}")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every runtime this many times, interleaved; report the median")
    ap.add_argument("--compiled-aioquic", metavar="DIR",
                    help="a directory holding an aioquic compiled ahead of time (scripts/aot_aioquic.py); "
                         "adds the runtime aioquic-compiled: the baseline's code with it first on sys.path")
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASE_NAMES)
    if unknown:
        sys.exit(f"unknown cases {sorted(unknown)}")
    runtimes = args.runtimes.split(",")
    if "aioquic-compiled" in runtimes and not args.compiled_aioquic:
        sys.exit("aioquic-compiled needs --compiled-aioquic DIR")
    import h3_peers
    import quic_peers
    certs = quic_peers.make_certs()
    lt = quic_peers.LoopThread()
    sink = start_sink_server(lt, certs)
    h3_server = h3_peers.start_aioquic_h3_server(lt, certs)
    quic_port, h3_port, ca = quic_peers.server_port(sink), quic_peers.server_port(h3_server), certs["ca"].decode()
    keys = (certs["cert"].decode(), certs["key"].decode())    # for quic_memory's in-process server
    rounds: dict[str, list[dict]] = {rt: [] for rt in runtimes}
    errors: dict[str, dict] = {}
    runners: dict = {}
    load_before = os.getloadavg()
    try:
        for n in range(args.rounds):
            for rt in runtimes:
                if rt in errors:
                    continue
                print(f"==> {rt} (round {n + 1}/{args.rounds})", file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                try:
                    if rt in ("aioquic", "cpython", "aioquic-compiled"):
                        r = run_cpython(quic_port, h3_port, ca, plain=rt != "cpython", seconds=args.seconds,
                                        cases=cases, keys=keys,
                                        extra_path=args.compiled_aioquic if rt == "aioquic-compiled" else None)
                        if (rt == "aioquic-compiled") != r["aioquic_compiled"]:
                            raise RuntimeError(f"{rt}: aioquic_compiled={r['aioquic_compiled']}")
                    elif rt in ("node", "iwa"):
                        if rt not in runners:
                            runners[rt] = start_pyodide(rt)
                        r = run_pyodide(runners[rt], quic_port, h3_port, ca, args.seconds, cases, keys)
                    else:
                        sys.exit(f"unknown runtime {rt}")
                    rounds[rt].append(r)
                except Exception as exc:   # noqa: BLE001 - one runtime failing still reports the others
                    print(f"    {rt} failed: {exc}", file=sys.stderr)
                    errors[rt] = {"error": str(exc)[-500:]}
                last = rounds[rt][-1].get("quic_upload_mb_per_s", "") if rounds[rt] else ""
                print(f"    {time.perf_counter() - t0:.1f} s {last}", file=sys.stderr)
    finally:
        for runner in runners.values():
            runner.quit()
        lt.run(asyncio.sleep(0))
        sink.close()
        h3_server.close()
        lt.stop()
    results: dict[str, dict] = {rt: errors.get(rt) or median_of(rounds[rt]) for rt in runtimes}

    base = results.get("aioquic", {})
    width = 26
    print("\n" + "".ljust(28) + "".join(rt.ljust(width) for rt in results))
    for c in COLUMNS:
        if not any(c in r for r in results.values()):
            continue
        row = c.ljust(28)
        for rt, r in results.items():
            v, b = r.get(c), base.get(c)
            if v is None or isinstance(v, str):
                row += str(v if v is not None else "n/a").ljust(width)
                continue
            ratio = f" ({v / b:.2f}x)" if b and rt != "aioquic" and not isinstance(b, str) and "lost" not in c else ""
            row += f"{v:,}{ratio}".ljust(width)
        print(row)
    iwa, aioquic = results.get("iwa", {}).get("quic_upload_mb_per_s"), base.get("quic_upload_mb_per_s")
    if iwa and aioquic:
        ratio = iwa / aioquic
        results["ratios"] = {"quic_upload_iwa_over_aioquic": round(ratio, 3)}
        print(f"\nQUIC bulk (one direction), Python in the IWA / aioquic on CPython: {ratio:.2f} "
              f"(issue 9 target >= 0.50: {'met' if ratio >= 0.5 else 'NOT met'})")
    compiled = results.get("aioquic-compiled", {}).get("quic_upload_mb_per_s")
    if compiled and aioquic:
        results.setdefault("ratios", {})["quic_upload_aioquic_compiled_over_aioquic"] = round(compiled / aioquic, 3)
        print(f"QUIC bulk, aioquic compiled ahead of time / plain aioquic, both on CPython: {compiled / aioquic:.2f}")
    results["conditions"] = {"rounds": args.rounds, "cases": cases, "compiled_aioquic": args.compiled_aioquic,
                             "load_average_before": [round(x, 2) for x in load_before],
                             "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    save_record("h3", results)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
