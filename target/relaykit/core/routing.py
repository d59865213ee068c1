"""Which route Postfix takes for one message, and which credential it presents: the one
place these rules live. `explain`, `list` and `setup relay test` resolve messages with
it, and core/plan.py writes the sender_transport table (or relay_transport) from the same
decisions, so what they say is what Postfix does.

Postfix's lookup order (postconf(5), SASL_README):
- transport_maps (relays by recipient domain): the recipient's domain, then `.parent`
  domains; it beats every sender rule. Credentials by next hop only.
- sender_dependent_default_transport_maps (sender_transport), then
  sender_dependent_relayhost_maps: the full sender address, then `@domain`, then the most
  specific `@.parent` wildcard; `DUNNO` ends the search. If nothing is found, `relayhost`;
  if that is empty, direct delivery to the recipient's MX.
- smtp_sasl_password_maps: with smtp_sender_dependent_authentication the sender address,
  `@domain`, `@.parent` wildcards; then the next hop (`[host]:port`), for each relay of a
  failover list.

Postfix searches the whole sender chain for credentials, whichever rule chose the relay.
relaykit scopes them: a sender-keyed credential belongs to the rule that routes it, so
it is offered only when it is found at or before the rule that decided the route (for
`billing@shop.example -> mailgun`, `billing@shop.example`'s credential but not
`@shop.example`'s: that one is for SES), or anywhere in the chain when no rule matched
and the mail goes to DEFAULT_RELAY_HOST. Otherwise the relay gets its own credential
(by next hop) or none. Postfix is made to agree by the transport each sender key gets in
sender_transport: `smtp`/relaykit_smtps look credentials up by sender, relaykit_relay(_smtps)
by relay only, and direct delivery goes through relaykit_direct, which never
authenticates: an MX is a third party and gets no credential, even over TLS.
A route whose credential is an OAuth2 one takes the XOAUTH2 twin of its client
(relaykit_oauth2...: core/routetables.py), which presents tokens and nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter

from relaykit.core.routetables import (DIRECT, client_transport, has_wildcard, limit_of, limited_transport, parents,
                                       recipient_transport)
from relaykit.model.entries import Origin, RelayLimit
from relaykit.model.nexthop import NextHop
from relaykit.model.plan import Login, Plan, Route, nexthop_counts
from relaykit.record import record


@record
class Resolution:
    """How mail from `sender` (to `recipient`) leaves: next hops, login, TLS, transport."""

    sender: str
    recipient: str | None
    nexthops: tuple[NextHop, ...]  # empty: direct delivery; each says its TLS mode and level
    origin: Origin | None  # the rule that chose the route (None: nothing matched)
    login: Login | None  # the credentials Postfix presents to the first hop (no password)
    tls_required: bool
    transport: str = "smtp"  # the master.cf service that delivers it
    logins: tuple[Login | None, ...] = ()  # per next hop, for failover lists
    implicit_tls: bool = False
    by_recipient: bool = False  # chosen by the recipient's domain (transport_maps)
    limit: RelayLimit | None = None  # postfix-relay-limits.cf's line for the first next hop

    @property
    def direct(self) -> bool:
        return not self.nexthops


def _sender_keys(sender: str) -> tuple[str, ...]:
    """Keys in Postfix's order: address, @domain, then @.parent wildcards, nearest first."""
    local, at, domain = sender.lower().rpartition("@")
    if not at:
        return (sender.lower(),)
    return (f"{local}@{domain}", f"@{domain}", *(f"@.{parent}" for parent in parents(domain)))


def key_chain(key: str) -> tuple[str, ...]:
    """The keys Postfix tries for a sender whose first match is the table key `key`:
    `key` itself, then the broader ones (`x@d` -> `@d`, `@.parent`...; `@.p` -> `@.parent`...)."""
    if key.startswith("@."):
        return (key, *(f"@.{parent}" for parent in parents(key[2:])))
    if key.startswith("@"):
        return (key, *(f"@.{parent}" for parent in parents(key[1:])))
    return _sender_keys(key)


@record
class Decision:
    """What Postfix does with mail whose sender chain is `keys` (recipient rules aside).
    Not which rule decided it (Router.found says): one Decision serves every sender key
    that goes the same way, so 100k routed domains share a handful."""

    nexthops: tuple[NextHop, ...]  # empty: direct delivery
    logins: tuple[Login | None, ...]  # per next hop
    relay_only: bool  # a broader sender's credential must not be looked up: by relay only
    limit: tuple[int, RelayLimit] | None = None  # the first next hop's limits: its own clients

    @property
    def transport(self) -> str:
        if not self.nexthops:
            return DIRECT
        oauth2 = bool(self.logins) and self.logins[0] is not None and self.logins[0].oauth2 is not None
        if self.limit and not oauth2:  # core/plan.py refuses a limit on an OAuth2 relay
            return limited_transport(self.limit[0], by_relay=self.relay_only)
        return client_transport(self.nexthops[0].implicit_tls, by_relay=self.relay_only, oauth2=oauth2)

    @property
    def table_value(self) -> str:
        """The sender_transport value: transport and next hops, or DUNNO (direct)."""
        return f"{self.transport}:{','.join(self.nexthops)}" if self.nexthops else "DUNNO"


DIRECTLY = Decision((), (), False)


class ByNexthops(Mapping):
    """Router.decide_every_key's answer when every key is a route that its next hops decide
    alone: a key's Decision is its next-hop list's, looked up when asked, not a dict of
    100k keys made in advance (~25 ms). `routes`: every key's route, in the plan's order;
    `by_hops`: each next-hop list's Decision (sender_transport is then a function of
    relayhost_map's value: core/routetables.py, RELAY_TRANSPORT); `index()`: the routes by
    sender key, asked for only when a key is looked up (configure's summary walks the
    routes instead)."""

    __slots__ = ("routes", "by_hops", "_index", "_by_key")

    def __init__(self, routes: Sequence[Route], by_hops: dict[tuple[NextHop, ...], Decision],
                 index: Callable[[], Mapping[str, Route]] | None = None) -> None:
        self.routes, self.by_hops, self._index, self._by_key = routes, by_hops, index, None

    def _key_index(self) -> Mapping[str, Route]:
        if self._by_key is None:
            routes = self.routes
            self._by_key = self._index() if self._index else dict(zip(map(itemgetter(0), routes), routes))
        return self._by_key

    def __getitem__(self, key: str) -> Decision:
        return self.by_hops[self._key_index()[key].nexthops]

    def __iter__(self):
        return map(itemgetter(0), self.routes)

    def __len__(self) -> int:
        return len(self.routes)

    def __contains__(self, key: object) -> bool:
        return key in self._key_index()

    def values(self):  # type: ignore[override]  # one pass, by C loops (an iterator, not a view)
        return map(self.by_hops.__getitem__, map(itemgetter(1), self.routes))

    def items(self):  # type: ignore[override]  # in the routes' order
        return zip(map(itemgetter(0), self.routes), self.values())

    def counted(self) -> Counter:
        """How many keys each Decision decides, by its id: the routes' next-hop lists
        counted by one C loop (~2x faster than over the Decisions), each count then given
        to its list's Decision (bulk-read rules and RELAY_HOST's default routes counted
        from their columns, without being made)."""
        counts: Counter = Counter()
        for nexthops, number in nexthop_counts(self.routes).items():
            counts[id(self.by_hops[nexthops])] += number
        return counts


class Router:
    """resolve() for many messages: the plan's rules indexed once (linear, not quadratic)."""

    def __init__(self, plan: Plan, routes: dict[str, Route] | None = None, wildcards: bool | None = None,
                 lists: Iterable[tuple[NextHop, ...]] | None = None) -> None:
        """`routes`: the plan's routes and opt-outs by sender key, `wildcards`: whether any
        of them is an @.domain wildcard, and `lists`: the routes' distinct next-hop lists,
        when the caller knows (100k keys)."""
        self.plan = plan
        self.lists = lists
        self._routes = routes
        self.recipient_routes = {route.sender: route for route in plan.recipient_routes}
        self.logins = {entry.key: entry for entry in plan.logins}
        self.sender_dependent = plan.params.get("smtp_sender_dependent_authentication") == "yes"
        # without any @.wildcard rule or credential, an @domain key's chain is the key alone
        if wildcards is None:
            wildcards = has_wildcard(routes if routes is not None else map(itemgetter(0), chain(plan.optouts,
                                                                                                plan.routes)))
        self.wildcards = wildcards or has_wildcard(self.logins)
        # sender-keyed credentials are looked up: then the chain beyond a route's key matters
        self.sender_keyed = self.sender_dependent and any("@" in key for key in self.logins)
        self._decisions: dict[tuple, Decision] = {}
        self._direct = False  # whether DIRECTLY was decided for some key

    @property
    def routes(self) -> dict[str, Route]:
        """The plan's routes and opt-outs by sender key: the caller's, or made when first
        asked for (configure's decisions at 100k routes need none: ByNexthops)."""
        if self._routes is None:
            plan = self.plan
            self._routes = dict(zip(map(itemgetter(0), chain(plan.optouts, plan.routes)),
                                    chain(plan.optouts, plan.routes)))
        return self._routes

    def _recipient_route(self, recipient: str | None) -> Route | None:
        if not recipient or not self.recipient_routes:
            return None
        domain = recipient.lower().rpartition("@")[2]
        keys = (domain, *(f".{parent}" for parent in parents(domain)))
        return next((self.recipient_routes[k] for k in keys if k in self.recipient_routes), None)

    def found(self, keys: tuple[str, ...]) -> tuple[int, Route] | None:
        """The first route or opt-out of a sender chain, with its place in the chain."""
        routes = self.routes
        return next(((i, routes[k]) for i, k in enumerate(keys) if k in routes), None)

    def chain(self, key: str) -> tuple[str, ...]:
        """key_chain(key), short when nothing broader than an @domain key can match."""
        return (key,) if not self.wildcards and key[:1] == "@" else key_chain(key)

    def decide_every_key(self) -> Mapping[str, Decision]:
        """The Decision of every sender key relaykit writes into sender_transport: opt-outs,
        routes, sender-keyed credentials, in that order. The routes their next hops decide
        alone (_by_nexthops) by C loops: 100k routes."""
        plan = self.plan
        by_hops = self._by_nexthops(map(itemgetter(1), plan.routes) if self.lists is None else self.lists)
        sender_logins = [login.key for login in plan.logins if "@" in login.key]
        if by_hops and not plan.optouts and not sender_logins:  # the routes alone
            return ByNexthops(plan.routes, by_hops, lambda: self.routes)
        keys = dict.fromkeys(chain(map(itemgetter(0), plan.optouts), map(itemgetter(0), plan.routes), sender_logins))
        if not by_hops:  # no route its next hops decide alone: each key's chain decides it
            return dict(zip(keys, map(self.decide, map(self.chain, keys))))
        decisions: dict[str, Decision | None] = dict.fromkeys(keys)
        decisions.update(zip(map(itemgetter(0), plan.routes), map(by_hops.__getitem__, map(itemgetter(1), plan.routes))))
        if len(decisions) > len(plan.routes):  # opt-outs, credentials
            for key in [key for key, decision in decisions.items() if decision is None]:
                decisions[key] = self.decide_key(key)
        return decisions  # type: ignore[return-value]

    def distinct(self) -> list[Decision]:
        """Every different Decision this router has made: a handful, whatever the keys."""
        return [*self._decisions.values(), *((DIRECTLY,) if self._direct else ())]

    def decide_key(self, key: str) -> Decision:
        """decide(key_chain(key)) for a table key; at once for a route its next hops decide
        alone (_by_nexthops)."""
        route = self.routes.get(key)
        by_hops = self._by_nexthops((route.nexthops,)) if route is not None else None
        return by_hops[route.nexthops] if by_hops else self.decide(self.chain(key))

    def _by_nexthops(self, lists: Iterable[tuple[NextHop, ...]]) -> dict[tuple[NextHop, ...], Decision]:
        """The Decision of a route with each of these next-hop lists when no credential is
        keyed by sender: its next hops alone, as nothing broader in its chain can matter.
        Empty when credentials are keyed by sender (the chain decides)."""
        if self.sender_keyed:
            return {}
        return {nexthops: self._decision(nexthops, None, False) for nexthops in set(lists) if nexthops}

    def decide(self, keys: tuple[str, ...]) -> Decision:
        """The route and the credentials for a sender chain (see the module's docstring)."""
        if len(keys) == 1:  # the common @domain key: one lookup, no generator
            route = self.routes.get(keys[0])
            found = (0, route) if route is not None else None
        else:
            found = self.found(keys)
            route = found[1] if found else None
        if route and route.nexthops:
            nexthops, scope = route.nexthops, keys[:found[0] + 1]
        elif self.plan.relayhost:  # no rule, or an opt-out: DEFAULT_RELAY_HOST
            nexthops, scope = self.plan.relayhost, (keys[:found[0] + 1] if found else keys)
        else:
            self._direct = True
            return DIRECTLY
        if not self.sender_dependent:  # no sender-keyed credentials at all
            return self._decision(nexthops, None, False)
        sender_login = next((self.logins[k] for k in scope if k in self.logins), None)
        if sender_login:
            return self._decision(nexthops, sender_login, False)
        hidden = any(k in self.logins for k in keys[len(scope):])  # another rule's credential
        return self._decision(nexthops, None, hidden)

    def _decision(self, nexthops: tuple[NextHop, ...], sender_login: Login | None, relay_only: bool) -> Decision:
        """One shared Decision per way to go (next hops, credential, lookup)."""
        memo = (nexthops, id(sender_login), relay_only)  # a login lives as long as the plan
        decision = self._decisions.get(memo)
        if decision is None:
            logins = (sender_login,) * len(nexthops) if sender_login else \
                tuple(self.logins.get(hop) for hop in nexthops)
            decision = Decision(nexthops, logins, relay_only, limit_of(nexthops, self.plan.limits))
            self._decisions[memo] = decision
        return decision

    def resolve(self, sender: str, recipient: str | None = None) -> Resolution:
        by_recipient = self._recipient_route(recipient)
        if by_recipient:  # its transport looks credentials up by next hop only
            hops = by_recipient.nexthops
            login = self.logins.get(hops[0])
            limit = limit_of(hops, self.plan.limits)
            transport = limited_transport(limit[0], by_relay=True) if limit and not (login and login.oauth2) \
                else recipient_transport(hops[0].implicit_tls, bool(login and login.oauth2))
            return Resolution(sender, recipient, hops, by_recipient.origin, login, tls_required=True,
                              transport=transport,
                              logins=tuple(self.logins.get(hop) for hop in hops),
                              implicit_tls=hops[0].implicit_tls, by_recipient=True,
                              limit=limit[1] if limit else None)
        keys = _sender_keys(sender)
        decision = self.decide(keys)
        found = self.found(keys)
        route, hops = found[1] if found else None, decision.nexthops
        origin = route.origin if route and (route.nexthops or not hops) else (
            Origin("DEFAULT_RELAY_HOST") if hops else None)
        return Resolution(sender, recipient, hops, origin, decision.logins[0] if hops else None,
                          tls_required=bool(hops), logins=decision.logins,
                          transport=decision.transport if self.plan.configured else "smtp",  # no relay: Postfix's own
                          implicit_tls=bool(hops) and hops[0].implicit_tls,
                          limit=decision.limit[1] if decision.limit else None)


def resolve(plan: Plan, sender: str, recipient: str | None = None) -> Resolution:
    return Router(plan).resolve(sender, recipient)
