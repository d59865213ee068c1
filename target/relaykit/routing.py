"""Which route Postfix takes for one message, read from the plan: `setup relay test`
and `explain` use this instead of re-deriving the rules.

It follows Postfix's own lookup order (postconf(5)):
- sender_dependent_relayhost_maps: the full sender address, then `@domain`; if neither
  is found, `relayhost`; if that is empty, direct delivery to the recipient's MX.
- smtp_sasl_password_maps with smtp_sender_dependent_authentication: the sender
  address, then `@domain`, then the next hop (`[host]:port`).
- TLS: relays are in tls_policy with `encrypt`; direct delivery is main.cf's level.
"""

from __future__ import annotations

from dataclasses import dataclass

from relaykit.configfiles import Origin
from relaykit.plan import Login, Plan


@dataclass(frozen=True)
class Resolution:
    sender: str
    recipient: str | None
    nexthops: tuple[str, ...]  # empty: direct delivery
    origin: Origin | None  # the rule that chose the route (None: nothing matched)
    login: Login | None  # the credentials Postfix presents to the first hop (no password)
    tls_required: bool

    @property
    def direct(self) -> bool:
        return not self.nexthops


def _sender_keys(sender: str) -> tuple[str, ...]:
    local, at, domain = sender.rpartition("@")
    return (sender.lower(), f"@{domain.lower()}") if at else (sender.lower(),)


def resolve(plan: Plan, sender: str, recipient: str | None = None) -> Resolution:
    routes = {route.sender: route for route in plan.routes}
    route = next((routes[k] for k in _sender_keys(sender) if k in routes), None)
    if route:
        nexthops, origin = route.nexthops, route.origin
    elif plan.relayhost:
        nexthops, origin = plan.relayhost, Origin("DEFAULT_RELAY_HOST")
    else:
        nexthops, origin = (), None
    login = None
    if nexthops:
        logins = {entry.key: entry for entry in plan.logins}
        keys = (*_sender_keys(sender), nexthops[0]) if plan.params.get(
            "smtp_sender_dependent_authentication") == "yes" else (nexthops[0],)
        login = next((logins[k] for k in keys if k in logins), None)
    return Resolution(sender, recipient, nexthops, origin, login, tls_required=bool(nexthops))
