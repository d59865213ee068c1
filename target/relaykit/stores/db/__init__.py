"""The relaykit database schema: numbered plain-SQL migrations, applied in order.

`NNN_name.sql` files beside this module are applied once each, in number order, each in
its own transaction, and recorded in relaykit.schema_migrations. Every file is written
idempotently too (IF NOT EXISTS, OR REPLACE), so a half-recorded run is harmless.
Several nodes starting at once serialize on a transaction-scoped advisory lock.
"""

from __future__ import annotations

import os

MIGRATIONS_DIR = os.path.dirname(__file__)
_LOCK = 0x72656C61  # "rela": pg_advisory_xact_lock key shared by every relaykit node


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, path) of every migration file, in order."""
    found = []
    for name in os.listdir(MIGRATIONS_DIR):
        number, _, rest = name.partition("_")
        if name.endswith(".sql") and number.isdigit():
            found.append((int(number), name, os.path.join(MIGRATIONS_DIR, name)))
    return sorted(found)


def upgrade(conn) -> list[str]:
    """Apply the migrations this database lacks; the names of those applied."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS relaykit")
        conn.execute("CREATE TABLE IF NOT EXISTS relaykit.schema_migrations ("
                     " version integer PRIMARY KEY, name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")
        done = {row[0] for row in conn.execute("SELECT version FROM relaykit.schema_migrations")}
        for number, name, path in migrations():
            if number in done:
                continue
            with open(path, encoding="utf-8") as file:
                conn.execute(file.read())
            conn.execute("INSERT INTO relaykit.schema_migrations (version, name) VALUES (%s, %s)",
                         (number, name))
            applied_now.append(name)
    return applied_now


def ensure_current(conn) -> list[str]:
    """upgrade() only when the database lacks a migration: a `setup` command's connection
    then costs one cheap query, not the advisory lock and DDL checks."""
    latest = migrations()[-1][0]
    if conn.execute("SELECT to_regclass('relaykit.schema_migrations')").fetchone()[0] is not None:
        if conn.execute("SELECT max(version) FROM relaykit.schema_migrations").fetchone()[0] == latest:
            return []
    return upgrade(conn)
