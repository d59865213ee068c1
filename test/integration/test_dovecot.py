"""DovecotProcess: a real Dovecot, started from relaykit's rendered config, supervised by PID."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from relaykit.model.entries import Account, Origin
from relaykit.edges.dovecot import DovecotError, DovecotProcess, Layout, write
from relaykit.secret import Secret


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture
def layout(tmp_path):
    for directory in (tmp_path, *tmp_path.parents):  # the dovecot user reads the passwd-file
        directory.chmod(directory.stat().st_mode | 0o011)
    sockets = tmp_path / "spool"
    sockets.mkdir()
    return Layout(tmp_path / "dovecot", sockets / "auth")


def test_start_waits_for_the_auth_socket_reload_keeps_it_stop_ends_every_process(layout, tmp_path):
    write(layout, [Account("a@x.test", Secret("{PLAIN}pw"), Origin("t", 1))])
    dovecot = DovecotProcess(layout, log=tmp_path / "dovecot.log").start()
    try:
        assert layout.auth_socket.is_socket() and dovecot.poll() is None
        assert oct(layout.auth_socket.stat().st_mode & 0o777) == "0o660"
        deadline = time.monotonic() + 5
        while not children(dovecot.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = children(dovecot.pid)
        assert workers  # log, anvil...
        dovecot.reload()  # SIGHUP: the master restarts its children, and lives on
        time.sleep(0.3)
        assert dovecot.poll() is None and layout.auth_socket.is_socket()
        workers += children(dovecot.pid)
    finally:
        status = dovecot.stop()
    assert status is not None and dovecot.poll() is not None
    deadline = time.monotonic() + 5  # the master's children exit on their own SIGTERM
    while [pid for pid in (dovecot.pid, *workers) if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in (dovecot.pid, *workers) if alive(pid)]
    assert "starting up without any protocols" in (tmp_path / "dovecot.log").read_text()


def test_a_config_dovecot_refuses_is_reported_with_its_log(layout, tmp_path):
    write(layout, [])
    layout.config.write_text(layout.config.read_text() + "\nno_such_setting = 1\n")
    with pytest.raises(DovecotError) as error:
        DovecotProcess(layout, log=tmp_path / "dovecot.log").start()
    assert "no_such_setting" in str(error.value)
