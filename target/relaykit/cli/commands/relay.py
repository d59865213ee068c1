"""`setup relay ...`: edit the relay configuration, DMS semantics.

Every value is validated before the store is touched, so a refused command changes
nothing. Messages name keys and usernames, never a password.
"""

from __future__ import annotations

import sys

from relaykit.cli import ui
from relaykit.inputs import validate
from relaykit.errors import UsageError
from relaykit.secret import Secret
from relaykit.stores import open_store


def add_domain(args: list[str]) -> int:
    sender, hop = validate.route_key(args[0], "domain"), validate.relay(*args[1:])
    open_store().set_relay(sender, (hop,))
    ui.ok(f"{sender} now relays through {hop.written}")
    return 0


def add_recipient_domain(args: list[str]) -> int:
    key, hop = validate.recipient_key(args[0]), validate.relay(*args[1:])
    open_store().set_recipient_relay(key, (hop,))
    ui.ok(f"mail to {key} now goes through {hop.written}, whoever sends it")
    return 0


def del_recipient_domain(args: list[str]) -> int:
    store = open_store()
    key = validate.recipient_key(args[0])
    if not store.remove_recipient_relay(key):
        raise UsageError(f"{key} has no entry in {store.where('recipient relays')}: nothing to delete")
    ui.ok(f"{key} removed from {store.where('recipient relays')}")
    return 0


def read_password(prompt: str) -> str:
    """Ask without echo on a terminal; otherwise read one line of standard input."""
    if sys.stdin is None:
        raise UsageError("no password given and no standard input to read it from")
    if sys.stdin.isatty():
        import getpass  # lazy: only a terminal prompts (test_layers.LAZY)

        return getpass.getpass(prompt)
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def add_auth(args: list[str]) -> int:
    key = args[0]
    sender = validate.nexthop(key, "relay") if key.startswith("[") else validate.route_key(key, "domain")
    user = validate.username(args[1])
    password = args[2] if len(args) > 2 else read_password(f"Password for {user} ({sender}): ")
    open_store().set_credential(sender, user, Secret(validate.password(password.rstrip("\r"))))
    ui.ok(f"{sender} authenticates as {user}")
    return 0


def exclude_domain(args: list[str]) -> int:
    sender = validate.route_key(args[0], "domain")
    open_store().set_relay(sender, ())
    ui.ok(f"{sender} is excluded from the default relay")
    return 0


def del_domain(args: list[str]) -> int:
    """Remove the domain's relaymap line (a route or an opt-out); its mail then follows
    RELAY_HOST / DEFAULT_RELAY_HOST again."""
    store = open_store()
    sender = validate.sender_key(args[0], "domain")
    if not store.remove_relay(sender):
        raise UsageError(f"{sender} has no entry in {store.where('relays')}: nothing to delete")
    ui.ok(f"{sender} removed from {store.where('relays')}")
    return 0


def del_auth(args: list[str]) -> int:
    """Remove the credentials of a sender domain or of a relay (`[host]:port`, `host:port`)."""
    store = open_store()
    text = args[0]
    by_relay = text.startswith("[") or ":" in text  # a domain has neither
    key = validate.nexthop(text, "relay") if by_relay else validate.sender_key(text, "domain")
    if not store.remove_credential(key):
        raise UsageError(f"{key} has no credentials in {store.where('credentials')}: nothing to delete")
    ui.ok(f"credentials of {key} removed from {store.where('credentials')}")
    return 0
