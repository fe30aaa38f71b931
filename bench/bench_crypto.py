#!/usr/bin/env python3
"""Crypto and QUIC benchmark, side by side in one run:

  cpython           the real `cryptography` (Rust + OpenSSL) and aioquic on socketiwa's native backend
  cpython-provider  the AWS-LC provider built for the host (build/crypto-native) instead
  node / iwa        Pyodide under Node / in the Chromium IWA: the provider compiled to WebAssembly
                    (iwa-task, iwa-microtask: batched WebLoop scheduling modes, see socketiwa/_webloop.py)
  node+baseline     (also iwa+baseline) the same, with the provider's extension taken from the wheel
                    given as --baseline-wheel (e.g. the build before a change) under the current Python
                    layer, and AWS-LC's C loop from --baseline-c-bench, for before/after in one run;
                    with --baseline-wheel, node and iwa also time both builds' AEADs in alternating rounds
                    in one process (paired_*: robust to machine load)

AEAD seals/s for 1200-byte packets (1-second means), a breakdown of one seal (best of short rounds:
through cryptography's API, the provider's extension directly, and AWS-LC's own C loop and its
parts from build/aead-bench, made by crypto/bench/build.sh), header-protection masks/s, QUIC
handshake time and one-stream echo MB/s against aioquic on CPython (with the runtime's default
suite, and with each suite forced). Prints a table with ratios to cpython and appends to results/bench.json.

    .venv/bin/python bench/bench_crypto.py [--runtimes cpython,cpython-provider,node,iwa]
        [--baseline-wheel dist/old/socketiwa_crypto-...whl --runtimes node+baseline,node,...]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
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


C_BENCH = ROOT / "build" / "aead-bench"  # crypto/bench/build.sh


def run_cpython(server_port, ca, provider: bool, aead_only=False) -> dict:
    # AWS-LC's own C loop only beside the provider (the real `cryptography` is OpenSSL with assembly)
    so = C_BENCH / "aead_bench.native.so"
    so = str(so) if provider and so.exists() else None
    code = ("import sys, json, asyncio\n"
            + (f"sys.path.insert(0, {str(ROOT / 'build' / 'crypto-native')!r})\n" if provider else "")
            + f"sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
            + "import crypto_cases as c\n"
            + "r = c.aead_seals()\n"
            + f"r.update(c.aead_breakdown({so!r}))\n"
            + ("" if aead_only else
               f"r.update(asyncio.run(c.quic_handshake_and_bulk('127.0.0.1', {server_port}, {ca!r})))\n")
            + "print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_extension(wheel: Path) -> str:
    """The provider's compiled extension from ``wheel``, base64 (to ship into Pyodide)."""
    import base64
    import zipfile
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.startswith("socketiwa_crypto/_awslc") and n.endswith(".so")]
        if len(names) != 1:
            raise SystemExit(f"{wheel}: expected one socketiwa_crypto/_awslc*.so, found {names}")
        return base64.b64encode(zf.read(names[0])).decode()


def swap_provider_extension(runner, wheel: Path) -> None:
    """Load the provider's _awslc extension from ``wheel`` under its own name before anything imports
    it (the Python side of the provider stays the current one; only the compiled part differs).
    Pyodide loads a package's shared libraries when it installs the package, so overwriting the
    installed .so file afterwards would change nothing: the baseline is loaded from its own path."""
    runner.run_async(
        "import base64, importlib.util, os, sys\n"
        "assert 'socketiwa_crypto._awslc' not in sys.modules\n"
        "os.makedirs('/tmp/baseline_ext', exist_ok=True)\n"
        f"open('/tmp/baseline_ext/_awslc.so', 'wb').write(base64.b64decode({baseline_extension(wheel)!r}))\n"
        "spec = importlib.util.spec_from_file_location('socketiwa_crypto._awslc', '/tmp/baseline_ext/_awslc.so')\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['socketiwa_crypto._awslc'] = module\n"
        "spec.loader.exec_module(module)\n"
        "from socketiwa_crypto import primitives\n"
        "assert primitives._awslc is module\nNone")


def paired_aead(runner, wheel: Path) -> dict:
    """aead_seals_paired in Pyodide: the loaded provider against the extension in ``wheel``."""
    runner.run_async(
        "import base64, os\nos.makedirs('/tmp/baseline_build', exist_ok=True)\n"
        "open('/tmp/baseline_build/_awslc.so', 'wb').write("
        f"base64.b64decode({baseline_extension(wheel)!r}))\nNone")
    return json.loads(runner.run_async("import json\njson.dumps(aead_seals_paired('/tmp/baseline_build/_awslc.so'))"))


def run_pyodide(runner, server_port, ca, webloop="off", provider_wheel: Path | None = None,
                paired_wheel: Path | None = None, aead_only=False, c_bench: Path | None = None) -> dict:
    runner.load_package(["socketiwa", "aioquic"])
    if provider_wheel is not None:
        swap_provider_extension(runner, provider_wheel)
    runner.run_async(f"import socketiwa._webloop\nsocketiwa._webloop.adapt_webloop(mode={webloop!r})")
    runner.run_async(CASES_SOURCE + "\nNone")
    result = json.loads(runner.run_async("import json\njson.dumps(aead_seals())"))
    so = c_bench or C_BENCH / "aead_bench.wasm.so"
    if so.exists():  # AWS-LC's own C loop, the same build as the provider's (see crypto/bench/build.sh)
        runner.run_async("import base64\nopen('/tmp/aead_bench.so', 'wb').write("
                         f"base64.b64decode({base64.b64encode(so.read_bytes()).decode()!r}))\nNone")
    result.update(json.loads(runner.run_async(
        f"import json\njson.dumps(aead_breakdown({'/tmp/aead_bench.so' if so.exists() else None!r}))")))
    if not aead_only:
        result.update(json.loads(runner.run_async(
            f"import json\njson.dumps(await quic_handshake_and_bulk('127.0.0.1', {server_port}, {ca!r}))")))
    if paired_wheel is not None:
        result.update(paired_aead(runner, paired_wheel))
    return result


BREAKDOWN = tuple(f"{a}_{k}" for a in ("aes128gcm", "chacha20poly1305")
                  for k in ("api_seals_per_s", "api_empty_seals_per_s", "direct_seals_per_s", "c_seals_per_s",
                            "c_empty_seals_per_s", "api_us", "c_us", "python_us")) + tuple(
    f"{p}_1200_us" for p in ("chacha20", "poly1305", "aes128ctr", "ghash"))
COLUMNS = ("loadavg_1min", "aes128gcm_seals_per_s", "aes256gcm_seals_per_s", "chacha20poly1305_seals_per_s",
           "aes_hp_masks_per_s",
           "handshake_ms", "default_suite", "bulk_mb_per_s", "bulk_aes128gcm_mb_per_s", "bulk_aes256gcm_mb_per_s",
           "bulk_chacha20poly1305_mb_per_s", *(f"paired_{a}_{k}" for a in ("aes128gcm", "aes256gcm", "chacha20poly1305")
                                               for k in ("baseline_seals_per_s", "seals_per_s", "speedup")),
           *BREAKDOWN)


def profile_category(path: str, name: str) -> str:
    """Where a profiled function belongs: crypto, aioquic (its Python and its _buffer C module),
    event loop / FFI (asyncio, Pyodide's WebLoop and JS proxies, socketiwa's transport), stdlib."""
    where = f"{path} {name}"
    if any(k in where for k in ("socketiwa_crypto", "aioquic/_crypto.py", "cryptography", "_awslc",
                                "'_hashlib", "_hmac")):
        return "crypto"
    if "aioquic" in where or "pylsqpack" in where:
        return "aioquic"
    if any(k in where for k in ("asyncio", "pyodide", "Js", "/socketiwa/", "select", "socket")):
        return "event loop / FFI"
    return "stdlib"


def profile(rt: str, port: int, ca: str) -> None:
    """Print a Markdown summary of cProfile around a 4 MB one-stream QUIC echo in ``rt``."""
    code = "import json\njson.dumps(await quic_bulk_profile('127.0.0.1', {port}, {ca!r}))".format(port=port, ca=ca)
    if rt == "cpython":
        sys.path.insert(0, str(ROOT / "bench"))
        import crypto_cases
        result = asyncio.run(crypto_cases.quic_bulk_profile("127.0.0.1", port, ca))
    else:
        from iwa.runner import start_iwa_runner
        from runtimes import start_node_runner
        runner = (start_node_runner if rt.startswith("node") else start_iwa_runner)()
        runner.set_script_timeout(300)
        try:
            runner.load_package(["socketiwa", "aioquic"])
            mode = rt.partition("-")[2] or "off"
            runner.run_async(f"import socketiwa._webloop\nsocketiwa._webloop.adapt_webloop(mode={mode!r})")
            runner.run_async(CASES_SOURCE + "\nNone")
            result = json.loads(runner.run_async(code))
        finally:
            runner.quit()
    rows, wall, profiled = result["rows"], result["wall_s"], result["profiled_s"]
    groups: dict[str, float] = {}
    for path, _line, name, _cc, _nc, tottime, _ct in rows:
        cat = profile_category(path, name)
        groups[cat] = groups.get(cat, 0.0) + tottime
    print(f"### {rt}: {result['mb_per_s']} MB/s ({result['suite']}), wall {wall:.2f} s, "
          f"in Python (profiled) {profiled:.2f} s\n")
    print("| where | seconds | share of profiled | share of wall |\n|---|---|---|---|")
    for cat, t in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"| {cat} | {t:.2f} | {t / profiled:.0%} | {t / wall:.0%} |")
    outside = max(wall - profiled, 0)
    print(f"| outside Python (JS, I/O, idle) | {outside:.2f} | | {outside / wall:.0%} |")
    print("\n| function (tottime) | category | calls | seconds | share of profiled |\n|---|---|---|---|---|")
    for path, line, name, _cc, nc, tottime, _ct in sorted(rows, key=lambda r: -r[5])[:25]:
        short = "/".join(path.split("/")[-2:]) if path != "~" else "builtin"
        print(f"| `{short}:{line} {name}` | {profile_category(path, name)} | {nc} | {tottime:.3f} | "
              f"{tottime / profiled:.1%} |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtimes", default="cpython,cpython-provider,node,iwa")
    ap.add_argument("--baseline-wheel", type=Path, help="socketiwa-crypto wheel for the +baseline runtimes")
    ap.add_argument("--profile", metavar="RUNTIMES",
                    help="instead of benchmarking, print a cProfile summary of a QUIC bulk echo per runtime")
    ap.add_argument("--baseline-c-bench", type=Path,
                    help="aead_bench.wasm.so built against the baseline's AWS-LC, for the +baseline runtimes")
    ap.add_argument("--no-save", action="store_true", help="print the table only (no record in results/bench.json)")
    ap.add_argument("--aead-only", action="store_true", help="only the AEAD and header-protection rates (no QUIC)")
    args = ap.parse_args()
    if "+baseline" in args.runtimes and not args.baseline_wheel:
        ap.error("+baseline runtimes need --baseline-wheel")
    import quic_peers
    certs = quic_peers.make_certs()
    lt = quic_peers.LoopThread()
    server, _ = quic_peers.start_aioquic_echo_server(lt, certs, retry=False)
    port, ca = quic_peers.server_port(server), certs["ca"].decode()
    results: dict[str, dict] = {}
    if args.profile:
        try:
            for rt in args.profile.split(","):
                profile(rt, port, ca)
        finally:
            lt.run(asyncio.sleep(0))
            server.close()
            lt.stop()
        return
    try:
        for rt in args.runtimes.split(","):
            print(f"==> {rt}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            load_before = os.getloadavg()
            if rt in ("cpython", "cpython-provider"):
                results[rt] = run_cpython(port, ca, provider=rt == "cpython-provider", aead_only=args.aead_only)
            elif rt.split("-")[0].split("+")[0] in ("node", "iwa"):  # "-microtask": WebLoop mode
                name, _, variant = rt.partition("+")
                if rt.startswith("node"):
                    from runtimes import start_node_runner as start
                else:
                    from iwa.runner import start_iwa_runner as start
                runner = start()
                runner.set_script_timeout(300)
                try:
                    results[rt] = run_pyodide(runner, port, ca, webloop=name.partition("-")[2] or "off",
                                              provider_wheel=args.baseline_wheel if variant == "baseline" else None,
                                              paired_wheel=args.baseline_wheel if not variant else None,
                                              aead_only=args.aead_only,
                                              c_bench=args.baseline_c_bench if variant == "baseline" else None)
                    if variant == "baseline":
                        results[rt]["provider_wheel"] = args.baseline_wheel.name
                finally:
                    runner.quit()
            else:
                sys.exit(f"unknown runtime {rt}")
            # the machine is shared: the load (1-minute average) says how far to trust the means
            results[rt]["loadavg_1min"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
            print(f"    {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    finally:
        lt.run(asyncio.sleep(0))
        server.close()
        lt.stop()

    # one row per measure, one column per runtime (ratio to cpython in brackets)
    base = results.get("cpython", {})
    width = 26
    print("\n" + "".ljust(46) + "".join(rt.ljust(width) for rt in results))
    for c in COLUMNS:
        if all(r.get(c) is None for r in results.values()):
            continue
        row = c.ljust(46)
        for rt, r in results.items():
            v, b = r.get(c), base.get(c)
            if v is None or isinstance(v, (str, list)):
                row += str(v if v is not None else "n/a").ljust(width)
                continue
            ratio = f" ({v / b:.2f}x)" if b and rt != "cpython" and not isinstance(b, str) else ""
            row += f"{v:,}{ratio}".ljust(width)
        print(row)
    if not args.no_save:
        save_record("crypto", results)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
