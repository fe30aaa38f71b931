"""The type check CI runs: mypy, strict, on pkg/ (configuration in pyproject.toml).

The transport core is being rewritten (issue 9) and is exempt through one temporary override;
these tests keep that list from growing and prove the check is strict where it applies.
"""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The modules the temporary override may name: the part of the transport core still being
# rewritten (issue 9). Delete names here as they pass strict.
CORE_BEING_REWRITTEN = {
    "socketiwa.backends.directsockets",
}


def mypy(*args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache), *args], cwd=ROOT,
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
    for Linux (the browser-only branches of _webloop, the backend choice), so check that too."""
    out = mypy("--platform", "emscripten", cache=tmp_path / "cache")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("Success: no issues found"), out.stdout


def test_only_the_core_is_exempt_and_only_for_now():
    cfg = config()
    assert cfg["strict"] is True and cfg["files"] == ["pkg/socketiwa"]
    exempt = [o for o in cfg.get("overrides", []) if o.get("ignore_errors")]
    assert len(exempt) == 1, exempt
    assert set(exempt[0]["module"]) <= CORE_BEING_REWRITTEN, set(exempt[0]["module"]) - CORE_BEING_REWRITTEN
    # the API reference's docstring exemption names the same modules (scripts/apidoc.py)
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import apidoc
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert set(apidoc.DOCSTRINGS_PENDING) == set(exempt[0]["module"])


def test_the_configuration_is_strict(tmp_path):
    """What strict adds (an untyped def, a bare generic) fails under the project's settings."""
    sample = tmp_path / "sample.py"
    sample.write_text("def untyped(x):\n    return x\n\n\ndef bare(items: list) -> int:\n    return len(items)\n")
    out = mypy("--config-file", str(ROOT / "pyproject.toml"), str(sample), cache=tmp_path / "cache")
    assert out.returncode == 1, out.stdout
    assert "[no-untyped-def]" in out.stdout and "[type-arg]" in out.stdout
