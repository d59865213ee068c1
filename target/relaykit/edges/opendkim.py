"""OpenDKIM: writes its configuration and key copies (core/dkim.py's Files), and runs it.

The directory (RELAYKIT_DKIM_DIR) is traversable; run/ in it is the daemon's (socket and
pid file: it makes them as `opendkim`; Postfix's smtpd connects to the socket); keys/ is 0700 and each key copy 0600, owned by the `opendkim` user that the
daemon drops to (RequireSafeKeys: OpenDKIM refuses a key others may read). The config
directory's keys stay as they are (mode 0600, root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from relaykit.core.dkim import Files
from relaykit.edges.editor import write_if_changed
from relaykit.errors import ConfigError, RelaykitError

USER = "opendkim"


def user() -> str | None:
    """The account OpenDKIM drops to: `opendkim` when we are root and it exists."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return None
    return USER


def _unsafe_parent(directory: Path) -> Path | None:
    """A directory above `directory` that others may write (/tmp): OpenDKIM's
    RequireSafeKeys then refuses every key, and each message would get a 451."""
    for parent in Path(directory).resolve().parents:
        if parent.exists() and parent.stat().st_mode & 0o002:
            return parent
    return None


def write(files: Files) -> bool:
    """Write the configuration and the key copies; True when anything changed."""
    unsafe = _unsafe_parent(files.directory)
    if unsafe:
        raise ConfigError(f"{files.directory} is under {unsafe}, which others may write: OpenDKIM would refuse "
                          "its keys; choose a directory such as /run/relaykit/opendkim", "RELAYKIT_DKIM_DIR")
    owner = user()
    ids = (pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid) if owner else None
    files.directory.mkdir(parents=True, exist_ok=True)
    files.directory.chmod(0o755)
    keys, run = files.directory / "keys", files.directory / "run"
    for directory, mode in ((keys, 0o700), (run, 0o755)):
        directory.mkdir(mode=mode, exist_ok=True)
        directory.chmod(mode)
        if ids:
            os.chown(directory, *ids)
    changed = False
    for name, text in files.texts.items():
        changed |= write_if_changed(files.directory / name, text.encode(), mode=0o644)
    for name, source in files.keys.items():
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise RelaykitError(f"cannot read the DKIM key {source}: {exc.strerror}") from None
        changed |= write_if_changed(keys / name, data, mode=0o600, uid=ids[0] if ids else -1,
                                    gid=ids[1] if ids else -1)
    for stale in keys.iterdir():
        if stale.name not in files.keys:
            stale.unlink()
            changed = True
    return changed


class OpenDKIMProcess:
    """`opendkim -f -x <config>`: in the foreground, one process a supervisor or a test owns."""

    def __init__(self, files: Files) -> None:
        self.files = files
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> OpenDKIMProcess:
        program = shutil.which("opendkim") or "/usr/sbin/opendkim"
        self.files.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen([program, "-f", "-x", str(self.files.config)], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.files.socket.exists():
            if self.process.poll() is not None:
                raise RelaykitError(f"opendkim exited with status {self.process.returncode} (see its log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise RelaykitError(f"opendkim did not create {self.files.socket} in {timeout:.0f}s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
