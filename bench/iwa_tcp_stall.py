#!/usr/bin/env python3
"""Reproduce the Chromium 156 TCPSocket write stall in plain JavaScript (no Python, no adapter).

An IWA page writes 4 MB to a CPython sink in chunks, awaiting each write; the sink counts what
arrives. Prints one line per chunk size and appends them to results/bench.json.

    scripts/netns.sh .venv/bin/python bench/iwa_tcp_stall.py
"""
import json
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from iwa.runner import start_iwa_runner  # noqa: E402

TOTAL = 4 * 1024 * 1024


def main():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    port = srv.getsockname()[1]
    received = {"bytes": 0}

    def sink(conn):
        while data := conn.recv(262144):
            received["bytes"] += len(data)

    def accept():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=sink, args=(conn,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    runner = start_iwa_runner()
    rows = []
    try:
        for chunk in (1024, 16384, 131072, TOTAL):
            received["bytes"] = 0
            js = f"""
const s = globalThis.__stall = new TCPSocket("127.0.0.1", {port}, {{noDelay: true}});
const w = (await s.opened).writable.getWriter();
const t0 = performance.now();
for (let i = 0; i < {TOTAL}; i += {chunk}) await w.write(new Uint8Array({chunk}));
return Math.round(performance.now() - t0);
"""
            ms = runner.run_js(js)
            deadline = time.monotonic() + 5
            while received["bytes"] < TOTAL and time.monotonic() < deadline:
                time.sleep(0.05)
            rows.append({"chunk": chunk, "written": TOTAL, "writes_resolved_ms": ms,
                         "peer_received": received["bytes"]})
            print(f"chunk {chunk:>8}: {TOTAL} B written (promises resolved in {ms} ms), "
                  f"peer received {received['bytes']} B after 5 s")
    finally:
        runner.quit()
    out = ROOT / "results" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    history = json.loads(out.read_text()) if out.exists() else []
    history.append({"benchmark": "iwa_tcp_stall", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "results": rows})
    out.write_text(json.dumps(history, indent=1))


if __name__ == "__main__":
    main()
