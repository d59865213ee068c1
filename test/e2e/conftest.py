"""End-to-end fixtures: a private Postfix configured only through relaykit, local capture
relays, and real SMTP. Every test gets its own instance and relays; all are stopped."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from harness.postfix_instance import PostfixInstance
from harness.relays import CaptureRelay, CertificateAuthority

BIN = Path(os.environ.get("RELAYKIT_BIN", Path(__import__("sys").executable).parent))


@pytest.fixture(scope="session")
def ca(tmp_path_factory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


class MailRun:
    """One private Postfix + relays; `configure()` runs the real `relaykit configure`."""

    def __init__(self, root: Path, ca: CertificateAuthority) -> None:
        self.root, self.ca = root, ca
        self.postfix = PostfixInstance(root / "postfix").create(smtp_tls_CAfile=str(ca.ca_file))
        self.config_dir = root / "config"
        self.config_dir.mkdir()
        self.vars: dict[str, str] = {}
        self.relays: list[CaptureRelay] = []
        self.daemons: list[Daemon] = []

    def relay(self, name: str, **kwargs) -> CaptureRelay:
        relay = CaptureRelay(name, self.ca, **kwargs).start()
        self.relays.append(relay)
        return relay

    def write(self, name: str, text: str) -> Path:
        path = self.config_dir / name
        path.write_text(text)
        return path

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY", "DEFAULT_RELAY"))}
        return {**env, "MAIL_CONFIG": str(self.postfix.config_dir),
                "RELAYKIT_CONFIG_DIR": str(self.config_dir), **self.vars, **extra}

    def run(self, program: str, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / program), *args], capture_output=True, text=True,
                                input=input, env=self.environ(), timeout=60)
        if check and result.returncode:
            raise AssertionError(f"{program} {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def configure(self) -> None:
        self.run("relaykit", "configure")

    def start(self) -> None:
        self.configure()
        self.postfix.start()

    def send(self, sender: str, recipient: str = "someone@example.net", subject: str | None = None) -> str:
        """Submit one message to the private Postfix over SMTP; returns its subject."""
        message = EmailMessage()
        message["From"], message["To"] = sender, recipient
        message["Subject"] = subject or f"from {sender} at {time.monotonic_ns()}"
        message.set_content("relaykit e2e\n")
        with smtplib.SMTP("127.0.0.1", self.postfix.smtpd_port, timeout=30) as smtp:
            # the envelope given, not parsed from the headers: Debian's python3.11 (the image's)
            # parses a domain literal (someone@[127.0.0.2]) as no address at all
            smtp.send_message(message, from_addr=sender, to_addrs=[recipient])
        return message["Subject"]

    def received(self, subject: str):
        """(relay, message) pairs of every relay that got the message with this subject."""
        return [(r, m) for r in self.relays for m in r.messages if subject.encode() in m.data]

    def wait_received(self, subject: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while not self.received(subject):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no relay received {subject!r}:\n{self.postfix.log()[-3000:]}")
            time.sleep(0.05)
        return self.received(subject)

    def daemon(self, wait: bool = True) -> Daemon:
        """Run the real `relaykit start` (the container entrypoint) for this instance."""
        daemon = Daemon(self.root / f"relaykit-start-{len(self.daemons)}.log", self.environ(), self.postfix)
        self.daemons.append(daemon)
        if wait:
            daemon.wait_ready()
        return daemon

    def start_dovecot(self):
        """Dovecot as the SASL server of this Postfix, from the files `configure` wrote
        (RELAYKIT_DOVECOT_DIR = <root>/dovecot); its log in <root>/dovecot.log."""
        from relaykit.edges.dovecot import DovecotProcess, Layout
        from relaykit.core.submission import AUTH_SOCKET

        layout = Layout(Path(self.vars["RELAYKIT_DOVECOT_DIR"]), self.postfix.queue_dir / AUTH_SOCKET)
        self.dovecot = DovecotProcess(layout, log=self.root / "dovecot.log").start()
        return self.dovecot

    def stop(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
        if getattr(self, "dovecot", None):
            self.dovecot.stop()
        self.postfix.stop()
        for relay in self.relays:
            relay.stop()


class Daemon:
    """A running `relaykit start`; its stdout+stderr go to `log_file`."""

    def __init__(self, log_file: Path, environ: dict[str, str], postfix: PostfixInstance) -> None:
        self.log_file, self.postfix = log_file, postfix
        with open(log_file, "ab") as out:  # append: Postfix's postlogd may write to it too
            self.process = subprocess.Popen([str(BIN / "relaykit"), "start"], env=environ,
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until the config directory is watched and Postfix answers on each of its ports."""
        self.wait_log(r"watching .* for changes", timeout)
        self.postfix.wait_listening(timeout)

    def wait_log(self, pattern: str, timeout: float = 15.0, after: int = 0) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while not (match := regex.search(self.log()[after:])):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise TimeoutError(f"relaykit start (exit {self.process.poll()}) logged no {pattern!r}:\n"
                                   f"{self.log()[after:][-3000:]}")
            time.sleep(0.02)
        return match

    def wait_exit(self, timeout: float = 15.0) -> int:
        return self.process.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, as `docker stop` does; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def mailrun(tmp_path: Path, ca: CertificateAuthority):
    run = MailRun(tmp_path, ca)
    try:
        yield run
    finally:
        run.stop()


@pytest.fixture(scope="module")
def module_mailrun(tmp_path_factory, ca):
    """One MailRun shared by a module's tests, for systems that take seconds to start."""
    run = MailRun(tmp_path_factory.mktemp("run"), ca)
    try:
        yield run
    finally:
        run.stop()
