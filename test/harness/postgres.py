"""A private, real PostgreSQL server for tests: Debian's binaries, a temp data dir, a
private unix socket dir and a free 127.0.0.1 port; stopped by `pg_ctl stop`, then by the
postmaster's PID if still alive.

The superuser `postgres` logs in with a password over TCP (scram-sha-256), as a
relaykit node would; each test gets its own database (`database()`).
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

from harness.postfix_instance import free_port, reap, wait_port


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found (Debian package postgresql)")
    return Path(found[-1]).parent


class PostgresServer:
    ADMIN_PASSWORD = "adm'n\\pw"  # quote and backslash: the URL must carry them intact

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = Path(root)
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.port = port or free_port()
        self.bin = _bin_dir()

    def _as_postgres(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.bin / program), *args], user="postgres", group="postgres",
                                capture_output=True, text=True, cwd="/")
        if check and result.returncode:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result

    def create(self) -> PostgresServer:
        self.root.mkdir(parents=True, exist_ok=True)
        for directory in (self.root, *self.root.parents):  # postgres must traverse to its dirs
            mode = directory.stat().st_mode
            if not mode & 0o001:
                directory.chmod(mode | 0o011)
        self.sockets.mkdir(exist_ok=True)
        pwfile = self.root / "pw"
        pwfile.write_text(self.ADMIN_PASSWORD + "\n")
        for path in (self.root, self.sockets, pwfile):
            shutil.chown(path, "postgres", "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                          "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8")
        pwfile.unlink()
        return self

    def start(self) -> PostgresServer:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                   f"-c unix_socket_directories={self.sockets} -c fsync=off -c full_page_writes=off")
        self._as_postgres("pg_ctl", "start", "-w", "-D", str(self.data), "-o", options,
                          "-l", str(self.root / "server.log"))
        wait_port(self.port)
        return self

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        pid = self.pid()
        self._as_postgres("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", check=False)
        if pid:
            reap(pid)

    def url(self, dbname: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        password = self.ADMIN_PASSWORD if password is None and user == "postgres" else password
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def database(self) -> str:
        """A new, empty database; its name."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.sql(f"CREATE DATABASE {name}")
        return name
