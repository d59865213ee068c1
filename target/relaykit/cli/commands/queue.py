"""`setup queue ...`: Postfix's mail queue, without `postqueue -p` and raw logs.

list, flush, retry, hold, release and delete wrap postqueue(1) and postsuper(1) (through
edges/postfix.py, the one module that runs them). `flush <relay>` chooses the deferred
messages that relay carries with the same router that `setup relay explain` uses
(core/routing.py), not by guessing from the deferral reasons.
"""

from __future__ import annotations

import json
import os
import sys
import time

from relaykit.cli import ui
from relaykit.edges.postfix import Postfix
from relaykit.errors import UsageError
from relaykit.inputs import env as envvars
from relaykit.inputs import validate

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _postfix() -> Postfix:
    return Postfix(envvars.mail_config(os.environ))


def _queue_id(value: str) -> str:
    """A Postfix queue id: letters and digits only (never ALL, never an option)."""
    if not value.isascii() or not value.isalnum() or value.upper() == "ALL":
        raise UsageError(f"not a queue id: {value!r} (see 'setup queue list')")
    return value


def duration(value: str) -> float:
    """7d, 12h, 30m, 90s, 2w (a number alone: seconds) -> seconds."""
    text = value.strip().lower()
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    if not number.isdigit():
        raise UsageError(f"not a duration: {value!r} (for example 7d, 12h, 30m)")
    return int(number) * _UNITS[unit]


def age(seconds: float) -> str:
    """How long ago, the way people say it: 42s, 5m, 3h, 2d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def rows(queue: list[dict], now: float) -> list[dict]:
    """The queue as list/--json show it, oldest first."""
    found = []
    for message in sorted(queue, key=lambda m: (m.get("arrival_time", 0), m.get("queue_id", ""))):
        recipients = message.get("recipients", [])
        reasons = [r["delay_reason"] for r in recipients if r.get("delay_reason")]
        found.append({
            "queue_id": message["queue_id"],
            "queue": message["queue_name"],
            "sender": message.get("sender") or "<>",
            "recipients": [r["address"] for r in recipients],
            "arrival_time": message.get("arrival_time"),
            "age_seconds": max(0, int(now - message.get("arrival_time", now))),
            "size": message.get("message_size"),
            "reason": reasons[0] if reasons else None,
        })
    return found


def list_queue(args: list[str]) -> int:
    """`setup queue list [--json]`."""
    if args and args != ["--json"]:
        raise UsageError(f"unknown option {args[0]!r}\nUsage: setup queue list [--json]")
    found = rows(_postfix().queue(), time.time())
    if args == ["--json"]:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        ui.info("The mail queue is empty.")
        return 0
    from rich.table import Table  # only for the table, not --json

    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column in ("queue id", "queue", "age", "sender", "recipients", "last reason"):
        table.add_column(column, overflow="fold")
    for row in found:
        table.add_row(row["queue_id"], row["queue"], age(row["age_seconds"]), row["sender"],
                      ", ".join(row["recipients"]), row["reason"] or "")
    ui.console().print(table)
    print(f"{len(found)} message{'s' if len(found) != 1 else ''}", file=sys.stderr)
    return 0


def _known(postfix: Postfix, queue_id: str) -> dict:
    for message in postfix.queue():
        if message["queue_id"] == queue_id:
            return message
    raise UsageError(f"no message {queue_id} in the queue (see 'setup queue list')")


def _relay(value: str) -> tuple[str, int | None]:
    """host, [host], host:port or [host]:port -> (host, port or None: any port)."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:  # a hostname or an IPv6 address without brackets
        host, port = text, None
    return validate.host(host, "relay"), validate.port(port, "relay port") if port else None


def carried_by(queue: list[dict], host: str, port: int | None, resolve) -> list[str]:
    """The queue ids of deferred messages with a recipient routed through host(:port)."""
    ids = []
    for message in queue:
        if message.get("queue_name") != "deferred":
            continue
        for recipient in message.get("recipients", []):
            hops = resolve(message.get("sender") or "", recipient["address"]).nexthops
            if any(hop.host == host and (port is None or hop.port == port) for hop in hops):
                ids.append(message["queue_id"])
                break
    return ids


def flush(args: list[str]) -> int:
    """`setup queue flush [<relay>]`: try deferred mail now (all, or one relay's)."""
    postfix = _postfix()
    if not args:
        postfix.flush()
        ui.ok("Flushed the queue: Postfix tries every deferred message now.")
        return 0
    host, port = _relay(args[0])
    from relaykit.core.routing import Router  # the route planner: only flush <relay> needs it
    from relaykit.run.configure import routing

    router = Router(routing()[2])
    ids = carried_by(postfix.queue(), host, port, router.resolve)
    postfix.flush(ids)
    where = f"[{host}]:{port}" if port else host
    ui.ok(f"Flushed {len(ids)} deferred message{'s' if len(ids) != 1 else ''} routed through {where}.")
    return 0


def retry(args: list[str]) -> int:
    """`setup queue retry <id>`: deliver one deferred message now (postqueue -i)."""
    postfix = _postfix()
    queue_id = _queue_id(args[0])
    _known(postfix, queue_id)
    postfix.flush([queue_id])
    ui.ok(f"Retrying {queue_id} now.")
    return 0


def hold(args: list[str]) -> int:
    """`setup queue hold <id>`: keep a message out of delivery until it is released."""
    postfix = _postfix()
    queue_id = _queue_id(args[0])
    _known(postfix, queue_id)
    postfix.postsuper("-h", [queue_id])
    ui.ok(f"Put {queue_id} on hold ('setup queue release {queue_id}' to deliver it).")
    return 0


def release(args: list[str]) -> int:
    """`setup queue release <id>`: return a held message to delivery."""
    postfix = _postfix()
    queue_id = _queue_id(args[0])
    if _known(postfix, queue_id)["queue_name"] != "hold":
        raise UsageError(f"{queue_id} is not on hold")
    postfix.postsuper("-H", [queue_id])
    ui.ok(f"Released {queue_id}.")
    return 0


def _confirmed(question: str) -> bool:
    """Ask on the terminal (or read the answer from standard input): only y/yes is yes."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def delete(args: list[str]) -> int:
    """`setup queue delete [-y] <id>... | [-y] --deferred-older-than <age>`."""
    yes = "-y" in args
    rest = [a for a in args if a != "-y"]
    postfix = _postfix()
    queue = postfix.queue()
    if rest[:1] == ["--deferred-older-than"] or (rest and rest[0].startswith("--deferred-older-than=")):
        value = rest[0].partition("=")[2] or (rest[1] if len(rest) == 2 else "")
        if not value or len(rest) > (1 if "=" in rest[0] else 2):
            raise UsageError("Usage: setup queue delete [-y] --deferred-older-than <age> (e.g. 7d)")
        limit = time.time() - duration(value)
        ids = [m["queue_id"] for m in queue if m["queue_name"] == "deferred" and m.get("arrival_time", 0) < limit]
        what = f"{len(ids)} deferred message{'s' if len(ids) != 1 else ''} older than {value}"
    else:
        if not rest or any(a.startswith("-") for a in rest):
            raise UsageError("Usage: setup queue delete [-y] <queue id>... | [-y] --deferred-older-than <age>")
        ids = [_queue_id(a) for a in rest]
        present = {m["queue_id"] for m in queue}
        missing = [i for i in ids if i not in present]
        if missing:
            raise UsageError(f"no message {', '.join(missing)} in the queue (see 'setup queue list')")
        what = f"message{'s' if len(ids) != 1 else ''} {', '.join(ids)}"
    if not ids:
        ui.info(f"No deferred message older than {value}: nothing deleted.")
        return 0
    if not yes and not _confirmed(f"Delete {what}? Their senders are not notified."):
        raise UsageError("not deleted (answer y, or pass -y)")
    postfix.postsuper("-d", ids)
    ui.ok(f"Deleted {what}.")
    return 0
