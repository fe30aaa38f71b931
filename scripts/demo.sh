#!/usr/bin/env bash
# Run the demo end to end in headless Chromium. On a fresh clone it first does the missing setup
# and the browser build (scripts/ensure_setup.sh; minutes, once).
#
#   bash scripts/demo.sh          the socketiwa IWA: UDP + a TCP server with rooms in the page,
#                                 talked to from CPython (scripts/demo.py)
#   bash scripts/demo.sh --app    a newcomer's app with the socketiwa command: new, build (signed
#                                 bundle, its ID), run the signed bundle in Chromium 150
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_setup.sh
case "${1:-}" in
  "") exec scripts/netns.sh .venv/bin/python scripts/demo.py ;;
  --app)
    dir=$(mktemp -d)/hello
    set -x
    .venv/bin/socketiwa new "$dir"
    .venv/bin/socketiwa build "$dir"
    exec scripts/netns.sh .venv/bin/socketiwa run --signed "$dir" -- from the demo ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
