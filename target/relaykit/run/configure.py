"""`relaykit configure`: read everything, plan, apply. Also the daemon's reload step.

Store-agnostic: the store (stores/) produces its own Postfix plan and says what Dovecot
checks passwords against; this module never asks which store it has.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from relaykit import log
from relaykit.core import overview, rewrite
from relaykit.core.plan import build, with_tokens
from relaykit.core.submission import tls_files
from relaykit.edges import system
from relaykit.edges.dovecot import layout_for
from relaykit.edges.postfix import APPLY_READS, TABLE_TYPE_READ, Postfix, PostfixError
from relaykit.errors import ConfigErrors
from relaykit.inputs import dmsvars
from relaykit.inputs import dmsfiles
from relaykit.inputs import overrides as override_files
from relaykit.inputs.settings import load
from relaykit.model.entries import ConfigFiles
from relaykit.model.plan import Plan, combine
from relaykit.model.settings import Settings
from relaykit.record import record
from relaykit.run.apply import Changes, apply, apply_dovecot, compile_ahead
from relaykit.stores import open_store

# Features most configurations do not use are imported where they are used, only when
# they are (start-up time of `relaykit configure`, issue 19): DKIM signing (core/dkim,
# edges/opendkim), the user's Postfix overrides (core/overrides), OAuth2 tokens
# (run/oauth2).


@record
class Prepared:
    """A configuration read and planned, not applied yet."""

    settings: Settings
    plan: Plan
    postfix: Postfix
    store: object  # a stores.protocol.Store
    dkim: object = None  # a core.dkim.Files, OpenDKIM's files, when a domain has a key
    ahead: object = None  # an edges.postfix.Ahead: a table compiled while planning, or None


def prepare(environ: Mapping[str, str] = os.environ, ahead: bool = False) -> Prepared:
    """Settings, inputs and the plan, with no change made anywhere (but a scratch copy of
    a table: `ahead`, see _prepare). Raises ConfigError."""
    compiling: list = []
    try:
        return _prepare(environ, compiling if ahead else None)
    except BaseException:
        for started in compiling:
            Postfix.discard_ahead(started)
        raise


def _prepare(environ: Mapping[str, str], compiling: list | None) -> Prepared:
    """prepare(); with a list for `compiling`, the store's largest foreseen table is also
    compiled meanwhile (run/apply.compile_ahead: `relaykit configure` on 100k relaymap
    lines compiles while it reads and plans). Live reload does not: it updates tables in
    place (core/tabledelta.py)."""
    settings = load(environ)
    log.set_level(settings.log_level)
    log.set_format(settings.log_format)
    postfix = Postfix(settings.mail_config)
    # What apply() reads, started now: ready by then instead of ~10 ms of waiting each
    # (under way already when `relaykit configure` started them: cli/main._prefetch).
    postfix.prefetch(*((TABLE_TYPE_READ,) if not settings.table_type else ()), *APPLY_READS)
    table_type = settings.table_type or postfix.param("default_database_type")
    store = open_store(environ)
    if compiling is not None:
        compiling.append(compile_ahead(postfix, table_type, store.foreseen()))
    networks = system.trusted_networks(settings.submission) if settings.submission and settings.submission.active \
        else ()
    plan = store.plan(settings, table_type, networks)
    if compiling == [None]:
        # Nothing foreseen (RELAY_HOST's managed domains are the plan's own output): the
        # plan's largest table then compiles while the rest is prepared and written.
        compiling[0] = compile_ahead(postfix, table_type, _plain_tables(plan, table_type))
    policy = rewrite.build(settings, dmsfiles.load_rewrites(settings.config_dir), table_type)
    if policy.params:
        plan = combine(plan, policy)
    signing = None
    keys = dmsfiles.signing_keys(settings)
    if keys:  # OpenDKIM signs for port 25's trusted clients (mynetworks) and logged-in users
        from relaykit.core import dkim
        from relaykit.edges import opendkim

        trusted = tuple(plan.params.get("mynetworks", "").replace(",", " ").split())
        signing = dkim.files(settings.dkim_dir, keys, trusted, opendkim.user())
        plan = combine(plan, dkim.plan(settings.dkim_dir, table_type))
    if settings.hostname:  # OVERRIDE_HOSTNAME; else Postfix's default: the container's name
        plan = combine(plan, Plan(params={"myhostname": settings.hostname}, table_type=table_type))
    return Prepared(settings, with_overrides(settings, plan, postfix), postfix, store, signing,
                    compiling[0] if compiling else None)


def _plain_tables(plan: Plan, table_type: str) -> dict[str, bytes]:
    """{name: text} of the plan's tables of `table_type` with the plain mode (0644: no
    secret, no group), which a copy compiled ahead has too: those compile_ahead may
    compile (the largest) while the plan is applied."""
    return {t.name: t.text().encode() for t in plan.tables
            if t.indexed and not t.secret and not t.group and t.kind in (None, table_type)}


def with_overrides(settings: Settings, plan: Plan, postfix: Postfix) -> Plan:
    """The plan with the user's Postfix overrides (POSTFIX_<name>, postfix-main.cf,
    postfix-master.cf; core/overrides.py says which may apply), once Postfix itself has
    read the result on a copy: ConfigError(s) at each offending line, nothing applied."""
    found, warnings = override_files.load(settings.config_dir)
    chosen = (*settings.postfix_params, *found)
    if not chosen:
        return plan
    from relaykit.core import overrides

    plan = overrides.apply_to(plan, chosen, postfix.defaults(), postfix.services())
    try:
        verdict = postfix.trial(plan.params, {s.key: s.entry() for s in plan.services}, plan.service_params)
    except PostfixError as exc:
        raise overrides.refused(exc.message, plan.overrides) from None
    errors = overrides.trial_errors(verdict, plan.overrides)
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return combine(plan, Plan(warnings=warnings, table_type=plan.table_type)) if warnings else plan


def routing(environ: Mapping[str, str] = os.environ) -> tuple[Settings, ConfigFiles, Plan]:
    """(settings, entries, plan) as configure computes the routes, without running Postfix
    (the table type only changes main.cf references, not who is routed where): what
    `setup relay list/explain/test` read, whichever store holds the entries."""
    settings = load(environ)
    files = open_store(environ).load(settings.tls_secure)
    return settings, files, build(settings, files, settings.table_type or "hash")


def summary(plan: Plan) -> str:
    """The start-up line: senders per relay, with or without credentials (core/overview.py)."""
    return overview.summary(plan)


def apply_prepared(prepared: Prepared, tokens: Mapping | None = None) -> Changes:
    """Everything a prepared configuration changes: Dovecot's files and the certificate
    (when submission is on), then Postfix's, with the current OAuth2 access tokens
    (`{key: Secret}`, run/oauth2.py). Shared by `configure` and live reload."""
    for warning in prepared.plan.warnings:
        log.warn(warning)
    dovecot_changed = False
    if prepared.settings.submission and prepared.settings.submission.enabled:
        dovecot_changed = prepare_submission(prepared)
    if prepared.dkim:  # before Postfix points at its socket
        from relaykit.edges import opendkim

        opendkim.write(prepared.dkim)
    changes = apply(with_tokens(prepared.plan, tokens or {}), prepared.postfix, prepared.ahead)
    return Changes(changes.tables, changes.params, dovecot_config=dovecot_changed)


def configure(environ: Mapping[str, str] = os.environ, keeper=None) -> tuple[Plan, Changes]:
    """Apply once. OAuth2 tokens: fetched once here, or by the daemon's `keeper` (a
    run/oauth2.TokenKeeper)."""
    prepared = prepare(environ, ahead=True)
    try:
        for report in prepared.settings.dms_reports:  # once per start, not per live reload
            log.warn(report)
        for report in dmsvars.audit_files(prepared.settings.config_dir):
            log.warn(report)
        prepared.store.prepare()
        if keeper:
            tokens = keeper.sync(prepared.plan.oauth2)
        elif prepared.plan.oauth2:
            from relaykit.run import oauth2

            tokens = oauth2.fetch_once(prepared.plan.oauth2)
        else:
            tokens = {}
        changes = apply_prepared(prepared, tokens)
    finally:
        Postfix.discard_ahead(prepared.ahead)
    log.info(summary(prepared.plan))
    if log.enabled("debug"):  # one line per sender: only worth building when shown
        for line in overview.describe(prepared.plan):
            log.debug(line)
    if changes:
        log.debug(f"changed: {', '.join(changes.names)}")
    return prepared.plan, changes


def prepare_submission(prepared: Prepared) -> bool:
    """Before Postfix is pointed at them: the TLS certificate (self-signed if none is
    given) and Dovecot's files. True when dovecot.conf changed (Dovecot needs a reload)."""
    settings = prepared.settings
    if system.ensure_certificate(settings.submission, settings.mail_config, prepared.postfix.param("myhostname")):
        cert, _ = tls_files(settings.submission, settings.mail_config)
        log.warn("!" * 72)
        log.warn(f"no SSL_CERT_PATH/SSL_KEY_PATH given: made a SELF-SIGNED certificate ({cert}).")
        log.warn("Mail clients cannot verify it. Set SSL_TYPE=manual, SSL_CERT_PATH and SSL_KEY_PATH.")
        log.warn("!" * 72)
    layout = layout_for(settings, prepared.postfix)
    passdb = prepared.store.passdb(settings)
    config_changed, passwd_changed = apply_dovecot(layout, passdb)
    if config_changed or passwd_changed:
        log.debug(f"dovecot: wrote {layout.directory}")
    listening = ", ".join(s.name for s in prepared.plan.services if s.command == "smtpd") or "no port"
    log.info(f"submission: {listening}; {passdb.summary}")
    return config_changed
