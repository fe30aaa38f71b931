#!/usr/bin/env bash
# aioquic's own test suite (tests/ of its sdist on PyPI), for tests/test_crypto_upstream.py, which
# runs it on the crypto provider. Cached: $SOCKETIWA_CACHE/aioquic-tests/<version>/tests.
# Called by crypto/build_native.sh (so build-wasm.sh fetches it while the network is up: the test
# suite itself runs in a loopback-only namespace) and by the test when the cache is missing.
# usage: bash crypto/upstream/fetch_aioquic_tests.sh [version]   (default: the installed aioquic)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
VERSION=${1:-$($PY -c 'import importlib.metadata as m; print(m.version("aioquic"))')}
CACHE=${SOCKETIWA_CACHE:-$HOME/.cache/socketiwa}
OUT=$CACHE/aioquic-tests/$VERSION
if [ -f "$OUT/tests/utils.py" ]; then echo "$OUT/tests"; exit 0; fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
$PY -m pip download -q --no-binary :all: --no-deps "aioquic==$VERSION" -d "$TMP" >&2
tar -xzf "$TMP/aioquic-$VERSION.tar.gz" -C "$TMP" "aioquic-$VERSION/tests"
mkdir -p "$OUT.tmp" && rm -rf "$OUT.tmp/tests" && mv "$TMP/aioquic-$VERSION/tests" "$OUT.tmp/tests"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
echo "$OUT/tests"
