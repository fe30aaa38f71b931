#!/usr/bin/env bash
# Build crypto/bench/aead_bench.c (AWS-LC's own loop of seals and their parts, no Python) for
# bench/bench_crypto.py's breakdown of a seal:
#   build/aead-bench/aead_bench.wasm.so   wasm32 side module, loaded in Pyodide with ctypes
#   build/aead-bench/aead_bench.native.so the same for this host (AWS-LC built by crypto/build_native.sh)
# usage: bash crypto/bench/build.sh [CHROOT_AWSLC_DIR]   (default /srv/build/awslc-wasm, the library
#        build-wasm.sh links into the provider; needs root and the toolchain chroot build-wasm.sh made)
# The chroot's mounts live in a private mount namespace of this script, so a build-wasm.sh running
# at the same time is not disturbed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${SOCKETIWA_CACHE:-$HOME/.cache/socketiwa}
CHROOT=$CACHE/toolchain/sid
AWSLC=${1:-/srv/build/awslc-wasm}
OUT=build/aead-bench
mkdir -p "$OUT"
NATIVE=$(ls -d "$CACHE"/awslc-native/*/ 2>/dev/null | sort -V | tail -1)
[ -n "$NATIVE" ] || { echo "build.sh: no native AWS-LC (run crypto/build_native.sh)" >&2; exit 1; }
cc -O2 -shared -fPIC -DAEAD_BENCH_NO_MAIN -I"$NATIVE/include" crypto/bench/aead_bench.c "$NATIVE/lib/libcrypto.a" \
  -o "$OUT/aead_bench.native.so"
[ -d "$CHROOT$AWSLC/lib" ] || { echo "build.sh: $AWSLC not in the toolchain chroot (run build-wasm.sh)" >&2; exit 1; }
WORK=/srv/build/aead-bench.$$
unshare -m --propagation private bash -c '
  set -e
  C=$1 ROOT=$2 AWSLC=$3 WORK=$4
  for m in proc sys dev; do mount --bind /$m $C/$m; done
  mkdir -p $C$WORK && cp $ROOT/crypto/bench/aead_bench.c $C$WORK/
  chroot $C /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin emcc -O2 -sSIDE_MODULE=2 \
    -sEXPORTED_FUNCTIONS=_aead_bench_seal,_aead_bench_part -DAEAD_BENCH_NO_MAIN -I$AWSLC/include \
    $WORK/aead_bench.c $AWSLC/lib/libcrypto.a -o $WORK/aead_bench.wasm.so 2>/dev/null
' bash "$CHROOT" "$ROOT" "$AWSLC" "$WORK"
cp "$CHROOT$WORK/aead_bench.wasm.so" "$OUT/" && rm -rf "${CHROOT:?}$WORK"
echo "$OUT/aead_bench.wasm.so ($AWSLC), $OUT/aead_bench.native.so"
