"""Mail really goes where the DMS configuration says, over real SMTP."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_each_sender_domain_reaches_its_relay_with_its_own_credentials(mailrun):
    default = mailrun.relay("default", users={"relay-user": "relay-pass"})
    ses = mailrun.relay("ses", users={"AKIA": "ses-pass"})
    mailrun.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\nb@two.example|{PLAIN}x\n")
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(default.port),
                        RELAY_USER="relay-user", RELAY_PASSWORD="relay-pass")
    mailrun.run("setup", "relay", "add-domain", "two.example", "127.0.0.1", str(ses.port))
    mailrun.run("setup", "relay", "add-auth", "two.example", "AKIA", input="ses-pass\n")
    mailrun.start()

    one = mailrun.wait_received(mailrun.send("a@one.example"))
    two = mailrun.wait_received(mailrun.send("b@two.example"))
    assert [(r.name, m.login, m.tls) for r, m in one] == [("default", "relay-user", True)]
    assert [(r.name, m.login, m.tls) for r, m in two] == [("ses", "AKIA", True)]


def test_opted_out_domain_reaches_no_relay(mailrun):
    default = mailrun.relay("default")
    mailrun.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\nb@out.example|{PLAIN}x\n")
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(default.port))
    mailrun.run("setup", "relay", "exclude-domain", "out.example")
    mailrun.start()
    offset = len(mailrun.postfix.log())
    mailrun.send("b@out.example", subject="opted-out")
    # Direct delivery: DNS is off, so the MX lookup fails and the mail is deferred.
    mailrun.postfix.wait_log(r"to=<someone@example\.net>, relay=none, .*status=deferred", after=offset)
    mailrun.wait_received(mailrun.send("a@one.example"))
    assert not mailrun.received("opted-out")
