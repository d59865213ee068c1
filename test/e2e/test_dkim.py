"""DKIM signing with OpenDKIM, over real SMTP: keys made by `setup config dkim`, mail
submitted on 25, 587 and 465 signed, verified by an independent verifier (dkimpy)
against the published TXT record on what the relay received; a domain without a key
leaves unsigned, and `setup relay explain` says so."""

from __future__ import annotations

import os
import re
import shutil
import smtplib
import ssl
import tempfile
import time
from email.message import EmailMessage

import dkim
from pathlib import Path
import pytest

from harness.postfix_instance import free_port
from relaykit.core.dkim import Files
from relaykit.edges.opendkim import OpenDKIMProcess

pytestmark = pytest.mark.e2e

ALICE, ALICE_PW = "alice@one.example", "alice's password"



@pytest.fixture
def dkim_dir():
    """RELAYKIT_DKIM_DIR: not under /tmp (others may write there, and OpenDKIM refuses
    keys below such a directory: configure says so)."""
    directory = Path(tempfile.mkdtemp(prefix="relaykit-test-dkim-", dir="/run"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def txt_record(text: str) -> bytes:
    """The TXT value of opendkim-genkey's zone-file line (its quoted strings, joined)."""
    return "".join(re.findall(r'"([^"]*)"', text)).encode()


def message(sender: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "someone@example.net", subject
    msg.set_content("signed by relaykit's OpenDKIM\n")
    return msg


def test_mail_is_signed_on_every_port_and_verifies_against_the_published_record(mailrun, dkim_dir):
    relay = mailrun.relay("relay")
    submission_port, submissions_port = free_port(), free_port()
    mailrun.vars.update(
        RELAY_HOST="127.0.0.1", RELAY_PORT=str(relay.port), ENABLE_SUBMISSION="1", SUBMISSION_ADDRESS="127.0.0.1",
        SUBMISSION_PORT=str(submission_port), SUBMISSIONS_PORT=str(submissions_port), SSL_TYPE="manual",
        SSL_CERT_PATH=str(mailrun.ca.cert_file), SSL_KEY_PATH=str(mailrun.ca.key_file),
        RELAYKIT_DOVECOT_DIR=str(mailrun.root / "dovecot"), RELAYKIT_DKIM_DIR=str(dkim_dir))
    mailrun.run("setup", "email", "add", ALICE, input=ALICE_PW + "\n")
    mailrun.write("postfix-virtual.cf", "info@two.example alice@one.example\n")
    made = mailrun.run("setup", "config", "dkim", "one.example", "keysize", "1024", "selector", "s1").stdout
    record = txt_record(made)
    assert record.startswith(b"v=DKIM1;") and b"p=" in record
    key = mailrun.config_dir / "opendkim" / "keys" / "one.example" / "s1.private"
    assert key.stat().st_mode & 0o777 == 0o600
    listed = mailrun.run("setup", "config", "dkim", "list").stdout
    assert "one.example  selector s1  DNS s1._domainkey.one.example" in listed
    mailrun.configure()
    copy = dkim_dir / "keys" / "one.example.s1.private"
    assert copy.stat().st_mode & 0o777 == 0o600 and copy.owner() == "opendkim"
    signer = OpenDKIMProcess(Files(dkim_dir, {}, {})).start()
    try:
        mailrun.start_dovecot()
        mailrun.postfix.start()
        context = ssl.create_default_context(cafile=str(mailrun.ca.ca_file))
        with smtplib.SMTP("127.0.0.1", mailrun.postfix.smtpd_port, timeout=30) as smtp:  # port 25, trusted
            smtp.send_message(message(ALICE, "port 25"))
            smtp.send_message(message("bob@two.example", "no key"))
        with smtplib.SMTP("127.0.0.1", submission_port, timeout=30) as smtp:
            smtp.starttls(context=context)
            smtp.login(ALICE, ALICE_PW)
            smtp.send_message(message(ALICE, "port 587"))
        with smtplib.SMTP_SSL("127.0.0.1", submissions_port, timeout=30, context=context) as smtp:
            smtp.login(ALICE, ALICE_PW)
            smtp.send_message(message(ALICE, "port 465"))

        def dns(name, timeout=5):
            return record if name == b"s1._domainkey.one.example." else None

        results = {}
        for subject in ("port 25", "port 587", "port 465", "no key"):
            (_, received), = mailrun.wait_received(subject)
            signed = b"DKIM-Signature:" in received.data
            results[subject] = signed and dkim.verify(received.data, dnsfunc=dns)
            if signed:  # the verifier can fail: one changed byte of the body breaks it
                assert not dkim.verify(received.data.replace(b"signed by", b"signed bx"), dnsfunc=dns)
                assert b"d=one.example" in received.data and b"s=s1" in received.data
        print(f"DKIM verification (dkimpy, on what the relay received): {results}")
        assert results == {"port 25": True, "port 587": True, "port 465": True, "no key": False}
    finally:
        signer.stop()

    assert "dkim:       signed d=one.example s=s1" in mailrun.run("setup", "relay", "explain", ALICE).stdout
    assert ("dkim:       unsigned: no key for two.example"
            in mailrun.run("setup", "relay", "explain", "bob@two.example").stdout)


def test_a_dkim_directory_under_tmp_is_refused_by_name(mailrun):
    mailrun.vars.update(RELAYKIT_DKIM_DIR=str(mailrun.root / "opendkim"))
    mailrun.run("setup", "config", "dkim", "one.example")
    result = mailrun.run("relaykit", "configure", check=False)
    assert result.returncode == 1 and "RELAYKIT_DKIM_DIR" in result.stderr and "others may write" in result.stderr


def test_relaykit_start_runs_opendkim_and_stops_it(mailrun, dkim_dir):
    relay = mailrun.relay("relay")
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(relay.port), RELAYKIT_DKIM_DIR=str(dkim_dir))
    mailrun.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\n")
    record = txt_record(mailrun.run("setup", "config", "dkim").stdout)  # the domains of the accounts
    daemon = mailrun.daemon()
    (_, received), = mailrun.wait_received(mailrun.send("a@one.example"))
    assert dkim.verify(received.data, dnsfunc=lambda name, timeout=5: record)
    pid = int((dkim_dir / "run" / "opendkim.pid").read_text())
    assert daemon.stop() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_enable_opendkim_0_turns_signing_off_even_with_keys(mailrun, dkim_dir):
    """DMS's ENABLE_OPENDKIM=0: no milter in main.cf, explain says why, nothing to run."""
    mailrun.vars.update(RELAYKIT_DKIM_DIR=str(dkim_dir))
    mailrun.run("setup", "config", "dkim", "one.example")
    mailrun.configure()
    assert mailrun.postfix.explicit("smtpd_milters")  # a key: signed
    mailrun.vars.update(ENABLE_OPENDKIM="0")
    result = mailrun.run("relaykit", "configure")
    assert "ENABLE_OPENDKIM" not in result.stderr  # supported, so not reported
    assert mailrun.postfix.explicit("smtpd_milters") is None
    assert "dkim:       unsigned: ENABLE_OPENDKIM=0" in mailrun.run("setup", "relay", "explain", ALICE).stdout
