"""`relaykit configure`: read everything, plan, apply. Also the daemon's reload step."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from relaykit import log
from relaykit.apply import Changes, apply
from relaykit.configfiles import ConfigFiles
from relaykit.gcpause import paused_gc
from relaykit.plan import Plan, build
from relaykit.postfix import Postfix
from relaykit.settings import Settings, load


@dataclass(frozen=True)
class Prepared:
    settings: Settings
    plan: Plan
    postfix: Postfix
    files: ConfigFiles | None = None


def prepare(environ: Mapping[str, str] = os.environ) -> Prepared:
    """Settings, inputs and the plan, with no change made anywhere. Raises ConfigError."""
    from relaykit.stores import open_store

    settings = load(environ)
    log.set_level(settings.log_level)
    postfix = Postfix(settings.mail_config)
    table_type = settings.table_type or postfix.param("default_database_type")
    files, login_map = None, None
    if settings.database_url:  # Postfix (and Dovecot) read the database itself: no files to load
        from relaykit import pgsql

        plan = pgsql.build(settings, table_type)
        login_map = plan.params["smtpd_sender_login_maps"]
    else:
        with paused_gc():  # 100k-line configs: see gcpause.py
            files = open_store(environ).load()
            plan = build(settings, files, table_type)
    if settings.hostname:  # OVERRIDE_HOSTNAME; else Postfix's default: the container's name
        from relaykit.plan import combine

        plan = combine(plan, Plan(params={"myhostname": settings.hostname}, table_type=table_type))
    if settings.submission and settings.submission.active:
        from relaykit import submission
        from relaykit.plan import combine

        networks = submission.trusted_networks(settings.submission)
        users = files if files is not None else ConfigFiles()  # the database's are not loaded
        plan = combine(plan, submission.build(settings, users, table_type, networks, login_map))
    return Prepared(settings, plan, postfix, files)


def summary(plan: Plan) -> str:
    """The start-up line: senders per relay, with or without credentials (overview.py)."""
    from relaykit.overview import summary as overview

    return overview(plan)


DOVECOT_CONF = "dovecot.conf"  # in Changes.tables when Dovecot must re-read its config


def apply_prepared(prepared: Prepared) -> Changes:
    """Everything a prepared configuration changes: Dovecot's files and the certificate
    (when submission is on), then Postfix's. Shared by `configure` and live reload."""
    for warning in prepared.plan.warnings:
        log.warn(warning)
    dovecot_changed = False
    if prepared.settings.submission and prepared.settings.submission.enabled:
        dovecot_changed = prepare_submission(prepared)
    changes = apply(prepared.plan, prepared.postfix)
    if dovecot_changed:
        changes = Changes((*changes.tables, DOVECOT_CONF), changes.params)
    return changes


def configure(environ: Mapping[str, str] = os.environ) -> tuple[Plan, Changes]:
    prepared = prepare(environ)
    if prepared.settings.database_url:
        _database_schema(prepared.settings.database_url.reveal())
    changes = apply_prepared(prepared)
    log.info(summary(prepared.plan))
    if log.enabled("debug"):  # one line per sender: only worth building when shown
        from relaykit.overview import describe

        for line in describe(prepared.plan):
            log.debug(line)
    if changes:
        log.debug(f"changed: {', '.join((*changes.tables, *changes.params))}")
    return prepared.plan, changes


def prepare_submission(prepared: Prepared) -> bool:
    """Before Postfix is pointed at them: the TLS certificate (self-signed if none is
    given) and Dovecot's files. True when dovecot.conf changed (Dovecot needs a reload)."""
    from relaykit import dovecot, submission

    settings = prepared.settings
    if submission.ensure_certificate(settings.submission, settings.mail_config, prepared.postfix.param("myhostname")):
        cert, _ = submission.tls_files(settings.submission, settings.mail_config)
        log.warn("!" * 72)
        log.warn(f"no SSL_CERT_PATH/SSL_KEY_PATH given: made a SELF-SIGNED certificate ({cert}).")
        log.warn("Mail clients cannot verify it. Set SSL_TYPE=manual, SSL_CERT_PATH and SSL_KEY_PATH.")
        log.warn("!" * 72)
    layout = dovecot.layout_for(settings, prepared.postfix)
    if prepared.files is None:  # the database store: Dovecot asks PostgreSQL
        from relaykit.pgsql import connection

        database = connection((settings.postfix_database_url or settings.database_url).reveal())
        config_changed, passwd_changed = dovecot.write(layout, (), database)
        accounts = "accounts in PostgreSQL"
    else:
        config_changed, passwd_changed = dovecot.write(layout, prepared.files.accounts)
        accounts = f"{len(prepared.files.accounts)} account(s)"
    if config_changed or passwd_changed:
        log.debug(f"dovecot: wrote {layout.directory}")
    listening = ", ".join(s.name for s in prepared.plan.services if s.command == "smtpd") or "no port"
    log.info(f"submission: {listening}; {accounts}")
    return config_changed


def _database_schema(url: str) -> None:
    """Bring the schema up to date. A database that does not answer is not fatal here:
    the node starts, and Postfix defers mail (nothing bounces) until it is back."""
    from relaykit.commands.database import upgrade_schema
    from relaykit.stores.postgres import DatabaseError

    try:
        upgrade_schema(url, always=False)
    except DatabaseError as exc:
        log.warn(f"{exc}; Postfix defers mail until the database answers")
    log.info("relay routes and credentials: looked up in PostgreSQL by Postfix (pgsql: tables)")
