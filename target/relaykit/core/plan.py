"""The plan: what Postfix should end up with, computed from settings and parsed files.

Pure: no I/O, no environment. `apply.py` carries a plan out; `setup relay list/explain`
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

from dataclasses import dataclass, field, replace
from pathlib import Path

from relaykit.core import routetables
from relaykit.inputs.dmsfiles import ConfigFiles, Credential, Origin, RelayRule
from relaykit.errors import ConfigError, ConfigErrors, RelaykitError
from relaykit.inputs.settings import Settings

RELAYHOST_MAP = "relayhost_map"
SASL_PASSWD = "sasl_passwd"
TLS_POLICY = "tls_policy"


@dataclass(frozen=True)
class Table:
    """A lookup table file in MAIL_CONFIG: `key value` lines."""

    name: str
    lines: tuple[str, ...]
    secret: bool = False  # holds passwords: mode 0600, never logged
    kind: str | None = None  # a table type of its own (pcre), else the plan's table_type
    group: str | None = None  # also readable by this group (0640 root:group): pgsql lookup files
    indexed: bool = True  # compiled by postmap when table_type is indexed; False: a pgsql: config

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Route:
    """Mail from `sender` goes to `nexthops`; `origin` says which rule decided it."""

    sender: str
    nexthops: tuple[str, ...]
    origin: Origin
    implicit_tls: bool = False  # through the wrappermode transport (routetables.py)


@dataclass(frozen=True)
class Login:
    """Credentials Postfix presents, without the password: `key` is @domain or a next hop."""

    key: str
    user: str
    origin: Origin


@dataclass(frozen=True)
class Plan:
    tables: tuple[Table, ...] = ()
    params: dict[str, str] = field(default_factory=dict)
    services: tuple[Service, ...] = ()
    table_type: str = "hash"
    relayhost: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    logins: tuple[Login, ...] = ()
    warnings: tuple[str, ...] = ()
    optouts: tuple[Route, ...] = ()  # opted-out sender keys (they matter under @.domain)
    recipient_routes: tuple[Route, ...] = ()  # mail TO a domain: `sender` is the domain key

    @property
    def configured(self) -> bool:
        return bool(self.params or self.services)

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
    return Plan(
        tables=tuple(t for p in plans for t in p.tables),
        params=params,
        services=tuple(s for p in plans for s in p.services),
        table_type=first.table_type,
        relayhost=first.relayhost,
        routes=tuple(r for p in plans for r in p.routes),
        logins=tuple(l for p in plans for l in p.logins),
        warnings=tuple(w for p in plans for w in p.warnings),
        optouts=tuple(o for p in plans for o in p.optouts),
        recipient_routes=tuple(r for p in plans for r in p.recipient_routes),
    )


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


def _credentials(settings: Settings, files: ConfigFiles) -> tuple[list[Credential], list[str], list[RelaykitError]]:
    creds: dict[str, Credential] = {}
    warnings: list[str] = []
    errors: list[RelaykitError] = []
    for cred in files.credentials:
        first = creds.setdefault(cred.key, cred)
        if first is not cred and (first.user, first.password) != (cred.user, cred.password):
            errors.append(ConfigError(f"{cred.key} has credentials at {first.origin} already", cred.origin))
    env = settings.relay_credentials
    if env:
        user, password = env
        for hop in settings.default_relay:
            if hop in creds:
                warnings.append(f"RELAY_USER is not used for {hop}: {creds[hop].origin} sets its credentials")
            else:
                creds[hop] = Credential(hop, user, password, Origin("RELAY_USER"))
    return list(creds.values()), warnings, errors


def tls_level(settings: Settings, hop: str) -> str:
    """`secure` (the certificate must verify for the next hop's name) for the hops listed
    in RELAYKIT_TLS_SECURE, else `encrypt`: TLS is required either way, so credentials
    never travel in clear; a relay that fails the policy gets its mail deferred, not lost."""
    return "secure" if hop in settings.tls_secure else "encrypt"


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

    routes = [Route(r.sender, r.nexthops, r.origin, r.implicit_tls) for r in explicit.values() if not r.opted_out]
    default = settings.relay_nexthop
    if default:
        # shared by every default route
        origin, hops, implicit = Origin("RELAY_HOST"), (default,), routetables.implicit_port(default)
        defaults = [
            Route(f"@{domain}", hops, origin, implicit)
            for domain in sorted(_managed_domains(files))
            if f"@{domain}" not in explicit and not routetables.under_wildcard(domain, explicit)
        ]
        routes += defaults

    relayhost = settings.default_relay if settings.default_relay_host else ()
    hops = dict.fromkeys(hop for route in routes for hop in route.nexthops)
    hops.update(dict.fromkeys(relayhost))
    hops.update(dict.fromkeys(hop for r in files.recipient_rules for hop in r.nexthops))
    hops.update(dict.fromkeys(c.key for c in creds if "@" not in c.key))

    directory = settings.mail_config

    def ref(name: str) -> str:
        return f"{table_type}:{Path(directory, name)}"

    tables = (
        Table(RELAYHOST_MAP, tuple(f"{r.sender} {','.join(r.nexthops)}" for r in routes
                                   if not r.sender.startswith("@."))),  # wildcards: routetables
        Table(SASL_PASSWD, tuple(f"{c.key} {c.user}:{c.password.reveal()}" for c in creds), secret=True),
        Table(TLS_POLICY, tuple(f"{hop} {tls_level(settings, hop)}" for hop in hops)),
    )
    params: dict[str, str] = {}
    if settings.default_relay_host:
        params["relayhost"] = settings.default_relay_host
    params.update({
        "sender_dependent_relayhost_maps": ref(RELAYHOST_MAP),
        "smtp_sasl_password_maps": ref(SASL_PASSWD),
        "smtp_sasl_auth_enable": "yes",
        "smtp_sasl_security_options": "noanonymous",
        "smtp_sasl_tls_security_options": "noanonymous",
        "smtp_tls_policy_maps": ref(TLS_POLICY),
    })
    if files.sasl_exists or settings.relay_host:
        params["smtp_sender_dependent_authentication"] = "yes"

    for hop in settings.tls_secure:
        if hop not in hops:
            warnings.append(f"RELAYKIT_TLS_SECURE: {hop} is not a relay next hop: it has no effect")
    optouts = tuple(Route(r.sender, (), r.origin) for r in explicit.values() if r.opted_out)
    recipient_routes = tuple(Route(r.sender, r.nexthops, r.origin, r.implicit_tls) for r in recipients.values())
    extra = routetables.build(routes, optouts, recipient_routes, creds, relayhost, table_type, directory)
    tables += extra.tables
    params.update(extra.params)
    warnings += extra.warnings

    plan = Plan(
        tables=tables,
        params=params,
        table_type=table_type,
        relayhost=relayhost,
        routes=tuple(routes),
        logins=tuple(Login(c.key, c.user, c.origin) for c in creds),
        warnings=tuple(warnings),
        services=extra.services,
        optouts=optouts,
        recipient_routes=recipient_routes,
    )
    # Sender-keyed credentials are offered wherever that sender's mail goes: say so when
    # that is direct delivery, where an MX may offer AUTH without TLS.
    direct = routetables.direct_credentials(plan)
    if not direct:
        return plan
    return replace(plan, warnings=plan.warnings + tuple(
        f"{login.origin}: {login.key} has credentials but (some of) its mail is delivered directly, "
        "where they could be offered to a recipient's MX: key them by relay ([host]:port) instead"
        for login in direct))
