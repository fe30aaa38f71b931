#!/usr/bin/env bash
# Build the browser bundle and run the demo end to end in headless Chromium (see scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
bash build-wasm.sh
exec scripts/netns.sh .venv/bin/python scripts/demo.py
