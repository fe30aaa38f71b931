/* socketiwa_crypto._awslc: the few AWS-LC (libcrypto) entry points the provider needs.
 *
 * Kept deliberately small and flat: the Python layer (socketiwa_crypto/*.py) shapes these into
 * the cryptography / pyOpenSSL interfaces aioquic uses. Hot paths (AEAD seal/open, header
 * protection) take a pre-keyed object and do one allocation, the result bytes.
 * Python limited API (abi3, 3.11+) so one wheel serves every Pyodide.
 *
 * Every type is created only by this module's factory functions (Py_TPFLAGS_DISALLOW_INSTANTIATION):
 * an object built with tp_new alone would hold NULL pointers, and its methods would crash.
 * Methods still check that state (obj_ready) so no path reaches AWS-LC with an empty object.
 * Symmetric key schedules are wiped (OPENSSL_cleanse) when an object dies. */
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
  PyObject *UnsupportedError; /* an algorithm AWS-LC does not implement */
  PyObject *DuplicateError;   /* an extension that occurs twice */
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

/* A zeroed instance of one of this module's types (their tp_new is disabled). */
static PyObject *alloc_obj(PyObject *type) { return PyType_GenericAlloc((PyTypeObject *)type, 0); }

/* TypeError for an object whose native state is missing; the types cannot be instantiated from
   Python, so this is a defence in depth, not an expected path. */
static int obj_ready(int ok) {
  if (!ok) PyErr_SetString(PyExc_TypeError, "_awslc object is not initialised (create it through socketiwa_crypto)");
  return ok;
}

static void free_obj(PyObject *self_) {
  PyTypeObject *tp = Py_TYPE(self_);
  ((freefunc)PyType_GetSlot(tp, Py_tp_free))(self_);
  Py_DECREF(tp);
}

static PyObject *new_bytes(size_t n, uint8_t **out) {
  PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
  if (b) *out = (uint8_t *)PyBytes_AsString(b);
  return b;
}

/* ---------------------------------------------------------------- AEAD */
typedef struct { PyObject_HEAD EVP_AEAD_CTX ctx; int ready; } AEADObject;

/* aead(alg, key) -> AEAD: 0 AES-128-GCM, 1 AES-256-GCM, 2 ChaCha20-Poly1305 */
static PyObject *aead_new(PyObject *m, PyObject *args) {
  int alg; Py_buffer key; AEADObject *self = NULL;
  if (!PyArg_ParseTuple(args, "iy*", &alg, &key)) return NULL;
  const EVP_AEAD *aead = alg == 0 ? EVP_aead_aes_128_gcm() : alg == 1 ? EVP_aead_aes_256_gcm()
                       : alg == 2 ? EVP_aead_chacha20_poly1305() : NULL;
  if (!aead) PyErr_SetString(ST->Error, "unknown AEAD");
  else if ((size_t)key.len != EVP_AEAD_key_length(aead)) PyErr_SetString(ST->Error, "wrong AEAD key length");
  else if ((self = (AEADObject *)alloc_obj(ST->AEADType))) {
    self->ready = EVP_AEAD_CTX_init(&self->ctx, aead, key.buf, key.len, EVP_AEAD_DEFAULT_TAG_LENGTH, NULL);
    if (!self->ready) { Py_CLEAR(self); raise_lib("AEAD key setup failed"); }
  }
  PyBuffer_Release(&key);
  return (PyObject *)self;
}

static void aead_dealloc(PyObject *self_) {
  AEADObject *self = (AEADObject *)self_;
  if (self->ready) EVP_AEAD_CTX_cleanup(&self->ctx);
  OPENSSL_cleanse(&self->ctx, sizeof self->ctx);  /* cleanup leaves the expanded key in ctx->state */
  free_obj(self_);
}

static void release_buffers(Py_buffer b[3]) {
  for (int i = 0; i < 3; i++) PyBuffer_Release(&b[i]);
}

/* The (nonce, data, aad) buffers of seal and open, checked as cryptography's AEADs check them, so
   that the provider's AESGCM/ChaCha20Poly1305.encrypt can be this method itself (one packet, one
   call, no Python frame in between: a measurable share of a seal in wasm). METH_FASTCALL with the
   buffers taken directly, no argument tuple or format parsing. Contiguous bytes-like objects
   (TypeError otherwise), aad None meaning none, and a 12-byte nonce (ValueError otherwise: every
   AEAD here takes 12). */
static int aead_buffers(PyObject *const *args, Py_ssize_t nargs, Py_buffer b[3]) {
  if (nargs != 3) {
    PyErr_Format(PyExc_TypeError, "expected 3 arguments (nonce, data, associated_data), got %zd", nargs);
    return 0;
  }
  for (int i = 0; i < 3; i++) {
    int ok = i == 2 && args[i] == Py_None ? PyBuffer_FillInfo(&b[i], NULL, (void *)"", 0, 1, PyBUF_SIMPLE) == 0
                                          : PyObject_GetBuffer(args[i], &b[i], PyBUF_SIMPLE) == 0;
    if (!ok) {
      while (i--) PyBuffer_Release(&b[i]);
      return 0;
    }
  }
  if (b[0].len != 12) {
    release_buffers(b);
    PyErr_SetString(ST->Error, "Nonce must be 12 bytes");
    return 0;
  }
  return 1;
}

/* seal(nonce, plaintext, aad) -> ciphertext || tag */
static PyObject *aead_seal(PyObject *self_, PyObject *const *args, Py_ssize_t nargs) {
  AEADObject *self = (AEADObject *)self_;
  Py_buffer b[3]; PyObject *out = NULL; uint8_t *p; size_t n = 0;
  if (!obj_ready(self->ready) || !aead_buffers(args, nargs, b)) return NULL;
  Py_buffer *nonce = &b[0], *data = &b[1], *aad = &b[2];
  size_t cap = (size_t)data->len + EVP_AEAD_max_overhead(EVP_AEAD_CTX_aead(&self->ctx));
  if ((out = new_bytes(cap, &p)) &&
      !EVP_AEAD_CTX_seal(&self->ctx, p, &n, cap, nonce->buf, nonce->len, data->buf, data->len, aad->buf, aad->len)) {
    Py_CLEAR(out);
    raise_lib("AEAD seal failed");
  }
  release_buffers(b);
  return out;
}

/* open(nonce, ciphertext||tag, aad) -> plaintext, or TagError */
static PyObject *aead_open(PyObject *self_, PyObject *const *args, Py_ssize_t nargs) {
  AEADObject *self = (AEADObject *)self_;
  Py_buffer b[3]; PyObject *out = NULL; uint8_t *p; size_t n = 0;
  if (!obj_ready(self->ready) || !aead_buffers(args, nargs, b)) return NULL;
  Py_buffer *nonce = &b[0], *data = &b[1], *aad = &b[2];
  size_t cap = (size_t)data->len;
  if ((out = new_bytes(cap, &p))) {
    if (!EVP_AEAD_CTX_open(&self->ctx, p, &n, cap, nonce->buf, nonce->len, data->buf, data->len, aad->buf, aad->len)) {
      Py_CLEAR(out);
      ERR_clear_error();
      PyErr_SetString(ST->TagError, "authentication failed");
    } else if (n != cap) {
      PyObject *exact = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
      Py_DECREF(out);
      out = exact;
    }
  }
  release_buffers(b);
  return out;
}

static PyMethodDef aead_methods[] = {
  {"seal", (PyCFunction)(void (*)(void))aead_seal, METH_FASTCALL, "seal(nonce, plaintext, aad) -> ciphertext||tag"},
  {"open", (PyCFunction)(void (*)(void))aead_open, METH_FASTCALL, "open(nonce, ciphertext||tag, aad) -> plaintext"},
  {NULL}};
static PyType_Slot aead_slots[] = {
  {Py_tp_dealloc, aead_dealloc}, {Py_tp_methods, aead_methods},
  {Py_tp_doc, "A keyed AEAD, made by aead(alg, key)"}, {0, NULL}};
#define FLAGS (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION)
static PyType_Spec aead_spec = {"socketiwa_crypto._awslc.AEAD", sizeof(AEADObject), 0, FLAGS, aead_slots};

/* ---------------------------------------------------------------- AES-ECB (header protection) */
typedef struct { PyObject_HEAD AES_KEY key; int ready; } AESECBObject;

/* aes_ecb(key) -> AESECB (16, 24 or 32-byte key) */
static PyObject *aesecb_new(PyObject *m, PyObject *arg) {
  Py_buffer key; AESECBObject *self = NULL;
  if (PyObject_GetBuffer(arg, &key, PyBUF_SIMPLE) < 0) return NULL;
  if (key.len != 16 && key.len != 24 && key.len != 32) PyErr_SetString(ST->Error, "invalid AES key size");
  else if ((self = (AESECBObject *)alloc_obj(ST->AESECBType))) {
    self->ready = AES_set_encrypt_key(key.buf, (unsigned)key.len * 8, &self->key) == 0;
    if (!self->ready) { Py_CLEAR(self); PyErr_SetString(ST->Error, "AES key setup failed"); }
  }
  PyBuffer_Release(&key);
  return (PyObject *)self;
}

static void aesecb_dealloc(PyObject *self_) {
  OPENSSL_cleanse(&((AESECBObject *)self_)->key, sizeof(AES_KEY));
  free_obj(self_);
}

static PyObject *aesecb_encrypt(PyObject *self_, PyObject *arg) {
  Py_buffer data; PyObject *out; uint8_t *p;
  if (!obj_ready(((AESECBObject *)self_)->ready) || PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) return NULL;
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
static PyType_Slot aesecb_slots[] = {{Py_tp_dealloc, aesecb_dealloc}, {Py_tp_methods, aesecb_methods}, {0, NULL}};
static PyType_Spec aesecb_spec = {"socketiwa_crypto._awslc.AESECB", sizeof(AESECBObject), 0, FLAGS, aesecb_slots};

/* chacha20(key32, nonce16, data): cryptography's layout, a 4-byte little-endian counter then a 12-byte nonce */
static PyObject *chacha20(PyObject *m, PyObject *args) {
  Py_buffer key, nonce, data; PyObject *out = NULL; uint8_t *p;
  if (!PyArg_ParseTuple(args, "y*y*y*", &key, &nonce, &data)) return NULL;
  if (key.len != 32 || nonce.len != 16) {
    PyErr_SetString(ST->Error, "ChaCha20 needs a 32-byte key and a 16-byte nonce");
  } else if ((out = new_bytes(data.len, &p))) {
    const uint8_t *n = nonce.buf;
    uint32_t counter = (uint32_t)n[0] | (uint32_t)n[1] << 8 | (uint32_t)n[2] << 16 | (uint32_t)n[3] << 24;
    /* The 32-bit block counter would wrap to 0 and repeat keystream: refuse instead. */
    if ((uint64_t)counter + ((uint64_t)data.len + 63) / 64 > ((uint64_t)1 << 32)) {
      Py_CLEAR(out);
      PyErr_SetString(PyExc_OverflowError, "ChaCha20 block counter would wrap past 2**32 blocks");
    } else {
      CRYPTO_chacha_20(p, data.buf, data.len, key.buf, n + 4, counter);
    }
  }
  PyBuffer_Release(&key); PyBuffer_Release(&nonce); PyBuffer_Release(&data);
  return out;
}

/* ---------------------------------------------------------------- keys */
typedef struct { PyObject_HEAD EVP_PKEY *pkey; } PKeyObject;

static PyObject *wrap_pkey(EVP_PKEY *pkey) {
  if (!pkey) return raise_lib("key operation failed");
  PKeyObject *o = (PKeyObject *)alloc_obj(ST->PKeyType);
  if (!o) { EVP_PKEY_free(pkey); return NULL; }
  o->pkey = pkey;
  return (PyObject *)o;
}

static void pkey_dealloc(PyObject *self_) {
  EVP_PKEY_free(((PKeyObject *)self_)->pkey);  /* AWS-LC's OPENSSL_free wipes what it frees */
  free_obj(self_);
}

static EVP_PKEY *pkey_of(PyObject *o) {
  if (!PyObject_TypeCheck(o, (PyTypeObject *)ST->PKeyType)) {
    PyErr_SetString(PyExc_TypeError, "expected a PKey");
    return NULL;
  }
  return obj_ready(((PKeyObject *)o)->pkey != NULL) ? ((PKeyObject *)o)->pkey : NULL;
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
  if (!obj_ready(((PKeyObject *)self)->pkey != NULL)) return NULL;
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
  if (!obj_ready(((PKeyObject *)self)->pkey != NULL)) return NULL;
  const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(((PKeyObject *)self)->pkey);
  const char *name = ec ? curve_name(EC_GROUP_get_curve_name(EC_KEY_get0_group(ec))) : NULL;
  if (!name) Py_RETURN_NONE;
  return PyUnicode_FromString(name);
}

static PyObject *pkey_bits(PyObject *self, PyObject *unused) {
  if (!obj_ready(((PKeyObject *)self)->pkey != NULL)) return NULL;
  return PyLong_FromLong(EVP_PKEY_bits(((PKeyObject *)self)->pkey));
}

static PyObject *pkey_has_private(PyObject *self, PyObject *unused) {
  if (!obj_ready(((PKeyObject *)self)->pkey != NULL)) return NULL;
  EVP_PKEY *k = ((PKeyObject *)self)->pkey;
  int id = EVP_PKEY_id(k), has;
  if (id == EVP_PKEY_EC) has = EC_KEY_get0_private_key(EVP_PKEY_get0_EC_KEY(k)) != NULL;
  else if (id == EVP_PKEY_RSA) { const BIGNUM *d = NULL; RSA_get0_key(EVP_PKEY_get0_RSA(k), NULL, NULL, &d); has = d != NULL; }
  else { size_t n = 0; has = EVP_PKEY_get_raw_private_key(k, NULL, &n) == 1; ERR_clear_error(); }
  return PyBool_FromLong(has);
}

static PyObject *pkey_raw(PyObject *self, PyObject *args) {
  if (!obj_ready(((PKeyObject *)self)->pkey != NULL)) return NULL;
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
  if (!obj_ready(((PKeyObject *)self)->pkey != NULL)) return NULL;
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
  if (!obj_ready(((PKeyObject *)self)->pkey != NULL)) return NULL;
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
  if (!obj_ready(((PKeyObject *)self)->pkey != NULL)) return NULL;
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
  if (!obj_ready(((PKeyObject *)self)->pkey != NULL)) return NULL;
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
  if (!obj_ready(((PKeyObject *)self)->pkey != NULL)) return NULL;
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
  if (!obj_ready(((PKeyObject *)self)->pkey != NULL)) return NULL;
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
static PyType_Spec pkey_spec = {"socketiwa_crypto._awslc.PKey", sizeof(PKeyObject), 0, FLAGS, pkey_slots};

/* ---------------------------------------------------------------- certificates */
typedef struct { PyObject_HEAD X509 *x509; } CertObject;

static void cert_dealloc(PyObject *self_) {
  X509_free(((CertObject *)self_)->x509);
  free_obj(self_);
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
  CertObject *o = (CertObject *)alloc_obj(ST->CertType);
  if (!o) { X509_free(x); return NULL; }
  o->x509 = x;
  return (PyObject *)o;
}

static X509 *x509_of(PyObject *o) {
  if (!PyObject_TypeCheck(o, (PyTypeObject *)ST->CertType)) { PyErr_SetString(PyExc_TypeError, "expected a certificate"); return NULL; }
  return obj_ready(((CertObject *)o)->x509 != NULL) ? ((CertObject *)o)->x509 : NULL;
}

static PyObject *cert_der(PyObject *self, PyObject *unused) {
  if (!obj_ready(((CertObject *)self)->x509 != NULL)) return NULL;
  uint8_t *buf = NULL;
  int len = i2d_X509(((CertObject *)self)->x509, &buf);
  if (len < 0) return raise_lib("certificate export failed");
  PyObject *out = PyBytes_FromStringAndSize((const char *)buf, len);
  OPENSSL_free(buf);
  return out;
}

/* Key algorithms AWS-LC parses: a key of one of these that fails to load is malformed
   (ValueError); any other algorithm is unsupported (UnsupportedError), as in cryptography. */
static int known_key_algorithm(int nid) {
  return nid == NID_rsaEncryption || nid == NID_X9_62_id_ecPublicKey || nid == NID_ED25519 ||
         nid == NID_X25519 || nid == NID_dsa || nid == NID_rsassaPss;
}

static PyObject *cert_public_key(PyObject *self, PyObject *unused) {
  if (!obj_ready(((CertObject *)self)->x509 != NULL)) return NULL;
  X509 *x = ((CertObject *)self)->x509;
  EVP_PKEY *pkey = X509_get_pubkey(x);
  if (!pkey) {
    const ASN1_OBJECT *alg = NULL;
    X509_PUBKEY *spki = X509_get_X509_PUBKEY(x);
    if (spki) X509_PUBKEY_get0_param((ASN1_OBJECT **)&alg, NULL, NULL, NULL, spki);
    int nid = alg ? OBJ_obj2nid(alg) : NID_undef;
    if (!known_key_algorithm(nid)) {
      char oid[80] = "?";
      if (alg) OBJ_obj2txt(oid, sizeof oid, alg, 1);
      ERR_clear_error();
      return PyErr_Format(ST->UnsupportedError, "unsupported public key algorithm %s", oid);
    }
  }
  return wrap_pkey(pkey);
}

static PyObject *time_to_py(const ASN1_TIME *t) {
  int64_t posix;
  if (!t || !ASN1_TIME_to_posix(t, &posix)) return raise_lib("bad certificate time");
  return PyLong_FromLongLong(posix);
}

/* validity() -> (not_before, not_after) as POSIX seconds */
static PyObject *cert_validity(PyObject *self, PyObject *unused) {
  if (!obj_ready(((CertObject *)self)->x509 != NULL)) return NULL;
  X509 *x = ((CertObject *)self)->x509;
  PyObject *a = time_to_py(X509_get0_notBefore(x)), *b = a ? time_to_py(X509_get0_notAfter(x)) : NULL;
  if (!b) { Py_XDECREF(a); return NULL; }
  return Py_BuildValue("(NN)", a, b);
}

/* name(issuer) -> [(dotted_oid, utf8_value), ...] in certificate order */
static PyObject *cert_name(PyObject *self, PyObject *args) {
  if (!obj_ready(((CertObject *)self)->x509 != NULL)) return NULL;
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

/* extensions_ok(): Error when an extension occurs twice or one AWS-LC knows cannot be decoded;
   cryptography refuses such certificates when its ``extensions`` are read. */
static PyObject *cert_extensions_ok(PyObject *self, PyObject *unused) {
  if (!obj_ready(((CertObject *)self)->x509 != NULL)) return NULL;
  X509 *x = ((CertObject *)self)->x509;
  int n = X509_get_ext_count(x);
  for (int i = 0; i < n; i++) {
    X509_EXTENSION *ext = X509_get_ext(x, i);
    const ASN1_OBJECT *oid = X509_EXTENSION_get_object(ext);
    char txt[80];
    OBJ_obj2txt(txt, sizeof txt, oid, 1);
    for (int j = 0; j < i; j++)
      if (!OBJ_cmp(oid, X509_EXTENSION_get_object(X509_get_ext(x, j))))
        return PyErr_Format(ST->DuplicateError, "duplicate %s extension", txt);
    if (X509V3_EXT_get(ext)) {
      void *value = X509V3_EXT_d2i(ext);
      if (!value) { ERR_clear_error(); return PyErr_Format(ST->Error, "malformed %s extension", txt); }
      X509V3_EXT_free(OBJ_obj2nid(oid), value);
    }
  }
  Py_RETURN_NONE;
}

/* san() -> [("dns", str) | ("ip", bytes) | ("uri", str) | ("srv", str), ...] or None without the
   extension; Error if it is malformed */
static PyObject *cert_san(PyObject *self, PyObject *unused) {
  if (!obj_ready(((CertObject *)self)->x509 != NULL)) return NULL;
  X509 *x = ((CertObject *)self)->x509;
  int at = X509_get_ext_by_NID(x, NID_subject_alt_name, -1);
  if (at < 0) Py_RETURN_NONE;
  GENERAL_NAMES *names = X509V3_EXT_d2i(X509_get_ext(x, at));
  if (!names) { ERR_clear_error(); return PyErr_Format(ST->Error, "malformed subjectAltName extension"); }
  PyObject *list = PyList_New(0);
  static const uint8_t id_on_dnsSRV[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07}; /* 1.3.6.1.5.5.7.8.7 */
  for (size_t i = 0; list && i < sk_GENERAL_NAME_num(names); i++) {
    GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    PyObject *item = NULL;
    if (g->type == GEN_DNS)
      item = Py_BuildValue("(sy#)", "dns", (const char *)ASN1_STRING_get0_data(g->d.dNSName), (Py_ssize_t)ASN1_STRING_length(g->d.dNSName));
    else if (g->type == GEN_IPADD)
      item = Py_BuildValue("(sy#)", "ip", (const char *)ASN1_STRING_get0_data(g->d.iPAddress), (Py_ssize_t)ASN1_STRING_length(g->d.iPAddress));
    else if (g->type == GEN_URI)
      item = Py_BuildValue("(sy#)", "uri", (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier), (Py_ssize_t)ASN1_STRING_length(g->d.uniformResourceIdentifier));
    else if (g->type == GEN_OTHERNAME && OBJ_length(g->d.otherName->type_id) == sizeof id_on_dnsSRV &&
             !memcmp(OBJ_get0_data(g->d.otherName->type_id), id_on_dnsSRV, sizeof id_on_dnsSRV)) {
      const ASN1_TYPE *v = g->d.otherName->value;
      if (v->type == V_ASN1_IA5STRING)
        item = Py_BuildValue("(sy#)", "srv", (const char *)ASN1_STRING_get0_data(v->value.ia5string), (Py_ssize_t)ASN1_STRING_length(v->value.ia5string));
      else { Py_CLEAR(list); PyErr_SetString(ST->Error, "malformed SRV name"); break; }
    }
    else continue;
    if (!item || PyList_Append(list, item) < 0) { Py_XDECREF(item); Py_CLEAR(list); break; }
    Py_DECREF(item);
  }
  GENERAL_NAMES_free(names);
  return list;
}

static PyObject *cert_serial(PyObject *self, PyObject *unused) {
  if (!obj_ready(((CertObject *)self)->x509 != NULL)) return NULL;
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
  {"extensions_ok", cert_extensions_ok, METH_NOARGS, NULL},
  {NULL}};
static PyType_Slot cert_slots[] = {{Py_tp_dealloc, cert_dealloc}, {Py_tp_methods, cert_methods}, {0, NULL}};
static PyType_Spec cert_spec = {"socketiwa_crypto._awslc.Certificate", sizeof(CertObject), 0, FLAGS, cert_slots};

/* OpenSSL's pathLenConstraint rule over a whole verified chain (leaf first), trust anchor
   included: certificate i (i > 1) allows at most pathLen non-self-issued CAs between itself and
   the leaf. AWS-LC skips the check for self-issued certificates, so a root's pathLen was never
   enforced. Returns the depth of the first violation, or -1. */
static int path_length_exceeded(STACK_OF(X509) *chain) {
  long below = 0; /* non-self-issued CA certificates between the leaf and certificate i */
  for (size_t i = 0; chain && i < sk_X509_num(chain); i++) {
    X509 *x = sk_X509_value(chain, i);
    long pathlen = X509_get_pathlen(x);
    if (i > 1 && pathlen >= 0 && below > pathlen) return (int)i;
    if (i > 0 && !(X509_get_extension_flags(x) & EXFLAG_SI)) below++;
  }
  return -1;
}

/* Errors X509_verify_cert only reaches after its chain-extension checks (signatures, times,
   name constraints): a chain refused for one of these was complete and already built. */
static int verified_after_extensions(int code) {
  switch (code) {
    case X509_V_ERR_CERT_SIGNATURE_FAILURE: case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
    case X509_V_ERR_CERT_NOT_YET_VALID: case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD: case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
    case X509_V_ERR_PERMITTED_VIOLATION: case X509_V_ERR_EXCLUDED_VIOLATION:
    case X509_V_ERR_SUBTREE_MINMAX: case X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE:
    case X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX: case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX:
    case X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS:
      return 1;
    default:
      return 0;
  }
}

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
  int ok = X509_verify_cert(ctx) == 1, code = X509_STORE_CTX_get_error(ctx), depth = X509_STORE_CTX_get_error_depth(ctx);
  /* OpenSSL checks path lengths before signatures, times and name constraints: report a path
     length error first when AWS-LC accepted the chain or refused it only at those later stages. */
  if (ok || verified_after_extensions(code)) {
    int pl_depth = path_length_exceeded(X509_STORE_CTX_get0_chain(ctx));
    if (pl_depth >= 0) { ok = 0; code = X509_V_ERR_PATH_LENGTH_EXCEEDED; depth = pl_depth; }
  }
  if (ok) { result = Py_None; Py_INCREF(result); }
  else {
    PyObject *exc_args = Py_BuildValue("(isi)", code, X509_verify_cert_error_string(code), depth);
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
  {"aead", aead_new, METH_VARARGS, "aead(alg, key) -> AEAD: 0 AES-128-GCM, 1 AES-256-GCM, 2 ChaCha20-Poly1305"},
  {"aes_ecb", aesecb_new, METH_O, "aes_ecb(key) -> AESECB"},
  {"generate", generate, METH_VARARGS, "generate(kind, param=None) -> PKey"},
  {"from_raw", from_raw, METH_VARARGS, "from_raw(kind, data, private) -> PKey"},
  {"ec_from_point", ec_from_point, METH_VARARGS, "ec_from_point(curve, point) -> PKey"},
  {"load_der", load_der, METH_VARARGS, "load_der(der, private) -> PKey"},
  {"load_certificate", load_certificate, METH_O, "load_certificate(der) -> Certificate"},
  {"verify_chain", verify_chain, METH_VARARGS, "verify_chain(leaf, intermediates, roots, at_time)"},
  {NULL}};

static int module_traverse(PyObject *m, visitproc visit, void *arg) {
  module_state *s = state_of(m);
  Py_VISIT(s->Error); Py_VISIT(s->TagError); Py_VISIT(s->VerifyError); Py_VISIT(s->UnsupportedError);
  Py_VISIT(s->DuplicateError);
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
  s->UnsupportedError = PyErr_NewException("socketiwa_crypto._awslc.UnsupportedError", s->Error, NULL);
  s->DuplicateError = PyErr_NewException("socketiwa_crypto._awslc.DuplicateError", s->Error, NULL);
  s->AEADType = PyType_FromSpec(&aead_spec);
  s->AESECBType = PyType_FromSpec(&aesecb_spec);
  s->PKeyType = PyType_FromSpec(&pkey_spec);
  s->CertType = PyType_FromSpec(&cert_spec);
  if (!s->Error || !s->TagError || !s->VerifyError || !s->UnsupportedError || !s->DuplicateError || !s->AEADType || !s->AESECBType || !s->PKeyType || !s->CertType ||
      PyModule_AddObjectRef(m, "Error", s->Error) < 0 || PyModule_AddObjectRef(m, "TagError", s->TagError) < 0 ||
      PyModule_AddObjectRef(m, "VerifyError", s->VerifyError) < 0 ||
      PyModule_AddObjectRef(m, "UnsupportedError", s->UnsupportedError) < 0 ||
      PyModule_AddObjectRef(m, "DuplicateError", s->DuplicateError) < 0 ||
      PyModule_AddObjectRef(m, "AEAD", s->AEADType) < 0 || PyModule_AddObjectRef(m, "AESECB", s->AESECBType) < 0 ||
      PyModule_AddObjectRef(m, "PKey", s->PKeyType) < 0 || PyModule_AddObjectRef(m, "Certificate", s->CertType) < 0 ||
      /* AES on CPU instructions (never in WebAssembly): decides which TLS suite QUIC prefers */
      PyModule_AddObjectRef(m, "aes_hardware", EVP_has_aes_hardware() ? Py_True : Py_False) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
