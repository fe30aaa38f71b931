"""Hostile certificates and chains through the crypto provider and through the real packages
(cryptography, pyOpenSSL, service_identity): the same verdict from both, case by case.

Each case is a chain (leaf, intermediates, trusted roots) and a server name. Both stacks run the
steps aioquic runs on a peer's certificate, in aioquic's order: parse every certificate, read the
leaf's public key (CertificateVerify), check its dates, match the server name, verify the chain.
The verdict is the first step that raises and the exception's class (for chain verification also
OpenSSL's error code and depth), or "ok". Certificates are made with the real `cryptography`;
those it refuses to build (bad times, unknown key algorithms, ...) are re-encoded by hand in DER
and re-signed by their issuer. CPython only; the provider comes from build/crypto-native.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import service_identity
from cryptography import x509 as rx509
from cryptography.hazmat.primitives import hashes as rhashes
from cryptography.hazmat.primitives.asymmetric import ec as rec
from cryptography.hazmat.primitives.asymmetric import ed448 as red448
from cryptography.x509.oid import NameOID
from OpenSSL import crypto as rssl

ROOT = Path(__file__).resolve().parent.parent
PROVIDER = ROOT / "build" / "crypto-native"
if not (PROVIDER / "socketiwa_crypto").is_dir():
    pytest.skip("crypto provider not built for this host: run build-wasm.sh (or crypto/build_native.sh)",
                allow_module_level=True)
sys.path.append(str(PROVIDER))  # appended: `cryptography` stays the real one in this process

from socketiwa_crypto import identity as pident  # noqa: E402
from socketiwa_crypto import pyopenssl as pssl  # noqa: E402
from socketiwa_crypto import x509 as px509  # noqa: E402

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


# ---------------------------------------------------------------- DER, just enough to re-encode a certificate
def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


def der_items(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) elements one level down in ``data``."""
    items, at = [], 0
    while at < len(data):
        tag, n = data[at], data[at + 1]
        at += 2
        if n & 0x80:
            size = n & 0x7F
            n, at = int.from_bytes(data[at:at + size], "big"), at + size
        items.append((tag, data[at:at + n]))
        at += n
    return items


def der_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        while p > 0x7F:
            p >>= 7
            chunk.append(0x80 | (p & 0x7F))
        body += bytes(reversed(chunk))
    return der(0x06, body)


# TBSCertificate elements (with the [0] version present)
VALIDITY, SPKI = 4, 6


def resign(cert: rx509.Certificate, issuer_key, mutate) -> bytes:
    """``cert`` with its TBSCertificate elements passed through ``mutate`` and signed again by
    ``issuer_key`` (ECDSA with SHA-256, the algorithm the builders below use)."""
    tbs_items = der_items(der_items(der_items(cert.public_bytes(_DER))[0][1])[0][1])
    tbs = der(0x30, b"".join(der(t, c) for t, c in mutate(list(tbs_items))))
    sig_alg = der_items(der_items(cert.public_bytes(_DER))[0][1])[1]
    signature = issuer_key.sign(tbs, rec.ECDSA(rhashes.SHA256()))
    return der(0x30, tbs + der(*sig_alg) + der(0x03, b"\0" + signature))


def with_validity(not_before: bytes, not_after: bytes):
    """A mutation replacing the validity with raw encoded times (tag byte + text)."""
    def mutate(items):
        items[VALIDITY] = (0x30, der(not_before[0], not_before[1:]) + der(not_after[0], not_after[1:]))
        return items
    return mutate


def with_key_algorithm(dotted: str):
    """A mutation replacing the SubjectPublicKeyInfo's algorithm OID (the key bits stay)."""
    def mutate(items):
        alg, bits = der_items(items[SPKI][1])
        alg_items = der_items(alg[1])
        alg_items[0] = (0x06, der_items(der_oid(dotted))[0][1])
        items[SPKI] = (0x30, der(0x30, b"".join(der(t, c) for t, c in alg_items)) + der(*bits))
        return items
    return mutate


def with_extension(oid: str, value: bytes, critical: bool = False):
    """A mutation appending a raw extension (duplicates and malformed values included)."""
    def mutate(items):
        ext = der_oid(oid) + (der(0x01, b"\xff") if critical else b"") + der(0x04, value)
        tag, content = items[-1]
        assert tag == 0xA3, "certificate without extensions"
        exts = der_items(content)[0][1] + der(0x30, ext)
        items[-1] = (0xA3, der(0x30, exts))
        return items
    return mutate


# ---------------------------------------------------------------- issuing with the real cryptography
from cryptography.hazmat.primitives import serialization as _rser  # noqa: E402

_DER = _rser.Encoding.DER


@dataclass
class Issued:
    cert: rx509.Certificate
    key: object
    name: rx509.Name

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(_DER)


def issue(cn: str, issuer: Issued | None = None, *, ca: bool | None = None, path_length=None,
          key_usage: rx509.KeyUsage | None = None, days=(-1, 30), sans=("leaf.example",), key=None,
          extra=(), signer_key=None, name_constraints=None) -> Issued:
    """A certificate for ``cn`` signed by ``issuer`` (self-signed without one). ``ca`` adds
    basicConstraints (None: no extension); ``sans`` are DNS names or IP addresses."""
    key = key or rec.generate_private_key(rec.SECP256R1())
    name = rx509.Name([rx509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (rx509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.name if issuer else name).public_key(key.public_key())
               .serial_number(rx509.random_serial_number())
               .not_valid_before(NOW + days[0] * DAY).not_valid_after(NOW + days[1] * DAY))
    if ca is not None:
        builder = builder.add_extension(rx509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=True)
    if sans:
        names = []
        for s in sans:
            if s.startswith("dns:"):  # a DNS name even if it looks like something else
                names.append(rx509.DNSName(s[4:]))
                continue
            try:
                names.append(rx509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                names.append(rx509.UniformResourceIdentifier(s) if ":" in s else rx509.DNSName(s))
        builder = builder.add_extension(rx509.SubjectAlternativeName(names), critical=False)
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    sign_with = signer_key or (issuer.key if issuer else key)
    algorithm = None if isinstance(sign_with, red448.Ed448PrivateKey) else rhashes.SHA256()
    return Issued(builder.sign(sign_with, algorithm), key, name)


def ku(cert_sign: bool) -> rx509.KeyUsage:
    return rx509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                          encipher_only=False, decipher_only=False)


# ---------------------------------------------------------------- the two stacks
REAL = SimpleNamespace(load=rx509.load_der_x509_certificate, ssl=rssl,
                       hostname=service_identity.cryptography.verify_certificate_hostname,
                       ip=service_identity.cryptography.verify_certificate_ip_address)
PROV = SimpleNamespace(load=px509.load_der_x509_certificate, ssl=pssl,
                       hostname=pident.verify_certificate_hostname, ip=pident.verify_certificate_ip_address)


# OpenSSL and AWS-LC number some verification errors differently (OpenSSL 4 renumbered them), so
# chain errors compare by message and depth; AWS-LC still writes "self signed" without the hyphen.
_WORDING = {"self signed certificate": "self-signed certificate",
            "self signed certificate in certificate chain": "self-signed certificate in certificate chain"}


def verdict(stack, leaf: bytes, chain: list[bytes], roots: list[bytes], server_name: str) -> tuple:
    """The first of aioquic's steps that fails, as (step, exception class[, message, depth]), or ("ok",)."""
    step = "parse"
    try:
        leaf_cert = stack.load(leaf)
        chain_certs = [stack.load(c) for c in chain]
        root_certs = [stack.load(c) for c in roots]
        step = "public_key"
        leaf_cert.public_key()
        step = "dates"
        now = datetime.datetime.now(datetime.timezone.utc)
        if not leaf_cert.not_valid_before_utc <= now <= leaf_cert.not_valid_after_utc:
            return ("dates", "expired")
        step = "subject"
        try:
            ipaddress.ip_address(server_name)
        except ValueError:
            stack.hostname(leaf_cert, server_name)
        else:
            stack.ip(leaf_cert, server_name)
        step = "chain"
        store = stack.ssl.X509Store()
        for root in root_certs:
            store.add_cert(stack.ssl.X509.from_cryptography(root))
        stack.ssl.X509StoreContext(store, stack.ssl.X509.from_cryptography(leaf_cert),
                                   [stack.ssl.X509.from_cryptography(c) for c in chain_certs]).verify_certificate()
    except Exception as e:  # noqa: BLE001 - the exception's class is the verdict
        if type(e).__name__ == "X509StoreContextError":
            return (step, "X509StoreContextError", _WORDING.get(e.errors[2], e.errors[2]), e.errors[1])
        return (step, type(e).__name__)
    return ("ok",)


@dataclass
class Case:
    leaf: bytes
    chain: list[bytes] = field(default_factory=list)
    roots: list[bytes] = field(default_factory=list)
    server_name: str = "leaf.example"
    expect: tuple = ("ok",)       # what both stacks must say (checked on the real one too)
    provider: tuple | None = None  # a documented difference: what the provider says instead ...
    why: str = ""                  # ... and why


def build_cases() -> dict[str, Case]:
    root = issue("root", ca=True)
    other_root = issue("root", ca=True)  # same name, different key
    inter = issue("inter", root, ca=True)
    leaf = issue("leaf", inter)
    direct = issue("leaf", root)
    cases: dict[str, Case] = {}

    def add(name, leaf_der, chain=(), roots=(root.der,), **kw):
        cases[name] = Case(leaf_der, list(chain), list(roots), **kw)

    X = "X509StoreContextError"
    add("valid: root -> leaf", direct.der)
    add("valid: root -> intermediate -> leaf", leaf.der, [inter.der])
    add("valid: IP address SAN", issue("ip", root, sans=("127.0.0.1",)).der, server_name="127.0.0.1")
    add("valid: wildcard", issue("w", root, sans=("*.example.test",)).der, server_name="a.example.test")
    add("valid: upper-case SAN", issue("u", root, sans=("LEAF.Example",)).der)
    add("valid: self-signed leaf trusted as its own root", (s := issue("self", ca=None)).der, roots=[s.der])
    # dates
    add("expired leaf", issue("old", root, days=(-30, -1)).der, expect=("dates", "expired"))
    add("not yet valid leaf", issue("new", root, days=(1, 30)).der, expect=("dates", "expired"))
    add("expired intermediate", leaf.der, [issue("inter", root, ca=True, key=inter.key, days=(-30, -1)).der],
        expect=("chain", X, "certificate has expired", 1))
    # signers and trust
    add("leaf signed by the wrong key", issue("leaf", inter, signer_key=other_root.key).der, [inter.der],
        expect=("chain", X, BAD_SIGNATURE, 0))
    add("untrusted root", direct.der, roots=[issue("elsewhere", ca=True).der], expect=("chain", X, NO_ISSUER, 0))
    add("trusted root of the same name, other key", direct.der, roots=[other_root.der],
        expect=("chain", X, BAD_SIGNATURE, 0))
    add("no roots at all", direct.der, roots=[], expect=("chain", X, NO_ISSUER, 0))
    add("self-signed leaf, not trusted", issue("self", ca=None).der, roots=[root.der],
        expect=("chain", X, "self-signed certificate", 0))
    add("intermediate missing", leaf.der, [], expect=("chain", X, NO_ISSUER, 0))
    # basicConstraints and pathLen
    p0 = issue("root0", ca=True, path_length=0)
    i1 = issue("i1", p0, ca=True)
    i2 = issue("i2", i1, ca=True)
    add("root pathLen=0 -> CA -> leaf", issue("leaf", i1).der, [i1.der], [p0.der], expect=("chain", X, PATHLEN, 2))
    add("root pathLen=0 -> CA -> CA -> leaf", issue("leaf", i2).der, [i2.der, i1.der], [p0.der],
        expect=("chain", X, PATHLEN, 3))
    add("root pathLen=0 -> leaf", issue("leaf", p0).der, roots=[p0.der])
    p1 = issue("root1", ca=True, path_length=1)
    j1 = issue("j1", p1, ca=True)
    j2 = issue("j2", j1, ca=True)
    add("root pathLen=1 -> CA -> leaf", issue("leaf", j1).der, [j1.der], [p1.der])
    add("root pathLen=1 -> CA -> CA -> leaf", issue("leaf", j2).der, [j2.der, j1.der], [p1.der],
        expect=("chain", X, PATHLEN, 3))
    k0 = issue("k0", root, ca=True, path_length=0)
    k1 = issue("k1", k0, ca=True)
    add("intermediate pathLen=0 -> CA -> leaf", issue("leaf", k1).der, [k1.der, k0.der],
        expect=("chain", X, PATHLEN, 2))
    add("intermediate CA:false", issue("leaf", nonca := issue("nonca", root, ca=False)).der, [nonca.der],
        expect=("chain", X, INVALID_CA, 1))
    add("intermediate without basicConstraints", issue("leaf", nobc := issue("nobc", root)).der, [nobc.der],
        expect=("chain", X, INVALID_CA, 1))
    add("root CA:false signs a leaf", issue("leaf", r_nonca := issue("rnonca", ca=False)).der, roots=[r_nonca.der],
        expect=("chain", X, INVALID_CA, 1))
    add("intermediate keyUsage without keyCertSign",
        issue("leaf", noku := issue("noku", root, ca=True, key_usage=ku(False))).der, [noku.der],
        expect=("chain", X, INVALID_CA, 1), provider=("chain", X, NO_ISSUER, 0),
        why="refused by both; AWS-LC does not take a CA without keyCertSign as an issuer while building the "
            "chain, OpenSSL takes it and refuses it afterwards")
    add("unknown critical extension in leaf",
        issue("leaf", root, extra=[(rx509.UnrecognizedExtension(rx509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00"),
                                    True)]).der, expect=("chain", X, "unhandled critical extension", 0))
    nc_root = issue("ncroot", ca=True, name_constraints=rx509.NameConstraints(
        permitted_subtrees=[rx509.DNSName("allowed.example")], excluded_subtrees=None))
    add("name constraints: leaf outside the permitted subtree", issue("leaf", nc_root).der, roots=[nc_root.der],
        expect=("chain", X, "permitted subtree violation", 0))
    add("name constraints: leaf inside", issue("leaf", nc_root, sans=("a.allowed.example",)).der,
        roots=[nc_root.der], server_name="a.allowed.example")
    # host names (service_identity's rules)
    def named(*sans):
        return issue("n", root, sans=sans).der
    add("host name mismatch", named("other.example"), expect=("subject", "VerificationError"))
    add("SAN *.com", named("*.com"), server_name="example.com", expect=("subject", "CertificateError"))
    add("SAN *.com next to a good name", named("leaf.example", "*.com"), expect=("subject", "CertificateError"))
    add("SAN IP address written as a DNS name", named("dns:127.0.0.1", "leaf.example"),
        expect=("subject", "CertificateError"))
    add("SAN numeric DNS name", named("1234", "leaf.example"), expect=("subject", "CertificateError"))
    add("SAN two wildcards", named("*.*.example.test"), server_name="a.b.example.test",
        expect=("subject", "CertificateError"))
    add("SAN wildcard not left-most", named("a.*.example.test"), server_name="a.b.example.test",
        expect=("subject", "CertificateError"))
    add("SAN wildcard with an empty label", named("*..example"), server_name="a..example",
        expect=("subject", "CertificateError"))
    add("SAN partial wildcard f*", named("f*.example.test"), server_name="foo.example.test",
        expect=("subject", "VerificationError"))
    add("wildcard never matches an xn-- label", named("*.example.test"), server_name="xn--bcher-kva.example.test",
        expect=("subject", "VerificationError"))
    add("wildcard does not match two labels", named("*.example.test"), server_name="a.b.example.test",
        expect=("subject", "VerificationError"))
    add("wildcard does not match the bare domain", named("*.example.test"), server_name="example.test",
        expect=("subject", "VerificationError"))
    add("server name with * never matches", named("*.example.test"), server_name="*.example.test",
        expect=("subject", "ValueError"))
    add("server name with * against an exact SAN", named("*"), server_name="*", expect=("subject", "CertificateError"))
    add("IDN server name against its xn-- SAN", named("xn--bcher-kva.example"), server_name="bücher.example")
    add("no SAN at all", issue("nosan", root, sans=()).der, expect=("subject", "CertificateError"))
    add("IP server name against DNS SANs", named("leaf.example"), server_name="10.0.0.1",
        expect=("subject", "VerificationError"))
    add("URI SAN with a port", named("leaf.example", "https://leaf.example:443"), expect=("subject", "ValueError"))
    add("URI SAN with a wildcard", named("leaf.example", "https://*.example"), expect=("subject", "CertificateError"))
    add("malformed SAN extension", resign(issue("m", root, sans=(), ca=False).cert, root.key,
                                          with_extension("2.5.29.17", b"\xff\xff")), expect=("subject", "ValueError"))
    add("duplicate SAN extension", resign(direct.cert, root.key,
                                          with_extension("2.5.29.17", der(0x30, der(0x82, b"leaf.example")))),
        expect=("subject", "DuplicateExtension"))
    # malformed validity times: refused when the certificate is parsed
    good_after = b"\x17" + (NOW + 30 * DAY).strftime("%y%m%d%H%M%SZ").encode()
    good_before = b"\x17" + (NOW - DAY).strftime("%y%m%d%H%M%SZ").encode()
    for label, bad in {"UTCTime with a +0100 offset": b"\x17" + b"250101000000+0100",
                       "UTCTime without seconds": b"\x17" + b"2501010000Z",
                       "UTCTime without Z": b"\x17" + b"250101000000",
                       "UTCTime month 13": b"\x17" + b"251301000000Z",
                       "UTCTime February 30": b"\x17" + b"250230000000Z",
                       "GeneralizedTime with fractional seconds": b"\x18" + b"20250101000000.5Z",
                       "GeneralizedTime with an offset": b"\x18" + b"20250101000000+0100",
                       "time as an INTEGER": b"\x02" + b"\x01"}.items():
        add(f"notBefore {label}", resign(direct.cert, root.key, with_validity(bad, good_after)),
            expect=("parse", "ValueError"))
        add(f"notAfter {label}", resign(direct.cert, root.key, with_validity(good_before, bad)),
            expect=("parse", "ValueError"))
    for which in ("notBefore", "notAfter"):
        year0 = b"\x18" + b"00000101000000Z"
        times = (year0, good_after) if which == "notBefore" else (good_before, year0)
        add(f"{which} GeneralizedTime year 0000", resign(direct.cert, root.key, with_validity(*times)),
            expect=("dates", "ValueError"), provider=("parse", "ValueError"),
            why="stricter: cryptography loads it and raises when the date is read, which aioquic does not "
                "catch (the handshake stalls); the provider refuses it at load, which aioquic turns into an alert")
    add("notBefore after notAfter", resign(direct.cert, root.key, with_validity(good_after, good_before)),
        expect=("dates", "expired"))
    # keys
    add("unknown key algorithm in the leaf", resign(direct.cert, root.key, with_key_algorithm("1.2.3.4.5.6")),
        expect=("public_key", "UnsupportedAlgorithm"))
    add("Ed25519 OID on an EC key", resign(direct.cert, root.key, with_key_algorithm("1.3.101.112")),
        expect=("parse", "ValueError"))
    ed448_root = issue("ed448 root", ca=True, key=red448.Ed448PrivateKey.generate())
    add("Ed448 leaf key (not in AWS-LC)", issue("leaf", root, key=red448.Ed448PrivateKey.generate()).der,
        provider=("public_key", "UnsupportedAlgorithm"), why=NO_ED448)
    add("Ed448-signed chain (not in AWS-LC)", issue("leaf", ed448_root).der, roots=[ed448_root.der],
        provider=("chain", X, "unknown certificate verification error", 1), why=NO_ED448)
    # encoding
    add("truncated certificate", direct.der[:-10], expect=("parse", "ValueError"))
    add("trailing bytes after the certificate", direct.der + b"\0", expect=("parse", "ValueError"))
    add("not DER at all", b"\x30\x03\x02\x01", expect=("parse", "ValueError"))
    add("empty input", b"", expect=("parse", "ValueError"))
    return cases


NO_ED448 = "AWS-LC has no Ed448/X448 (aioquic then does not offer them)"
INVALID_CA = "invalid CA certificate"
NO_ISSUER = "unable to get local issuer certificate"
BAD_SIGNATURE = "certificate signature failure"
PATHLEN = "path length constraint exceeded"
CASES = build_cases()


@pytest.mark.parametrize("name", list(CASES))
def test_same_verdict_as_the_real_packages(name):
    case = CASES[name]
    args = (case.leaf, case.chain, case.roots, case.server_name)
    real, prov = verdict(REAL, *args), verdict(PROV, *args)
    assert real == case.expect, f"the real packages say {real}, the table {case.expect}: fix the case"
    assert prov == (case.provider or case.expect), f"provider says {prov}, the real packages {real}"


def test_documented_differences():
    """Where the provider may differ, the table says why, and the verdict class is the same
    (a refusal stays a refusal) unless the algorithm is absent from AWS-LC."""
    differing = {name: case for name, case in CASES.items() if case.provider is not None}
    assert len(differing) == 5, list(differing)
    for name, case in differing.items():
        assert case.why, name
        if case.why != NO_ED448:
            assert case.expect[1] == case.provider[1], name


def test_table_covers_the_attack_classes():
    names = " ".join(CASES).lower()
    for needle in ("expired", "not yet valid", "wrong key", "pathlen", "ca:false", "*.com", "xn--",
                   "utctime", "year 0000", "unknown key algorithm", "unknown critical", "duplicate",
                   "name constraints", "truncated"):
        assert needle in names, needle


if os.environ.get("SOCKETIWA_DUMP_ATTACKS"):  # debugging aid: print both verdicts for every case
    for _name, _case in CASES.items():
        _a = (_case.leaf, _case.chain, _case.roots, _case.server_name)
        print(f"{_name:60} real={verdict(REAL, *_a)} provider={verdict(PROV, *_a)}")
