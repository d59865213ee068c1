"""A private, real Postfix instance for tests, the demo and benchmarks.

Built from the image's own templates (target/postfix/main.cf, master.cf), with its own
config, queue and data directories under one root, its log in `<root>/maillog`
(maillog_file + postlogd: no syslog here), its SMTP server on 127.0.0.1:<port>, and DNS
off (smtp_dns_support_level = disabled, smtp_host_lookup = native), so it only ever
talks to loopback. Stopped by `postfix stop`, then by the master's PID if still alive.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "target" / "postfix"


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, and never one handed out before in this process.

    Callers bind it later (Postfix's master.cf, a relay started afterwards), so a bare
    bind(0) could give the same still-unbound port to two of them: a Postfix whose port a
    relay took first fails at start with only "mail system startup failed"."""
    while True:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Postfix binds
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.02)


class PostfixInstance:
    def __init__(self, root: Path, smtpd_port: int | None = None) -> None:
        self.root = Path(root)
        self.config_dir = self.root / "etc"
        self.queue_dir = self.root / "queue"
        self.data_dir = self.root / "data"
        self.maillog = self.root / "maillog"
        self.smtpd_port = smtpd_port or free_port()

    # setup
    def create(self, **params: str) -> PostfixInstance:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        # The postfix user must reach its queue and data directories: temporary
        # directories are 0700, so let others traverse (x only) every ancestor.
        for directory in (self.root, *self.root.parents):
            mode = directory.stat().st_mode
            if not mode & 0o001:
                directory.chmod(mode | 0o011)
        for name in ("main.cf", "master.cf"):
            shutil.copy(TEMPLATES / name, self.config_dir / name)
        self.queue_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.data_dir, "postfix", "postfix")
        base = {
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": f"{self.root}",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "relaykit.test",
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtp_tls_CAfile": "",
            # tests want retries in seconds, not minutes
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtp_connect_timeout": "5s",
        }
        self.postconf({**base, **params})
        self.run("postconf", "-M#", "smtp/inet")
        self.run("postconf", "-M", f"127.0.0.1:{self.smtpd_port}/inet = "
                 f"127.0.0.1:{self.smtpd_port} inet n - n - - smtpd")
        # creates the queue's subdirectories with Postfix's owners and modes
        self.run("postfix", "check")
        return self

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "MAIL_CONFIG": str(self.config_dir)}

    def run(self, program: str, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([program, "-c", str(self.config_dir), *args], capture_output=True,
                                text=True, check=check, input=input)
        if program == "postconf" and args and args[0][:2] in ("-e", "-X", "-M"):
            # Postfix pauses ~2 s before reading a config file younger than that (see
            # relaykit.edges.postfix.Postfix.cool_down); the write is complete, so date it back.
            for name in ("main.cf", "master.cf"):
                past = time.time() - 2.5
                os.utime(self.config_dir / name, (past, past))
        return result

    def postconf(self, params: dict[str, str]) -> None:
        self.run("postconf", "-e", *(f"{k} = {v}" for k, v in params.items()))

    def param(self, name: str) -> str:
        return self.run("postconf", "-h", name).stdout.strip()

    def explicit(self, name: str) -> str | None:
        """The value of `name` if main.cf sets it, else None."""
        out = self.run("postconf", "-n", name).stdout.strip()
        return out.partition(" = ")[2] if out else None

    def query(self, table: str, key: str) -> str | None:
        """What Postfix itself finds for `key` (postmap -q), None when not found."""
        result = subprocess.run(["postmap", "-c", str(self.config_dir), "-q", key, table],
                                capture_output=True, text=True)
        return result.stdout.rstrip("\n") if result.returncode == 0 else None

    def check(self) -> str:
        """`postfix check` through script(1): postfix prints its errors only on a tty."""
        result = subprocess.run(["script", "-qec", f"postfix -c {self.config_dir} check", "/dev/null"],
                                capture_output=True, text=True)
        return result.stdout if result.returncode else ""

    # running
    def start(self) -> None:
        # through script(1): postfix reports why it did not start only on a tty
        result = subprocess.run(["script", "-qec", f"postfix -c {self.config_dir} start", "/dev/null"],
                                capture_output=True, text=True)
        if result.returncode:
            # the master's own fatal error is lost when postlogd is not up yet: say the likely one
            taken = f"\n127.0.0.1:{self.smtpd_port} is taken by another listener" if port_taken(self.smtpd_port) else ""
            raise RuntimeError(f"postfix start failed: {result.stdout.strip()}{taken}\n{self.log()[-2000:]}")
        self.wait_listening()

    def inet_listeners(self) -> list[tuple[str, int]]:
        """(host, port) of master.cf's inet services with a numeric port (`[host:]port inet ...`)."""
        endpoints = [line.split()[0] for line in self.run("postconf", "-M").stdout.splitlines()
                     if line.split()[1:2] == ["inet"]]
        return [(host.strip("[]") or "127.0.0.1", int(port))
                for host, _, port in (endpoint.rpartition(":") for endpoint in endpoints) if port.isdigit()]

    def wait_listening(self, timeout: float = 10.0) -> None:
        """Until every inet service of master.cf accepts connections, not only port 25:
        master(8) opens its listeners one by one, so a test connecting to submission as
        soon as port 25 answers could be refused."""
        for host, port in dict.fromkeys([("127.0.0.1", self.smtpd_port), *self.inet_listeners()]):
            wait_port(port, host, timeout=timeout)

    def master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        pid = self.master_pid()
        self.run("postfix", "stop", check=False)
        if pid:
            reap(pid)

    def reload(self) -> None:
        self.run("postfix", "reload")

    def flush(self) -> None:
        self.run("postqueue", "-f")

    def queue(self) -> list[dict]:
        out = self.run("postqueue", "-j").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def log(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern: str, timeout: float = 15.0, after: int = 0) -> re.Match:
        """Wait until the log (from byte offset `after`) matches `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log()[after:])
            if match:
                return match
            if time.monotonic() > deadline:
                raise TimeoutError(f"no log line matching {pattern!r} in {timeout}s:\n{self.log()[after:][-3000:]}")
            time.sleep(0.05)


def reap(pid: int, timeout: float = 10.0) -> None:
    """After asking a server to stop: wait for its PID to go, SIGKILL it if it does not."""
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
