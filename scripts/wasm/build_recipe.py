"""(inside the toolchain chroot, with pyodide-build's venv) Build one recipe's wheel for Pyodide.

Reads recipes/<name>/meta.yaml, fetches the source (a URL checked against its sha256, cached
across runs) or takes a path relative to the recipe, and runs pyodide-build's out-of-tree
`pyodide build` against a PYODIDE_ROOT made by xbuildenv.sh. Then checks the wheel: it must hold
every top-level name and carry the Pyodide ABI tag asked for.

usage: build_recipe.py RECIPE_DIR OUTDIR --pyodide-root DIR --sdist-cache DIR --var KEY=VALUE...
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import requests
from ruamel.yaml import YAML


def fail(message: str) -> None:
    sys.exit(f"build_recipe.py: {message}")


def fetch(url: str, sha256: str, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / url.rsplit("/", 1)[1]
    if not target.exists() or hashlib.sha256(target.read_bytes()).hexdigest() != sha256:
        response = requests.get(url, timeout=60)
        if response.status_code != 200:
            fail(f"download failed ({response.status_code}): {url}")
        digest = hashlib.sha256(response.content).hexdigest()
        if digest != sha256:
            fail(f"sha256 mismatch for {url}: got {digest}, recipe says {sha256}")
        target.write_bytes(response.content)
    return target


def unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (top,) = [p for p in into.iterdir() if p.is_dir()]
    return top


HOST_ABI3 = re.compile(r"\.abi3-[A-Za-z0-9_]+-[A-Za-z0-9_-]+\.so$")


def fix_abi3_names(wheel: Path) -> None:
    """setuptools under a Python >= 3.15 build interpreter names limited-API extensions after
    the build machine (``x.abi3-x86_64-linux-gnu.so``) and pyodide-build 0.39.2 keeps that name,
    which Pyodide would never import. Rename to ``x.abi3.so`` and rewrite RECORD to match."""
    with zipfile.ZipFile(wheel) as zin:
        items = [(info, zin.read(info.filename)) for info in zin.infolist()]
    renames = {i.filename: HOST_ABI3.sub(".abi3.so", i.filename) for i, _ in items if HOST_ABI3.search(i.filename)}
    if not renames:
        return
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in items:
            if info.filename.endswith(".dist-info/RECORD"):
                rows = [line.split(",", 1) for line in data.decode().splitlines()]
                data = "".join(f"{renames.get(r[0], r[0])},{r[1] if len(r) > 1 else ''}\n" for r in rows).encode()
            zout.writestr(renames.get(info.filename, info.filename), data)
    tmp.replace(wheel)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("recipe", type=Path)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--pyodide-root", required=True)
    ap.add_argument("--sdist-cache", type=Path, required=True)
    ap.add_argument("--abi", required=True, help="Pyodide ABI the wheel must be tagged for, e.g. 2026_0")
    ap.add_argument("--var", action="append", default=[], help="KEY=VALUE substituted into build.env")
    args = ap.parse_args()

    meta = YAML(typ="safe").load((args.recipe / "meta.yaml").read_text())
    name, version = meta["package"]["name"], str(meta["package"]["version"])
    variables = dict(v.split("=", 1) for v in args.var)
    env = dict(os.environ, PYODIDE_ROOT=args.pyodide_root)
    build = meta.get("build") or {}
    for key, value in build.get("env", {}).items():
        env[key] = value.format(**variables)
    if build.get("cflags"):  # as in Pyodide recipes; relative paths are from the source root
        env["CFLAGS"] = f"{env.get('CFLAGS', '')} {build['cflags']}".strip()

    with tempfile.TemporaryDirectory() as tmp:
        source = meta["source"]
        if "url" in source:
            src = unpack(fetch(source["url"], source["sha256"], args.sdist_cache), Path(tmp))
        else:
            src = Path(tmp) / name
            shutil.copytree((args.recipe / source["path"]).resolve(), src,
                            ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", "*.so"))
        out = Path(tmp) / "out"
        result = subprocess.run([str(Path(sys.executable).parent / "pyodide"), "build", "--outdir", str(out), "."],
                                cwd=src, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
            fail(f"pyodide build failed for {name} {version}")
        wheels = [w for w in out.glob("*.whl") if f"pyemscripten_{args.abi}_" in w.name]
        if len(wheels) != 1:
            fail(f"{name}: expected one pyemscripten_{args.abi} wheel, got {[w.name for w in out.glob('*.whl')]}")
        wheel = wheels[0]
        fix_abi3_names(wheel)
        with zipfile.ZipFile(wheel) as zf:
            tops = {n.split("/")[0].removesuffix(".py") for n in zf.namelist()}
            extensions = [n for n in zf.namelist() if n.endswith(".so")]
        missing = [t for t in meta["package"].get("top-level", []) if t not in tops]
        if missing:
            fail(f"{name}: wheel lacks top-level {missing}")
        bad = [e for e in extensions if not e.endswith((".abi3.so", "-wasm32-emscripten.so"))]
        if bad:
            fail(f"{name}: extension modules with a host suffix (would not import): {bad}")
        args.outdir.mkdir(parents=True, exist_ok=True)
        for old in args.outdir.glob(f"{wheel.name.split('-')[0]}-*.whl"):
            old.unlink()
        shutil.copy2(wheel, args.outdir / wheel.name)
        print(f"{wheel.name} ({wheel.stat().st_size // 1024} KiB, {len(extensions)} extension modules)")


if __name__ == "__main__":
    main()
