#!/usr/bin/env python3
"""Crypto and QUIC benchmark, side by side in one run:

  cpython           the real `cryptography` (Rust + OpenSSL) and aioquic on socketiwa's native backend
  cpython-provider  the AWS-LC provider built for the host (build/crypto-native) instead
  node / iwa        Pyodide under Node / in the Chromium IWA: the provider compiled to WebAssembly
                    (iwa-task, iwa-microtask: batched WebLoop scheduling modes, see socketiwa/_webloop.py)

AEAD seals/s for 1200-byte packets, header-protection masks/s, QUIC handshake time and one-stream
echo MB/s against aioquic on CPython. Prints a table with ratios to cpython and appends to
results/bench.json.

    .venv/bin/python bench/bench_crypto.py [--runtimes cpython,cpython-provider,node,iwa]
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

CASES_SOURCE = (ROOT / "bench" / "crypto_cases.py").read_text()


def run_cpython(server_port, ca, provider: bool) -> dict:
    code = ("import sys, json, asyncio\n"
            + (f"sys.path.insert(0, {str(ROOT / 'build' / 'crypto-native')!r})\n" if provider else "")
            + f"sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
            + "import crypto_cases as c\n"
            + "r = c.aead_seals()\n"
            + f"r.update(asyncio.run(c.quic_handshake_and_bulk('127.0.0.1', {server_port}, {ca!r})))\n"
            + "print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_pyodide(runner, server_port, ca, webloop="off") -> dict:
    runner.load_package(["socketiwa", "aioquic"])
    runner.run_async(f"import socketiwa._webloop\nsocketiwa._webloop.adapt_webloop(mode={webloop!r})")
    runner.run_async(CASES_SOURCE + "\nNone")
    result = json.loads(runner.run_async("import json\njson.dumps(aead_seals())"))
    result.update(json.loads(runner.run_async(
        f"import json\njson.dumps(await quic_handshake_and_bulk('127.0.0.1', {server_port}, {ca!r}))")))
    return result


COLUMNS = ("aes128gcm_seals_per_s", "chacha20poly1305_seals_per_s", "aes_hp_masks_per_s", "handshake_ms",
           "bulk_mb_per_s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtimes", default="cpython,cpython-provider,node,iwa")
    args = ap.parse_args()
    import quic_peers
    certs = quic_peers.make_certs()
    lt = quic_peers.LoopThread()
    server, _ = quic_peers.start_aioquic_echo_server(lt, certs, retry=False)
    port, ca = quic_peers.server_port(server), certs["ca"].decode()
    results: dict[str, dict] = {}
    try:
        for rt in args.runtimes.split(","):
            print(f"==> {rt}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            if rt in ("cpython", "cpython-provider"):
                results[rt] = run_cpython(port, ca, provider=rt == "cpython-provider")
            elif rt.split("-")[0] in ("node", "iwa"):  # "-microtask" / "-off": WebLoop mode
                if rt.startswith("node"):
                    from runtimes import start_node_runner as start
                else:
                    from iwa.runner import start_iwa_runner as start
                runner = start()
                runner.set_script_timeout(300)
                try:
                    results[rt] = run_pyodide(runner, port, ca, webloop=rt.partition("-")[2] or "off")
                finally:
                    runner.quit()
            else:
                sys.exit(f"unknown runtime {rt}")
            print(f"    {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    finally:
        lt.run(asyncio.sleep(0))
        server.close()
        lt.stop()

    base = results.get("cpython", {})
    print("\n" + "runtime".ljust(18) + "".join(c.ljust(30) for c in COLUMNS))
    for rt, r in results.items():
        row = rt.ljust(18)
        for c in COLUMNS:
            v, b = r.get(c), base.get(c)
            ratio = f" ({v / b:.2f}x)" if v is not None and b and rt != "cpython" else ""
            row += f"{v:,}{ratio}".ljust(30) if v is not None else "n/a".ljust(30)
        print(row)
    save_record("crypto", results)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
