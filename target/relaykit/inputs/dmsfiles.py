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
    postfix-oauth2.cf         <key> <provider> <user> name=value...
                              XOAUTH2 to the relay of <key> (as in postfix-sasl-password.cf)
                              with tokens relaykit fetches; provider microsoft, google, generic
    postfix-accounts.cf       user@domain|{SCHEME}hash
    postfix-virtual.cf        alias@domain  target[,target...]

Parsing is strict: a line Postfix would read differently from what the user meant is an
error that names the file and line, so that nothing half-understood reaches a table.
Editing lives in edges/editor.py (through stores/files.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relaykit.errors import ConfigError, ConfigErrors, RelaykitError
from relaykit.inputs import validate
from relaykit.inputs.env import ACCOUNTS, OAUTH2, RECIPIENT_RELAYMAP, RELAYMAP, SASL_PASSWORD, VIRTUAL
from relaykit.model.entries import Account, Alias, ConfigFiles, Credential, OAuth2Credential, Origin, RelayRule
from relaykit.secret import Secret

__all__ = ["ACCOUNTS", "OAUTH2", "RECIPIENT_RELAYMAP", "RELAYMAP", "SASL_PASSWORD", "VIRTUAL", "load", "load_accounts", "rows"]


@dataclass(frozen=True)
class Row:
    fields: tuple[str, ...]
    origin: Origin


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


def _collect(path: Path, parse_row, secure: object) -> tuple:
    """Parse every row, gathering all errors so one run reports every bad line."""
    entries, errors = [], []
    for row in rows(path):
        try:
            entries.append(parse_row(row, secure))
        except RelaykitError as exc:
            errors.append(ConfigError(exc.message, row.origin))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return tuple(entries)


def parse_relay_row(row: Row, secure: object = ()) -> RelayRule:
    if len(row.fields) > 2:
        raise RelaykitError(
            "expected '@domain [host]:port' or '@domain' (opt-out), found "
            f"{len(row.fields)} fields; comments must start the line with '#'"
        )
    sender = validate.route_key(row.fields[0], "sender")
    hops = validate.relay_list(row.fields[1], "relay", secure) if len(row.fields) == 2 else ()
    return RelayRule(sender, hops, row.origin)


def parse_recipient_row(row: Row, secure: object = ()) -> RelayRule:
    if len(row.fields) != 2:
        raise RelaykitError(
            "expected 'domain [host]:port' or '.domain [host]:port' (every subdomain), found "
            f"{len(row.fields)} fields; comments must start the line with '#'"
        )
    key = validate.recipient_key(row.fields[0])
    return RelayRule(key, validate.relay_list(row.fields[1], "relay", secure), row.origin)


def credential_key(text: str, secure: object = ()) -> str:
    """`@domain`, `user@domain`, `@.domain` (by sender) or a next hop (by relay)."""
    if "@" in text:
        return validate.route_key(text, "sender")
    return validate.nexthop(text, "relay", secure=secure)


def parse_credential_row(row: Row, secure: object = ()) -> Credential:
    if len(row.fields) != 2:
        raise RelaykitError(
            "expected '@domain user:password' or '[host]:port user:password' "
            f"(one space-free user:password field), found {len(row.fields)} fields"
        )
    key = credential_key(row.fields[0], secure)
    user, colon, password = row.fields[1].partition(":")
    if not colon or not user or not password:
        raise RelaykitError("expected user:password after the key, with neither part empty")
    # as `setup relay add-auth` refuses them; '#' stays allowed (Postfix reads it as data
    # there, and DMS files may have it). Never echo the value.
    if validate.has_control_char(row.fields[1]):
        raise RelaykitError("user:password must not contain control characters")
    return Credential(key, user, Secret(password), row.origin)


def parse_oauth2_row(row: Row, secure: object = ()) -> OAuth2Credential:
    """`<key> <provider> <user> name=value...`; a secret as `client_secret=...` (the file
    must then be 0600) or `client_secret_file=/path` (read here, one line)."""
    if len(row.fields) < 3:
        raise RelaykitError("expected '<@domain|[host]:port> <provider> <user> name=value...', "
                            f"found {len(row.fields)} fields")
    key = credential_key(row.fields[0], secure)
    if key.startswith("@."):
        raise RelaykitError("OAuth2 credentials are keyed by @domain, an address or a relay, not @.domain")
    provider = validate.oauth2_provider(row.fields[1])
    user = validate.username(row.fields[2])
    fields: dict[str, str] = {}
    secrets: dict[str, Secret] = {}
    for text in row.fields[3:]:
        name, eq, value = text.partition("=")
        if not eq or not name:
            raise RelaykitError(f"expected name=value, found {text.split('=')[0]!r}")
        base = name[:-5] if name.endswith("_file") and name[:-5] in validate.OAUTH2_SECRETS else name
        if base in fields or base in secrets:
            raise RelaykitError(f"{base} is given twice")
        if base != name:
            secrets[name[:-5]] = Secret(_read_secret_file(value, name))
        else:
            fields[name] = value
    validate.oauth2_fields(provider, fields, set(secrets))
    inline = {name: Secret(fields.pop(name)) for name in validate.OAUTH2_SECRETS if name in fields}
    return OAuth2Credential(key, provider, user, tuple(sorted(fields.items())),
                            tuple(sorted({**secrets, **inline}.items())), row.origin, inline=bool(inline))


def _read_secret_file(path: str, name: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            value = file.read().rstrip("\r\n")
    except OSError as exc:
        raise RelaykitError(f"{name}: cannot read {path}: {exc.strerror}") from None
    if not value or "\n" in value or validate.has_control_char(value):
        raise RelaykitError(f"{name}: {path} must hold one non-empty line")
    return value


def load_oauth2(config_dir: Path, secure: object = ()) -> tuple[OAuth2Credential, ...]:
    """postfix-oauth2.cf. A secret written in the file itself is refused unless only its
    owner can read the file (mode 0600): relaykit keeps secrets out of readable files."""
    path = config_dir / OAUTH2
    creds = _collect(path, parse_oauth2_row, secure)
    inline = [c for c in creds if c.inline]
    if inline and path.stat().st_mode & 0o077:
        raise ConfigError(f"holds a client secret or refresh token, but others may read it "
                          f"(mode {path.stat().st_mode & 0o777:o}): chmod 600 {path}, or give the secret as "
                          "client_secret_file= / refresh_token_file=", inline[0].origin)
    return creds


def parse_account_row(row: Row, secure: object = ()) -> Account:
    address, bar, hash_ = " ".join(row.fields).partition("|")
    if not bar or "@" not in address:
        raise RelaykitError("expected 'user@domain|{SCHEME}hash'")
    local, _, domain = address.rpartition("@")
    validate.field(local, "user")
    return Account(f"{local}@{validate.domain(domain)}", Secret(hash_.split("|")[0]), row.origin)


def parse_alias_row(row: Row, secure: object = ()) -> Alias:
    if len(row.fields) < 2 or "@" not in row.fields[0]:
        raise RelaykitError("expected 'alias@domain target[,target...]'")
    local, _, domain = row.fields[0].rpartition("@")
    targets = tuple(t for f in row.fields[1:] for t in f.split(",") if t)
    return Alias(f"{local}@{validate.domain(domain)}", targets, row.origin)


def load_accounts(config_dir: Path) -> tuple[Account, ...]:
    """postfix-accounts.cf alone (Dovecot's passwd-file needs nothing else)."""
    return _collect(config_dir / ACCOUNTS, parse_account_row, ())


def load(config_dir: Path, secure: object = ()) -> ConfigFiles:
    """Read and validate all DMS files of a config directory (errors name file:line).
    `secure`: RELAYKIT_TLS_SECURE's next hops, which parsed hops get level `secure` for."""
    relaymap, sasl = config_dir / RELAYMAP, config_dir / SASL_PASSWORD
    errors: list[RelaykitError] = []
    results = []
    for name, parser in ((RELAYMAP, parse_relay_row), (SASL_PASSWORD, parse_credential_row),
                         (ACCOUNTS, parse_account_row), (VIRTUAL, parse_alias_row)):
        try:
            results.append(_collect(config_dir / name, parser, secure))
        except ConfigErrors as exc:
            errors.extend(exc.errors)
        except ConfigError as exc:
            errors.append(exc)
    recipient_rules: tuple = ()
    try:
        recipient_rules = _collect(config_dir / RECIPIENT_RELAYMAP, parse_recipient_row, secure)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    except ConfigError as exc:
        errors.append(exc)
    oauth2: tuple = ()
    try:
        oauth2 = load_oauth2(config_dir, secure)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    except ConfigError as exc:
        errors.append(exc)
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return ConfigFiles(*results, relaymap_exists=relaymap.exists(), sasl_exists=sasl.exists(),
                       recipient_rules=recipient_rules, oauth2=oauth2)
