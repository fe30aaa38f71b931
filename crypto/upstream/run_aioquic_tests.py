"""aioquic's own test suite on the crypto provider (for tests/test_crypto_upstream.py).

The provider's alias packages come first on sys.path, so aioquic and its tests import the
provider as `cryptography`, `OpenSSL`, `service_identity` and `certifi`. The provider has no
CertificateBuilder, so the upstream ``tests/utils.py`` is loaded with its certificate generators
replaced (in its syntax tree, by name) by calls to real_certs.py, a process with the real
`cryptography` that runs the upstream generators; their PEM output is loaded with the provider.
Everything else runs unchanged. Writes one JSON object: {test id: outcome}.

With --real-without-448 instead of a provider directory it is the control run: the real
`cryptography` with its default_backend() saying X448 and Ed448 are unsupported (as the
provider's does), running only the named tests, to show their outcome is explained by that.
usage: python run_aioquic_tests.py PROVIDER_DIR UPSTREAM_TESTS_DIR OUT_JSON
       python run_aioquic_tests.py --real-without-448 UPSTREAM_TESTS_DIR OUT_JSON TEST_ID...
"""
import ast
import base64
import json
import os
import subprocess
import sys
import types
import unittest

CONTROL = sys.argv[1] == "--real-without-448"
tests_dir, out_path = (os.path.abspath(a) for a in sys.argv[2:4])
if not CONTROL:
    provider_dir = os.path.abspath(sys.argv[1])
    sys.path.insert(0, provider_dir)
import cryptography  # noqa: E402

if CONTROL:
    from cryptography.hazmat.backends import default_backend
    assert "crypto-native" not in cryptography.__file__, cryptography.__file__
    type(default_backend()).x448_supported = lambda self: False
    type(default_backend()).ed448_supported = lambda self: False
else:
    assert cryptography.__file__.startswith(provider_dir), f"not the provider: {cryptography.__file__}"

# ---------------------------------------------------------------- certificates from the real package
def start_helper():
    global helper
    helper_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    helper = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "real_certs.py"), tests_dir],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=helper_env)
    assert json.loads(helper.stdout.readline()) == {"ready": True}, "real_certs.py did not start"


helper = None


def real_certs(**request) -> dict:
    helper.stdin.write(json.dumps(request) + "\n")
    helper.stdin.flush()
    reply = json.loads(helper.stdout.readline())
    if "error" in reply:
        raise RuntimeError(f"real_certs.py: {reply['error']}")
    return reply


REPLACEMENTS = '''
def _from_real_package(kind, common_name, alternative_names, curve=None):
    reply = _real_certs(fn=kind, common_name=common_name, alternative_names=list(alternative_names), curve=curve)
    certificate = x509.load_pem_x509_certificate(reply["cert"].encode())
    return certificate, serialization.load_pem_private_key(reply["key"].encode(), password=None)


def generate_ec_certificate(common_name, alternative_names=[], curve=ec.SECP256R1):
    return _from_real_package("ec", common_name, alternative_names, curve.name)


def generate_ed25519_certificate(common_name, alternative_names=[]):
    return _from_real_package("ed25519", common_name, alternative_names)


def generate_ed448_certificate(common_name, alternative_names=[]):
    return _from_real_package("ed448", common_name, alternative_names)


def generate_rsa_certificate(common_name, alternative_names=[]):
    return _from_real_package("rsa", common_name, alternative_names)


def generate_default_certificates():
    files = _real_certs(fn="default")["files"]
    for path, name in ((SERVER_CACERTFILE, "ca"), (SERVER_CERTFILE, "cert"),
                       (SERVER_CERTFILE_WITH_CHAIN, "cert_with_chain"), (SERVER_KEYFILE, "key"),
                       (SERVER_COMBINEDFILE, "combined")):
        with open(path, "w") as f:
            f.write(files[name])
'''
REPLACED = {"generate_certificate", "generate_default_certificates", "generate_ec_certificate",
            "generate_ed25519_certificate", "generate_ed448_certificate", "generate_rsa_certificate"}


def load_patched_utils() -> types.ModuleType:
    path = os.path.join(tests_dir, "utils.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = [i for i, node in enumerate(tree.body) if isinstance(node, ast.FunctionDef) and node.name in REPLACED]
    names = {tree.body[i].name for i in found}
    assert names == REPLACED, f"upstream tests/utils.py changed: replaced {names}, expected {REPLACED}"
    first = found[0]
    tree.body = [n for i, n in enumerate(tree.body) if i not in found]
    tree.body[first:first] = ast.parse(REPLACEMENTS).body  # before the module-level default generation
    module = types.ModuleType("tests.utils")
    module.__file__, module.__package__ = path, "tests"
    module._real_certs = real_certs
    sys.modules["tests.utils"] = module
    exec(compile(ast.fix_missing_locations(tree), path, "exec"), module.__dict__)
    return module


class UnrecognizedExtension:
    def __init__(self, oid, value: bytes):
        self.oid, self.value = oid, value


class RemoteCertificateBuilder:
    """cryptography's CertificateBuilder for the tests that build a certificate themselves: the
    calls are recorded and replayed by real_certs.py. Only UnrecognizedExtension is supported
    (the one extension such a test adds); anything else raises."""

    def __init__(self, **fields):
        self._fields = {"extensions": [], **fields}

    def _with(self, **fields):
        return RemoteCertificateBuilder(**{**self._fields, **fields})

    def subject_name(self, name):
        return self._with(subject=[(a.oid.dotted_string, a.value) for a in name])

    def issuer_name(self, name):
        return self._with(issuer=[(a.oid.dotted_string, a.value) for a in name])

    def public_key(self, key):
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        return self._with(public_key=base64.b64encode(
            key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode())

    def serial_number(self, number: int):
        return self._with(serial=number)

    def not_valid_before(self, when):
        return self._with(not_before=when.isoformat())

    def not_valid_after(self, when):
        return self._with(not_after=when.isoformat())

    def add_extension(self, extension, critical: bool):
        if not isinstance(extension, UnrecognizedExtension):
            raise NotImplementedError(f"RemoteCertificateBuilder: {type(extension).__name__}")
        ext = {"oid": extension.oid.dotted_string, "value": base64.b64encode(extension.value).decode(),
               "critical": critical}
        return self._with(extensions=self._fields["extensions"] + [ext])

    def sign(self, private_key, algorithm):
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
        pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        reply = real_certs(fn="build", key=pem, hash=algorithm.name if algorithm else None, **self._fields)
        return cryptography.x509.load_pem_x509_certificate(reply["cert"].encode())


sys.path.insert(1, os.path.dirname(tests_dir))
import tests  # noqa: E402  (the upstream package: tests/__init__.py)

assert os.path.dirname(tests.__file__) == tests_dir, tests.__file__
if not CONTROL:
    # test fixtures only, in this process: the provider itself builds no certificates
    import cryptography.x509

    cryptography.x509.CertificateBuilder = RemoteCertificateBuilder
    cryptography.x509.UnrecognizedExtension = UnrecognizedExtension
    cryptography.x509.random_serial_number = lambda: int.from_bytes(os.urandom(20), "big") >> 1
    start_helper()
    tests.utils = load_patched_utils()


# ---------------------------------------------------------------- run and record every outcome
class Recorder(unittest.TextTestResult):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.outcomes = {}

    def addSuccess(self, test):
        super().addSuccess(test)
        self.outcomes[test.id()] = "pass"

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.outcomes[test.id()] = "fail"

    def addError(self, test, err):
        super().addError(test, err)
        self.outcomes[test.id()] = "error"

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.outcomes[test.id()] = "skip"

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.outcomes[test.id()] = "expected failure"

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.outcomes[test.id()] = "unexpected success"


if CONTROL:
    suite = unittest.defaultTestLoader.loadTestsFromNames(sys.argv[4:])
else:
    suite = unittest.defaultTestLoader.discover(tests_dir, pattern="test_*.py",
                                                top_level_dir=os.path.dirname(tests_dir))
result = unittest.TextTestRunner(resultclass=Recorder, verbosity=1, stream=sys.stderr).run(suite)
if helper is not None:
    helper.stdin.close()
    helper.wait(30)
with open(out_path, "w") as f:
    json.dump({"outcomes": result.outcomes, "cryptography": cryptography.__file__}, f, indent=1)
