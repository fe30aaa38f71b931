#!/usr/bin/env bash
# Build the crypto provider for this machine's CPython, so tests can hold it against the real
# `cryptography` (same AWS-LC sources as the WebAssembly build). Output: build/crypto-native/
# (socketiwa_crypto with its _awslc extension). AWS-LC's libcrypto.a is cached per source version.
# usage: bash crypto/build_native.sh   (after build-wasm.sh has made the toolchain chroot, whose
#        librust-aws-lc-sys-dev holds the sources; or set AWSLC_SRC)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${SOCKETIWA_CACHE:-$HOME/.cache/socketiwa}
SRC=${AWSLC_SRC:-$(ls -d "$CACHE"/toolchain/sid/usr/share/cargo/registry/aws-lc-sys-*/aws-lc 2>/dev/null | sort -V | tail -1)}
[ -n "$SRC" ] && [ -f "$SRC/CMakeLists.txt" ] || { echo "build_native.sh: AWS-LC sources not found (run build-wasm.sh first or set AWSLC_SRC)" >&2; exit 1; }
VERSION=$(basename "$(dirname "$SRC")")
OUT=$CACHE/awslc-native/$VERSION
if [ ! -f "$OUT/lib/libcrypto.a" ]; then
  echo "==> AWS-LC $VERSION libcrypto.a for this host ($OUT)"
  rm -rf "$OUT" && mkdir -p "$OUT/lib"
  B=$OUT/build
  cmake -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=Release -DOPENSSL_NO_ASM=1 -DBUILD_TESTING=OFF -DBUILD_TOOL=OFF \
    -DDISABLE_GO=ON -DDISABLE_PERL=ON -DBUILD_LIBSSL=OFF -DCMAKE_C_FLAGS="-fPIC -O2" -DCMAKE_CXX_FLAGS="-fPIC -O2" \
    > "$OUT/cmake.log" 2>&1 || { tail -20 "$OUT/cmake.log" >&2; echo "build_native.sh: cmake failed" >&2; exit 1; }
  make -C "$B" -j"$(nproc)" crypto > "$OUT/make.log" 2>&1 || { grep -m20 error "$OUT/make.log" >&2; echo "build_native.sh: make failed" >&2; exit 1; }
  cp "$B/crypto/libcrypto.a" "$OUT/lib/" && cp -a "$SRC/include" "$OUT/include" && rm -rf "$B"
fi
echo "==> socketiwa_crypto for $(.venv/bin/python -c 'import sys; print(sys.implementation.cache_tag)') (build/crypto-native)"
rm -rf build/crypto-native build/crypto-native.tmp
AWSLC_INCLUDE=$OUT/include AWSLC_LIB=$OUT/lib .venv/bin/python -m pip install -q --no-deps --no-build-isolation \
  --target build/crypto-native.tmp ./crypto
mv build/crypto-native.tmp build/crypto-native
echo "build/crypto-native"
# aioquic's own test suite, which tests/test_crypto_upstream.py runs on the provider (cached; the
# test suite runs without network, so it is fetched here). Not fatal: that test says what is missing.
bash crypto/upstream/fetch_aioquic_tests.sh >/dev/null || echo "build_native.sh: could not fetch aioquic's tests (tests/test_crypto_upstream.py will fail)" >&2
