"""`relaykit`: configure Postfix once, run the container entrypoint, or the `setup` CLI."""

from __future__ import annotations

import gc
import os
import sys

from relaykit import __version__
from relaykit.cli.dispatch import Command, Group, main_guard, run
from relaykit.cli.setup import SETUP


def _tree() -> Group:
    """The `relaykit` command tree (`setup` is one of its branches)."""
    return Group(
        "relaykit",
        "Route Postfix's outbound mail through relay hosts (docker-mailserver compatible).",
        (
            Command("configure", "relaykit.cli.main:configure", "",
                    "Apply the environment and config files to Postfix once, then exit.",
                    ("relaykit configure",)),
            Command("start", "relaykit.run.daemon:main", "",
                    "Configure, run Postfix in the foreground, re-apply on config changes.",
                    ("relaykit start",)),
            Command("health", "relaykit.run.health:main", "[-v] [<host>:<port>]",
                    "Exit 0 if Postfix runs and its SMTP listener answers (the HEALTHCHECK).",
                    ("relaykit health", "relaykit health -v 127.0.0.1:587"),
                    min_args=0, max_args=2,
                    details="Checks `postfix status`, then greets the listener (default 127.0.0.1:25,\n"
                            "or RELAYKIT_HEALTH_ADDRESS) with EHLO and expects 220 and 250."),
            Group("setup", SETUP.summary, SETUP.children),
            Group("db", "The PostgreSQL store (RELAYKIT_DATABASE_URL).", (
                Command("upgrade", "relaykit.cli.commands.database:upgrade", "",
                        "Create or upgrade the database schema (also done by configure/start).",
                        ("relaykit db upgrade",)),
            )),
        ),
    )


def configure(args: list[str]) -> int:
    # A one-shot process that makes no garbage cycles (see relaykit/gcpause.py), from its
    # imports on: the collector's scans of the ~100 modules' objects cost ~10 ms of them.
    gc.disable()
    _prefetch()
    # lazy: run/ imports every layer; `relaykit setup ...` and `health` must not pay for it
    from relaykit.run.configure import configure as run_configure

    run_configure()
    _leave(0)
    return 0


def _prefetch() -> None:
    """Start the postconf reads configure makes before its imports (~20 ms), not after:
    the first is waited for before planning. run/configure.py asks for the same reads and
    finds them under way (unless the dotenv file sets another MAIL_CONFIG: then it starts
    its own, and these are not used). The table type is read even if TABLE_TYPE is set:
    what is not asked for is never waited for."""
    from pathlib import Path

    from relaykit.edges.postfix import APPLY_READS, TABLE_TYPE_READ, Postfix
    from relaykit.inputs.env import mail_config

    Postfix(Path(mail_config())).prefetch(TABLE_TYPE_READ, *APPLY_READS)


def _leave(status: int) -> None:
    """End `relaykit configure` without the interpreter's teardown, which frees every
    object one by one: ~90 ms after planning 100k routes, a seventh of the command. What
    an exit must still do is done: the atexit callbacks, then stdout and stderr flushed.
    Only when no other thread runs (a non-daemon thread would be waited for); otherwise,
    and when flushing fails (a closed pipe), the normal exit reports it as always."""
    import atexit
    import threading

    if threading.active_count() > 1:
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        return
    os._exit(status)


def _json_error(message: str) -> None:
    from relaykit import log  # only `relaykit configure|start` with LOG_FORMAT=json

    log.set_format("json")
    log.error(message)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        print(f"relaykit {__version__}")
        return 0
    # The server's errors (refusing to start: file:line) as JSON too when the log is JSON.
    # From the real environment: an error may be about the settings themselves.
    json_errors = argv[:1] in (["start"], ["configure"]) and \
        os.environ.get("LOG_FORMAT", "").strip().lower() == "json"
    return main_guard(lambda args: run(_tree(), args, "relaykit"), argv, _json_error if json_errors else None)


if __name__ == "__main__":
    sys.exit(main())
