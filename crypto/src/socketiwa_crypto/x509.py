"""X.509 certificates: the reading side aioquic and service_identity use (no building)."""
from __future__ import annotations

import datetime
import ipaddress

from . import _awslc
from .exceptions import UnsupportedAlgorithm
from .serialization import Encoding, pem_blocks


class ObjectIdentifier:
    def __init__(self, dotted_string: str):
        self.dotted_string = dotted_string

    def __eq__(self, other):
        return isinstance(other, ObjectIdentifier) and other.dotted_string == self.dotted_string

    def __hash__(self):
        return hash(self.dotted_string)

    def __repr__(self):
        return f"<ObjectIdentifier({self.dotted_string})>"


class NameOID:
    COMMON_NAME = ObjectIdentifier("2.5.4.3")
    COUNTRY_NAME = ObjectIdentifier("2.5.4.6")
    LOCALITY_NAME = ObjectIdentifier("2.5.4.7")
    STATE_OR_PROVINCE_NAME = ObjectIdentifier("2.5.4.8")
    ORGANIZATION_NAME = ObjectIdentifier("2.5.4.10")
    ORGANIZATIONAL_UNIT_NAME = ObjectIdentifier("2.5.4.11")


class ExtensionOID:
    SUBJECT_ALTERNATIVE_NAME = ObjectIdentifier("2.5.29.17")


class NameAttribute:
    def __init__(self, oid: ObjectIdentifier, value: str):
        self.oid, self.value = oid, value

    def __eq__(self, other):
        return isinstance(other, NameAttribute) and (self.oid, self.value) == (other.oid, other.value)

    def __hash__(self):
        return hash((self.oid, self.value))


class Name:
    def __init__(self, attributes):
        self._attributes = list(attributes)

    def __iter__(self):
        return iter(self._attributes)

    def __len__(self):
        return len(self._attributes)

    def __eq__(self, other):
        return isinstance(other, Name) and self._attributes == other._attributes

    def __hash__(self):
        return hash(tuple(self._attributes))

    def get_attributes_for_oid(self, oid: ObjectIdentifier) -> list[NameAttribute]:
        return [a for a in self._attributes if a.oid == oid]

    def rfc4514_string(self) -> str:
        short = {"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU"}
        return ",".join(f"{short.get(a.oid.dotted_string, a.oid.dotted_string)}={a.value}"
                        for a in reversed(self._attributes))


class GeneralName:
    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return type(self) is type(other) and self.value == other.value

    def __hash__(self):
        return hash((type(self), self.value))

    def __repr__(self):
        return f"<{type(self).__name__}(value={self.value!r})>"


class DNSName(GeneralName):
    pass


class IPAddress(GeneralName):
    pass


class UniformResourceIdentifier(GeneralName):
    pass


class OtherName(GeneralName):
    """``value`` is the DER of the name's content, as in cryptography."""

    def __init__(self, type_id: ObjectIdentifier, value: bytes):
        self.type_id, self.value = type_id, value

    def __eq__(self, other):
        return isinstance(other, OtherName) and (self.type_id, self.value) == (other.type_id, other.value)

    def __hash__(self):
        return hash((self.type_id, self.value))


ID_ON_DNS_SRV = ObjectIdentifier("1.3.6.1.5.5.7.8.7")


class SubjectAlternativeName:
    oid = ExtensionOID.SUBJECT_ALTERNATIVE_NAME

    def __init__(self, general_names):
        self._names = list(general_names)

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def get_values_for_type(self, type_):
        # as in cryptography: OtherName entries are returned whole, others as their value
        return [n if isinstance(n, OtherName) else n.value for n in self._names if isinstance(n, type_)]


class DuplicateExtension(Exception):
    def __init__(self, msg: str, oid: ObjectIdentifier | None = None):
        super().__init__(msg)
        self.oid = oid


class ExtensionNotFound(Exception):
    def __init__(self, msg: str, oid: ObjectIdentifier):
        super().__init__(msg)
        self.oid = oid


class Extension:
    def __init__(self, oid, critical: bool, value):
        self.oid, self.critical, self.value = oid, critical, value


class Extensions:
    def __init__(self, extensions):
        self._extensions = list(extensions)

    def __iter__(self):
        return iter(self._extensions)

    def get_extension_for_class(self, extclass):
        for ext in self._extensions:
            if isinstance(ext.value, extclass):
                return ext
        raise ExtensionNotFound(f"No {extclass} extension was found", getattr(extclass, "oid", None))

    def get_extension_for_oid(self, oid):
        for ext in self._extensions:
            if ext.oid == oid:
                return ext
        raise ExtensionNotFound(f"No {oid} extension was found", oid)


def _utc(seconds: int) -> datetime.datetime:
    """POSIX seconds as an aware datetime; OverflowError outside years 1..9999."""
    return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=seconds)


def _ia5(value: bytes) -> str:
    """SAN strings are IA5String: cryptography refuses non-ASCII ones when reading extensions."""
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("error parsing asn1 value: subjectAltName name is not IA5String") from None


def _ia5_der(value: bytes) -> bytes:
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return b"\x16" + length + value


# cryptography parses the key's AlgorithmIdentifier when it loads a certificate (the key itself
# only in public_key()): parameters an algorithm does not take, or lacks, refuse the certificate.
_NO_PARAMETERS = {"1.3.101.110", "1.3.101.111", "1.3.101.112", "1.3.101.113"}  # X25519 X448 Ed25519 Ed448
_NEEDS_PARAMETERS = {"1.2.840.10045.2.1"}  # id-ecPublicKey: the curve


def _check_key_algorithm_parameters(cert_der: bytes) -> None:
    from .serialization import _der_element, _key_algorithm
    _, at, _ = _der_element(cert_der, 0)      # Certificate
    _, at, _ = _der_element(cert_der, at)     # TBSCertificate
    for _ in range(6 if cert_der[at] == 0xA0 else 5):  # [version], serial, signature, issuer, validity, subject
        _, _, at = _der_element(cert_der, at)
    _, _, spki_end = _der_element(cert_der, at)
    spki = cert_der[at:spki_end]
    oid = _key_algorithm(spki, private=False)
    _, alg_at, _ = _der_element(spki, 0)
    _, alg_start, alg_end = _der_element(spki, alg_at)
    _, _, oid_end = _der_element(spki, alg_start)
    has_parameters = oid_end < alg_end
    if (oid in _NO_PARAMETERS and has_parameters) or (oid in _NEEDS_PARAMETERS and not has_parameters):
        raise ValueError(f"error parsing asn1 value: parameters of key algorithm {oid}")


class Certificate:
    def __init__(self, handle):
        self._cert = handle
        self._der = handle.der()
        # Checked here, not on first use: aioquic turns a ValueError at load into a bad_certificate
        # alert, while one raised while reading a date escapes its handshake and the connection
        # stalls until the idle timeout. cryptography refuses malformed times at load too; a year
        # it cannot represent (0000) it refuses only when the date is read: the provider at load.
        try:
            self._not_before, self._not_after = (_utc(t) for t in handle.validity())
        except (OverflowError, ValueError) as e:
            raise ValueError(f"error parsing asn1 value: certificate validity: {e}") from None
        _check_key_algorithm_parameters(self._der)

    def public_bytes(self, encoding: Encoding) -> bytes:
        from .serialization import _encode
        return _encode(self._der, encoding, "CERTIFICATE")

    def public_key(self):
        from .asymmetric import wrap
        try:
            return wrap(self._cert.public_key(), private=False)
        except _awslc.UnsupportedError as e:
            raise UnsupportedAlgorithm(str(e)) from None
        except _awslc.Error as e:
            raise ValueError(f"Invalid public key: {e}") from None

    @property
    def not_valid_before_utc(self) -> datetime.datetime:
        return self._not_before

    @property
    def not_valid_after_utc(self) -> datetime.datetime:
        return self._not_after

    @property
    def not_valid_before(self) -> datetime.datetime:
        return self.not_valid_before_utc.replace(tzinfo=None)

    @property
    def not_valid_after(self) -> datetime.datetime:
        return self.not_valid_after_utc.replace(tzinfo=None)

    @property
    def serial_number(self) -> int:
        return int.from_bytes(self._cert.serial(), "big")

    def _name(self, issuer: bool) -> Name:
        return Name(NameAttribute(ObjectIdentifier(oid), value) for oid, value in self._cert.name(issuer))

    @property
    def subject(self) -> Name:
        return self._name(False)

    @property
    def issuer(self) -> Name:
        return self._name(True)

    @property
    def extensions(self) -> Extensions:
        """Only subjectAltName is exposed, but every extension is checked as cryptography does:
        a duplicate raises DuplicateExtension, a malformed one ValueError."""
        try:
            self._cert.extensions_ok()
            san = self._cert.san()
        except _awslc.DuplicateError as e:
            raise DuplicateExtension(str(e)) from None
        except _awslc.Error as e:
            raise ValueError(f"error parsing asn1 value: {e}") from None
        found = []
        if san is not None:
            names = []
            for kind, value in san:
                if kind == "dns":
                    names.append(DNSName(_ia5(value)))
                elif kind == "uri":
                    names.append(UniformResourceIdentifier(_ia5(value)))
                elif kind == "srv":
                    names.append(OtherName(ID_ON_DNS_SRV, _ia5_der(value)))
                else:
                    try:
                        names.append(IPAddress(ipaddress.ip_address(value)))
                    except ValueError:
                        raise ValueError(f"Invalid IP address length {len(value)} in subjectAltName") from None
            found.append(Extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, False, SubjectAlternativeName(names)))
        return Extensions(found)

    def __eq__(self, other):
        return isinstance(other, Certificate) and self._der == other._der

    def __hash__(self):
        return hash(self._der)

    def __repr__(self):
        return f"<Certificate(subject={self.subject.rfc4514_string()}, ...)>"


def load_der_x509_certificate(data: bytes, backend=None) -> Certificate:
    try:
        return Certificate(_awslc.load_certificate(bytes(data)))
    except _awslc.Error as e:
        raise ValueError(f"error parsing asn1 value: {e}") from None


def load_pem_x509_certificate(data: bytes, backend=None) -> Certificate:
    for label, der in pem_blocks(data):
        if label in ("CERTIFICATE", "X509 CERTIFICATE"):
            return load_der_x509_certificate(der)
    raise ValueError("Unable to load PEM file: no certificate found.")


def load_pem_x509_certificates(data: bytes) -> list[Certificate]:
    certs = [load_der_x509_certificate(der) for label, der in pem_blocks(data) if label == "CERTIFICATE"]
    if not certs:
        raise ValueError("Unable to load PEM file: no certificates found.")
    return certs
