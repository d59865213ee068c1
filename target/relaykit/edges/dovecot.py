"""Dovecot as Postfix's SASL server: its configuration, and a handle on its process.

`write` renders target/dovecot/dovecot.conf and a passwd-file of the accounts into one
directory (RELAYKIT_DOVECOT_DIR). `DovecotProcess` runs `dovecot -F -c <that config>` in
the foreground, so a supervisor (relaykit start) or a test owns exactly one process tree
and no instance ever touches /etc/dovecot or /run/dovecot.

The texts come from core/dovecot.py. The passwd-file is written atomically, mode 0640
root:dovecot (the auth process runs as `dovecot`); Dovecot re-reads it when its mtime
changes, so account changes need no reload. With the database store, Dovecot's sql passdb
asks PostgreSQL, so a user added on any node can log in on every node at once; its
connection settings hold the role's password: dovecot-sql.conf.ext, 0640 root:dovecot too.

Also `doveadm pw`: passwords are hashed by Dovecot's own code, the code that checks them.
"""

from __future__ import annotations

import grp
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from relaykit.core import dovecot as conf
from relaykit.core.dovecot import Layout, render_passwd, render_sql
from relaykit.core.submission import AUTH_SOCKET
from relaykit.edges.editor import write_if_changed
from relaykit.edges.postfix import Postfix
from relaykit.errors import RelaykitError
from relaykit.model.entries import Account
from relaykit.model.settings import Settings
from relaykit.secret import Secret

__all__ = ["DovecotError", "DovecotProcess", "Layout", "hash_password", "layout_for", "render_config",
           "render_passwd", "render_sql", "write"]

SCHEME = "SHA512-CRYPT"  # DMS's default


def _template() -> Path:
    """target/dovecot/dovecot.conf: in the source tree (editable install), else where
    setup.py's data_files put it (<prefix>/share/relaykit/dovecot)."""
    source = Path(__file__).resolve().parents[2] / "dovecot" / "dovecot.conf"
    return source if source.exists() else Path(sys.prefix) / "share" / "relaykit" / "dovecot" / "dovecot.conf"


def render_config(layout: Layout, template: str | None = None, sql: bool = False) -> str:
    """dovecot.conf for `layout`, from the installed template unless given one."""
    return conf.render_config(layout, template if template is not None else _template().read_text(), sql)


def _group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return -1


def _write_if_changed(path: Path, data: bytes, mode: int, gid: int) -> bool:
    try:
        old_mtime: float | None = path.stat().st_mtime
    except FileNotFoundError:
        old_mtime = None
    if not write_if_changed(path, data, mode, uid=0 if os.geteuid() == 0 and gid != -1 else -1, gid=gid):
        return False
    # Dovecot notices a changed passwd-file by its mtime in whole seconds and its size;
    # a same-size rewrite (a new SHA512-CRYPT hash) in the same second would go unseen.
    if old_mtime is not None and int(path.stat().st_mtime) <= int(old_mtime):
        later = int(old_mtime) + 1
        os.utime(path, (later, later))
    return True


def write(layout: Layout, accounts: Iterable[Account],
          database: Mapping[str, str] | None = None) -> tuple[bool, bool]:
    """Write dovecot.conf and passwd (or, given the `database` connection settings, the
    sql passdb's file). Returns (config changed, passwd changed): only a changed config
    needs `DovecotProcess.reload()`; Dovecot reads the sql file at start too."""
    # first: a bad account or connection setting changes nothing
    sql = render_sql(database).encode() if database is not None else None
    passwd = render_passwd(accounts).encode() if sql is None else None
    config = render_config(layout, sql=sql is not None).encode()
    layout.directory.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.directory, 0o755)  # the dovecot user reads passwd in it
    gid = _group_id("dovecot") if os.geteuid() == 0 else -1
    # only the file of the passdb in use (run/apply.py removes the other one)
    used, data = (layout.sql, sql) if sql is not None else (layout.passwd, passwd)
    passwd_changed = _write_if_changed(used, data, 0o640, gid)
    config_changed = _write_if_changed(layout.config, config, 0o644, -1)
    return config_changed or (sql is not None and passwd_changed), passwd_changed


class DovecotError(RelaykitError):
    pass


class DovecotProcess:
    """One `dovecot -F -c <config>`: start(), reload(), stop(), poll() like Popen.

    `log`: a file for Dovecot's stderr (its log_path); None inherits ours (the container log).
    """

    def __init__(self, layout: Layout, log: Path | None = None) -> None:
        self.layout, self.log = layout, log
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 10.0) -> DovecotProcess:
        """Start Dovecot and wait until Postfix can reach its auth socket."""
        if self.process and self.process.poll() is None:
            return self
        try:  # a socket left by a killed instance would look ready
            self.layout.auth_socket.unlink()
        except FileNotFoundError:
            pass
        stderr = open(self.log, "ab") if self.log else None
        try:
            self.process = subprocess.Popen(["dovecot", "-F", "-c", str(self.layout.config)],
                                            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        except FileNotFoundError:
            raise DovecotError("dovecot is not installed (Debian package dovecot-core)") from None
        finally:
            if stderr:
                stderr.close()
        deadline = time.monotonic() + timeout
        while not self.layout.auth_socket.exists():
            code = self.process.poll()
            if code is not None:
                raise DovecotError(f"dovecot exited with status {code} at start{self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise DovecotError(f"dovecot did not create {self.layout.auth_socket} in {timeout:g}s"
                                   f"{self._log_tail()}")
            time.sleep(0.02)
        return self

    def _log_tail(self) -> str:
        if not self.log:
            return " (see its log above)"
        try:
            return ":\n" + self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def poll(self) -> int | None:
        """The exit status once Dovecot has exited, else None."""
        return self.process.poll() if self.process else None

    def reload(self) -> None:
        """SIGHUP: the master re-reads dovecot.conf and restarts its services."""
        if self.poll() is None and self.process:
            self.process.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (the master stops its children), then SIGKILL after `timeout`."""
        if not self.process:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def layout_for(settings: Settings, postfix: Postfix) -> Layout:
    """Where this configuration's Dovecot lives: RELAYKIT_DOVECOT_DIR, and the auth socket
    in the queue directory of the Postfix at MAIL_CONFIG."""
    queue = Path(postfix.param("queue_directory"))
    return Layout(settings.submission.dovecot_dir, queue / AUTH_SOCKET)


def hash_password(plain: str, scheme: str = SCHEME) -> Secret:
    """`{SCHEME}hash` from `doveadm pw`, fed the password twice on stdin (it asks to retype);
    never an argument (ps(1) shows arguments to every user)."""
    try:
        result = subprocess.run(["doveadm", "-O", "pw", "-s", scheme], input=f"{plain}\n{plain}\n",
                                capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise RelaykitError("doveadm is not installed (Debian package dovecot-core)") from None
    hashed = result.stdout.strip()
    # doveadm exits 0 even after "Passwords don't match": trust only a clean, exact answer.
    if result.returncode or result.stderr.strip() or not hashed.startswith(f"{{{scheme}}}$") or "\n" in hashed:
        raise RelaykitError(f"doveadm pw could not hash the password: {result.stderr.strip() or 'no output'}")
    return Secret(hashed)
