"""The tables and transports for routing beyond DMS: subdomain wildcards, implicit TLS,
relays by recipient domain. Pure, like core/plan.py, which calls `build`.

Subdomains (`@.example.com`): hash/lmdb tables cannot match a suffix, so wildcards go into
a pcre table listed AFTER the exact one. Postfix's address lookup (mail_addr_find) tries
the full address in every table, then `@domain` in the fixed-key tables only; so the pcre
table is searched before the exact `@domain` entries. To keep "exact wins", it repeats
each exact domain that lies under a wildcard (before the wildcards), opt-outs as DUNNO
(which ends the search), then the wildcards, the most specific first.

Implicit TLS (port 465/2465, or `smtps:[host]:port`): the sender's mail needs a transport
with smtp_tls_wrappermode=yes, chosen by sender_dependent_default_transport_maps. That
table overrides sender_dependent_relayhost_maps, so once it exists it holds EVERY sender
route (`smtp:` for STARTTLS ones) with the same precedence; relayhost_map stays complete.

By recipient domain: transport_maps, which beats every sender rule. Its transport turns
smtp_sender_dependent_authentication off, so the relay gets the credentials of its next
hop, never the credentials of whoever sent the mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from relaykit.model.nexthop import NextHop
from relaykit.model.plan import Route, Service, Table

SMTPS = "relaykit_smtps"  # wrappermode client for senders' implicit-TLS relays
RCPT = "relaykit_rcpt"  # client for relays chosen by recipient domain (credentials by relay)
RCPT_SMTPS = "relaykit_rcpt_smtps"

RELAYHOST_WILDCARDS = "relayhost_map_subdomains"
SASL_WILDCARDS = "sasl_passwd_subdomains"
SENDER_TRANSPORT = "sender_transport"
SENDER_TRANSPORT_WILDCARDS = "sender_transport_subdomains"
RECIPIENT_TRANSPORT = "recipient_transport"
TABLES = (RELAYHOST_WILDCARDS, SASL_WILDCARDS, SENDER_TRANSPORT, SENDER_TRANSPORT_WILDCARDS, RECIPIENT_TRANSPORT)


@dataclass(frozen=True)
class Extra:
    """What routing beyond DMS adds to the plan."""

    tables: tuple[Table, ...] = ()
    params: dict[str, str] = field(default_factory=dict)
    services: tuple[Service, ...] = ()


def parents(domain: str) -> list[str]:
    """`a.b.example.com` -> ["b.example.com", "example.com", "com"]: its wildcard candidates."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


def under_wildcard(domain: str, keys) -> bool:
    return any(f"@.{parent}" in keys for parent in parents(domain))


def sender_transport(implicit: bool, recipient: bool = False) -> str:
    if recipient:
        return RCPT_SMTPS if implicit else RCPT
    return SMTPS if implicit else "smtp"


def pcre_escape(text: str) -> str:
    """Every character but letters and digits escaped: user input cannot change the pattern."""
    return "".join(c if c.isascii() and c.isalnum() else "\\" + c for c in text)


def _pattern(key: str) -> str:
    """A pcre matching the full sender address for `@domain` or `@.domain` (any subdomain)."""
    if key.startswith("@."):
        return f"/^[^@]*@[^@]+\\.{pcre_escape(key[2:])}$/"
    return f"/^[^@]*@{pcre_escape(key[1:])}$/"


def _result(value: str) -> str:
    return value.replace("$", "$$")  # pcre results expand $1...; $$ is a literal $


def _wildcard_lines(entries: list[tuple[str, str]]) -> tuple[str, ...]:
    """pcre lines for (key, value) pairs: exact domains under a wildcard, then wildcards by depth."""
    wildcards = {key for key, _ in entries if key.startswith("@.")}
    if not wildcards:
        return ()
    exact = [(k, v) for k, v in entries
             if k.startswith("@") and not k.startswith("@.") and under_wildcard(k[1:], wildcards)]
    wild = sorted(((k, v) for k, v in entries if k.startswith("@.")), key=lambda kv: -kv[0].count("."))
    return tuple(f"{_pattern(k)} {_result(v)}" for k, v in (*exact, *wild))


def _catch_all_lines(values: list[tuple[str, str]], optouts, default: str) -> tuple[str, ...]:
    """pcre lines ending in a catch-all: every @domain route must come before it (it matches
    the full address, which Postfix looks up before @domain), opt-outs go to the default."""
    entries = values + [(o.sender, default) for o in optouts]
    exact = [(k, v) for k, v in entries if k.startswith("@") and not k.startswith("@.")]
    wild = sorted(((k, v) for k, v in entries if k.startswith("@.")), key=lambda kv: -kv[0].count("."))
    return tuple(f"{_pattern(k)} {_result(v)}" for k, v in (*exact, *wild)) + (f"/^/ {default}",)


def build(routes: list[Route], optouts: tuple[Route, ...], recipient_routes: tuple[Route, ...], creds: list,
          relayhost: tuple[NextHop, ...], table_type: str, directory: Path) -> Extra:
    def ref(name: str, kind: str = table_type) -> str:
        return f"{kind}:{Path(directory, name)}"

    tables, params, services = [], {}, []
    dunno = [(o.sender, "DUNNO") for o in optouts]

    relay_wild = _wildcard_lines([(r.sender, ",".join(r.nexthops)) for r in routes] + dunno)
    if relay_wild:
        tables.append(Table(RELAYHOST_WILDCARDS, relay_wild, kind="pcre"))
        params["sender_dependent_relayhost_maps"] = (
            f"{ref('relayhost_map')}, {ref(RELAYHOST_WILDCARDS, 'pcre')}")
    sasl_wild = _wildcard_lines([(c.key, f"{c.user}:{c.password.reveal()}") for c in creds])
    if sasl_wild:
        tables.append(Table(SASL_WILDCARDS, sasl_wild, secret=True, kind="pcre"))
        params["smtp_sasl_password_maps"] = f"{ref('sasl_passwd')}, {ref(SASL_WILDCARDS, 'pcre')}"

    # DEFAULT_RELAY_HOST on 465/2465: main.cf relayhost cannot pick a transport, so a
    # catch-all last line of the pcre table sends every other sender there by wrappermode.
    implicit_default = bool(relayhost) and relayhost[0].implicit_tls
    if implicit_default or any(r.implicit_tls for r in routes):
        values = [(r.sender, f"{sender_transport(r.implicit_tls)}:{','.join(r.nexthops)}") for r in routes]
        tables.append(Table(SENDER_TRANSPORT, tuple(f"{k} {v}" for k, v in values if not k.startswith("@."))))
        maps = [ref(SENDER_TRANSPORT)]
        if implicit_default:
            wild = _catch_all_lines(values, optouts, f"{SMTPS}:{','.join(relayhost)}")
        else:
            wild = _wildcard_lines(values + dunno)
        if wild:
            tables.append(Table(SENDER_TRANSPORT_WILDCARDS, wild, kind="pcre"))
            maps.append(ref(SENDER_TRANSPORT_WILDCARDS, "pcre"))
        params["sender_dependent_default_transport_maps"] = ", ".join(maps)
        services.append(smtp_service(SMTPS, implicit=True))

    if recipient_routes:
        tables.append(Table(RECIPIENT_TRANSPORT, tuple(
            f"{r.sender} {sender_transport(r.implicit_tls, recipient=True)}:{','.join(r.nexthops)}"
            for r in recipient_routes)))
        params["transport_maps"] = ref(RECIPIENT_TRANSPORT)
        for implicit in sorted({r.implicit_tls for r in recipient_routes}):
            services.append(smtp_service(sender_transport(implicit, recipient=True), implicit=implicit,
                                          sender_auth=False))
    return Extra(tuple(tables), params, tuple(services))


def smtp_service(name: str, implicit: bool, sender_auth: bool = True) -> Service:
    options = [("syslog_name", f"postfix/{name}")]
    if implicit:
        options += [("smtp_tls_wrappermode", "yes"), ("smtp_tls_security_level", "encrypt")]
    if not sender_auth:
        options.append(("smtp_sender_dependent_authentication", "no"))
    return Service(name, "unix", "smtp", tuple(options))
