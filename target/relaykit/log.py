"""relaykit's log: its own lines on stderr, and Postfix's lines (as they pass through
`relaykit start`) on stdout, in one of two formats (LOG_FORMAT):

  text (default)  relaykit's lines DMS-style, `[   INF   ]  message`; Postfix's verbatim
  json            one JSON object a line for both: {"time", "level", "source", "message",
                  ...} and, for Postfix's lines, the fields its line has (queue_id, to,
                  relay, status, delay, dsn, reason...: core/postfixlog.py)

Built on the stdlib `logging` module: a "relaykit" logger whose handler writes to whatever
sys.stderr is at the time (so a test's capture sees it), with a formatter per format.
LOG_LEVEL is trace, debug, info, warn or error (DMS names). Never pass a secret here:
nothing is masked after the fact, a secret must simply never be in a message.
"""

from __future__ import annotations

import json
import logging
import sys
import time

TRACE = 5
LEVELS = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR}
_NAMES = {value: name for name, value in LEVELS.items()}
_TAGS = {"trace": "TRACE", "debug": "DEBUG", "info": "INF", "warn": "WARNING", "error": "ERROR"}
FORMATS = ("text", "json")


def _now(created: float) -> str:
    """RFC 3339 UTC with milliseconds, as log shippers (Loki, Elasticsearch) parse it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """The DMS line: `[ INF ]` centred in 9 columns, two spaces, the message."""

    def format(self, record: logging.LogRecord) -> str:
        return f"[ {_TAGS[_NAMES[record.levelno]]:^9} ]  {record.getMessage()}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": _now(record.created), "level": _NAMES[record.levelno], "source": "relaykit",
                           "message": record.getMessage()}, ensure_ascii=False)


class _Stderr(logging.Handler):
    """Writes to the current sys.stderr (not the one at import time), flushed per line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # a closed stderr must not kill the daemon
            self.handleError(record)


_logger = logging.getLogger("relaykit")
_logger.propagate = False
_handler = _Stderr()
_handler.setFormatter(TextFormatter())
_logger.addHandler(_handler)
_logger.setLevel(logging.INFO)
_format = "text"


def set_level(name: str) -> None:
    _logger.setLevel(LEVELS[name])


def set_format(name: str) -> None:
    global _format
    _format = name
    _handler.setFormatter(JsonFormatter() if name == "json" else TextFormatter())


def enabled(level: str) -> bool:
    """Whether `level` is logged: skip building messages nobody will see."""
    return _logger.isEnabledFor(LEVELS[level])


def log(level: str, message: str) -> None:
    _logger.log(LEVELS[level], message)


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
