"""The container itself: its network interfaces (`ip`) and a self-signed certificate
(`openssl`), for submission (core/submission.py plans with what these find)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from relaykit.core.submission import docker_networks, tls_files
from relaykit.errors import ConfigError, RelaykitError
from relaykit.model.settings import SubmissionSettings


def trusted_networks(settings: SubmissionSettings | None) -> tuple[str, ...]:
    """PERMIT_DOCKER's networks, reading the container's interfaces when the mode needs them."""
    if settings is None or settings.permit_docker in ("none", "network"):
        return docker_networks(settings.permit_docker if settings else "none", [])
    try:
        out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ConfigError(f"cannot list this container's networks (ip -j addr): {exc}", "PERMIT_DOCKER") from None
    return docker_networks(settings.permit_docker, json.loads(out or "[]"))


def ensure_certificate(settings: SubmissionSettings, mail_config: Path, hostname: str) -> bool:
    """Make the self-signed pair when no certificate is given and none was made before for
    this hostname (a container renamed by OVERRIDE_HOSTNAME or --hostname gets a new one).
    True when it was made now. The caller warns loudly: clients cannot verify it."""
    cert, key = tls_files(settings, mail_config)
    if settings.cert_file or (cert.exists() and key.exists() and _certificate_name(cert) == hostname):
        return False
    cert.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp_key, tmp_cert = key.with_suffix(".tmp"), cert.with_suffix(".tmp")
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "825", "-subj", f"/CN={hostname}", "-addext", f"subjectAltName=DNS:{hostname}",
             "-keyout", str(tmp_key), "-out", str(tmp_cert)],
            capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise RelaykitError(f"cannot make a self-signed certificate with openssl: {detail.strip()}") from None
    tmp_key.chmod(0o600)
    tmp_key.replace(key)
    tmp_cert.replace(cert)
    return True


def _certificate_name(cert: Path) -> str | None:
    """The CN of a certificate relaykit made (openssl prints `subject=CN = name`)."""
    try:
        out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "multiline", "-in", str(cert)],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # unreadable: make a new one
    names = [line.split("=", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("commonName")]
    return names[0] if names else None


def certificate_problem(cert: Path, key: Path) -> str | None:
    """Why this certificate and key would not serve TLS (unreadable, not PEM, not a pair),
    or None: what smtpd would find loading them. A renewal writes the two files one
    after the other; in between they do not match."""
    import ssl  # only `relaykit start` with SSL_CERT_PATH, when the files change

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        return getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    return None
def dkim_genkey(directory: Path, domain: str, selector: str, bits: int) -> tuple[Path, str]:
    """A new DKIM key pair by opendkim-genkey (opendkim-tools), as DMS's `setup config dkim`:
    <directory>/<selector>.private (0600) and the DNS TXT record (<selector>.txt), returned."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["opendkim-genkey", "-b", str(bits), "-d", domain, "-s", selector, "-D", str(directory)],
                       capture_output=True, text=True, check=True, umask=0o077)  # the key: never readable by others
    except FileNotFoundError:
        raise RelaykitError("opendkim-genkey is not installed (Debian's opendkim-tools)") from None
    except subprocess.CalledProcessError as exc:
        raise RelaykitError(f"opendkim-genkey failed: {exc.stderr.strip()}") from None
    private = directory / f"{selector}.private"
    private.chmod(0o600)
    return private, (directory / f"{selector}.txt").read_text()
