/* socketiwa_crypto._awslc: the few AWS-LC (libcrypto) entry points the provider needs.
 *
 * Kept deliberately small and flat: the Python layer (socketiwa_crypto/*.py) shapes these into
 * the cryptography / pyOpenSSL interfaces aioquic uses. Hot paths (AEAD seal/open, header
 * protection) take a pre-keyed object and do one allocation, the result bytes.
 * Python limited API (abi3, 3.11+) so one wheel serves every Pyodide. */
#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>
#include <openssl/aead.h>
#include <openssl/aes.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/chacha.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

typedef struct {
  PyObject *Error;     /* ValueError subclass: malformed input, library failures */
  PyObject *TagError;  /* AEAD authentication failed */
  PyObject *VerifyError;
  PyObject *AEADType, *AESECBType, *PKeyType, *CertType;
} module_state;

static module_state *state_of(PyObject *module) { return (module_state *)PyModule_GetState(module); }
static PyObject *the_module; /* single-phase init: one module per interpreter (Pyodide has one) */
#define ST state_of(the_module)

/* Raise Error with the library's reason for the last failure, and clear its queue. */
static PyObject *raise_lib(const char *what) {
  unsigned long code = ERR_peek_last_error();
  char reason[256] = "";
  if (code) ERR_error_string_n(code, reason, sizeof reason);
  ERR_clear_error();
  PyErr_Format(ST->Error, "%s%s%s", what, code ? ": " : "", reason);
  return NULL;
}

static PyObject *new_bytes(size_t n, uint8_t **out) {
  PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
  if (b) *out = (uint8_t *)PyBytes_AsString(b);
  return b;
}

/* ---------------------------------------------------------------- AEAD */
typedef struct { PyObject_HEAD EVP_AEAD_CTX ctx; int ready; } AEADObject;

static int aead_init(PyObject *self_, PyObject *args, PyObject *kw) {
  AEADObject *self = (AEADObject *)self_;
  int alg; Py_buffer key;
  if (!PyArg_ParseTuple(args, "iy*", &alg, &key)) return -1;
  const EVP_AEAD *aead = alg == 0 ? EVP_aead_aes_128_gcm() : alg == 1 ? EVP_aead_aes_256_gcm()
                       : alg == 2 ? EVP_aead_chacha20_poly1305() : NULL;
  int ok = aead && (size_t)key.len == EVP_AEAD_key_length(aead);
  if (ok) {
    if (self->ready) EVP_AEAD_CTX_cleanup(&self->ctx);
    self->ready = EVP_AEAD_CTX_init(&self->ctx, aead, key.buf, key.len, EVP_AEAD_DEFAULT_TAG_LENGTH, NULL);
  }
  PyBuffer_Release(&key);
  if (!aead) { PyErr_SetString(ST->Error, "unknown AEAD"); return -1; }
  if (!ok) { PyErr_SetString(ST->Error, "wrong AEAD key length"); return -1; }
  if (!self->ready) { raise_lib("AEAD key setup failed"); return -1; }
  return 0;
}

static void aead_dealloc(PyObject *self_) {
  AEADObject *self = (AEADObject *)self_;
  if (self->ready) EVP_AEAD_CTX_cleanup(&self->ctx);
  PyTypeObject *tp = Py_TYPE(self_);
  ((freefunc)PyType_GetSlot(tp, Py_tp_free))(self_);
  Py_DECREF(tp);
}

/* seal(nonce, plaintext, aad) -> ciphertext || tag */
static PyObject *aead_seal(PyObject *self_, PyObject *args) {
  AEADObject *self = (AEADObject *)self_;
  Py_buffer nonce, data, aad; PyObject *out = NULL; uint8_t *p; size_t n = 0;
  if (!PyArg_ParseTuple(args, "y*y*y*", &nonce, &data, &aad)) return NULL;
  size_t cap = (size_t)data.len + EVP_AEAD_max_overhead(EVP_AEAD_CTX_aead(&self->ctx));
  if ((out = new_bytes(cap, &p)) &&
      !EVP_AEAD_CTX_seal(&self->ctx, p, &n, cap, nonce.buf, nonce.len, data.buf, data.len, aad.buf, aad.len)) {
    Py_CLEAR(out);
    raise_lib("AEAD seal failed");
  }
  PyBuffer_Release(&nonce); PyBuffer_Release(&data); PyBuffer_Release(&aad);
  return out;
}

/* open(nonce, ciphertext||tag, aad) -> plaintext, or TagError */
static PyObject *aead_open(PyObject *self_, PyObject *args) {
  AEADObject *self = (AEADObject *)self_;
  Py_buffer nonce, data, aad; PyObject *out = NULL; uint8_t *p; size_t n = 0;
  if (!PyArg_ParseTuple(args, "y*y*y*", &nonce, &data, &aad)) return NULL;
  size_t cap = (size_t)data.len;
  if ((out = new_bytes(cap, &p))) {
    if (!EVP_AEAD_CTX_open(&self->ctx, p, &n, cap, nonce.buf, nonce.len, data.buf, data.len, aad.buf, aad.len)) {
      Py_CLEAR(out);
      ERR_clear_error();
      PyErr_SetString(ST->TagError, "authentication failed");
    } else if (n != cap) {
      PyObject *exact = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
      Py_DECREF(out);
      out = exact;
    }
  }
  PyBuffer_Release(&nonce); PyBuffer_Release(&data); PyBuffer_Release(&aad);
  return out;
}

static PyMethodDef aead_methods[] = {
  {"seal", aead_seal, METH_VARARGS, "seal(nonce, plaintext, aad) -> ciphertext||tag"},
  {"open", aead_open, METH_VARARGS, "open(nonce, ciphertext||tag, aad) -> plaintext"},
  {NULL}};
static PyType_Slot aead_slots[] = {
  {Py_tp_init, aead_init}, {Py_tp_dealloc, aead_dealloc}, {Py_tp_methods, aead_methods},
  {Py_tp_new, PyType_GenericNew}, {Py_tp_doc, "AEAD(alg, key): 0 AES-128-GCM, 1 AES-256-GCM, 2 ChaCha20-Poly1305"},
  {0, NULL}};
static PyType_Spec aead_spec = {"socketiwa_crypto._awslc.AEAD", sizeof(AEADObject), 0, Py_TPFLAGS_DEFAULT, aead_slots};

/* ---------------------------------------------------------------- AES-ECB (header protection) */
typedef struct { PyObject_HEAD AES_KEY key; } AESECBObject;

static int aesecb_init(PyObject *self_, PyObject *args, PyObject *kw) {
  Py_buffer key; int rc;
  if (!PyArg_ParseTuple(args, "y*", &key)) return -1;
  rc = (key.len == 16 || key.len == 24 || key.len == 32)
       ? AES_set_encrypt_key(key.buf, (unsigned)key.len * 8, &((AESECBObject *)self_)->key) : -1;
  PyBuffer_Release(&key);
  if (rc != 0) { PyErr_SetString(ST->Error, "invalid AES key size"); return -1; }
  return 0;
}

static PyObject *aesecb_encrypt(PyObject *self_, PyObject *arg) {
  Py_buffer data; PyObject *out; uint8_t *p;
  if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) return NULL;
  if (data.len % 16) {
    PyBuffer_Release(&data);
    return PyErr_Format(ST->Error, "ECB data must be a multiple of 16 bytes, got %zd", data.len);
  }
  if ((out = new_bytes(data.len, &p)))
    for (Py_ssize_t i = 0; i < data.len; i += 16)
      AES_ecb_encrypt((const uint8_t *)data.buf + i, p + i, &((AESECBObject *)self_)->key, AES_ENCRYPT);
  PyBuffer_Release(&data);
  return out;
}

static PyMethodDef aesecb_methods[] = {{"encrypt", aesecb_encrypt, METH_O, "AES-ECB encrypt whole blocks"}, {NULL}};
static PyType_Slot aesecb_slots[] = {
  {Py_tp_init, aesecb_init}, {Py_tp_methods, aesecb_methods}, {Py_tp_new, PyType_GenericNew}, {0, NULL}};
static PyType_Spec aesecb_spec = {"socketiwa_crypto._awslc.AESECB", sizeof(AESECBObject), 0, Py_TPFLAGS_DEFAULT, aesecb_slots};

/* chacha20(key32, nonce16, data): cryptography's layout, a 4-byte little-endian counter then a 12-byte nonce */
static PyObject *chacha20(PyObject *m, PyObject *args) {
  Py_buffer key, nonce, data; PyObject *out = NULL; uint8_t *p;
  if (!PyArg_ParseTuple(args, "y*y*y*", &key, &nonce, &data)) return NULL;
  if (key.len != 32 || nonce.len != 16) {
    PyErr_SetString(ST->Error, "ChaCha20 needs a 32-byte key and a 16-byte nonce");
  } else if ((out = new_bytes(data.len, &p))) {
    const uint8_t *n = nonce.buf;
    uint32_t counter = (uint32_t)n[0] | (uint32_t)n[1] << 8 | (uint32_t)n[2] << 16 | (uint32_t)n[3] << 24;
    CRYPTO_chacha_20(p, data.buf, data.len, key.buf, n + 4, counter);
  }
  PyBuffer_Release(&key); PyBuffer_Release(&nonce); PyBuffer_Release(&data);
  return out;
}

/* ---------------------------------------------------------------- keys */
typedef struct { PyObject_HEAD EVP_PKEY *pkey; } PKeyObject;

static PyObject *wrap_pkey(EVP_PKEY *pkey) {
  if (!pkey) return raise_lib("key operation failed");
  PKeyObject *o = PyObject_New(PKeyObject, (PyTypeObject *)ST->PKeyType);
  if (!o) { EVP_PKEY_free(pkey); return NULL; }
  o->pkey = pkey;
  return (PyObject *)o;
}

static void pkey_dealloc(PyObject *self_) {
  EVP_PKEY_free(((PKeyObject *)self_)->pkey);
  PyTypeObject *tp = Py_TYPE(self_);
  PyObject_Free(self_);
  Py_DECREF(tp);
}

static EVP_PKEY *pkey_of(PyObject *o) {
  if (!PyObject_TypeCheck(o, (PyTypeObject *)ST->PKeyType)) {
    PyErr_SetString(PyExc_TypeError, "expected a PKey");
    return NULL;
  }
  return ((PKeyObject *)o)->pkey;
}

static int curve_nid(const char *name) {
  if (!strcmp(name, "secp256r1")) return NID_X9_62_prime256v1;
  if (!strcmp(name, "secp384r1")) return NID_secp384r1;
  if (!strcmp(name, "secp521r1")) return NID_secp521r1;
  return NID_undef;
}

static const char *curve_name(int nid) {
  return nid == NID_X9_62_prime256v1 ? "secp256r1" : nid == NID_secp384r1 ? "secp384r1"
       : nid == NID_secp521r1 ? "secp521r1" : NULL;
}

static int raw_type(const char *kind) {
  return !strcmp(kind, "x25519") ? EVP_PKEY_X25519 : !strcmp(kind, "ed25519") ? EVP_PKEY_ED25519 : EVP_PKEY_NONE;
}

/* generate(kind, param): kind "x25519" | "ed25519" | "ec" (param: curve name) | "rsa" (param: bits) */
static PyObject *generate(PyObject *m, PyObject *args) {
  const char *kind; PyObject *param = Py_None; EVP_PKEY *pkey = NULL;
  if (!PyArg_ParseTuple(args, "s|O", &kind, &param)) return NULL;
  if (raw_type(kind) != EVP_PKEY_NONE) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(raw_type(kind), NULL);
    if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1) pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
  } else if (!strcmp(kind, "ec")) {
    const char *curve = PyUnicode_Check(param) ? PyUnicode_AsUTF8AndSize(param, NULL) : NULL;
    int nid = curve ? curve_nid(curve) : NID_undef;
    if (nid == NID_undef) return PyErr_Format(ST->Error, "unsupported curve");
    EC_KEY *ec = EC_KEY_new_by_curve_name(nid);
    if (ec && EC_KEY_generate_key(ec) && (pkey = EVP_PKEY_new()) && !EVP_PKEY_assign_EC_KEY(pkey, ec)) {
      EVP_PKEY_free(pkey); pkey = NULL;
    } else if (!pkey) EC_KEY_free(ec);
  } else if (!strcmp(kind, "rsa")) {
    long bits = PyLong_AsLong(param);
    if (bits < 1024 || bits > 16384) return PyErr_Format(ST->Error, "RSA key size must be 1024..16384");
    RSA *rsa = RSA_new(); BIGNUM *e = BN_new();
    if (rsa && e && BN_set_word(e, RSA_F4) && RSA_generate_key_ex(rsa, (int)bits, e, NULL) &&
        (pkey = EVP_PKEY_new()) && EVP_PKEY_assign_RSA(pkey, rsa)) rsa = NULL;
    else { EVP_PKEY_free(pkey); pkey = NULL; }
    RSA_free(rsa); BN_free(e);
  } else {
    return PyErr_Format(ST->Error, "unsupported key type %s", kind);
  }
  return wrap_pkey(pkey);
}

/* from_raw(kind, data, private) for x25519 / ed25519 */
static PyObject *from_raw(PyObject *m, PyObject *args) {
  const char *kind; Py_buffer data; int private_; EVP_PKEY *pkey;
  if (!PyArg_ParseTuple(args, "sy*p", &kind, &data, &private_)) return NULL;
  int type = raw_type(kind);
  if (type == EVP_PKEY_NONE) { PyBuffer_Release(&data); return PyErr_Format(ST->Error, "unsupported key type %s", kind); }
  pkey = private_ ? EVP_PKEY_new_raw_private_key(type, NULL, data.buf, data.len)
                  : EVP_PKEY_new_raw_public_key(type, NULL, data.buf, data.len);
  PyBuffer_Release(&data);
  return wrap_pkey(pkey);
}

/* ec_from_point(curve, encoded_point) */
static PyObject *ec_from_point(PyObject *m, PyObject *args) {
  const char *curve; Py_buffer data; EVP_PKEY *pkey = NULL;
  if (!PyArg_ParseTuple(args, "sy*", &curve, &data)) return NULL;
  int nid = curve_nid(curve);
  EC_KEY *ec = nid == NID_undef ? NULL : EC_KEY_new_by_curve_name(nid);
  EC_POINT *pt = ec ? EC_POINT_new(EC_KEY_get0_group(ec)) : NULL;
  if (pt && EC_POINT_oct2point(EC_KEY_get0_group(ec), pt, data.buf, data.len, NULL) &&
      EC_KEY_set_public_key(ec, pt) && (pkey = EVP_PKEY_new()) && EVP_PKEY_assign_EC_KEY(pkey, ec)) ec = NULL;
  else { EVP_PKEY_free(pkey); pkey = NULL; }
  EC_POINT_free(pt); EC_KEY_free(ec);
  PyBuffer_Release(&data);
  if (!pkey) { ERR_clear_error(); return PyErr_Format(ST->Error, "invalid EC point for %s", curve); }
  return wrap_pkey(pkey);
}

/* load_der(der, private): PKCS#8 / traditional private keys, or SubjectPublicKeyInfo */
static PyObject *load_der(PyObject *m, PyObject *args) {
  Py_buffer data; int private_; EVP_PKEY *pkey;
  if (!PyArg_ParseTuple(args, "y*p", &data, &private_)) return NULL;
  const uint8_t *p = data.buf;
  pkey = private_ ? d2i_AutoPrivateKey(NULL, &p, data.len) : d2i_PUBKEY(NULL, &p, data.len);
  PyBuffer_Release(&data);
  if (!pkey) { ERR_clear_error(); return PyErr_Format(ST->Error, "could not parse %s key", private_ ? "private" : "public"); }
  return wrap_pkey(pkey);
}

static PyObject *pkey_kind(PyObject *self, PyObject *unused) {
  switch (EVP_PKEY_id(((PKeyObject *)self)->pkey)) {
    case EVP_PKEY_X25519: return PyUnicode_FromString("x25519");
    case EVP_PKEY_ED25519: return PyUnicode_FromString("ed25519");
    case EVP_PKEY_EC: return PyUnicode_FromString("ec");
    case EVP_PKEY_RSA: return PyUnicode_FromString("rsa");
    case EVP_PKEY_RSA_PSS: return PyUnicode_FromString("rsa");
    default: return PyUnicode_FromString("unknown");
  }
}

static PyObject *pkey_curve(PyObject *self, PyObject *unused) {
  const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(((PKeyObject *)self)->pkey);
  const char *name = ec ? curve_name(EC_GROUP_get_curve_name(EC_KEY_get0_group(ec))) : NULL;
  if (!name) Py_RETURN_NONE;
  return PyUnicode_FromString(name);
}

static PyObject *pkey_bits(PyObject *self, PyObject *unused) {
  return PyLong_FromLong(EVP_PKEY_bits(((PKeyObject *)self)->pkey));
}

static PyObject *pkey_has_private(PyObject *self, PyObject *unused) {
  EVP_PKEY *k = ((PKeyObject *)self)->pkey;
  int id = EVP_PKEY_id(k), has;
  if (id == EVP_PKEY_EC) has = EC_KEY_get0_private_key(EVP_PKEY_get0_EC_KEY(k)) != NULL;
  else if (id == EVP_PKEY_RSA) { const BIGNUM *d = NULL; RSA_get0_key(EVP_PKEY_get0_RSA(k), NULL, NULL, &d); has = d != NULL; }
  else { size_t n = 0; has = EVP_PKEY_get_raw_private_key(k, NULL, &n) == 1; ERR_clear_error(); }
  return PyBool_FromLong(has);
}

static PyObject *pkey_raw(PyObject *self, PyObject *args) {
  int private_; size_t n = 0; uint8_t *p; PyObject *out;
  EVP_PKEY *k = ((PKeyObject *)self)->pkey;
  if (!PyArg_ParseTuple(args, "p", &private_)) return NULL;
  int (*get)(const EVP_PKEY *, uint8_t *, size_t *) = private_ ? EVP_PKEY_get_raw_private_key : EVP_PKEY_get_raw_public_key;
  if (get(k, NULL, &n) != 1) return raise_lib("key has no raw form");
  if ((out = new_bytes(n, &p)) && get(k, p, &n) != 1) { Py_DECREF(out); return raise_lib("raw key export failed"); }
  return out;
}

/* ec_point(compressed) -> X9.62 encoded public point */
static PyObject *pkey_ec_point(PyObject *self, PyObject *args) {
  int compressed; uint8_t *buf = NULL; PyObject *out;
  if (!PyArg_ParseTuple(args, "p", &compressed)) return NULL;
  const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(((PKeyObject *)self)->pkey);
  if (!ec) return PyErr_Format(ST->Error, "not an EC key");
  const EC_GROUP *group = EC_KEY_get0_group(ec);
  point_conversion_form_t form = compressed ? POINT_CONVERSION_COMPRESSED : POINT_CONVERSION_UNCOMPRESSED;
  size_t n = EC_POINT_point2oct(group, EC_KEY_get0_public_key(ec), form, NULL, 0, NULL);
  if (!n) return raise_lib("EC point export failed");
  if ((out = new_bytes(n, &buf)) && !EC_POINT_point2oct(group, EC_KEY_get0_public_key(ec), form, buf, n, NULL)) {
    Py_DECREF(out);
    return raise_lib("EC point export failed");
  }
  return out;
}

/* to_der(what): "spki" public SubjectPublicKeyInfo, "pkcs8" private, "traditional" private, "pkcs1" public RSA */
static PyObject *pkey_to_der(PyObject *self, PyObject *args) {
  const char *what; uint8_t *buf = NULL; size_t n = 0; int len = -1; PyObject *out;
  EVP_PKEY *k = ((PKeyObject *)self)->pkey;
  if (!PyArg_ParseTuple(args, "s", &what)) return NULL;
  if (!strcmp(what, "spki")) len = i2d_PUBKEY(k, &buf);
  else if (!strcmp(what, "traditional")) len = i2d_PrivateKey(k, &buf);
  else if (!strcmp(what, "pkcs1") && EVP_PKEY_get0_RSA(k)) len = i2d_RSAPublicKey(EVP_PKEY_get0_RSA(k), &buf);
  else if (!strcmp(what, "pkcs8")) {
    CBB cbb;
    if (CBB_init(&cbb, 0) && EVP_marshal_private_key(&cbb, k) && CBB_finish(&cbb, &buf, &n)) len = (int)n;
    else CBB_cleanup(&cbb);
  } else return PyErr_Format(ST->Error, "unknown DER form %s", what);
  if (len < 0) return raise_lib("DER export failed");
  out = PyBytes_FromStringAndSize((const char *)buf, len);
  OPENSSL_free(buf);
  return out;
}

/* derive(peer_public) -> shared secret (X25519 or ECDH) */
static PyObject *pkey_derive(PyObject *self, PyObject *arg) {
  EVP_PKEY *peer = pkey_of(arg); size_t n = 0; uint8_t *p; PyObject *out = NULL;
  if (!peer) return NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(((PKeyObject *)self)->pkey, NULL);
  if (ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
      EVP_PKEY_derive(ctx, NULL, &n) == 1 && (out = new_bytes(n, &p))) {
    if (EVP_PKEY_derive(ctx, p, &n) != 1) Py_CLEAR(out);
    else if (n != (size_t)PyBytes_Size(out)) { PyObject *t = PyBytes_FromStringAndSize((char *)p, n); Py_DECREF(out); out = t; }
  }
  EVP_PKEY_CTX_free(ctx);
  if (!out && !PyErr_Occurred()) return raise_lib("key exchange failed");
  return out;
}

static const EVP_MD *md_by_name(const char *name) {
  if (!name || !*name) return NULL;
  if (!strcmp(name, "sha256")) return EVP_sha256();
  if (!strcmp(name, "sha384")) return EVP_sha384();
  if (!strcmp(name, "sha512")) return EVP_sha512();
  if (!strcmp(name, "sha1")) return EVP_sha1();
  if (!strcmp(name, "sha224")) return EVP_sha224();
  return NULL;
}

/* Set up a DigestSign/DigestVerify context. padding: 0 none (EC/Ed25519), 1 PKCS#1 v1.5, 2 PSS.
   salt: PSS salt length, -1 = digest length, -2 = maximum. */
static int digest_setup(EVP_MD_CTX *mctx, EVP_PKEY *k, const char *md_name, int padding, int salt, int sign) {
  EVP_PKEY_CTX *pctx = NULL;
  const EVP_MD *md = md_by_name(md_name);
  if (md_name && *md_name && !md) { PyErr_Format(ST->Error, "unsupported hash %s", md_name); return 0; }
  int ok = sign ? EVP_DigestSignInit(mctx, &pctx, md, NULL, k) : EVP_DigestVerifyInit(mctx, &pctx, md, NULL, k);
  if (ok == 1 && EVP_PKEY_id(k) == EVP_PKEY_RSA) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, padding == 2 ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) == 1;
    if (ok && padding == 2)
      ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) == 1 && EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1;
  }
  if (ok != 1) { raise_lib(sign ? "signing setup failed" : "verification setup failed"); return 0; }
  return 1;
}

/* sign(data, md_name, padding, salt) -> signature (DER for ECDSA) */
static PyObject *pkey_sign(PyObject *self, PyObject *args) {
  Py_buffer data; const char *md; int padding, salt; size_t n = 0; uint8_t *p; PyObject *out = NULL;
  if (!PyArg_ParseTuple(args, "y*zii", &data, &md, &padding, &salt)) return NULL;
  EVP_MD_CTX *mctx = EVP_MD_CTX_new();
  if (digest_setup(mctx, ((PKeyObject *)self)->pkey, md, padding, salt, 1)) {
    if (EVP_DigestSign(mctx, NULL, &n, data.buf, data.len) == 1 && (out = new_bytes(n, &p))) {
      if (EVP_DigestSign(mctx, p, &n, data.buf, data.len) != 1) { Py_CLEAR(out); raise_lib("signing failed"); }
      else if (n != (size_t)PyBytes_Size(out)) { PyObject *t = PyBytes_FromStringAndSize((char *)p, n); Py_DECREF(out); out = t; }
    } else if (!PyErr_Occurred()) raise_lib("signing failed");
  }
  EVP_MD_CTX_free(mctx);
  PyBuffer_Release(&data);
  return out;
}

/* verify(signature, data, md_name, padding, salt) -> bool */
static PyObject *pkey_verify(PyObject *self, PyObject *args) {
  Py_buffer sig, data; const char *md; int padding, salt, good = -1;
  if (!PyArg_ParseTuple(args, "y*y*zii", &sig, &data, &md, &padding, &salt)) return NULL;
  EVP_MD_CTX *mctx = EVP_MD_CTX_new();
  if (digest_setup(mctx, ((PKeyObject *)self)->pkey, md, padding, salt, 0)) {
    good = EVP_DigestVerify(mctx, sig.buf, sig.len, data.buf, data.len) == 1;
    ERR_clear_error();
  }
  EVP_MD_CTX_free(mctx);
  PyBuffer_Release(&sig); PyBuffer_Release(&data);
  if (good < 0) return NULL;
  return PyBool_FromLong(good);
}

/* rsa_numbers() -> (n, e) as big-endian bytes, for public_numbers() */
static PyObject *pkey_rsa_numbers(PyObject *self, PyObject *unused) {
  const RSA *rsa = EVP_PKEY_get0_RSA(((PKeyObject *)self)->pkey);
  const BIGNUM *n = NULL, *e = NULL;
  if (!rsa) return PyErr_Format(ST->Error, "not an RSA key");
  RSA_get0_key(rsa, &n, &e, NULL);
  PyObject *nb = PyBytes_FromStringAndSize(NULL, BN_num_bytes(n)), *eb = PyBytes_FromStringAndSize(NULL, BN_num_bytes(e));
  if (!nb || !eb) { Py_XDECREF(nb); Py_XDECREF(eb); return NULL; }
  BN_bn2bin(n, (uint8_t *)PyBytes_AsString(nb));
  BN_bn2bin(e, (uint8_t *)PyBytes_AsString(eb));
  return Py_BuildValue("(NN)", nb, eb);
}

static PyMethodDef pkey_methods[] = {
  {"kind", pkey_kind, METH_NOARGS, NULL}, {"curve", pkey_curve, METH_NOARGS, NULL},
  {"bits", pkey_bits, METH_NOARGS, NULL}, {"has_private", pkey_has_private, METH_NOARGS, NULL},
  {"raw", pkey_raw, METH_VARARGS, NULL}, {"ec_point", pkey_ec_point, METH_VARARGS, NULL},
  {"to_der", pkey_to_der, METH_VARARGS, NULL}, {"derive", pkey_derive, METH_O, NULL},
  {"sign", pkey_sign, METH_VARARGS, NULL}, {"verify", pkey_verify, METH_VARARGS, NULL},
  {"rsa_numbers", pkey_rsa_numbers, METH_NOARGS, NULL},
  {NULL}};
static PyType_Slot pkey_slots[] = {{Py_tp_dealloc, pkey_dealloc}, {Py_tp_methods, pkey_methods}, {0, NULL}};
static PyType_Spec pkey_spec = {"socketiwa_crypto._awslc.PKey", sizeof(PKeyObject), 0, Py_TPFLAGS_DEFAULT, pkey_slots};

/* ---------------------------------------------------------------- certificates */
typedef struct { PyObject_HEAD X509 *x509; } CertObject;

static void cert_dealloc(PyObject *self_) {
  X509_free(((CertObject *)self_)->x509);
  PyTypeObject *tp = Py_TYPE(self_);
  PyObject_Free(self_);
  Py_DECREF(tp);
}

/* load_certificate(der) */
static PyObject *load_certificate(PyObject *m, PyObject *arg) {
  Py_buffer data;
  if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) return NULL;
  const uint8_t *p = data.buf;
  X509 *x = d2i_X509(NULL, &p, data.len);
  int trailing = x && p != (const uint8_t *)data.buf + data.len;
  PyBuffer_Release(&data);
  if (!x || trailing) { X509_free(x); ERR_clear_error(); return PyErr_Format(ST->Error, "could not parse X.509 certificate"); }
  CertObject *o = PyObject_New(CertObject, (PyTypeObject *)ST->CertType);
  if (!o) { X509_free(x); return NULL; }
  o->x509 = x;
  return (PyObject *)o;
}

static X509 *x509_of(PyObject *o) {
  if (!PyObject_TypeCheck(o, (PyTypeObject *)ST->CertType)) { PyErr_SetString(PyExc_TypeError, "expected a certificate"); return NULL; }
  return ((CertObject *)o)->x509;
}

static PyObject *cert_der(PyObject *self, PyObject *unused) {
  uint8_t *buf = NULL;
  int len = i2d_X509(((CertObject *)self)->x509, &buf);
  if (len < 0) return raise_lib("certificate export failed");
  PyObject *out = PyBytes_FromStringAndSize((const char *)buf, len);
  OPENSSL_free(buf);
  return out;
}

static PyObject *cert_public_key(PyObject *self, PyObject *unused) {
  return wrap_pkey(X509_get_pubkey(((CertObject *)self)->x509));
}

static PyObject *time_to_py(const ASN1_TIME *t) {
  int64_t posix;
  if (!t || !ASN1_TIME_to_posix(t, &posix)) return raise_lib("bad certificate time");
  return PyLong_FromLongLong(posix);
}

/* validity() -> (not_before, not_after) as POSIX seconds */
static PyObject *cert_validity(PyObject *self, PyObject *unused) {
  X509 *x = ((CertObject *)self)->x509;
  PyObject *a = time_to_py(X509_get0_notBefore(x)), *b = a ? time_to_py(X509_get0_notAfter(x)) : NULL;
  if (!b) { Py_XDECREF(a); return NULL; }
  return Py_BuildValue("(NN)", a, b);
}

/* name(issuer) -> [(dotted_oid, utf8_value), ...] in certificate order */
static PyObject *cert_name(PyObject *self, PyObject *args) {
  int issuer;
  if (!PyArg_ParseTuple(args, "p", &issuer)) return NULL;
  X509 *x = ((CertObject *)self)->x509;
  X509_NAME *name = issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x);
  PyObject *list = PyList_New(0);
  for (int i = 0; list && i < X509_NAME_entry_count(name); i++) {
    X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
    char oid[80]; uint8_t *utf8 = NULL;
    OBJ_obj2txt(oid, sizeof oid, X509_NAME_ENTRY_get_object(e), 1);
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    PyObject *item = n < 0 ? NULL : Py_BuildValue("(ss#)", oid, (const char *)utf8, (Py_ssize_t)n);
    OPENSSL_free(utf8);
    if (!item || PyList_Append(list, item) < 0) { Py_XDECREF(item); Py_CLEAR(list); if (!PyErr_Occurred()) raise_lib("bad name"); break; }
    Py_DECREF(item);
  }
  return list;
}

/* san() -> [("dns", str) | ("ip", bytes), ...] or None without the extension */
static PyObject *cert_san(PyObject *self, PyObject *unused) {
  int crit = 0;
  GENERAL_NAMES *names = X509_get_ext_d2i(((CertObject *)self)->x509, NID_subject_alt_name, &crit, NULL);
  if (!names) { ERR_clear_error(); Py_RETURN_NONE; }
  PyObject *list = PyList_New(0);
  for (size_t i = 0; list && i < sk_GENERAL_NAME_num(names); i++) {
    GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    PyObject *item = NULL;
    if (g->type == GEN_DNS)
      item = Py_BuildValue("(ss#)", "dns", (const char *)ASN1_STRING_get0_data(g->d.dNSName), (Py_ssize_t)ASN1_STRING_length(g->d.dNSName));
    else if (g->type == GEN_IPADD)
      item = Py_BuildValue("(sy#)", "ip", (const char *)ASN1_STRING_get0_data(g->d.iPAddress), (Py_ssize_t)ASN1_STRING_length(g->d.iPAddress));
    else continue;
    if (!item || PyList_Append(list, item) < 0) { Py_XDECREF(item); Py_CLEAR(list); break; }
    Py_DECREF(item);
  }
  GENERAL_NAMES_free(names);
  return list;
}

static PyObject *cert_serial(PyObject *self, PyObject *unused) {
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(((CertObject *)self)->x509), NULL);
  if (!bn) return raise_lib("bad serial number");
  PyObject *out = PyBytes_FromStringAndSize(NULL, BN_num_bytes(bn));
  if (out) BN_bn2bin(bn, (uint8_t *)PyBytes_AsString(out));
  BN_free(bn);
  return out;
}

static PyMethodDef cert_methods[] = {
  {"der", cert_der, METH_NOARGS, NULL}, {"public_key", cert_public_key, METH_NOARGS, NULL},
  {"validity", cert_validity, METH_NOARGS, NULL}, {"name", cert_name, METH_VARARGS, NULL},
  {"san", cert_san, METH_NOARGS, NULL}, {"serial", cert_serial, METH_NOARGS, NULL},
  {NULL}};
static PyType_Slot cert_slots[] = {{Py_tp_dealloc, cert_dealloc}, {Py_tp_methods, cert_methods}, {0, NULL}};
static PyType_Spec cert_spec = {"socketiwa_crypto._awslc.Certificate", sizeof(CertObject), 0, Py_TPFLAGS_DEFAULT, cert_slots};

/* verify_chain(leaf, intermediates, roots, at_time or None): raises VerifyError(code, message, depth) */
static PyObject *verify_chain(PyObject *m, PyObject *args) {
  PyObject *leaf, *inter, *roots, *at; X509 *leaf_x;
  if (!PyArg_ParseTuple(args, "OOOO", &leaf, &inter, &roots, &at) || !(leaf_x = x509_of(leaf))) return NULL;
  X509_STORE *store = X509_STORE_new();
  STACK_OF(X509) *chain = sk_X509_new_null();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  PyObject *result = NULL;
  Py_ssize_t i;
  for (i = 0; i < PyList_Size(roots); i++) {
    X509 *x = x509_of(PyList_GetItem(roots, i));
    if (!x || !X509_STORE_add_cert(store, x)) goto done;
  }
  for (i = 0; i < PyList_Size(inter); i++) {
    X509 *x = x509_of(PyList_GetItem(inter, i));
    if (!x || !sk_X509_push(chain, x)) goto done;
    X509_up_ref(x);
  }
  if (!X509_STORE_CTX_init(ctx, store, leaf_x, chain)) { raise_lib("verification setup failed"); goto done; }
  if (at != Py_None) X509_STORE_CTX_set_time_posix(ctx, 0, PyLong_AsLongLong(at));
  if (X509_verify_cert(ctx) == 1) { result = Py_None; Py_INCREF(result); }
  else {
    int code = X509_STORE_CTX_get_error(ctx);
    PyObject *exc_args = Py_BuildValue("(isi)", code, X509_verify_cert_error_string(code), X509_STORE_CTX_get_error_depth(ctx));
    if (exc_args) { PyErr_SetObject(ST->VerifyError, exc_args); Py_DECREF(exc_args); }
  }
done:
  ERR_clear_error();
  X509_STORE_CTX_free(ctx);
  sk_X509_pop_free(chain, X509_free);
  X509_STORE_free(store);
  if (!result && !PyErr_Occurred()) PyErr_SetString(ST->Error, "certificate verification failed");
  return result;
}

/* ---------------------------------------------------------------- module */
static PyMethodDef module_methods[] = {
  {"chacha20", chacha20, METH_VARARGS, "chacha20(key, nonce16, data)"},
  {"generate", generate, METH_VARARGS, "generate(kind, param=None) -> PKey"},
  {"from_raw", from_raw, METH_VARARGS, "from_raw(kind, data, private) -> PKey"},
  {"ec_from_point", ec_from_point, METH_VARARGS, "ec_from_point(curve, point) -> PKey"},
  {"load_der", load_der, METH_VARARGS, "load_der(der, private) -> PKey"},
  {"load_certificate", load_certificate, METH_O, "load_certificate(der) -> Certificate"},
  {"verify_chain", verify_chain, METH_VARARGS, "verify_chain(leaf, intermediates, roots, at_time)"},
  {NULL}};

static int module_traverse(PyObject *m, visitproc visit, void *arg) {
  module_state *s = state_of(m);
  Py_VISIT(s->Error); Py_VISIT(s->TagError); Py_VISIT(s->VerifyError);
  Py_VISIT(s->AEADType); Py_VISIT(s->AESECBType); Py_VISIT(s->PKeyType); Py_VISIT(s->CertType);
  return 0;
}

static struct PyModuleDef moduledef = {
  PyModuleDef_HEAD_INIT, "_awslc", "AWS-LC libcrypto for socketiwa_crypto", sizeof(module_state),
  module_methods, NULL, module_traverse, NULL, NULL};

PyMODINIT_FUNC PyInit__awslc(void) {
  PyObject *m = PyModule_Create(&moduledef);
  if (!m) return NULL;
  module_state *s = state_of(m);
  the_module = m;
  s->Error = PyErr_NewException("socketiwa_crypto._awslc.Error", PyExc_ValueError, NULL);
  s->TagError = PyErr_NewException("socketiwa_crypto._awslc.TagError", s->Error, NULL);
  s->VerifyError = PyErr_NewException("socketiwa_crypto._awslc.VerifyError", s->Error, NULL);
  s->AEADType = PyType_FromSpec(&aead_spec);
  s->AESECBType = PyType_FromSpec(&aesecb_spec);
  s->PKeyType = PyType_FromSpec(&pkey_spec);
  s->CertType = PyType_FromSpec(&cert_spec);
  if (!s->Error || !s->TagError || !s->VerifyError || !s->AEADType || !s->AESECBType || !s->PKeyType || !s->CertType ||
      PyModule_AddObjectRef(m, "Error", s->Error) < 0 || PyModule_AddObjectRef(m, "TagError", s->TagError) < 0 ||
      PyModule_AddObjectRef(m, "VerifyError", s->VerifyError) < 0 ||
      PyModule_AddObjectRef(m, "AEAD", s->AEADType) < 0 || PyModule_AddObjectRef(m, "AESECB", s->AESECBType) < 0 ||
      PyModule_AddObjectRef(m, "PKey", s->PKeyType) < 0 || PyModule_AddObjectRef(m, "Certificate", s->CertType) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
