"""Issue 14's reproductions, proven on the wire: each relay receives only the credential
configured for its route, only over TLS; an MX receives none; mail goes where `setup
relay explain` says. The relays and the MX stub record every AUTH they see.

The MX stub listens on 127.0.0.2:25 and mail to `someone@[127.0.0.2]` is delivered to it
directly (an address literal: no DNS), as to a recipient's MX; it offers AUTH without
STARTTLS, the trap a stranger's server can set.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

MX_RECIPIENT = "someone@[127.0.0.2]"


def _mx(mailrun):
    return mailrun.relay("mx", tls="none", users={"u": "p"}, port=25, host="127.0.0.2")


def _explain(mailrun, sender: str, recipient: str | None = None) -> str:
    return mailrun.run("setup", "relay", "explain", sender, *([recipient] if recipient else [])).stdout


def _auths(relay) -> list[tuple[str, str, bool]]:
    return [(a.login, a.password, a.tls) for a in relay.auth_attempts]


def _settle(mailrun, subject: str, seconds: float = 1.5) -> None:
    """Give a message that should NOT arrive somewhere time to (wrongly) get there."""
    mailrun.wait_received(subject)
    time.sleep(seconds)


def test_an_address_opt_out_is_delivered_directly_not_through_its_domains_relay(mailrun):
    ses, mx = mailrun.relay("ses", users={"shop": "shoppw"}), _mx(mailrun)
    mailrun.write("postfix-relaymap.cf", f"@shop.example {ses.nexthop}\nintern@shop.example\n")
    mailrun.write("postfix-sasl-password.cf", "@shop.example shop:shoppw\n")
    mailrun.start()
    assert "direct" in _explain(mailrun, "intern@shop.example")
    subject = mailrun.send("intern@shop.example", MX_RECIPIENT)
    _settle(mailrun, subject)
    assert [r.name for r, _ in mailrun.received(subject)] == ["mx"]
    assert _auths(mx) == [] and _auths(ses) == []


def test_a_relay_chosen_for_an_address_gets_its_own_credential_not_the_domains(mailrun):
    ses = mailrun.relay("ses", users={"AKIA": "sessecret"})
    mailgun = mailrun.relay("mailgun", users={"pm": "mgsecret"})
    mailrun.write("postfix-relaymap.cf", f"@shop.example {ses.nexthop}\nbilling@shop.example {mailgun.nexthop}\n")
    mailrun.write("postfix-sasl-password.cf", f"@shop.example AKIA:sessecret\n{mailgun.nexthop} pm:mgsecret\n")
    mailrun.start()
    assert "pm" in _explain(mailrun, "billing@shop.example")
    subject = mailrun.send("billing@shop.example")
    _settle(mailrun, subject)
    assert [(r.name, m.login) for r, m in mailrun.received(subject)] == [("mailgun", "pm")]
    assert _auths(mailgun) == [("pm", "mgsecret", True)]


def test_a_subdomain_with_its_own_relay_does_not_get_the_wildcards_password(mailrun):
    corp = mailrun.relay("corp", users={"corpuser": "corppw"})
    eu = mailrun.relay("eu", users={"euuser": "eupw"})
    mailrun.write("postfix-relaymap.cf", f"@.corp.example {corp.nexthop}\n@eu.corp.example {eu.nexthop}\n")
    mailrun.write("postfix-sasl-password.cf", f"@.corp.example corpuser:corppw\n{eu.nexthop} euuser:eupw\n")
    mailrun.start()
    subject = mailrun.send("a@eu.corp.example")
    _settle(mailrun, subject)
    assert [(r.name, m.login) for r, m in mailrun.received(subject)] == [("eu", "euuser")]
    assert _auths(eu) == [("euuser", "eupw", True)] and _auths(corp) == []


def test_an_opted_out_subdomain_on_the_default_relay_logs_in_as_relay_user(mailrun):
    corp = mailrun.relay("corp", users={"corpuser": "corppw"})
    default = mailrun.relay("default", users={"relayuser": "relaypw"})
    mailrun.vars.update(DEFAULT_RELAY_HOST=default.nexthop, RELAY_USER="relayuser", RELAY_PASSWORD="relaypw")
    mailrun.write("postfix-relaymap.cf", f"@.corp.example {corp.nexthop}\n@dev.corp.example\n")
    mailrun.write("postfix-sasl-password.cf", "@.corp.example corpuser:corppw\n")
    mailrun.start()
    assert "relayuser" in _explain(mailrun, "a@dev.corp.example")
    subject = mailrun.send("a@dev.corp.example")
    _settle(mailrun, subject)
    assert [(r.name, m.login) for r, m in mailrun.received(subject)] == [("default", "relayuser")]
    assert _auths(default) == [("relayuser", "relaypw", True)]


def test_an_mx_gets_no_credential_even_when_the_sender_domain_has_one(mailrun):
    relay = mailrun.relay("relay", users={"relayuser": "relaypw"})
    mx = _mx(mailrun)
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(relay.port))
    mailrun.write("postfix-sasl-password.cf", "@direct.example u:p\n")
    mailrun.start()
    assert "direct" in _explain(mailrun, "a@direct.example")
    subject = mailrun.send("a@direct.example", MX_RECIPIENT)
    _settle(mailrun, subject)
    assert [r.name for r, _ in mailrun.received(subject)] == ["mx"]
    assert _auths(mx) == []


def test_a_default_relay_host_in_another_spelling_than_postfix_looks_up_is_refused(mailrun):
    # relayhost is written verbatim; its tls_policy key would be [::1]:PORT and never match
    mailrun.vars.update(DEFAULT_RELAY_HOST="[0:0:0:0:0:0:0:1]:2525", RELAY_USER="relayuser", RELAY_PASSWORD="pw")
    result = mailrun.run("relaykit", "configure", check=False)
    assert result.returncode == 1 and "DEFAULT_RELAY_HOST" in result.stderr and "[::1]:2525" in result.stderr


def test_an_ipv6_default_relay_without_starttls_gets_neither_mail_nor_password(mailrun):
    plain = mailrun.relay("plain", tls="none", users={"relayuser": "relaypw"}, host="::1")
    mailrun.postfix.postconf({"inet_protocols": "all"})
    mailrun.vars.update(DEFAULT_RELAY_HOST=f"[::1]:{plain.port}", RELAY_USER="relayuser", RELAY_PASSWORD="relaypw")
    mailrun.start()
    mailrun.send("a@any.example")
    mailrun.postfix.wait_log("status=deferred")
    assert plain.messages == [] and _auths(plain) == []


def test_a_default_relay_host_postfix_cannot_use_is_refused(mailrun):
    mailrun.vars.update(DEFAULT_RELAY_HOST="[localhost.]:2525")
    result = mailrun.run("relaykit", "configure", check=False)
    assert result.returncode == 1 and "DEFAULT_RELAY_HOST" in result.stderr


def test_a_default_relay_host_list_mixing_implicit_and_starttls_ports_is_refused(mailrun):
    mailrun.vars.update(DEFAULT_RELAY_HOST="[a.relay.test]:465,[b.relay.test]:587")
    result = mailrun.run("relaykit", "configure", check=False)
    assert result.returncode == 1 and "DEFAULT_RELAY_HOST" in result.stderr


def test_a_bare_domain_key_in_the_sasl_file_is_refused_naming_the_line(mailrun):
    mailrun.write("postfix-relaymap.cf", "@shop.example [smtp.relay.test]:587\n")
    mailrun.write("postfix-sasl-password.cf", "# creds\nshop.example user:pass\n")
    result = mailrun.run("relaykit", "configure", check=False)
    assert result.returncode == 1 and "postfix-sasl-password.cf:2" in result.stderr


def test_an_idn_sender_is_never_accepted_in_a_form_its_route_misses(mailrun):
    """smtputf8_enable = no (README): the tables hold `@xn--bcher-kva.example`, so a
    client must not be able to send the UTF-8 form, which no key matches."""
    import smtplib

    books = mailrun.relay("books", users={"bookuser": "bookpw"})
    mailrun.write("postfix-relaymap.cf", f"@bücher.example {books.nexthop}\n")
    mailrun.write("postfix-sasl-password.cf", "@bücher.example bookuser:bookpw\n")
    mailrun.start()
    with smtplib.SMTP("127.0.0.1", mailrun.postfix.smtpd_port, timeout=30) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("smtputf8")
        smtp.send("MAIL FROM:<jürgen@bücher.example> SMTPUTF8\r\n".encode())
        code, _ = smtp.getreply()
        assert 500 <= code < 600
    subject = mailrun.send("juergen@xn--bcher-kva.example")  # what such a client sends instead
    _settle(mailrun, subject)
    assert [(r.name, m.login) for r, m in mailrun.received(subject)] == [("books", "bookuser")]
    assert len(books.messages) == 1


def test_mynetworks_is_exactly_loopback_and_follows_permit_networks(mailrun):
    mailrun.configure()
    assert mailrun.postfix.explicit("mynetworks") == "127.0.0.1/32 [::1]/128"
    mailrun.vars.update(PERMIT_NETWORKS="192.0.2.0/24")
    mailrun.configure()
    assert "192.0.2.0/24" in mailrun.postfix.explicit("mynetworks")
    del mailrun.vars["PERMIT_NETWORKS"]
    mailrun.configure()
    assert mailrun.postfix.explicit("mynetworks") == "127.0.0.1/32 [::1]/128"
