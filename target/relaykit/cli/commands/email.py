"""`setup email add|update|del|list`: the accounts that may log in on ports 587/465.

DMS semantics: `add` refuses an existing address, `update` a missing one; without a
password argument it is asked for without echo (or read from standard input when that is
not a terminal). Hashes are SHA512-CRYPT (DMS's default), made by Dovecot's own
`doveadm pw`, the same code that verifies them; the password goes to it on standard
input, never as an argument (ps(1) shows arguments to every user).
"""

from __future__ import annotations

from relaykit.cli import ui
from relaykit.cli.commands.relay import read_password
from relaykit.edges.dovecot import hash_password
from relaykit.errors import UsageError
from relaykit.inputs import validate
from relaykit.stores import open_store


def address(value: str) -> str:
    """user@domain, domain lower-cased; nothing that would break postfix-accounts.cf
    (`|`), Dovecot's passwd-file (`:`) or a table line (whitespace, `#`)."""
    return validate.address(value, "email address")


def password(value: str) -> str:
    # Spaces are fine; a control character would end the line doveadm reads. Never echoed.
    if value == "":
        raise UsageError("password is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise UsageError("password must not contain control characters (newline, tab...)")
    return value


def _accounts(store) -> dict[str, object]:
    return {a.address.lower(): a for a in store.load().accounts}


def _set(args: list[str], *, new: bool) -> int:
    user = address(args[0])
    store = open_store()
    existing = _accounts(store).get(user.lower())
    exists = existing is not None
    if new and exists:
        raise UsageError(f"{user} already exists: use 'setup email update {user}' to change its password")
    if not new and not exists:
        raise UsageError(f"{user} does not exist: add it with 'setup email add {user}'")
    user = existing.address if existing else user  # update keeps the address as written
    plain = password(args[1] if len(args) > 1 else read_password(f"Password for {user}: "))
    store.set_account(user, hash_password(plain))
    ui.ok(f"{user} {'added' if new else 'updated'}")
    return 0


def add(args: list[str]) -> int:
    return _set(args, new=True)


def update(args: list[str]) -> int:
    return _set(args, new=False)


def delete(args: list[str]) -> int:
    """`del [-y] <address>...`: -y is accepted for DMS compatibility (there is no mailbox to keep)."""
    users = [address(a) for a in args if a != "-y"]
    if not users:
        raise UsageError("give at least one email address")
    store = open_store()
    known = _accounts(store)
    missing = [u for u in users if u.lower() not in known]
    if missing:
        raise UsageError(f"no such account: {', '.join(missing)}")
    for user in users:
        store.remove_account(known[user.lower()].address)
        ui.ok(f"{user} deleted")
    return 0


def list_accounts(args: list[str]) -> int:
    files = open_store().load()
    if not files.accounts:
        ui.info("no accounts (add one with: setup email add user@example.com)")
        return 0
    aliases: dict[str, list[str]] = {}
    for alias in files.aliases:
        for target in alias.targets:
            aliases.setdefault(target.lower(), []).append(alias.address)
    for account in files.accounts:
        own = aliases.get(account.address.lower())
        ui.info(f"* {account.address}" + (f"  [ aliases: {', '.join(own)} ]" if own else ""))
    return 0
