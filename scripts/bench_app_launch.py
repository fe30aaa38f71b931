#!/usr/bin/env python3
"""Launch-to-exit times of a socketiwa app by install route: dev mode in the system's Chromium,
the signed bundle from its file in Chromium 150, the signed bundle by policy force-install.

    scripts/netns.sh .venv/bin/python scripts/bench_app_launch.py [--runs 3]

Builds the starter app (socketiwa new) once, then per run: launch Chromium, install, open, run
the program (UDP over loopback), exit. Prints the median seconds per phase and appends one JSON
line per route to results/app_launch.jsonl (with the load average: this machine is shared)."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "pkg"))

from socketiwa import cli  # noqa: E402
from socketiwa._app import chromium as cr  # noqa: E402
from socketiwa._app import launch, project  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--routes", default="dev,signed,policy")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="socketiwa-bench-"))
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")
    cli.main(["-q", "new", str(work / "bench")])
    built = project.build(work / "bench")
    print(f"bundle {built.bytes / 1e6:.1f} MB, {built.files} files; build {built.seconds:.1f} s")
    for how in args.routes.split(","):
        if how != "dev" and not cr.CHROMIUM150.exists():
            print(f"{how}: skipped (no Chromium 150: bash scripts/chromium150.sh)")
            continue
        rows = []
        for _ in range(args.runs):
            t0 = time.monotonic()
            sess = launch.install(built, how=how)
            opened = time.monotonic() - t0
            lines: list[str] = []
            code = launch.follow(sess, output=lambda stream, text: lines.append(text), timeout=300)
            rows.append({"installed_s": sess.timings["installed_s"], "opened_s": opened,
                         "exited_s": time.monotonic() - t0, "exit_code": code})
            sess.close()
            assert code == 0 and "received: hello over UDP" in lines, lines
        med = {k: round(statistics.median(r[k] for r in rows), 2) for k in ("installed_s", "opened_s", "exited_s")}
        load = os.getloadavg()[0]
        print(f"{how:>7}: installed {med['installed_s']:5.2f} s  page open {med['opened_s']:5.2f} s  "
              f"program exited {med['exited_s']:5.2f} s  (median of {args.runs}, load {load:.1f})")
        record = {"bench": "app_launch", "route": how, "runs": args.runs, **med, "load1": round(load, 1),
                  "bundle_bytes": built.bytes, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (ROOT / "results").mkdir(exist_ok=True)
        with open(ROOT / "results" / "app_launch.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
