"""The type check CI runs: mypy, strict, on pkg/ (configuration in pyproject.toml), for Linux
and for Pyodide (emscripten). No module is exempt: these tests keep it so and prove the check is
strict.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def mypy(*args: str, cache: Path, root: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache), *args], cwd=root,
                          capture_output=True, text=True, timeout=600)


def config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]


def test_mypy_strict_passes_on_pkg(tmp_path):
    out = mypy(cache=tmp_path / "cache")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("Success: no issues found"), out.stdout
    assert (ROOT / "pkg" / "socketiwa" / "py.typed").exists()     # users' type checkers read ours


def test_mypy_strict_passes_on_pkg_as_pyodide(tmp_path):
    """As Pyodide runs it: mypy skips code under ``sys.platform == "emscripten"`` when checking
    for Linux (the browser-only branches of _webloop, the backend choice), so check that too.
    directsockets and _webloop are checked in both runs (they import no platform-only stubs:
    ``js``/``pyodide`` are Any here)."""
    out = mypy("--platform", "emscripten", cache=tmp_path / "cache")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("Success: no issues found"), out.stdout


def test_only_the_pyodide_check_sees_the_browser_backend_break_its_interface(tmp_path):
    """Why both runs: only under ``sys.platform == "emscripten"`` does get_backend() hand out
    directsockets as a Backend, so only that run holds the module to the interface."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "pkg" / "socketiwa", copy / "pkg" / "socketiwa",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy)
    backend = copy / "pkg" / "socketiwa" / "backends" / "directsockets.py"
    good = "def set_multicast_ttl(self, ttl: int) -> None:"  # (its body only raises)
    assert good in backend.read_text()
    backend.write_text(backend.read_text().replace(good, good.replace("ttl: int", "ttl: str")))
    linux = mypy(cache=tmp_path / "cache-linux", root=copy)
    assert linux.returncode == 0, linux.stdout
    pyodide = mypy("--platform", "emscripten", cache=tmp_path / "cache-pyodide", root=copy)
    assert pyodide.returncode == 1, pyodide.stdout
    assert "backends/__init__.py" in pyodide.stdout and "DirectUdp" in pyodide.stdout, pyodide.stdout


def test_no_module_is_exempt():
    cfg = config()
    assert cfg["strict"] is True and cfg["files"] == ["pkg/socketiwa"]
    exempt = [o for o in cfg.get("overrides", []) if o.get("ignore_errors")]
    assert exempt == [], exempt
    # nor from the API reference's docstring rule (scripts/apidoc.py)
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import apidoc
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert set(apidoc.DOCSTRINGS_PENDING) == set()


def test_the_configuration_is_strict(tmp_path):
    """What strict adds (an untyped def, a bare generic) fails under the project's settings."""
    sample = tmp_path / "sample.py"
    sample.write_text("def untyped(x):\n    return x\n\n\ndef bare(items: list) -> int:\n    return len(items)\n")
    out = mypy("--config-file", str(ROOT / "pyproject.toml"), str(sample), cache=tmp_path / "cache")
    assert out.returncode == 1, out.stdout
    assert "[no-untyped-def]" in out.stdout and "[type-arg]" in out.stdout
