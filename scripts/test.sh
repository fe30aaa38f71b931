#!/usr/bin/env bash
# Run every test: the Node Direct Sockets harness's own tests, then the pytest suite on each
# runtime (CPython, Pyodide in Node, Chromium IWA). Everything runs in a network namespace with
# only loopback (scripts/netns.sh), so multicast and every other packet stay on this machine.
# Extra arguments go to pytest, e.g. scripts/test.sh -k udp --runtimes=cpython
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_setup.sh || exit 1   # a fresh clone: setup + browser build first (once)
scripts/netns.sh bash -c '
  set -u
  echo "==> node --test bridge/test (Node Direct Sockets harness)"
  node --test --test-timeout=60000 bridge/test/ || exit 1
  echo "==> pytest"
  .venv/bin/python -m pytest "$@"
' test "$@"
