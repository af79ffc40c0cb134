"""A local certificate authority for development: made once, then leaf certificates from it.

Everything is written with ``cryptography``: ECDSA P-256 keys, a CA valid for
ten years, leaves valid for 397 days (the most browsers accept) with the
hosts as subjectAltNames. Keys are written mode 0600.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    ca: Path
    created: bool  # False: an existing, still valid certificate was kept


def ensure_ca(directory: Path) -> tuple[Path, Path, bool]:
    """The local CA's (cert, key) under ``directory``, made if missing."""
    cert, key = directory / "ca.pem", directory / "ca.key"
    if cert.exists() and key.exists():
        return cert, key, False
    directory.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "portico local CA"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"portico local CA ({os.uname().nodename})"
                           if hasattr(os, "uname") else "portico local CA"),
    ])
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()),
                       critical=False)
        .sign(private, hashes.SHA256())
    )
    _write_key(key, private)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key, True


def issue(directory: Path, hosts: list[str], force: bool = False) -> Issued:
    """A leaf for ``hosts`` signed by the local CA in ``directory``; kept while still valid
    for the same hosts and not within 30 days of expiry."""
    ca_cert_path, ca_key_path, _ = ensure_ca(directory)
    stem = leaf_stem(hosts)
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    if not force and cert_path.exists() and key_path.exists():
        existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if existing.not_valid_after_utc - RENEW_BEFORE > _now():
            return Issued(cert_path, key_path, ca_cert_path, created=False)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    private = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key_path, private)
    chain = certificate.public_bytes(serialization.Encoding.PEM)
    cert_path.write_bytes(chain + ca_cert.public_bytes(serialization.Encoding.PEM))
    return Issued(cert_path, key_path, ca_cert_path, created=True)


def leaf_stem(hosts: list[str]) -> str:
    first = hosts[0].replace("*", "_wildcard")
    digest = hashlib.sha1(",".join(sorted(hosts)).encode()).hexdigest()[:8]
    return f"{first}-{digest}"


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_key(path: Path, private: ec.EllipticCurvePrivateKey) -> None:
    data = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
