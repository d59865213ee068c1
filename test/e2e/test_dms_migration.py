"""Migrating from docker-mailserver: a DMS config directory with Postfix overrides and a
DMS environment, run by the real `relaykit start`. Mail is relayed as DMS relays it (real
SMTP to recording relays), every override is in effect on the wire, every DMS variable
relaykit does not support is reported once, and editing an override live undoes it."""

from __future__ import annotations

import smtplib
import time

import pytest

pytestmark = pytest.mark.e2e

HASH = "{SHA512-CRYPT}$6$rounds=5000$abcdefgh$" + "x" * 86


def _smtp(mailrun) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", mailrun.postfix.smtpd_port, timeout=10)


def test_a_dms_config_directory_migrates_with_nothing_silently_lost(mailrun):
    default = mailrun.relay("default", users={"relay-user": "relay-pass"})
    corp = mailrun.relay("corp", users={"corp-user": "corp-pass"})
    port25 = f"127.0.0.1:{mailrun.postfix.smtpd_port}/inet"
    mailrun.write("postfix-accounts.cf", f"anna@shop.example|{HASH}\nbob@corp.example|{HASH}\n"
                                         f"carl@optout.example|{HASH}\n")
    mailrun.write("postfix-virtual.cf", "sales@news.example anna@shop.example\n")
    mailrun.write("postfix-relaymap.cf", f"@corp.example  [127.0.0.1]:{corp.port}\n@optout.example\n")
    mailrun.write("postfix-sasl-password.cf", "@corp.example corp-user:corp-pass\n")
    mailrun.write("postfix-main.cf", "# DMS: appended to main.cf\nsmtpd_banner = $myhostname ESMTP migrated\n"
                                     "disable_vrfy_command = no\n")
    mailrun.write("postfix-master.cf", f"{port25}/smtpd_helo_required=no\n")
    mailrun.write("user-patches.sh", "#!/bin/bash\npostconf 'smtpd_banner = patched'\n")
    (mailrun.config_dir / "opendkim").mkdir()
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(default.port), RELAY_USER="relay-user",
                        RELAY_PASSWORD="relay-pass", POSTFIX_MESSAGE_SIZE_LIMIT="40000", ONE_DIR="1",
                        ENABLE_CLAMAV="1", ENABLE_SPAMASSASSIN="1", ENABLE_OPENDKIM="0", SPOOF_PROTECTION="1",
                        PERMIT_DOCKER="none", ENABLE_POP3="0", SUPERVISOR_LOGLEVEL="warn")
    daemon = mailrun.daemon()

    # relaying, as DMS: managed domains through RELAY_HOST, the relaymap's own relay and
    # login, an opted-out domain straight to its MX (deferred here: no DNS)
    shop = mailrun.send("anna@shop.example")
    news = mailrun.send("sales@news.example")
    corp_subject = mailrun.send("bob@corp.example")
    mailrun.send("carl@optout.example", subject="opted out")
    for subject, relay, login in ((shop, "default", "relay-user"), (news, "default", "relay-user"),
                                  (corp_subject, "corp", "corp-user")):
        assert [(r.name, m.login, m.tls) for r, m in mailrun.wait_received(subject)] == [(relay, login, True)]
    deadline = time.monotonic() + 20
    while not any(q["sender"] == "carl@optout.example" and q["recipients"][0].get("delay_reason")
                  for q in mailrun.postfix.queue()):
        assert time.monotonic() < deadline, mailrun.postfix.log()[-2000:]
        time.sleep(0.1)
    assert not mailrun.received("opted out")

    # the overrides, on the wire
    with smtplib.SMTP(timeout=10) as smtp:
        assert smtp.connect("127.0.0.1", mailrun.postfix.smtpd_port)[1].endswith(b"ESMTP migrated")
        smtp.ehlo("client.example")
        assert int(smtp.esmtp_features["size"]) == 40000  # POSTFIX_MESSAGE_SIZE_LIMIT
        assert smtp.verify("anna@shop.example")[0] != 502  # postfix-main.cf: VRFY enabled
    with _smtp(mailrun) as smtp:  # postfix-master.cf: this service does not require HELO
        assert smtp.docmd("MAIL FROM:<anna@shop.example>")[0] == 250

    # each unsupported DMS variable reported once, by name, with what it means
    log = daemon.log()
    for name in ("ENABLE_CLAMAV", "ENABLE_SPAMASSASSIN", "ONE_DIR", "SUPERVISOR_LOGLEVEL"):
        assert log.count(f"{name}=") == 1, log
    assert log.count(f"{mailrun.config_dir / 'user-patches.sh'} is not supported") == 1, log  # not read
    assert f"{mailrun.config_dir / 'opendkim'}" not in log  # read: DKIM keys (none here: unsigned)
    for name in ("ENABLE_OPENDKIM", "SPOOF_PROTECTION", "ENABLE_POP3", "PERMIT_DOCKER", "RELAY_HOST"):
        assert f"{name}=" not in log  # off, or supported

    # an override removed while running: the image's value is back, with no restart
    mark = len(daemon.log())
    mailrun.write("postfix-main.cf", "smtpd_banner = $myhostname ESMTP migrated\n")
    daemon.wait_log(r"changed: applied .*disable_vrfy_command.*reloaded postfix", after=mark)
    deadline = time.monotonic() + 10
    while True:
        with _smtp(mailrun) as smtp:
            smtp.ehlo("client.example")
            if smtp.verify("anna@shop.example")[0] == 502:
                break
        assert time.monotonic() < deadline, "VRFY still enabled after the override was removed"
        time.sleep(0.2)
    assert daemon.log().count("ENABLE_CLAMAV=") == 1  # not again on a live reload
    assert "relay-pass" not in daemon.log() and "corp-pass" not in daemon.log()


def test_an_invalid_override_while_running_keeps_the_last_good_configuration(mailrun):
    default = mailrun.relay("default")
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(default.port))
    mailrun.write("postfix-accounts.cf", f"anna@shop.example|{HASH}\n")
    mailrun.write("postfix-main.cf", "message_size_limit = 50000\n")
    daemon = mailrun.daemon()
    mark = len(daemon.log())
    path = mailrun.write("postfix-main.cf", "message_size_limit = 50000\nrelayhost = [evil.example]\n")
    daemon.wait_log(rf"{path}:2: relayhost cannot be overridden.*\n.*still running the last good one", after=mark)
    assert mailrun.postfix.explicit("relayhost") is None
    assert mailrun.postfix.explicit("message_size_limit") == "50000"
    assert mailrun.wait_received(mailrun.send("anna@shop.example"))
