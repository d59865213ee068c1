"""Relay faults over real SMTP: the relay is down, answers 4xx, drops the connection in the
middle of the message or at the end of DATA (before its reply), or shows a certificate
that does not verify where RELAYKIT_TLS_SECURE demands it. Every time: the mail is
deferred, then delivered once the relay recovers; every message arrives, none twice, the
queue ends empty."""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage

import pytest

from harness.relays import CaptureRelay, CertificateAuthority

pytestmark = pytest.mark.e2e
TOTALS = {"sent": 0, "delivered": 0}


@pytest.fixture(scope="module", autouse=True)
def report_totals():
    yield
    print(f"\nfault tests: {TOTALS['sent']} messages sent, {TOTALS['delivered']} delivered")


def send_many(mailrun, count: int, tag: str) -> list[str]:
    """Submit `count` messages in one SMTP session; their unique subjects."""
    subjects = []
    with smtplib.SMTP("127.0.0.1", mailrun.postfix.smtpd_port, timeout=60) as smtp:
        for i in range(count):
            message = EmailMessage()
            message["From"], message["To"] = "a@one.example", f"r{i}@example.net"
            message["Subject"] = f"{tag}-{i}-{time.monotonic_ns()}"
            message.set_content("fault test\n")
            smtp.send_message(message)
            subjects.append(message["Subject"])
    TOTALS["sent"] += count
    return subjects


def wait_deferred(mailrun, count: int, offset: int, timeout: float = 60) -> None:
    """All `count` messages are in the queue and Postfix has deferred delivery attempts."""
    mailrun.postfix.wait_log(r"status=deferred", after=offset, timeout=timeout)
    deadline = time.monotonic() + timeout
    while len(mailrun.postfix.queue()) < count:
        assert time.monotonic() < deadline, f"{len(mailrun.postfix.queue())} of {count} queued"
        time.sleep(0.2)


def wait_all_delivered(mailrun, relay: CaptureRelay, subjects: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    flushed = 0.0
    while True:
        if time.monotonic() - flushed > 5:  # "the relay is back": retry now, and again later
            mailrun.postfix.flush()
            flushed = time.monotonic()
        got = [m.data for m in relay.messages]
        received = {s: sum(s.encode() in d for d in got) for s in subjects}
        if all(received.values()) and not mailrun.postfix.queue():
            break
        assert time.monotonic() < deadline, (
            f"{sum(map(bool, received.values()))} of {len(subjects)} delivered, "
            f"{len(mailrun.postfix.queue())} queued: {mailrun.postfix.queue()[:3]}\n{mailrun.postfix.log()[-2000:]}")
        time.sleep(0.2)
    assert set(received.values()) == {1}, "a message was delivered twice"
    TOTALS["delivered"] += len(subjects)


# A session with a relay that hangs would wait 300 s (Postfix's defaults) before the retry.
SMTP_TIMEOUTS = {f"smtp_{name}_timeout": "10s" for name in
                 ("helo", "starttls", "mail", "rcpt", "data_init", "data_xfer", "data_done", "rset", "quit")}


def configure_relay(mailrun, relay: CaptureRelay, host: str = "127.0.0.1", **extra: str) -> None:
    mailrun.postfix.postconf(SMTP_TIMEOUTS)
    mailrun.vars.update(DEFAULT_RELAY_HOST=f"[{host}]:{relay.port}", RELAY_USER="user",
                        RELAY_PASSWORD="pw-Zq9", **extra)
    mailrun.start()


def relay_down(mailrun, count: int) -> None:
    relay = mailrun.relay("down", users={"user": "pw-Zq9"})
    configure_relay(mailrun, relay)
    relay.stop()
    offset = len(mailrun.postfix.log())
    subjects = send_many(mailrun, count, "down")
    wait_deferred(mailrun, count, offset)
    assert not relay.messages
    relay.start()
    wait_all_delivered(mailrun, relay, subjects)


def relay_4xx(mailrun, count: int) -> None:
    relay = mailrun.relay("busy", users={"user": "pw-Zq9"})
    configure_relay(mailrun, relay)
    offset = len(mailrun.postfix.log())
    relay.rcpt_reply = "451 4.3.0 try again later"
    first = send_many(mailrun, count // 2, "rcpt4xx")
    wait_deferred(mailrun, count // 2, offset)
    relay.rcpt_reply, relay.data_reply = None, "452 4.3.1 insufficient storage"
    offset = len(mailrun.postfix.log())
    second = send_many(mailrun, count - count // 2, "data4xx")
    mailrun.postfix.wait_log(r"452 4\.3\.1 insufficient storage", after=offset, timeout=60)
    assert not relay.messages
    relay.data_reply = None
    wait_all_delivered(mailrun, relay, first + second)


def relay_drops_in_data(mailrun, count: int, where: str = "drop_mid_data") -> None:
    relay = mailrun.relay("drop", users={"user": "pw-Zq9"})
    configure_relay(mailrun, relay)
    setattr(relay, where, True)
    offset = len(mailrun.postfix.log())
    subjects = send_many(mailrun, count, "drop")
    wait_deferred(mailrun, count, offset)
    mailrun.postfix.wait_log(r"lost connection with .* while sending (message content|end of data)", after=offset)
    assert relay.dropped and not relay.messages
    setattr(relay, where, False)
    wait_all_delivered(mailrun, relay, subjects)


def relay_drops_at_end_of_data(mailrun, count: int) -> None:
    relay_drops_in_data(mailrun, count, "drop_data")


def relay_unverified_certificate(mailrun, count: int, tmp_path) -> None:
    rogue = CertificateAuthority(tmp_path / "rogue-ca")  # not the CA Postfix trusts
    relay = CaptureRelay("secure", rogue, users={"user": "pw-Zq9"}).start()
    mailrun.relays.append(relay)
    # `secure` checks the name too: the relay is reached as localhost, a name in its cert
    configure_relay(mailrun, relay, host="localhost", RELAYKIT_TLS_SECURE=f"[localhost]:{relay.port}")
    assert mailrun.postfix.query(mailrun.postfix.param("smtp_tls_policy_maps"),
                                 f"[localhost]:{relay.port}") == "secure"
    offset = len(mailrun.postfix.log())
    subjects = send_many(mailrun, count, "cert")
    mailrun.postfix.wait_log(r"[Cc]ertificate (verification failed|not trusted)|[Ss]erver certificate not verified",
                             after=offset, timeout=60)
    wait_deferred(mailrun, count, offset)
    assert not relay.messages and not relay.auth_attempts, "credentials went to an unverified relay"
    relay.stop()  # the relay gets its proper certificate, on the same port
    fixed = mailrun.relay("secure-fixed", port=relay.port, users={"user": "pw-Zq9"})
    wait_all_delivered(mailrun, fixed, subjects)
    assert {m.login for m in fixed.messages} == {"user"}


FAULTS = {"down": relay_down, "4xx": relay_4xx, "drop-mid-data": relay_drops_in_data,
          "drop-at-end-of-data": relay_drops_at_end_of_data}


@pytest.mark.parametrize("fault", [*FAULTS, "unverified-certificate"])
def test_relay_fault_defers_then_delivers_every_message(mailrun, tmp_path, fault):
    if fault == "unverified-certificate":
        relay_unverified_certificate(mailrun, 20, tmp_path)
    else:
        FAULTS[fault](mailrun, 20)


@pytest.mark.slow
@pytest.mark.parametrize("fault", [*FAULTS, "unverified-certificate"])
def test_relay_fault_loses_none_of_500_messages(mailrun, tmp_path, fault):
    if fault == "unverified-certificate":
        relay_unverified_certificate(mailrun, 500, tmp_path)
    else:
        FAULTS[fault](mailrun, 500)
