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
    files = open_store(environ).load()
    postfix = Postfix(settings.mail_config)
    table_type = settings.table_type or postfix.param("default_database_type")
    return Prepared(settings, build(settings, files, table_type), postfix)


def summary(plan: Plan) -> str:
    """The start-up line: senders per relay, with or without credentials (overview.py)."""
    from relaykit.overview import summary as overview

    return overview(plan)


def configure(environ: Mapping[str, str] = os.environ) -> tuple[Plan, Changes]:
    prepared = prepare(environ)
    for warning in prepared.plan.warnings:
        log.warn(warning)
    changes = apply(prepared.plan, prepared.postfix)
    log.info(summary(prepared.plan))
    from relaykit.overview import describe

    for line in describe(prepared.plan):
        log.debug(line)
    if changes:
        log.debug(f"changed: {', '.join((*changes.tables, *changes.params))}")
    return prepared.plan, changes
