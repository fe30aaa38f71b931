#!/usr/bin/env python3
"""socketiwa for your own Pyodide page: dist/pyodide/ (run by build-wasm.sh).

Pyodide's own distribution has none of socketiwa, aioquic, pylsqpack, wsproto or our AWS-LC
crypto provider. This folder holds them as wheels, the Pyodide runtime itself, a
``pyodide-lock.json`` that lists them next to every package of Pyodide's own lock, and
socketiwa's JS adapter (``socketiwa-adapter.mjs``, what Python calls for Direct Sockets), so a
page serving this folder loads socketiwa with no network at all:

    import { createBridge } from "/pyodide/socketiwa-adapter.mjs";
    globalThis.socketiwaBridge = createBridge();
    const pyodide = await loadPyodide({ indexURL: "/pyodide/" });   // this folder, served
    await pyodide.loadPackage("socketiwa");  // + aioquic, pylsqpack, socketiwa-crypto, wsproto, h11

or, with a Pyodide runtime of the same version from elsewhere (npm's ``pyodide``, the CDN):

    loadPyodide({ indexURL: "<runtime>/", lockFileURL: "/pyodide/pyodide-lock.json" })

Wheels this folder holds are named relatively (Pyodide resolves them against the lock file's
folder); Pyodide's own packages keep their CDN address, so numpy & co. still load when online.
``socketiwa`` depends on everything its modules import (``socketiwa.quic`` and ``socketiwa.h3``
need aioquic and wsproto: about 1 MB more), so one ``loadPackage`` call is enough.
Pyodide's ``cryptography`` and ``certifi`` are left out of the lock: the crypto provider
installs modules of those names (the slice aioquic uses), and two packages writing the same
files would overwrite each other; packages that depend on them get ``socketiwa-crypto``.

    python scripts/pyodide_user_dist.py [--out dist/pyodide] [--version 314] [--no-runtime]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pyodide_dist import (RUNTIME_FILES, RUNTIME_WHEELS, WHEEL_CACHE, recipe_depends,  # noqa: E402
                          runtime_dir, wheel_entry)

ROOT = Path(__file__).resolve().parent.parent
CDN = "https://cdn.jsdelivr.net/pyodide/v{version}/full/"
# socketiwa's lock entry depends on these when they are built: what socketiwa.quic / .h3 import
SOCKETIWA_DEPENDS = ("aioquic", "wsproto")
ADAPTER = "socketiwa-adapter.mjs"    # bridge/adapter.mjs, under a name that says whose it is
# Source-date for the socketiwa wheel's zip timestamps: the same checkout gives the same wheel.
SOURCE_DATE_EPOCH = "315532800"


def build_socketiwa_wheel(out: Path) -> Path:
    """socketiwa's pure-Python wheel, built from a private copy of the sources.

    A copy, because setuptools writes build/lib inside the source tree, and build/ is shared
    between checkouts here: two builds at once would mix their files."""
    with tempfile.TemporaryDirectory(prefix="socketiwa-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(ROOT / name, src / name)
        shutil.copytree(ROOT / "pkg", src / "pkg",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        wheels = Path(tmp) / "wheels"
        run = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                              "-w", str(wheels), str(src)], capture_output=True, text=True, env=env)
        if run.returncode != 0:
            sys.exit(f"pyodide_user_dist: building the socketiwa wheel failed:\n{run.stderr}")
        (wheel,) = wheels.glob("socketiwa-*.whl")
        for old in out.glob("socketiwa-*.whl"):
            old.unlink()
        return Path(shutil.copy2(wheel, out / wheel.name))


def our_packages(out: Path, version: str) -> dict[str, dict[str, Any]]:
    """Copy every wheel this folder serves into ``out`` and return their lock entries."""
    built = ROOT / "dist" / "wasm" / ("wheels" if version == "314" else f"wheels-{version}")
    recipes = recipe_depends()
    found = sorted(built.glob("*.whl")) if built.is_dir() else []
    if not any(w.name.startswith("aioquic-") for w in found):
        sys.exit(f"pyodide_user_dist: no aioquic wheel in {built}: run 'bash build-wasm.sh' first")
    packages: dict[str, dict[str, Any]] = {}
    for whl in found:
        entry = wheel_entry(Path(shutil.copy2(whl, out / whl.name)))
        entry["depends"] = recipes.get(entry["name"], [])
        packages[entry["name"]] = entry
    for name, (ver, deps) in RUNTIME_WHEELS.items():
        cached = sorted(WHEEL_CACHE.glob(f"{name}-{ver}-*.whl"))
        if not cached:
            sys.exit(f"pyodide_user_dist: {name} {ver} is not in {WHEEL_CACHE}: "
                     "run 'python scripts/pyodide_dist.py --download' (scripts/setup.sh does)")
        packages[name] = wheel_entry(Path(shutil.copy2(cached[0], out / cached[0].name)), deps)
    entry = wheel_entry(build_socketiwa_wheel(out))
    entry["depends"] = [d for d in SOCKETIWA_DEPENDS if d in packages]
    packages[entry["name"]] = entry
    return packages


def canonical(name: str) -> str:
    """PEP 503 name: Pyodide's lock keys are canonical, its ``depends`` lists are not."""
    return re.sub(r"[-_.]+", "-", name).lower()


def merged_lock(upstream: dict[str, Any], ours: dict[str, dict[str, Any]], cdn: str) -> dict[str, Any]:
    """Pyodide's lock with our packages added (relative file names) and theirs made absolute.

    An upstream package is replaced when ours has its name or installs a module of the same
    name (cryptography and certifi by socketiwa-crypto, h11 by the pinned h11); whoever
    depended on a replaced package depends on its replacement."""
    provider = {imp: name for name, e in ours.items() for imp in e["imports"]}
    replaced: dict[str, str] = {}
    for name, e in upstream["packages"].items():
        if name in ours:
            replaced[name] = name
        else:
            owners = {provider[i] for i in e.get("imports", []) if i in provider}
            if owners:
                replaced[name] = sorted(owners)[0]
    packages: dict[str, dict[str, Any]] = {}
    for name, e in upstream["packages"].items():
        if name in replaced:
            continue
        e = dict(e)
        if "://" not in e["file_name"]:
            e["file_name"] = cdn + e["file_name"]
        e["depends"] = sorted({replaced.get(canonical(d), d) for d in e.get("depends", [])})
        packages[name] = e
    packages.update(ours)
    return {"info": upstream["info"], "packages": packages}


def assemble(out: Path, version: str = "314", runtime: bool = True) -> Path:
    src = runtime_dir(version)
    if not (src / "pyodide-lock.json").exists():
        sys.exit(f"pyodide_user_dist: {src} is missing: run scripts/setup.sh (npm install) first")
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("*.whl"), *(out / f for f in RUNTIME_FILES), out / ADAPTER]:
        stale.unlink(missing_ok=True)   # nothing from an earlier build may linger next to the lock
    if runtime:
        for f in RUNTIME_FILES:
            if f != "pyodide-lock.json":
                shutil.copy2(src / f, out / f)
    shutil.copy2(ROOT / "bridge" / "adapter.mjs", out / ADAPTER)
    upstream = json.loads((src / "pyodide-lock.json").read_text())
    pyodide_version = json.loads((src / "package.json").read_text())["version"]
    lock = merged_lock(upstream, our_packages(out, version), CDN.format(version=pyodide_version))
    (out / "pyodide-lock.json").write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "dist" / "pyodide")
    ap.add_argument("--version", default="314", choices=("314", "315"), help="the Pyodide runtime")
    ap.add_argument("--no-runtime", action="store_true",
                    help="wheels and lock only (the page brings its own Pyodide runtime)")
    args = ap.parse_args()
    print(assemble(args.out, args.version, runtime=not args.no_runtime))


if __name__ == "__main__":
    main()
