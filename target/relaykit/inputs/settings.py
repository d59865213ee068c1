"""Settings: the environment, the optional dotenv file and `*_FILE` secrets, validated once.

Precedence (highest first): real environment variables, then `RELAYKIT_ENV_FILE`
(default `<RELAYKIT_CONFIG_DIR>/relaykit.env`). An empty variable counts as unset, as in
DMS. A secret `X` may instead come from a file named by `X_FILE` (or DMS's `X__FILE`), as
Docker and Kubernetes secrets are mounted; giving both is an error (inputs/env.py).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from relaykit.errors import ConfigError, RelaykitError
from relaykit.inputs import dmsvars
from relaykit.inputs import env as envvars
from relaykit.inputs import validate
from relaykit.model.nexthop import tls_level
from relaykit.model.settings import DOCKER_MODES, LOG_FORMATS, LOG_LEVELS, TABLE_TYPES, Settings, SubmissionSettings
from relaykit.secret import Secret

SSL_TYPES = ("", "manual", "self-signed")


def mail_config(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(envvars.mail_config(environ))


def config_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(envvars.config_dir(environ))


def env_file(environ: Mapping[str, str]) -> Path:
    return Path(envvars.env_file(environ))


def _read_env_file(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Values of a dotenv file, and where each was set ("file:line")."""
    if not path.is_file():
        return {}, {}
    from dotenv import dotenv_values  # 25 ms of imports: only when a file exists
    from dotenv.parser import parse_stream

    origins = {}
    with path.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            where = f"{path}:{binding.original.line}"
            if binding.error:
                raise ConfigError("cannot parse this line as KEY=value", where)
            if binding.key:
                origins[binding.key] = where
    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    return values, origins


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    """Settings from the environment (and the dotenv file); ConfigError names the variable."""
    file_values, origins = _read_env_file(env_file(environ))
    env = {**file_values, **{k: v for k, v in environ.items()}}
    for key in environ:
        origins[key] = key

    def checked(name: str, check: Callable, value: str | None):
        if value is None or value == "":
            return None
        try:
            return check(value)
        except RelaykitError as exc:
            raise ConfigError(exc.message, origins.get(name, name)) from None

    # first: every other next hop is parsed with its TLS level (model/nexthop.py)
    listed = checked("RELAYKIT_TLS_SECURE", lambda v: validate.nexthops(v, "RELAYKIT_TLS_SECURE"),
                     env.get("RELAYKIT_TLS_SECURE")) or ()
    secure = tuple(hop.with_level(tls_level(hop, listed)) for hop in listed)
    default_relay_host = env.get("DEFAULT_RELAY_HOST") or None
    default_hops = checked("DEFAULT_RELAY_HOST",
                           lambda v: validate.relayhost(v, "DEFAULT_RELAY_HOST", secure), default_relay_host) or ()
    user = checked("RELAY_USER", validate.username, envvars.secret(env, "RELAY_USER", origins))
    password = checked("RELAY_PASSWORD", validate.password, envvars.secret(env, "RELAY_PASSWORD", origins))
    if bool(user) != bool(password):
        given, missing = ("RELAY_USER", "RELAY_PASSWORD") if user else ("RELAY_PASSWORD", "RELAY_USER")
        raise ConfigError(f"{given} is set but {missing} is not: set both or neither", given)
    table_type = checked("RELAYKIT_TABLE_TYPE", lambda v: _choice(v, TABLE_TYPES), env.get("RELAYKIT_TABLE_TYPE"))
    return Settings(
        mail_config=mail_config(env),
        config_dir=config_dir(env),
        default_relay_host=default_relay_host.strip() if default_relay_host else None,
        relay_host=checked("RELAY_HOST", lambda v: validate.host(v, "RELAY_HOST"), env.get("RELAY_HOST")),
        relay_port=checked("RELAY_PORT", lambda v: validate.port(v, "RELAY_PORT"), env.get("RELAY_PORT")) or 25,
        relay_user=user,
        relay_password=Secret(password) if password else None,
        table_type=table_type,
        log_level=checked("LOG_LEVEL", lambda v: _choice(v.lower(), LOG_LEVELS), env.get("LOG_LEVEL")) or "info",
        log_format=checked("LOG_FORMAT", lambda v: _choice(v.strip().lower(), LOG_FORMATS), env.get("LOG_FORMAT"))
        or "text",
        metrics_port=checked("METRICS_PORT", lambda v: _port_or_off(v, 0, "METRICS_PORT"), env.get("METRICS_PORT")),
        metrics_address=checked("METRICS_ADDRESS", lambda v: _metrics_address(v), env.get("METRICS_ADDRESS"))
        or "0.0.0.0",
        submission=load_submission(env, origins),
        **_database_urls(environ),
        tls_secure=secure,
        default_relay_hops=default_hops,
        hostname=checked("OVERRIDE_HOSTNAME", lambda v: validate.domain(v, "OVERRIDE_HOSTNAME"),
                         env.get("OVERRIDE_HOSTNAME")),
        postfix_params=dmsvars.postfix_params(env, origins),
        dms_reports=dmsvars.audit(env, origins),
        strip_received=checked("RELAYKIT_STRIP_RECEIVED", lambda v: _flag(v, "RELAYKIT_STRIP_RECEIVED"),
                               env.get("RELAYKIT_STRIP_RECEIVED")) or False,
        dkim_dir=Path(env.get("RELAYKIT_DKIM_DIR") or "/run/relaykit/opendkim"),
        dkim_enabled=checked("ENABLE_OPENDKIM", lambda v: _flag(v, "ENABLE_OPENDKIM"),
                             env.get("ENABLE_OPENDKIM")) is not False,
    )


def _database_urls(environ: Mapping[str, str]) -> dict[str, Secret | None]:
    """RELAYKIT_DATABASE_URL and RELAYKIT_POSTFIX_DATABASE_URL (each also as *_FILE).

    Only from the real environment, as stores.open_store() reads them: `setup` and
    `configure` must never disagree on which store is in use.
    """
    url = envvars.database_url(environ)
    postfix_url = envvars.secret(environ, "RELAYKIT_POSTFIX_DATABASE_URL")
    if postfix_url and not url:
        raise ConfigError("RELAYKIT_POSTFIX_DATABASE_URL needs RELAYKIT_DATABASE_URL too",
                          "RELAYKIT_POSTFIX_DATABASE_URL")
    return {"database_url": Secret(url) if url else None,
            "postfix_database_url": Secret(postfix_url) if postfix_url else None}


def _metrics_address(value: str) -> str:
    """The address METRICS_PORT listens on: an IP address (0.0.0.0 all IPv4, :: all)."""
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        raise RelaykitError(f"must be an IP address such as 0.0.0.0, :: or 127.0.0.1, not {value!r}") from None


def _choice(value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise RelaykitError(f"must be one of {', '.join(choices)}, not {value!r}")
    return value


# -- submission (ports 587/465) and trusted networks --------------------------------------

def _flag(value: str | None, name: str) -> bool:
    text = (value or "0").strip().lower()
    if text in ("1", "yes", "true", "on"):
        return True
    if text in ("0", "no", "false", "off"):
        return False
    raise RelaykitError(f"{name} must be 0 or 1, not {value!r}")


def _port_or_off(value: str | None, default: int, name: str) -> int | None:
    if value is None or value == "":
        return default
    return None if value == "0" else validate.port(value, name)


def network(value: str, what: str = "PERMIT_NETWORKS") -> str:
    """A CIDR network (or address) in Postfix's mynetworks notation: IPv6 in brackets."""
    text = value.strip()
    if text.startswith("[") and "]" in text:  # Postfix's own [2001:db8::]/32
        text = text[1:].replace("]", "", 1)
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise RelaykitError(f"{what}: not an IP network such as 192.168.0.0/16 or 2001:db8::/32: {value!r}") from None
    return str(net) if net.version == 4 else f"[{net.network_address}]/{net.prefixlen}"


def load_submission(env: Mapping[str, str], origins: Mapping[str, str]) -> SubmissionSettings:
    """SubmissionSettings from the environment; ConfigError names the variable."""
    def checked(name: str, check: Callable, *args):
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
        return validate.host(value, name) if value else None

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
