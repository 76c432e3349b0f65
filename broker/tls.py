"""A self-signed CA and a broker certificate for the TLS listener, when the operator has none,
and client certificates from that CA for mutual TLS (``python -m broker cert issue NAME``).

For a development machine or a closed network; a bureau with its own PKI points
GRIDWATCH_MQTT_TLS_CERTFILE/KEYFILE/CAFILE at its files, issues client certificates from it,
and this never runs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gridwatch"), x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def make_self_signed(cafile: Path, certfile: Path, keyfile: Path, names: list[str] | None = None, days: int = 825) -> None:
    """A CA (its key next to ``cafile``, .key) and a server certificate for ``names`` (default:
    localhost, 127.0.0.1 and this host's name) signed by it."""
    names = names or ["localhost", "127.0.0.1", socket.gethostname()]
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Gridwatch broker CA")
    ca = (_builder(ca_name, ca_name, ca_key.public_key(), days)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    alt = [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in dict.fromkeys(names)]
    cert, key = _leaf(names[0], ca, ca_key, x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, days, alt)
    Path(cafile).parent.mkdir(parents=True, exist_ok=True)
    _write_key(Path(cafile).with_suffix(".key"), ca_key)
    Path(cafile).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_leaf(cert, key, certfile, keyfile)


def issue_client_cert(cafile: Path, name: str, certfile: Path, keyfile: Path, days: int = 825) -> None:
    """A client certificate for ``name`` (its common name: the terminal id or platform account),
    signed by the CA whose key lies next to ``cafile`` (.key, as make_self_signed leaves it)."""
    ca_key_file = Path(cafile).with_suffix(".key")
    if not ca_key_file.exists():
        raise FileNotFoundError(f"{ca_key_file}: the CA's key is not here (a CA of your own PKI issues its own certificates)")
    ca = x509.load_pem_x509_certificate(Path(cafile).read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
    cert, key = _leaf(name, ca, ca_key, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH, days)
    _write_leaf(cert, key, certfile, keyfile)


def _builder(subject: x509.Name, issuer: x509.Name, public_key, days: int) -> x509.CertificateBuilder:
    """A certificate valid from five minutes ago (clocks differ a little) for ``days``."""
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days)))


def _leaf(common: str, ca: x509.Certificate, ca_key, usage: x509.ObjectIdentifier, days: int,
          alt: list[x509.GeneralName] | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new key and its certificate for ``common``, signed by the CA, for one purpose (server or client)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(_name(common), ca.subject, key.public_key(), days)
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = (builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _write_leaf(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, certfile: Path, keyfile: Path) -> None:
    for path in (certfile, keyfile):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    _write_key(Path(keyfile), key)
    Path(certfile).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
