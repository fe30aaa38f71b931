"""Certificate factory for aioquic's test suite when it runs on the crypto provider.

The provider only reads certificates; aioquic's tests build theirs with cryptography's
CertificateBuilder. This process has the real `cryptography`: it imports the upstream
``tests.utils`` (which writes the default certificate files) and answers JSON lines on stdin,
one per certificate, with PEM certificate and PKCS#8 key, using the upstream generators as is.
usage: python real_certs.py UPSTREAM_TESTS_DIR   (run by run_aioquic_tests.py)
"""
import json
import os
import sys

tests_dir = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.dirname(tests_dir))
import tests.utils as upstream  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

CURVES = {c.name: c for c in (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)}
DEFAULT_FILES = {"ca": upstream.SERVER_CACERTFILE, "cert": upstream.SERVER_CERTFILE,
                 "cert_with_chain": upstream.SERVER_CERTFILE_WITH_CHAIN, "key": upstream.SERVER_KEYFILE,
                 "combined": upstream.SERVER_COMBINEDFILE}


def build(request: dict) -> str:
    """A certificate from a recorded CertificateBuilder call chain (see run_aioquic_tests.py)."""
    import base64
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    def name(attributes):
        return x509.Name([x509.NameAttribute(x509.ObjectIdentifier(oid), value) for oid, value in attributes])

    builder = (x509.CertificateBuilder().subject_name(name(request["subject"])).issuer_name(name(request["issuer"]))
               .public_key(serialization.load_der_public_key(base64.b64decode(request["public_key"])))
               .serial_number(request["serial"])
               .not_valid_before(datetime.datetime.fromisoformat(request["not_before"]))
               .not_valid_after(datetime.datetime.fromisoformat(request["not_after"])))
    for ext in request["extensions"]:
        builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(ext["oid"]),
                                                                   base64.b64decode(ext["value"])), ext["critical"])
    key = serialization.load_pem_private_key(request["key"].encode(), password=None)
    algorithm = getattr(hashes, request["hash"].upper())() if request["hash"] else None
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def answer(request: dict) -> dict:
    if request["fn"] == "build":
        return {"cert": build(request)}
    if request["fn"] == "default":
        files = {}
        for name, path in DEFAULT_FILES.items():
            with open(path) as f:
                files[name] = f.read()
        return {"files": files}
    kwargs = {"common_name": request["common_name"], "alternative_names": request["alternative_names"]}
    if request["fn"] == "ec":
        kwargs["curve"] = CURVES[request["curve"]]
    cert, key = getattr(upstream, f"generate_{request['fn']}_certificate")(**kwargs)
    return {"cert": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()}


print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    try:
        reply = answer(json.loads(line))
    except Exception as e:  # noqa: BLE001 - reported to the caller, which raises it in the test
        reply = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(reply), flush=True)
