"""`setup queue ...` against a real Postfix queue with mail deferred by relays that are down:
list it, hold and release, delete (asking first), retry one message and flush one relay's
once the relay is back. Retries are slow here (5 minutes), so nothing moves unless a
command moves it."""

from __future__ import annotations

import json
import time

import pytest

from harness.postfix_instance import free_port
from harness.relays import CaptureRelay

pytestmark = pytest.mark.e2e

SLOW_RETRIES = {"queue_run_delay": "300s", "minimal_backoff_time": "300s", "maximal_backoff_time": "300s"}


def listed(mailrun) -> list[dict]:
    return json.loads(mailrun.run("setup", "queue", "list", "--json").stdout)


def wait_deferred(mailrun, count: int, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(rows := [r for r in listed(mailrun) if r["queue"] == "deferred" and r["reason"]]) < count:
        assert time.monotonic() < deadline, f"{listed(mailrun)}\n{mailrun.postfix.log()[-2000:]}"
        time.sleep(0.1)
    return rows


def test_queue_commands_on_mail_deferred_by_relays_that_are_down(mailrun):
    mailrun.postfix.postconf(SLOW_RETRIES)
    shop_port, news_port = free_port(), free_port()  # nothing listens there (yet)
    mailrun.write("postfix-relaymap.cf", f"@shop.example [127.0.0.1]:{shop_port}\n"
                                         f"@news.example [127.0.0.1]:{news_port}\n")
    mailrun.start()
    for sender in ("a@shop.example", "b@shop.example", "c@shop.example", "n@news.example"):
        mailrun.send(sender, "rcpt@example.net")
    rows = wait_deferred(mailrun, 4)
    by_sender = {r["sender"]: r for r in rows}
    assert sorted(by_sender) == ["a@shop.example", "b@shop.example", "c@shop.example", "n@news.example"]
    assert by_sender["a@shop.example"]["recipients"] == ["rcpt@example.net"]
    assert f"127.0.0.1[127.0.0.1]:{shop_port}: Connection refused" in by_sender["a@shop.example"]["reason"]
    assert all(r["age_seconds"] >= 0 for r in rows)
    a, b, c, n = (by_sender[s]["queue_id"] for s in sorted(by_sender))

    table = mailrun.run("setup", "queue", "list").stdout
    assert a in table and "a@shop.example" in table and "Connection refused" in table

    # hold / release
    mailrun.run("setup", "queue", "hold", a)
    assert {r["queue_id"]: r["queue"] for r in listed(mailrun)}[a] == "hold"
    assert mailrun.run("setup", "queue", "release", b, check=False).returncode == 1  # not on hold
    mailrun.run("setup", "queue", "release", a)
    assert {r["queue_id"]: r["queue"] for r in listed(mailrun)}[a] == "deferred"

    # delete asks first: "n" (or nothing) keeps the message, "y" deletes it
    refused = mailrun.run("setup", "queue", "delete", c, input="n\n", check=False)
    assert refused.returncode == 1 and c in {r["queue_id"] for r in listed(mailrun)}
    mailrun.run("setup", "queue", "delete", c, input="y\n")
    assert c not in {r["queue_id"] for r in listed(mailrun)}
    unknown = mailrun.run("setup", "queue", "delete", "-y", "ABCDEF123", check=False)
    assert unknown.returncode == 1 and "no message ABCDEF123" in unknown.stderr

    # the shop relay is back: retry one message, then flush that relay's (not news')
    shop = mailrun.relays.append(CaptureRelay("shop", mailrun.ca, port=shop_port).start()) or mailrun.relays[-1]
    mailrun.run("setup", "queue", "retry", a)
    shop.wait_for(1)
    assert [m.mail_from for m in shop.messages] == ["a@shop.example"]
    flushed = mailrun.run("setup", "queue", "flush", f"127.0.0.1:{shop_port}")
    assert "Flushed 1 deferred message" in flushed.stdout
    shop.wait_for(2)
    assert sorted(m.mail_from for m in shop.messages) == ["a@shop.example", "b@shop.example"]
    assert [r["queue_id"] for r in listed(mailrun)] == [n]  # news' relay is still down

    # delete by age: nothing is a day old; everything deferred is older than 0s
    assert "nothing deleted" in mailrun.run("setup", "queue", "delete", "--deferred-older-than", "1d").stdout
    mailrun.run("setup", "queue", "delete", "-y", "--deferred-older-than", "0s")
    assert listed(mailrun) == []
    assert "queue is empty" in mailrun.run("setup", "queue", "list").stdout


def test_queue_commands_refuse_bad_input(mailrun):
    mailrun.start()
    for args in (("retry", "ALL"), ("hold", "-d"), ("delete", "--deferred-older-than", "soon"),
                 ("flush", "bad host"), ("list", "--yaml")):
        result = mailrun.run("setup", "queue", *args, check=False)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error: "), result.stderr
