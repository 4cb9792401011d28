"""X.509 plumbing: CA and leaf certificates, device client certificates (CN = device_id), CSR signing, CRLs."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and, when generated here, its private key (both PEM)."""

    cert_pem: bytes
    key_pem: bytes | None
    serial: int
    fingerprint: str  # SHA-256 of the DER certificate, hex
    not_after: dt.datetime


def new_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key: small, fast handshakes, supported by every TLS stack devices ship."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> bytes:
    """Unencrypted PKCS#8 PEM of a private key."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of a certificate, lowercase hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "IoT Hub"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days)))


def _issued(cert: x509.Certificate, key=None) -> Issued:
    return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem(key) if key is not None else None,
                  cert.serial_number, fingerprint(cert), cert.not_valid_after_utc)


def make_ca(cn: str, days: int = 3650) -> Issued:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = new_key()
    cert = (_builder(_name(cn), _name(cn), key.public_key(), days)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return _issued(cert, key)


class Signer:
    """Signs leaf certificates and CRLs with one CA (PEM cert + key)."""

    def __init__(self, ca_cert_pem: bytes, ca_key_pem: bytes):
        self.cert = x509.load_pem_x509_certificate(ca_cert_pem)
        self._key = serialization.load_pem_private_key(ca_key_pem, password=None)

    def _sign(self, cn: str, public_key, days: int, usage, sans: list[x509.GeneralName] | None) -> x509.Certificate:
        b = (_builder(_name(cn), self.cert.subject, public_key, days)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return b.sign(self._key, hashes.SHA256())

    def server(self, cn: str, hosts: list[str], days: int = 825) -> Issued:
        """A TLS server certificate for the given DNS names and IP addresses."""
        key = new_key()
        return _issued(self._sign(cn, key.public_key(), days, ExtendedKeyUsageOID.SERVER_AUTH, _sans(hosts)), key)

    def client(self, cn: str, days: int = 825) -> Issued:
        """A TLS client certificate with a fresh key (CN = the device id or service name)."""
        key = new_key()
        return _issued(self._sign(cn, key.public_key(), days, ExtendedKeyUsageOID.CLIENT_AUTH, None), key)

    def client_from_csr(self, csr_pem: bytes, cn: str, days: int = 825) -> Issued:
        """Sign a CSR's public key as a client certificate; the CN is ours, not the CSR's (ValueError when bad)."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise ValueError(f"not a PEM certificate signing request: {exc}") from None
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not verify")
        _check_strength(csr.public_key())
        return _issued(self._sign(cn, csr.public_key(), days, ExtendedKeyUsageOID.CLIENT_AUTH, None))

    def crl(self, revoked_serials: list[int], days: int = 3650, *, number: int | None = None,
            revoked_at: dict[int, dt.datetime] | None = None, this_update: dt.datetime | None = None) -> bytes:
        """A CRL (PEM) listing the serial numbers as revoked."""
        # With `number` (the CRL Number extension), `revoked_at` and `this_update` the same inputs give the same
        # bytes: replicas serve one document.
        now = this_update or dt.datetime.now(dt.UTC)
        b = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
             .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=days)))
        if number is not None:
            b = b.add_extension(x509.CRLNumber(number), critical=False)
        for serial in sorted(revoked_serials):
            when = (revoked_at or {}).get(serial, now)
            b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                          .revocation_date(when - dt.timedelta(minutes=5)).build())
        # ECDSA signatures are random unless asked otherwise (RFC 6979); RSA PKCS#1 v1.5 ones never are.
        deterministic = {"ecdsa_deterministic": True} if isinstance(self._key, ec.EllipticCurvePrivateKey) else {}
        return b.sign(self._key, hashes.SHA256(), **deterministic).public_bytes(serialization.Encoding.PEM)


# What the device CA signs from a CSR: keys every TLS 1.2+ stack accepts and that meet NIST SP 800-57's 112-bit floor.
CSR_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
CSR_MIN_RSA_BITS = 2048


def _check_strength(key) -> None:
    """Refuse (ValueError) a CSR key too weak or of a kind the broker's TLS would not take."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, CSR_CURVES):
            raise ValueError(f"the CSR's curve {key.curve.name} is not one of P-256, P-384, P-521")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < CSR_MIN_RSA_BITS:
            raise ValueError(f"the CSR's RSA key has {key.key_size} bits; at least {CSR_MIN_RSA_BITS} are required")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError(f"the CSR's key type {type(key).__name__} is not accepted (EC P-256/384/521, RSA, Ed25519)")


def _sans(hosts: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for host in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            out.append(x509.DNSName(host))
    return out
