"""The tables and transports behind the routes: per-sender transports, subdomain
wildcards, implicit TLS, relays by recipient domain. Pure, like core/plan.py, which
calls `build` with the decisions of core/routing.py.

Per-sender transports (sender_dependent_default_transport_maps -> sender_transport):
every sender key relaykit knows (routes, opt-outs, sender-keyed credentials) gets the
transport and next hops routing.Router decided for it. The transport says how the
credential is found (routing.py explains why): `smtp` and relaykit_smtps by sender then
relay, relaykit_relay and relaykit_relay_smtps by relay only; `DUNNO` sends the mail to
default_transport, which is relaykit_direct (never authenticates: an MX gets no
credential) or, with DEFAULT_RELAY_HOST, the relayhost's client. The next hop in the
transport entry overrides sender_dependent_relayhost_maps, which stays complete (DMS's
table) and is only consulted after DUNNO, where opted-out addresses stop it with DUNNO too.
When every key is a route that its next hops decide alone (no opt-out, no credential
keyed by sender, no wildcard: the common case, and 100k routed domains), a key's
transport follows from its relayhost_map value: sender_transport is then not written,
and sender_dependent_default_transport_maps is `pipemap:{relayhost_map,relay_transport}`
(postconf(5) pipemap: the first table's result is the second's query), relay_transport
holding one line per next-hop list (`[host]:port smtp:[host]:port`). One table of 100k
keys to write and compile instead of two, and the same answer for every sender.

Subdomains (`@.example.com`): hash/lmdb tables cannot match a suffix, so wildcards go into
a pcre table listed AFTER the exact one. Postfix's address lookup (mail_addr_find) tries
the full address in every table, then `@domain` in the fixed-key tables only; so the pcre
table is searched before the exact `@domain` entries. To keep "exact wins", it repeats
each exact domain that lies under a wildcard (before the wildcards), opt-outs as DUNNO
(which ends the search), then the wildcards, the most specific first.

Implicit TLS (port 465/2465, or `smtps:[host]:port`): transports with
smtp_tls_wrappermode=yes; DEFAULT_RELAY_HOST on such a port makes relaykit_smtps the
default_transport.

By recipient domain: transport_maps, which beats every sender rule. Its transport turns
smtp_sender_dependent_authentication off, so the relay gets the credentials of its next
hop, never the credentials of whoever sent the mail.

OAuth2 (XOAUTH2): a route whose credential is an OAuth2 one goes through the same client
with `_oauth2` in its name (relaykit_oauth2, relaykit_oauth2_relay_smtps...). Those
clients offer only the XOAUTH2 mechanism (smtp_sasl_mechanism_filter) and read only the
token table; every other client filters XOAUTH2 out (main.cf), so a password never goes
out as a bearer token and a token never as a password. Their password maps end with
`pipemap:{<type>:sasl_passwd_oauth2_keys, fail:...}`: a key that has no current token
(the token endpoint is down or refuses) is a lookup *error*, so Postfix defers the mail
("...oauth2_token_unavailable} lookup error", "status=deferred (local data error...)")
instead of sending it without a login or with another one.
Per-relay limits (postfix-relay-limits.cf): the queue manager paces and bounds deliveries
per transport and destination (postconf(5) transport_destination_rate_delay,
transport_destination_concurrency_limit: main.cf parameters named after the master.cf
service, read by qmgr, not by the client). So a limited relay gets clients of its own,
relaykit_limitN (credentials by sender then relay, as `smtp`) and relaykit_limitN_relay
(by relay only, also for relays by recipient domain), N its line in the file; the routes
whose first next hop it is go through them. Their TLS mode is the relay's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from relaykit.model.entries import RelayLimit
from relaykit.model.nexthop import NextHop
from relaykit.model.plan import OAUTH2_KEYS, SASL_OAUTH2, Route, Service, Table
from relaykit.record import field, record, replace

SMTPS = "relaykit_smtps"  # wrappermode client, credentials by sender then relay (like `smtp`)
RELAY = "relaykit_relay"  # credentials by relay only: the sender's would belong to another rule
RELAY_SMTPS = "relaykit_relay_smtps"
RCPT = "relaykit_rcpt"  # client for relays chosen by recipient domain (credentials by relay)
RCPT_SMTPS = "relaykit_rcpt_smtps"
DIRECT = "relaykit_direct"  # to a recipient's MX: never authenticates
OAUTH2 = "_oauth2"  # inserted after "relaykit" in a client's name: its XOAUTH2 twin

LIMIT = "relaykit_limit"  # + the limit's number (+ "_relay"): a limited relay's clients

RELAYHOST_WILDCARDS = "relayhost_map_subdomains"
SASL_WILDCARDS = "sasl_passwd_subdomains"
SENDER_TRANSPORT = "sender_transport"
SENDER_TRANSPORT_WILDCARDS = "sender_transport_subdomains"
RECIPIENT_TRANSPORT = "recipient_transport"
RELAY_TRANSPORT = "relay_transport"  # relayhost_map's value -> sender_transport's (see the docstring)
TABLES = (RELAYHOST_WILDCARDS, SASL_WILDCARDS, SENDER_TRANSPORT, SENDER_TRANSPORT_WILDCARDS, RECIPIENT_TRANSPORT,
          RELAY_TRANSPORT)


@record
class Extra:
    """What routing beyond DMS adds to the plan."""

    tables: tuple[Table, ...] = ()
    params: dict[str, str] = field(default_factory=dict)
    services: tuple[Service, ...] = ()
    warnings: tuple[str, ...] = ()


def parents(domain: str) -> list[str]:
    """`a.b.example.com` -> ["b.example.com", "example.com", "com"]: its wildcard candidates."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


def has_wildcard(keys) -> bool:
    """Whether any of these sender keys is an `@.domain` wildcard (one C-level scan: the
    keys of 100k-line relaymaps are checked several times)."""
    return "\n@." in "\n" + "\n".join(keys)


def exact_lines(pairs, wildcards: bool) -> tuple[str, ...]:
    """`key value` lines of an exact (hash/lmdb) table from (key, value) pairs, without
    the wildcard keys when there are any (they go into the pcre tables)."""
    if wildcards:
        pairs = [(key, value) for key, value in pairs if not key.startswith("@.")]
    return tuple(map(" ".join, pairs))


def under_wildcard(domain: str, keys) -> bool:
    return any(f"@.{parent}" in keys for parent in parents(domain))


def client_transport(implicit: bool, by_relay: bool, oauth2: bool = False) -> str:
    """The client of a sender route: TLS mode, whether credentials are looked up by
    sender (then relay) or by relay only, and whether they are OAuth2 tokens."""
    if by_relay:
        name = RELAY_SMTPS if implicit else RELAY
    else:
        name = SMTPS if implicit else "smtp"
    return oauth2_twin(name) if oauth2 else name


def recipient_transport(implicit: bool, oauth2: bool = False) -> str:
    name = RCPT_SMTPS if implicit else RCPT
    return oauth2_twin(name) if oauth2 else name


def oauth2_twin(name: str) -> str:
    """`smtp` -> relaykit_oauth2, relaykit_relay_smtps -> relaykit_oauth2_relay_smtps."""
    return "relaykit" + OAUTH2 if name == "smtp" else name.replace("relaykit", "relaykit" + OAUTH2, 1)


def _untwin(name: str) -> str:
    return "smtp" if name == "relaykit" + OAUTH2 else name.replace("relaykit" + OAUTH2, "relaykit", 1)


def limited_transport(number: int, by_relay: bool) -> str:
    """The client of the `number`th limited relay (1-based, its order in the file)."""
    return f"{LIMIT}{number}_relay" if by_relay else f"{LIMIT}{number}"


def limit_of(hops: tuple[NextHop, ...], limits: tuple[RelayLimit, ...]) -> tuple[int, RelayLimit] | None:
    """(number, limit) of the first next hop of a route, if that relay is limited."""
    if not hops or not limits:
        return None
    return next(((i, limit) for i, limit in enumerate(limits, 1) if limit.hop == hops[0]), None)


def _limited(used: set[str], limits: tuple[RelayLimit, ...]) -> tuple[list[Service], dict[str, str], list[str]]:
    """The master.cf clients and qmgr's main.cf limits of the limited relays mail uses."""
    services, params, warnings = [], {}, []
    for number, limit in enumerate(limits, 1):
        names = [limited_transport(number, by_relay) for by_relay in (False, True)]
        names = [name for name in names if name in used]
        if not names:
            warnings.append(f"{limit.origin}: {limit.hop} is not the (first) relay of any route: its limits have "
                            "no effect")
        elif len(names) == 2:
            warnings.append(f"{limit.origin}: {limit.hop} gets mail with the sender's credentials and with its own, "
                            f"through two clients ({', '.join(names)}): each keeps the limits, so the relay may "
                            "see up to twice the rate and connections")
        for name in names:
            service = smtp_service(name, implicit=limit.hop.implicit_tls, sender_auth=not name.endswith("_relay"))
            # no connection cache: an idle cached connection would be one more than the
            # relay allows (the limits count deliveries; a provider counts connections)
            services.append(replace(service, options=service.options + (
                ("smtp_connection_cache_on_demand", "no"),)))
            if limit.delay:
                params[f"{name}_destination_rate_delay"] = f"{limit.delay}s"
                # postconf(5): with a rate delay, one failed connection would otherwise defer
                # all of the relay's mail
                params[f"{name}_destination_concurrency_failed_cohort_limit"] = "10"
            if limit.concurrency or limit.delay:
                # one at a time with a rate: qmgr starts with parallel deliveries before the
                # first one's delay applies
                params[f"{name}_destination_concurrency_limit"] = str(limit.concurrency or 1)
    return services, params, warnings


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


def build(transports: Callable[[], Iterable[tuple[str, str]]], values: set[str], optouts: tuple[Route, ...],
          routes: list[Route], recipient_routes: tuple[Route, ...], creds: list, relayhost: tuple[NextHop, ...],
          table_type: str, directory: Path, oauth2_hops: frozenset = frozenset(), oauth2_kind: str = "lmdb",
          limits: tuple[RelayLimit, ...] = (), wildcards: bool = True,
          relay_transports: list[tuple[str, str]] | None = None) -> Extra:
    """`transports()`: (sender key, sender_transport value) pairs from routing.Router's
    decisions, made anew at each call (100k keys: no list of them), `values` the distinct
    values among them; `oauth2_hops`: the next hops whose own (by relay) credential is an
    OAuth2 one; `limits`: postfix-relay-limits.cf (core/plan.py refuses a limit on an OAuth2 relay); `wildcards`:
    False when no sender key is an @.domain wildcard (the pcre tables are then not built);
    `relay_transports`: (relayhost_map value, sender_transport value) of each next-hop list
    when the one decides the other for every key (then RELAY_TRANSPORT, not SENDER_TRANSPORT)."""
    def ref(name: str, kind: str = table_type) -> str:
        return f"{kind}:{Path(directory, name)}"

    tables, params, services = [], {}, []
    dunno = [(o.sender, "DUNNO") for o in optouts]

    # An opted-out address must stop the relayhost lookup before its @domain's route.
    address_dunno = tuple(f"/^{pcre_escape(o.sender)}$/ DUNNO" for o in optouts if not o.sender.startswith("@"))
    relay_wild = address_dunno + (_wildcard_lines([(r.sender, ",".join(r.nexthops)) for r in routes] + dunno)
                                  if wildcards else ())
    if relay_wild:
        tables.append(Table(RELAYHOST_WILDCARDS, relay_wild, kind="pcre"))
        params["sender_dependent_relayhost_maps"] = (
            f"{ref('relayhost_map')}, {ref(RELAYHOST_WILDCARDS, 'pcre')}")
    sasl_wild = _wildcard_lines([(c.key, f"{c.user}:{c.password.reveal()}") for c in creds])
    if sasl_wild:
        tables.append(Table(SASL_WILDCARDS, sasl_wild, secret=True, kind="pcre"))
        params["smtp_sasl_password_maps"] = f"{ref('sasl_passwd')}, {ref(SASL_WILDCARDS, 'pcre')}"

    used = {value.partition(":")[0] for value in values} - {"DUNNO", "smtp"}
    if relay_transports:
        tables.append(Table(RELAY_TRANSPORT, tuple(map(" ".join, relay_transports))))
        params["sender_dependent_default_transport_maps"] = \
            f"pipemap:{{{ref('relayhost_map')},{ref(RELAY_TRANSPORT)}}}"
    elif values:
        tables.append(Table(SENDER_TRANSPORT, exact_lines(transports(), wildcards)))
        maps = [ref(SENDER_TRANSPORT)]
        wild = _wildcard_lines(list(transports())) if wildcards else ()
        if wild:
            tables.append(Table(SENDER_TRANSPORT_WILDCARDS, wild, kind="pcre"))
            maps.append(ref(SENDER_TRANSPORT_WILDCARDS, "pcre"))
        params["sender_dependent_default_transport_maps"] = ", ".join(maps)
    # Mail no rule routes: to DEFAULT_RELAY_HOST by its client, else to the MX by one that
    # never authenticates.
    relayhost_limit = limit_of(relayhost, limits)
    if relayhost and relayhost[0] in oauth2_hops:  # DEFAULT_RELAY_HOST logs in with tokens
        params["default_transport"] = client_transport(relayhost[0].implicit_tls, False, oauth2=True)
        used.add(params["default_transport"])
    elif relayhost_limit:
        params["default_transport"] = limited_transport(relayhost_limit[0], by_relay=False)
        used.add(params["default_transport"])
    elif relayhost and relayhost[0].implicit_tls:
        params["default_transport"] = SMTPS
        used.add(SMTPS)
    elif not relayhost:
        params["default_transport"] = DIRECT
        used.add(DIRECT)
    maps = oauth2_password_maps(oauth2_kind, directory)
    services += [client_service(name) for name in CLIENTS if name in used]
    services += [client_service(name, maps) for name in OAUTH2_CLIENTS if name in used]

    if recipient_routes:
        def rcpt(route: Route) -> str:
            limit = limit_of(route.nexthops, limits)
            if limit:
                return limited_transport(limit[0], by_relay=True)
            return recipient_transport(route.implicit_tls, route.nexthops[0] in oauth2_hops)

        tables.append(Table(RECIPIENT_TRANSPORT, tuple(
            f"{r.sender} {rcpt(r)}:{','.join(r.nexthops)}" for r in recipient_routes)))
        params["transport_maps"] = ref(RECIPIENT_TRANSPORT)
        for name in sorted({rcpt(r) for r in recipient_routes if not limit_of(r.nexthops, limits)}):
            base = _untwin(name)
            services.append(smtp_service(name, implicit=base == RCPT_SMTPS, sender_auth=False,
                                         oauth2_maps=maps if name != base else None))
        used.update(rcpt(r) for r in recipient_routes)
    if not limits:
        return Extra(tuple(tables), params, tuple(services))
    limited_services, limited_params, warnings = _limited(used, limits)
    return Extra(tuple(tables), {**params, **limited_params}, tuple(services + limited_services), tuple(warnings))


def oauth2_password_maps(table_type: str, directory: Path) -> str:
    """The OAuth2 clients' smtp_sasl_password_maps: the tokens, then an error for any OAuth2
    key without one (fail:, postconf(5) "fail" table type) so that such mail is deferred."""
    return (f"{table_type}:{Path(directory, SASL_OAUTH2)},"
            f"pipemap:{{{table_type}:{Path(directory, OAUTH2_KEYS)},fail:oauth2_token_unavailable}}")


CLIENTS = (SMTPS, RELAY, RELAY_SMTPS, DIRECT)  # the clients sender routes and default_transport use
OAUTH2_CLIENTS = tuple(oauth2_twin(name) for name in ("smtp", SMTPS, RELAY, RELAY_SMTPS))


def client_service(name: str, oauth2_maps: str | None = None) -> Service:
    """The master.cf service of one of CLIENTS or OAUTH2_CLIENTS (then `oauth2_maps` is its
    password maps): its TLS mode and how it finds credentials."""
    base = _untwin(name)
    return smtp_service(name, implicit=base in (SMTPS, RELAY_SMTPS), sender_auth=base in (SMTPS, "smtp"),
                        auth=base != DIRECT, oauth2_maps=oauth2_maps if base != name else None)


def smtp_service(name: str, implicit: bool, sender_auth: bool = True, auth: bool = True,
                 oauth2_maps: str | None = None) -> Service:
    """A client transport (master.cf `smtp` service) with its TLS mode and SASL lookups;
    with `oauth2_maps`, XOAUTH2 only, with the tokens (postconf(5) smtp_sasl_mechanism_filter)."""
    options = [("syslog_name", f"postfix/{name}")]
    if implicit:
        options += [("smtp_tls_wrappermode", "yes"), ("smtp_tls_security_level", "encrypt")]
    if not auth:
        options.append(("smtp_sasl_auth_enable", "no"))
    elif not sender_auth:
        options.append(("smtp_sender_dependent_authentication", "no"))
    if oauth2_maps and auth:
        # a token the relay refuses (revoked, expired early) defers the mail, never bounces
        # it, whatever main.cf says (postconf(5) smtp_sasl_auth_soft_bounce)
        options += [("smtp_sasl_mechanism_filter", "xoauth2"), ("smtp_sasl_password_maps", oauth2_maps),
                    ("smtp_sasl_auth_soft_bounce", "yes")]
    return Service(name, "unix", "smtp", tuple(options))
