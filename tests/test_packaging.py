"""Packaging for other people's pages and programs.

- dist/pyodide (scripts/pyodide_user_dist.py, run by build-wasm.sh): a folder a user serves next
  to their page; Pyodide under Node loads socketiwa from it with every network fetch refused.
- the API reference (scripts/apidoc.py): pdoc builds it and every public name has a docstring.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILT_WHEELS = ROOT / "dist" / "wasm" / "wheels"
OURS = {"socketiwa", "aioquic", "pylsqpack", "socketiwa-crypto", "wsproto", "h11"}

# Loads Pyodide from RUNTIME (its indexURL), optionally with LOCK as lockFileURL, with fetch()
# replaced by a refusal, so anything not on disk fails; sets up socketiwa's adapter from ADAPTER
# as a page would; then loadPackage("socketiwa") and the Python in CODE (async). Prints one JSON
# line: what was loaded, what Python printed, refused fetches. Direct Sockets themselves come
# from the Node harness (bridge/node, node --import), standing in for Chromium's.
LOADER = r"""
import path from "node:path";
import { pathToFileURL } from "node:url";
const refused = [];
globalThis.fetch = async (url) => { refused.push(String(url)); throw new Error(`network disabled: ${url}`); };
const { RUNTIME, LOCK, CODE, ADAPTER } = process.env;
const { createBridge } = await import(pathToFileURL(ADAPTER).href);
globalThis.socketiwaBridge = createBridge(globalThis);
const { loadPyodide } = await import(pathToFileURL(path.join(RUNTIME, "pyodide.mjs")).href);
const options = { indexURL: RUNTIME + "/" };
if (LOCK) options.lockFileURL = LOCK;
const pyodide = await loadPyodide(options);
const messages = [];
const keep = (m) => messages.push(m);
await pyodide.loadPackage("socketiwa", { messageCallback: keep, errorCallback: keep });
let out = "";
pyodide.setStdout({ batched: (s) => { out += s + "\n"; } });
let error = null;
try { await pyodide.runPythonAsync(CODE); } catch (e) { error = String(e.message ?? e); }
console.log(JSON.stringify({ loaded: pyodide.loadedPackages, out, error, refused, messages }));
"""

CHECK = """
import json, socketiwa, socketiwa.quic, socketiwa.h3, socketiwa.h3.websocket, aioquic, wsproto
from importlib.metadata import version
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
aead = ChaCha20Poly1305(bytes(range(32)))
sealed = aead.encrypt(b"n" * 12, b"over the user's own lock", b"ad")
# a datagram over loopback, through the folder's adapter and the Direct Sockets backend
server = await socketiwa.create_udp(local_address="127.0.0.1", local_port=0)
client = await socketiwa.create_udp(remote_address="127.0.0.1", remote_port=server.local_port)
await client.send(b"ping from the user's page")
got = await server.receive(timeout=10)
await client.close(); await server.close()
print(json.dumps({"file": socketiwa.__file__, "version": version("socketiwa"),
                  "opened": aead.decrypt(b"n" * 12, sealed, b"ad").decode(),
                  "sealed": len(sealed), "backend": socketiwa.backend_name(), "udp": got.data.decode()}))
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def user_dist(tmp_path_factory) -> Path:
    if not shutil.which("node"):
        pytest.fail("node is not installed: run scripts/setup.sh")
    if not list(BUILT_WHEELS.glob("aioquic-*.whl")):
        pytest.fail("dist/wasm/wheels has no aioquic wheel: run 'bash build-wasm.sh'")
    out = tmp_path_factory.mktemp("user-dist") / "pyodide"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "pyodide_user_dist.py"), "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return out


@pytest.fixture
def node_runtime(request):
    if "node" not in request.config.getoption("--runtimes"):
        pytest.skip("the node runtime is not selected (--runtimes)")


def load_in_node(runtime: Path, adapter: Path, lock: Path | None = None) -> dict:
    env = dict(os.environ, RUNTIME=str(runtime), LOCK=str(lock or ""), CODE=CHECK, ADAPTER=str(adapter))
    run = subprocess.run(["node", f"--import={ROOT / 'bridge' / 'node' / 'register.mjs'}", "--input-type=module",
                          "-e", LOADER], env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def check_loaded(result: dict) -> None:
    assert result["error"] is None, result
    assert result["refused"] == [], result["refused"]           # nothing came from the network
    assert set(result["loaded"]) == OURS, result["loaded"]      # socketiwa's closure, nothing else
    printed = json.loads(result["out"].strip().splitlines()[-1])
    assert printed["file"].startswith("/lib/python3.14/site-packages/socketiwa/"), printed
    assert printed["opened"] == "over the user's own lock" and printed["sealed"] == 24 + 16
    assert printed["backend"] == "directsockets" and printed["udp"] == "ping from the user's page"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{printed["version"]}"' in pyproject


def test_user_dist_lock_lists_its_wheels_and_keeps_pyodides_packages(user_dist):
    lock = json.loads((user_dist / "pyodide-lock.json").read_text())
    upstream = json.loads((ROOT / "node_modules" / "pyodide" / "pyodide-lock.json").read_text())
    assert lock["info"] == upstream["info"]
    packages = lock["packages"]
    for name in OURS:                      # ours: a file in this folder, hash and imports right
        entry = packages[name]
        wheel = user_dist / entry["file_name"]
        assert "/" not in entry["file_name"] and wheel.is_file(), entry
        assert entry["sha256"] == sha256(wheel)
        with zipfile.ZipFile(wheel) as zf:
            tops = {n.split("/")[0] for n in zf.namelist()}
        assert all(i in tops or f"{i}.py" in tops for i in entry["imports"]), (name, entry["imports"], tops)
        assert all(d in packages for d in entry["depends"]), entry
    assert packages["socketiwa"]["depends"] == ["aioquic", "wsproto"]
    assert set(packages["aioquic"]["depends"]) == {"pylsqpack", "socketiwa-crypto"}
    assert sorted(p.name for p in user_dist.glob("*.whl")) == sorted(packages[n]["file_name"] for n in OURS)
    # Pyodide's own packages stay loadable (from its CDN), except the ones whose modules the
    # crypto provider installs; their dependents get the provider instead.
    assert "cryptography" not in packages and "certifi" not in packages
    assert packages["requests"]["depends"] == sorted(
        {"socketiwa-crypto" if d == "certifi" else d for d in upstream["packages"]["requests"]["depends"]})
    version = json.loads((ROOT / "node_modules" / "pyodide" / "package.json").read_text())["version"]
    assert packages["numpy"]["file_name"] == (f"https://cdn.jsdelivr.net/pyodide/v{version}/full/"
                                              + upstream["packages"]["numpy"]["file_name"])
    assert len(packages) == len(upstream["packages"]) - 3 + len(OURS)   # cryptography, certifi, h11 replaced
    for name, entry in packages.items():   # every dependency resolves inside the lock
        assert all(re.sub(r"[-_.]+", "-", d).lower() in packages for d in entry["depends"]), (name, entry)


def test_user_dist_loads_offline_as_one_folder(user_dist, node_runtime):
    """The folder alone: loadPyodide({indexURL: folder}) finds runtime, lock and wheels in it."""
    check_loaded(load_in_node(user_dist, user_dist / "socketiwa-adapter.mjs"))


def test_user_dist_lock_with_a_runtime_from_elsewhere(user_dist, tmp_path, node_runtime):
    """The page brings its own Pyodide (npm's package here) and points lockFileURL at ours:
    the wheels resolve against the lock's folder. --no-runtime gives just wheels and lock."""
    lock_only = tmp_path / "lock-only"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "pyodide_user_dist.py"), "--out",
                          str(lock_only), "--no-runtime"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert not (lock_only / "pyodide.asm.wasm").exists()
    assert (lock_only / "socketiwa-adapter.mjs").read_bytes() == (ROOT / "bridge" / "adapter.mjs").read_bytes()
    assert sha256(lock_only / "pyodide-lock.json") == sha256(user_dist / "pyodide-lock.json")  # same inputs
    check_loaded(load_in_node(ROOT / "node_modules" / "pyodide", lock_only / "socketiwa-adapter.mjs",
                              lock_only / "pyodide-lock.json"))


# ---- the API reference (scripts/apidoc.py, pdoc)


def load_apidoc():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import apidoc
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return apidoc


# Docstrings are reStructuredText; pdoc leaves literal blocks (``Example::`` + an indented
# block) as written, so apidoc.py turns them into code blocks.
def test_literal_blocks_become_code_fences_as_rest_reads_them():
    convert = load_apidoc().rst_literal_blocks
    doc = ("Server::\n\n    async def f():\n        pass\n\n    f()\n\nAfter.\n\n"
           "Expanded form ::\n\n  x = 1\n\n::\n\n  y = 2\n\n.. note::\n   kept\n\nEnds with :: but no block.")
    assert convert(doc).split("\n") == [
        "Server:", "", "```python", "async def f():", "    pass", "", "f()", "```", "", "After.", "",
        "Expanded form", "", "```python", "x = 1", "```", "",
        "```python", "y = 2", "```", "",
        ".. note::", "   kept", "", "Ends with :: but no block."]


def test_built_page_shows_a_literal_block_as_code(tmp_path, monkeypatch):
    apidoc = load_apidoc()
    monkeypatch.setattr(apidoc, "PUBLIC_MODULES", ("socketiwa.h3.webtransport",))
    page = apidoc.build(tmp_path).parent / "socketiwa" / "h3" / "webtransport.html"
    html = page.read_text()
    module_doc = html[html.index('<div class="docstring">'):html.index('class="view-source-toggle')]
    assert "::" not in re.sub(r"<[^>]+>", "", module_doc)           # no reST marker left
    assert "<p>Server:</p>" in module_doc and "<p>Client:</p>" in module_doc
    code = module_doc[module_doc.index("<pre>"):module_doc.index("</pre>")]
    assert "on_session" in code and 'class="k">async</span>' in code  # highlighted as Python


def test_api_reference_builds():
    """Built where the README says (build/apidoc), so a CI run leaves it there to read."""
    out = ROOT / "build" / "apidoc"
    shutil.rmtree(out, ignore_errors=True)
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "apidoc.py"), "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "docstrings present" in run.stdout
    for module in load_apidoc().PUBLIC_MODULES:
        page = out / (module.replace(".", "/") + ".html")
        assert page.is_file(), page
    webtransport = (out / "socketiwa" / "h3" / "webtransport.html").read_text()
    assert "accept_bidirectional_stream" in webtransport
    assert "The next bidirectional stream the peer opened" in webtransport   # the docstring itself
    assert (out / "search.js").is_file()


def test_api_reference_refuses_a_public_name_without_docstring(tmp_path, monkeypatch):
    apidoc = load_apidoc()
    (tmp_path / "undocumented_mod.py").write_text(
        '"""A module."""\n\n'
        'def documented():\n    """Yes."""\n\n'
        'def bare():\n    pass\n\n'
        'def _private():\n    pass\n\n'
        'class Thing:\n    """A thing."""\n\n'
        '    def method(self):\n        pass\n\n'
        '    def __repr__(self):\n        return "t"\n\n'
        '    @property\n    def size(self):\n        """Its size."""\n        return 1\n\n'
        'class Child(Thing):\n    """Overrides keep the base documentation."""\n\n'
        '    @property\n    def size(self):\n        return 2\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(apidoc, "PUBLIC_MODULES", ("undocumented_mod",))
    missing, skipped = apidoc.missing_docstrings()
    assert sorted(missing) == ["undocumented_mod.Thing.method", "undocumented_mod.bare"]
    assert skipped == 0
