#!/usr/bin/env bash
# Unpack Debian bookworm's Chromium 150 next to the system's browser, for signed-bundle installs.
#
# Debian's Chromium 156 has no Signed Web Bundle parser, so it cannot install a .swbn; its 150
# build (bookworm main) can. This fetches chromium + chromium-common 150 from the apt archive
# with `apt-get download` (nothing is installed; the system's chromium stays as it is) and
# unpacks them with `dpkg -x` into $SOCKETIWA_CACHE/chromium150 (default ~/.cache/socketiwa).
# Cached: a second run only checks the binary. Prints the binary's path on the last line.
#
# Usage: bash scripts/chromium150.sh [--check]   (--check: only report, exit 1 when missing)
set -euo pipefail
VERSION=150.0.7871.100-1~deb12u1
CACHE=${SOCKETIWA_CACHE:-$HOME/.cache/socketiwa}
DEST=$CACHE/chromium150
BIN=$DEST/root/usr/lib/chromium/chromium

if [ -x "$BIN" ] && [ "$(cat "$DEST/VERSION" 2>/dev/null)" = "$VERSION" ]; then
  echo "$BIN"; exit 0
fi
if [ "${1:-}" = --check ]; then
  echo "chromium150.sh: Chromium 150 not unpacked in $DEST (run: bash scripts/chromium150.sh)" >&2
  exit 1
fi

if ! apt-cache show "chromium=$VERSION" >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >&2 || true   # a fresh machine may have no package lists yet
fi
if ! apt-cache show "chromium=$VERSION" >/dev/null 2>&1; then
  echo "chromium150.sh: apt does not list chromium=$VERSION; is bookworm main in your sources? (then: apt-get update)" >&2
  exit 1
fi
echo "==> downloading chromium $VERSION (about 80 MB; once) into $DEST" >&2
rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp/debs"
# apt-get download writes into the current directory; as root it falls back to an unsandboxed
# fetch (the _apt user cannot write here), which is what we want.
(cd "$DEST.tmp/debs" && apt-get download -q "chromium=$VERSION" "chromium-common=$VERSION" >&2)
for d in "$DEST.tmp"/debs/*.deb; do dpkg -x "$d" "$DEST.tmp/root"; done
[ -x "$DEST.tmp/root/usr/lib/chromium/chromium" ] || { echo "chromium150.sh: the unpacked package has no usr/lib/chromium/chromium" >&2; exit 1; }
# The parser the 156 build lacks: a string of its error messages must be in the binary.
grep -q -a -F "Wrong magic bytes" "$DEST.tmp/root/usr/lib/chromium/chromium" \
  || { echo "chromium150.sh: the unpacked Chromium has no Signed Web Bundle parser" >&2; exit 1; }
rm -rf "$DEST.tmp/debs"
echo "$VERSION" > "$DEST.tmp/VERSION"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "$BIN"
