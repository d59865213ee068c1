"""Commands of the PostgreSQL store: `relaykit db upgrade`, `setup relay link|import`."""

from __future__ import annotations

from relaykit import log
from relaykit.cli import ui
from relaykit.inputs import validate
from relaykit.errors import RelaykitError, UsageError
from relaykit.stores import database_url, open_store


def _store():
    store = open_store()
    if store.kind != "postgresql":
        raise UsageError("this command needs the PostgreSQL store: set RELAYKIT_DATABASE_URL")
    return store


def upgrade_schema(url: str, always: bool = True) -> list[str]:
    """Create or upgrade the schema (`relaykit configure`/`start` run it first, with
    always=False: only when a migration is missing, so a reload stays cheap)."""
    from relaykit.stores.db import ensure_current, upgrade
    from relaykit.stores.postgres import connect

    with connect(url) as conn:
        conn.autocommit = True
        applied = upgrade(conn) if always else ensure_current(conn)
    for name in applied:
        log.info(f"database: applied migration {name}")
    return applied


def upgrade(args: list[str]) -> int:
    url = database_url()
    if not url:
        raise UsageError("RELAYKIT_DATABASE_URL is not set: there is no database to upgrade")
    applied = upgrade_schema(url)
    ui.ok(f"database schema is up to date ({len(applied)} migration(s) applied)")
    return 0


def link(args: list[str]) -> int:
    address = args[0].lower()
    local, at, domain = address.rpartition("@")
    if not at or not local:
        raise RelaykitError(f"address must be user@domain: {args[0]!r}")
    address = f"{validate.field(local, 'address')}@{validate.domain(domain)}"
    hop = validate.bracketed(validate.host(args[1]), validate.port(args[2] if len(args) > 2 else "25"))
    kind = _store().link(address, (hop,))
    ui.ok(f"{address} ({kind}) now relays through {hop}")
    return 0


def import_(args: list[str]) -> int:
    from pathlib import Path

    from relaykit.inputs import dmsfiles as configfiles
    from relaykit.inputs.settings import config_dir

    directory = Path(args[0]) if args else config_dir()
    if not directory.is_dir():
        raise RelaykitError(f"{directory} is not a directory")
    files = configfiles.load(directory)  # ConfigError names file:line; nothing written yet
    counts = _store().import_files(files)
    ui.ok(f"imported {directory}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0
