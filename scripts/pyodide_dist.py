#!/usr/bin/env python3
"""Assemble a local Pyodide distribution for tests and the IWA: build/pyodide-dist/.

npm's ``pyodide`` package has the runtime but none of the package wheels (those normally come
from a CDN, which is unreachable here). This folder holds the runtime files, the wheels we do
have (socketiwa itself; pytest and tblib from PyPI so ``run_in_pyodide`` tests get assertion
rewriting and tracebacks; whatever build-wasm.sh produced in dist/wasm/wheels, with the
dependencies its recipes/*/meta.yaml declare) and a pyodide-lock.json that lists exactly those,
so ``loadPackage`` never reaches for the network.

    python scripts/pyodide_dist.py --download   # once, in setup: fetch the pure wheels from PyPI
    python scripts/pyodide_dist.py              # assemble (fast; tests call this)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SOCKETIWA_CACHE", Path.home() / ".cache" / "socketiwa"))
WHEEL_CACHE = CACHE / "pyodide-pure-wheels"
RUNTIME_FILES = ("pyodide.mjs", "pyodide.js", "pyodide.asm.mjs", "pyodide.asm.wasm",
                 "python_stdlib.zip", "pyodide-lock.json")
# Pure-Python wheels the test harness uses inside Pyodide, at the versions Pyodide's lock lists.
TEST_PACKAGES = ("pytest", "pluggy", "iniconfig", "packaging", "pygments", "tblib")
# Pure-Python wheels socketiwa's optional features load in Pyodide (WebSocket over HTTP/3:
# wsproto), pinned as in requirements-dev.txt: name -> (version, run-time dependencies).
RUNTIME_WHEELS = {"wsproto": ("1.3.2", ["h11"]), "h11": ("0.16.0", [])}


def runtime_dir(version: str = "314") -> Path:
    name = "pyodide" if version == "314" else "pyodide315"
    return ROOT / "node_modules" / name


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_versions(src: Path) -> dict[str, str]:
    packages = json.loads((src / "pyodide-lock.json").read_text())["packages"]
    return {name: packages[name]["version"] for name in TEST_PACKAGES if name in packages}


def download(src: Path) -> None:
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    pins = [f"{n}=={v}" for n, v in lock_versions(src).items()]
    pins += [f"{n}=={v}" for n, (v, _) in RUNTIME_WHEELS.items()]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--platform", "any", "--python-version", "3.14", "-d", str(WHEEL_CACHE), *pins],
                   check=True)


def wheel_entry(path: Path, depends: list[str] | None = None) -> dict:
    """A pyodide-lock.json entry for a wheel, imports read from the wheel's top_level names."""
    name, version = path.name.split("-")[:2]
    imports: set[str] = set()
    with zipfile.ZipFile(path) as zf:
        for n in zf.namelist():
            top = n.split("/")[0]
            if top.endswith((".dist-info", ".data")):
                continue
            imports.add(top[:-3] if top.endswith(".py") else top.split(".")[0])
    return {"name": name.lower().replace("_", "-"), "version": version, "file_name": path.name,
            "install_dir": "site", "sha256": sha256(path), "package_type": "package",
            "imports": sorted(i for i in imports if i.isidentifier()), "depends": depends or [],
            "unvendored_tests": False, "tool": {}}


def recipe_depends() -> dict[str, list[str]]:
    """Run-time dependencies per package, as the Pyodide recipes declare them."""
    import yaml

    depends = {}
    for meta in sorted((ROOT / "recipes").glob("*/meta.yaml")):
        recipe = yaml.safe_load(meta.read_text())
        depends[recipe["package"]["name"]] = list((recipe.get("requirements") or {}).get("run") or [])
    return depends


def build_socketiwa_wheel(out: Path) -> Path:
    for old in out.glob("socketiwa-*.whl"):
        old.unlink()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(ROOT)], check=True, capture_output=True)
    (wheel,) = out.glob("socketiwa-*.whl")
    return wheel


def assemble(version: str = "314", out: Path | None = None, wheels: Path | None = None) -> Path:
    src = runtime_dir(version)
    if not (src / "pyodide.asm.wasm").exists():
        sys.exit(f"{src} is missing: run scripts/setup.sh (npm install) first")
    out = out or ROOT / "build" / f"pyodide-dist-{version}"
    out.mkdir(parents=True, exist_ok=True)
    upstream = json.loads((src / "pyodide-lock.json").read_text())
    for f in RUNTIME_FILES:
        target = out / f
        if not target.exists() or target.stat().st_mtime < (src / f).stat().st_mtime:
            shutil.copy2(src / f, target)

    for stale in out.glob("*.whl"):
        stale.unlink()  # a wheel no longer built must not linger next to the lock
    packages: dict[str, dict] = {}
    wanted = lock_versions(src)
    for name, ver in wanted.items():
        found = list(WHEEL_CACHE.glob(f"{name}-{ver}-*.whl"))
        if not found:
            continue  # not downloaded: run_in_pyodide then runs without assertion rewriting
        shutil.copy2(found[0], out / found[0].name)
        deps = [d for d in upstream["packages"][name].get("depends", []) if d in wanted]
        packages[name] = wheel_entry(out / found[0].name, deps)
    if not all(n in packages for n in ("pytest", "pluggy", "iniconfig", "packaging", "pygments")):
        packages.pop("pytest", None)  # incomplete set: better no pytest than a broken one

    for name, (ver, deps) in RUNTIME_WHEELS.items():
        found = list(WHEEL_CACHE.glob(f"{name}-{ver}-*.whl"))
        if found:  # not downloaded yet: features needing it skip in Pyodide
            shutil.copy2(found[0], out / found[0].name)
            packages[name] = wheel_entry(out / found[0].name, deps)

    built = wheels or ROOT / "dist" / "wasm" / ("wheels" if version == "314" else f"wheels-{version}")
    depends = recipe_depends()
    for whl in sorted(built.glob("*.whl")) if built.is_dir() else []:
        shutil.copy2(whl, out / whl.name)
        entry = wheel_entry(out / whl.name)
        entry["depends"] = depends.get(entry["name"], [])
        packages[entry["name"]] = entry
    for name, entry in packages.items():
        missing = [d for d in entry["depends"] if d not in packages and d != "socketiwa"]
        if missing:  # e.g. aioquic without its crypto provider: drop it rather than fail at load
            print(f"pyodide_dist: leaving out {name}: its dependencies {missing} were not built",
                  file=sys.stderr)
    packages = {n: e for n, e in packages.items()
                if all(d in packages or d == "socketiwa" for d in e["depends"])}
    entry = wheel_entry(build_socketiwa_wheel(out))
    packages[entry["name"]] = entry

    lock = {"info": upstream["info"], "packages": packages}
    (out / "pyodide-lock.json").write_text(json.dumps(lock, indent=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--download", action="store_true", help="fetch the pure-Python test wheels first")
    ap.add_argument("--version", default="314", choices=("314", "315"))
    ap.add_argument("--wheels", type=Path, help="built wheels to include (default dist/wasm/wheels[-315])")
    args = ap.parse_args()
    if args.download:
        download(runtime_dir(args.version))
    print(assemble(args.version, wheels=args.wheels))


if __name__ == "__main__":
    main()
