"""Routing DMS cannot do, proven over real SMTP: per address, per subdomain, without a
default relay, TLS only where it matters, implicit TLS, by recipient domain, failover;
and `setup relay explain` agreeing with what the relays actually saw."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

HOME = "127.0.0.1"


def explain(mailrun, sender: str, recipient: str | None = None) -> dict[str, list[str]]:
    """`setup relay explain` output as {field: [values]} (login may repeat, once per relay)."""
    out = mailrun.run("setup", "relay", "explain", sender, *([recipient] if recipient else ())).stdout
    fields: dict[str, list[str]] = {}
    for line in out.splitlines():
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), []).append(value.strip())
    return fields


def deferred(mailrun, sender: str, timeout: float = 15.0) -> str:
    """Wait until mail from `sender` sits in the deferred queue; returns why it waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in mailrun.postfix.queue():
            if entry["sender"] == sender and entry["queue_name"] == "deferred":
                return entry["recipients"][0].get("delay_reason", "")
        time.sleep(0.1)
    raise TimeoutError(f"no deferred mail from {sender}:\n{mailrun.postfix.log()[-3000:]}")


def got(mailrun, subject: str) -> list[tuple[str, str | None, bool]]:
    """(relay name, login, tls) of every relay that received the message."""
    return [(r.name, m.login, m.tls) for r, m in mailrun.wait_received(subject)]


def test_one_address_routes_and_authenticates_apart_from_its_domain(mailrun):
    default = mailrun.relay("default", users={"relay-user": "relay-pass"})
    billing = mailrun.relay("billing", users={"bill-user": "bill-pass", "relay-user": "relay-pass"})
    mailrun.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\nbilling@one.example|{PLAIN}x\n")
    mailrun.vars.update(RELAY_HOST=HOME, RELAY_PORT=str(default.port),
                        RELAY_USER="relay-user", RELAY_PASSWORD="relay-pass")
    mailrun.run("setup", "relay", "add-domain", "Billing@one.example", HOME, str(billing.port))
    mailrun.run("setup", "relay", "add-auth", "billing@one.example", "bill-user", input="bill-pass\n")
    mailrun.start()

    assert got(mailrun, mailrun.send("a@one.example")) == [("default", "relay-user", True)]
    assert got(mailrun, mailrun.send("BILLING@one.example")) == [("billing", "bill-user", True)]
    # the contract's relayhost_map: the address line, then the default-relay domain line
    assert (mailrun.postfix.config_dir / "relayhost_map").read_text() == (
        f"billing@one.example {billing.nexthop}\n@one.example {default.nexthop}\n")
    seen = explain(mailrun, "billing@one.example")
    assert seen["route"] == [f"relay {billing.nexthop}"]
    assert seen["login"] == [f"{billing.nexthop}: bill-user (from {mailrun.config_dir}/postfix-sasl-password.cf:1)"]
    assert seen["matched"] == [f"{mailrun.config_dir}/postfix-relaymap.cf:1"]


def test_subdomain_wildcard_covers_subdomains_and_exact_entries_win(mailrun):
    wild = mailrun.relay("wild", users={"wild-user": "pa$$word", "eu-user": "eu-pass"})
    eu = mailrun.relay("eu", users={"eu-user": "eu-pass"})
    mailrun.write("postfix-relaymap.cf",
                  f"@.corp.example {wild.nexthop}\n@eu.corp.example {eu.nexthop}\n@dev.corp.example\n")
    mailrun.write("postfix-sasl-password.cf",
                  "@.corp.example wild-user:pa$$word\n@eu.corp.example eu-user:eu-pass\n")
    mailrun.start()

    assert got(mailrun, mailrun.send("u@us.corp.example")) == [("wild", "wild-user", True)]
    assert got(mailrun, mailrun.send("u@a.b.corp.example")) == [("wild", "wild-user", True)]
    assert got(mailrun, mailrun.send("u@eu.corp.example")) == [("eu", "eu-user", True)]
    # an opted-out subdomain and the parent domain itself are not covered: direct delivery
    mailrun.send("u@dev.corp.example", subject="opted-out")
    mailrun.send("u@corp.example", subject="apex")
    assert "look up host example.net" in deferred(mailrun, "u@dev.corp.example")  # direct: no DNS here
    assert "look up host example.net" in deferred(mailrun, "u@corp.example")
    assert not mailrun.received("opted-out") and not mailrun.received("apex")

    assert explain(mailrun, "x@us.corp.example")["matched"] == [f"{mailrun.config_dir}/postfix-relaymap.cf:1"]
    assert explain(mailrun, "x@eu.corp.example")["route"] == [f"relay {eu.nexthop}"]
    assert explain(mailrun, "x@dev.corp.example")["route"] == ["direct (the recipient's MX)"]


def test_without_any_relay_variable_the_files_alone_route_their_senders(mailrun):
    ses = mailrun.relay("ses", users={"AKIA": "ses-pass"})
    mailrun.write("postfix-relaymap.cf", f"@two.example {ses.nexthop}\n")
    mailrun.write("postfix-sasl-password.cf", "@two.example AKIA:ses-pass\n")
    mailrun.start()
    assert mailrun.postfix.explicit("relayhost") is None

    assert got(mailrun, mailrun.send("b@two.example")) == [("ses", "AKIA", True)]
    offset = len(mailrun.postfix.log())
    mailrun.send("c@other.example", subject="direct")
    mailrun.postfix.wait_log(r"to=<someone@example\.net>, relay=none, .*status=deferred", after=offset)
    assert not mailrun.received("direct")
    assert explain(mailrun, "c@other.example")["route"] == ["direct (the recipient's MX)"]


def test_a_relay_without_tls_gets_neither_password_nor_mail(mailrun):
    plain = mailrun.relay("plain", tls="none", users={"user": "secret"})
    mailrun.write("postfix-relaymap.cf", f"@one.example {plain.nexthop}\n")
    mailrun.write("postfix-sasl-password.cf", "@one.example user:secret\n")
    mailrun.start()
    offset = len(mailrun.postfix.log())
    mailrun.send("a@one.example", subject="must-wait")
    mailrun.postfix.wait_log(r"status=deferred \(TLS is required, but was not offered", after=offset)
    assert plain.auth_attempts == [] and plain.messages == []
    assert explain(mailrun, "a@one.example")["tls"][0].startswith("required")


def test_direct_delivery_does_not_require_tls(mailrun):
    # An MX without STARTTLS: the Postfix SMTP client's port for direct delivery is its
    # smtp_tcp_port; DNS is off, so "localhost" resolves through /etc/hosts to 127.0.0.1.
    mx = mailrun.relay("mx", tls="none")
    ses = mailrun.relay("ses")
    mailrun.write("postfix-relaymap.cf", f"@two.example {ses.nexthop}\n")
    mailrun.postfix.postconf({"smtp_tcp_port": str(mx.port)})
    mailrun.start()
    subject = mailrun.send("a@one.example", "someone@localhost")
    assert got(mailrun, subject) == [("mx", None, False)]
    assert explain(mailrun, "a@one.example", "someone@localhost")["route"] == ["direct (the recipient's MX)"]


def test_port_465_means_implicit_tls_and_it_can_be_chosen_on_any_port(mailrun):
    smtps = mailrun.relay("smtps", tls="implicit", users={"u465": "p465"}, port=465)
    other = mailrun.relay("other", tls="implicit", users={"u2": "p2"})
    mailrun.run("setup", "relay", "add-domain", "one.example", HOME, "465")
    mailrun.run("setup", "relay", "add-auth", "one.example", "u465", "p465")
    mailrun.run("setup", "relay", "add-domain", "two.example", f"smtps:{HOME}", str(other.port))
    mailrun.run("setup", "relay", "add-auth", f"[{HOME}]:{other.port}", "u2", "p2")
    assert (mailrun.config_dir / "postfix-relaymap.cf").read_text() == (
        f"@one.example\t[{HOME}]:465\n@two.example\tsmtps:[{HOME}]:{other.port}\n")
    mailrun.start()

    assert got(mailrun, mailrun.send("a@one.example")) == [("smtps", "u465", True)]
    assert got(mailrun, mailrun.send("b@two.example")) == [("other", "u2", True)]
    assert (mailrun.postfix.config_dir / "relayhost_map").read_text() == (
        f"@one.example [{HOME}]:465\n@two.example [{HOME}]:{other.port}\n")
    assert explain(mailrun, "b@two.example")["transport"] == ["relaykit_smtps (implicit TLS from the first byte)"]


def test_recipient_domain_rule_wins_over_the_sender_rule_with_the_relays_own_credentials(mailrun):
    sender_relay = mailrun.relay("sender", users={"sender-user": "sp"})
    blocked = mailrun.relay("blocked", users={"rcpt-user": "rp", "sender-user": "sp"})
    mailrun.write("postfix-relaymap.cf", f"@one.example {sender_relay.nexthop}\n")
    mailrun.write("postfix-recipient-relaymap.cf", f"blocked.example {blocked.nexthop}\n")
    mailrun.write("postfix-sasl-password.cf",
                  f"@one.example sender-user:sp\n{blocked.nexthop} rcpt-user:rp\n")
    mailrun.start()

    assert got(mailrun, mailrun.send("a@one.example", "x@blocked.example")) == [("blocked", "rcpt-user", True)]
    assert got(mailrun, mailrun.send("a@one.example", "x@example.net")) == [("sender", "sender-user", True)]
    # a sender with no rule at all reaches the blocked domain through its relay too
    assert got(mailrun, mailrun.send("z@other.example", "y@blocked.example")) == [("blocked", "rcpt-user", True)]
    seen = explain(mailrun, "a@one.example", "x@blocked.example")
    assert seen["route"] == [f"relay {blocked.nexthop}"]
    assert seen["login"] == [f"{blocked.nexthop}: rcpt-user (from {mailrun.config_dir}/postfix-sasl-password.cf:2)"]
    assert seen["matched"][0].startswith(f"{mailrun.config_dir}/postfix-recipient-relaymap.cf:1")


def test_failover_goes_to_the_next_relay_with_that_relays_credentials(mailrun):
    first = mailrun.relay("first", users={"u1": "p1"})
    second = mailrun.relay("second", users={"u2": "p2"})
    mailrun.write("postfix-relaymap.cf", f"@one.example {first.nexthop},{second.nexthop}\n")
    mailrun.write("postfix-sasl-password.cf", f"{first.nexthop} u1:p1\n{second.nexthop} u2:p2\n")
    mailrun.start()

    assert got(mailrun, mailrun.send("a@one.example")) == [("first", "u1", True)]
    first.rcpt_reply = "451 4.3.0 try again later"  # refuses: Postfix tries the next relay
    assert got(mailrun, mailrun.send("a@one.example")) == [("second", "u2", True)]
    first.stop()  # down
    assert got(mailrun, mailrun.send("a@one.example")) == [("second", "u2", True)]
    seen = explain(mailrun, "a@one.example")
    assert seen["route"] == [f"relay {first.nexthop}, then {second.nexthop} (tried in order)"]
    assert [line.split(" (from")[0] for line in seen["login"]] == [
        f"{first.nexthop}: u1", f"{second.nexthop}: u2"]


def test_explain_agrees_with_what_the_relays_observe_for_every_kind_of_rule(mailrun):
    everyone = {"def-user": "dp", "wild-user": "wp", "eu-user": "ep", "boss-user": "bp", "rcpt-user": "rp",
                "f1": "p1"}
    relays = {name: mailrun.relay(name, users=everyone, **kw) for name, kw in (
        ("default", {"tls": "implicit", "port": 2465}), ("wild", {"tls": "implicit"}), ("eu", {}),
        ("boss", {}), ("f1", {}), ("f2", {}), ("rcpt", {}))}
    port = {name: relay.port for name, relay in relays.items()}
    by_hop = {relay.nexthop: name for name, relay in relays.items()}
    mailrun.vars.update(DEFAULT_RELAY_HOST=f"[{HOME}]:2465", RELAY_USER="def-user", RELAY_PASSWORD="dp")
    mailrun.write("postfix-relaymap.cf", "\n".join([
        f"@.corp.example smtps:[{HOME}]:{port['wild']}",
        f"@eu.corp.example [{HOME}]:{port['eu']}",
        "@dev.corp.example",
        f"boss@corp.example [{HOME}]:{port['boss']}",
        f"@one.example [{HOME}]:{port['f1']},[{HOME}]:{port['f2']}"]) + "\n")
    mailrun.write("postfix-recipient-relaymap.cf", f".blocked.example [{HOME}]:{port['rcpt']}\n")
    mailrun.write("postfix-sasl-password.cf", "\n".join([
        "@.corp.example wild-user:wp", f"[{HOME}]:{port['eu']} eu-user:ep", "boss@corp.example boss-user:bp",
        f"[{HOME}]:{port['rcpt']} rcpt-user:rp", f"[{HOME}]:{port['f1']} f1:p1"]) + "\n")
    mailrun.start()

    cases = [("u@us.corp.example", None, "wild"), ("u@eu.corp.example", None, "eu"),
             ("u@dev.corp.example", None, "default"), ("boss@corp.example", None, "boss"),
             ("x@corp.example", None, "default"), ("x@other.example", None, "default"),
             ("a@one.example", None, "f1"), ("u@us.corp.example", "x@mx.blocked.example", "rcpt")]
    for sender, recipient, expected in cases:
        seen = explain(mailrun, sender, recipient)
        first_hop = seen["route"][0].removeprefix("relay ").split(",")[0]
        login = seen["login"][0].split(": ", 1)[1].split(" (from")[0]
        observed = got(mailrun, mailrun.send(sender, recipient or "someone@example.net"))
        assert observed == [(by_hop[first_hop], login, True)], (sender, recipient, seen)
        assert by_hop[first_hop] == expected, (sender, seen)
        implicit = relays[expected].tls == "implicit"
        assert ("implicit TLS" in seen["transport"][0]) == implicit, (sender, seen)
