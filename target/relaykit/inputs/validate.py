"""Validation of every value that ends up in a Postfix lookup table.

A Postfix table line is `key<whitespace>value`; a `#` at the start of a line makes it a
comment. Anything with whitespace, a newline or `#` in a field would be read back by
postmap(1) as something else than what the user meant, so it is refused here, before any
file is touched. Functions return the normalized value or raise RelaykitError.

Internationalized domain names are converted to their ASCII (punycode, IDNA 2003 as in
Python's `idna` codec) form: Postfix compares table keys as bytes, and SMTP envelopes
from non-SMTPUTF8 clients carry the ASCII form.
"""

from __future__ import annotations

from relaykit.errors import RelaykitError

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
    name = name.lower()
    if name.endswith(".") and len(name) > 1:  # a fully qualified name: "example.com."
        name = name[:-1]
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise RelaykitError(f"{what} is not a valid internationalized domain name: {value!r}") from None
    if len(name) > 253 or not _is_labels(name):
        raise RelaykitError(
            f"{what} is not a valid domain name: {value!r} "
            "(letters, digits and hyphens in dot-separated labels of at most 63 characters)"
        )
    if _is_ipv4_shaped(name):
        raise RelaykitError(f"{what} is an IP address, not a domain name: {value!r}")
    return name


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


def port(value: str | int, what: str = "port") -> int:
    """A TCP port number, 1-65535."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:  # not "²", "٢٥"
        raise RelaykitError(f"{what} must be a number from 1 to 65535, not {str(value)!r}")
    return int(text)


def bracketed(host_: str, port_: int) -> str:
    """The next hop `[host]:port`, which Postfix uses without MX lookups."""
    return f"[{host_}]:{port_}"


def nexthop(value: str, what: str = "relay") -> str:
    """One Postfix next hop: host, host:port, [host] or [host]:port. Returned normalized."""
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
    text = f"[{host(name, what)}]" if bracketed_ else host(name, what)
    if port_text is not None:
        text += f":{port(port_text, f'{what} port')}"
    return text


def nexthops(value: str, what: str = "relay") -> tuple[str, ...]:
    """A list of next hops separated by commas or whitespace (Postfix 3.5+ tries them in order)."""
    known = _NEXTHOPS.get((value, what))
    if known is not None:
        return known
    items = value.replace(",", " ").split()
    if not items:
        raise RelaykitError(f"{what} is empty")
    hops = tuple(nexthop(item, what) for item in items)
    if len(_NEXTHOPS) < 1024:  # a relaymap names few relays, on thousands of lines
        _NEXTHOPS[(value, what)] = hops
    return hops


_NEXTHOPS: dict[tuple[str, str], tuple[str, ...]] = {}


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
# Ports on which relays speak TLS from the first byte (SES, Mailgun, SendGrid: 465; SES: 2465).
IMPLICIT_TLS_PORTS = (465, 2465)
TLS_MODES = ("implicit", "starttls")


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
    field(value, what)
    if value.startswith("["):
        raise RelaykitError(f"{what} must be @domain, not a relay host: {value!r} (or user@domain, @.domain)")
    if value.startswith("@."):
        return "@." + domain(value[2:], what)
    if "@" in value[1:]:
        local, _, dom = value.rpartition("@")
        return f"{local_part(local, what)}@{domain(dom, what)}"
    return sender_key(value, what)


def recipient_key(value: str, what: str = "recipient domain") -> str:
    """A recipient rule key: `domain`, or `.domain` for every subdomain (transport(5) syntax)."""
    field(value, what)
    if value.startswith("@"):
        raise RelaykitError(f"{what} is written without '@' (domain, or .domain for subdomains): {value!r}")
    if value.startswith("."):
        return "." + domain(value[1:], what)
    return domain(value, what)


def relay_list(value: str, what: str = "relay") -> tuple[tuple[str, ...], bool]:
    """Next hops (comma/space separated, tried in order) and whether they use implicit TLS.

    A hop may carry a mode prefix, `smtps:[host]:port` (TLS from the first byte) or
    `smtp:[host]:port` (STARTTLS); without one, ports 465 and 2465 mean implicit TLS.
    All hops of one list must use the same mode (they share one Postfix transport).
    """
    items = value.replace(",", " ").split()
    if not items:
        raise RelaykitError(f"{what} is empty")
    hops, modes = [], set()
    for item in items:
        prefix, colon, rest = item.partition(":")
        # the prefix needs a bracketed hop: `smtp:25` stays host "smtp", port 25
        explicit = prefix.lower() if colon and prefix.lower() in ("smtps", "smtp") and rest.startswith("[") else None
        hop = nexthop(rest if explicit else item, what)
        if explicit:
            modes.add(explicit == "smtps")
        else:
            port_text = hop.rpartition("]:")[2] if hop.startswith("[") else hop.rpartition(":")[2]
            modes.add(port_text.isdigit() and int(port_text) in IMPLICIT_TLS_PORTS)
        hops.append(hop)
    if len(modes) > 1:
        raise RelaykitError(f"{what}: all relays of one list must use the same TLS mode (implicit or STARTTLS): {value!r}")
    return tuple(hops), modes.pop()


def implicit_by_port(port_: int) -> bool:
    return port_ in IMPLICIT_TLS_PORTS
