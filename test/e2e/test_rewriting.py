"""Sender rewriting (postfix-sender-rewrite.cf), subdomain masquerading and header privacy
(RELAYKIT_STRIP_RECEIVED), shown by what a real relay received."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.parser import BytesHeaderParser

import pytest

pytestmark = pytest.mark.e2e

HOME = "127.0.0.1"


def send(mailrun, sender: str, subject: str, recipient: str = "someone@example.net", **headers: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, recipient, subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("relaykit rewriting\n")
    with smtplib.SMTP(HOME, mailrun.postfix.smtpd_port, timeout=30) as smtp:
        smtp.send_message(message)


def arrived(mailrun, subject: str):
    (relay, message), = mailrun.wait_received(subject)
    return relay.name, message, BytesHeaderParser().parsebytes(message.data)


def test_a_sender_domain_is_rewritten_to_a_verified_sender_and_routed_as_it(mailrun):
    ses = mailrun.relay("ses", users={"ses-user": "ses-pass"})
    other = mailrun.relay("other")
    mailrun.write("postfix-sender-rewrite.cf", "# SES takes verified senders only\n"
                  "@shop.example noreply@verified.example\nboss@corp.example @mail.corp.example\n")
    mailrun.write("postfix-relaymap.cf", f"@verified.example {ses.nexthop}\n@.corp.example {other.nexthop}\n"
                  f"@shop.example {other.nexthop}\n")
    mailrun.write("postfix-sasl-password.cf", "@verified.example ses-user:ses-pass\n")
    mailrun.start()

    send(mailrun, "Anna <anna@shop.example>", "rewritten", recipient="bob@shop.example")
    name, message, headers = arrived(mailrun, "rewritten")
    assert (name, message.mail_from, message.login) == ("ses", "noreply@verified.example", "ses-user")
    assert headers["From"] == "Anna <noreply@verified.example>"
    assert message.rcpt_tos == ["bob@shop.example"] and headers["To"] == "bob@shop.example"  # recipients untouched
    # @newdomain keeps the local part
    send(mailrun, "boss@corp.example", "kept local part")
    name, message, headers = arrived(mailrun, "kept local part")
    assert (name, message.mail_from, headers["From"]) == ("other", "boss@mail.corp.example", "boss@mail.corp.example")

    out = mailrun.run("setup", "relay", "explain", "anna@shop.example").stdout
    assert (f"rewrite:    anna@shop.example -> noreply@verified.example (from {mailrun.config_dir}/"
            "postfix-sender-rewrite.cf:2; routes and credentials see the new sender)") in out
    assert f"route:      relay {ses.nexthop}" in out


def test_subdomains_are_masqueraded(mailrun):
    relay = mailrun.relay("relay")
    mailrun.vars.update(RELAY_HOST=HOME, RELAY_PORT=str(relay.port), POSTFIX_MASQUERADE_DOMAINS="shop.example")
    mailrun.write("postfix-accounts.cf", "a@shop.example|{PLAIN}x\n")
    mailrun.start()
    send(mailrun, "app@web1.eu.shop.example", "masqueraded")
    name, message, headers = arrived(mailrun, "masqueraded")
    assert (message.mail_from, headers["From"]) == ("app@shop.example", "app@shop.example")


@pytest.mark.parametrize("strip", [False, True])
def test_received_headers_and_the_client_ip_leave_only_without_strip_received(mailrun, strip):
    relay = mailrun.relay("relay")
    mailrun.vars.update(RELAY_HOST=HOME, RELAY_PORT=str(relay.port))
    if strip:
        mailrun.vars["RELAYKIT_STRIP_RECEIVED"] = "yes"
    mailrun.write("postfix-accounts.cf", "a@shop.example|{PLAIN}x\n")
    mailrun.start()
    send(mailrun, "a@shop.example", f"privacy {strip}", X_Originating_IP="[10.1.2.3]",
         Received="from laptop.internal (laptop.internal [10.1.2.3]) by app.internal")
    _, message, headers = arrived(mailrun, f"privacy {strip}")
    if strip:
        assert headers.get_all("Received") is None and headers["X-Originating-IP"] is None
        assert b"127.0.0.1" not in message.data and b"10.1.2.3" not in message.data
        assert headers["Subject"] == "privacy True" and headers["From"] == "a@shop.example"
    else:  # the control: Postfix's own Received names the client's IP
        assert len(headers.get_all("Received")) == 2 and b"[127.0.0.1]" in message.data
        assert headers["X-Originating-IP"] == "[10.1.2.3]"
