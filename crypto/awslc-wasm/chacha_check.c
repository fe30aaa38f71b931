/* Check of AWS-LC's ChaCha20 as scripts/wasm/awslc.sh builds it for wasm32 (chacha_simd128.c):
 * run by awslc.sh right after the build (under Node), which fails if this exits non-zero.
 *
 *  1. differential: CRYPTO_chacha_20 (vector code for whole 256-byte groups) against AWS-LC's
 *     portable code kept in the same library (aws_lc_chacha_20_portable), for every length up
 *     to 1100 bytes and longer ones, misaligned buffers, in place, and counters at the 32-bit
 *     wrap-around;
 *  2. known answers from outside AWS-LC: the RFC 8439 section 2.8.2 AEAD vector, and SHA-256s of
 *     long ChaCha20 and ChaCha20-Poly1305 outputs computed with the `cryptography` package;
 *  3. the AEAD opens what it sealed and refuses a flipped bit.
 * Prints one line per part and "chacha_check: ok". */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/aead.h>
#include <openssl/chacha.h>
#include <openssl/sha.h>

void aws_lc_chacha_20_portable(uint8_t *out, const uint8_t *in, size_t in_len, const uint8_t key[32],
                               const uint8_t nonce[12], uint32_t counter);

static int failures;
#define CHECK(cond, ...) \
  do { if (!(cond)) { failures++; printf("FAIL: " __VA_ARGS__); printf("\n"); } } while (0)

static void pattern(uint8_t *p, size_t n) { for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 7 + 3); }

static int hex_eq(const uint8_t *bytes, size_t n, const char *hex) {
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1 || v != bytes[i]) return 0;
  }
  return hex[2 * n] == 0;
}

static int sha256_eq(const uint8_t *p, size_t n, const char *hex) {
  uint8_t d[SHA256_DIGEST_LENGTH];
  SHA256(p, n, d);
  return hex_eq(d, sizeof d, hex);
}

#define MAXLEN 5000
static uint8_t src[MAXLEN + 8], a[MAXLEN + 8], b[MAXLEN + 8];

static void differential(void) {
  static const uint32_t counters[] = {0, 1, 7, 0xfffffffcu, 0xfffffffdu, 0xfffffffeu, 0xffffffffu};
  static const size_t long_lens[] = {1200, 1232, 1280, 1350, 1500, 2048, 4096, 4099, MAXLEN};
  uint8_t key[32], nonce[12];
  size_t cases = 0;
  pattern(key, 32);
  pattern(nonce, 12);
  pattern(src, sizeof src);
  for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
    for (size_t len = 0; len <= 1100 + sizeof long_lens / sizeof long_lens[0]; len++) {
      size_t n = len <= 1100 ? len : long_lens[len - 1101];
      size_t off = (len + c) % 4;  /* misaligned input and output */
      key[0] = (uint8_t)len;       /* vary key and nonce too */
      nonce[11] = (uint8_t)c;
      aws_lc_chacha_20_portable(a, src + off, n, key, nonce, counters[c]);
      CRYPTO_chacha_20(b + 1, src + off, n, key, nonce, counters[c]);
      CHECK(memcmp(a, b + 1, n) == 0, "len %zu counter %08x: vector != portable", n, counters[c]);
      memcpy(b + 3, src + off, n);  /* in place */
      CRYPTO_chacha_20(b + 3, b + 3, n, key, nonce, counters[c]);
      CHECK(memcmp(a, b + 3, n) == 0, "len %zu counter %08x in place: vector != portable", n, counters[c]);
      cases++;
    }
  }
  printf("differential: %zu cases (lengths 0..1100 and up to %d, 7 counters, in place)\n", cases, MAXLEN);
}

static void known_answers(void) {
  /* RFC 8439 2.8.2 */
  static const char pt[] = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
                           "the future, sunscreen would be it.";
  uint8_t key[32], nonce[12], aad[12] = {0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7};
  static const uint8_t rfc_nonce[12] = {7, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47};
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)(0x80 + i);
  uint8_t out[2000];
  size_t out_len;
  EVP_AEAD_CTX ctx;
  CHECK(EVP_AEAD_CTX_init(&ctx, EVP_aead_chacha20_poly1305(), key, 32, 16, NULL), "AEAD init");
  CHECK(EVP_AEAD_CTX_seal(&ctx, out, &out_len, sizeof out, rfc_nonce, 12, (const uint8_t *)pt, 114, aad, 12) &&
        out_len == 130, "RFC 8439 seal");
  CHECK(hex_eq(out, 114, "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69"
                         "da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945"
                         "585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"), "RFC 8439 2.8.2 ciphertext");
  CHECK(hex_eq(out + 114, 16, "1ae10b594f09e26a7e902ecbd0600691"), "RFC 8439 2.8.2 tag");
  EVP_AEAD_CTX_cleanup(&ctx);

  /* long outputs (several 256-byte groups and a tail), from `cryptography` */
  static const uint8_t nonce2[12] = {0, 0, 0, 9, 0, 0, 0, 0x4a, 0, 0, 0, 0};
  uint8_t msg[4099];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)i;
  memcpy(nonce, nonce2, 12);
  pattern(msg, sizeof msg);
  static uint8_t stream[4099];
  CRYPTO_chacha_20(stream, msg, 1200, key, nonce, 1);
  CHECK(sha256_eq(stream, 1200, "9161495331df757f250533e99f580e1d3e1d4301cd891e2b9f29a5071d041691"), "ChaCha20 1200 B");
  CRYPTO_chacha_20(stream, msg, 4099, key, nonce, 1);
  CHECK(sha256_eq(stream, 4099, "b940b5fd26020d8f9cda773d368ae84cb71693ac5a78d3a7a74399f47547b6d7"), "ChaCha20 4099 B");
  uint8_t ad[32];
  pattern(ad, 32);
  CHECK(EVP_AEAD_CTX_init(&ctx, EVP_aead_chacha20_poly1305(), key, 32, 16, NULL), "AEAD init");
  CHECK(EVP_AEAD_CTX_seal(&ctx, out, &out_len, sizeof out, nonce, 12, msg, 1200, ad, 32) && out_len == 1216,
        "seal 1200 B");
  CHECK(sha256_eq(out, 1216, "2b50f4bddd38fd929c46cc2fd284fff45e63dfe0e42b1dd195662613f5a71b0f"),
        "ChaCha20-Poly1305 1200 B");

  /* open what was sealed; a flipped bit anywhere is refused */
  uint8_t back[1216];
  size_t back_len;
  CHECK(EVP_AEAD_CTX_open(&ctx, back, &back_len, sizeof back, nonce, 12, out, out_len, ad, 32) &&
        back_len == 1200 && memcmp(back, msg, 1200) == 0, "open 1200 B");
  for (size_t at = 0; at < out_len; at += 97) {
    out[at] ^= 0x10;
    CHECK(!EVP_AEAD_CTX_open(&ctx, back, &back_len, sizeof back, nonce, 12, out, out_len, ad, 32),
          "tampered byte %zu accepted", at);
    out[at] ^= 0x10;
  }
  EVP_AEAD_CTX_cleanup(&ctx);
  printf("known answers: RFC 8439 2.8.2, 1200/4099-byte ChaCha20, 1200-byte ChaCha20-Poly1305, tampering\n");
}

int main(void) {
  differential();
  known_answers();
  if (failures) {
    printf("chacha_check: %d FAILED\n", failures);
    return 1;
  }
  printf("chacha_check: ok\n");
  return 0;
}
