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
    postfix-sender-rewrite.cf @domain|user@domain  new@address|@newdomain
                              the envelope sender and From as mail enters (routing sees the new one)
    postfix-relay-limits.cf   [host]:port rate=N/s|N/m|N/h concurrency=N
                              how fast and how wide Postfix may send to a relay

Parsing is strict: a line Postfix would read differently from what the user meant is an
error that names the file and line, so that nothing half-understood reaches a table.
Editing lives in edges/editor.py (through stores/files.py).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import partial
from collections import Counter, namedtuple
from pathlib import Path

from relaykit.commonparts import changed_lines
from relaykit.errors import ConfigError, ConfigErrors, RelaykitError
from relaykit.inputs import validate
from relaykit.inputs.env import (ACCOUNTS, DKIM_KEYS, OAUTH2, RECIPIENT_RELAYMAP, RELAY_LIMITS, RELAYMAP,
                                 SASL_PASSWORD, SENDER_REWRITE, VIRTUAL)
from relaykit.model.entries import (Account, Alias, ConfigFiles, Credential, Deferred, DkimKey, OAuth2Credential,
                                    Origin, RelayLimit, RelayRule, Rules, RulesEdit, SenderRewrite,
                                    origins)
from relaykit.secret import Secret

__all__ = ["ACCOUNTS", "OAUTH2", "RECIPIENT_RELAYMAP", "RELAY_LIMITS", "RELAYMAP", "SASL_PASSWORD", "VIRTUAL", "load",
           "load_accounts", "rows"]


# One per line of files of up to 100k lines: a tuple is cheapest. fields: list[str], origin:
# Origin. From collections, not typing.NamedTuple: typing costs ~5 ms to import.
Row = namedtuple("Row", ("fields", "origin"))


def _read(path: Path) -> str:
    """A DMS file's text; a missing file is empty."""
    return _decoded(path, _read_bytes(path))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", Origin(str(path))) from None


def _decoded(path: Path, data: bytes) -> str:
    """A file's bytes as text mode reads them (UTF-8, universal newlines: '\r\n' and '\r'
    end a line as '\n'), without text mode's second copy of a 100k-line file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", Origin(str(path))) from None
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def rows(path: Path, text: str | None = None, first: int = 1) -> list[Row]:
    """The significant lines of a DMS table, split on whitespace. A missing file has none.
    `first`: the line number of text's first line (a part of the file)."""
    text = _read(path) if text is None else text
    found = []
    name = str(path)
    for number, line in enumerate(text.splitlines(), first):
        fields = line.split()
        if fields and fields[0][0] != "#":
            found.append(Row(fields, Origin(name, number)))
    return found


def _collect(path: Path, parse_row, secure: object, text: str | None = None, first: int = 1) -> tuple:
    """Parse every row, gathering all errors so one run reports every bad line."""
    entries, errors = [], []
    for row in rows(path, text, first):
        try:
            entries.append(parse_row(row, secure))
        except RelaykitError as exc:
            errors.append(ConfigError(exc.message, row.origin))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return tuple(entries)


def load_relaymap(path: Path, secure: object = ()) -> tuple[RelayRule, ...]:
    """postfix-relaymap.cf, line by line as every file, unless it is the plain kind that
    reaches 100k lines (see _plain_relaymap), which is read in bulk to the same rules.
    Read again after an edit (live reload), only the lines that changed are parsed."""
    global _LAST_RELAYMAP
    text = _read(path)
    name = str(path)
    last = _LAST_RELAYMAP
    reread = _reread(last, text, secure) if last and last[0] == name and last[1] == secure else None
    rules, edit, newlines = reread if reread else (_parse_relaymap(path, text, secure), None, None)
    _LAST_RELAYMAP = (name, secure, text, rules, edit, newlines)
    return rules


def relaymap_edit(rules: tuple[RelayRule, ...]) -> RulesEdit | None:
    """How `rules`, the last load_relaymap's result, came from the read before it (None
    when they were read whole)."""
    last = _LAST_RELAYMAP
    return last[4] if last and last[3] is rules else None  # type: ignore[return-value]


# The last relaymap read: (name, secure, text, rules, edit, its number of newlines or
# None: not counted yet). What an edit of a 100k-line file is parsed against. Only a
# successful read is kept.
_LAST_RELAYMAP: tuple[str, object, str, tuple[RelayRule, ...], RulesEdit | None, int | None] | None = None


def _parse_relaymap(path: Path, text: str, secure: object, first: int = 1) -> tuple[RelayRule, ...]:
    """The rules of `text`, lines `first`..., of the file at `path`."""
    rules = _plain_relaymap(text, str(path), secure, first) if text else None
    return rules if rules is not None else _collect(path, parse_relay_row, secure, text, first)


def _reread(last: tuple, text: str, secure: object) -> tuple[tuple[RelayRule, ...], RulesEdit, int] | None:
    """The rules of `text`, the new version of the file `last` read, the edit, and the
    text's number of newlines: the lines before and after the changed ones are the same
    lines (their rules kept, those after renumbered when lines were added or removed), the
    changed ones parsed. Parsing is line by line (duplicates are the plan's concern), so
    this is exactly what reading `text` whole gives."""
    name, _, old, rules, _, newlines = last
    if newlines is None:
        newlines = old.count("\n")
    if text == old:
        return rules, RulesEdit(rules, len(rules), 0, 0), newlines
    if not old:
        return None
    start, old_end, new_end = changed_lines(old, text)
    # Line numbers counted from the nearer end: an append to 100k lines scans a few bytes.
    before = old.count("\n", 0, start) if start < len(old) // 2 else newlines - old.count("\n", start)
    first = before + 1  # the first changed line's number
    old_after = first + old.count("\n", start, old_end)  # the first unchanged line after, in each
    new_after = first + text.count("\n", start, new_end)
    changed = tuple(_parse_relaymap(Path(name), text[start:new_end], secure, first))
    kept = bisect_left(rules, first, key=_line)
    head = rules[:kept]
    after = bisect_left(rules, old_after, key=_line) if new_end < len(text) else len(rules)
    tail = rules[after:]
    if tail and new_after != old_after:
        shift = new_after - old_after
        tail = tuple(RelayRule(rule.sender, rule.nexthops, Origin(name, rule.origin.line + shift)) for rule in tail)
    return (head + changed + tail, RulesEdit(rules, kept, after - kept, len(changed)),
            newlines - (old_after - first) + (new_after - first))


def _line(rule: RelayRule) -> int:
    return rule.origin.line


# Bulk readers: configure reads files of 100k lines. A file whose every line is in the
# plain form (the form `setup` writes) is checked by a few C-level passes over its whole
# text (str.split, bytes.translate, substring searches) instead of ~1 µs of Python per
# line, and reads to exactly the entries the line reader gives (test_relaymap_bulk.py).
# Anything else (a comment, a blank line, a key to normalize, any error) is declined:
# the line reader then decides, and names file:line for each bad line.
_RELAYMAP_BYTES = bytes(range(0x21, 0x7F)).replace(b"#", b"") + b" \t\n"  # printable ASCII but '#'
_ACCOUNT_BYTES = bytes(range(0x21, 0x7F)).replace(b"#", b"") + b"\n"  # ... and no blanks in a line
_DOMAIN_BYTES = b"abcdefghijklmnopqrstuvwxyz0123456789.-\n"
_NEWLINE_AS_DOT = bytes.maketrans(b"\n", b".")
# deleted from an accounts file: what is left is its separators, and any byte it must not hold
_ACCOUNT_BYTES_BUT_SEPARATORS = bytes(set(_ACCOUNT_BYTES) - set(b"@|\n"))
_DIGITS_AND_DOTS = b"0123456789."
_SEPARATORS_AS_NEWLINE = bytes.maketrans(b"@|", b"\n\n")


def _plain_domains(names: str, longest: int) -> bool:
    """Whether each of the newline-separated names (`longest`: the longest one's length)
    is a domain already in the form validate.domain() returns (lower-case ASCII labels of
    letters, digits and inner hyphens, of 1 to 63 characters, at most 253 in all; not an
    IPv4 address)."""
    framed = f"\n{names}\n"
    encoded = framed.encode() if framed.isascii() else b"?"
    if encoded.translate(None, _DOMAIN_BYTES):
        return False
    # With the newlines as dots, an empty label or one that starts or ends with '-' shows
    # as one of three pairs, whatever its place in its name.
    dotted = encoded.translate(_NEWLINE_AS_DOT)
    if b".." in dotted or (b"-" in dotted and (b".-" in dotted or b"-." in dotted)):  # memchr first
        return False
    if longest > 63 and (longest > 253 or re.search("[a-z0-9-]{64}", names)):
        return False
    # No name of digits and dots alone (IPv4-shaped, and more: the line reader decides those)
    return b"\n\n" not in encoded.translate(None, _DIGITS_AND_DOTS)


def _plain_relaymap(text: str, name: str, secure: object, first: int = 1) -> Rules | None:
    """The rules of a relaymap whose every line is `@domain value` (blanks and tabs
    between and after) with a domain already in the form validate.route_key() returns,
    each distinct value parsed once, as columns (model/entries.Rules); None for anything
    else."""
    lines = text.count("\n") + (not text.endswith("\n"))
    # Every line starts with '@' and holds no other: the even fields are then the keys,
    # exactly when there are two fields a line and each even one starts with '@'.
    if (text[:1] != "@" or text.count("@") != lines or text.count("\n@") != lines - 1 or not text.isascii()
            or text.encode().translate(None, _RELAYMAP_BYTES)):
        return None
    fields = text.split()
    keys = fields[0::2]
    joined = "\n".join(keys)
    if (len(fields) != 2 * lines or joined.count("\n@") != lines - 1
            or not _plain_domains(joined.replace("@", ""), max(map(len, keys)) - 1)):
        return None
    values = fields[1::2]
    by_value = Counter(values)  # each distinct value once, in first-use order, with its count
    try:
        hops = {value: validate.relay_list(value, "relay", secure) for value in by_value}
    except RelaykitError:
        return None
    counts: Counter = Counter()
    for value, number in by_value.items():
        counts[hops[value]] += number
    # One blank or tab a line (two fields on each), and each value written as its list's
    # hops joined by commas: the text is the rules' `sender hop,hop` lines (Rules.written).
    written = None
    if text.count(" ") + text.count("\t") == lines and all(value == ",".join(hops[value]) for value in hops):
        written = text.replace("\t", " ") + ("" if text.endswith("\n") else "\n")
    return Rules(keys, list(map(hops.__getitem__, values)), name, first, (name, first, secure, text), written, counts)


def _plain_accounts(text: str, name: str, data: bytes) -> tuple[Deferred, list[str]] | None:
    """The accounts of a postfix-accounts.cf whose every line is `user@domain|hash` (no
    blank, no '#', one '@' and then one '|' a line: a hash holding '@' declines) with a
    domain already in the form validate.domain() returns, and each one's domain; None for
    anything else. Every line is checked here; the Accounts are made when first used
    (model/entries.Deferred). `data`: the file's bytes, which `text` decodes (no copy of
    the text encoded again); they hold a '\r' where the text may not, which is then declined."""
    if not text.isascii():
        return None
    whole = text if text.endswith("\n") else text + "\n"
    encoded = data if data.endswith(b"\n") else data + b"\n"
    # One pass (a C translate) leaves the separators and any byte out of place: they are '@|\n'
    # once a line and nothing else, and no line starts with '@' (an empty local part), then
    # every line splits into (local part, domain, hash). Each line's end is one of them.
    separators = encoded.translate(None, _ACCOUNT_BYTES_BUT_SEPARATORS)
    lines = len(separators) // 3
    if separators != b"@|\n" * lines or encoded.startswith(b"@") or b"\n@" in encoded:
        return None
    # The domains alone, by one C split at '@' and '|': every other field. The others are
    # `hash\nlocal part` pairs, left whole: a third fewer strings than a split at every
    # separator (~25 ms less at 100k lines, page faults included), for what configure's
    # plan reads. The accounts themselves are split out of the text when first used.
    domains = whole.replace("|", "@").split("@")[1::2]
    if not _plain_domains("\n".join(domains), max(map(len, domains))):
        return None

    def accounts() -> tuple[Account, ...]:
        fields = whole.encode().translate(_SEPARATORS_AS_NEWLINE).decode().split("\n")
        addresses = map("@".join, zip(fields[0:-1:3], fields[1::3]))
        return tuple(map(partial(tuple.__new__, Account),
                         zip(addresses, map(Secret, fields[2::3]), origins(name, 1))))

    return Deferred(accounts, lines, (name, text)), domains


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


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_delay(text: str) -> int:
    """`N/s`, `N/m`, `N/h`, `N/d` -> the whole seconds Postfix waits between two deliveries
    (postconf(5) transport_destination_rate_delay: a time in whole seconds). Rounded up,
    so the relay never gets more than N a period; faster than one a second is refused:
    Postfix 3.7 cannot pace that (use concurrency= instead)."""
    count, slash, unit = text.partition("/")
    if not slash or unit not in _PERIODS or not validate.is_number(count, 9) or int(count) == 0:
        raise RelaykitError(f"rate must be N/s, N/m, N/h or N/d with N from 1 (e.g. rate=30/m), not {text!r}")
    period, number = _PERIODS[unit], int(count)
    if number > period:
        raise RelaykitError(
            f"rate={text} is faster than one message a second: Postfix paces a relay in whole seconds "
            "(_destination_rate_delay), at most 1/s; bound a faster relay with concurrency=N")
    return -(-period // number)


def parse_limit_row(row: Row, secure: object = ()) -> RelayLimit:
    if len(row.fields) < 2:
        raise RelaykitError("expected '[host]:port rate=N/s concurrency=N' (one or both limits)")
    if "@" in row.fields[0]:
        raise RelaykitError(f"limits are per relay ([host]:port), not per sender: {row.fields[0]!r}")
    hop = validate.nexthop(row.fields[0], "relay", secure=secure)
    values: dict[str, str] = {}
    for item in row.fields[1:]:
        name, equals, value = item.partition("=")
        if not equals or name not in ("rate", "concurrency"):
            raise RelaykitError(f"expected rate=N/s or concurrency=N, not {item!r}")
        if name in values:
            raise RelaykitError(f"{name} is given twice")
        values[name] = value
    concurrency = values.get("concurrency")
    if concurrency is not None and not (validate.is_number(concurrency, 4) and int(concurrency) > 0):
        raise RelaykitError(f"concurrency must be a number from 1 to 9999, not {concurrency!r}")
    rate = values.get("rate")
    if rate is not None and concurrency is not None and concurrency != "1":
        raise RelaykitError("rate= sends one message at a time (Postfix paces one delivery after the other): "
                            "give rate= or concurrency= above 1, not both")
    return RelayLimit(hop, rate, rate_delay(rate) if rate is not None else None,
                      int(concurrency) if concurrency is not None else None, row.origin)


def parse_rewrite_row(row: Row, secure: object = ()) -> SenderRewrite:
    if len(row.fields) != 2:
        raise RelaykitError("expected '@domain new@address' (or user@domain, or @newdomain to keep the "
                            f"local part), found {len(row.fields)} fields")
    key = validate.route_key(row.fields[0], "sender")
    if "@" not in row.fields[1]:
        raise RelaykitError(f"the new sender must be an address or @newdomain, not {row.fields[1]!r}")
    target = validate.route_key(row.fields[1], "new sender")
    if key.startswith("@.") or target.startswith("@."):
        raise RelaykitError("@.domain (every subdomain) is for routes; rewrite user@domain or @domain")
    return SenderRewrite(key, target, row.origin)


def load_rewrites(config_dir: Path) -> tuple[SenderRewrite, ...]:
    """postfix-sender-rewrite.cf; a key given twice is an error at its second line."""
    rewrites = _collect(Path(config_dir) / SENDER_REWRITE, parse_rewrite_row, ())
    seen: dict[str, Origin] = {}
    errors = [ConfigError(f"{r.key} is rewritten at {seen[r.key]} already", r.origin)
              for r in rewrites if seen.setdefault(r.key, r.origin) is not r.origin]
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return rewrites


def selector(text: str) -> str:
    """A DKIM selector: a DNS label (letters, digits, '-'), as in <selector>._domainkey."""
    if not (0 < len(text) <= 63 and text.isascii() and text.replace("-", "").isalnum()
            and not text.startswith("-") and not text.endswith("-")):
        raise RelaykitError(f"a selector is one DNS label (letters, digits, '-'), not {text!r}")
    return text.lower()


def signing_keys(settings) -> tuple[DkimKey, ...]:
    """The keys OpenDKIM signs with: none when ENABLE_OPENDKIM=0 (DMS), else load_dkim_keys."""
    return load_dkim_keys(settings.config_dir) if settings.dkim_enabled else ()


def load_dkim_keys(config_dir: Path) -> tuple[DkimKey, ...]:
    """The keys of opendkim/keys/<domain>/<selector>.private: one selector per domain (the
    one DMS's `setup config dkim` made); several in one domain's directory is an error."""
    root = Path(config_dir) / DKIM_KEYS
    if not root.is_dir():
        return ()
    keys, errors = [], []
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        privates = sorted(directory.glob("*.private"))
        origin = Origin(str(directory))
        try:
            domain = validate.domain(directory.name, "DKIM domain")
            if len(privates) > 1:
                raise RelaykitError(f"one key per domain, found {', '.join(p.name for p in privates)}: "
                                    "remove the ones not published in DNS")
            if privates:
                keys.append(DkimKey(domain, selector(privates[0].stem), str(privates[0])))
        except RelaykitError as exc:
            errors.append(ConfigError(exc.message, origin))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return tuple(keys)


def load_accounts(config_dir: Path) -> tuple[Account, ...]:
    """postfix-accounts.cf (alone: Dovecot's passwd-file needs nothing else)."""
    return _read_accounts(config_dir)[0]


def _read_accounts(config_dir: Path) -> tuple[tuple[Account, ...], list[str] | None]:
    """postfix-accounts.cf's accounts, and each one's domain when read in bulk (every line
    plain: _plain_accounts), else None (read line by line)."""
    path = config_dir / ACCOUNTS
    data = _read_bytes(path)
    text = _decoded(path, data)
    bulk = _plain_accounts(text, str(path), data) if text else None
    return bulk if bulk is not None else (_collect(path, parse_account_row, (), text), None)


def load(config_dir: Path, secure: object = ()) -> ConfigFiles:
    """Read and validate all DMS files of a config directory (errors name file:line).
    `secure`: RELAYKIT_TLS_SECURE's next hops, which parsed hops get level `secure` for."""
    relaymap, sasl = config_dir / RELAYMAP, config_dir / SASL_PASSWORD
    errors: list[RelaykitError] = []

    def gather(read, *args) -> tuple:
        """What `read` returns, or () with its errors added to all the others (collect-all)."""
        try:
            return read(*args)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
        except ConfigError as exc:
            errors.append(exc)
        return ()

    results = [gather(load_relaymap, relaymap, secure)]
    accounts, account_domains = gather(_read_accounts, config_dir) or ((), None)
    results += [gather(_collect, config_dir / SASL_PASSWORD, parse_credential_row, secure),
                accounts, gather(_collect, config_dir / VIRTUAL, parse_alias_row, secure)]
    recipient_rules = gather(_collect, config_dir / RECIPIENT_RELAYMAP, parse_recipient_row, secure)
    oauth2 = gather(load_oauth2, config_dir, secure)
    limits = gather(_collect, config_dir / RELAY_LIMITS, parse_limit_row, secure)
    seen: dict[str, Origin] = {}
    for limit in limits:
        first = seen.setdefault(limit.hop, limit.origin)
        if first is not limit.origin:
            errors.append(ConfigError(f"{limit.hop} has limits at {first} already", limit.origin))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return ConfigFiles(*results, relaymap_exists=relaymap.exists(), sasl_exists=sasl.exists(),
                       recipient_rules=recipient_rules, oauth2=oauth2, relay_limits=limits,
                       relay_edit=relaymap_edit(results[0]), account_domains=account_domains)
