"""Submission for users, over real SMTP: a private Postfix with relaykit's 587/465
services, a real Dovecot checking the passwords `setup email add` hashed, and capture
relays. One running system serves the whole module (each start costs seconds)."""

from __future__ import annotations

import smtplib
import ssl
import time
from email.message import EmailMessage

import pytest

from harness.postfix_instance import free_port

pytestmark = pytest.mark.e2e

ALICE, ALICE_PW = "alice@one.example", "correct horse battery"
BOB, BOB_PW = "bob@two.example", "b0b's pass#word"
OUTSIDE = "someone@elsewhere.example"


@pytest.fixture(scope="module")
def run(module_mailrun):
    mailrun, ca = module_mailrun, module_mailrun.ca
    default = mailrun.relay("default", users={"relay-user": "relay-pass"})
    ses = mailrun.relay("ses", users={"AKIA": "ses-pass"})
    mailrun.submission_port, mailrun.submissions_port = free_port(), free_port()
    mailrun.vars.update(
        RELAY_HOST="127.0.0.1", RELAY_PORT=str(default.port), RELAY_USER="relay-user", RELAY_PASSWORD="relay-pass",
        ENABLE_SUBMISSION="1", SUBMISSION_ADDRESS="127.0.0.1",
        SUBMISSION_PORT=str(mailrun.submission_port), SUBMISSIONS_PORT=str(mailrun.submissions_port),
        SSL_TYPE="manual", SSL_CERT_PATH=str(ca.cert_file), SSL_KEY_PATH=str(ca.key_file),
        RELAYKIT_DOVECOT_DIR=str(mailrun.root / "dovecot"),
    )
    # Accounts made by the real CLI: passwords on stdin, hashed by doveadm.
    mailrun.run("setup", "email", "add", ALICE, input=ALICE_PW + "\n")
    mailrun.run("setup", "email", "add", BOB, input=BOB_PW + "\n")
    mailrun.write("postfix-virtual.cf", f"info@one.example {ALICE}\n")
    mailrun.run("setup", "relay", "add-domain", "two.example", "127.0.0.1", str(ses.port))
    mailrun.run("setup", "relay", "add-auth", "two.example", "AKIA", input="ses-pass\n")
    mailrun.configure()
    mailrun.start_dovecot()
    mailrun.postfix.start()
    return mailrun


def tls_context(run) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(run.ca.ca_file))


def message(sender: str, recipient: str = OUTSIDE) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, recipient
    msg["Subject"] = f"submitted as {sender} at {time.monotonic_ns()}"
    msg.set_content("relaykit submission e2e\n")
    return msg


def submission(run, source: str = "127.0.0.1") -> smtplib.SMTP:
    """Port 587 after STARTTLS (the certificate is verified against the test CA)."""
    smtp = smtplib.SMTP("127.0.0.1", run.submission_port, timeout=30, source_address=(source, 0))
    smtp.starttls(context=tls_context(run))
    smtp.ehlo()
    return smtp


def test_authenticated_users_mail_goes_through_their_domains_relay_with_its_credentials(run):
    with submission(run) as smtp:  # 587, STARTTLS
        smtp.login(ALICE, ALICE_PW)
        first = message(ALICE)
        smtp.send_message(first)
    with smtplib.SMTP_SSL("127.0.0.1", run.submissions_port, timeout=30, context=tls_context(run)) as smtp:  # 465
        smtp.login(BOB, BOB_PW)
        second = message(BOB)
        smtp.send_message(second)
    got_first = run.wait_received(first["Subject"])
    got_second = run.wait_received(second["Subject"])
    assert [(r.name, m.login, m.tls, m.mail_from) for r, m in got_first] == [("default", "relay-user", True, ALICE)]
    assert [(r.name, m.login, m.tls, m.mail_from) for r, m in got_second] == [("ses", "AKIA", True, BOB)]


def test_auth_is_not_offered_before_starttls(run):
    with smtplib.SMTP("127.0.0.1", run.submission_port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls") and not smtp.has_extn("auth")
        # a client that sends its password anyway is refused, and so is everything else
        assert smtp.docmd("AUTH", "PLAIN AGFsaWNlQG9uZS5leGFtcGxlAHdyb25n") == (
            530, b"5.7.0 Must issue a STARTTLS command first")
        assert smtp.docmd("MAIL", f"FROM:<{ALICE}>")[0] == 530
        smtp.starttls(context=tls_context(run))
        smtp.ehlo()
        assert set(smtp.esmtp_features["auth"].upper().split()) == {"PLAIN", "LOGIN"}


def login_fails(smtp: smtplib.SMTP, user: str, password: str) -> int:
    """One AUTH PLAIN attempt (smtplib.login would retry with LOGIN); the reply code.
    Dovecot delays every failure by 2 s and each further one from the same client
    address longer (its auth penalty): each such test uses its own source address."""
    smtp.ehlo_or_helo_if_needed()
    smtp.user, smtp.password = user, password
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        smtp.auth("PLAIN", smtp.auth_plain)
    return refused.value.smtp_code


def test_a_wrong_password_is_rejected(run):
    with submission(run, source="127.0.0.3") as smtp:
        assert login_fails(smtp, ALICE, "not the password") == 535
    with submission(run, source="127.0.0.4") as smtp:
        assert login_fails(smtp, "nobody@one.example", ALICE_PW) == 535


def test_no_open_relay_for_unauthenticated_clients_from_untrusted_addresses(run):
    # 127.0.0.2 is loopback too, but not in mynetworks (only 127.0.0.1 and PERMIT_NETWORKS are).
    with smtplib.SMTP("127.0.0.1", run.postfix.smtpd_port, timeout=30, source_address=("127.0.0.2", 0)) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth")  # port 25: no SASL at all
        smtp.mail(ALICE)
        code, reply = smtp.rcpt(OUTSIDE)
        assert code == 554 and b"Relay access denied" in reply
    with submission(run, source="127.0.0.2") as smtp:
        assert smtp.mail(ALICE)[0] == 250
        code, reply = smtp.rcpt(OUTSIDE)
        assert code == 554, reply


def test_trusted_network_relays_on_port_25_without_auth(run):
    subject = run.send(ALICE)  # from 127.0.0.1, the container's own address
    assert [r.name for r, _ in run.wait_received(subject)] == ["default"]


def test_sending_as_someone_elses_address_is_rejected_with_553(run):
    with submission(run) as smtp:
        smtp.login(ALICE, ALICE_PW)
        for other in (BOB, "stranger@one.example"):
            assert smtp.mail(other)[0] == 250
            code, reply = smtp.rcpt(OUTSIDE)
            assert code == 553 and b"not owned by user" in reply, reply
            smtp.rset()


def test_sending_as_an_own_alias_works(run):
    with submission(run) as smtp:
        smtp.login(ALICE, ALICE_PW)
        sent = message("info@one.example")
        smtp.send_message(sent)
    got = run.wait_received(sent["Subject"])
    assert [(r.name, m.mail_from) for r, m in got] == [("default", "info@one.example")]


def test_a_changed_password_works_at_once_and_the_old_one_no_longer(run):
    run.run("setup", "email", "update", BOB, input="new bob secret\n")
    run.configure()  # rewrites Dovecot's passwd-file; Dovecot re-reads it, no reload
    # Dovecot checks the file's mtime at most once a second (per lookup, not on a timer).
    time.sleep(1.1)
    with smtplib.SMTP_SSL("127.0.0.1", run.submissions_port, timeout=30, context=tls_context(run),
                          source_address=("127.0.0.5", 0)) as smtp:
        assert login_fails(smtp, BOB, BOB_PW) == 535
    with smtplib.SMTP_SSL("127.0.0.1", run.submissions_port, timeout=30, context=tls_context(run)) as smtp:
        assert smtp.login(BOB, "new bob secret")[0] == 235


def test_a_logged_in_user_cannot_send_with_the_null_sender(run):
    # reject_sender_login_mismatch skips MAIL FROM:<>: a user could send bounces as nobody
    with submission(run) as smtp:
        smtp.login(ALICE, ALICE_PW)
        code, _ = smtp.mail("")
        if code == 250:
            code, _ = smtp.rcpt(OUTSIDE)
    assert 500 <= code < 600
