/* What bounds an AEAD seal: AWS-LC's own loop of seals (no Python), and its parts, on one build of
 * libcrypto.a. Built for wasm32 (Node, or loaded into Pyodide with ctypes as a side module) and for
 * the host, by crypto/bench/build.sh. Functions return seconds for `n` repetitions, so a caller can
 * take the best of several short rounds (the machine is shared; the fastest round is the least
 * disturbed one). Inputs are fixed zero keys and nonces: this measures speed, not correctness
 * (tests/test_crypto_*.py do that).
 *
 *   aead_bench_seal(alg, len, aad_len, n)   n seals of len bytes: alg 0 AES-128-GCM, 1 AES-256-GCM,
 *                                           2 ChaCha20-Poly1305 (EVP_AEAD, what the provider calls)
 *   aead_bench_part(part, len, n)           n runs of one building block over len bytes:
 *                                           0 ChaCha20 keystream XOR, 1 Poly1305 MAC,
 *                                           2 AES-128-CTR (the constant-time software AES GCM uses),
 *                                           3 GHASH (software, as GCM uses without CLMUL)
 *   main()                                  standalone: prints one JSON object of rates
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/aead.h>
#include <openssl/chacha.h>
#include <openssl/poly1305.h>

/* AWS-LC internals the software GCM path uses (crypto/fipsmodule/{aes,modes}/internal.h); declared
   here so the parts are timed exactly as EVP_aead_aes_*_gcm calls them on a CPU without AES-NI. */
typedef struct { uint64_t hi, lo; } u128;
typedef struct { uint32_t rd_key[60]; unsigned rounds; } AES_KEY_internal;
int aes_nohw_set_encrypt_key(const uint8_t *key, unsigned bits, AES_KEY_internal *aeskey);
void aes_nohw_ctr32_encrypt_blocks(const uint8_t *in, uint8_t *out, size_t blocks,
                                   const AES_KEY_internal *key, const uint8_t ivec[16]);
void gcm_init_nohw(u128 Htable[16], const uint64_t H[2]);
void gcm_ghash_nohw(uint8_t Xi[16], const u128 Htable[16], const uint8_t *inp, size_t len);

#define MAX_LEN 16384
static uint8_t in_buf[MAX_LEN], out_buf[MAX_LEN + 16], aad_buf[256];
static volatile uint8_t sink;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double aead_bench_seal(int alg, int len, int aad_len, int n) {
  const EVP_AEAD *aead = alg == 0 ? EVP_aead_aes_128_gcm() : alg == 1 ? EVP_aead_aes_256_gcm()
                       : alg == 2 ? EVP_aead_chacha20_poly1305() : NULL;
  static const uint8_t key[32], nonce[12];
  EVP_AEAD_CTX ctx;
  if (!aead || len < 0 || len > MAX_LEN || aad_len < 0 || aad_len > (int)sizeof aad_buf ||
      !EVP_AEAD_CTX_init(&ctx, aead, key, EVP_AEAD_key_length(aead), EVP_AEAD_DEFAULT_TAG_LENGTH, NULL))
    return -1;
  size_t out_len;
  double start = now();
  for (int i = 0; i < n; i++)
    if (!EVP_AEAD_CTX_seal(&ctx, out_buf, &out_len, sizeof out_buf, nonce, sizeof nonce, in_buf, (size_t)len,
                           aad_buf, (size_t)aad_len)) { EVP_AEAD_CTX_cleanup(&ctx); return -1; }
  double t = now() - start;
  sink = out_buf[0];
  EVP_AEAD_CTX_cleanup(&ctx);
  return t;
}

double aead_bench_part(int part, int len, int n) {
  static const uint8_t key[32], nonce[12], iv[16];
  if (len < 0 || len > MAX_LEN) return -1;
  double start = now();
  if (part == 0) {
    for (int i = 0; i < n; i++) CRYPTO_chacha_20(out_buf, in_buf, (size_t)len, key, nonce, 1);
  } else if (part == 1) {
    uint8_t mac[16];
    for (int i = 0; i < n; i++) {
      poly1305_state st;
      CRYPTO_poly1305_init(&st, key);
      CRYPTO_poly1305_update(&st, in_buf, (size_t)len);
      CRYPTO_poly1305_finish(&st, mac);
    }
    sink = mac[0];
  } else if (part == 2) {
    AES_KEY_internal k;
    aes_nohw_set_encrypt_key(key, 128, &k);
    start = now();
    for (int i = 0; i < n; i++) aes_nohw_ctr32_encrypt_blocks(in_buf, out_buf, (size_t)len / 16, &k, iv);
  } else if (part == 3) {
    u128 table[16];
    uint8_t xi[16] = {0};
    static const uint64_t h[2] = {0x66e94bd4ef8a2c3bULL, 0x884cfa59ca342b2eULL};
    gcm_init_nohw(table, h);
    start = now();
    for (int i = 0; i < n; i++) gcm_ghash_nohw(xi, table, in_buf, (size_t)len & ~(size_t)15);
    sink = xi[0];
  } else {
    return -1;
  }
  double t = now() - start;
  sink ^= out_buf[0];
  return t;
}

#ifndef AEAD_BENCH_NO_MAIN
/* best rate (per second) over `rounds` rounds of `n` */
static double best_rate(double (*f)(int, int, int, int), int a, int b, int c, int n, int rounds) {
  double best = 1e30;
  for (int r = 0; r < rounds; r++) { double t = f(a, b, c, n); if (t > 0 && t < best) best = t; }
  return n / best;
}
static double seal4(int alg, int len, int aad, int n) { return aead_bench_seal(alg, len, aad, n); }
static double part4(int part, int len, int unused, int n) { (void)unused; return aead_bench_part(part, len, n); }

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 15, n = argc > 2 ? atoi(argv[2]) : 2000;
  static const char *algs[] = {"aes128gcm", "aes256gcm", "chacha20poly1305"};
  static const char *parts[] = {"chacha20", "poly1305", "aes128ctr", "ghash"};
  printf("{");
  for (int a = 0; a < 3; a++) {
    printf("\"%s_seals_per_s\": %.0f, ", algs[a], best_rate(seal4, a, 1200, 32, n, rounds));
    printf("\"%s_empty_seals_per_s\": %.0f, ", algs[a], best_rate(seal4, a, 0, 0, n, rounds));
  }
  for (int p = 0; p < 4; p++)
    printf("\"%s_1200_per_s\": %.0f%s", parts[p], best_rate(part4, p, 1200, 0, n, rounds), p < 3 ? ", " : "");
  printf("}\n");
  return 0;
}
#endif
