"""Shared fixtures: a private Postfix config per test, a scratch DMS config dir, and
the real `relaykit`/`setup` console scripts run as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness.postfix_instance import PostfixInstance  # noqa: E402

BIN = Path(sys.executable).parent


@dataclass
class Env:
    """A scratch DMS config directory and a private Postfix config, with the CLI bound to them."""

    config_dir: Path
    postfix: PostfixInstance
    vars: dict[str, str]

    def write(self, name: str, text: str) -> Path:
        path = self.config_dir / name
        path.write_text(text)
        return path

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RELAY", "DEFAULT_RELAY", "LOG_LEVEL"))}
        return {**env, "MAIL_CONFIG": str(self.postfix.config_dir),
                "RELAYKIT_CONFIG_DIR": str(self.config_dir), **self.vars, **extra}

    def run(self, program: str, *args: str, input: str | None = None, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / program), *args], capture_output=True, text=True,
                              input=input, env=self.environ(**extra), timeout=60)

    def configure(self, **extra: str) -> subprocess.CompletedProcess:
        result = self.run("relaykit", "configure", **extra)
        assert result.returncode == 0, result.stderr
        return result

    def table(self, name: str) -> str:
        return (self.postfix.config_dir / name).read_text()

    def lookup(self, table: str, key: str) -> str | None:
        kind = self.postfix.param(_TABLE_PARAM[table]).split(":", 1)[0]
        return self.postfix.query(f"{kind}:{self.postfix.config_dir / table}", key)


_TABLE_PARAM = {"relayhost_map": "sender_dependent_relayhost_maps",
                "sasl_passwd": "smtp_sasl_password_maps", "tls_policy": "smtp_tls_policy_maps"}


@pytest.fixture
def env(tmp_path: Path) -> Env:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    postfix = PostfixInstance(tmp_path / "postfix").create()
    return Env(config_dir, postfix, {})


# PostgreSQL store (issue 7): one real server for the session, a new database per test.
READER_PASSWORD = "r'ead\\er-ü"  # quote, backslash, unicode: must survive URL and lookup file


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    from harness.postgres import PostgresServer

    server = PostgresServer(tmp_path_factory.mktemp("pg")).create().start()
    try:
        server.sql(f"CREATE ROLE relaykit_reader LOGIN PASSWORD '{READER_PASSWORD.replace(chr(39), chr(39) * 2)}'")
        yield server
    finally:
        server.stop()


@dataclass
class Database:
    """A fresh database with relaykit's schema; `url` is the admin one, `reader_url` Postfix's."""

    server: object
    name: str

    @property
    def url(self) -> str:
        return self.server.url(self.name)

    @property
    def reader_url(self) -> str:
        return self.server.url(self.name, "relaykit_reader", READER_PASSWORD)

    def sql(self, statement: str) -> list[tuple]:
        return self.server.sql(statement, self.name)

    def vars(self) -> dict[str, str]:
        return {"RELAYKIT_DATABASE_URL": self.url, "RELAYKIT_POSTFIX_DATABASE_URL": self.reader_url}


@pytest.fixture
def pgdb(pg_server) -> Database:
    import psycopg

    from relaykit.stores.db import upgrade

    db = Database(pg_server, pg_server.database())
    with psycopg.connect(db.url, autocommit=True) as conn:
        upgrade(conn)
        conn.execute("GRANT relaykit_postfix TO relaykit_reader")
    return db
