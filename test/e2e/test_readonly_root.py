"""The image's claim: Postfix + relaykit run with a read-only root filesystem when only
the paths the Dockerfile names are writable, and the queue volume keeps mail across a
stop and start. Reproduced without Docker: a private mount namespace where / is remounted
read-only and those paths are bound from a scratch directory (test/e2e/scripts)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).parent / "scripts" / "readonly_root.sh"
BIN = Path(sys.executable).parent


def _can_run() -> str | None:
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode:
        return "no mount namespaces here (needs root)"
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", 25))
        except OSError:
            return "port 25 is in use (run inside test/netns.sh)"
    if not shutil.which("postfix"):
        return "postfix is not installed"
    return None


@pytest.fixture
def container(tmp_path, mailrun):
    reason = _can_run()
    if reason:
        pytest.skip(reason)
    scratch = tmp_path / "container"

    def start(send: bool, wait: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["unshare", "--mount", "sh", str(SCRIPT), str(scratch), str(REPO), str(BIN),
             str(mailrun.config_dir), "1" if send else "0", wait],
            capture_output=True, text=True, timeout=120, env=mailrun.environ())
        assert result.returncode == 0, result.stdout + result.stderr + _log(scratch)
        return result

    return start, scratch


def _log(scratch: Path) -> str:
    path = scratch / "spool" / "maillog"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def test_relays_mail_with_a_read_only_root_and_keeps_the_queue_across_restarts(container, mailrun):
    start, scratch = container
    relay = mailrun.relay("ses", users={"AKIA": "pw"})
    mailrun.write("postfix-accounts.cf", "alice@shop.example|{PLAIN}x\n")
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(relay.port),
                        RELAY_USER="AKIA", RELAY_PASSWORD="pw")
    relay.rcpt_reply = "451 4.3.0 try again later"  # the relay is down for now

    first = start(send=True, wait="queued")
    assert "root filesystem is read-only" in first.stdout
    assert "healthy: Postfix is running; SMTP [127.0.0.1]:25 says 220" in first.stdout
    assert "queue: 1 message(s)" in first.stdout
    assert relay.messages == []

    relay.rcpt_reply = None  # the relay is back; a new "container" on the same volumes
    second = start(send=False, wait="empty")
    assert "queue: 0 message(s)" in second.stdout, second.stdout + _log(scratch)
    [message] = relay.messages
    assert (message.mail_from, message.login, message.tls) == ("alice@shop.example", "AKIA", True)
