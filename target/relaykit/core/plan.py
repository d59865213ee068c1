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

from collections import namedtuple
from collections.abc import Mapping
from itertools import chain, compress, count, filterfalse, islice, repeat
from operator import itemgetter, ne
from pathlib import Path

from relaykit.core import routetables
from relaykit.core.routing import ByNexthops, Router, key_chain
from relaykit.errors import ConfigError, ConfigErrors, RelaykitError
from relaykit.model.entries import ConfigFiles, Credential, OAuth2Credential, Origin, RelayRule, Rules
from relaykit.model.nexthop import NextHop
from relaykit.model.plan import (OAUTH2_KEYS, RELAYHOST_MAP, SASL_OAUTH2, SASL_PASSWD, TLS_POLICY, Lines, Login,
                                 Plan, Routes, Table, nexthop_counts)
from relaykit.model.settings import Settings
from relaykit.record import replace


class RulesByKey(Mapping):
    """A relaymap read in bulk (model/entries.Rules), by sender key, no key twice (`keys`:
    them, each once): each rule is made when looked up (a few: explain, a credential's
    route), and each key's place in the file only once one is."""

    __slots__ = ("rules", "_keys", "_at")

    def __init__(self, rules: Rules, keys: dict[str, None]) -> None:
        self.rules, self._keys, self._at = rules, keys, None

    def __getitem__(self, key: str) -> RelayRule:
        if self._at is None:
            self._at = dict(zip(self.rules.keys, count()))
        return self.rules[self._at[key]]

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def values(self):  # type: ignore[override]  # the rules, in order: each key once
        return self.rules


def _explicit_routes(rules: tuple[RelayRule, ...]) -> tuple[Mapping[str, RelayRule], list[RelaykitError]]:
    """The relaymap entries by sender key; a key given twice with different values is an error."""
    if isinstance(rules, Rules):  # read in bulk: from the columns, unless a key is there twice
        keys = dict.fromkeys(rules.keys)
        if len(keys) == len(rules):
            return RulesByKey(rules, keys), []
        rules = tuple(rules)
    by_sender = dict(zip(map(itemgetter(0), rules), rules))  # a C loop: 100k-line relaymaps
    if len(by_sender) == len(rules):  # no key twice
        return by_sender, []
    by_sender, errors = {}, []
    for rule in rules:
        first = by_sender.setdefault(rule.sender, rule)
        if first is not rule and first.nexthops != rule.nexthops:
            what = "opted out" if first.opted_out else f"routed to {first.value}"
            errors.append(ConfigError(f"{rule.sender} is {what} at {first.origin} already", rule.origin))
    return by_sender, errors


def _managed_domains(files: ConfigFiles) -> list[str]:
    """Sender domains of postfix-accounts.cf and postfix-virtual.cf, sorted, each once: the
    accounts' as their reader split them, if it did, else (and the aliases') Account.domain
    and Alias.domain by C loops: 100k accounts."""
    def domains(entries):
        return map(itemgetter(2), map(str.rpartition, map(itemgetter(0), entries), repeat("@")))

    accounts = files.account_domains if files.account_domains is not None else domains(files.accounts)
    # Sorted in the files' order, which sorted() mostly finds in runs and whose strings lie
    # in memory in that order (a set's hash order sorts ~8x slower in a fresh process),
    # then each kept unless equal to the next: C loops, and no 100k hashes (~15 ms)
    found = sorted(chain(accounts, domains(files.aliases)))
    return list(compress(found, chain(map(ne, found, islice(found, 1, None)), (True,))))


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
    for cred in (*files.credentials, *files.oauth2):
        first = creds.setdefault(cred.key, cred)
        if first is not cred and first != replace(cred, origin=first.origin):
            errors.append(ConfigError(f"{cred.key} has credentials at {first.origin} already", cred.origin))
    for cred in environment_credentials(settings):
        if cred.key in creds:
            warnings.append(f"RELAY_USER is not used for {cred.key}: {creds[cred.key].origin} sets its credentials")
        else:
            creds[cred.key] = cred
    return list(creds.values()), warnings, errors


INDEXED_TYPES = ("lmdb", "hash", "btree", "cdb", "dbm")  # postmap-compiled (edges/postfix.INDEXED_SUFFIX)

# The SMTP client's SASL settings for relays, whichever store holds the routes. Relays'
# tls_policy already demands TLS; `noplaintext` is the second wall: no PLAIN or LOGIN on
# a session without TLS, whatever else goes wrong (postconf(5) smtp_sasl_security_options).
# XOAUTH2 is filtered out here: the Cyrus XOAUTH2 plugin (target/sasl/xoauth2.c) would
# otherwise let the client pick it on a relay that offers it and send a password as a
# bearer token; only the OAuth2 clients (core/routetables.py) allow it, and only it.
SASL_CLIENT = {
    "smtp_sasl_auth_enable": "yes",
    "smtp_sasl_security_options": "noplaintext, noanonymous",
    "smtp_sasl_tls_security_options": "noanonymous",
    "smtp_sasl_mechanism_filter": "!xoauth2, static:all",
}


class Built(namedtuple("Built", ("plan", "explicit", "managed", "lists"), defaults=(None, None, None))):
    """A plan (Plan), and what core/replan.py patches the next one from after an edit:
    `explicit`, the relaymap's rules by sender key (dict), when every route is decided by
    its own rule (no @.wildcard, no credential keyed by sender: core/routing.py) and no
    key is given twice, else None (the next plan is built whole); `managed`, the domains
    RELAY_HOST routes by default (a sorted list, or None); `lists`, the routes' next-hop lists in
    first-use order (dict). A named tuple from collections: typing costs ~5 ms to import."""

    __slots__ = ()


def build(settings: Settings, files: ConfigFiles, table_type: str) -> Plan:
    """The complete plan, or ConfigError(s) naming every offending file:line."""
    return build_indexed(settings, files, table_type).plan


def build_indexed(settings: Settings, files: ConfigFiles, table_type: str) -> Built:
    """build(), with what core/replan.py needs to patch the plan after an edit."""
    relay_configured = bool(settings.default_relay_host or settings.relay_host or files.relaymap_exists
                            or files.recipient_rules)
    if not relay_configured:
        warnings = ()
        if files.sasl_exists or settings.relay_credentials:
            warnings = ("relay credentials are given but no relay is configured "
                        "(RELAY_HOST, DEFAULT_RELAY_HOST or postfix-relaymap.cf): they are not used",)
        return Built(Plan(table_type=table_type, warnings=warnings))

    explicit, errors = _explicit_routes(files.relay_rules)
    creds, warnings, cred_errors = _credentials(settings, files)
    errors += cred_errors
    recipients, recipient_errors = _explicit_routes(files.recipient_rules)
    errors += recipient_errors
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)

    # the rules with next hops: a rule is its route (a bulk read's every rule has them)
    explicit_routes = explicit.rules if isinstance(explicit, RulesByKey) else \
        tuple(filter(itemgetter(1), explicit.values()))
    if isinstance(explicit_routes, Rules):  # the columns, not 100k rules made
        route_keys, route_hops = explicit_routes.keys, explicit_routes.nexthops
    else:
        route_keys, route_hops = list(map(itemgetter(0), explicit_routes)), list(map(itemgetter(1), explicit_routes))
    wildcards = not isinstance(explicit, RulesByKey) and routetables.has_wildcard(explicit)  # bulk: plain keys
    default, default_domains, managed = settings.relay_nexthop, [], None
    if default:
        managed = _managed_domains(files)
        # Every managed domain without a rule of its own (nor a wildcard over it), by C
        # loops: 100k managed domains. Their routes are made only if read (Routes).
        domains = managed
        if explicit:
            routed = {key[1:] for key in explicit if key[:1] == "@"}
            domains = filterfalse(routed.__contains__, domains)
        if wildcards:
            domains = (domain for domain in domains if not routetables.under_wildcard(domain, explicit))
        default_domains = domains if isinstance(domains, list) else list(domains)
    default_hops = (default,)  # shared by every default route
    routes = Routes(explicit_routes, default_domains, default_hops, Origin("RELAY_HOST")) if default_domains \
        else explicit_routes

    relayhost = settings.default_relay if settings.default_relay_host else ()
    # 100k routes name a few lists; RELAY_HOST's default routes share one
    lists = dict.fromkeys(nexthop_counts(explicit_routes))
    if default_domains:
        lists[default_hops] = None
    hops = dict.fromkeys(hop for nexthops in lists for hop in nexthops)
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

    passwords = [c for c in creds if not isinstance(c, OAuth2Credential)]
    oauth2 = [c for c in creds if isinstance(c, OAuth2Credential)]
    joined = {nexthops: ",".join(nexthops) for nexthops in lists}
    # relayhost_map: the explicit routes' lines (the wildcards go to routetables' pcre
    # tables), then the default routes', one value for all
    written = getattr(explicit_routes, "written", None)  # the relaymap's text is those lines (Rules)
    if written is not None:
        relay_lines = Lines(written, len(explicit_routes))
    else:
        relay_lines = routetables.exact_lines(zip(route_keys, map(joined.__getitem__, route_hops)), wildcards)
    if default_domains:
        value = joined[default_hops]
        text = written if written is not None else "".join(line + "\n" for line in relay_lines)
        relay_lines = Lines(text + "@" + f" {value}\n@".join(default_domains) + f" {value}\n",
                            len(relay_lines) + len(default_domains))
    tables = (
        Table(RELAYHOST_MAP, relay_lines),
        Table(SASL_PASSWD, tuple(f"{c.key} {c.user}:{c.password.reveal()}" for c in passwords), secret=True),
        # the level each hop was parsed with (model/nexthop.py: encrypt, or secure)
        Table(TLS_POLICY, tuple(f"{hop} {hop.level}" for hop in hops)),
    )
    # The tokens come with_tokens(); the keys say which lookups must not fall through.
    # Indexed even when the plan's tables are texthash: smtp(8) re-opens a changed indexed
    # table by itself, but reads a texthash one once per process (old tokens for minutes).
    oauth2_kind = table_type if table_type in INDEXED_TYPES else "lmdb"
    if oauth2:
        tables += (Table(SASL_OAUTH2, (), secret=True, kind=oauth2_kind),
                   Table(OAUTH2_KEYS, tuple(f"{c.key} {c.provider}" for c in oauth2), kind=oauth2_kind))
    params: dict[str, str] = {}
    if settings.default_relay_host:
        params["relayhost"] = settings.default_relay_host
    params.update({
        "sender_dependent_relayhost_maps": ref(RELAYHOST_MAP),
        "smtp_sasl_password_maps": ref(SASL_PASSWD),
        **SASL_CLIENT,
        "smtp_tls_policy_maps": ref(TLS_POLICY),
    })
    if files.sasl_exists or settings.relay_host or any("@" in c.key for c in oauth2):
        params["smtp_sender_dependent_authentication"] = "yes"

    for hop in settings.tls_secure:
        if hop not in hops:
            warnings.append(f"RELAYKIT_TLS_SECURE: {hop} is not a relay next hop: it has no effect")
    optouts = tuple(filterfalse(itemgetter(1), explicit.values())) if len(explicit) > len(explicit_routes) \
        else ()
    recipient_routes = tuple(recipients.values())
    plan = Plan(
        params=params,
        table_type=table_type,
        relayhost=relayhost,
        routes=routes,
        logins=tuple(Login(c.key, c.user, c.origin, getattr(c, "provider", None)) for c in creds),
        warnings=tuple(warnings),
        optouts=optouts,
        recipient_routes=recipient_routes,
        oauth2=tuple(oauth2),
        limits=files.relay_limits,
    )
    # Every sender key gets the transport and next hops routing.Router decides for it:
    # what Postfix does is then what explain says (core/routing.py, core/routetables.py).
    # with RELAY_HOST's default routes, the routes by key are made only if a key is looked up
    router = Router(plan, None if default_domains else explicit, wildcards, lists)
    decisions = router.decide_every_key()
    oauth2_hops = frozenset(c.key for c in oauth2 if "@" not in c.key)
    unique = router.distinct()
    _refuse_mixed_logins(decisions, unique, recipient_routes, router, relayhost)
    _refuse_limited_oauth2(files.relay_limits, oauth2_hops, unique, recipient_routes, router, relayhost)
    values = {id(d): d.table_value for d in unique}

    def transports():  # (sender key, sender_transport value) pairs, made as read: 100k keys
        return zip(decisions, map(values.__getitem__, map(id, decisions.values())))

    # relayhost_map's value -> sender_transport's, when the one decides the other (one
    # table of 100k keys instead of two: core/routetables.py, RELAY_TRANSPORT)
    by_value = decisions.by_hops if isinstance(decisions, ByNexthops) and not router.wildcards else None
    relay_transports = [(joined[hops], by_value[hops].table_value) for hops in lists if hops in by_value] \
        if by_value else None
    extra = routetables.build(transports, set(values.values()) if decisions else set(), optouts, routes,
                              recipient_routes, passwords, relayhost, table_type, directory, oauth2_hops,
                              oauth2_kind, files.relay_limits, wildcards=router.wildcards,
                              relay_transports=relay_transports)
    plan = replace(plan, tables=tables + extra.tables, params={**params, **extra.params}, services=extra.services,
                   warnings=plan.warnings + extra.warnings, decisions=decisions)
    direct = _reaching_direct(decisions) if any(not d.nexthops for d in unique) else set()
    unused = [login for login in plan.logins if login.key in direct]
    if not unused:
        independent = not router.wildcards and not router.sender_keyed and len(explicit) == len(files.relay_rules)
        return Built(plan, explicit if independent else None, managed, lists)
    return Built(replace(plan, warnings=plan.warnings + tuple(
        f"{login.origin}: {login.key} has credentials but (some of) its mail is delivered directly, "
        "where no credentials are sent (a recipient's MX is not your relay): give it a route, or key "
        "them by relay ([host]:port) instead" for login in unused)))


def _mixed(logins) -> bool:
    return len({login.oauth2 is not None for login in logins if login}) > 1


def _refuse_mixed_logins(decisions: dict, unique: list, recipient_routes, router: Router, relayhost) -> None:
    """One client per route: a failover list whose relays log in some with a password and
    some with OAuth2 tokens cannot be served by either (an error naming the rule)."""
    errors = []
    mixed = {id(d) for d in unique if _mixed(d.logins)}
    lists = []
    for key, d in (decisions.items() if mixed else ()):  # name each rule: only when one is wrong
        if id(d) in mixed:
            found = router.found(key_chain(key))
            lists.append((found[1].origin if found else Origin("DEFAULT_RELAY_HOST"), d.logins))
    lists += [(r.origin, tuple(router.logins.get(hop) for hop in r.nexthops)) for r in recipient_routes]
    lists.append((Origin("DEFAULT_RELAY_HOST"), tuple(router.logins.get(hop) for hop in relayhost)))
    for origin, logins in lists:
        if _mixed(logins) and origin not in (e.origin for e in errors):
            errors.append(ConfigError("this route's relays log in some with a password and some with OAuth2: "
                                      "give all relays of a failover list the same kind of credential", origin))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)


def _refuse_limited_oauth2(limits, oauth2_hops, unique: list, recipient_routes, router: Router,
                           relayhost) -> None:
    """A limited relay has clients of its own (relaykit_limitN), and an OAuth2 relay needs
    the XOAUTH2-only clients: one route cannot have both, so such a limit is refused rather
    than silently dropped."""
    hops_of = [(d.nexthops, d.logins) for d in unique]
    hops_of += [(r.nexthops, tuple(router.logins.get(hop) for hop in r.nexthops)) for r in recipient_routes]
    hops_of.append((relayhost, tuple(router.logins.get(hop) for hop in relayhost)))
    errors = [ConfigError(f"{limit.hop} logs in with OAuth2 (postfix-oauth2.cf): per-relay limits are not "
                          "supported for OAuth2 relays yet", limit.origin)
              for limit in limits
              if limit.hop in oauth2_hops or any(hops and hops[0] == limit.hop and logins and logins[0] is not None
                                                 and logins[0].oauth2 is not None for hops, logins in hops_of)]
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)


def with_tokens(plan: Plan, tokens) -> Plan:
    """The plan with the current OAuth2 access tokens (`{key: Secret}`, from run/oauth2.py)
    in its sasl_passwd_oauth2 table: `key user:token`. A key without a token has no line,
    and its mail is deferred (core/routetables.py, oauth2_password_maps)."""
    if not plan.oauth2:
        return plan
    lines = tuple(f"{c.key} {c.user}:{tokens[c.key].reveal()}" for c in plan.oauth2 if tokens.get(c.key))
    return replace(plan, tables=tuple(replace(t, lines=lines) if t.name == SASL_OAUTH2 else t for t in plan.tables))


def _reaching_direct(decisions: dict) -> set[str]:
    """Sender keys some of whose mail goes to an MX: each key decided direct, and every
    broader key of its chain (one pass: linear in the number of keys)."""
    return {broader for key, decision in decisions.items() if not decision.nexthops for broader in key_chain(key)}
