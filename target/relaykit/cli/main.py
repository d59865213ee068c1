"""`relaykit`: configure Postfix once, run the container entrypoint, or the `setup` CLI."""

from __future__ import annotations

import sys

from relaykit.cli.dispatch import Command, Group, main_guard, run


def _tree() -> Group:
    from relaykit.cli.setup import SETUP

    return Group(
        "relaykit",
        "Route Postfix's outbound mail through relay hosts (docker-mailserver compatible).",
        (
            Command("configure", "relaykit.cli.main:configure", "",
                    "Apply the environment and config files to Postfix once, then exit.",
                    ("relaykit configure",)),
            Command("start", "relaykit.daemon:main", "",
                    "Configure, run Postfix in the foreground, re-apply on config changes.",
                    ("relaykit start",)),
            Group("setup", SETUP.summary, SETUP.children),
            Group("db", "The PostgreSQL store (RELAYKIT_DATABASE_URL).", (
                Command("upgrade", "relaykit.commands.database:upgrade", "",
                        "Create or upgrade the database schema (also done by configure/start).",
                        ("relaykit db upgrade",)),
            )),
        ),
    )


def configure(args: list[str]) -> int:
    from relaykit.configure import configure as run_configure

    run_configure()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        from relaykit import __version__

        print(f"relaykit {__version__}")
        return 0
    return main_guard(lambda args: run(_tree(), args, "relaykit"), argv)


if __name__ == "__main__":
    sys.exit(main())
