"""`--tls-self-signed`: a certificate for this machine's names and LAN addresses, made once
and kept between restarts (so a browser's exception, or a trust anchor, stays valid).

Owns: `ensure_certificate()`, `SelfSignedError`. Imports nothing from evserver. Needs the
optional `cryptography` package, imported only here and only when asked for: evserver itself
stays standard-library only.
"""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
from pathlib import Path

_VALIDITY_DAYS = 397  # what browsers accept at most for a leaf certificate (CA/B rules)
_RENEW_DAYS = 30  # made again when it expires sooner than this


class SelfSignedError(RuntimeError):
    """The certificate cannot be made or kept; the message is shown as is."""


def state_folder() -> Path:
    """Where the certificate is kept: $XDG_STATE_HOME/evserver (~/.local/state/evserver)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "evserver"


def ensure_certificate(folder: Path, addresses: list[str]) -> tuple[Path, Path, str]:
    """(certificate, key, SHA-256 fingerprint) for localhost, this host's name and
    `addresses`: the kept one if it still covers them and is not about to expire, else a
    new one (P-256, serverAuth)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise SelfSignedError("--tls-self-signed needs the optional 'cryptography' package "
                              "(python3 -m pip install cryptography)") from None
    host = socket.gethostname() or "localhost"
    names = sorted({"localhost", host, f"{host}.local"})
    ips = sorted({"127.0.0.1", "::1", *addresses})
    cert_path, key_path = folder / "selfsigned.crt", folder / "selfsigned.key"
    now = datetime.datetime.now(datetime.UTC)
    if cert_path.exists() and key_path.exists():
        try:
            kept = x509.load_pem_x509_certificate(cert_path.read_bytes())
            san = kept.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            covered = (set(names) <= set(san.get_values_for_type(x509.DNSName))
                       and {ipaddress.ip_address(a) for a in ips}
                       <= set(san.get_values_for_type(x509.IPAddress)))
            fresh = kept.not_valid_after_utc - now > datetime.timedelta(days=_RENEW_DAYS)
            if covered and fresh:
                return cert_path, key_path, _fingerprint(kept.public_bytes(
                    serialization.Encoding.DER))
        except (ValueError, x509.ExtensionNotFound):
            pass  # unreadable or not ours: make a new one
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evserver (self-signed)")])
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=_VALIDITY_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # The key is written readable by its owner only, before any byte of it is.
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as err:
        raise SelfSignedError(f"cannot keep the certificate in {folder}: {err.strerror}") from None
    return cert_path, key_path, _fingerprint(cert.public_bytes(serialization.Encoding.DER))


def _fingerprint(der: bytes) -> str:
    """SHA-256 as browsers show it: colon-separated upper-case hex."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
