"""The DMS config files: where they are, and how to read them with file:line origins.

All four share one shape (see docker-mailserver's docs): one entry a line, `#` at the
start of a line makes a comment, blank lines are ignored.

    postfix-relaymap.cf       @domain  [host]:port    route a sender domain via a relay
                              @domain                 opt the domain out of RELAY_HOST
                              user@domain, @.domain   one address; every subdomain
                              ... [a]:587,[b]:587     failover list; smtps:[h]:p implicit TLS
    postfix-recipient-relaymap.cf
                              domain|.domain [host]:port   mail TO a domain via a relay
    postfix-sasl-password.cf  @domain  user:password  credentials by sender domain
                              [host]:port user:pass   credentials by relay
    postfix-accounts.cf       user@domain|{SCHEME}hash
    postfix-virtual.cf        alias@domain  target[,target...]

Parsing is strict: a line Postfix would read differently from what the user meant is an
error that names the file and line, so that nothing half-understood reaches a table.
Editing lives in editor.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relaykit.inputs import validate
from relaykit.errors import ConfigError, ConfigErrors, RelaykitError
from relaykit.secret import Secret

from relaykit.stores.files import RELAYMAP, SASL_PASSWORD  # noqa: E402  (one definition)
ACCOUNTS = "postfix-accounts.cf"
VIRTUAL = "postfix-virtual.cf"
RECIPIENT_RELAYMAP = "postfix-recipient-relaymap.cf"


@dataclass(frozen=True)
class Origin:
    """Where an entry came from: a file and line, or the name of an environment variable."""

    path: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class Row:
    fields: tuple[str, ...]
    origin: Origin


@dataclass(frozen=True)
class RelayRule:
    """A relaymap line: mail from `sender` goes to `nexthops` (tried in order); none = opt-out."""

    sender: str
    nexthops: tuple[str, ...]
    origin: Origin
    implicit_tls: bool = False  # TLS from the first byte (port 465/2465 or smtps:[host]:port)

    @property
    def opted_out(self) -> bool:
        return not self.nexthops

    @property
    def value(self) -> str:
        return ",".join(self.nexthops)


@dataclass(frozen=True)
class Credential:
    """A sasl_passwd entry: `key` is `@domain` or a relay next hop such as `[host]:port`."""

    key: str
    user: str
    password: Secret
    origin: Origin


@dataclass(frozen=True)
class Account:
    address: str
    password_hash: Secret
    origin: Origin

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass(frozen=True)
class Alias:
    address: str  # user@domain, or @domain for a catch-all
    targets: tuple[str, ...]
    origin: Origin

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass(frozen=True)
class ConfigFiles:
    """Everything read from the config directory, validated."""

    relay_rules: tuple[RelayRule, ...] = ()
    credentials: tuple[Credential, ...] = ()
    accounts: tuple[Account, ...] = ()
    aliases: tuple[Alias, ...] = ()
    relaymap_exists: bool = False
    sasl_exists: bool = False
    recipient_rules: tuple[RelayRule, ...] = ()  # `sender` holds the recipient domain key


def rows(path: Path) -> list[Row]:
    """The significant lines of a DMS table, split on whitespace. A missing file has none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", Origin(str(path))) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", Origin(str(path))) from None
    found = []
    name = str(path)
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            found.append(Row(tuple(fields), Origin(name, number)))
    return found


def _collect(path: Path, parse_row) -> tuple:
    """Parse every row, gathering all errors so one run reports every bad line."""
    entries, errors = [], []
    for row in rows(path):
        try:
            entries.append(parse_row(row))
        except RelaykitError as exc:
            errors.append(ConfigError(exc.message, row.origin))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return tuple(entries)


def parse_relay_row(row: Row) -> RelayRule:
    if len(row.fields) > 2:
        raise RelaykitError(
            "expected '@domain [host]:port' or '@domain' (opt-out), found "
            f"{len(row.fields)} fields; comments must start the line with '#'"
        )
    sender = validate.route_key(row.fields[0], "sender")
    hops, implicit = validate.relay_list(row.fields[1], "relay") if len(row.fields) == 2 else ((), False)
    return RelayRule(sender, hops, row.origin, implicit)


def parse_recipient_row(row: Row) -> RelayRule:
    if len(row.fields) != 2:
        raise RelaykitError(
            "expected 'domain [host]:port' or '.domain [host]:port' (every subdomain), found "
            f"{len(row.fields)} fields; comments must start the line with '#'"
        )
    key = validate.recipient_key(row.fields[0])
    hops, implicit = validate.relay_list(row.fields[1], "relay")
    return RelayRule(key, hops, row.origin, implicit)


def credential_key(text: str) -> str:
    """`@domain`, `user@domain`, `@.domain` (by sender) or a next hop (by relay)."""
    if "@" in text:
        return validate.route_key(text, "sender")
    return validate.nexthop(text, "relay")


def parse_credential_row(row: Row) -> Credential:
    if len(row.fields) != 2:
        raise RelaykitError(
            "expected '@domain user:password' or '[host]:port user:password' "
            f"(one space-free user:password field), found {len(row.fields)} fields"
        )
    key = credential_key(row.fields[0])
    user, colon, password = row.fields[1].partition(":")
    if not colon or not user or not password:
        raise RelaykitError("expected user:password after the key, with neither part empty")
    # as `setup relay add-auth` refuses them; '#' stays allowed (Postfix reads it as data
    # there, and DMS files may have it). Never echo the value.
    if validate.has_control_char(row.fields[1]):
        raise RelaykitError("user:password must not contain control characters")
    return Credential(key, user, Secret(password), row.origin)


def parse_account_row(row: Row) -> Account:
    address, bar, hash_ = " ".join(row.fields).partition("|")
    if not bar or "@" not in address:
        raise RelaykitError("expected 'user@domain|{SCHEME}hash'")
    local, _, domain = address.rpartition("@")
    validate.field(local, "user")
    return Account(f"{local}@{validate.domain(domain)}", Secret(hash_.split("|")[0]), row.origin)


def parse_alias_row(row: Row) -> Alias:
    if len(row.fields) < 2 or "@" not in row.fields[0]:
        raise RelaykitError("expected 'alias@domain target[,target...]'")
    local, _, domain = row.fields[0].rpartition("@")
    targets = tuple(t for f in row.fields[1:] for t in f.split(",") if t)
    return Alias(f"{local}@{validate.domain(domain)}", targets, row.origin)


def load(config_dir: Path) -> ConfigFiles:
    """Read and validate all DMS files of a config directory (errors name file:line)."""
    relaymap, sasl = config_dir / RELAYMAP, config_dir / SASL_PASSWORD
    errors: list[RelaykitError] = []
    results = []
    for name, parser in ((RELAYMAP, parse_relay_row), (SASL_PASSWORD, parse_credential_row),
                         (ACCOUNTS, parse_account_row), (VIRTUAL, parse_alias_row)):
        try:
            results.append(_collect(config_dir / name, parser))
        except ConfigErrors as exc:
            errors.extend(exc.errors)
        except ConfigError as exc:
            errors.append(exc)
    recipient_rules: tuple = ()
    try:
        recipient_rules = _collect(config_dir / RECIPIENT_RELAYMAP, parse_recipient_row)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    except ConfigError as exc:
        errors.append(exc)
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return ConfigFiles(*results, relaymap_exists=relaymap.exists(), sasl_exists=sasl.exists(),
                       recipient_rules=recipient_rules)
