"""SMTP smuggling: a message whose text holds a non-standard end of DATA ("<LF>.<LF>",
"<CR><LF>.<LF>", "<LF>.<CR><LF>") followed by SMTP commands must stay one message.

A real Postfix with relaykit's main.cf, a recording relay, and raw socket SMTP (smtplib
would repair the line ends). The recipient domain is made a relay domain (as an MX's
would be) so that a client outside mynetworks, 127.0.0.2, can send at all; a second
smtpd, with Postfix 3.7's compile-time defaults, shows that the same bytes are split
there, so the test fails if relaykit's settings go."""

from __future__ import annotations

import re
import socket
import time

import pytest

from harness.postfix_instance import free_port

pytestmark = pytest.mark.e2e

RECIPIENT = "someone@example.net"
SEPARATORS = {"lf-dot-lf": "\n.\n", "crlf-dot-lf": "\r\n.\n", "lf-dot-crlf": "\n.\r\n"}


@pytest.fixture(scope="module")
def run(module_mailrun):
    mailrun = module_mailrun
    mailrun.smuggling_relay = mailrun.relay("relay")
    mailrun.vars.update(DEFAULT_RELAY_HOST=f"[127.0.0.1]:{mailrun.smuggling_relay.port}")
    mailrun.configure()
    postfix = mailrun.postfix
    # Test scaffolding, not relaykit's configuration: example.net is a relay domain, so
    # an untrusted client may send to it (as to an MX), and port `legacy_port` runs smtpd
    # with the compile-time defaults of Postfix 3.7 (`postconf -d`).
    postfix.postconf({"relay_domains": "example.net"})
    mailrun.legacy_port = free_port()
    postfix.run("postconf", "-M", f"127.0.0.1:{mailrun.legacy_port}/inet = 127.0.0.1:{mailrun.legacy_port} "
                "inet n - n - - smtpd -o smtpd_forbid_bare_newline=no -o smtpd_forbid_unauth_pipelining=no")
    postfix.start()
    return mailrun


def _reply(stream) -> str:
    lines = []
    while True:
        try:
            line = stream.readline()
        except ConnectionResetError:  # the server closed with our pipelined bytes unread: RST
            lines.append("EOF")
            break
        if not line:
            lines.append("EOF")
            break
        lines.append(line.decode().rstrip("\r\n"))
        if line[3:4] != b"-":
            break
    return "\n".join(lines)


def smuggle(port: int, source: str, separator: str, tag: str) -> list[str]:
    """One SMTP session whose DATA holds `separator` and then a second, spoofed transaction;
    the server's replies, in order ("EOF" when it hung up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0)) as sock:
        stream = sock.makefile("rb")
        replies = [_reply(stream)]
        for command in ("EHLO client.example", "MAIL FROM:<sender@outside.example>", f"RCPT TO:<{RECIPIENT}>", "DATA"):
            sock.sendall(command.encode() + b"\r\n")
            replies.append(_reply(stream))
        assert replies[-1].startswith("354"), replies
        # What an upstream server that does not normalize line ends would pass on.
        sock.sendall((f"Subject: {tag} first\r\n\r\nhello\r\n{separator}"
                      f"MAIL FROM:<ceo@victim.example>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n"
                      f"Subject: {tag} smuggled\r\n\r\nspoofed\r\n.\r\n").encode())
        replies.append(_reply(stream))
        try:
            sock.sendall(b"QUIT\r\n")  # after the first reply: no pipelining of our own
        except OSError:
            pass  # the server hung up already
        while replies[-1] != "EOF":
            replies.append(_reply(stream))
    return replies


def queued(replies: list[str]) -> list[str]:
    """The queue IDs of the messages the server accepted in a session."""
    return [reply.rpartition(" ")[2] for reply in replies if "queued as" in reply]


def delivered(run, tag: str, count: int) -> list:
    """The relay's messages of this attempt, once `count` are there (and a moment more)."""
    deadline = time.monotonic() + 20
    while len(found := [m for m in run.smuggling_relay.messages if f"Subject: {tag} ".encode() in m.data]) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} messages:\n{run.postfix.log()[-3000:]}"
        time.sleep(0.05)
    return found


@pytest.mark.parametrize("separator", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_smuggled_end_of_data_leaves_one_message(run, separator):
    tag = f"untrusted {separator!r}"
    replies = smuggle(run.postfix.smtpd_port, "127.0.0.2", separator, tag)

    assert len(queued(replies)) == 1, replies
    [message] = delivered(run, tag, 1)
    assert message.mail_from == "sender@outside.example"
    # The would-be second transaction is text of the first message, not a message.
    assert b"\r\nMAIL FROM:<ceo@victim.example>\r\n" in message.data
    assert f"id {queued(replies)[0]}".encode() in message.data
    run.postfix.wait_log(rf"{queued(replies)[0]}: removed")
    assert not [m for m in run.smuggling_relay.messages if m.mail_from == "ceo@victim.example"
                and tag.encode() in m.data]


@pytest.mark.parametrize("separator", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_postfix_compile_time_defaults_would_split_it(run, separator):
    """The control: the same bytes against Postfix 3.7's defaults make two messages, the
    second with the smuggled sender. Without relaykit's settings the test above fails."""
    tag = f"legacy {separator!r}"
    replies = smuggle(run.legacy_port, "127.0.0.2", separator, tag)

    assert len(queued(replies)) == 2, replies
    assert sorted(m.mail_from for m in delivered(run, tag, 2)) == ["ceo@victim.example", "sender@outside.example"]


def test_trusted_client_is_cut_off_at_the_smuggled_commands(run):
    """mynetworks is exempt from the bare <LF> rule (Postfix's recommendation), so there
    "<LF>.<LF>" does end the message; the commands pipelined after it then end the session
    (smtpd_forbid_unauth_pipelining) before a second message is accepted."""
    tag = "trusted"
    replies = smuggle(run.postfix.smtpd_port, "127.0.0.1", "\n.\n", tag)

    # Postfix closes with our pipelined bytes unread, so its RST may overtake its last
    # replies (the client then reads "EOF" early): its log says what it refused, always.
    run.postfix.wait_log(r"improper command pipelining after DATA from \S+\[127\.0\.0\.1\]")
    assert len(queued(replies)) <= 1 and not any(r.startswith("354") for r in replies[5:]), replies
    assert any(r.startswith("554 5.5.0") and "synchronization" in r for r in replies) or replies[-1] == "EOF", replies
    [message] = delivered(run, tag, 1)
    assert message.mail_from == "sender@outside.example"
    queue_id = re.search(rb"\bid ([0-9A-F]+)", message.data).group(1).decode()
    assert queued(replies) in ([], [queue_id]), replies
    run.postfix.wait_log(rf"{queue_id}: removed")
    assert not [m for m in run.smuggling_relay.messages if m.mail_from == "ceo@victim.example"
                and tag.encode() in m.data]
