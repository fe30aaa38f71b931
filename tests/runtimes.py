"""Write a test once, run it on CPython, in Pyodide under Node, and in the real Chromium IWA.

    @everywhere
    async def test_udp_echo(selenium, udp_echo):
        import socketiwa
        ...

The body is an ``async def`` whose first parameter is ``selenium`` (pytest-pyodide's convention:
``None`` when the body runs); the other parameters are pytest fixtures resolved on the host
(peers on loopback, ports, payloads) and must be picklable. On CPython the body runs in this
process under asyncio; elsewhere pytest-pyodide's ``run_in_pyodide`` ships its source to the
runtime. Only the function travels: import inside the body.
"""
from __future__ import annotations

import ast
import asyncio
import inspect
import os
import subprocess
import sys
from copy import deepcopy
from pathlib import Path

import pytest
from pytest_pyodide import run_in_pyodide
from pytest_pyodide.hook import ORIGINAL_MODULE_ASTS, REWRITTEN_MODULE_ASTS

ROOT = Path(__file__).resolve().parent.parent
ALL_RUNTIMES = ("cpython", "node", "iwa")
# What Pyodide's `js` module sees under Node (pytest-pyodide runs it in a vm context).
NODE_GLOBALS = ["socketiwaBridge", "TCPSocket", "UDPSocket", "TCPServerSocket",
                "MulticastController", "directSocketsHarness", "DOMException"]


def _register_module_ast(module) -> None:
    # pytest-pyodide only records modules whose source mentions its decorator by name; record
    # ours explicitly so the test modules need no such marker.
    path = module.__file__
    if path in ORIGINAL_MODULE_ASTS:
        return
    source = Path(path).read_bytes()
    tree = ast.parse(source, filename=path)
    ORIGINAL_MODULE_ASTS[path] = tree
    rewritten = deepcopy(tree)
    try:
        from _pytest.assertion.rewrite import rewrite_asserts
        rewrite_asserts(rewritten, source, path, None)
    except Exception:  # rewriting is a nicety; plain asserts still fail the test
        rewritten = tree
    REWRITTEN_MODULE_ASTS[path] = rewritten


def everywhere(fn=None, *, timeout: float = 60, only: tuple[str, ...] | None = None,
               packages: tuple[str, ...] = ("socketiwa",), xfail: dict[str, str] | None = None):
    """Turn ``async def body(selenium, *fixtures)`` into a test run on every selected runtime.

    ``xfail`` maps a runtime to the reason a known platform defect makes the test fail there
    (non-strict: it reports XPASS when the platform behaves)."""
    if fn is None:
        return lambda f: everywhere(f, timeout=timeout, only=only, packages=packages, xfail=xfail)
    _register_module_ast(sys.modules[fn.__module__])
    remote = run_in_pyodide(packages=list(packages))(fn)
    params = list(inspect.signature(fn).parameters.values())
    if not params or not params[0].name.startswith("selenium"):
        raise TypeError(f"{fn.__name__}: first parameter must be named 'selenium'")
    fixture_names = [p.name for p in params[1:]]

    def test(runtime_env, **fixtures):
        if only is not None and runtime_env.name not in only:
            pytest.skip(f"runs only on {', '.join(only)}")
        args = [fixtures[n] for n in fixture_names]
        if runtime_env.name == "cpython":
            async def main():
                return await asyncio.wait_for(fn(None, *args), timeout)
            return asyncio.run(main())
        if xfail and runtime_env.name in xfail:
            request_xfail = pytest.mark.xfail(reason=xfail[runtime_env.name], strict=False)
            fixtures["request"].node.add_marker(request_xfail)
        runner = runtime_env.runner
        runner.set_script_timeout(timeout)
        if hasattr(runner, "clean_logs"):
            runner.clean_logs()  # the IWA page's console, collected per test
        try:
            return remote(runner, *args)
        except BaseException:
            logs = getattr(runner, "logs", "")
            if logs:  # shown by pytest under "Captured browser console call" for the failure
                fixtures["request"].node.add_report_section("call", "browser console", logs)
            raise
        finally:
            runner.set_script_timeout(runner.default_timeout)

    test.__name__ = fn.__name__
    test.__qualname__ = fn.__qualname__
    test.__module__ = fn.__module__
    test.__doc__ = fn.__doc__
    test.__signature__ = inspect.Signature(
        [inspect.Parameter("runtime_env", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in [*fixture_names, "request"]])
    # Checked before fixtures start (conftest.pytest_runtest_setup): peers are not started for
    # a test that will skip because its packages were not built for Pyodide.
    test.pytestmark = list(getattr(fn, "pytestmark", [])) + [pytest.mark.pyodide_packages(*packages)]
    return test


_dists: dict[str, Path] = {}


def pyodide_dist(version: str = "314") -> Path:
    """Assemble (once per session) the local Pyodide distribution; see scripts/pyodide_dist.py."""
    if version in _dists:
        return _dists[version]
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "pyodide_dist.py"), "--version", version],
                         check=True, capture_output=True, text=True)
    _dists[version] = Path(out.stdout.strip().splitlines()[-1])
    return _dists[version]


def available_packages(dist: Path) -> set[str]:
    import json
    return set(json.loads((dist / "pyodide-lock.json").read_text())["packages"])


def start_node_runner():
    from pytest_pyodide.config import get_global_config
    from pytest_pyodide.hook import pytest_wrapper
    from pytest_pyodide.runner import NodeRunner

    dist = pyodide_dist()
    pytest_wrapper.pyodide_dist_dir = dist  # where run_in_pyodide looks for pytest/tblib wheels
    config = get_global_config()
    harness = os.environ.get("SOCKETIWA_NODE_HARNESS", str(ROOT / "bridge" / "node" / "register.mjs"))
    # --no-turbo-inlining: Node 20's V8 aborts ("unreachable code" in
    # Deoptimizer::DoComputeBuiltinContinuation, SIGTRAP) deoptimizing an inlined builtin when
    # the wasm heap grows late in a long run (test_backend_push's heap-growth test after 7 other
    # files); with TurboFan's inlining (or TurboFan) off that run passes.
    config.set_flags("node", [f"--import={harness}",
                              f"--import={ROOT / 'bridge' / 'register-adapter.mjs'}",
                              "--no-turbo-inlining"])
    missing = [g for g in NODE_GLOBALS if g not in config.node_extra_globals]
    config.add_node_extra_globals(missing)
    runner = NodeRunner(server_port=1, dist_dir=dist, load_pyodide=True)
    runner.default_timeout = 60
    runner.set_script_timeout(runner.default_timeout)
    return runner


