"""Which route Postfix takes for one message, read from the plan: `setup relay test`
and `explain` use this instead of re-deriving the rules.

It follows Postfix's own lookup order (postconf(5)):
- transport_maps (relays by recipient domain): the recipient's domain, then `.parent`
  domains; it beats every sender rule. Credentials by next hop only (see routetables.py).
- sender_dependent_default_transport_maps / sender_dependent_relayhost_maps (the same
  routes): the full sender address, then `@domain`, then the most specific `@.parent`
  wildcard (an opted-out `@domain` under a wildcard stops the search: DUNNO); if nothing
  is found, `relayhost` (on port 465/2465 through the implicit-TLS transport, by a
  catch-all line); if that is empty, direct delivery to the recipient's MX.
- smtp_sasl_password_maps with smtp_sender_dependent_authentication: the sender
  address, then `@domain`, then `@.parent` wildcards, then the next hop (`[host]:port`),
  looked up again for each relay of a failover list.
- TLS: relays are in tls_policy with their hop's level (`encrypt`, or `secure` for
  RELAYKIT_TLS_SECURE); direct delivery is main.cf's level.
"""

from __future__ import annotations

from dataclasses import dataclass

from relaykit.core.routetables import parents, sender_transport
from relaykit.model.entries import Origin
from relaykit.model.nexthop import NextHop
from relaykit.model.plan import Login, Plan, Route


@dataclass(frozen=True)
class Resolution:
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

    @property
    def direct(self) -> bool:
        return not self.nexthops


def _sender_keys(sender: str) -> tuple[str, ...]:
    """Keys in Postfix's order: address, @domain, then @.parent wildcards, nearest first."""
    local, at, domain = sender.lower().rpartition("@")
    if not at:
        return (sender.lower(),)
    return (f"{local}@{domain}", f"@{domain}", *(f"@.{parent}" for parent in parents(domain)))


class Router:
    """resolve() for many messages: the plan's rules indexed once (linear, not quadratic)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.routes = {route.sender: route for route in (*plan.optouts, *plan.routes)}
        self.recipient_routes = {route.sender: route for route in plan.recipient_routes}
        self.logins = {entry.key: entry for entry in plan.logins}
        self.sender_dependent = plan.params.get("smtp_sender_dependent_authentication") == "yes"

    def _recipient_route(self, recipient: str | None) -> Route | None:
        if not recipient or not self.recipient_routes:
            return None
        domain = recipient.lower().rpartition("@")[2]
        keys = (domain, *(f".{parent}" for parent in parents(domain)))
        return next((self.recipient_routes[k] for k in keys if k in self.recipient_routes), None)

    def resolve(self, sender: str, recipient: str | None = None) -> Resolution:
        plan = self.plan
        by_recipient = self._recipient_route(recipient)
        route = by_recipient or next((self.routes[k] for k in _sender_keys(sender) if k in self.routes), None)
        if route and route.nexthops:
            nexthops, origin, implicit = route.nexthops, route.origin, route.implicit_tls
        elif plan.relayhost:
            nexthops, origin = plan.relayhost, Origin("DEFAULT_RELAY_HOST")
            implicit = plan.relayhost[0].implicit_tls
        else:
            nexthops, origin, implicit = (), route.origin if route else None, False
        sender_keys = _sender_keys(sender) if self.sender_dependent and not by_recipient else ()

        def login_for(hop: str) -> Login | None:
            return next((self.logins[k] for k in (*sender_keys, hop) if k in self.logins), None)

        logins = tuple(login_for(hop) for hop in nexthops)
        transport = sender_transport(implicit, recipient=bool(by_recipient)) if nexthops else "smtp"
        return Resolution(sender, recipient, nexthops, origin, logins[0] if logins else None,
                          tls_required=bool(nexthops), transport=transport, logins=logins,
                          implicit_tls=implicit, by_recipient=bool(by_recipient))


def resolve(plan: Plan, sender: str, recipient: str | None = None) -> Resolution:
    return Router(plan).resolve(sender, recipient)
