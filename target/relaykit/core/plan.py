"""The plan: what Postfix should end up with, computed from settings and parsed files.

Pure: no I/O, no environment. run/apply.py carries a plan out; `setup relay list/explain`
read it. The rules are docker-mailserver's (target/scripts/helpers/relay.sh), kept:

- relayhost_map (sender_dependent_relayhost_maps, postconf(5)): Postfix looks up the
  envelope sender address, then `@domain`, and sends the mail to the next hop found,
  overriding `relayhost`. Lines: the explicit relaymap entries, then `[RELAY_HOST]:port`
  for every managed domain (accounts + virtual) that has no entry and is not opted out.
- sasl_passwd (smtp_sasl_password_maps): with smtp_sender_dependent_authentication the
  SMTP client looks up the sender, then `@domain`, then the next hop, so credentials can
  be per sender domain or per relay. The file's entries, then RELAY_USER's for the default
  relay (DEFAULT_RELAY_HOST if set, else RELAY_HOST).
- relayhost = DEFAULT_RELAY_HOST.

And improved on: DMS forces smtp_tls_security_level = encrypt for ALL mail. Here
tls_policy (smtp_tls_policy_maps) requires TLS for each relay next hop only, so
credentials never travel in clear and a relay without TLS gets no mail (it is deferred),
while direct delivery stays as main.cf has it (opportunistic).

One pass over the inputs, set/dict lookups only: linear in the number of domains (DMS
greps the map file once per domain).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from relaykit.core import routetables
from relaykit.core.routing import Router, key_chain
from relaykit.errors import ConfigError, ConfigErrors, RelaykitError
from relaykit.model.entries import ConfigFiles, Credential, Origin, RelayRule
from relaykit.model.nexthop import NextHop
from relaykit.model.plan import RELAYHOST_MAP, SASL_PASSWD, TLS_POLICY, Login, Plan, Route, Table
from relaykit.model.settings import Settings


def _explicit_routes(rules: tuple[RelayRule, ...]) -> tuple[dict[str, RelayRule], list[RelaykitError]]:
    """The relaymap entries by sender key; a key given twice with different values is an error."""
    by_sender: dict[str, RelayRule] = {}
    errors: list[RelaykitError] = []
    for rule in rules:
        first = by_sender.setdefault(rule.sender, rule)
        if first is not rule and first.nexthops != rule.nexthops:
            what = "opted out" if first.opted_out else f"routed to {first.value}"
            errors.append(ConfigError(f"{rule.sender} is {what} at {first.origin} already", rule.origin))
    return by_sender, errors


def _managed_domains(files: ConfigFiles) -> dict[str, Origin]:
    """Sender domains of postfix-accounts.cf and postfix-virtual.cf, first origin of each."""
    domains: dict[str, Origin] = {}
    for entry in (*files.accounts, *files.aliases):
        domains.setdefault(entry.domain, entry.origin)
    return domains


def environment_credentials(settings: Settings) -> list[Credential]:
    """RELAY_USER's login, for each next hop of the default relay (both stores)."""
    env = settings.relay_credentials
    if not env:
        return []
    user, password = env
    return [Credential(hop, user, password, Origin("RELAY_USER")) for hop in settings.default_relay]


def _credentials(settings: Settings, files: ConfigFiles) -> tuple[list[Credential], list[str], list[RelaykitError]]:
    creds: dict[str, Credential] = {}
    warnings: list[str] = []
    errors: list[RelaykitError] = []
    for cred in files.credentials:
        first = creds.setdefault(cred.key, cred)
        if first is not cred and (first.user, first.password) != (cred.user, cred.password):
            errors.append(ConfigError(f"{cred.key} has credentials at {first.origin} already", cred.origin))
    for cred in environment_credentials(settings):
        if cred.key in creds:
            warnings.append(f"RELAY_USER is not used for {cred.key}: {creds[cred.key].origin} sets its credentials")
        else:
            creds[cred.key] = cred
    return list(creds.values()), warnings, errors


# The SMTP client's SASL settings for relays, whichever store holds the routes. Relays'
# tls_policy already demands TLS; `noplaintext` is the second wall: no PLAIN or LOGIN on
# a session without TLS, whatever else goes wrong (postconf(5) smtp_sasl_security_options).
SASL_CLIENT = {
    "smtp_sasl_auth_enable": "yes",
    "smtp_sasl_security_options": "noplaintext, noanonymous",
    "smtp_sasl_tls_security_options": "noanonymous",
}


def build(settings: Settings, files: ConfigFiles, table_type: str) -> Plan:
    """The complete plan, or ConfigError(s) naming every offending file:line."""
    relay_configured = bool(settings.default_relay_host or settings.relay_host or files.relaymap_exists
                            or files.recipient_rules)
    if not relay_configured:
        warnings = ()
        if files.sasl_exists or settings.relay_credentials:
            warnings = ("relay credentials are given but no relay is configured "
                        "(RELAY_HOST, DEFAULT_RELAY_HOST or postfix-relaymap.cf): they are not used",)
        return Plan(table_type=table_type, warnings=warnings)

    explicit, errors = _explicit_routes(files.relay_rules)
    creds, warnings, cred_errors = _credentials(settings, files)
    errors += cred_errors
    recipients, recipient_errors = _explicit_routes(files.recipient_rules)
    errors += recipient_errors
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)

    routes = [Route(r.sender, r.nexthops, r.origin) for r in explicit.values() if not r.opted_out]
    default = settings.relay_nexthop
    if default:
        origin, hops = Origin("RELAY_HOST"), (default,)  # shared by every default route
        defaults = [
            Route(f"@{domain}", hops, origin)
            for domain in sorted(_managed_domains(files))
            if f"@{domain}" not in explicit and not routetables.under_wildcard(domain, explicit)
        ]
        routes += defaults

    relayhost = settings.default_relay if settings.default_relay_host else ()
    hops = dict.fromkeys(hop for route in routes for hop in route.nexthops)
    hops.update(dict.fromkeys(relayhost))
    hops.update(dict.fromkeys(hop for r in files.recipient_rules for hop in r.nexthops))
    # A bare `shop.example user:pass` is a next-hop key to Postfix (mail TO shop.example),
    # and DMS users mean @shop.example by it: refuse it unless a route relays through it.
    stray = [ConfigError(f"{c.key} is neither a sender (@domain, user@domain) nor the relay of any route: "
                         f"write @{c.key.host} for credentials by sender domain, or [{c.key.host}]:port for a relay",
                         c.origin)
             for c in creds if isinstance(c.key, NextHop) and not c.key.bracketed and c.key not in hops]
    if stray:
        raise stray[0] if len(stray) == 1 else ConfigErrors(stray)
    hops.update(dict.fromkeys(c.key for c in creds if "@" not in c.key))  # NextHops: validated keys

    directory = settings.mail_config

    def ref(name: str) -> str:
        return f"{table_type}:{Path(directory, name)}"

    tables = (
        Table(RELAYHOST_MAP, tuple(f"{r.sender} {','.join(r.nexthops)}" for r in routes
                                   if not r.sender.startswith("@."))),  # wildcards: routetables
        Table(SASL_PASSWD, tuple(f"{c.key} {c.user}:{c.password.reveal()}" for c in creds), secret=True),
        # the level each hop was parsed with (model/nexthop.py: encrypt, or secure)
        Table(TLS_POLICY, tuple(f"{hop} {hop.level}" for hop in hops)),
    )
    params: dict[str, str] = {}
    if settings.default_relay_host:
        params["relayhost"] = settings.default_relay_host
    params.update({
        "sender_dependent_relayhost_maps": ref(RELAYHOST_MAP),
        "smtp_sasl_password_maps": ref(SASL_PASSWD),
        **SASL_CLIENT,
        "smtp_tls_policy_maps": ref(TLS_POLICY),
    })
    if files.sasl_exists or settings.relay_host:
        params["smtp_sender_dependent_authentication"] = "yes"

    for hop in settings.tls_secure:
        if hop not in hops:
            warnings.append(f"RELAYKIT_TLS_SECURE: {hop} is not a relay next hop: it has no effect")
    optouts = tuple(Route(r.sender, (), r.origin) for r in explicit.values() if r.opted_out)
    recipient_routes = tuple(Route(r.sender, r.nexthops, r.origin) for r in recipients.values())
    plan = Plan(
        params=params,
        table_type=table_type,
        relayhost=relayhost,
        routes=tuple(routes),
        logins=tuple(Login(c.key, c.user, c.origin) for c in creds),
        warnings=tuple(warnings),
        optouts=optouts,
        recipient_routes=recipient_routes,
        limits=files.relay_limits,
    )
    # Every sender key gets the transport and next hops routing.Router decides for it:
    # what Postfix does is then what explain says (core/routing.py, core/routetables.py).
    router = Router(plan)
    keys = dict.fromkeys([*(r.sender for r in optouts), *(r.sender for r in routes),
                          *(c.key for c in creds if "@" in c.key)])
    decisions = {key: router.decide(key_chain(key)) for key in keys}
    extra = routetables.build([(k, d.table_value) for k, d in decisions.items()], optouts, routes,
                              recipient_routes, creds, relayhost, table_type, directory, files.relay_limits)
    plan = replace(plan, tables=tables + extra.tables, params={**params, **extra.params}, services=extra.services,
                   warnings=plan.warnings + extra.warnings)
    direct = _reaching_direct(decisions)
    unused = [login for login in plan.logins if login.key in direct]
    if not unused:
        return plan
    return replace(plan, warnings=plan.warnings + tuple(
        f"{login.origin}: {login.key} has credentials but (some of) its mail is delivered directly, "
        "where no credentials are sent (a recipient's MX is not your relay): give it a route, or key "
        "them by relay ([host]:port) instead" for login in unused))


def _reaching_direct(decisions: dict) -> set[str]:
    """Sender keys some of whose mail goes to an MX: each key decided direct, and every
    broader key of its chain (one pass: linear in the number of keys)."""
    return {broader for key, decision in decisions.items() if not decision.nexthops for broader in key_chain(key)}
