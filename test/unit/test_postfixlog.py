"""Postfix's log lines as relaykit reads them (core/postfixlog.py), the pump that passes
them to stdout without ever making Postfix wait (run/logpump.py), and relaykit's own
lines in both LOG_FORMATs (log.py)."""

from __future__ import annotations

import io
import json
import os
import threading
import time

import pytest

from relaykit import log
from relaykit.core.postfixlog import parse
from relaykit.run.logpump import LogPump

SENT = ("Nov 30 15:58:50 relaykit postfix/smtp[14781]: 7FA91226B30: to=<b@y.example>, "
        "relay=smtp.relay.test[192.0.2.7]:587, delay=0.35, delays=0.02/0.01/0.2/0.12, dsn=2.0.0, "
        "status=sent (250 2.0.0 Ok: queued as 12345)")
DOWN = ("Nov  3 05:08:51 relaykit postfix/smtp[14781]: 7FA91226B30: to=<b@y.example>, relay=none, "
        "delay=1.1, delays=1.1/0/0/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:2525: "
        "Connection refused)")


def test_a_sent_line_gives_queue_id_relay_status_and_delay():
    fields = parse(SENT)
    assert fields == {
        "host": "relaykit", "program": "postfix/smtp", "pid": 14781, "level": "info",
        "message": SENT.split(": ", 1)[1], "queue_id": "7FA91226B30", "to": "b@y.example",
        "relay": "smtp.relay.test[192.0.2.7]:587", "delay": 0.35, "delays": "0.02/0.01/0.2/0.12",
        "dsn": "2.0.0", "status": "sent", "reason": "250 2.0.0 Ok: queued as 12345",
        "nexthop": "smtp.relay.test[192.0.2.7]:587"}


def test_a_relay_that_is_down_is_named_by_the_connect_reason():
    fields = parse(DOWN)
    assert (fields["relay"], fields["nexthop"], fields["status"]) == ("none", "127.0.0.1[127.0.0.1]:2525", "deferred")
    assert fields["reason"] == "connect to 127.0.0.1[127.0.0.1]:2525: Connection refused"


@pytest.mark.parametrize("line, expected", [
    ("Nov 30 15:58:50 h postfix/smtpd[1]: warning: hostname x does not resolve",
     {"level": "warning", "program": "postfix/smtpd"}),
    ("Nov 30 15:58:50 h postfix/qmgr[2]: 4Ld0Hx2Q1Vz1xB: from=<a@b.example>, size=307, nrcpt=1 (queue active)",
     {"queue_id": "4Ld0Hx2Q1Vz1xB", "from": "a@b.example"}),
    ("Nov 30 15:58:50 h postfix/smtp[3]: 7FA91226B30: to=<x@y.example>, orig_to=<al@y.example>, relay=none, "
     "delay=0.1, delays=0/0/0/0, dsn=5.1.1, status=bounced (host said: 550 to=<other@z.example> unknown)",
     {"to": "x@y.example", "orig_to": "al@y.example", "status": "bounced", "nexthop": "none"}),
])
def test_levels_long_queue_ids_and_the_first_field_wins(line, expected):
    fields = parse(line)
    assert {key: fields.get(key) for key in expected} == expected


def test_a_line_that_is_not_postfix_s_is_none():
    assert parse("random text") is None
    assert parse("") is None


def test_the_pump_never_blocks_postfix_when_stdout_stalls_and_counts_what_it_drops(monkeypatch):
    read_end, write_end = os.pipe()
    stalled = threading.Event()
    written = []

    def slow_stdout(line, fields):
        stalled.wait(10)
        written.append((line, fields))

    pump = LogPump(os.fdopen(read_end, "rb"), write=slow_stdout, capacity=10).start()
    line = (DOWN + "\n").encode()
    started = time.monotonic()
    with os.fdopen(write_end, "wb") as postfix:
        for _ in range(2000):  # ~400 KB: the pipe (64 KB) would fill if the reader waited
            postfix.write(line)
    assert time.monotonic() - started < 5  # Postfix wrote everything while stdout was stuck
    while pump.total_dropped < 2000 - 11:  # 10 queued, 1 in the writer's hands: all else dropped
        assert time.monotonic() - started < 5, pump.total_dropped
        time.sleep(0.01)
    stalled.set()
    pump.join(5)
    assert len(written) in (10, 11) and pump.total_dropped == 2000 - len(written)
    assert pump.dropped == 0  # reported: the writer logged "... dropped" once stdout moved
    assert written[0] == (DOWN, parse(DOWN))


def test_text_lines_are_dms_lines_and_json_lines_are_objects(capsys):
    try:
        log.info("started postfix")
        log.set_format("json")
        log.warn("a warning")
        log.postfix_line(SENT, parse(SENT))
    finally:
        log.set_format("text")
    err = capsys.readouterr()
    text, warning = err.err.splitlines()
    assert text == "[    INF    ]  started postfix"
    assert json.loads(warning) | {"time": "t"} == {"time": "t", "level": "warn", "source": "relaykit",
                                                   "message": "a warning"}
    record = json.loads(err.out)
    assert (record["source"], record["queue_id"], record["status"], record["delay"]) == \
        ("postfix", "7FA91226B30", "sent", 0.35)
    buffer = io.StringIO()
    log.postfix_line(SENT, parse(SENT), buffer)
    assert buffer.getvalue() == SENT + "\n"  # text: verbatim
