#!/usr/bin/env python3
"""QUIC, HTTP/3 and WebTransport benchmark, side by side in one run, every client against the
same aioquic servers on CPython (plain aioquic, no socketiwa: a QUIC byte sink and the HTTP/3 +
WebTransport server of tests/h3_peers.py):

  aioquic   the baseline: aioquic alone on CPython, written as a CPython user would (asyncio
            stream API for QUIC, H3Connection for HTTP/3 and WebTransport)
  cpython   socketiwa.quic / socketiwa.h3 on CPython (native backend)
  node/iwa  the same socketiwa code in Pyodide under Node / inside the Chromium IWA

Cases (bench/h3_cases.py):
  quic_upload_srtt_ms/cwnd_kb/sendq_kb   during quic_upload (medians of 20 ms samples): aioquic's
                              smoothed RTT, congestion window, and the bytes queued in the local
                              socket's send path (in the IWA: Chromium's UDPSocket write queue)
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

`bench_h3.py servers` measures the other way round: socketiwa's HTTP/3 server on CPython and in
the IWA, with aioquic and Chromium as clients (SERVERS_DOC below, results/h3-servers.md).
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
COLUMNS = ("quic_upload_mb_per_s", "quic_upload_srtt_ms", "quic_upload_cwnd_kb", "quic_upload_sendq_kb",
           "quic_memory_mb_per_cpu_s", "h3_get_mb_per_s", "h3_requests_c1_per_s",
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
            ratio = f" ({v / b:.2f}x)" if b and rt != "aioquic" and not isinstance(b, str) and "_per_" in c else ""
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


# ------------------------------------------------------------------ servers: socketiwa's h3 server
# on CPython vs inside the IWA, measured by aioquic (CPython) and by Chromium's own clients.

SERVERS_DOC = """bench_h3.py servers: the socketiwa HTTP/3 + WebTransport server (bench/h3_server_cases.py)
on CPython and inside the IWA, side by side in one run, each measured by two clients nobody here
wrote: aioquic alone on CPython (a fresh process, no socketiwa) and Chromium's network stack
(a headless Chromium page: fetch over h3, new WebTransport()).

  ttfb_full_ms / ttfb_resumed_ms / ttfb_0rtt_ms   time to the first response byte of a GET on a
      new connection (median of --samples): full handshake; resumed with a ticket, GET after
      the handshake (aioquic only); resumed with the GET as 0-RTT early data. Chromium: full
      = a fresh browser context (no tickets), 0rtt = the next connection after the server
      closed the previous one (Chromium resumes it; ttfb_0rtt_early says how many of those
      GETs the server saw as early data)
  h3_get_mb_per_s            one GET of --mb MiB (Chromium: median of 3)
  wt_datagram_echo_w16_per_s WebTransport datagram echoes per second, 16 in flight, 64 B
  wt_stream_mb_per_s         --mb MiB up one WebTransport bidirectional stream, until the count came back

The last column is the IWA server's number over the CPython server's: above 1 the IWA is
faster for rates, slower for times.

Appends to results/bench.json ("h3_servers") and writes results/h3-servers.md.

    scripts/netns.sh .venv/bin/python bench/bench_h3.py servers [--servers cpython,iwa]
        [--clients aioquic,chromium] [--samples 15] [--seconds 3] [--mb 8]
"""
SERVER_METRICS = ("ttfb_full_ms", "ttfb_resumed_ms", "ttfb_0rtt_ms", "ttfb_0rtt_accepted", "ttfb_0rtt_early",
                  "h3_get_mb_per_s", "wt_datagram_echo_w16_per_s", "wt_datagram_w16_lost", "wt_stream_mb_per_s")


def _free_udp_port() -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _BenchServer:
    """bench/h3_server_cases.serve_bench on CPython (its own process) or inside the IWA (the
    runner's page; its run_async call waits in a thread until /done)."""

    def __init__(self, where: str, port: int, cert) -> None:
        import threading
        self.where, self.port, self.box = where, port, {}
        call = f"serve_bench({port}, {cert.cert_pem!r}, {cert.key_pem!r})"
        if where == "cpython":
            code = (f"import sys, asyncio\nsys.path.insert(0, {str(ROOT / 'bench')!r})\n"
                    f"sys.path.insert(0, {str(ROOT / 'pkg')!r})\nfrom h3_server_cases import serve_bench\n"
                    f"print(asyncio.run({call}))")
            self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)
            return
        from iwa.runner import start_iwa_runner
        self.runner = start_iwa_runner()
        self.runner.set_script_timeout(1800)
        self.runner.load_package(["socketiwa", "aioquic"])
        self.runner.run_async((ROOT / "bench" / "h3_server_cases.py").read_text() + "\nNone")

        def serve() -> None:
            try:
                self.box["result"] = self.runner.run_async(f"await {call}")
            except Exception as exc:   # noqa: BLE001 - reported by stop()
                self.box["error"] = repr(exc)[-1000:]
        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.where == "cpython":
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            if self.proc.returncode:
                print(f"    cpython server: {self.proc.stderr.read()[-2000:]}", file=sys.stderr)
            return
        self.thread.join(10)
        if "error" in self.box:
            print(f"    iwa server: {self.box['error']}", file=sys.stderr)
        self.runner.quit()


def _aioquic_client(port: int, ca: str, samples: int, seconds: float, nbytes: int) -> dict:
    """The aioquic cases in a fresh CPython process that imports no socketiwa."""
    code = (f"import sys, json, asyncio\nsys.path.insert(0, {str(ROOT / 'bench')!r})\n"
            "import h3_cases, h3_server_cases as c\n"
            "async def main():\n"
            "    r = {}\n"
            f"    r.update(await c.aioquic_ttfb('127.0.0.1', {port}, {ca!r}, samples={samples}))\n"
            f"    r.update(await h3_cases.h3_download('127.0.0.1', {port}, {ca!r}, nbytes={nbytes}, plain=True))\n"
            f"    r.update(await h3_cases.wt_datagram_echo('127.0.0.1', {port}, {ca!r}, seconds={seconds}, "
            "window=16, plain=True))\n"
            f"    r.update(await c.aioquic_wt_stream_upload('127.0.0.1', {port}, {ca!r}, nbytes={nbytes}))\n"
            "    return r\n"
            "r = asyncio.run(main())\nassert 'socketiwa' not in sys.modules\nprint(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _open_in_fresh_context(b, timeout: float = 20) -> tuple[str, str]:
    """A tab in a new browser context (its own network state: no session tickets yet)."""
    context = b.cdp.send("Target.createBrowserContext")["browserContextId"]
    target = b.cdp.send("Target.createTarget", {"url": b.page_url, "browserContextId": context})["targetId"]
    session = b.cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if b.cdp.evaluate(session, "[location.href, document.readyState]", 5) == [b.page_url, "complete"]:
                return context, session
        except Exception:   # noqa: BLE001 - still navigating
            pass
        time.sleep(0.05)
    raise TimeoutError("fresh context page did not load")


def _chromium_client(port: int, cert, samples: int, seconds: float, nbytes: int) -> dict:
    import statistics

    import chromium_clients
    import h3_server_cases as c
    base = f"https://127.0.0.1:{port}"
    out: dict = {}
    with chromium_clients.browser(cert.chromium_flags(port)) as b:
        full = []
        for i in range(samples):           # each in a new context: no ticket, a full handshake
            context, session = _open_in_fresh_context(b)
            full += b.run(session, c.CHROMIUM_TTFB, base, f"chromium-full-{i}", 1, False, timeout=60)
            b.cdp.send("Target.disposeBrowserContext", {"browserContextId": context})
        page = b.open()
        b.run(page, c.CHROMIUM_TTFB, base, "chromium-warm", 1, False, timeout=60)     # a ticket to resume with
        resumed = b.run(page, c.CHROMIUM_TTFB, base, "chromium-0rtt", samples, True, timeout=60 + samples * 5)
        out["ttfb_full_ms"] = round(statistics.median(full), 2)
        out["ttfb_0rtt_ms"] = round(statistics.median(resumed), 2)
        out["h3_get_mb_per_s"] = round(statistics.median(b.run(page, c.CHROMIUM_GET, base, nbytes, 3, timeout=300)), 2)
        out.update(b.run(b.open(), c.CHROMIUM_WT, base + "/wt", cert.der_sha256_b64, seconds, 16, nbytes,
                         timeout=120 + seconds))
    return out


def servers_main(argv: list[str]) -> None:
    import asyncio as _asyncio

    import h3_server_cases
    from socketiwa import h3
    ap = argparse.ArgumentParser(prog="bench_h3.py servers", description=SERVERS_DOC,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="cpython,iwa")
    ap.add_argument("--clients", default="aioquic,chromium")
    ap.add_argument("--samples", type=int, default=15, help="connections per time-to-first-byte kind")
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of the datagram rate case")
    ap.add_argument("--mb", type=int, default=8, help="MiB for the GET and the WebTransport stream")
    ap.add_argument("--no-save", action="store_true", help="print only (a trial run)")
    args = ap.parse_args(argv)
    servers, clients = args.servers.split(","), args.clients.split(",")
    cert = h3.self_signed_certificate()
    ca, nbytes = cert.cert_pem.decode(), args.mb * 1024 * 1024
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    for where in servers:
        port = _free_udp_port()
        print(f"==> server on {where}, port {port}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        server = _BenchServer(where, port, cert)
        row: dict[str, dict] = {}
        try:
            import h3_peers
            h3_peers.wait_for_h3_server(port, 180)
            for client in clients:
                print(f"    client {client}", file=sys.stderr, flush=True)
                try:
                    if client == "aioquic":
                        row[client] = _aioquic_client(port, ca, args.samples, args.seconds, nbytes)
                    elif client == "chromium":
                        row[client] = _chromium_client(port, cert, args.samples, args.seconds, nbytes)
                    else:
                        sys.exit(f"unknown client {client}")
                except Exception as exc:   # noqa: BLE001 - one client failing still reports the others
                    print(f"    {client} failed: {exc}", file=sys.stderr)
                    row[client] = {"error": str(exc)[-500:]}
        finally:
            try:    # the server's view of 0-RTT: which /ttfb GETs came as early data
                seen = _asyncio.run(h3_server_cases.aioquic_stop("127.0.0.1", port, ca))
                if "chromium" in row and "error" not in row["chromium"]:
                    early = [e for p, e in seen if p.startswith("/ttfb/chromium-0rtt/")]
                    row["chromium"]["ttfb_0rtt_early"] = f"{sum(early)}/{len(early)}"
            except Exception as exc:   # noqa: BLE001
                print(f"    stopping the server: {exc}", file=sys.stderr)
            server.stop()
        results[where] = row
        print(f"    {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    table = servers_table(results, servers, clients)
    print("\n" + table)
    results["conditions"] = {"samples": args.samples, "seconds": args.seconds, "mb": args.mb,
                             "load_average_before": [round(x, 2) for x in load_before],
                             "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    if args.no_save:
        return
    save_record("h3_servers", results)
    md = ROOT / "results" / "h3-servers.md"
    md.write_text(f"# socketiwa HTTP/3 server: CPython vs inside the IWA\n\n"
                  f"`bench/bench_h3.py servers` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                  f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, "
                  f"{os.getloadavg()[0]:.1f} after; --samples {args.samples} --seconds {args.seconds} "
                  f"--mb {args.mb}). Raw record: results/bench.json, benchmark \"h3_servers\". One run: with "
                  f"the load average above the CPU count other work shared the CPUs, and the numbers move a lot "
                  f"between runs; compare within this table.\n\n"
                  + "```\n" + SERVERS_DOC.split("\n\n", 1)[1].rsplit("\n\n", 2)[0] + "\n```\n\n"
                  + table + "\n")
    print(f"wrote {md}")


def servers_table(results: dict, servers: list[str], clients: list[str]) -> str:
    """Markdown: a row per client and metric, a column per server, the IWA/CPython ratio."""
    head = ["client", "metric", *(f"server on {s}" for s in servers)]
    ratio = "cpython" in servers and "iwa" in servers
    if ratio:
        head.append("iwa / cpython")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for client in clients:
        for metric in SERVER_METRICS:
            values = [results.get(s, {}).get(client, {}).get(metric) for s in servers]
            errors = [results.get(s, {}).get(client, {}).get("error") for s in servers]
            if all(v is None for v in values) and not any(errors):
                continue
            cells = [("error" if e else "n/a") if v is None else (f"{v:,}" if not isinstance(v, str) else v)
                     for v, e in zip(values, errors, strict=True)]
            row = [client, metric, *cells]
            if ratio:
                a, b = (results.get(s, {}).get(client, {}).get(metric) for s in ("iwa", "cpython"))
                row.append(f"{a / b:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b
                           and "lost" not in metric else "")
            lines.append("| " + " | ".join(row) + " |")
    for s in servers:                      # what 0-RTT saves, per server and client
        for client in clients:
            r = results.get(s, {}).get(client, {})
            full, early = r.get("ttfb_full_ms"), r.get("ttfb_0rtt_ms")
            if isinstance(full, (int, float)) and isinstance(early, (int, float)) and early:
                lines.append(f"\n{client} -> server on {s}: 0-RTT saves {full - early:.1f} ms of {full:.1f} ms "
                             f"to the first byte ({full / early:.1f}x)")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if sys.argv[1:2] == ["servers"]:
        servers_main(sys.argv[2:])
    else:
        main()
