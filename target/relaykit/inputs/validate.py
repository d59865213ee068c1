"""Validation of every value that ends up in a Postfix lookup table.

A Postfix table line is `key<whitespace>value`; a `#` at the start of a line makes it a
comment. Anything with whitespace, a newline or `#` in a field would be read back by
postmap(1) as something else than what the user meant, so it is refused here, before any
file is touched. Functions return the normalized value or raise RelaykitError.

Internationalized domain names are converted to their ASCII form (A-labels, `xn--...`)
by IDNA 2008 with UTS #46 mapping (the `idna` package, as browsers and mail clients do):
Postfix compares table keys as bytes, and SMTP envelopes from non-SMTPUTF8 clients carry
that form. Not Python's `idna` codec: it is IDNA 2003, which maps `faß.de` to `fass.de`,
another domain than the `xn--fa-hia.de` clients send.
"""

from __future__ import annotations

from relaykit.errors import RelaykitError
from relaykit.model.nexthop import PREFIXES, NextHop, same_mode, tls_level

# Plain string checks, no `re`: `setup relay ...` imports this module and must start in
# a few milliseconds (re and its enum imports alone cost ~5 ms).
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_SPACE_NAMES = {" ": "a space", "\t": "a tab", "\n": "a newline", "\r": "a carriage return", "#": "'#'"}
_SPACE_NAMES.update({chr(c): "bytes that are not UTF-8" for c in range(0xDC80, 0xDD00)})  # surrogateescape


def _control(char: str) -> bool:
    return ord(char) < 0x20 or ord(char) == 0x7F


def has_control_char(value: str) -> bool:
    """A C0 control character or DEL (str.isprintable() first: the fast path)."""
    return not value.isprintable() and any(_control(c) for c in value)


def _bad_char(value: str) -> str | None:
    """The first character that cannot stand in a table field, if any."""
    # Fast path (configure validates every line of 100k-line files): str.isprintable() is
    # False for every whitespace but " " and for every control character.
    if value.isprintable() and " " not in value and "#" not in value:
        return None
    for char in value:
        if char.isspace() or char == "#" or _control(char):
            return char
        if 0xD800 <= ord(char) <= 0xDFFF:  # an argument that was not UTF-8 (surrogateescape)
            return char
    return None


def _is_label(label: str) -> bool:
    return 0 < len(label) <= 63 and label[0] != "-" and label[-1] != "-" and set(label) <= _LABEL_CHARS


_NAME_CHARS = _LABEL_CHARS | {"."}


def _is_labels(name: str) -> bool:
    """Every dot-separated label of `name` is a valid label (as _is_label, in one pass)."""
    if not set(name) <= _NAME_CHARS:
        return False
    for label in name.split("."):
        if not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            return False
    return True


def is_plain_domain(name: str) -> bool:
    """`name` is a domain already in the form domain() returns (lower-case ASCII labels,
    no trailing dot): domain(name) == name, without its checks for what is not so."""
    return len(name) <= 253 and _is_labels(name) and not _is_ipv4_shaped(name)


def _is_ipv4_shaped(name: str) -> bool:
    parts = name.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts)


def field(value: str, what: str) -> str:
    """A single table field: not empty, no whitespace, `#` or control characters."""
    if value == "":
        raise RelaykitError(f"{what} is empty")
    bad = _bad_char(value)
    if bad is not None:
        raise RelaykitError(f"{what} must not contain {_SPACE_NAMES.get(bad, repr(bad))}: {value!r}")
    return value


def domain(value: str, what: str = "domain") -> str:
    """A DNS domain name, lower-cased, IDN converted to punycode. A leading @ is dropped."""
    field(value, what)
    name = value[1:] if value.startswith("@") else value
    if name.endswith(".") and len(name) > 1:  # a fully qualified name: "example.com."
        name = name[:-1]
    name = name.lower() if name.isascii() else _idna(name, value, what)
    if len(name) > 253 or not _is_labels(name):
        raise RelaykitError(
            f"{what} is not a valid domain name: {value!r} "
            "(letters, digits and hyphens in dot-separated labels of at most 63 characters)"
        )
    if _is_ipv4_shaped(name):
        raise RelaykitError(f"{what} is an IP address, not a domain name: {value!r}")
    return name


def _idna(name: str, value: str, what: str) -> str:
    """The A-label form of a name that is not ASCII: IDNA 2008, UTS #46 non-transitional
    mapping (case folded, `ß` and `ς` kept: `faß.de` is `xn--fa-hia.de`)."""
    import idna  # ~30 ms (re, typing, its UTS #46 tables): only names that are not ASCII

    try:
        return idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise RelaykitError(f"{what} is not a valid internationalized domain name (IDNA 2008): "
                            f"{value!r}: {exc}") from None


def host(value: str, what: str = "host") -> str:
    """A relay host: hostname, [hostname], IPv4 or IPv6 literal. Returned without brackets."""
    field(value, what)
    name = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if ":" in name:  # only an IPv6 literal may have colons
        return _ip(name, 6, value, what)
    if _is_ipv4_shaped(name):
        return _ip(name, 4, value, what)
    try:
        return domain(name, what)
    except RelaykitError:
        raise RelaykitError(
            f"{what} is not a hostname, [hostname], IPv4 or IPv6 address: {value!r}"
        ) from None


def _ip(name: str, version: int, original: str, what: str) -> str:
    import ipaddress  # only IP literals pay for this import

    name = name[5:] if name.lower().startswith("ipv6:") else name
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise RelaykitError(f"{what} is not a valid IPv{version} address: {original!r}")
    return str(address)


def is_number(text: str, digits: int) -> bool:
    """`text` is 1 to `digits` ASCII digits and nothing else. int() alone would also take
    " 25\n", "+25", "2_5", "²" or "٢٥" (and raise on 5000 digits): every number relaykit
    reads (argv, environment, files, the database) is checked here first."""
    return 0 < len(text) <= digits and text.isascii() and text.isdigit()


def port(value: str | int, what: str = "port") -> int:
    """A TCP port number, 1-65535, written with ASCII digits only (no sign, no whitespace)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and is_number(value, 5):
        number = int(value)
    else:
        number = 0
    if not 1 <= number <= 65535:
        raise RelaykitError(f"{what} must be a number from 1 to 65535 (digits only), not {str(value)!r}")
    return number


def bracketed(host_: str, port_: int) -> NextHop:
    """The next hop `[host]:port`, which Postfix uses without MX lookups."""
    return NextHop(host_, port_)


def nexthop(value: str, what: str = "relay", *, mode: str | None = None, secure: object = ()) -> NextHop:
    """One Postfix next hop: host, host:port, [host] or [host]:port, parsed (the one parser).
    `mode`: a TLS mode a prefix chose (else the port's); `secure`: RELAYKIT_TLS_SECURE."""
    field(value, what)
    bracketed_ = value.startswith("[")
    if bracketed_:
        inner, close, rest = value[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise RelaykitError(f"{what} is not a next hop of the form [host]:port: {value!r}")
        name, port_text = inner, (rest[1:] if rest else None)
    else:
        if value.count(":") > 1:
            raise RelaykitError(f"{what}: an IPv6 address must be written in brackets: {value!r}")
        name, colon, port_text = value.partition(":")
        port_text = port_text if colon else None
        if "[" in name or "]" in name:
            raise RelaykitError(f"{what} is not a next hop of the form [host]:port: {value!r}")
    port_ = port(port_text, f"{what} port") if port_text is not None else None
    hop = NextHop(host(name, what), port_, bracketed=bracketed_, mode=mode)
    level = tls_level(hop, secure)
    return hop if level == hop.level else hop.with_level(level)


def nexthops(value: str, what: str = "relay", secure: object = ()) -> tuple[NextHop, ...]:
    """A list of next hops separated by commas or whitespace (Postfix 3.5+ tries them in order)."""
    known = _NEXTHOPS.get((value, what))
    if known is not None and not secure:
        return known
    items = value.replace(",", " ").split()
    if not items:
        raise RelaykitError(f"{what} is empty")
    hops = tuple(nexthop(item, what, secure=secure) for item in items)
    if len(_NEXTHOPS) < 1024 and not secure:  # a relaymap names few relays, on thousands of lines
        _NEXTHOPS[(value, what)] = hops
    return hops


_NEXTHOPS: dict[tuple[str, str], tuple[NextHop, ...]] = {}


def relayhost(value: str, what: str = "DEFAULT_RELAY_HOST", secure: object = ()) -> tuple[NextHop, ...]:
    """main.cf relayhost, which relaykit writes verbatim (DMS does): each hop spelt as
    Postfix will look it up in tls_policy and sasl_passwd (its key is the name as written:
    `[0:0:0:0:0:0:0:1]:25` would find no `[::1]:25` policy and so need no TLS), and one TLS
    mode for the whole list (one transport, relaykit_smtps or smtp, delivers to it)."""
    hops = nexthops(value, what, secure)
    written = value.replace(",", " ").split()
    for text, hop in zip(written, hops):
        if text.lower() != hop.lower():
            raise RelaykitError(f"write {text!r} as {str(hop)!r}: Postfix looks its TLS policy and "
                                "credentials up by the name as written")
    if not same_mode(hops):
        raise RelaykitError(f"all relays of one list must use the same TLS mode "
                            f"(implicit on 465/2465, or STARTTLS): {value!r}")
    return hops


def sender_key(value: str, what: str = "sender") -> str:
    """A relaymap/sasl sender key. DMS knows `@domain`; a bare domain is accepted too."""
    if value.startswith("["):
        raise RelaykitError(f"{what} must be @domain, not a relay host: {value!r}")
    return "@" + domain(value, what)


def username(value: str) -> str:
    field(value, "user")
    if ":" in value:
        raise RelaykitError(f"user must not contain ':' (it separates user from password): {value!r}")
    return value


def password(value: str) -> str:
    # Never echo the value: only say what is wrong with it.
    if value == "":
        raise RelaykitError("password is empty")
    if _bad_char(value) is not None:
        raise RelaykitError("password must not contain whitespace, '#' or control characters")
    return value


# --- routing beyond DMS (issue 5): sender addresses, subdomain wildcards, TLS modes ---

# RFC 5321 dot-atom local parts, ASCII only, minus '#' (a table comment) and '"' (quoting
# is not supported). Postfix folds table keys to lower case, so we do too.
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789!$%&'*+-/=?^_`{|}~.")


def local_part(value: str, what: str = "sender address") -> str:
    """The part before '@' of a sender address, lower-cased (Postfix compares keys folded)."""
    field(value, what)
    text = value.lower()
    if not set(text) <= _LOCAL_CHARS or text.startswith(".") or text.endswith(".") or ".." in text:
        raise RelaykitError(
            f"{what} has an invalid local part {value!r}: use letters, digits, dots (not first, "
            "last or doubled) and !$%&'*+-/=?^_`{|}~ (no quotes, spaces, '#', '@' or control characters)"
        )
    return text


def route_key(value: str, what: str = "sender") -> str:
    """A sender rule key: `@domain`, `user@domain`, or `@.domain` (every subdomain of domain)."""
    if value[:1] == "@" and is_plain_domain(value[1:]):  # already normal: configure reads 100k of them
        return value
    field(value, what)
    if value.startswith("["):
        raise RelaykitError(f"{what} must be @domain, not a relay host: {value!r} (or user@domain, @.domain)")
    if value.startswith("@."):
        return "@." + domain(value[2:], what)
    if "@" in value[1:]:
        return address(value, what, table_key=True)
    return sender_key(value, what)


def recipient_key(value: str, what: str = "recipient domain") -> str:
    """A recipient rule key: `domain`, or `.domain` for every subdomain (transport(5) syntax)."""
    field(value, what)
    if value.startswith("@"):
        raise RelaykitError(f"{what} is written without '@' (domain, or .domain for subdomains): {value!r}")
    if value.startswith("."):
        return "." + domain(value[1:], what)
    return domain(value, what)


def _prefixed(item: str, bracket_required: bool = True) -> tuple[str, str | None]:
    """`smtps:[host]:port` -> ("[host]:port", implicit mode); `smtp:` -> STARTTLS. In files
    the prefix needs a bracketed hop: `smtp:25` stays host "smtp", port 25."""
    prefix, colon, rest = item.partition(":")
    mode = PREFIXES.get(prefix.lower()) if colon else None
    if mode is None or (bracket_required and not rest.startswith("[")):
        return item, None
    return rest, mode


def relay_list(value: str, what: str = "relay", secure: object = ()) -> tuple[NextHop, ...]:
    """Next hops (comma/space separated, tried in order), each with its TLS mode.

    A hop may carry a mode prefix, `smtps:[host]:port` (TLS from the first byte) or
    `smtp:[host]:port` (STARTTLS); without one, the port decides (model/nexthop.py).
    All hops of one list must use the same mode (they share one Postfix transport).
    """
    # A relaymap names few relays on up to 100k lines: each spelling is parsed once.
    cache_key = (value, what, secure)
    try:
        return _RELAY_LISTS[cache_key]
    except KeyError:
        pass
    except TypeError:  # an unhashable `secure` container: no cache
        return _relay_list(value, what, secure)
    hops = _relay_list(value, what, secure)
    if len(_RELAY_LISTS) < 4096:
        _RELAY_LISTS[cache_key] = hops
    return hops


_RELAY_LISTS: dict[tuple, tuple[NextHop, ...]] = {}


def _relay_list(value: str, what: str, secure: object) -> tuple[NextHop, ...]:
    items = value.replace(",", " ").split()
    if not items:
        raise RelaykitError(f"{what} is empty")
    hops = tuple(nexthop(text, what, mode=mode, secure=secure) for text, mode in map(_prefixed, items))
    if len({hop.mode for hop in hops}) > 1:
        raise RelaykitError(f"{what}: all relays of one list must use the same TLS mode (implicit or STARTTLS): {value!r}")
    return hops


def relay(host_: str, port_: str = "25", what: str = "host") -> NextHop:
    """`setup`'s `<host> [<port>]`: `smtps:host` forces implicit TLS, `smtp:host` STARTTLS
    (brackets optional here), else the port decides."""
    text, mode = _prefixed(host_, bracket_required=False)
    return NextHop(host(text, what), port(port_), mode=mode)


def address(value: str, what: str = "address", *, table_key: bool = False) -> str:
    """user@domain with the domain normalized: the one address check.

    table_key: the address is a key of a Postfix table (relaymap, sasl_passwd), so its
    local part must be a plain dot-atom, lower-cased (local_part). Otherwise the local
    part keeps its case and only what would break a DMS file is refused: `|` (accounts),
    `:` (Dovecot's passwd-file), `,` (alias target lists).
    """
    field(value, what)
    local, at, dom = value.rpartition("@")
    if not at or not local:
        raise RelaykitError(f"{what} must be an address (user@domain); {value!r} is not an email address")
    if table_key:
        local = local_part(local, what)
    else:
        for char in "|:,":
            if char in local:
                raise RelaykitError(f"{what} must not contain {char!r}: {value!r}")
    return f"{local}@{domain(dom, what)}"


# --- OAuth2 (XOAUTH2) credentials: postfix-oauth2.cf, `setup relay add-oauth2` ---

# provider -> (required fields, optional fields). A secret field (client_secret,
# refresh_token) may instead be given as <name>_file=/path (Docker/Kubernetes secrets).
OAUTH2_PROVIDERS = {
    # Microsoft 365: the client-credentials flow of an app registration with SMTP.SendAsApp
    "microsoft": (("tenant", "client_id"), ("client_secret", "certificate", "authority", "scope")),
    # Google: a refresh token of the account (scope https://mail.google.com/)
    "google": (("client_id", "client_secret", "refresh_token"), ("token_url", "scope")),
    # any OAuth2 token endpoint: refresh_token grant if one is given, else client credentials
    "generic": (("token_url", "client_id"), ("client_secret", "refresh_token", "scope")),
}
OAUTH2_SECRETS = ("client_secret", "refresh_token")


def oauth2_provider(value: str) -> str:
    if value.lower() not in OAUTH2_PROVIDERS:
        raise RelaykitError(f"unknown OAuth2 provider {value!r}: use {', '.join(OAUTH2_PROVIDERS)}")
    return value.lower()


def oauth2_fields(provider: str, fields: dict[str, str], secrets: set[str]) -> None:
    """Check the `name=value` fields of one OAuth2 credential (values of secret fields are
    never shown). `secrets`: the secret fields given (inline or by *_file)."""
    required, optional = OAUTH2_PROVIDERS[provider]
    for name, value in fields.items():
        if name not in required and name not in optional:
            raise RelaykitError(f"{provider}: unknown field {name!r} (known: {', '.join(required + optional)})")
        if name in OAUTH2_SECRETS:
            if not value or _bad_char(value) is not None:
                raise RelaykitError(f"{name} is empty or contains whitespace, '#' or control characters")
            continue
        field(value, name)
        if name in ("token_url", "authority") and not value.lower().startswith("https://"):
            raise RelaykitError(f"{name} must be an https:// URL (tokens never travel in clear): {value!r}")
    missing = [name for name in required if name not in fields and name not in secrets]
    if provider == "microsoft" and not ({"client_secret", "certificate"} & (set(fields) | secrets)):
        missing.append("client_secret (or certificate)")
    if provider == "microsoft" and {"client_secret", "certificate"} <= (set(fields) | secrets):
        raise RelaykitError("microsoft: give client_secret or certificate, not both")
    if missing:
        raise RelaykitError(f"{provider}: missing {', '.join(missing)}")
