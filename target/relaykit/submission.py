"""Submission for users: ports 587 (STARTTLS) and 465 (implicit TLS), Dovecot SASL, no
open relay, no sender spoofing. `build` is pure (settings + parsed files -> Plan); the
edges (reading the container's interfaces, making a self-signed certificate) are the
small functions at the end.

What Postfix ends up with (postconf(5), master(5), SASL_README):
- master.cf `submission` and `submissions`: smtpd with TLS required (`encrypt`, or the
  TLS wrapper on 465), SASL offered, and every restriction `permit_sasl_authenticated,
  reject`: an unauthenticated client there can do nothing.
- `smtpd_tls_auth_only = yes`: AUTH is never offered before STARTTLS, so a password never
  crosses the network in clear, whatever the port.
- `smtpd_sasl_type = dovecot`, `smtpd_sasl_path = private/auth`: Dovecot (dovecot.py)
  checks the passwords of postfix-accounts.cf (or of the database store's users) through
  a socket in Postfix's queue dir.
- Port 25 relays for trusted networks only: `mynetworks` is the container's own loopback
  address plus PERMIT_NETWORKS / PERMIT_DOCKER; main.cf's smtpd_relay_restrictions
  (permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination) do the rest,
  and SASL is not offered on port 25 at all.
- `smtpd_sender_login_maps` -> `sender_login`: who may use which envelope sender. An
  account owns its own address; an alias of postfix-virtual.cf is owned by its targets
  (DMS's SPOOF_PROTECTION semantics; a catch-all `@domain` gives its targets the whole
  domain). `reject_sender_login_mismatch` refuses anything else with 553.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from relaykit.configfiles import ConfigFiles
from relaykit.errors import ConfigError, RelaykitError
from relaykit.plan import Plan, Service, Table

if TYPE_CHECKING:
    from relaykit.settings import Settings

SENDER_LOGIN = "sender_login"
AUTH_SOCKET = "private/auth"  # relative to Postfix's queue_directory (smtpd runs there)
# The container's own processes are always trusted; other loopback addresses are not
# (tests connect from 127.0.0.2 to prove it).
LOOPBACK = ("127.0.0.1/32", "[::1]/128")
DOCKER_MODES = ("none", "container", "host", "network", "connected-networks")
SSL_TYPES = ("", "manual", "self-signed")


@dataclass(frozen=True)
class SubmissionSettings:
    enabled: bool = False  # ENABLE_SUBMISSION
    submission_port: int | None = 587  # None: the service is off
    submissions_port: int | None = 465
    address: str | None = None  # SUBMISSION_ADDRESS; None: every inet_interfaces address
    permit_networks: tuple[str, ...] = ()  # PERMIT_NETWORKS, Postfix's notation
    permit_docker: str = "none"
    cert_file: Path | None = None  # SSL_CERT_PATH; None: self-signed, made at start
    key_file: Path | None = None
    dovecot_dir: Path = Path("/run/relaykit/dovecot")  # generated dovecot.conf + passwd

    @property
    def active(self) -> bool:
        """Anything to plan: submission itself, or trusted networks for port 25."""
        return self.enabled or bool(self.permit_networks) or self.permit_docker != "none"


def tls_files(settings: SubmissionSettings, mail_config: Path) -> tuple[Path, Path]:
    """(certificate, key): the given files, else the self-signed pair in MAIL_CONFIG/tls."""
    if settings.cert_file and settings.key_file:
        return settings.cert_file, settings.key_file
    return mail_config / "tls" / "selfsigned-cert.pem", mail_config / "tls" / "selfsigned-key.pem"


def _ref(table_type: str, mail_config: Path, name: str) -> str:
    return f"{table_type}:{mail_config / name}"


def sender_logins(files: ConfigFiles) -> tuple[str, ...]:
    """`sender owner[,owner...]` lines: each account owns itself, each alias its targets."""
    owners: dict[str, list[str]] = {}
    # Lower-cased: the login is (Dovecot's auth_username_format %Lu).
    for account in files.accounts:
        owners.setdefault(account.address.lower(), []).append(account.address.lower())
    for alias in files.aliases:
        found = owners.setdefault(alias.address.lower(), [])
        found += [t.lower() for t in alias.targets if t.lower() not in found]
    return tuple(f"{sender} {','.join(logins)}" for sender, logins in owners.items() if logins)


def _service(name: str, role: str, tls: tuple[str, str], restrictions: tuple[tuple[str, str], ...]) -> Service:
    """An smtpd in master.cf; its log lines say postfix/submission or postfix/submissions."""
    return Service(name, "inet", "smtpd", (("syslog_name", f"postfix/{role}"), tls, *restrictions), private="n")


def _listen(address: str | None, port: int, default_port: int, default_name: str) -> str:
    if address:
        return f"{address}:{port}" if ":" not in address else f"[{address}]:{port}"
    return default_name if port == default_port else str(port)


def build(settings: Settings, files: ConfigFiles, table_type: str, networks: tuple[str, ...] = (),
          login_map: str | None = None) -> Plan:
    """The submission plan; `networks` are the PERMIT_DOCKER networks the edge found
    (trusted_networks). `login_map`: the database's smtpd_sender_login_maps lookup
    (pgsql.py), whose accounts and aliases are in the database, not in `files`."""
    sub: SubmissionSettings = settings.submission
    if sub is None or not sub.active:
        return Plan(table_type=table_type)
    trusted = tuple(dict.fromkeys((*LOOPBACK, *sub.permit_networks, *networks)))
    params = {"mynetworks": " ".join(trusted)}
    if not sub.enabled:
        return Plan(params=params, table_type=table_type)

    mail_config = settings.mail_config
    if login_map is None:
        from relaykit.dovecot import render_passwd

        render_passwd(files.accounts)  # an account Dovecot could not read fails here, before any change
    cert, key = tls_files(sub, mail_config)
    params.update({
        "smtpd_tls_cert_file": str(cert),
        "smtpd_tls_key_file": str(key),
        "smtpd_tls_security_level": "may",  # port 25: STARTTLS offered, not required
        "smtpd_tls_mandatory_protocols": ">=TLSv1.2",  # where TLS is required: 587 and 465
        "smtpd_tls_auth_only": "yes",
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": AUTH_SOCKET,
        "smtpd_sasl_security_options": "noanonymous",
        "smtpd_sender_login_maps": login_map or _ref(table_type, mail_config, SENDER_LOGIN),
    })
    # Commas, not spaces: master.cf -o values cannot hold whitespace.
    restrictions = (
        ("smtpd_sasl_auth_enable", "yes"),
        ("smtpd_client_restrictions", "permit_sasl_authenticated,reject"),
        ("smtpd_sender_restrictions", "reject_sender_login_mismatch,permit_sasl_authenticated,reject"),
        ("smtpd_relay_restrictions", "permit_sasl_authenticated,reject"),
        ("milter_macro_daemon_name", "ORIGINATING"),
    )
    services = []
    if sub.submission_port:
        name = _listen(sub.address, sub.submission_port, 587, "submission")
        services.append(_service(name, "submission", ("smtpd_tls_security_level", "encrypt"), restrictions))
    if sub.submissions_port:
        name = _listen(sub.address, sub.submissions_port, 465, "submissions")
        services.append(_service(name, "submissions", ("smtpd_tls_wrappermode", "yes"), restrictions))
    if login_map:
        return Plan(params=params, services=tuple(services), table_type=table_type)
    warnings = ()
    if not files.accounts:
        warnings = ("ENABLE_SUBMISSION is set but postfix-accounts.cf has no account: nobody can log in "
                    "(add one with: setup email add user@example.com)",)
    return Plan(
        tables=(Table(SENDER_LOGIN, sender_logins(files)),),
        params=params,
        services=tuple(services),
        table_type=table_type,
        warnings=warnings,
    )


# -- settings ---------------------------------------------------------------------------

def _flag(value: str | None, name: str) -> bool:
    text = (value or "0").strip().lower()
    if text in ("1", "yes", "true", "on"):
        return True
    if text in ("0", "no", "false", "off"):
        return False
    raise RelaykitError(f"{name} must be 0 or 1, not {value!r}")


def _port_or_off(value: str | None, default: int, name: str) -> int | None:
    from relaykit import validate

    if value is None or value == "":
        return default
    return None if value.strip() == "0" else validate.port(value, name)


def network(value: str, what: str = "PERMIT_NETWORKS") -> str:
    """A CIDR network (or address) in Postfix's mynetworks notation: IPv6 in brackets."""
    import ipaddress

    text = value.strip()
    if text.startswith("[") and "]" in text:  # Postfix's own [2001:db8::]/32
        text = text[1:].replace("]", "", 1)
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise RelaykitError(f"{what}: not an IP network such as 192.168.0.0/16 or 2001:db8::/32: {value!r}") from None
    return str(net) if net.version == 4 else f"[{net.network_address}]/{net.prefixlen}"


def load_settings(env: Mapping[str, str], origins: Mapping[str, str]) -> SubmissionSettings:
    """SubmissionSettings from the environment; ConfigError names the variable."""
    def checked(name: str, check, *args):
        try:
            return check(env.get(name) or None, *args)
        except RelaykitError as exc:
            raise ConfigError(exc.message, origins.get(name, name)) from None

    def networks(value, name):
        return tuple(network(v, name) for v in (value or "").replace(",", " ").split())

    def docker(value, name):
        mode = (value or "none").strip().lower()
        if mode not in DOCKER_MODES:
            raise RelaykitError(f"{name} must be one of {', '.join(DOCKER_MODES)}, not {value!r}")
        return mode

    def address(value, name):
        if not value:
            return None
        from relaykit import validate

        return validate.host(value, name)

    enabled = checked("ENABLE_SUBMISSION", _flag, "ENABLE_SUBMISSION")
    cert, key = _certificate_paths(env, origins)
    return SubmissionSettings(
        enabled=enabled,
        submission_port=checked("SUBMISSION_PORT", _port_or_off, 587, "SUBMISSION_PORT"),
        submissions_port=checked("SUBMISSIONS_PORT", _port_or_off, 465, "SUBMISSIONS_PORT"),
        address=checked("SUBMISSION_ADDRESS", address, "SUBMISSION_ADDRESS"),
        permit_networks=checked("PERMIT_NETWORKS", networks, "PERMIT_NETWORKS"),
        permit_docker=checked("PERMIT_DOCKER", docker, "PERMIT_DOCKER"),
        cert_file=cert if enabled else None,
        key_file=key if enabled else None,
        dovecot_dir=Path(env.get("RELAYKIT_DOVECOT_DIR") or "/run/relaykit/dovecot"),
    )


def _certificate_paths(env: Mapping[str, str], origins: Mapping[str, str]) -> tuple[Path | None, Path | None]:
    """DMS's SSL_TYPE=manual with SSL_CERT_PATH/SSL_KEY_PATH; nothing: self-signed."""
    ssl_type = (env.get("SSL_TYPE") or "").strip()
    if ssl_type not in SSL_TYPES:
        raise ConfigError(f"SSL_TYPE {ssl_type!r} is not supported: use 'manual' with SSL_CERT_PATH and "
                          "SSL_KEY_PATH, or leave it empty for a self-signed certificate",
                          origins.get("SSL_TYPE", "SSL_TYPE"))
    cert, key = env.get("SSL_CERT_PATH") or None, env.get("SSL_KEY_PATH") or None
    if ssl_type == "self-signed" or (not cert and not key and ssl_type != "manual"):
        return None, None
    for name, value in (("SSL_CERT_PATH", cert), ("SSL_KEY_PATH", key)):
        if not value:
            raise ConfigError("set both SSL_CERT_PATH and SSL_KEY_PATH (PEM files)", origins.get(name, name))
        if not Path(value).is_file():
            raise ConfigError(f"{value} is not a readable file", origins.get(name, name))
    return Path(cert), Path(key)


# -- edges ------------------------------------------------------------------------------

def docker_networks(mode: str, interfaces: list[dict]) -> tuple[str, ...]:
    """DMS's PERMIT_DOCKER, from `ip -j addr` output (pure, so it is testable):
    container: this container's addresses; host: their /16 (the Docker host's networks);
    network: Docker's default address pool 172.16.0.0/12; connected-networks: every
    network an interface of the container is on. Loopback is never listed here."""
    import ipaddress

    if mode == "none":
        return ()
    if mode == "network":
        return ("172.16.0.0/12",)
    found = []
    for interface in interfaces:
        if "LOOPBACK" in interface.get("flags", ()):
            continue
        for info in interface.get("addr_info", ()):
            if info.get("family") != "inet" or info.get("scope") != "global":
                continue
            prefix = {"container": 32, "host": 16}.get(mode, info.get("prefixlen", 32))
            found.append(str(ipaddress.ip_interface(f"{info['local']}/{prefix}").network))
    return tuple(dict.fromkeys(found))


def trusted_networks(settings: SubmissionSettings | None) -> tuple[str, ...]:
    """PERMIT_DOCKER's networks, reading the container's interfaces when the mode needs them."""
    if settings is None or settings.permit_docker in ("none", "network"):
        return docker_networks(settings.permit_docker if settings else "none", [])
    import json
    import subprocess

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
    import subprocess

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
    import subprocess

    try:
        out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "multiline", "-in", str(cert)],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # unreadable: make a new one
    names = [line.split("=", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("commonName")]
    return names[0] if names else None
