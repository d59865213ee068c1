"""What people read: messages on stdout/stderr, styled with rich on a terminal only.

rich costs ~30 ms to import, so it is loaded only when a terminal will show its colours
(or a command draws a table); piped output is plain text that scripts can parse.
Messages never include a password: callers pass usernames and keys only.
"""

from __future__ import annotations

import sys

from relaykit.inputs.env import environment

_STYLES = {"ok": "green", "info": "", "warn": "yellow", "error": "bold red"}
_PREFIX = {"ok": "", "info": "", "warn": "warning: ", "error": "error: "}


def _styled(stream) -> bool:
    return stream.isatty() and not environment().get("NO_COLOR") and environment().get("TERM") != "dumb"


def emit(kind: str, message: str) -> None:
    stream = sys.stderr if kind in ("warn", "error") else sys.stdout
    text = _PREFIX[kind] + message
    if _styled(stream):
        from rich.console import Console
        from rich.markup import escape

        style = _STYLES[kind]
        Console(file=stream, highlight=False).print(f"[{style}]{escape(text)}[/]" if style else escape(text))
    else:
        print(text, file=stream, flush=True)


def ok(message: str) -> None:
    emit("ok", message)


def info(message: str) -> None:
    emit("info", message)


def warn(message: str) -> None:
    emit("warn", message)


def error(message: str) -> None:
    emit("error", message)


def console(stream=None):
    """A rich Console for tables; plain (no colour codes) when not on a terminal."""
    from rich.console import Console

    stream = stream or sys.stdout
    return Console(file=stream, highlight=False, no_color=not _styled(stream), width=None if stream.isatty() else 200)
