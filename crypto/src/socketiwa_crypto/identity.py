"""service_identity's checks (RFC 6125) for host names and IP addresses in certificates.

The same rules as service_identity 24.x, because aioquic's verdicts depend on them: a SAN
pattern that is invalid (empty, an IP address written as a DNS name, ``*.com``, more than one
``*``, a ``*`` outside the left-most label) makes the whole check fail with CertificateError
instead of being skipped; a wildcard never matches an ``xn--`` (IDNA) label; a host name that is
not a valid DNS-ID (``*`` in it, an IP address) raises ValueError. One difference: non-ASCII
host names are encoded with Python's ``idna`` codec (IDNA 2003) where service_identity uses the
``idna`` package (IDNA 2008), which Pyodide does not ship.
"""
from __future__ import annotations

import ipaddress
import re

from .x509 import (ID_ON_DNS_SRV, Certificate, DNSName, ExtensionNotFound, ExtensionOID, IPAddress, OtherName,
                   UniformResourceIdentifier)


class VerificationError(Exception):
    """Service identity verification failed; ``errors`` lists the mismatches."""

    def __init__(self, errors=()):
        super().__init__(errors)
        self.errors = list(errors)

    def __str__(self) -> str:
        return f"VerificationError(errors={self.errors!r})"


class CertificateError(Exception):
    """The certificate holds invalid or unexpected data (including: no subjectAltName)."""


class Mismatch:
    def __init__(self, mismatched_id):
        self.mismatched_id = mismatched_id

    def __eq__(self, other):
        return type(self) is type(other) and self.mismatched_id == other.mismatched_id

    def __repr__(self):
        return f"{type(self).__name__}(mismatched_id={self.mismatched_id!r})"


class DNSMismatch(Mismatch):
    pass


class IPAddressMismatch(Mismatch):
    pass


class URIMismatch(Mismatch):
    pass


class SRVMismatch(Mismatch):
    pass


_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
_LEGAL_HOSTNAME = re.compile(rb"^[a-z0-9\-_.]+$")


def _is_ip_address(pattern: str | bytes) -> bool:
    """Whether ``pattern`` is or could match an IP address (service_identity's test)."""
    if isinstance(pattern, bytes):
        try:
            pattern = pattern.decode("ascii")
        except UnicodeError:
            return False
    try:
        int(pattern)
        return True
    except ValueError:
        pass
    try:
        ipaddress.ip_address(pattern.replace("*", "1"))
    except ValueError:
        return False
    return True


def _validate_wildcard(pattern: bytes) -> None:
    if pattern.count(b"*") > 1:
        raise CertificateError(f"Certificate's DNS-ID {pattern!r} contains too many wildcards.")
    parts = pattern.split(b".")
    if len(parts) < 3:
        raise CertificateError(f"Certificate's DNS-ID {pattern!r} has too few host components for wildcard usage.")
    if b"*" not in parts[0]:
        raise CertificateError(f"Certificate's DNS-ID {pattern!r} has a wildcard outside the left-most part.")
    if any(not p for p in parts):
        raise CertificateError(f"Certificate's DNS-ID {pattern!r} contains empty parts.")


class DNSPattern:
    def __init__(self, pattern: bytes):
        self.pattern = pattern

    @classmethod
    def from_bytes(cls, pattern: bytes) -> DNSPattern:
        if not isinstance(pattern, bytes):
            raise TypeError("The DNS pattern must be a bytes string.")
        pattern = pattern.strip()
        if pattern == b"" or _is_ip_address(pattern) or b"\0" in pattern:
            raise CertificateError(f"Invalid DNS pattern {pattern!r}.")
        pattern = pattern.translate(_LOWER)
        if b"*" in pattern:
            _validate_wildcard(pattern)
        return cls(pattern)

    def __eq__(self, other):
        return type(self) is type(other) and self.pattern == other.pattern

    def __repr__(self):
        return f"DNSPattern(pattern={self.pattern!r})"


class IPAddressPattern:
    def __init__(self, pattern):
        self.pattern = pattern

    @classmethod
    def from_bytes(cls, data: bytes) -> IPAddressPattern:
        try:
            return cls(ipaddress.ip_address(data))
        except ValueError:
            raise CertificateError(f"Invalid IP address pattern {data!r}.") from None

    def __eq__(self, other):
        return type(self) is type(other) and self.pattern == other.pattern

    def __repr__(self):
        return f"IPAddressPattern(pattern={self.pattern!r})"


class URIPattern:
    def __init__(self, protocol_pattern: bytes, dns_pattern: DNSPattern):
        self.protocol_pattern, self.dns_pattern = protocol_pattern, dns_pattern

    @classmethod
    def from_bytes(cls, pattern: bytes) -> URIPattern:
        if not isinstance(pattern, bytes):
            raise TypeError("The URI pattern must be a bytes string.")
        pattern = pattern.strip().translate(_LOWER)
        if b":" not in pattern or b"*" in pattern or _is_ip_address(pattern):
            raise CertificateError(f"Invalid URI pattern {pattern!r}.")
        # service_identity unpacks exactly two parts: a URI with a port or path raises ValueError
        protocol, hostname = pattern.split(b":")
        return cls(protocol, DNSPattern.from_bytes(hostname))

    def __repr__(self):
        return f"URIPattern(protocol_pattern={self.protocol_pattern!r}, dns_pattern={self.dns_pattern!r})"


class SRVPattern:
    def __init__(self, name_pattern: bytes, dns_pattern: DNSPattern):
        self.name_pattern, self.dns_pattern = name_pattern, dns_pattern

    @classmethod
    def from_bytes(cls, pattern: bytes) -> SRVPattern:
        if not isinstance(pattern, bytes):
            raise TypeError("The SRV pattern must be a bytes string.")
        pattern = pattern.strip().translate(_LOWER)
        if pattern[:1] != b"_" or b"." not in pattern or b"*" in pattern or _is_ip_address(pattern):
            raise CertificateError(f"Invalid SRV pattern {pattern!r}.")
        name, hostname = pattern.split(b".", 1)
        return cls(name[1:], DNSPattern.from_bytes(hostname))

    def __repr__(self):
        return f"SRVPattern(name_pattern={self.name_pattern!r}, dns_pattern={self.dns_pattern!r})"


def _hostname_matches(pattern: bytes, hostname: bytes) -> bool:
    if b"*" in pattern:
        if b"." not in hostname:
            return False
        pattern_head, pattern_tail = pattern.split(b".", 1)
        host_head, host_tail = hostname.split(b".", 1)
        if pattern_tail != host_tail:
            return False
        if host_head.startswith(b"xn--"):  # a wildcard never stands for an IDNA label
            return False
        return pattern_head in (b"*", host_head)
    return pattern == hostname


class DNS_ID:
    pattern_class = DNSPattern
    error_on_mismatch = DNSMismatch

    def __init__(self, hostname: str):
        if not isinstance(hostname, str):
            raise TypeError("DNS-ID must be a text string.")
        hostname = hostname.strip()
        if not hostname or _is_ip_address(hostname):
            raise ValueError("Invalid DNS-ID.")
        if hostname.isascii():
            ascii_id = hostname.encode("ascii")
        else:
            try:
                ascii_id = hostname.encode("idna")
            except UnicodeError:
                raise ValueError("Invalid DNS-ID.") from None
        self.hostname = ascii_id.translate(_LOWER)
        if _LEGAL_HOSTNAME.match(self.hostname) is None:  # so "*" in a server name never matches
            raise ValueError("Invalid DNS-ID.")

    def verify(self, pattern) -> bool:
        return isinstance(pattern, DNSPattern) and _hostname_matches(pattern.pattern, self.hostname)

    def __eq__(self, other):
        return type(self) is type(other) and self.hostname == other.hostname

    def __repr__(self):
        return f"DNS_ID(hostname={self.hostname!r})"


class IPAddress_ID:
    pattern_class = IPAddressPattern
    error_on_mismatch = IPAddressMismatch

    def __init__(self, ip):
        self.ip = ipaddress.ip_address(ip)

    def verify(self, pattern) -> bool:
        return isinstance(pattern, IPAddressPattern) and self.ip == pattern.pattern

    def __eq__(self, other):
        return type(self) is type(other) and self.ip == other.ip

    def __repr__(self):
        return f"IPAddress_ID(ip={self.ip!r})"


def _srv_value(der: bytes) -> bytes:
    """The text of an IA5String's DER encoding (the value of an SRV OtherName)."""
    if len(der) < 2 or der[0] != 0x16:
        raise CertificateError("Unexpected certificate content.")
    n, at = der[1], 2
    if n & 0x80:
        size = n & 0x7F
        n, at = int.from_bytes(der[2:2 + size], "big"), 2 + size
    if at + n != len(der) or not der[at:].isascii():
        raise CertificateError("Unexpected certificate content.")
    return der[at:]


def extract_patterns(cert: Certificate) -> list:
    """Every ID pattern in the certificate's subjectAltName; CertificateError for an invalid one."""
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except ExtensionNotFound:
        return []
    patterns: list = [DNSPattern.from_bytes(n.encode("utf-8")) for n in san.get_values_for_type(DNSName)]
    patterns += [URIPattern.from_bytes(u.encode("utf-8")) for u in san.get_values_for_type(UniformResourceIdentifier)]
    patterns += [IPAddressPattern(ip) for ip in san.get_values_for_type(IPAddress)]
    for other in san.get_values_for_type(OtherName):
        if other.type_id == ID_ON_DNS_SRV:
            patterns.append(SRVPattern.from_bytes(_srv_value(other.value)))
    return patterns


def verify_service_identity(cert_patterns, obligatory_ids, optional_ids) -> list:
    if not cert_patterns:
        raise CertificateError("Certificate does not contain any `subjectAltName`s.")
    ids = list(obligatory_ids) + list(optional_ids)
    matched = [(sid, p) for sid in ids for p in cert_patterns if sid.verify(p)]
    matched_ids = [sid for sid, _ in matched]
    errors = [sid.error_on_mismatch(mismatched_id=sid) for sid in obligatory_ids if sid not in matched_ids]
    errors += [sid.error_on_mismatch(mismatched_id=sid) for sid in optional_ids
               if sid not in matched_ids and any(isinstance(p, sid.pattern_class) for p in cert_patterns)]
    if errors:
        raise VerificationError(errors)
    return matched


def verify_certificate_hostname(certificate: Certificate, hostname: str) -> None:
    verify_service_identity(extract_patterns(certificate), [DNS_ID(hostname)], [])


def verify_certificate_ip_address(certificate: Certificate, ip_address: str) -> None:
    verify_service_identity(extract_patterns(certificate), [IPAddress_ID(ip_address)], [])


__all__ = ["CertificateError", "VerificationError", "extract_patterns", "verify_certificate_hostname",
           "verify_certificate_ip_address", "DNSPattern", "IPAddressPattern", "URIPattern", "SRVPattern",
           "DNSMismatch", "IPAddressMismatch", "URIMismatch", "SRVMismatch", "DNS_ID", "IPAddress_ID"]
