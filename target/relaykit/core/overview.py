"""Who sends through which relay, as whom: the rows of `setup relay list` and the
start-up summary. Read from the plan through routing.resolve, never re-derived, so what
is shown is what Postfix does. Passwords are never part of a row, only whether one is set.
"""

from __future__ import annotations

from dataclasses import dataclass

from relaykit.core.routing import Router
from relaykit.model.entries import ConfigFiles
from relaykit.model.plan import Plan

# The row for mail whose sender has no entry of its own (it goes to `relayhost`).
OTHER_SENDERS = "*"


@dataclass(frozen=True)
class Row:
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
    by_relay: dict[str, list[Row]] = {}
    for row in rows(plan):
        by_relay.setdefault(",".join(row.relays) or "direct (no relay)", []).append(row)
    parts = []
    for relay, group in by_relay.items():
        senders = [r for r in group if r.sender != OTHER_SENDERS]
        what = []
        if senders:
            what.append(f"{len(senders)} sender(s), {sum(1 for r in senders if r.user)} with credentials")
        for row in group:
            if row.sender == OTHER_SENDERS:
                what.append(f"every other sender, {'with' if row.user else 'without'} credentials")
        parts.append(f"{relay} <- {' + '.join(what)}")
    return f"relay: {'; '.join(parts) or 'no sender routed'}; {len(plan.logins)} credential(s)"


def describe(plan: Plan) -> list[str]:
    """One line per sender for LOG_LEVEL=debug: `@shop.example -> [relay]:587 as AKIA... (file:line)`."""
    return [f"route {row.sender} -> {','.join(row.relays) or 'direct (MX)'} "
            f"{'as ' + row.user if row.user else 'without login'} ({row.rule})" for row in rows(plan)]
