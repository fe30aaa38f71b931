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
# ChaCha20 four blocks at a time in SIMD128 (crypto/awslc-wasm/chacha_simd128.c; AWS-LC has no
# vector ChaCha20 but its assembly, and clang does not vectorise the portable code): the build
# uses a copy of the sources where that file takes the place of crypto/chacha/chacha.c, with the
# original kept beside it unchanged (chacha_portable.c: tails, HChaCha20). chacha_check.c then
# holds the result against the portable code and known answers, under Node; a mismatch fails the
# build. Measured (results/aead.md): ChaCha20 keystream 2.2x, ChaCha20-Poly1305 seals of 1200 B
# 1.6x in C.
# usage: awslc.sh OUTDIR   -> OUTDIR/lib/libcrypto.a, OUTDIR/include
set -euo pipefail
OUT=$1
SRC=$(ls -d /usr/share/cargo/registry/aws-lc-sys-*/aws-lc | sort -V | tail -1)
[ -f "$SRC/CMakeLists.txt" ] || { echo "awslc.sh: AWS-LC sources not found (librust-aws-lc-sys-dev)" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")/../.." && pwd)
# build-wasm.sh rebuilds AWS-LC when this script changes: pin the files it compiles in, so changing
# them means changing this script (update with: sha256sum crypto/awslc-wasm/*.c).
(cd "$HERE" && sha256sum -c --quiet) <<'SUMS' || { echo "awslc.sh: crypto/awslc-wasm changed: update the sums in awslc.sh" >&2; exit 1; }
ed3473bc436789bd13d079f15f78ecf1044adce43b896239dc4940bedca14b88  crypto/awslc-wasm/chacha_check.c
435080440432def992d08de3a1433ff50981f3f28b16ea095c871a24e330e0c7  crypto/awslc-wasm/chacha_simd128.c
SUMS
B=$OUT.build; rm -rf "$B" "$B.src" "$OUT"; mkdir -p "$B"
cp -a "$SRC" "$B.src"
mv "$B.src/crypto/chacha/chacha.c" "$B.src/crypto/chacha/chacha_portable.c"
cp "$HERE/crypto/awslc-wasm/chacha_simd128.c" "$B.src/crypto/chacha/chacha.c"
emcmake cmake -S "$B.src" -B "$B" -DCMAKE_BUILD_TYPE=Release -DOPENSSL_NO_ASM=1 -DBUILD_TESTING=OFF \
  -DBUILD_TOOL=OFF -DDISABLE_GO=ON -DDISABLE_PERL=ON -DBUILD_LIBSSL=OFF -DDISABLE_CPU_JITTER_ENTROPY=ON \
  -DCMAKE_C_FLAGS="-fPIC -O2 -msimd128 -msse2" -DCMAKE_CXX_FLAGS="-fPIC -O2 -msimd128 -msse2" > "$B.cmake.log" 2>&1 \
  || { tail -20 "$B.cmake.log" >&2; echo "awslc.sh: cmake failed (log: $B.cmake.log)" >&2; exit 1; }
emmake make -C "$B" -j"$(nproc)" crypto > "$B.make.log" 2>&1 \
  || { grep -E "error" "$B.make.log" | head -20 >&2; echo "awslc.sh: make failed (log: $B.make.log)" >&2; exit 1; }
emcc -O2 -I"$SRC/include" "$HERE/crypto/awslc-wasm/chacha_check.c" "$B/crypto/libcrypto.a" -sENVIRONMENT=node \
  -o "$B/chacha_check.js" 2> "$B.check.log" && node "$B/chacha_check.js" >> "$B.check.log" 2>&1 \
  || { cat "$B.check.log" >&2; echo "awslc.sh: ChaCha20 check failed (log: $B.check.log)" >&2; exit 1; }
tail -3 "$B.check.log"
mkdir -p "$OUT/lib"
cp "$B/crypto/libcrypto.a" "$OUT/lib/"
cp -a "$SRC/include" "$OUT/include"
basename "$(dirname "$SRC")" > "$OUT/SOURCE"
rm -rf "$B" "$B.src"
echo "AWS-LC $(cat "$OUT/SOURCE") libcrypto.a for wasm32 in $OUT"
