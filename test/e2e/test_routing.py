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


def test_domain_credentials_override_relay_user_on_the_default_relay(mailrun):
    """DMS docs, sender-dependent authentication: @domain credentials with RELAY_HOST."""
    default = mailrun.relay("default", users={"relay-user": "relay-pass", "dom-user": "dom-pass"})
    mailrun.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\nb@two.example|{PLAIN}x\n")
    mailrun.write("postfix-sasl-password.cf", "@two.example dom-user:dom-pass\n")
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(default.port),
                        RELAY_USER="relay-user", RELAY_PASSWORD="relay-pass")
    mailrun.start()
    one = mailrun.wait_received(mailrun.send("a@one.example"))
    two = mailrun.wait_received(mailrun.send("b@two.example"))
    assert [m.login for _, m in one] == ["relay-user"]
    assert [m.login for _, m in two] == ["dom-user"]


def test_default_relay_host_takes_mail_of_every_sender(mailrun):
    smarthost = mailrun.relay("smarthost", users={"u": "p"})
    mailrun.vars.update(DEFAULT_RELAY_HOST=smarthost.nexthop, RELAY_USER="u", RELAY_PASSWORD="p")
    mailrun.start()
    got = mailrun.wait_received(mailrun.send("anyone@unmanaged.example"))
    assert [(r.name, m.login, m.tls) for r, m in got] == [("smarthost", "u", True)]
