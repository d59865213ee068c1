"""Postfix's log lines, parsed (pure): what `relaykit start` reads as they pass through it,
for LOG_FORMAT=json and the Prometheus delivery counters.

A maillog_file line (postlogd, Postfix 3.4+) is

  Nov 30 15:58:50 host postfix/smtp[14781]: 7FA91226B30: to=<b@y.example>, relay=none,
      delay=0.05, delays=0.02/0.04/0/0, dsn=4.4.1, status=deferred (connect to ...: Connection refused)

`parse` returns its parts as a dict (only the keys the line has): program, pid, host,
level (info, or Postfix's warning/error/fatal/panic prefix), message (after the program),
queue_id, and the delivery fields from, to, orig_to, relay, delay (seconds, a float),
delays, dsn, status, reason. A delivery status line (to= and status=) also gets `nexthop`:
the relay= value, or, when Postfix did not reach one (relay=none), the host[address]:port
its "connect to" reason names: the label the delivery counters are kept by.
"""

from __future__ import annotations

import re

_LINE = re.compile(r"(?P<stamp>\w{3} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) (?P<host>\S+) "
                   r"(?P<program>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<message>.*)")
_LEVEL = re.compile(r"(warning|error|fatal|panic): ")
# Short queue ids are hex; long ones (enable_long_queue_ids) are base 52 with a "z"-less alphabet.
_QUEUE_ID = re.compile(r"([0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]{10,}z[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+): ")
_FIELD = re.compile(r"(from|to|orig_to|relay|delay|delays|dsn|status)=(<[^>]*>|[^,\s]*)")
_REASON = re.compile(r"status=\w+ \((?P<reason>.*)\)$")
_CONNECT = re.compile(r"connect to (\S+\[[^\]]*\]:\d+)")


def parse(line: str) -> dict | None:
    """The parts of one Postfix log line; None for a line that is not one."""
    match = _LINE.fullmatch(line)
    if not match:
        return None
    fields: dict = {"host": match["host"], "program": match["program"]}
    if match["pid"]:
        fields["pid"] = int(match["pid"])
    message = match["message"]
    fields["level"] = "info"
    if level := _LEVEL.match(message):
        fields["level"] = level[1]
    fields["message"] = message
    queue_id = _QUEUE_ID.match(message)
    if not queue_id:
        return fields
    fields["queue_id"] = queue_id[1]
    rest = message[queue_id.end():]
    for name, value in _FIELD.findall(rest):
        if name in fields:
            continue  # the first one: a reason may quote another "to=" further on
        value = value[1:-1] if value.startswith("<") else value
        if name == "delay":
            try:
                fields[name] = float(value)
            except ValueError:
                continue
        else:
            fields[name] = value
    if "status" in fields:
        if reason := _REASON.search(rest):
            fields["reason"] = reason["reason"]
        if "to" in fields:
            fields["nexthop"] = nexthop(fields)
    return fields


def nexthop(fields: dict) -> str:
    """The relay a delivery line is about: host[address]:port as Postfix writes it."""
    relay = fields.get("relay", "none")
    if relay != "none":
        return relay
    connect = _CONNECT.search(fields.get("reason", ""))
    return connect[1] if connect else "none"
