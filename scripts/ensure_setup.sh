#!/usr/bin/env bash
# Do whatever setup is still missing, so `bash scripts/demo.sh` and `bash scripts/test.sh` work on
# a fresh clone: scripts/setup.sh (system packages, .venv, node_modules, Chromium 150) when any of
# its outputs is missing, then build-wasm.sh (the browser build) when it never ran. Both are
# cached: after the first run this check takes well under a second.
# The first run downloads and compiles a toolchain: expect minutes (build-wasm.sh alone took
# about 7 minutes on a 2-core machine); each step prints what it is doing and how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${SOCKETIWA_CACHE:-$HOME/.cache/socketiwa}

need_setup=""
[ -x .venv/bin/python ] || need_setup="no .venv"
[ -n "$need_setup" ] || [ -d node_modules/pyodide ] || need_setup="no node_modules"
[ -n "$need_setup" ] || [ -x /usr/lib/chromium/chromium ] || need_setup="no chromium"
[ -n "$need_setup" ] || bash scripts/chromium150.sh --check >/dev/null 2>&1 || need_setup="no Chromium 150"
[ -n "$need_setup" ] || [ -x .venv/bin/socketiwa ] || need_setup="no socketiwa command in .venv"
if [ -n "$need_setup" ]; then
  echo "==> first-time setup ($need_setup): bash scripts/setup.sh" >&2
  bash scripts/setup.sh >&2
fi

# The browser build: only when it never ran here (its last step writes build/iwa-build.json).
# After source changes run build-wasm.sh yourself (it is incremental).
if [ ! -f build/iwa-build.json ] || [ ! -f build/pyodide-dist-314/pyodide-lock.json ]; then
  echo "==> browser build (not built yet): bash build-wasm.sh (full log: $CACHE/build-wasm.log)" >&2
  mkdir -p "$CACHE"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  # Progress lines to the terminal, everything to the log.
  set +e
  $SUDO bash build-wasm.sh 2>&1 | tee "$CACHE/build-wasm.log" | grep --line-buffered -E '^(==>|    ok|    cached|build-wasm.sh)' >&2
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 0 ] || { echo "ensure_setup.sh: build-wasm.sh failed (log: $CACHE/build-wasm.log)" >&2; exit 1; }
fi
