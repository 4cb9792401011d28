"""Which CRL may replace the installed one: parses, is signed by the device CA, is current and not older."""

from __future__ import annotations

import datetime as dt

from cryptography import x509


class Refused(Exception):
    """A CRL that must not be installed; the message says why."""


def _number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def _parse(pem: bytes) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(pem)
    except ValueError as exc:
        raise Refused(f"not a PEM CRL: {exc}") from None


def check(pem: bytes, ca: x509.Certificate, installed: bytes | None) -> x509.CertificateRevocationList:
    """The parsed CRL when it may replace `installed` (the bytes of the current file, None when absent)."""
    crl = _parse(pem)
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):
        raise Refused("not signed by the device CA")
    next_update = crl.next_update_utc
    if next_update is not None and next_update < dt.datetime.now(dt.UTC):
        raise Refused(f"expired at {next_update.isoformat()}")  # the broker would refuse every certificate
    try:
        old = _parse(installed) if installed else None
    except Refused:
        old = None  # a broken file is replaced by any good CRL
    if old is None:
        return crl
    new_n, old_n = _number(crl), _number(old)
    # A numbered CRL (the device manager's) replaces an unnumbered one (the bootstrap file); between two numbered
    # ones the number decides, then lastUpdate: a replayed older CRL would bring revoked certificates back.
    if old_n is not None and (new_n is None or new_n < old_n):
        raise Refused(f"older than the installed one (CRL number {new_n} < {old_n})")
    if new_n == old_n and crl.last_update_utc < old.last_update_utc:
        raise Refused("older than the installed one (lastUpdate)")
    return crl
