"""Which of the user's Postfix overrides may be applied, and the plan that applies them.

DMS applies postfix-main.cf and postfix-master.cf after its own settings, whatever they
change. relaykit applies them after its own too, but refuses a parameter it owns: one
that routes mail, chooses or protects a relay's credential, decides who may relay, or
that relaykit sets in this configuration. Set behind relaykit's back, such a parameter
would silently change where mail goes or leak a password, and `setup relay explain`
would no longer say what Postfix does. Each refusal names the file:line (or variable)
and the setting to use instead.

A name must be one this Postfix knows (postconf -d, which includes the parameters of
each master.cf service) or a parameter of the user's own that another override uses as
$name; a value must fit the parameter's kind (a number, a time, yes/no) as far as its
default shows it. Postfix itself then reads the result (edges/postfix.validate) before
anything is applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from relaykit.errors import ConfigError, ConfigErrors
from relaykit.model.entries import Override
from relaykit.model.plan import Plan, Service, combine
from relaykit.record import replace

_ROUTES = "routes are relaykit's: postfix-relaymap.cf, RELAY_HOST, `setup relay add-domain`"
_CREDENTIALS = "relay credentials are relaykit's: postfix-sasl-password.cf, RELAY_USER/RELAY_PASSWORD"
# Parameters relaykit owns whether or not it sets them now, and what to use instead.
OWNED = {
    "relayhost": "use DEFAULT_RELAY_HOST",
    "sender_dependent_relayhost_maps": _ROUTES,
    "sender_dependent_default_transport_maps": _ROUTES,
    "default_transport": _ROUTES,
    "relay_transport": _ROUTES,
    "transport_maps": _ROUTES,
    "relay_domains": _ROUTES,
    "smtp_tls_policy_maps": "relaykit requires TLS of every relay: RELAYKIT_TLS_SECURE for certificate checks",
    "smtp_tls_wrappermode": "implicit TLS is per relay: port 465, or smtps: in postfix-relaymap.cf",
    "smtp_sender_dependent_authentication": _CREDENTIALS,
    "mynetworks": "use PERMIT_NETWORKS or PERMIT_DOCKER (who may relay without logging in)",
    "mynetworks_style": "use PERMIT_NETWORKS or PERMIT_DOCKER (who may relay without logging in)",
    "smtpd_relay_restrictions": "who may relay is relaykit's: PERMIT_NETWORKS, PERMIT_DOCKER, ENABLE_SUBMISSION",
    "smtpd_sender_login_maps": "submission logins are relaykit's: postfix-accounts.cf, postfix-virtual.cf",
    "smtpd_tls_cert_file": "use SSL_CERT_PATH and SSL_KEY_PATH",
    "smtpd_tls_key_file": "use SSL_CERT_PATH and SSL_KEY_PATH",
    "maillog_file": "`relaykit start` sends Postfix's log to the container's output",
    # it changes the sender routing and credentials are looked up with
    "sender_canonical_maps": "sender rewriting is relaykit's: postfix-sender-rewrite.cf (routing sees the new sender)",
}
# Why a parameter relaykit sets in this configuration is its own, where the default
# "relaykit sets it in this configuration" says too little.
PLANNED = {
    "myhostname": "OVERRIDE_HOSTNAME sets it",
    "smtpd_tls_security_level": "ENABLE_SUBMISSION sets it (STARTTLS offered on port 25)",
    "smtp_header_checks": "RELAYKIT_STRIP_RECEIVED sets it",
    "smtpd_milters": "DKIM signing sets it (keys in opendkim/keys: setup config dkim)",
    "non_smtpd_milters": "DKIM signing sets it (keys in opendkim/keys: setup config dkim)",
    "local_header_rewrite_clients": "postfix-sender-rewrite.cf sets it (From is rewritten for every client that may relay)",
}
# Families owned by prefix: the SMTP client's and server's SASL (credentials, logins).
OWNED_PREFIXES = {
    "smtp_sasl_": _CREDENTIALS,
    "smtpd_sasl_": "submission logins are relaykit's: ENABLE_SUBMISSION, postfix-accounts.cf",
}
_REF = re.compile(r"\$(?:\{([A-Za-z0-9_]+)[^}]*\}|\(([A-Za-z0-9_]+)\)|([A-Za-z0-9_]+))")
_TIME = re.compile(r"\d+[smhdw]?")


def owned_reason(name: str, planned: Mapping[str, str]) -> str | None:
    """Why `name` may not be overridden, or None if it may."""
    if name in planned:
        return PLANNED.get(name) or OWNED.get(name) or "relaykit sets it in this configuration"
    if name in OWNED:
        return OWNED[name]
    for prefix, why in OWNED_PREFIXES.items():
        if name.startswith(prefix):
            return why
    return None


def _kind_error(value: str, default: str | None) -> str | None:
    """What is wrong with `value` for a parameter whose default is `default`, if its kind
    shows (a $reference is left to Postfix)."""
    if default is None or "$" in value:
        return None
    if default.isdigit() and not (value.isdigit() and value.isascii()):
        return f"must be a whole number (like its default, {default})"
    if _TIME.fullmatch(default) and not default.isdigit() and not _TIME.fullmatch(value):
        return f"must be a time such as 30s, 5m or 1h (its default is {default})"
    if default in ("yes", "no") and value.lower() not in ("yes", "no"):
        return "must be yes or no"
    return None


def apply_to(plan: Plan, overrides: Iterable[Override], defaults: Mapping[str, str],
             services: Iterable[str]) -> Plan:
    """`plan` with the overrides added after relaykit's settings, or ConfigError(s).

    `overrides` in the order they apply (a later one of the same key wins): POSTFIX_
    variables, postfix-main.cf, postfix-master.cf. `defaults`: postconf -d. `services`:
    the master.cf services there are ("name/type")."""
    final: dict[str, Override] = {}
    for override in overrides:
        final[override.key] = override
    chosen = tuple(final.values())
    used = {m.group(1) or m.group(2) or m.group(3) for o in chosen for m in _REF.finditer(o.value)}
    used |= {m.group(1) or m.group(2) or m.group(3) for v in plan.params.values() for m in _REF.finditer(v)}
    relaykit_services = {s.key: s for s in plan.services}
    known_services = set(services) | set(relaykit_services)
    errors: list[ConfigError] = []
    params: dict[str, str] = {}
    service_params: dict[str, str] = {}
    options: dict[str, list[tuple[str, str]]] = {}
    for o in chosen:
        reason = owned_reason(o.name, plan.params)
        if o.service and o.service in relaykit_services:
            mine = dict(relaykit_services[o.service].options)
            if o.service.startswith("relaykit_"):
                reason = "a relay client transport of relaykit's (master.cf relaykit_*)"
            elif o.name in mine:
                reason = reason or f"relaykit sets it for {o.service} ({o.name}={mine[o.name]})"
        if reason:
            errors.append(ConfigError(f"{o.name} cannot be overridden: {reason}", o.origin))
            continue
        if o.name not in defaults and (o.service or o.name not in used):
            errors.append(ConfigError(f"{o.name} is not a parameter of this Postfix (postconf -d)"
                                      + ("" if o.service else " and no other setting uses it as $" + o.name),
                                      o.origin))
            continue
        problem = _kind_error(o.value, defaults.get(o.name))
        if problem:
            errors.append(ConfigError(f"{o.name} = {o.value}: {problem}", o.origin))
            continue
        if o.service is None:
            params[o.name] = o.value
        elif o.service not in known_services:
            errors.append(ConfigError(f"there is no service {o.service} in master.cf (postconf -M lists them)",
                                      o.origin))
        elif o.service in relaykit_services:  # part of the entry relaykit writes
            options.setdefault(o.service, []).append((o.name, o.value))
        else:
            service_params[o.key] = o.value
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    if not chosen:
        return plan
    services_out = tuple(Service(s.name, s.type, s.command, (*s.options, *options[s.key]), s.private, s.unpriv,
                                 s.chroot, s.wakeup, s.maxproc) if s.key in options else s for s in plan.services)
    return combine(replace(plan, services=services_out), Plan(params=params, service_params=service_params, overrides=chosen,
                              table_type=plan.table_type))


_WARNING = re.compile(r"(undefined|unused) parameter: ([A-Za-z0-9_]+)")


def trial_errors(warnings: Iterable[str], overrides: Iterable[Override]) -> list[ConfigError]:
    """Postfix's warnings about the configuration with the overrides (edges/postfix.trial)
    that an override causes, each at its origin: a $name nothing defines, a parameter
    nothing uses. Warnings about the rest are not the overrides' to answer for."""
    overrides = tuple(overrides)
    errors = []
    for warning in warnings:
        match = _WARNING.search(warning)
        if not match:
            continue
        kind, name = match.groups()
        for o in overrides:
            if (o.name == name) if kind == "unused" else any(
                    name in m.groups() for m in _REF.finditer(o.value)):
                errors.append(ConfigError(f"Postfix: {kind} parameter {name}"
                                          + (" (a $name that nothing defines: a typo?)" if kind == "undefined"
                                             else " (nothing uses it)"), o.origin))
                break
    return errors


def refused(message: str, overrides: Iterable[Override]) -> ConfigError:
    """Postfix's fatal error about the configuration with the overrides, at the override
    it names (e.g. "bad numerical configuration: message_size_limit = abc")."""
    overrides = tuple(overrides)
    named = [o for o in overrides if re.search(rf"\b{re.escape(o.name)}\b", message)]
    origin = named[-1].origin if named else ", ".join(dict.fromkeys(str(o.origin) for o in overrides))
    return ConfigError(f"Postfix refuses it: {message}", origin)
