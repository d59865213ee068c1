"""Settings: the environment, the optional dotenv file and `*_FILE` secrets, validated once.

Precedence (highest first): real environment variables, then `RELAYKIT_ENV_FILE`
(default `<RELAYKIT_CONFIG_DIR>/relaykit.env`). An empty variable counts as unset, as in
DMS. A secret `X` may instead come from a file named by `X_FILE` (or DMS's `X__FILE`), as
Docker and Kubernetes secrets are mounted; giving both is an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

from relaykit import validate
from relaykit.errors import ConfigError, RelaykitError
from relaykit.secret import Secret

if TYPE_CHECKING:  # the annotation only: submission is imported when settings load it
    from relaykit.submission import SubmissionSettings

TABLE_TYPES = ("hash", "btree", "lmdb", "cdb", "dbm", "texthash")
LOG_LEVELS = ("trace", "debug", "info", "warn", "error")


def mail_config(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("MAIL_CONFIG") or "/etc/postfix")


def config_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("RELAYKIT_CONFIG_DIR") or "/tmp/docker-mailserver")


@dataclass(frozen=True)
class Settings:
    mail_config: Path = Path("/etc/postfix")
    config_dir: Path = Path("/tmp/docker-mailserver")
    default_relay_host: str | None = None  # verbatim main.cf relayhost
    relay_host: str | None = None  # without brackets
    relay_port: int = 25
    relay_user: str | None = None
    relay_password: Secret | None = None
    table_type: str | None = None  # None: Postfix's default_database_type
    log_level: str = "info"
    submission: "SubmissionSettings | None" = None  # relaykit.submission: ports 587/465, trusted networks
    # PostgreSQL store (stores/postgres.py): relaykit's admin connection, and the
    # read-only one Postfix's pgsql: lookups use (defaults to the admin one).
    database_url: Secret | None = None
    postfix_database_url: Secret | None = None
    # RELAYKIT_TLS_SECURE: relay next hops whose certificate must verify (tls_policy
    # `secure`) instead of only being encrypted (`encrypt`, the default).
    tls_secure: tuple[str, ...] = ()
    # OVERRIDE_HOSTNAME (DMS): main.cf myhostname (HELO name, banner, bounces, the
    # self-signed certificate). None: Postfix's default, the container's hostname.
    hostname: str | None = None

    @property
    def default_relay(self) -> tuple[str, ...]:
        """The next hop(s) RELAY_USER authenticates to: DEFAULT_RELAY_HOST, else RELAY_HOST."""
        if self.default_relay_host:
            return validate.nexthops(self.default_relay_host)
        if self.relay_host:
            return (self.relay_nexthop,)
        return ()

    @property
    def relay_nexthop(self) -> str | None:
        """`[RELAY_HOST]:RELAY_PORT`, the relay of managed domains without an entry."""
        return validate.bracketed(self.relay_host, self.relay_port) if self.relay_host else None

    @property
    def relay_credentials(self) -> tuple[str, Secret] | None:
        if self.relay_user and self.relay_password:
            return self.relay_user, self.relay_password
        return None


def env_file(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("RELAYKIT_ENV_FILE") or config_dir(environ) / "relaykit.env")


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


def _secret_files(env: dict[str, str], origins: dict[str, str], name: str) -> str | None:
    """The value of `name`, or the content of the file named by name_FILE / name__FILE."""
    variants = [v for v in (f"{name}_FILE", f"{name}__FILE") if env.get(v)]
    if len(variants) == 2:
        raise ConfigError(f"set only one of {variants[0]} and {variants[1]}", variants[0])
    if not variants:
        return env.get(name) or None
    variant = variants[0]
    if env.get(name):
        raise ConfigError(f"set either {name} or {variant}, not both", origins.get(variant, variant))
    path = Path(env[variant])
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", origins.get(variant, variant)) from None
    if "\n" in value:
        raise ConfigError(f"{path} must hold a single line", origins.get(variant, variant))
    return value or None


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    """Settings from the environment (and the dotenv file); ConfigError names the variable."""
    file_values, origins = _read_env_file(env_file(environ))
    env = {**file_values, **{k: v for k, v in environ.items()}}
    for key in environ:
        origins[key] = key

    def checked(name: str, check, value: str | None):
        if value is None or value == "":
            return None
        try:
            return check(value)
        except RelaykitError as exc:
            raise ConfigError(exc.message, origins.get(name, name)) from None

    default_relay_host = env.get("DEFAULT_RELAY_HOST") or None
    checked("DEFAULT_RELAY_HOST", lambda v: validate.nexthops(v, "DEFAULT_RELAY_HOST"), default_relay_host)
    user = checked("RELAY_USER", validate.username, _secret_files(env, origins, "RELAY_USER"))
    password = checked("RELAY_PASSWORD", validate.password, _secret_files(env, origins, "RELAY_PASSWORD"))
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
        submission=_submission(env, origins),
        **_database_urls(environ),
        hostname=checked("OVERRIDE_HOSTNAME", lambda v: validate.domain(v, "OVERRIDE_HOSTNAME"),
                         env.get("OVERRIDE_HOSTNAME")),
        tls_secure=checked("RELAYKIT_TLS_SECURE", lambda v: validate.nexthops(v, "RELAYKIT_TLS_SECURE"),
                           env.get("RELAYKIT_TLS_SECURE")) or (),
    )


def _submission(env: Mapping[str, str], origins: dict[str, str]):
    from relaykit.submission import load_settings

    return load_settings(env, origins)


def _database_urls(environ: Mapping[str, str]) -> dict[str, Secret | None]:
    """RELAYKIT_DATABASE_URL and RELAYKIT_POSTFIX_DATABASE_URL (each also as *_FILE).

    Only from the real environment, as stores.open_store() reads them: `setup` and
    `configure` must never disagree on which store is in use.
    """
    from relaykit.stores import database_url

    url = database_url(environ)
    real = dict(environ)
    postfix_url = _secret_files(real, {k: k for k in real}, "RELAYKIT_POSTFIX_DATABASE_URL")
    if postfix_url and not url:
        raise ConfigError("RELAYKIT_POSTFIX_DATABASE_URL needs RELAYKIT_DATABASE_URL too",
                          "RELAYKIT_POSTFIX_DATABASE_URL")
    return {"database_url": Secret(url) if url else None,
            "postfix_database_url": Secret(postfix_url) if postfix_url else None}


def _choice(value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise RelaykitError(f"must be one of {', '.join(choices)}, not {value!r}")
    return value
