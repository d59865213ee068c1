"""`setup relay explain <sender> [<recipient>]`: the route Postfix takes, and why.

Read from the same routes `relaykit configure` computes (core/routing.py follows
Postfix's lookup order), so what it prints is what the tables say. Each next hop says
its own TLS mode and level (model/nexthop.py). Usernames only, never passwords.
"""

from __future__ import annotations

from relaykit.core.dkim import signing_key
from relaykit.core.rewrite import rewritten
from relaykit.core.routing import Resolution, resolve
from relaykit.inputs import validate
from relaykit.inputs.dmsfiles import load_rewrites, signing_keys
from relaykit.run.configure import routing

_LEVELS = {"encrypt": "a relay without TLS gets neither mail nor password",
           "secure": "and its certificate must verify for its name (RELAYKIT_TLS_SECURE)"}


def _tls(r: Resolution) -> str:
    levels = dict.fromkeys(hop.level for hop in r.nexthops)
    if len(levels) == 1:
        level = next(iter(levels))
        return f"required ({level}): {_LEVELS[level]}"
    return "required (" + ", ".join(f"{hop.level} for {hop}" for hop in r.nexthops) + \
        "): a relay without TLS gets neither mail nor password"


def describe(r: Resolution) -> list[str]:
    """The lines printed for one resolution (a pure function, for tests)."""
    lines = [f"sender:     {r.sender}"]
    if r.recipient:
        lines.append(f"recipient:  {r.recipient}")
    if r.direct:
        lines += ["route:      direct (the recipient's MX)",
                  f"transport:  {r.transport}",
                  "tls:        as main.cf smtp_tls_security_level (opportunistic by default)",
                  "login:      none (a recipient's MX never gets credentials)"]
    else:
        order = " (tried in order)" if len(r.nexthops) > 1 else ""
        lines += [f"route:      relay {', then '.join(r.nexthops)}{order}",
                  f"transport:  {r.transport}" + (" (implicit TLS from the first byte)" if r.implicit_tls
                                                   else " (STARTTLS)"),
                  f"tls:        {_tls(r)}"]
        for hop, login in zip(r.nexthops, r.logins):
            who = f"{login.user} (from {login.origin})" if login else "none (no credentials)"
            if login and login.oauth2:
                who += f", AUTH XOAUTH2 only, with a {login.oauth2} access token relaykit fetches and renews"
            lines.append(f"login:      {hop}: {who}")
        if r.limit:
            lines.append(f"limits:     {r.limit.describe()} (from {r.limit.origin})")
    why = str(r.origin) if r.origin else "no rule matched"
    if r.by_recipient:
        why += " (by recipient domain: wins over sender rules)"
    elif r.origin is not None and r.direct:
        why += " (opted out)"
    lines.append(f"matched:    {why}")
    return lines


def explain(args: list[str]) -> int:
    sender = validate.address(args[0], "sender", table_key=True)
    recipient = validate.address(args[1], "recipient", table_key=True) if len(args) > 1 else None
    settings, _, plan = routing()
    change = rewritten(load_rewrites(settings.config_dir), sender)
    if change:  # cleanup rewrites the sender before any route is looked up
        print(f"rewrite:    {sender} -> {change.apply(sender)} (from {change.origin}; routes and credentials "
              "see the new sender)")
        sender = change.apply(sender)
    print("\n".join(describe(resolve(plan, sender, recipient))))
    key = signing_key(signing_keys(settings), sender)  # OpenDKIM: by the From: domain
    if not settings.dkim_enabled:
        print("dkim:       unsigned: ENABLE_OPENDKIM=0")
    else:
        print(f"dkim:       signed d={key.domain} s={key.selector} ({key.path})" if key else
              f"dkim:       unsigned: no key for {sender.rpartition('@')[2]} (setup config dkim makes one)")
    return 0
