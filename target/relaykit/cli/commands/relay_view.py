"""`setup relay list` and `setup relay check`: read the configuration, change nothing.

Both read the routes that `relaykit configure` computes (run/configure.routing), so they
show and check exactly what Postfix gets, whichever store holds them. Imported only when
they run: they pull in the planners, pathlib and rich, which the editing commands must not
pay for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from relaykit.cli import ui
from relaykit.core.overview import rows, summary
from relaykit.core.plan import build
from relaykit.errors import ConfigError, ConfigErrors, RelaykitError, UsageError
from relaykit.inputs import dmsvars
from relaykit.inputs.settings import load
from relaykit.run.configure import prepare, routing
from relaykit.stores import open_store


def _options(args: list[str], allowed: tuple[str, ...]) -> set[str]:
    unknown = [a for a in args if a not in allowed]
    if unknown:
        raise UsageError(f"unknown option {unknown[0]!r} (allowed: {', '.join(allowed)})")
    return set(args)


def list_relays(args: list[str]) -> int:
    options = _options(args, ("--json",))
    _, files, plan = routing()
    found = rows(plan, files)
    if "--json" in options:
        print(json.dumps([row.as_dict() for row in found], indent=2))
        return 0
    if not found:
        ui.info("no relay configured: outbound mail is delivered directly")
        return 0
    from rich.table import Table  # lazy: --json and scripts never pay for rich (test_layers.LAZY)
    from rich.text import Text  # plain cells: "[host]:port" is not rich markup

    table = Table(title="relay routes (* = every other sender)", title_justify="left")
    for column in ("sender", "relay", "tls", "auth user", "password", "rule", "credentials from"):
        table.add_column(column)
    for row in found:
        relay = ", ".join(row.relays) if row.relays else "direct (MX)"
        cells = (row.sender, relay, row.tls or "-", row.user or "-", row.secret, row.rule,
                 row.credentials or "-")
        table.add_row(*(Text(cell) for cell in cells))
    ui.console().print(table)
    return 0


def _problems(environ: Mapping[str, str]) -> tuple[list[RelaykitError], list[str], str | None]:
    """Every problem of the environment and the files (not just the first), the plan's
    warnings, and the summary when all is well."""
    problems: list[RelaykitError] = []
    settings = files = None
    for step in ("settings", "files"):
        try:
            if step == "settings":
                settings = load(environ)
            else:
                files = open_store(environ).load(settings.tls_secure if settings else ())
        except ConfigErrors as exc:
            problems += exc.errors
        except ConfigError as exc:
            problems.append(exc)
    if settings is None or files is None:
        return problems, [], None
    try:
        plan = build(settings, files, settings.table_type or "hash")
    except ConfigErrors as exc:
        return problems + exc.errors, [], None
    except ConfigError as exc:
        return problems + [exc], [], None
    try:  # what configure adds: the Postfix overrides, checked by Postfix on a copy
        applied = prepare(environ).plan
    except ConfigErrors as exc:
        return problems + exc.errors, [], None
    except ConfigError as exc:
        return problems + [exc], [], None
    overrides = [f"override {o.origin}: {o.key} = {o.value}" for o in applied.overrides]
    reports = [*settings.dms_reports, *dmsvars.audit_files(settings.config_dir)]
    warnings = [*reports, *dict.fromkeys([*plan.warnings, *applied.warnings])]
    return problems, warnings, "\n".join([summary(plan), *overrides])


def check(args: list[str]) -> int:
    _options(args, ())
    problems, warnings, summary = _problems(os.environ)
    for warning in warnings:
        ui.warn(warning)
    if problems:
        for problem in problems:
            ui.error(str(problem))
        ui.error(f"{len(problems)} problem(s) found; relaykit configure would refuse this configuration")
        return 1
    ui.ok(f"configuration is valid: {summary}")
    return 0
