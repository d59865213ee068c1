"""The environment's plain facts: where things are (directories, the DMS file names), and
the one `*_FILE` secret reader.

Light on purpose (no os, no pathlib): `setup` asks it which store to open on every
command, and must start in a few milliseconds.
"""

from __future__ import annotations

import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: collections.abc imports collections, ~1.5 ms of `setup`'s start-up
    from collections.abc import Mapping

from relaykit.errors import ConfigError

DEFAULT_MAIL_CONFIG = "/etc/postfix"
DEFAULT_CONFIG_DIR = "/tmp/docker-mailserver"

# The DMS config files, in RELAYKIT_CONFIG_DIR (inputs/dmsfiles.py parses them,
# stores/files.py edits them).
RELAYMAP = "postfix-relaymap.cf"
RECIPIENT_RELAYMAP = "postfix-recipient-relaymap.cf"
SASL_PASSWORD = "postfix-sasl-password.cf"
ACCOUNTS = "postfix-accounts.cf"
VIRTUAL = "postfix-virtual.cf"
RELAY_LIMITS = "postfix-relay-limits.cf"  # `[host]:port rate=N/s concurrency=N`
SENDER_REWRITE = "postfix-sender-rewrite.cf"  # `@domain|user@domain  new@address|@newdomain`
DKIM_KEYS = "opendkim/keys"  # <domain>/<selector>.private, as DMS's `setup config dkim`
# DMS's Postfix overrides (inputs/overrides.py): main.cf lines, and master.cf
# `service/type/parameter=value` lines.
POSTFIX_MAIN = "postfix-main.cf"
POSTFIX_MASTER = "postfix-master.cf"
OAUTH2 = "postfix-oauth2.cf"  # XOAUTH2 credentials: tokens fetched by relaykit (run/oauth2.py)


_STARTED: dict[str, str] | None = None  # environment()'s copy of posix.environ


def environment() -> Mapping[str, str]:
    """The process's environment: os.environ, once os is imported. `setup`'s fast path
    never imports os (~2 ms, with _collections_abc), and until something has, nothing can
    have changed os.environ: it would be the environment the process started with, which
    is this copy of posix.environ (decoded as os.environ decodes it)."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ
    global _STARTED
    if _STARTED is None:
        encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
        _STARTED = {name.decode(encoding, errors): value.decode(encoding, errors)
                    for name, value in posix.environ.items()}
    return _STARTED


def path_in(directory: str, name: str) -> str:
    """os.path.join(directory, name) for a relative name, without os."""
    return f"{directory}{name}" if not directory or directory.endswith("/") else f"{directory}/{name}"


def config_dir(environ: Mapping[str, str] | None = None) -> str:
    """RELAYKIT_CONFIG_DIR: the DMS config directory. (environ: default the environment().)"""
    return (environment() if environ is None else environ).get("RELAYKIT_CONFIG_DIR") or DEFAULT_CONFIG_DIR


def mail_config(environ: Mapping[str, str] | None = None) -> str:
    """MAIL_CONFIG: Postfix's configuration directory (postconf and postmap honour it)."""
    return (environment() if environ is None else environ).get("MAIL_CONFIG") or DEFAULT_MAIL_CONFIG


def env_file(environ: Mapping[str, str] | None = None) -> str:
    """RELAYKIT_ENV_FILE, default <RELAYKIT_CONFIG_DIR>/relaykit.env."""
    environ = environment() if environ is None else environ
    return environ.get("RELAYKIT_ENV_FILE") or path_in(config_dir(environ), "relaykit.env")


def secret(env: Mapping[str, str], name: str, origins: Mapping[str, str] | None = None) -> str | None:
    """The value of `name`, or the content of the file named by `name_FILE` (Docker and
    Kubernetes secrets) or DMS's `name__FILE`. Setting two of them is an error; a file
    must hold one line (a trailing newline is dropped). `origins`: where each variable
    was set ("file:line" of the dotenv file), for the messages."""
    origins = origins or {}
    variants = [v for v in (f"{name}_FILE", f"{name}__FILE") if env.get(v)]
    if len(variants) == 2:
        raise ConfigError(f"set only one of {variants[0]} and {variants[1]}", variants[0])
    if not variants:
        return env.get(name) or None
    variant = variants[0]
    where = origins.get(variant, variant)
    if env.get(name):
        raise ConfigError(f"set either {name} or {variant}, not both", where)
    path = env[variant]
    try:
        with open(path, encoding="utf-8") as file:
            value = file.read().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", where) from None
    if "\n" in value:
        raise ConfigError(f"{path} must hold a single line", where)
    return value or None


def database_url(environ: Mapping[str, str] | None = None) -> str | None:
    """RELAYKIT_DATABASE_URL (or its *_FILE): which store is in use. Read from the real
    environment only, never the dotenv file, so `setup` and `configure` always agree."""
    url = secret(environment() if environ is None else environ, "RELAYKIT_DATABASE_URL")
    return url.strip() if url else None
