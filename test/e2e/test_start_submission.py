"""`relaykit start` with submission on: it supervises Dovecot with Postfix, and an account
added while it runs can log in and send, with no restart."""

from __future__ import annotations

import smtplib
import ssl
import time
from email.message import EmailMessage

import pytest

from harness.postfix_instance import free_port, wait_port

pytestmark = pytest.mark.e2e


def test_start_runs_dovecot_and_a_new_account_can_send_at_once(mailrun):
    relay = mailrun.relay("default", users={"relay-user": "relay-pass"})
    port = free_port()
    mailrun.vars.update(
        RELAY_HOST="127.0.0.1", RELAY_PORT=str(relay.port), RELAY_USER="relay-user", RELAY_PASSWORD="relay-pass",
        ENABLE_SUBMISSION="1", SUBMISSION_ADDRESS="127.0.0.1", SUBMISSION_PORT=str(port), SUBMISSIONS_PORT="0",
        SSL_TYPE="manual", SSL_CERT_PATH=str(mailrun.ca.cert_file), SSL_KEY_PATH=str(mailrun.ca.key_file),
        RELAYKIT_DOVECOT_DIR=str(mailrun.root / "dovecot"),
    )
    mailrun.run("setup", "email", "add", "alice@one.example", input="first-pass\n")
    daemon = mailrun.daemon()
    wait_port(port)
    assert "dovecot" in daemon.log()

    mailrun.run("setup", "email", "add", "carol@one.example", input="carol-pass\n")  # while running
    context = ssl.create_default_context(cafile=str(mailrun.ca.ca_file))
    message = EmailMessage()
    message["From"], message["To"] = "carol@one.example", "someone@example.net"
    message["Subject"] = f"new account {time.monotonic_ns()}"
    message.set_content("hi\n")
    deadline = time.monotonic() + 10
    while True:  # the new account is live once live reload has rewritten Dovecot's passwd-file
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                smtp.starttls(context=context)
                smtp.login("carol@one.example", "carol-pass")
                smtp.send_message(message)
            break
        except smtplib.SMTPAuthenticationError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    got = mailrun.wait_received(message["Subject"])
    assert [(r.name, m.login, m.mail_from) for r, m in got] == [("default", "relay-user", "carol@one.example")]
