"""`relaykit configure`: read everything, plan, apply. Also the daemon's reload step."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from relaykit import log
from relaykit.apply import Changes, apply
from relaykit.plan import Plan, build
from relaykit.postfix import Postfix
from relaykit.settings import Settings, load


@dataclass(frozen=True)
class Prepared:
    settings: Settings
    plan: Plan
    postfix: Postfix


def prepare(environ: Mapping[str, str] = os.environ) -> Prepared:
    """Settings, inputs and the plan, with no change made anywhere. Raises ConfigError."""
    from relaykit.stores import open_store

    settings = load(environ)
    log.set_level(settings.log_level)
    if settings.database_url:  # Postfix reads the database itself: no files to load
        from relaykit import pgsql

        postfix = Postfix(settings.mail_config)
        table_type = settings.table_type or postfix.param("default_database_type")
        return Prepared(settings, pgsql.build(settings, table_type), postfix)
    files = open_store(environ).load()
    postfix = Postfix(settings.mail_config)
    table_type = settings.table_type or postfix.param("default_database_type")
    return Prepared(settings, build(settings, files, table_type), postfix)


def summary(plan: Plan) -> str:
    if not plan.configured:
        return "no relay configured: outbound mail is delivered directly"
    relays: dict[str, int] = {}
    for route in plan.routes:
        for hop in route.nexthops:
            relays[hop] = relays.get(hop, 0) + 1
    parts = [f"{count} sender(s) -> {hop}" for hop, count in relays.items()]
    if plan.relayhost:
        parts.insert(0, f"default relayhost {','.join(plan.relayhost)}")
    return f"relay: {'; '.join(parts) or 'no sender routed'}; {len(plan.logins)} credential(s)"


def configure(environ: Mapping[str, str] = os.environ) -> tuple[Plan, Changes]:
    prepared = prepare(environ)
    if prepared.settings.database_url:
        _database_schema(prepared.settings.database_url.reveal())
    for warning in prepared.plan.warnings:
        log.warn(warning)
    changes = apply(prepared.plan, prepared.postfix)
    log.info(summary(prepared.plan))
    if changes:
        log.debug(f"changed: {', '.join((*changes.tables, *changes.params))}")
    return prepared.plan, changes


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
