"""Self-signed certificates for throwaway test servers."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTNAME = "localhost"
IP_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class CertPair:
    """Paths of a PEM certificate and its unencrypted PEM private key."""

    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        """An SSL server context serving this certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert_path), str(self.key_path))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this certificate."""
        return client_context(self.cert_path)


def client_context(cafile: str | Path) -> ssl.SSLContext:
    """A default (verifying) client context trusting `cafile`."""
    return ssl.create_default_context(cafile=str(cafile))


def generate_self_signed(
    directory: str | Path,
    *,
    name: str = "server",
    hostnames: tuple[str, ...] = (HOSTNAME,),
    ip_addresses: tuple[str, ...] = (IP_ADDRESS,),
) -> CertPair:
    """Write `<name>.crt` / `<name>.key` (EC P-256, valid for `hostnames` and IPs)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames else IP_ADDRESS),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "crmail test harness"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return CertPair(cert_path=cert_path, key_path=key_path)
