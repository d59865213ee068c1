"""DMS-style log lines for configure and start: `[   INF   ]  message` on stderr.

LOG_LEVEL is trace, debug, info, warn or error (DMS names). Never pass a secret here.
"""

from __future__ import annotations

import sys

LEVELS = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "error": 4}
_TAGS = {"trace": "TRACE", "debug": "DEBUG", "info": "INF", "warn": "WARNING", "error": "ERROR"}
_threshold = LEVELS["info"]


def set_level(name: str) -> None:
    global _threshold
    _threshold = LEVELS[name]


def enabled(level: str) -> bool:
    """Whether `level` is logged: skip building messages nobody will see."""
    return LEVELS[level] >= _threshold


def log(level: str, message: str) -> None:
    if LEVELS[level] >= _threshold:
        print(f"[ {_TAGS[level]:^9} ]  {message}", file=sys.stderr, flush=True)


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
