"""Importing this module exercises the provider once end to end (random numbers, AEAD, key
exchange, signatures): build-wasm.sh imports it in each Pyodide to prove the WebAssembly build
works, not only that it links."""
from . import asymmetric, primitives

_key = primitives.AESGCM(bytes(16))
assert _key.decrypt(bytes(12), _key.encrypt(bytes(12), b"self-test", b"aad"), b"aad") == b"self-test"
_a, _b = asymmetric.X25519PrivateKey.generate(), asymmetric.X25519PrivateKey.generate()
assert _a.exchange(_b.public_key()) == _b.exchange(_a.public_key())
_ec = asymmetric.generate_private_key(asymmetric.SECP256R1())
_ec.public_key().verify(_ec.sign(b"m", asymmetric.ECDSA(primitives.SHA256())), b"m",
                        asymmetric.ECDSA(primitives.SHA256()))
