#!/usr/bin/env bash
# (inside the toolchain chroot) AWS-LC's libcrypto.a for wasm32 from the C sources Debian ships in
# librust-aws-lc-sys-dev. No assembly (wasm has none), no Go/Perl code generators (the
# generated sources are shipped), no libssl (TLS is aioquic's job). No CPU-jitter entropy: in
# WebAssembly its timer source fails and AWS-LC aborts on the first random byte; the OS source
# (getentropy, i.e. the browser's crypto.getRandomValues) seeds the DRBG instead.
# WebAssembly SIMD: -msse2 defines __SSE2__, which switches AWS-LC's constant-time software AES
# (aes_nohw.c) from 32-bit words (2 blocks per batch) to 128-bit words (8 blocks) and its GHASH
# (gcm_nohw.c) to the SSE2 multiply; emscripten maps those intrinsics onto SIMD128 (-msimd128),
# which Chromium and Node (16.4+) run. Measured here: AES-128-GCM seals 2.1x, ChaCha20-Poly1305
# 1.2x (auto-vectorised). Still no AES instructions in wasm, so QUIC prefers ChaCha20 in Pyodide.
# usage: awslc.sh OUTDIR   -> OUTDIR/lib/libcrypto.a, OUTDIR/include
set -euo pipefail
OUT=$1
SRC=$(ls -d /usr/share/cargo/registry/aws-lc-sys-*/aws-lc | sort -V | tail -1)
[ -f "$SRC/CMakeLists.txt" ] || { echo "awslc.sh: AWS-LC sources not found (librust-aws-lc-sys-dev)" >&2; exit 1; }
B=$OUT.build; rm -rf "$B" "$OUT"; mkdir -p "$B"
emcmake cmake -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=Release -DOPENSSL_NO_ASM=1 -DBUILD_TESTING=OFF \
  -DBUILD_TOOL=OFF -DDISABLE_GO=ON -DDISABLE_PERL=ON -DBUILD_LIBSSL=OFF -DDISABLE_CPU_JITTER_ENTROPY=ON \
  -DCMAKE_C_FLAGS="-fPIC -O2 -msimd128 -msse2" -DCMAKE_CXX_FLAGS="-fPIC -O2 -msimd128 -msse2" > "$B.cmake.log" 2>&1 \
  || { tail -20 "$B.cmake.log" >&2; echo "awslc.sh: cmake failed (log: $B.cmake.log)" >&2; exit 1; }
emmake make -C "$B" -j"$(nproc)" crypto > "$B.make.log" 2>&1 \
  || { grep -E "error" "$B.make.log" | head -20 >&2; echo "awslc.sh: make failed (log: $B.make.log)" >&2; exit 1; }
mkdir -p "$OUT/lib"
cp "$B/crypto/libcrypto.a" "$OUT/lib/"
cp -a "$SRC/include" "$OUT/include"
basename "$(dirname "$SRC")" > "$OUT/SOURCE"
rm -rf "$B"
echo "AWS-LC $(cat "$OUT/SOURCE") libcrypto.a for wasm32 in $OUT"
