"""`make demo`: relaykit routing real mail, on this machine, in about ten seconds.

A private Postfix configured only through relaykit (DMS files + env), three local capture
relays standing in for Amazon SES, Mailgun and a company smarthost (STARTTLS + AUTH), and
mail from several senders. Prints which relay received each message, as which user, over
what. Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))

from harness.postfix_instance import PostfixInstance  # noqa: E402
from harness.relays import CaptureRelay, CertificateAuthority  # noqa: E402

SENDERS = [
    ("alice@shop.example", "an account's domain: RELAY_HOST (the company smarthost)"),
    ("bob@news.example", "postfix-relaymap.cf: Amazon SES, own credentials"),
    ("carol@mail.example", "postfix-relaymap.cf: Mailgun, credentials by relay"),
    ("dave@lab.example", "opted out (`setup relay exclude-domain`): direct delivery"),
    ("info@shop.example", "an alias of postfix-virtual.cf: RELAY_HOST"),
]


def main() -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
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
        run("relaykit", "configure")
        postfix.start()
        try:
            offset = len(postfix.log())
            with smtplib.SMTP("127.0.0.1", postfix.smtpd_port) as smtp:
                for sender, _ in SENDERS:
                    message = EmailMessage()
                    message["From"], message["To"] = sender, "someone@example.net"
                    message["Subject"] = f"demo from {sender}"
                    message.set_content("Routed by relaykit.\n")
                    smtp.send_message(message)
            expected = len(SENDERS) - 1  # the opted-out sender is not relayed
            deadline = time.monotonic() + 30
            while sum(len(r.messages) for r in relays.values()) < expected and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)

            table = Table(title="relaykit demo: where each message went")
            for column in ("sender", "relay reached", "authenticated as", "TLS", "why"):
                table.add_column(column)
            for sender, why in SENDERS:
                got = [(r, m) for r in relays.values() for m in r.messages if m.mail_from == sender]
                if got:
                    relay, msg = got[0]
                    table.add_row(sender, f"{relay.name} ({relay.nexthop})", msg.login or "-",
                                  "yes" if msg.tls else "NO", why)
                else:
                    status = "deferred" if "deferred" in postfix.log()[offset:] else "not seen"
                    table.add_row(sender, f"none: direct delivery ({status}, DNS is off here)", "-", "-", why)
            console.print(table)
            relayed = sum(len(r.messages) for r in relays.values())
            console.print(f"{relayed} of {expected} relayed messages arrived; "
                          f"Postfix log: {sum(1 for _ in postfix.log().splitlines())} lines")
            if os.environ.get("DEMO_LOG"):
                print(postfix.log())
            return 0 if relayed == expected else 1
        finally:
            postfix.stop()
            for relay in relays.values():
                relay.stop()


if __name__ == "__main__":
    sys.exit(main())
