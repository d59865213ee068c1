"""relaykit's log: its own lines on stderr, and Postfix's lines (as they pass through
`relaykit start`) on stdout, in one of two formats (LOG_FORMAT):

  text (default)  relaykit's lines DMS-style, `[   INF   ]  message`; Postfix's verbatim
  json            one JSON object a line for both: {"time", "level", "source", "message",
                  ...} and, for Postfix's lines, the fields its line has (queue_id, to,
                  relay, status, delay, dsn, reason...: core/postfixlog.py)

Not built on the stdlib `logging` module: that import costs ~7 ms (traceback, string,
its locks and registries) of `relaykit configure`'s start-up, for the few lines written
here: a level threshold, and one write per line to whatever sys.stderr is at the time (so
a test's capture sees it), under a lock (the daemon logs from several threads).
LOG_LEVEL is trace, debug, info, warn or error (DMS names). Never pass a secret here:
nothing is masked after the fact, a secret must simply never be in a message.
"""

from __future__ import annotations

import json
import sys
import time
from threading import RLock

# The levels' numbers are the stdlib logging module's (DEBUG 10 ... ERROR 40), plus TRACE.
TRACE = 5
LEVELS = {"trace": TRACE, "debug": 10, "info": 20, "warn": 30, "error": 40}
_TAGS = {"trace": "TRACE", "debug": "DEBUG", "info": "INF", "warn": "WARNING", "error": "ERROR"}
FORMATS = ("text", "json")


def _now(created: float) -> str:
    """RFC 3339 UTC with milliseconds, as log shippers (Loki, Elasticsearch) parse it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


def _text(level: str, message: str) -> str:
    """The DMS line: `[ INF ]` centred in 9 columns, two spaces, the message."""
    return f"[ {_TAGS[level]:^9} ]  {message}"


def _json(level: str, message: str) -> str:
    return json.dumps({"time": _now(time.time()), "level": level, "source": "relaykit", "message": message},
                      ensure_ascii=False)


_threshold = LEVELS["info"]
_format = "text"
_formatter = _text
_lock = RLock()  # reentrant, as logging's: a signal handler may log while the main thread does


def set_level(name: str) -> None:
    global _threshold
    _threshold = LEVELS[name]


def set_format(name: str) -> None:
    global _format, _formatter
    _format = name
    _formatter = _json if name == "json" else _text


def enabled(level: str) -> bool:
    """Whether `level` is logged: skip building messages nobody will see."""
    return LEVELS[level] >= _threshold


def log(level: str, message: str) -> None:
    if LEVELS[level] < _threshold:
        return
    with _lock:
        try:
            stream = sys.stderr
            stream.write(_formatter(level, message) + "\n")
            stream.flush()
        except Exception:  # a closed stderr must not kill the daemon
            pass


def trace(message: str) -> None:
    log("trace", message)


def debug(message: str) -> None:
    log("debug", message)


def info(message: str) -> None:
    log("info", message)


def warn(message: str) -> None:
    log("warn", message)


def error(message: str) -> None:
    log("error", message)


def postfix_line(raw: str, fields: dict | None, stream=None) -> None:
    """One line of Postfix's own log, on stdout: verbatim in text format; in json, an
    object with `fields` (core/postfixlog.parse; None: a line it could not parse, kept
    whole as the message). Postfix's lines carry no secrets (it never logs passwords)."""
    stream = stream or sys.stdout
    if _format == "json":
        record = {"time": _now(time.time()), "level": "info", "source": "postfix", "message": raw}
        if fields:
            record.update(fields)
        raw = json.dumps(record, ensure_ascii=False)
    stream.write(raw + "\n")
    stream.flush()
