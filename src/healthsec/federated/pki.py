"""Consortium PKI: a CA, the coordinator's TLS certificate, one client certificate per member, and a CRL.

Built on ``cryptography`` (X.509, ECDSA P-256). Layout of a consortium directory::

    ca.pem  ca.key            the consortium CA (ca.key stays with whoever runs ``federate certs``)
    coordinator.pem/.key      the coordinator's server certificate (SAN: the host names given)
    members/NAME.pem/.key     one client certificate per member (CN = NAME, clientAuth)
    crl.pem                   revoked member certificates, signed by the CA

Keys are written 0600. A member's certificate is its identity: the coordinator admits a TLS peer only if
its certificate chains to ``ca.pem``, is within its validity, and its serial is not on ``crl.pem``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
DAYS = 365


class PkiError(ValueError):
    """A consortium directory or certificate is missing, malformed or not trusted; says which and why."""


@dataclass(frozen=True)
class Identity:
    """What a member presents: its certificate chain and private key (PEM), plus the CA to trust."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if secret:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_ca(root: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((root / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((root / "ca.key").read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise PkiError(f"{root}: cannot read the consortium CA (ca.pem, ca.key): {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{root}/ca.key: not an EC private key")
    return cert, key


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    cn: str,
    server_hosts: list[str] | None,
    days: int,
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if server_hosts is not None:
        sans: list[x509.GeneralName] = []
        for h in server_hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _write_crl(
    root: Path, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, serials: list[int]
) -> None:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(_now())
        .next_update(_now() + dt.timedelta(days=DAYS))
    )
    for s in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(s).revocation_date(_now()).build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())
    _write(root / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))


def create_consortium(
    root: str | Path,
    members: list[str],
    hosts: list[str],
    name: str = "healthsec consortium",
    days: int = DAYS,
) -> list[Path]:
    """Create the CA (if absent), the coordinator certificate and certificates for new members.

    Members that already have a certificate are left alone; returns the files written.
    """
    base = Path(root)
    for m in members:
        if not NAME_RE.match(m):
            raise PkiError(f"member name {m!r}: use 1-63 lower-case letters, digits, '.', '_' or '-'")
    written: list[Path] = []
    if not (base / "ca.pem").exists():
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(minutes=5))
            .not_valid_after(_now() + dt.timedelta(days=days * 5))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        _write(base / "ca.key", _key_pem(key), secret=True)
        _write(base / "ca.pem", cert.public_bytes(serialization.Encoding.PEM))
        written += [base / "ca.key", base / "ca.pem"]
    ca_cert, ca_key = _load_ca(base)
    if not (base / "crl.pem").exists():
        _write_crl(base, ca_cert, ca_key, [])
        written.append(base / "crl.pem")
    if not (base / "coordinator.pem").exists():
        cert_pem, key_pem = _issue(ca_cert, ca_key, "coordinator", hosts, days)
        _write(base / "coordinator.key", key_pem, secret=True)
        _write(base / "coordinator.pem", cert_pem)
        written += [base / "coordinator.key", base / "coordinator.pem"]
    for m in members:
        if (base / "members" / f"{m}.pem").exists():
            continue
        cert_pem, key_pem = _issue(ca_cert, ca_key, m, None, days)
        _write(base / "members" / f"{m}.key", key_pem, secret=True)
        _write(base / "members" / f"{m}.pem", cert_pem)
        written += [base / "members" / f"{m}.key", base / "members" / f"{m}.pem"]
    return written


def revoke(root: str | Path, member: str) -> int:
    """Put a member's certificate on the CRL (re-signed by the CA); returns the revoked serial."""
    base = Path(root)
    path = base / "members" / f"{member}.pem"
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PkiError(f"{path}: no readable certificate for member {member!r}: {exc}") from exc
    ca_cert, ca_key = _load_ca(base)
    serials = sorted(revoked_serials(base / "crl.pem", ca_cert.public_bytes(serialization.Encoding.PEM)))
    if cert.serial_number not in serials:
        serials.append(cert.serial_number)
    _write_crl(base, ca_cert, ca_key, serials)
    return cert.serial_number


def revoked_serials(crl_path: str | Path, ca_pem: bytes) -> set[int]:
    """Serials on the CRL, after checking the CRL is signed by the CA (a forged CRL is refused)."""
    try:
        crl = x509.load_pem_x509_crl(Path(crl_path).read_bytes())
    except (OSError, ValueError) as exc:
        raise PkiError(f"{crl_path}: cannot read the revocation list: {exc}") from exc
    ca = x509.load_pem_x509_certificate(ca_pem)
    pub = ca.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(pub):
        raise PkiError(f"{crl_path}: revocation list is not signed by the consortium CA")
    return {r.serial_number for r in crl}


def check_member(cert_pem: bytes, ca_pem: bytes, revoked: set[int]) -> str:
    """The member name of a trusted, unrevoked client certificate; PkiError saying why otherwise."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise PkiError(f"peer certificate is not readable PEM: {exc}") from exc
    ca = x509.load_pem_x509_certificate(ca_pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(names[0].value) if names else "(no CN)"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise PkiError(f"member {cn!r}: certificate not issued by the consortium CA") from exc
    now = _now()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise PkiError(f"member {cn!r}: certificate outside its validity period")
    if cert.serial_number in revoked:
        raise PkiError(f"member {cn!r}: certificate serial {cert.serial_number:x} is revoked")
    return cn


def member_identity(root: str | Path, member: str) -> Identity:
    """A member's certificate, key and the CA certificate, read from a consortium directory."""
    base = Path(root)
    try:
        return Identity(
            cert_pem=(base / "members" / f"{member}.pem").read_bytes(),
            key_pem=(base / "members" / f"{member}.key").read_bytes(),
            ca_pem=(base / "ca.pem").read_bytes(),
        )
    except OSError as exc:
        raise PkiError(f"{base}: no credentials for member {member!r}: {exc}") from exc
