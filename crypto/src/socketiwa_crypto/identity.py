"""service_identity's checks (RFC 6125) for hostnames and IP addresses in certificates."""
from __future__ import annotations

import ipaddress

from .x509 import Certificate, DNSName, ExtensionNotFound, IPAddress, NameOID, SubjectAlternativeName


class VerificationError(Exception):
    def __init__(self, errors=()):
        super().__init__(errors)
        self.errors = list(errors)


class CertificateError(Exception):
    pass


class DNSMismatch(Exception):
    def __init__(self, mismatched_id):
        self.mismatched_id = mismatched_id


class IPAddressMismatch(DNSMismatch):
    pass


class DNSPattern:
    def __init__(self, pattern: bytes):
        self.pattern = pattern

    @classmethod
    def from_bytes(cls, pattern: bytes) -> DNSPattern:
        if not isinstance(pattern, bytes):
            raise TypeError("The DNS pattern must be a bytes string.")
        pattern = pattern.strip()
        if pattern == b"" or b"\0" in pattern:
            raise CertificateError(f"Invalid DNS pattern {pattern!r}.")
        return cls(pattern.translate(bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")))

    def __repr__(self):
        return f"DNSPattern(pattern={self.pattern!r})"


class IPAddressPattern:
    def __init__(self, pattern):
        self.pattern = pattern

    def __repr__(self):
        return f"IPAddressPattern(pattern={self.pattern!r})"


def extract_patterns(cert: Certificate) -> list:
    try:
        san = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
    except ExtensionNotFound:
        return []
    patterns: list = [DNSPattern.from_bytes(n.encode("utf-8")) for n in san.get_values_for_type(DNSName)]
    patterns += [IPAddressPattern(ip) for ip in san.get_values_for_type(IPAddress)]
    return patterns


def _dns_matches(pattern: bytes, hostname: bytes) -> bool:
    if pattern == hostname:
        return True
    if not pattern.startswith(b"*."):
        return False
    # One wildcard label, leftmost, and never across a dot (RFC 6125 6.4.3).
    host_labels = hostname.split(b".")
    return len(host_labels) >= 3 and host_labels[1:] == pattern[2:].split(b".") and host_labels[0] != b""


def verify_certificate_hostname(certificate: Certificate, hostname: str) -> None:
    patterns = extract_patterns(certificate)
    if not patterns:
        raise CertificateError("Certificate does not contain any `subjectAltName`s.")
    host = hostname.encode("idna").lower() if not hostname.isascii() else hostname.lower().encode()
    if not any(isinstance(p, DNSPattern) and _dns_matches(p.pattern, host) for p in patterns):
        raise VerificationError([DNSMismatch(hostname)])


def verify_certificate_ip_address(certificate: Certificate, ip_address: str) -> None:
    patterns = extract_patterns(certificate)
    if not patterns:
        raise CertificateError("Certificate does not contain any `subjectAltName`s.")
    ip = ipaddress.ip_address(ip_address)
    if not any(isinstance(p, IPAddressPattern) and p.pattern == ip for p in patterns):
        raise VerificationError([IPAddressMismatch(ip_address)])


__all__ = ["CertificateError", "VerificationError", "extract_patterns", "verify_certificate_hostname",
           "verify_certificate_ip_address", "DNSPattern", "IPAddressPattern", "NameOID"]
