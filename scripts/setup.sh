#!/usr/bin/env bash
# One-time setup on a fresh Debian machine: system packages, the Python venv (.venv),
# and the npm packages (node_modules). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# cmake, build-essential and python3-dev build the crypto provider for the host (crypto/build_native.sh)
APT_PACKAGES=(chromium chromium-driver debootstrap iproute2 ca-certificates cmake build-essential python3-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  step "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

step "Python venv (.venv)"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-dev.txt
.venv/bin/python -m pip install -q -e .

step "npm packages (node_modules)"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi

step "pure-Python wheels the tests load inside Pyodide (pytest, tblib; cached)"
.venv/bin/python scripts/pyodide_dist.py --download >/dev/null

step "Debian's Chromium 150 for signed-bundle installs (unpacked into the cache; the system's chromium stays)"
bash scripts/chromium150.sh >/dev/null

step "done: run 'bash scripts/demo.sh' (demo) or 'bash scripts/test.sh' (tests); the first of them runs build-wasm.sh"
