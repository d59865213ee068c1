"""`make demo`: relaykit routing real mail, on this machine, in about ten seconds.

A private Postfix configured only through relaykit (DMS files + env), three local capture
relays standing in for Amazon SES, Mailgun and a company smarthost (STARTTLS + AUTH), and
mail from several senders. Prints which relay received each message, as which user, over
what. Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))

from harness.postfix_instance import PostfixInstance, wait_port  # noqa: E402
from harness.relays import CaptureRelay, CertificateAuthority  # noqa: E402

SENDERS = [
    ("alice@shop.example", "an account's domain: RELAY_HOST (the company smarthost)"),
    ("bob@news.example", "postfix-relaymap.cf: Amazon SES, own credentials"),
    ("carol@mail.example", "postfix-relaymap.cf: Mailgun, credentials by relay"),
    ("dave@lab.example", "opted out (`setup relay exclude-domain`): direct delivery"),
    ("info@shop.example", "an alias of postfix-virtual.cf: RELAY_HOST"),
]
# Sent again after `setup relay add-domain lab.example ...` while `relaykit start` runs.
LIVE = ("dave@lab.example", "live reload: `setup relay add-domain` while running -> Mailgun")


def send(port: int, senders: list[str], tag: str = "") -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for sender in senders:
            message = EmailMessage()
            message["From"], message["To"] = sender, "someone@example.net"
            message["Subject"] = f"demo from {sender}{tag}"
            message.set_content("Routed by relaykit.\n")
            smtp.send_message(message)


def wait_count(relays: dict, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sum(len(r.messages) for r in relays.values()) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> int:
    from rich.console import Console
    from rich.table import Table

    # Not on a terminal (make demo | tee, CI): rich would squeeze the table into 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="relaykit-demo-") as tmp:
        root = Path(tmp)
        ca = CertificateAuthority(root / "certs")
        relays = {
            "smarthost": CaptureRelay("company smarthost", ca, users={"relay-user": "s3cret"}),
            "ses": CaptureRelay("Amazon SES", ca, users={"AKIANEWS": "ses-pass"}),
            "mailgun": CaptureRelay("Mailgun", ca, users={"postmaster@mg.mail.example": "mg-pass"}),
        }
        for relay in relays.values():
            relay.start()
        postfix = PostfixInstance(root / "postfix").create()
        config = root / "config"
        config.mkdir()
        (config / "postfix-accounts.cf").write_text(
            "alice@shop.example|{SHA512-CRYPT}$6$x$y\nbob@news.example|{SHA512-CRYPT}$6$x$y\n"
            "carol@mail.example|{SHA512-CRYPT}$6$x$y\ndave@lab.example|{SHA512-CRYPT}$6$x$y\n")
        (config / "postfix-virtual.cf").write_text("info@shop.example alice@shop.example\n")
        env = {**os.environ, "MAIL_CONFIG": str(postfix.config_dir), "RELAYKIT_CONFIG_DIR": str(config),
               "RELAY_HOST": "127.0.0.1", "RELAY_PORT": str(relays["smarthost"].port),
               "RELAY_USER": "relay-user"}
        secret = root / "relay_password"
        secret.write_text("s3cret\n")
        env["RELAY_PASSWORD_FILE"] = str(secret)

        def row(sender: str, why: str, live: bool = False) -> tuple[str, ...]:
            got = [(r, m) for r in relays.values() for m in r.messages
                   if m.mail_from == sender and (b"(live)" in m.data) == live]
            if got:
                relay, msg = got[0]
                return sender, f"{relay.name} ({relay.nexthop})", msg.login or "-", "yes" if msg.tls else "NO", why
            status = "deferred" if "deferred" in postfix.log()[offset:] else "not seen"
            return sender, f"none: direct delivery ({status}, DNS is off here)", "-", "-", why

        def run(*args: str, stdin: str | None = None) -> None:
            shown = " ".join(args)
            console.print(f"[dim]$ {shown}[/]")
            subprocess.run([str(bin_dir / args[0]), *args[1:]], env=env, check=True, input=stdin, text=True)

        run("setup", "relay", "add-domain", "news.example", "127.0.0.1", str(relays["ses"].port))
        run("setup", "relay", "add-auth", "news.example", "AKIANEWS", stdin="ses-pass\n")
        run("setup", "relay", "add-domain", "mail.example", "127.0.0.1", str(relays["mailgun"].port))
        (config / "postfix-sasl-password.cf").open("a").write(
            f"[127.0.0.1]:{relays['mailgun'].port} postmaster@mg.mail.example:mg-pass\n")
        run("setup", "relay", "exclude-domain", "lab.example")
        # The container's entrypoint: configure, Postfix in the foreground, live reload.
        console.print("[dim]$ relaykit start &[/]")
        daemon = subprocess.Popen([str(bin_dir / "relaykit"), "start"], env=env, stdin=subprocess.DEVNULL)
        try:
            wait_port(postfix.smtpd_port, timeout=30)
            offset = len(postfix.log())
            send(postfix.smtpd_port, [sender for sender, _ in SENDERS])
            expected = len(SENDERS) - 1  # the opted-out sender is not relayed
            wait_count(relays, expected)
            expected += 1  # and the live-reload message
            time.sleep(0.5)
            rows = [row(sender, why) for sender, why in SENDERS]

            # Live reload: route the opted-out domain while Postfix runs; no restart.
            run("setup", "relay", "add-domain", "lab.example", "127.0.0.1", str(relays["mailgun"].port))
            edited = time.monotonic()
            while row(*LIVE, live=True)[1].startswith("none") and time.monotonic() < edited + 10:
                send(postfix.smtpd_port, [LIVE[0]], " (live)")
                wait_count(relays, sum(len(r.messages) for r in relays.values()) + 1, timeout=0.3)
            console.print(f"[dim]new route in use {time.monotonic() - edited:.2f}s after the edit[/]")

            table = Table(title="relaykit demo: where each message went")
            for column in ("sender", "relay reached", "authenticated as", "TLS", "why"):
                table.add_column(column)
            rows.append(row(*LIVE, live=True))
            for cells in rows:
                table.add_row(*cells)
            console.print(table)
            relayed = sum(not cells[1].startswith("none") for cells in rows)
            console.print(f"{relayed} of {expected} relayed messages arrived; "
                          f"Postfix log: {sum(1 for _ in postfix.log().splitlines())} lines")
            if os.environ.get("DEMO_LOG"):
                print(postfix.log())
            return 0 if relayed >= expected else 1
        finally:
            daemon.send_signal(signal.SIGTERM)  # as `docker stop` does
            try:
                daemon.wait(15)
            except subprocess.TimeoutExpired:
                daemon.kill()
            postfix.stop()
            for relay in relays.values():
                relay.stop()


if __name__ == "__main__":
    sys.exit(main())
