"""The plan: everything Postfix should end up with, as values (core/ computes it, run/apply.py
carries it out, `setup relay list/explain/test` read it).

Tables are files in MAIL_CONFIG; params are main.cf; services are master.cf entries.
Routes and logins say who goes where as whom, with the rule that decided it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import partial
from itertools import chain, repeat
from operator import itemgetter

from relaykit.model.entries import Deferred, OAuth2Credential, Origin, Override, RelayLimit, RelayRule, Rules
from relaykit.model.nexthop import NextHop
from relaykit.record import field, record

# The tables of the DMS contract (CONTRACT.md), in MAIL_CONFIG.
RELAYHOST_MAP = "relayhost_map"
SASL_PASSWD = "sasl_passwd"
TLS_POLICY = "tls_policy"
# XOAUTH2 relays (core/oauth2.py): the current access tokens, `key user:token` like
# sasl_passwd (0600, rewritten by the daemon as tokens are refreshed), and every OAuth2
# key, so that a key without a current token makes Postfix defer instead of sending
# without a login.
SASL_OAUTH2 = "sasl_passwd_oauth2"
OAUTH2_KEYS = "sasl_passwd_oauth2_keys"


@record
class Table:
    """A lookup table file in MAIL_CONFIG: `key value` lines."""

    name: str
    lines: tuple[str, ...]
    secret: bool = False  # holds passwords: mode 0600, never logged
    kind: str | None = None  # a table type of its own (pcre), else the plan's table_type
    group: str | None = None  # also readable by this group (0640 root:group): pgsql lookup files
    indexed: bool = True  # compiled by postmap when table_type is indexed; False: a pgsql: config

    def text(self) -> str:
        if isinstance(self.lines, Lines):
            return self.lines.text
        return "\n".join(self.lines) + "\n" if self.lines else ""


class Lines(Deferred):
    """A table's lines made from its text ("line\n" each) when read one by one: RELAY_HOST's
    default routes are written as one text (str.join: ~5 ms for 100k managed domains, where
    a string a line takes ~45 ms), which is all apply reads."""

    __slots__ = ()

    def __init__(self, text: str, length: int) -> None:
        super().__init__(lambda: tuple(text[:-1].split("\n")) if text else (), length, text)

    @property
    def text(self) -> str:
        return self._source


@record
class Service:
    """A master.cf service relaykit adds, e.g. an implicit-TLS SMTP client transport.

    Fields as in master(5): `name type private unpriv chroot wakeup maxproc command`,
    then `-o name=value` overrides of main.cf for this service only.
    """

    name: str
    type: str
    command: str
    options: tuple[tuple[str, str], ...] = ()
    private: str = "-"
    unpriv: str = "-"
    chroot: str = "n"
    wakeup: str = "-"
    maxproc: str = "-"

    @property
    def key(self) -> str:
        return f"{self.name}/{self.type}"

    def entry(self) -> str:
        fields = [self.name, self.type, self.private, self.unpriv, self.chroot, self.wakeup, self.maxproc,
                  self.command]
        return " ".join(fields + [f"-o {name}={value}" for name, value in self.options])


# Mail from `sender` goes to `nexthops`; `origin` says which rule decided it. For a
# recipient route, `sender` is the recipient domain key. The same shape as the rule it
# comes from, so a plan's routes are its relaymap rules themselves, not 100k copies.
Route = RelayRule


class Routes(Deferred):
    """Plan.routes under RELAY_HOST: the explicit routes, then a route to `nexthops` from
    `origin` for each domain of `domains` (@domain). Those are made only when routes are
    read one by one (explain, list, live reload's patch), each time they are iterated
    until then: configure only counts them (100k managed domains: ~60 ms of keys and
    tuples it would never read)."""

    __slots__ = ()

    def __init__(self, explicit: tuple[Route, ...], domains: list[str], nexthops: tuple[NextHop, ...],
                 origin: Origin) -> None:
        source = (explicit, domains, nexthops, origin)
        super().__init__(lambda: tuple(self._routes(*source)), len(explicit) + len(domains), source)

    @staticmethod
    def _routes(explicit, domains, nexthops, origin):
        defaults = zip(map("@".__add__, domains), repeat(nexthops), repeat(origin))
        return chain(explicit, map(partial(tuple.__new__, Route), defaults))

    def __iter__(self):
        return iter(self._items) if self._items is not None else self._routes(*self._source)

    def nexthop_counts(self) -> Counter:
        """How many routes name each next-hop list, without making the default ones."""
        explicit, domains, nexthops, _ = self._source
        counts = nexthop_counts(explicit)
        if domains:
            counts[nexthops] += len(domains)
        return counts


def nexthop_counts(routes) -> Counter:
    """How many of these routes name each next-hop list, in first-use order (a new
    Counter): bulk-read rules and RELAY_HOST's default routes from their columns, without
    making them; any other sequence by one C loop."""
    if isinstance(routes, (Routes, Rules)):
        return routes.nexthop_counts()
    return Counter(map(itemgetter(1), routes))


@record
class Login:
    """Credentials Postfix presents, without the password: `key` is @domain or a next hop."""

    key: str
    user: str
    origin: Origin
    oauth2: str | None = None  # the provider when it logs in with XOAUTH2 and tokens


@record
class Plan:
    """Everything Postfix should end up with (see the module's docstring)."""

    tables: tuple[Table, ...] = ()
    params: dict[str, str] = field(default_factory=dict)
    services: tuple[Service, ...] = ()
    table_type: str = "hash"
    relayhost: tuple[NextHop, ...] = ()  # DEFAULT_RELAY_HOST, parsed
    routes: tuple[Route, ...] = ()
    logins: tuple[Login, ...] = ()
    warnings: tuple[str, ...] = ()
    optouts: tuple[Route, ...] = ()  # opted-out sender keys (they matter under @.domain)
    recipient_routes: tuple[Route, ...] = ()  # mail TO a domain: `sender` is the domain key
    # master.cf parameters of services relaykit does not own ({"name/type/param": value},
    # postconf -P), and the user's overrides these and `params` carry (core/overrides.py).
    service_params: dict[str, str] = field(default_factory=dict)
    overrides: tuple[Override, ...] = ()
    oauth2: tuple[OAuth2Credential, ...] = ()  # whose tokens relaykit fetches (run/oauth2.py)
    limits: tuple[RelayLimit, ...] = ()  # postfix-relay-limits.cf: each limited relay's transport
    # core/routing.Decision of every sender key, as core/plan.py wrote sender_transport from
    # them: the summary counts them instead of resolving 100k senders again. Derived data;
    # its order has no meaning (core/replan.py patches it).
    decisions: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def configured(self) -> bool:
        """A relay is configured: every relay plan (either store) enables the SMTP client's
        SASL; a node's own settings (mynetworks, submission) alone are not a relay."""
        return "smtp_sasl_auth_enable" in self.params

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)


def combine(*plans: Plan) -> Plan:
    """One plan from the plans of several features (relay, submission...).

    Two features setting one main.cf parameter to different values is a bug, not input:
    it raises ValueError.
    """
    params: dict[str, str] = {}
    for plan in plans:
        for name, value in plan.params.items():
            if params.setdefault(name, value) != value:
                raise ValueError(f"two plans set {name}: {params[name]!r} and {value!r}")
    first = plans[0]

    def joined(name: str) -> tuple:
        return _joined([getattr(p, name) for p in plans])

    return Plan(
        tables=joined("tables"),
        params=params,
        services=joined("services"),
        table_type=first.table_type,
        relayhost=first.relayhost,
        routes=joined("routes"),
        logins=joined("logins"),
        warnings=joined("warnings"),
        optouts=joined("optouts"),
        recipient_routes=joined("recipient_routes"),
        service_params={k: v for p in plans for k, v in p.service_params.items()},
        overrides=joined("overrides"),
        oauth2=joined("oauth2"),
        limits=joined("limits"),
        decisions=next((p.decisions for p in plans if p.decisions), {}),  # only the relay plan has them
    )


def _joined(parts: list[tuple]) -> tuple:
    """The tuples one after the other; the one non-empty tuple itself when only one is,
    as the relay plan's 100k routes are: no copy (a copy touches every route: ~10 ms)."""
    filled = [part for part in parts if part]
    if len(filled) == 1:  # tuple(a_tuple) is that tuple; lazy Routes or Lines stay lazy
        return filled[0] if isinstance(filled[0], Deferred) else tuple(filled[0])
    return tuple(item for part in filled for item in part)
