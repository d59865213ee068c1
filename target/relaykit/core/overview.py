"""Who sends through which relay, as whom: the rows of `setup relay list` and the
start-up summary. Read from the plan through routing.resolve, never re-derived, so what
is shown is what Postfix does. Passwords are never part of a row, only whether one is set.
"""

from __future__ import annotations

from collections import Counter
from itertools import chain
from operator import attrgetter

from relaykit.core.routing import ByNexthops, Router
from relaykit.model.entries import ConfigFiles
from relaykit.model.plan import Plan
from relaykit.record import record

# The row for mail whose sender has no entry of its own (it goes to `relayhost`).
OTHER_SENDERS = "*"


@record
class Row:
    """One line of `setup relay list`: a sender, its relays, and the rule and login."""

    sender: str  # @domain, an address, or OTHER_SENDERS
    relays: tuple[str, ...]  # empty: direct delivery to the recipient's MX
    rule: str  # where the route comes from (file:line or a variable)
    user: str | None  # the SASL login presented to the relay, None: no AUTH
    credentials: str | None  # where the login comes from
    oauth2: str | None = None  # the provider when the login is XOAUTH2 with tokens relaykit fetches

    @property
    def tls(self) -> str | None:
        """The tls_policy level(s) of the relays (model/nexthop.py); None: direct delivery,
        main.cf's level."""
        return ", ".join(dict.fromkeys(hop.level for hop in self.relays)) or None

    @property
    def direct(self) -> bool:
        return not self.relays

    def as_dict(self) -> dict:
        return {"sender": self.sender, "relays": list(self.relays), "direct": self.direct,
                "rule": self.rule, "user": self.user,
                "password": "********" if self.user else None, "credentials": self.credentials,
                "tls": self.tls, "oauth2": self.oauth2}

    @property
    def secret(self) -> str:
        """What stands for the password in the table: masked, and which kind it is."""
        if not self.user:
            return "-"
        return f"******** (XOAUTH2 {self.oauth2} token)" if self.oauth2 else "********"


def rows(plan: Plan, files: ConfigFiles | None = None) -> list[Row]:
    """One row per sender key Postfix can match, in table order, then the catch-all row.

    Opted-out domains (only in the files: the plan drops them) and sender domains that
    have credentials but no route of their own get a row too, resolved like the others.
    """
    if not plan.configured:
        return []
    senders = [route.sender for route in plan.routes]
    if files is not None:
        senders += [rule.sender for rule in files.relay_rules if rule.opted_out]
    senders += [login.key for login in plan.logins if login.key.startswith("@")]
    if plan.relayhost:
        senders.append(OTHER_SENDERS)
    router = Router(plan)  # indexed once: rows() stays linear in the number of senders
    opted_out = {r.sender: r for r in files.relay_rules if r.opted_out} if files is not None else {}
    found = []
    for sender in dict.fromkeys(senders):
        resolution = router.resolve(sender)
        rule = str(resolution.origin) if resolution.origin else "no relay"
        if resolution.direct and sender in opted_out:
            rule = f"{opted_out[sender].origin} (opted out)"
        login = resolution.login
        found.append(Row(sender, resolution.nexthops, rule, login.user if login else None,
                         str(login.origin) if login else None, login.oauth2 if login else None))
    return found


def summary(plan: Plan) -> str:
    """One log line: how many senders go to which relay, how many with credentials, e.g.
    `relay: [smtp.mailgun.org]:587 <- 2 sender(s), 2 with credentials; [ses]:587 <- every
    other sender, with credentials; 3 credential(s)`."""
    if not plan.configured:
        return "no relay configured: outbound mail is delivered directly"
    # The senders of rows(plan), counted by the decision sender_transport was written from
    # (what resolving each one finds: core/routing.py); a plan without them (the PostgreSQL
    # store's) has them decided here. The decisions are shared, so 100k senders are
    # counted by a C loop over the handful of them, and over the dict's values: reading
    # 100k keys costs ~20 ms (a cache miss each), so the few keys that are no row are
    # taken off instead.
    decisions = plan.decisions or Router(plan).decide_every_key()
    logins = [login.key for login in plan.logins if login.key.startswith("@")]
    decided = decisions.counted() if isinstance(decisions, ByNexthops) else Counter(map(id, decisions.values()))
    decided.subtract(map(id, map(decisions.__getitem__, _not_rows(plan, logins))))
    decided = +decided  # without the decisions only keys outside the rows had
    counts: dict[tuple, list[int]] = {}  # (relays, sender row?) -> [senders, with credentials]
    if isinstance(decisions, ByNexthops):  # every row is a route (no sender-keyed login), in order
        rows = decisions.items()
    else:
        rows = ((sender, decisions[sender]) for sender in chain(map(attrgetter("sender"), plan.routes), logins))
    for _, decision in rows:  # the rows' order
        if not decided:
            break  # every sender is counted
        if id(decision) not in decided:
            continue  # counted with the first sender decided the same way
        hops, number = decision.nexthops, decided.pop(id(decision))
        count = counts.setdefault((hops, True), [0, 0])
        count[0] += number
        count[1] += number if hops and decision.logins[0] is not None else 0
    if plan.relayhost:
        other = Router(plan).resolve(OTHER_SENDERS)
        counts.setdefault((other.nexthops, False), [0, int(other.login is not None)])
    by_relay: dict[str, list[str]] = {}
    for (hops, is_sender), (number, with_login) in counts.items():
        what = f"{number} sender(s), {with_login} with credentials" if is_sender else \
            f"every other sender, {'with' if with_login else 'without'} credentials"
        by_relay.setdefault(",".join(hops) or "direct (no relay)", []).append(what)
    parts = [f"{relay} <- {' + '.join(what)}" for relay, what in by_relay.items()]
    return f"relay: {'; '.join(parts) or 'no sender routed'}; {len(plan.logins)} credential(s)"


def _not_rows(plan: Plan, logins: list[str]) -> set[str]:
    """The keys of a plan's decisions that are no sender of rows(plan): opt-outs and
    credentials by address, unless a route or an @domain credential has the same key."""
    keys = {o.sender for o in plan.optouts}
    addresses = {login.key for login in plan.logins if "@" in login.key} - set(logins)
    if addresses:  # rare: a pass over the routes
        addresses -= {route.sender for route in plan.routes if route.sender in addresses}
    return (keys | addresses) - set(logins)


def describe(plan: Plan) -> list[str]:
    """One line per sender for LOG_LEVEL=debug: `@shop.example -> [relay]:587 as AKIA... (file:line)`."""
    return [f"route {row.sender} -> {','.join(row.relays) or 'direct (MX)'} "
            f"{'as ' + row.user if row.user else 'without login'} ({row.rule})" for row in rows(plan)]
