"""Commands of the PostgreSQL store: `relaykit db upgrade`, `setup relay link|import`.

These need the database itself (links by address and imports are what only it holds), so
they open PostgresStore directly instead of asking open_store() which store is in use.
"""

from __future__ import annotations

from pathlib import Path

from relaykit.cli import ui
from relaykit.errors import RelaykitError, UsageError
from relaykit.inputs import dmsfiles, validate
from relaykit.inputs.env import database_url
from relaykit.core.plan import build
from relaykit.inputs.settings import config_dir, load
from relaykit.stores.postgres import PostgresStore, upgrade_schema


def _database() -> PostgresStore:
    url = database_url()
    if not url:
        raise UsageError("this command needs the PostgreSQL store: set RELAYKIT_DATABASE_URL")
    return PostgresStore(url)


def upgrade(args: list[str]) -> int:
    url = database_url()
    if not url:
        raise UsageError("RELAYKIT_DATABASE_URL is not set: there is no database to upgrade")
    applied = upgrade_schema(url)
    ui.ok(f"database schema is up to date ({len(applied)} migration(s) applied)")
    return 0


def link(args: list[str]) -> int:
    address = validate.address(args[0].lower(), "address")
    hop = validate.bracketed(validate.host(args[1]), validate.port(args[2] if len(args) > 2 else "25"))
    kind = _database().link(address, (hop,))
    ui.ok(f"{address} ({kind}) now relays through {hop}")
    return 0


def import_(args: list[str]) -> int:
    directory = Path(args[0]) if args else config_dir()
    if not directory.is_dir():
        raise RelaykitError(f"{directory} is not a directory")
    files = dmsfiles.load(directory)  # ConfigError names file:line; nothing written yet
    build(load(), files, "hash")  # what configure would refuse (a key given twice...), with its line
    counts = _database().import_files(files)
    ui.ok(f"imported {directory}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0
