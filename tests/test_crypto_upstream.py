"""aioquic's own test suite (681 tests in 1.7.2) run on the crypto provider, on CPython.

crypto/upstream/run_aioquic_tests.py runs it in a subprocess whose `cryptography`, `OpenSSL`,
`service_identity` and `certifi` are the provider's alias packages; the certificates the tests
generate come from the real `cryptography` in a helper process. The suite's sources come from
aioquic's sdist on PyPI, cached by crypto/upstream/fetch_aioquic_tests.sh (build-wasm.sh runs it
through crypto/build_native.sh: the tests themselves run without network).

Every test must pass except those listed in EXPECTED_NOT_PASSING, each for a stated reason; all
the reasons come down to X448 and Ed448, which AWS-LC lacks. A control run proves it: the same
tests give the same outcomes on the real `cryptography` once its default_backend() reports X448
and Ed448 unsupported, as the provider's does.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROVIDER = ROOT / "build" / "crypto-native"
RUNNER = ROOT / "crypto" / "upstream" / "run_aioquic_tests.py"
FETCH = ROOT / "crypto" / "upstream" / "fetch_aioquic_tests.sh"
if not (PROVIDER / "socketiwa_crypto").is_dir():
    pytest.skip("crypto provider not built for this host: run build-wasm.sh (or crypto/build_native.sh)",
                allow_module_level=True)

AIOQUIC_VERSION = "1.7.2"
UPSTREAM_TOTAL = 681
NO_ED448 = "AWS-LC has no Ed448: loading the test's Ed448 key raises UnsupportedAlgorithm"
EXPECTED_NOT_PASSING = {
    "tests.test_asyncio.HighLevelTest.test_connect_and_serve_with_ed448_certificate": ("error", NO_ED448),
    "tests.test_tls.ContextTest.test_handshake_with_ed448_certificate": ("error", NO_ED448),
    "tests.test_tls.ContextTest.test_handshake_with_x448":
        ("skip", "aioquic skips it itself: default_backend().x448_supported() is False (AWS-LC has no X448)"),
    "tests.test_connection.QuicConnectionTimelineTest.test_connect_with_0rtt_and_lost_client_first_flight":
        ("fail", "asserts exact byte counts that assume the ClientHello offers X448 and Ed448 "
                 "(492 != 684 bytes, the same on the real cryptography without them)"),
}


@pytest.fixture(scope="module")
def upstream_tests() -> Path:
    installed = importlib.metadata.version("aioquic")
    assert installed == AIOQUIC_VERSION, f"EXPECTED_NOT_PASSING is for aioquic {AIOQUIC_VERSION}, not {installed}"
    cache = Path(os.environ.get("SOCKETIWA_CACHE", Path.home() / ".cache" / "socketiwa"))
    tests_dir = cache / "aioquic-tests" / AIOQUIC_VERSION / "tests"
    if not (tests_dir / "utils.py").is_file():
        out = subprocess.run(["bash", str(FETCH), AIOQUIC_VERSION], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, (f"aioquic's tests are not cached and could not be downloaded (run "
                                     f"`bash {FETCH.relative_to(ROOT)}` with network):\n{out.stderr[-2000:]}")
    return tests_dir


def _run(args: list[str], out_json: Path) -> dict[str, str]:
    proc = subprocess.run([sys.executable, str(RUNNER), *args[:2], str(out_json), *args[2:]], capture_output=True,
                          text=True, timeout=600, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out_json.is_file(), f"runner failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(out_json.read_text())["outcomes"]


@pytest.fixture(scope="module")
def provider_outcomes(upstream_tests, tmp_path_factory) -> dict[str, str]:
    return _run([str(PROVIDER), str(upstream_tests)], tmp_path_factory.mktemp("upstream") / "provider.json")


def test_upstream_suite_passes_on_the_provider(provider_outcomes):
    counts = Counter(provider_outcomes.values())
    not_passing = {test: outcome for test, outcome in provider_outcomes.items() if outcome != "pass"}
    unexplained = {t: o for t, o in not_passing.items() if EXPECTED_NOT_PASSING.get(t, (None,))[0] != o}
    assert not unexplained, f"not passing and not in EXPECTED_NOT_PASSING: {unexplained}"
    assert len(provider_outcomes) == UPSTREAM_TOTAL, counts
    assert set(not_passing) == set(EXPECTED_NOT_PASSING), "listed but passing now: update the list"
    assert counts["pass"] == UPSTREAM_TOTAL - len(EXPECTED_NOT_PASSING) == 677, counts


def test_every_difference_is_x448_or_ed448(upstream_tests, tmp_path):
    """The listed tests do the same on the real cryptography when X448/Ed448 are switched off."""
    control = _run(["--real-without-448", str(upstream_tests), *EXPECTED_NOT_PASSING],
                   tmp_path / "control.json")
    assert control == {test: outcome for test, (outcome, _) in EXPECTED_NOT_PASSING.items()}
