#!/usr/bin/env bash
# Run the demo end to end in headless Chromium (see scripts/demo.py). On a fresh clone it first
# does the missing setup and the browser build (scripts/ensure_setup.sh; minutes, once).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_setup.sh
exec scripts/netns.sh .venv/bin/python scripts/demo.py
