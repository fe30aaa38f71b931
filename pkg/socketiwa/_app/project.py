"""A user's socketiwa app: its folder, its metadata, and how it is built into an IWA.

An app folder holds ``main.py`` (the program), ``pyproject.toml`` (``[project]`` name, version,
description, dependencies; ``[tool.socketiwa]`` icon and permissions) and an icon. ``build``:

1. resolves the dependencies: those the Pyodide runtime ships are loaded from it, the rest must
   resolve to pure-Python wheels, downloaded now (an IWA cannot fetch code at run time) and
   pinned with their hashes in ``socketiwa.lock`` so rebuilds use the same files;
2. stages the app (its code as a zip with fixed timestamps, the wheels, ``app.json``, the web
   app manifest with the permissions policy, the icon) on top of the socketiwa shell;
3. has iwa-shell/build.mjs lay out the dev-mode folder and sign the ``.swbn`` with the app's key
   (made on first use in ~/.config/socketiwa/keys, outside the app's tree).

Same inputs (code, lock, key, runtime) give the same bundle, byte for byte.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import SocketIwaError

PYODIDE_RUNTIME = "314"
PYODIDE_PYTHON = "3.14"
# What an app may ask for in [tool.socketiwa] permissions -> the manifest's permissions_policy.
PERMISSIONS = ("direct-sockets", "direct-sockets-multicast", "local-network", "loopback-network")
# Chromium 150 gates private-address sockets behind its own policy feature; 156 ignores it.
NETWORK_PERMISSIONS = ("local-network", "loopback-network")
# Browser permissions granted at install by `socketiwa run` for each manifest permission.
GRANTS = {"local-network": "localNetwork", "loopback-network": "loopbackNetwork"}
# Not app code: anywhere in the tree, and at its top the build output.
EXCLUDED_DIRS = {"__pycache__", "venv", "node_modules"}
EXCLUDED_TOP_DIRS = {"build"}
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class AppError(SocketIwaError):
    """The app folder, its metadata, its dependencies or the toolchain is not usable; the
    message names the problem and the fix in one line."""


Progress = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


def toolkit_root() -> Path:
    """The socketiwa source tree (iwa-shell, node_modules, the Pyodide runtime).

    An editable install (what scripts/setup.sh does) finds it next to this package; otherwise
    SOCKETIWA_ROOT names it."""
    env = os.environ.get("SOCKETIWA_ROOT")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3])
    for root in candidates:
        if (root / "iwa-shell" / "build.mjs").exists():
            return root
    raise AppError("the socketiwa source tree was not found (it holds the IWA shell and the "
                   "Pyodide runtime): set SOCKETIWA_ROOT=/path/to/socketiwa")


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "socketiwa"


def cache_dir() -> Path:
    return Path(os.environ.get("SOCKETIWA_CACHE", Path.home() / ".cache" / "socketiwa"))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class App:
    root: Path
    name: str
    version: str
    description: str
    dependencies: list[str]
    icon: Path
    permissions: list[str]
    entry: str = "main.py"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return canonical(self.name)

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def swbn(self) -> Path:
        return self.build_dir / f"{self.slug}-{self.version}.swbn"

    @property
    def dev_dir(self) -> Path:
        return self.build_dir / "iwa"

    @property
    def lock_path(self) -> Path:
        return self.root / "socketiwa.lock"

    def key_path(self, override: Path | None = None) -> Path:
        if override:
            # absolute: build.mjs runs in the toolkit's folder, where a relative path would
            # miss the user's key and make a new one in the wrong place
            return override.expanduser().absolute()
        return config_dir() / "keys" / f"{self.slug}.pem"

    @property
    def grants(self) -> list[str]:
        return [GRANTS[p] for p in self.permissions if p in GRANTS]

    def manifest(self, icon_size: tuple[int, int]) -> dict[str, Any]:
        policy = {"cross-origin-isolated": ["self"]}
        for p in self.permissions:
            policy[p] = ["self"]
        if any(p in NETWORK_PERMISSIONS for p in self.permissions) and "direct-sockets" in self.permissions:
            policy["direct-sockets-private"] = ["self"]
        return {
            "name": self.name, "short_name": self.name[:12], "description": self.description,
            "id": "/", "start_url": "/", "scope": "/", "display": "standalone",
            "version": self.version,
            "icons": [{"src": "/icon256.png", "sizes": f"{icon_size[0]}x{icon_size[1]}", "type": "image/png"}],
            "permissions_policy": dict(sorted(policy.items())),
        }


def load_app(folder: Path) -> App:
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise AppError(f"{folder} is not a folder: make an app with 'socketiwa new {folder}'")
    if not (folder / "main.py").is_file():
        raise AppError(f"{folder} has no main.py (the program the app runs): create it, or start "
                       f"from 'socketiwa new DIR'")
    meta_path = folder / "pyproject.toml"
    if not meta_path.is_file():
        raise AppError(f"{folder} has no pyproject.toml (the app's name, version, permissions): "
                       "copy one from 'socketiwa new DIR'")
    try:
        meta = tomllib.loads(meta_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise AppError(f"{meta_path}: not valid TOML ({e}): fix the file") from None
    project = meta.get("project") or {}
    tool = (meta.get("tool") or {}).get("socketiwa") or {}
    name = project.get("name")
    version = str(project.get("version") or "")
    if not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}", name):
        raise AppError(f"{meta_path}: [project] name is missing or not a simple name (letters, "
                       "digits, space, . _ -): set it")
    if not re.fullmatch(r"\d+(\.\d+){0,3}", version):
        raise AppError(f"{meta_path}: [project] version {version!r} must be dotted numbers like "
                       "1.0.0 (Chromium's IWA update rules): set it")
    permissions = list(tool.get("permissions", ["direct-sockets", "local-network", "loopback-network"]))
    unknown = [p for p in permissions if p not in PERMISSIONS]
    if unknown:
        raise AppError(f"{meta_path}: unknown permission(s) {unknown}; choose from {list(PERMISSIONS)}")
    icon = folder / tool.get("icon", "icon.png")
    if not icon.is_file():
        raise AppError(f"{meta_path}: icon {icon.name} not found: add a square PNG (256x256) "
                       "or set [tool.socketiwa] icon")
    deps = project.get("dependencies") or []
    if not all(isinstance(d, str) for d in deps):
        raise AppError(f"{meta_path}: [project] dependencies must be a list of strings")
    return App(root=folder, name=name, version=version, description=str(project.get("description", "")),
               dependencies=list(deps), icon=icon, permissions=permissions, extra=tool)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise AppError(f"{path}: the icon must be a PNG file: convert it")
    return struct.unpack(">II", head[16:24])


# ---- dependencies


@dataclass
class Resolved:
    packages: list[str]          # loaded from the Pyodide runtime (loadPackage)
    wheels: list[Path]           # pure-Python wheels put into the bundle


def _requirement_name(req: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    if not m:
        raise AppError(f"dependency {req!r} is not a valid requirement: fix it in pyproject.toml")
    return canonical(m.group(1))


def _lock_key(app: App, runtime_packages: set[str]) -> str:
    data = json.dumps({"dependencies": sorted(app.dependencies), "python": PYODIDE_PYTHON,
                       "runtime": sorted(runtime_packages)}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pip_download(args: list[str], dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--retries", "1",
           "--only-binary=:all:", "--platform", "any", "--python-version", PYODIDE_PYTHON,
           "--implementation", "py", "--abi", "none", "-d", str(dest), *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode == 0:
        return
    err = out.stderr
    m = re.search(r"No matching distribution found for ([^\s]+)", err)
    unreachable = re.search(r"NewConnectionError|Failed to establish a new connection|"
                            r"Temporary failure in name resolution|Network is unreachable", err)
    if unreachable:
        raise AppError("resolving dependencies needs the package index, which is unreachable: "
                       "connect to the network (or set PIP_INDEX_URL / PIP_FIND_LINKS to a reachable "
                       "index or wheel folder)")
    if m:
        name = m.group(1)
        raise AppError(f"dependency {name} has no pure-Python wheel (it has C extensions not built "
                       f"for Pyodide {PYODIDE_RUNTIME}, ships only source, or is not on the index): "
                       "remove it, or build it with a Pyodide recipe (recipes/) into the runtime")
    last = [line for line in err.strip().splitlines() if line.strip()][-1:] or ["pip failed"]
    raise AppError(f"resolving dependencies with pip failed: {last[0].strip()} (check the "
                   "requirement and your network or PIP_INDEX_URL/PIP_FIND_LINKS)")


def resolve(app: App, runtime: Path, progress: Progress = _quiet) -> Resolved:
    """Split the app's dependencies into runtime packages and downloaded pure-Python wheels,
    using (and writing) socketiwa.lock so a rebuild uses the same wheels."""
    lock_entries = json.loads((runtime / "pyodide-lock.json").read_text())["packages"]
    runtime_packages = {canonical(n) for n in lock_entries}
    from_runtime: list[str] = []
    to_fetch: list[str] = []
    for req in app.dependencies:
        name = _requirement_name(req)
        (from_runtime if name in runtime_packages else to_fetch).append(req)
    packages = sorted({_requirement_name(r) for r in from_runtime} - {"socketiwa"})
    if not to_fetch:
        if app.lock_path.exists():
            app.lock_path.unlink()
        return Resolved(packages, [])

    store = cache_dir() / "app-wheels"
    store.mkdir(parents=True, exist_ok=True)
    key = _lock_key(app, runtime_packages)
    lock = None
    if app.lock_path.exists():
        try:
            lock = json.loads(app.lock_path.read_text())
        except json.JSONDecodeError:
            lock = None
    if lock and lock.get("key") == key:
        wheels = []
        for item in lock["wheels"]:
            path = store / item["file"]
            if not path.exists() or _sha256(path) != item["sha256"]:
                progress(f"downloading {item['file']} (pinned in socketiwa.lock)")
                with tempfile.TemporaryDirectory() as tmp:
                    _pip_download(["--no-deps", f"{item['name']}=={item['version']}"], Path(tmp))
                    got = Path(tmp) / item["file"]
                    if not got.exists() or _sha256(got) != item["sha256"]:
                        raise AppError(f"{item['file']} from the index does not match the hash in "
                                       "socketiwa.lock: delete socketiwa.lock to resolve again")
                    shutil.copy(got, path)
            wheels.append(path)
        return Resolved(packages, wheels)

    progress(f"resolving {len(to_fetch)} dependenc{'y' if len(to_fetch) == 1 else 'ies'} with pip "
             f"(pure-Python wheels for Python {PYODIDE_PYTHON}): {', '.join(to_fetch)}")
    with tempfile.TemporaryDirectory() as tmp:
        _pip_download(to_fetch, Path(tmp))
        got = sorted(Path(tmp).glob("*.whl"))
        items, wheels = [], []
        for whl in got:
            name, version = whl.name.split("-")[:2]
            if canonical(name) in runtime_packages:
                continue  # the runtime has it already (socketiwa, or a package Pyodide ships)
            shutil.copy(whl, store / whl.name)
            wheels.append(store / whl.name)
            items.append({"name": canonical(name), "version": version, "file": whl.name,
                          "sha256": _sha256(whl)})
        for dep in (canonical(w.name.split("-")[0]) for w in got):
            if dep in runtime_packages and dep != "socketiwa" and dep not in packages:
                packages.append(dep)
    app.lock_path.write_text(json.dumps({"key": key, "dependencies": sorted(app.dependencies),
                                         "wheels": items}, indent=1) + "\n")
    return Resolved(sorted(packages), wheels)


# ---- staging and signing


def code_files(app: App) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(app.root):
        top = Path(dirpath) == app.root
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS and not d.startswith(".")
                             and not (top and d in EXCLUDED_TOP_DIRS))
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith((".pyc", ".swbn")) or name == "socketiwa.lock":
                continue
            files.append(Path(dirpath) / name)
    return sorted(files, key=lambda p: p.relative_to(app.root).as_posix())


def write_code_zip(app: App, out: Path) -> int:
    """The app's files as a zip whose bytes depend only on their names and contents."""
    files = code_files(app)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(app.root).as_posix(), ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return len(files)


def stage(app: App, resolved: Resolved, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    (out / "app" / "wheels").mkdir(parents=True)
    (out / ".well-known").mkdir()
    write_code_zip(app, out / "app" / "code.zip")
    wheel_urls = []
    for whl in resolved.wheels:
        shutil.copy(whl, out / "app" / "wheels" / whl.name)
        wheel_urls.append(f"/app/wheels/{whl.name}")
    info = {"name": app.name, "version": app.version, "entry": app.entry, "code": "/app/code.zip",
            "packages": resolved.packages, "wheels": wheel_urls, "grants": app.grants}
    (out / "app" / "app.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    size = png_size(app.icon)
    (out / ".well-known" / "manifest.webmanifest").write_text(json.dumps(app.manifest(size), indent=1) + "\n")
    shutil.copy(app.icon, out / "icon256.png")


def runtime_dist(progress: Progress = _quiet) -> Path:
    """The Pyodide runtime the app ships with: build/pyodide-dist-314's content, assembled into
    the cache with fixed timestamps so the socketiwa wheel in it is the same bytes each time."""
    root = toolkit_root()
    if not (root / "node_modules" / "pyodide" / "pyodide.asm.wasm").exists():
        raise AppError(f"no Pyodide runtime in {root}/node_modules: run 'bash scripts/setup.sh'")
    out = cache_dir() / f"app-runtime-{PYODIDE_RUNTIME}"
    # Reassemble only when an input changed: socketiwa's sources, the Pyodide runtime, the wheels.
    inputs = [p for p in sorted((root / "pkg").rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    inputs += [root / "pyproject.toml", root / "node_modules" / "pyodide" / "pyodide-lock.json"]
    inputs += sorted((root / "dist" / "wasm" / "wheels").glob("*.whl"))
    inputs += sorted((cache_dir() / "pyodide-pure-wheels").glob("*.whl"))
    digest = hashlib.sha256()
    for p in inputs:
        digest.update(str(p).encode() + b"\0" + _sha256(p).encode() + b"\0")
    key = digest.hexdigest()
    stamp = out / ".inputs-sha256"
    if stamp.exists() and stamp.read_text() == key and (out / "pyodide-lock.json").exists():
        return out
    progress("assembling the Pyodide runtime and the socketiwa wheel")
    env = dict(os.environ, SOURCE_DATE_EPOCH="315532800")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import pyodide_dist; "
            "print(pyodide_dist.assemble(sys.argv[2], out=__import__('pathlib').Path(sys.argv[3])))")
    # The tree's own venv has what assembling needs (pyyaml, setuptools for the wheel), also when
    # this CLI was pip-installed elsewhere.
    python = root / ".venv" / "bin" / "python"
    python = python if python.exists() else Path(sys.executable)
    res = subprocess.run([str(python), "-c", code, str(root / "scripts"), PYODIDE_RUNTIME, str(out)],
                         capture_output=True, text=True, env=env, cwd=root)
    if res.returncode:
        tail = (res.stderr.strip().splitlines() or ["?"])[-1]
        raise AppError(f"assembling the Pyodide runtime failed: {tail} (run 'bash scripts/setup.sh')")
    _drop_harness_wheels(out)
    stamp.write_text(key)
    return out


# In the tests' Pyodide distribution for run_in_pyodide only; an app that needs one of them lists
# it as a dependency and gets it from the index like any other pure-Python package.
HARNESS_ONLY = {"pytest", "pluggy", "iniconfig", "pygments", "tblib", "packaging"}


def _drop_harness_wheels(runtime: Path) -> None:
    lock_path = runtime / "pyodide-lock.json"
    lock = json.loads(lock_path.read_text())
    packages = lock["packages"]
    needed = {canonical(d) for name, e in packages.items() if name not in HARNESS_ONLY for d in e.get("depends", [])}
    for name in sorted(HARNESS_ONLY - needed):
        entry = packages.pop(name, None)
        if entry:
            (runtime / entry["file_name"]).unlink(missing_ok=True)
    lock_path.write_text(json.dumps(lock, indent=1))


@dataclass
class BuildResult:
    app: App
    id: str
    origin: str
    swbn: Path | None
    dev_dir: Path
    sha256: str | None
    bytes: int | None
    files: int
    key_path: Path | None
    seconds: float
    resolved: Resolved


def build(folder: Path, key: Path | None = None, sign: bool = True,
          progress: Progress = _quiet) -> BuildResult:
    t0 = time.monotonic()
    app = load_app(folder)
    root = toolkit_root()
    if not shutil.which("node"):
        raise AppError("node (Node.js) is not installed: run 'bash scripts/setup.sh'")
    if not (root / "node_modules" / "wbn-sign").exists():
        raise AppError(f"{root}/node_modules has no wbn-sign: run 'bash scripts/setup.sh'")
    runtime = runtime_dist(progress)
    resolved = resolve(app, runtime, progress)
    stage_dir = app.build_dir / "stage"
    stage(app, resolved, stage_dir)
    key_path = app.key_path(key) if sign else None
    if key_path and not key_path.exists():
        progress(f"making a new signing key for {app.name}: {key_path} (back it up: the app's ID "
                 "is derived from it)")
    progress("laying out the app" + (" and signing the bundle" if sign else ""))
    cmd = ["node", str(root / "iwa-shell" / "build.mjs"), "--dev-dir", str(app.dev_dir),
           "--pyodide-dist", str(runtime), "--overlay", str(stage_dir),
           "--swbn", str(app.swbn) if sign else "none"]
    if key_path:
        cmd += ["--key", str(key_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    if out.returncode:
        lines = [line for line in out.stderr.strip().splitlines() if line.startswith("build.mjs: ")]
        if lines:
            raise AppError(lines[-1][len("build.mjs: "):])
        # An exception build.mjs did not expect: its message, on one line, not Node's trace
        # (e.g. wbn-sign refusing an RSA key: "Only Ed25519 and ECDSA P-256 keys are ...").
        thrown = re.findall(r"^\w*Error: (.+)$", out.stderr, re.M)
        detail = thrown[0] if thrown else " ".join(out.stderr.split())[-300:]
        if key_path and "key" in detail.lower():
            raise AppError(f"the signing key {key_path} cannot sign the bundle: {detail} "
                           "(use an Ed25519 key, or --key with another file)")
        raise AppError(f"iwa-shell/build.mjs failed: {detail}")
    info = json.loads(out.stdout.strip().splitlines()[-1])
    result = BuildResult(app=app, id=info.get("id", ""), origin=info.get("origin", ""),
                         swbn=app.swbn if sign else None, dev_dir=app.dev_dir,
                         sha256=info.get("sha256"), bytes=info.get("bytes"), files=info["files"],
                         key_path=key_path, seconds=time.monotonic() - t0, resolved=resolved)
    if sign:
        (app.build_dir / "bundle.json").write_text(json.dumps(
            {"id": result.id, "origin": result.origin, "swbn": str(app.swbn), "sha256": result.sha256,
             "version": app.version}, indent=1) + "\n")
    return result
