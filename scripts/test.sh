#!/usr/bin/env bash
# Run every test: the Node Direct Sockets harness's own tests, then the pytest suite on each
# runtime (CPython, Pyodide in Node, Chromium IWA). Everything runs in a network namespace with
# only loopback (scripts/netns.sh), so multicast and every other packet stay on this machine.
# Extra arguments go to pytest, e.g. scripts/test.sh -k udp --runtimes=cpython
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_setup.sh || exit 1   # a fresh clone: setup + browser build first (once)
# Full runs (no test paths given) also run the transport core's CPython tests on Python 3.14
# (scripts/cpython-newer.sh); its venv is made here, outside the network namespace.
NEWER=1; for a in "$@"; do case $a in tests/*) NEWER=0 ;; esac; done
[ $NEWER = 0 ] || bash scripts/cpython-newer.sh prepare || exit 1
NEWER=$NEWER scripts/netns.sh bash -c '
  set -u
  echo "==> node --test bridge/test (Node Direct Sockets harness)"
  node --test --test-timeout=60000 bridge/test/ || exit 1
  newer_rc=0
  [ $NEWER = 0 ] || { bash scripts/cpython-newer.sh run -q; newer_rc=$?; }
  echo "==> pytest"
  .venv/bin/python -m pytest "$@"
  rc=$?
  [ $rc != 0 ] || rc=$newer_rc
  exit $rc
' test "$@"
