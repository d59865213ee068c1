"""`setup relay explain <sender> [<recipient>]`: the route Postfix takes, and why.

Read from the same plan `relaykit configure` applies (routing.resolve follows Postfix's
lookup order), so what it prints is what the tables say. Usernames only, never passwords.
"""

from __future__ import annotations

from relaykit.core.routing import Resolution


def describe(r: Resolution) -> list[str]:
    """The lines printed for one resolution (a pure function, for tests)."""
    lines = [f"sender:     {r.sender}"]
    if r.recipient:
        lines.append(f"recipient:  {r.recipient}")
    if r.direct:
        lines += ["route:      direct (the recipient's MX)",
                  "transport:  smtp",
                  "tls:        as main.cf smtp_tls_security_level (opportunistic by default)"]
    else:
        order = " (tried in order)" if len(r.nexthops) > 1 else ""
        lines += [f"route:      relay {', then '.join(r.nexthops)}{order}",
                  f"transport:  {r.transport}" + (" (implicit TLS from the first byte)" if r.implicit_tls
                                                   else " (STARTTLS)"),
                  "tls:        required (encrypt): a relay without TLS gets neither mail nor password"]
        for hop, login in zip(r.nexthops, r.logins):
            who = f"{login.user} (from {login.origin})" if login else "none (no credentials)"
            lines.append(f"login:      {hop}: {who}")
    why = str(r.origin) if r.origin else "no rule matched"
    if r.by_recipient:
        why += " (by recipient domain: wins over sender rules)"
    elif r.origin is not None and r.direct:
        why += " (opted out)"
    lines.append(f"matched:    {why}")
    return lines


def explain(args: list[str]) -> int:
    from relaykit.run.configure import prepare
    from relaykit.core.routing import resolve
    from relaykit.inputs import validate

    sender = args[0]
    if "@" not in sender:
        raise validate.RelaykitError(f"sender must be an address (user@domain), not {sender!r}")
    local, _, domain = sender.rpartition("@")
    sender = f"{validate.local_part(local, 'sender')}@{validate.domain(domain, 'sender')}"
    recipient = None
    if len(args) > 1:
        local, at, domain = args[1].rpartition("@")
        if not at:
            raise validate.RelaykitError(f"recipient must be an address (user@domain), not {args[1]!r}")
        recipient = f"{validate.local_part(local, 'recipient')}@{validate.domain(domain, 'recipient')}"
    plan = prepare().plan
    print("\n".join(describe(resolve(plan, sender, recipient))))
    return 0
