// ChaCha20 for WebAssembly SIMD128: four blocks at a time, one block per 32-bit lane.
//
// scripts/wasm/awslc.sh builds AWS-LC from a copy of its sources in which this file takes the
// place of crypto/chacha/chacha.c, and the original is kept beside it as chacha_portable.c and
// included below unchanged, with its CRYPTO_chacha_20 renamed. Everything else (HChaCha20, the
// AEADs, Poly1305) is AWS-LC's. Why: AWS-LC has no vector ChaCha20 but its assembly, which wasm
// cannot use, and clang does not vectorise the portable one-block-at-a-time code (measured:
// forcing its SLP vectoriser made it slower); in wasm the portable keystream was ~60% of a
// ChaCha20-Poly1305 seal of 1200 bytes. Whole 256-byte groups go through the vector code, the
// rest through the portable code with the counter where the vector code stopped, so the result is
// the portable function's byte for byte, counter wrap-around included (32-bit, continues at 0);
// crypto/awslc-wasm/chacha_check.c compares the two on every length, offset and counter edge.

#define CRYPTO_chacha_20 aws_lc_chacha_20_portable
#include "chacha_portable.c"
#undef CRYPTO_chacha_20

OPENSSL_EXPORT void CRYPTO_chacha_20(uint8_t *out, const uint8_t *in, size_t in_len,
                                     const uint8_t key[32], const uint8_t nonce[12],
                                     uint32_t counter);

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>

// Rotations by 16 and 8 move whole bytes: one byte shuffle. 12 and 7 need two shifts and an or.
#define ROTL16(v) wasm_i8x16_shuffle(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13)
#define ROTL8(v) wasm_i8x16_shuffle(v, v, 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14)
#define ROTL(v, n) wasm_v128_or(wasm_i32x4_shl(v, n), wasm_u32x4_shr(v, 32 - (n)))

#define QUARTERROUND4(a, b, c, d)                         \
  x[a] = wasm_i32x4_add(x[a], x[b]);                      \
  x[d] = ROTL16(wasm_v128_xor(x[d], x[a]));               \
  x[c] = wasm_i32x4_add(x[c], x[d]);                      \
  x[b] = ROTL(wasm_v128_xor(x[b], x[c]), 12);             \
  x[a] = wasm_i32x4_add(x[a], x[b]);                      \
  x[d] = ROTL8(wasm_v128_xor(x[d], x[a]));                \
  x[c] = wasm_i32x4_add(x[c], x[d]);                      \
  x[b] = ROTL(wasm_v128_xor(x[b], x[c]), 7);

// XORs four consecutive blocks of keystream (counters input[12] .. input[12]+3, wrapping) into
// 256 bytes of |in|, writing |out| (which may equal |in|).
static void chacha20_4blocks_simd128(uint8_t out[256], const uint8_t in[256],
                                     const uint32_t input[16]) {
  v128_t x[16], start[16];
  for (int i = 0; i < 16; i++) {
    start[i] = wasm_i32x4_splat((int32_t)input[i]);
  }
  start[12] = wasm_i32x4_add(start[12], wasm_i32x4_make(0, 1, 2, 3));
  for (int i = 0; i < 16; i++) {
    x[i] = start[i];
  }
  for (int i = 20; i > 0; i -= 2) {
    QUARTERROUND4(0, 4, 8, 12)
    QUARTERROUND4(1, 5, 9, 13)
    QUARTERROUND4(2, 6, 10, 14)
    QUARTERROUND4(3, 7, 11, 15)
    QUARTERROUND4(0, 5, 10, 15)
    QUARTERROUND4(1, 6, 11, 12)
    QUARTERROUND4(2, 7, 8, 13)
    QUARTERROUND4(3, 4, 9, 14)
  }
  for (int i = 0; i < 16; i++) {
    x[i] = wasm_i32x4_add(x[i], start[i]);
  }
  // x[w] holds word w of blocks 0..3; transpose each group of four words into four blocks'
  // 16-byte rows (wasm is little-endian, as ChaCha20's output words are).
  for (int w = 0; w < 16; w += 4) {
    v128_t t0 = wasm_i32x4_shuffle(x[w], x[w + 1], 0, 4, 1, 5);
    v128_t t1 = wasm_i32x4_shuffle(x[w], x[w + 1], 2, 6, 3, 7);
    v128_t t2 = wasm_i32x4_shuffle(x[w + 2], x[w + 3], 0, 4, 1, 5);
    v128_t t3 = wasm_i32x4_shuffle(x[w + 2], x[w + 3], 2, 6, 3, 7);
    v128_t rows[4] = {wasm_i64x2_shuffle(t0, t2, 0, 2), wasm_i64x2_shuffle(t0, t2, 1, 3),
                      wasm_i64x2_shuffle(t1, t3, 0, 2), wasm_i64x2_shuffle(t1, t3, 1, 3)};
    for (int b = 0; b < 4; b++) {
      size_t at = (size_t)b * 64 + (size_t)w * 4;
      wasm_v128_store(out + at, wasm_v128_xor(wasm_v128_load(in + at), rows[b]));
    }
  }
}

void CRYPTO_chacha_20(uint8_t *out, const uint8_t *in, size_t in_len,
                      const uint8_t key[32], const uint8_t nonce[12],
                      uint32_t counter) {
  assert(!buffers_alias(out, in_len, in, in_len) || in == out);
  uint32_t input[16];
  OPENSSL_memcpy(input, sigma_words, sizeof(sigma_words));
  for (int i = 0; i < 8; i++) {
    input[4 + i] = CRYPTO_load_u32_le(key + 4 * i);
  }
  input[12] = counter;
  for (int i = 0; i < 3; i++) {
    input[13 + i] = CRYPTO_load_u32_le(nonce + 4 * i);
  }
  while (in_len >= 256) {
    chacha20_4blocks_simd128(out, in, input);
    input[12] += 4;  // wraps like the portable code's per-block increment
    in += 256;
    out += 256;
    in_len -= 256;
  }
  if (in_len > 64) {  // more than one block left: one more vector pass through a buffer
    uint8_t buf[256];
    OPENSSL_memcpy(buf, in, in_len);
    chacha20_4blocks_simd128(buf, buf, input);
    OPENSSL_memcpy(out, buf, in_len);
    OPENSSL_cleanse(buf, sizeof(buf));
  } else if (in_len > 0) {
    aws_lc_chacha_20_portable(out, in, in_len, key, nonce, input[12]);
  }
}

#else  // no SIMD128: AWS-LC's portable code under its own name

void CRYPTO_chacha_20(uint8_t *out, const uint8_t *in, size_t in_len,
                      const uint8_t key[32], const uint8_t nonce[12],
                      uint32_t counter) {
  aws_lc_chacha_20_portable(out, in, in_len, key, nonce, counter);
}

#endif
