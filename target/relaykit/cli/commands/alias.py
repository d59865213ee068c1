"""`setup alias add|del|list`: postfix-virtual.cf, DMS semantics.

An alias's targets own it as a sender on the submission ports (smtpd_sender_login_maps),
so this is also how a user gets the right to send as another address.
"""

from __future__ import annotations

from relaykit.cli import ui
from relaykit.inputs import validate
from relaykit.cli.commands.email import address
from relaykit.errors import UsageError
from relaykit.stores import open_store


def _alias(value: str) -> str:
    """alias@domain, or @domain for a catch-all."""
    if value.startswith("@"):
        return "@" + validate.domain(value[1:], "alias domain")
    return address(value)


def _targets(store, alias: str) -> tuple[str, ...]:
    found = next((a for a in store.load().aliases if a.address.lower() == alias.lower()), None)
    return found.targets if found else ()


def add(args: list[str]) -> int:
    """`add <alias> <target>`: adds <target> to the alias's targets (creating the alias)."""
    alias, target = _alias(args[0]), address(args[1])
    store = open_store()
    targets = _targets(store, alias)
    if target.lower() in (t.lower() for t in targets):
        raise UsageError(f"{alias} already goes to {target}")
    store.set_alias(alias, (*targets, target))
    ui.ok(f"{alias} -> {', '.join((*targets, target))}")
    return 0


def delete(args: list[str]) -> int:
    """`del <alias> <target>`: removes <target>; the alias goes with its last target."""
    alias, target = _alias(args[0]), address(args[1])
    store = open_store()
    targets = _targets(store, alias)
    rest = tuple(t for t in targets if t.lower() != target.lower())
    if rest == targets:
        raise UsageError(f"{alias} does not go to {target}")
    if rest:
        store.set_alias(alias, rest)
    else:
        store.remove_alias(alias)
    ui.ok(f"{alias} -> {', '.join(rest)}" if rest else f"{alias} removed")
    return 0


def list_aliases(args: list[str]) -> int:
    aliases = open_store().load().aliases
    if not aliases:
        ui.info("no aliases (add one with: setup alias add info@example.com user@example.com)")
    for alias in aliases:
        ui.info(f"* {alias.address} {','.join(alias.targets)}")
    return 0
