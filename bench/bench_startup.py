#!/usr/bin/env python3
"""IWA launch to "Python ready with socketiwa imported", phase by phase, before and after.

    scripts/netns.sh .venv/bin/python bench/bench_startup.py [--runs 5] [--before-ref main]

Each variant is a built shell app (iwa-shell/build.mjs): "before" is the shell of --before-ref
(its iwa-shell/ and bridge/ taken with git archive, built by its own build.mjs), "after" this
tree's. To attribute the cuts: "after-nosnapshot" is this tree's without the memory snapshot
(SOCKETIWA_SNAPSHOT=0), "after-nopyc" without bytecode nor snapshot (SOCKETIWA_PRECOMPILE=0),
"after-nopreload" with the --before-ref index.html. All use the same Pyodide distribution
(build/pyodide-dist-314). Runs are interleaved (before, after, before, ...), each in a fresh
profile as the tests use it: launch headless Chromium, dev-mode proxy install, grant, open
index.html?mode=test, wait for ready. Then (unless --no-relaunch) the case "NAME/relaunch": Chromium
closed and launched again on the same profile, the app installed already (a user's second run of
their app; `socketiwa run` keeps a profile per app for this): check it is installed, grant, open.

Wall-clock phases come from the driver (launch, install) and from the page (performance.timeOrigin
plus the loader's marks, or for a shell without marks its own timings), and the CPU time Chromium's
processes used (a view less dependent on the machine's load). Prints the median per phase and
appends one JSON line per variant to results/startup.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "pkg"))

from socketiwa._app import chromium as cr  # noqa: E402

CHROMIUM = os.environ.get("SOCKETIWA_CHROMIUM", cr.SYSTEM_CHROMIUM)
# Rows of the table: (key, label). Times in ms; "at_" keys are since launch.
PHASES = [
    ("chromium_up", "launch -> DevTools answers"),
    ("install", "PWA.install + grant (relaunch: installed? + grant)"),
    ("open", "open tab -> navigation start"),
    ("nav_to_loader", "navigation -> loader.mjs runs"),
    ("pyodide_mjs", "import pyodide.mjs"),
    ("load_pyodide", "loadPyodide()"),
    ("  wasm", "  of which: wasm fetched, compiled, instantiated"),
    ("  python_start", "  of which: interpreter start-up (or snapshot restore)"),
    ("  files", "    of which: socketiwa's files written (JS)"),
    ("load_package", "loadPackage(socketiwa)"),
    ("import_socketiwa", "import socketiwa"),
    ("nav_to_ready", "navigation -> ready"),
    ("launch_to_ready", "LAUNCH -> READY (total)"),
    ("program", "then: a first program (UDP echo on loopback)"),
    ("launch_to_program", "launch -> that program done"),
    ("cpu_open_to_ready", "CPU ms of Chromium, open tab -> ready"),
]

COLLECT_JS = """(() => {
  const s = socketiwaShell.state;
  return { timeOrigin: performance.timeOrigin, marks: s.marks || null, startedAt: s.startedAt,
           timings: s.timings };
})()"""
# The first Python a program runs after ready also pays for what ready left out (wasm functions
# compiled on first use, modules not imported yet): the starter app's UDP echo, timed in the page.
PROGRAM_PY = """
import asyncio, socketiwa
receiver = await socketiwa.create_udp(local_address="127.0.0.1")
arrived = asyncio.get_running_loop().create_future()
receiver.on("message", lambda data, rinfo: None if arrived.done() else arrived.set_result(data))
sender = await socketiwa.create_udp(remote_address="127.0.0.1", remote_port=receiver.local_port)
await sender.send(b"hello over UDP")
received = (await asyncio.wait_for(arrived, 10)).decode()
await sender.close()
await receiver.close()
received
"""
PROGRAM_JS = ("(async () => { const t = performance.now(); const got = await socketiwaShell.run(%s);"
              " return [got, performance.now() - t, performance.now()]; })()" % json.dumps(PROGRAM_PY))
# A shell that does not import socketiwa itself: time the first import the same way.
IMPORT_JS = """(() => { const t = performance.now(); socketiwaShell.pyodide.runPython('import socketiwa');
  return [t, performance.now()]; })()"""


def build_variants(names: list[str], before_ref: str, work: Path) -> dict[str, Path]:
    apps = {}
    for name in names:
        out = work / f"app-{name}"
        env = dict(os.environ)
        build_mjs = ROOT / "iwa-shell" / "build.mjs"
        if name == "before":
            tree = work / "before-tree"
            tree.mkdir()
            archive = subprocess.run(["git", "archive", before_ref, "iwa-shell", "bridge"], cwd=ROOT,
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
            # Its build.mjs finds node_modules and build/pyodide-dist-314 beside itself.
            (tree / "node_modules").symlink_to(ROOT / "node_modules")
            (tree / "build").mkdir()
            (tree / "build" / "pyodide-dist-314").symlink_to(ROOT / "build" / "pyodide-dist-314")
            build_mjs = tree / "iwa-shell" / "build.mjs"
        elif name == "after-nopyc":
            env["SOCKETIWA_PRECOMPILE"] = "0"   # (no snapshot either: it needs the bytecode)
        elif name == "after-nosnapshot":
            env["SOCKETIWA_SNAPSHOT"] = "0"
        elif name not in ("after", "after-nopreload"):
            sys.exit(f"unknown variant {name!r}: before, after, after-nopyc, after-nosnapshot, after-nopreload")
        res = subprocess.run(["node", str(build_mjs), "--dev-dir", str(out), "--swbn", "none"],
                             env=env, capture_output=True, text=True)
        if res.returncode:
            sys.exit(f"building {name} failed:\n{res.stderr}")
        if name == "after-nopreload":  # this tree's app with the --before-ref page (no preload links)
            (out / "index.html").write_bytes(subprocess.run(
                ["git", "show", f"{before_ref}:iwa-shell/app/index.html"], cwd=ROOT, check=True,
                capture_output=True).stdout)
        apps[name] = out
    return apps


def cpu_ms(group: int) -> float:
    """CPU time (user + system) used so far by the live processes of a process group: Chromium's
    work, whatever else the machine runs (wall times on a shared machine vary with its load)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def wait_ready(cdp: cr.CDP, session: str) -> dict:
    """Poll until the shell says ready; return its marks and timings."""
    deadline = time.monotonic() + 120
    while True:
        try:
            phase = cdp.evaluate(session, "window.socketiwaShell ? socketiwaShell.state.phase : 'none'", 5)
        except cr.IwaError:
            phase = "navigating"
        if phase == "ready":
            break
        if phase == "error" or time.monotonic() > deadline:
            error = cdp.evaluate(session, "socketiwaShell.state.error", 5) if phase == "error" else ""
            raise cr.IwaError(f"shell not ready ({phase}): {error}")
        time.sleep(0.02)
    page = cdp.evaluate(session, COLLECT_JS, 10)
    if not (page["marks"] or {}).get("socketiwa_imported"):
        page["import"] = cdp.evaluate(session, IMPORT_JS, 30)
    return page


def one_launch(profile: Path, port: int, origin: str | None) -> tuple[dict, str]:
    """Launch Chromium on profile and open the app until ready. origin None: install it first
    (the first launch); else the app is installed in this profile already (a relaunch: what
    `socketiwa run` does with its kept profile: check it is installed, grant, open)."""
    t0 = time.time()
    cdp = cr.launch_chromium(profile, CHROMIUM)
    try:
        t_up = time.time()
        if origin is None:
            origin = cr.install_dev_proxy(cdp, f"http://127.0.0.1:{port}/")
        elif not cr.is_installed(cdp, origin):
            raise cr.IwaError(f"{origin} is not installed in the kept profile {profile}")
        cr.grant(cdp, origin)
        t_installed = time.time()
        cpu_installed = cpu_ms(cdp.proc.pid)
        _, session = cdp.open_page(f"{origin}/index.html?mode=test")
        page = wait_ready(cdp, session)
        cpu_ready = cpu_ms(cdp.proc.pid)
        got, program_ms, program_done = cdp.evaluate(session, PROGRAM_JS, 60)
        assert got == "hello over UDP", got
    finally:
        cr.close_chromium(cdp)
    row = phases(t0 * 1000, t_up * 1000, t_installed * 1000, page)
    row["program"] = program_ms
    row["launch_to_program"] = page["timeOrigin"] + program_done - t0 * 1000
    # Includes the polling for ready (a few evaluations), the same for every variant.
    row["cpu_open_to_ready"] = cpu_ready - cpu_installed
    if os.environ.get("BENCH_DEBUG"):
        print(json.dumps(page)[:3000])
    return row, origin


def one_run(app: Path, work: Path, relaunch: bool) -> list[dict]:
    """A first launch in a fresh profile (launch, install, open) and, with relaunch, a second
    launch of the same installed app in the same profile (what a user running the app a second
    time gets). The app is served on the same port for both: a dev-mode proxy install keeps its
    URL."""
    http, port = cr.serve_dir(app)
    profile = Path(tempfile.mkdtemp(prefix="prof-", dir=work))
    try:
        first, origin = one_launch(profile, port, None)
        rows = [first]
        if relaunch:
            rows.append(one_launch(profile, port, origin)[0])
    finally:
        http.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return rows


def phases(t0: float, t_up: float, t_installed: float, page: dict) -> dict:
    origin = page["timeOrigin"]
    marks = page["marks"] or {}
    if "pyodide_loaded" in marks:
        loader, imported = marks["loader_start"], marks["pyodide_imported"]
        loaded, packages = marks["pyodide_loaded"], marks["packages_loaded"]
        imported_at = marks["socketiwa_imported"]
    else:  # a shell without marks: its own timings (ms); the isolated-app:// scheme gets no
        # resource timing entries, so importing pyodide.mjs counts into loadPyodide there
        loader = imported = page["startedAt"]
        loaded = loader + page["timings"]["pyodide_ms"]
        packages = loaded + page["timings"]["packages_ms"]
        start, end = page["import"]
        imported_at = packages + (end - start)
    wasm = marks.get("wasm_ready")  # only a shell with the fsInit mark splits loadPyodide
    return {
        "chromium_up": t_up - t0,
        "install": t_installed - t_up,
        "open": origin - t_installed,
        "nav_to_loader": loader,
        "pyodide_mjs": imported - loader,
        "load_pyodide": loaded - imported,
        "  wasm": wasm - imported if wasm else None,
        "  python_start": loaded - wasm if wasm else None,
        "  files": marks["files_written"] - marks["snapshot_restored"] if "files_written" in marks else None,
        "load_package": packages - loaded,
        "import_socketiwa": imported_at - packages,
        "nav_to_ready": imported_at,
        "launch_to_ready": origin + imported_at - t0,
    }


def median(values: list) -> float | None:
    return None if None in values else statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--variants", default="before,after-nopyc,after-nosnapshot,after")
    ap.add_argument("--before-ref", default="main", help="git ref whose shell is 'before'")
    ap.add_argument("--note", default="", help="stored with the results")
    ap.add_argument("--no-relaunch", action="store_true",
                    help="only first launches (default: each run also relaunches the installed app in "
                         "its kept profile, reported as variant NAME/relaunch)")
    ap.add_argument("--app", action="append", default=[], metavar="NAME=DIR",
                    help="also measure an app laid out already (an experiment), as variant NAME")
    args = ap.parse_args()
    names = args.variants.split(",")
    work = Path(tempfile.mkdtemp(prefix="socketiwa-startup-"))
    try:
        apps = build_variants(names, args.before_ref, work)
        for item in args.app:
            name, _, folder = item.partition("=")
            apps[name] = Path(folder).resolve()
            names.append(name)
        cases = [c for n in names for c in ([n] if args.no_relaunch else [n, f"{n}/relaunch"])]
        rows: dict[str, list[dict]] = {n: [] for n in cases}
        loads = []
        for i in range(args.runs):
            for name in names:
                got = one_run(apps[name], work, relaunch=not args.no_relaunch)
                loads.append(os.getloadavg()[0])
                for case, row in zip([name, f"{name}/relaunch"][:len(got)], got, strict=True):
                    rows[case].append(row)
                    print(f"run {i + 1}/{args.runs} {case}: {row['launch_to_ready']:.0f} ms", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {n: {k: median([r[k] for r in rows[n]]) for k, _ in PHASES} for n in cases}
    load = statistics.median(loads)
    print(f"\nmedian ms of {args.runs} runs per variant (interleaved), load average {load:.1f}, "
          f"{cr.chromium_version(CHROMIUM)}")
    width = {n: max(9, len(n)) + 2 for n in cases}
    print(f"{'phase':52}" + "".join(f"{n:>{width[n]}}" for n in cases))
    for key, label in PHASES:
        print(f"{label:52}" + "".join(f"{'-' if med[n][key] is None else round(med[n][key]):>{width[n]}}"
                                      for n in cases))
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (ROOT / "results").mkdir(exist_ok=True)
    with open(ROOT / "results" / "startup.jsonl", "a") as f:
        for n in cases:
            f.write(json.dumps({"bench": "startup", "variant": n, "runs": args.runs,
                                "before_ref": args.before_ref if n == "before" else None,
                                "median_ms": {k.strip(): None if v is None else round(v) for k, v in med[n].items()},
                                "launch_to_ready_all_ms": [round(r["launch_to_ready"]) for r in rows[n]],
                                "load1": round(load, 1), "note": args.note, "when": when}) + "\n")


if __name__ == "__main__":
    main()
