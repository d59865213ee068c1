"""Submission with the PostgreSQL store, through the real `relaykit start`: Dovecot checks
passwords in the database (sql passdb, as the node's read-only role) and Postfix's sender
login map comes from it, so a user added on any node logs in on every node at once."""

from __future__ import annotations

import smtplib
import ssl
import stat
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from harness.postfix_instance import free_port

pytestmark = pytest.mark.e2e

ALICE, ALICE_PW = "alice@one.example", "alice's pw"
CAROL, CAROL_PW = "carol@one.example", "carol pw #2"
OUTSIDE = "someone@elsewhere.example"
# Everything Dovecot's config reader or libpq's conninfo could take for syntax.
ROLE_PASSWORD = "d'q\"b\\s $ENV:HOME #c %u"


def message(sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, OUTSIDE
    msg["Subject"] = f"submitted as {sender} at {time.monotonic_ns()}"
    msg.set_content("relaykit submission e2e (database store)\n")
    return msg


def test_database_users_log_in_at_once_and_send_only_as_themselves(mailrun, pgdb):
    role = "dovecot_" + uuid.uuid4().hex[:8]
    pgdb.sql(f"CREATE ROLE {role} LOGIN PASSWORD '{ROLE_PASSWORD.replace(chr(39), chr(39) * 2)}' "
             "IN ROLE relaykit_postfix")
    relay = mailrun.relay("relay", users={"relay-user": "relay-pass"})
    port = free_port()
    dovecot_dir = mailrun.root / "dovecot"
    mailrun.vars.update(
        RELAYKIT_DATABASE_URL=pgdb.url, RELAYKIT_POSTFIX_DATABASE_URL=pgdb.server.url(pgdb.name, role, ROLE_PASSWORD),
        ENABLE_SUBMISSION="1", SUBMISSION_ADDRESS="127.0.0.1", SUBMISSION_PORT=str(port), SUBMISSIONS_PORT="0",
        SSL_TYPE="manual", SSL_CERT_PATH=str(mailrun.ca.cert_file), SSL_KEY_PATH=str(mailrun.ca.key_file),
        RELAYKIT_DOVECOT_DIR=str(dovecot_dir))
    mailrun.run("setup", "email", "add", ALICE, input=ALICE_PW + "\n")
    mailrun.run("setup", "alias", "add", "info@one.example", ALICE)
    mailrun.run("setup", "relay", "add-domain", "one.example", "127.0.0.1", str(relay.port))
    mailrun.run("setup", "relay", "add-auth", "one.example", "relay-user", input="relay-pass\n")
    daemon = mailrun.daemon()
    context = ssl.create_default_context(cafile=str(mailrun.ca.ca_file))

    def submission(source: str = "127.0.0.1") -> smtplib.SMTP:
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0))
        smtp.starttls(context=context)
        smtp.ehlo()
        return smtp

    # a user of the database sends as herself and as her alias, via her domain's relay
    with submission() as smtp:
        smtp.login(ALICE, ALICE_PW)
        sent = [message(ALICE), message("info@one.example")]
        for msg in sent:
            smtp.send_message(msg)
        # and as nobody else: 553 from the database's sender login map
        assert smtp.mail("stranger@one.example")[0] == 250
        code, reply = smtp.rcpt(OUTSIDE)
        assert code == 553 and b"not owned by user" in reply, reply
    for msg in sent:
        got = mailrun.wait_received(msg["Subject"])
        assert [(r.name, m.login, m.tls, m.mail_from) for r, m in got] == [
            ("relay", "relay-user", True, msg["From"])]

    # a wrong password is refused (Dovecot's penalty is per client address: a fresh one)
    with submission("127.0.0.3") as smtp:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            smtp.user, smtp.password = ALICE, "not the password"
            smtp.auth("PLAIN", smtp.auth_plain)
        assert refused.value.smtp_code == 535

    # a user added while running logs in at once: no file, no reload, one query per login
    offset = len(daemon.log())
    mailrun.run("setup", "email", "add", CAROL, input=CAROL_PW + "\n")
    with submission() as smtp:
        smtp.login(CAROL, CAROL_PW)
        msg = message(CAROL)
        smtp.send_message(msg)
    assert [r.name for r, _ in mailrun.wait_received(msg["Subject"])] == ["relay"]
    assert "reloaded" not in daemon.log()[offset:]

    # the role's password: in Dovecot's 0640 file only, never in a log or a passwd-file
    sql_file = Path(dovecot_dir, "dovecot-sql.conf.ext")
    assert stat.S_IMODE(sql_file.stat().st_mode) == 0o640
    assert not Path(dovecot_dir, "passwd").exists()
    for text in (daemon.log(), mailrun.postfix.log()):
        assert ROLE_PASSWORD not in text and "relay-pass" not in text and ALICE_PW not in text
