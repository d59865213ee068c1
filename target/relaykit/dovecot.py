"""Dovecot as Postfix's SASL server: its configuration, and a handle on its process.

`write` renders target/dovecot/dovecot.conf and a passwd-file of the accounts into one
directory (RELAYKIT_DOVECOT_DIR). `DovecotProcess` runs `dovecot -F -c <that config>` in
the foreground, so a supervisor (relaykit start) or a test owns exactly one process tree
and no instance ever touches /etc/dovecot or /run/dovecot.

Why a separate passwd-file: postfix-accounts.cf is DMS's `user@domain|{SCHEME}hash`,
Dovecot's passwd-file driver wants `user@domain:{SCHEME}hash`. The file is written
atomically, mode 0640 root:dovecot (the auth process runs as `dovecot`); Dovecot re-reads
it when its mtime changes, so account changes need no reload.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from string import Template

from relaykit.configfiles import Account
from relaykit.editor import write_atomic
from relaykit.errors import ConfigError, ConfigErrors, RelaykitError

def _template() -> Path:
    """target/dovecot/dovecot.conf: in the source tree (editable install), else where
    setup.py's data_files put it (<prefix>/share/relaykit/dovecot)."""
    import sys

    source = Path(__file__).resolve().parents[1] / "dovecot" / "dovecot.conf"
    return source if source.exists() else Path(sys.prefix) / "share" / "relaykit" / "dovecot" / "dovecot.conf"


@dataclass(frozen=True)
class Layout:
    directory: Path  # dovecot.conf and passwd
    auth_socket: Path  # <Postfix queue_directory>/private/auth

    @property
    def config(self) -> Path:
        return self.directory / "dovecot.conf"

    @property
    def passwd(self) -> Path:
        return self.directory / "passwd"

    @property
    def base_dir(self) -> Path:
        return self.directory / "run"


def render_config(layout: Layout, template: str | None = None) -> str:
    text = template if template is not None else _template().read_text()
    return Template(text).substitute(
        directory=layout.directory, base_dir=layout.base_dir, state_dir=layout.directory / "state",
        passwd=layout.passwd, auth_socket=layout.auth_socket)


def render_passwd(accounts: Iterable[Account]) -> str:
    """`user@domain:{SCHEME}hash` lines. A ':' or a blank would shift passwd-file's
    fields (the hash would be read as a uid...), so such an account is an error."""
    lines, errors = [], []
    for account in accounts:
        hash_ = account.password_hash.reveal()
        if ":" in account.address or ":" in hash_ or not hash_ or any(c.isspace() for c in hash_):
            errors.append(ConfigError("the address or hash contains ':' or a blank, or the hash is empty: "
                                      "Dovecot could not read it", account.origin))
        else:
            # lower-cased: Dovecot lower-cases the login (auth_username_format %Lu) too
            lines.append(f"{account.address.lower()}:{hash_}\n")
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return "".join(lines)


def _group_id(name: str) -> int:
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return -1


def _write_if_changed(path: Path, data: bytes, mode: int, gid: int) -> bool:
    old_mtime = None
    try:
        stat = path.stat()
        old_mtime = stat.st_mtime
        if path.read_bytes() == data and stat.st_mode & 0o777 == mode and (gid == -1 or stat.st_gid == gid):
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data, mode, uid=0 if os.geteuid() == 0 and gid != -1 else -1, gid=gid)
    # Dovecot notices a changed passwd-file by its mtime in whole seconds and its size;
    # a same-size rewrite (a new SHA512-CRYPT hash) in the same second would go unseen.
    if old_mtime is not None and int(path.stat().st_mtime) <= int(old_mtime):
        later = int(old_mtime) + 1
        os.utime(path, (later, later))
    return True


def write(layout: Layout, accounts: Iterable[Account]) -> tuple[bool, bool]:
    """Write dovecot.conf and passwd. Returns (config changed, passwd changed): only a
    changed config needs `DovecotProcess.reload()`."""
    passwd = render_passwd(accounts).encode()  # first: a bad account changes nothing
    config = render_config(layout).encode()
    layout.directory.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.directory, 0o755)  # the dovecot user reads passwd in it
    gid = _group_id("dovecot") if os.geteuid() == 0 else -1
    passwd_changed = _write_if_changed(layout.passwd, passwd, 0o640, gid)
    config_changed = _write_if_changed(layout.config, config, 0o644, -1)
    return config_changed, passwd_changed


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


def layout_for(settings, postfix) -> Layout:
    """Where this configuration's Dovecot lives: RELAYKIT_DOVECOT_DIR, and the auth socket
    in the queue directory of the Postfix at MAIL_CONFIG (relaykit.settings.Settings,
    relaykit.postfix.Postfix)."""
    from relaykit.submission import AUTH_SOCKET

    queue = Path(postfix.param("queue_directory"))
    return Layout(settings.submission.dovecot_dir, queue / AUTH_SOCKET)
