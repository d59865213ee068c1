"""`setup relay test <sender> <recipient>`: a real message over real SMTP to the relay the
configuration names, with each step reported and the password never shown."""

from __future__ import annotations

import pytest

from harness.relays import CaptureRelay

pytestmark = pytest.mark.e2e

PASSWORD = "Sup3r-s3cret-pw"


def _route(mailrun, relay, user: str | None = "AKIA", password: str = PASSWORD) -> None:
    mailrun.run("setup", "relay", "add-domain", "shop.example", "127.0.0.1", str(relay.port))
    if user:
        mailrun.run("setup", "relay", "add-auth", "shop.example", user, input=password + "\n")


def test_sends_through_the_senders_relay_with_its_login_over_starttls(mailrun):
    relay = mailrun.relay("ses", users={"AKIA": PASSWORD})
    _route(mailrun, relay)
    result = mailrun.run("setup", "relay", "test", "alice@shop.example", "bob@example.net")
    out = result.stdout + result.stderr
    assert f"route: alice@shop.example -> {relay.nexthop}" in out
    for step in ("connect", "EHLO", "STARTTLS", "AUTH", "MAIL FROM", "RCPT TO", "DATA", "QUIT"):
        assert f"ok   {step}" in out, out
    assert "certificate verified" in out
    assert "235" in out and "(as AKIA" in out
    assert "accepted the test message" in out
    [message] = relay.messages
    assert (message.mail_from, message.rcpt_tos, message.login, message.tls) == (
        "alice@shop.example", ["bob@example.net"], "AKIA", True)
    assert PASSWORD not in out


def test_a_wrong_password_fails_at_auth_with_the_relays_reply_and_exit_1(mailrun):
    relay = mailrun.relay("ses", users={"AKIA": "the-right-one"})
    _route(mailrun, relay)
    result = mailrun.run("setup", "relay", "test", "alice@shop.example", "bob@example.net", check=False)
    assert result.returncode == 1
    assert "FAIL AUTH" in result.stdout and "535" in result.stdout
    assert "refused AUTH" in result.stderr
    assert not relay.messages
    assert PASSWORD not in result.stdout + result.stderr


def test_a_relay_without_tls_never_gets_the_password(mailrun):
    relay = mailrun.relay("plain", tls="none", users={"AKIA": PASSWORD})
    _route(mailrun, relay)
    result = mailrun.run("setup", "relay", "test", "alice@shop.example", "bob@example.net", check=False)
    assert result.returncode == 1
    assert "FAIL STARTTLS" in result.stdout
    assert "never sends credentials" in result.stderr
    assert relay.auth_attempts == [] and relay.messages == []
    assert PASSWORD not in result.stdout + result.stderr


def test_a_refused_recipient_is_reported_at_rcpt(mailrun):
    relay = mailrun.relay("ses", users={"AKIA": PASSWORD})
    relay.rcpt_reply = "550 5.1.1 no such user"
    _route(mailrun, relay)
    result = mailrun.run("setup", "relay", "test", "alice@shop.example", "nobody@example.net", check=False)
    assert result.returncode == 1
    assert "ok   AUTH" in result.stdout and "FAIL RCPT TO" in result.stdout and "550 5.1.1" in result.stdout


def test_a_route_without_credentials_skips_auth(mailrun):
    relay = mailrun.relay("open")
    mailrun.vars.update(DEFAULT_RELAY_HOST=relay.nexthop)
    result = mailrun.run("setup", "relay", "test", "anyone@other.example", "bob@example.net")
    assert "(rule DEFAULT_RELAY_HOST)" in result.stdout
    assert "AUTH       skipped" in result.stdout
    assert [m.login for m in relay.messages] == [None]


def test_a_relay_that_is_down_fails_at_connect(mailrun):
    relay = mailrun.relay("down", users={"AKIA": PASSWORD})
    relay.stop()
    _route(mailrun, relay)
    result = mailrun.run("setup", "relay", "test", "alice@shop.example", "bob@example.net", check=False)
    assert result.returncode == 1
    assert "FAIL connect" in result.stdout and "cannot connect" in result.stderr


def test_port_465_uses_implicit_tls(mailrun, ca):
    relay = CaptureRelay("smtps", ca, tls="implicit", users={"AKIA": PASSWORD}, port=465)
    try:
        relay.start()
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.1:465 here: {exc}")
    mailrun.relays.append(relay)
    _route(mailrun, relay)
    result = mailrun.run("setup", "relay", "test", "alice@shop.example", "bob@example.net")
    assert "implicit TLS" in result.stdout and "certificate verified" in result.stdout
    assert "STARTTLS" not in result.stdout
    # The relay speaks only TLS, so reaching DATA proves the session was encrypted.
    assert [m.login for m in relay.messages] == ["AKIA"]


def test_a_sender_that_is_not_relayed_is_refused_without_sending(mailrun):
    relay = mailrun.relay("ses")
    _route(mailrun, relay, user=None)
    mailrun.run("setup", "relay", "exclude-domain", "lab.example")
    result = mailrun.run("setup", "relay", "test", "dave@lab.example", "bob@example.net", check=False)
    assert result.returncode == 1
    assert "not relayed" in result.stderr and "nothing to test" in result.stderr
    assert not relay.messages


@pytest.mark.parametrize("args, message", [
    (("not-an-address", "bob@example.net"), "sender must be an address"),
    (("alice@shop.example", "bob@exa mple.net"), "recipient"),
    (("alice@shop.example",), "wrong number of arguments"),
])
def test_bad_arguments_exit_1_with_a_message(mailrun, args, message):
    result = mailrun.run("setup", "relay", "test", *args, check=False)
    assert result.returncode == 1
    assert message in result.stderr


def test_an_unverifiable_certificate_is_reported_and_accepted_as_postfix_would(env, ca):
    """Without the relay's CA in smtp_tls_CAfile the certificate cannot be verified;
    tls_policy `encrypt` still encrypts, so the test says so and goes on."""
    relay = CaptureRelay("self-signed", ca, users={"AKIA": PASSWORD}).start()
    try:
        assert env.run("setup", "relay", "add-domain", "shop.example", "127.0.0.1", str(relay.port)).returncode == 0
        assert env.run("setup", "relay", "add-auth", "shop.example", "AKIA", input=PASSWORD + "\n").returncode == 0
        result = env.run("setup", "relay", "test", "alice@shop.example", "bob@example.net")
    finally:
        relay.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warn certificate" in result.stdout and "certificate NOT verified" in result.stdout
    assert [(m.login, m.tls) for m in relay.messages] == [("AKIA", True)]
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize("how", ["port 2465", "smtps: prefix"])
def test_implicit_tls_is_spoken_exactly_where_postfix_speaks_it(mailrun, ca, how):
    """Port 2465, or `smtps:` on any port, is TLS from the first byte for Postfix (the
    relaykit_smtps transport), so `setup relay test` must not try STARTTLS there."""
    relay = CaptureRelay("smtps", ca, tls="implicit", users={"AKIA": PASSWORD},
                         port=2465 if how == "port 2465" else None)
    try:
        relay.start()
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.1:{relay.port} here: {exc}")
    mailrun.relays.append(relay)
    host = "127.0.0.1" if how == "port 2465" else "smtps:127.0.0.1"
    mailrun.run("setup", "relay", "add-domain", "shop.example", host, str(relay.port))
    mailrun.run("setup", "relay", "add-auth", "shop.example", "AKIA", input=PASSWORD + "\n")
    result = mailrun.run("setup", "relay", "test", "alice@shop.example", "bob@example.net", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "implicit TLS" in result.stdout and "STARTTLS" not in result.stdout
    assert [m.login for m in relay.messages] == ["AKIA"]
