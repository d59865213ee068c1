"""`setup relay ...`: edit the relay configuration, DMS semantics.

Every value is validated before the store is touched, so a refused command changes
nothing. Messages name keys and usernames, never a password.
"""

from __future__ import annotations

import posix
import sys

from relaykit.cli import ui
from relaykit.inputs import validate
from relaykit.errors import UsageError
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
    return line.removesuffix("\n").removesuffix("\r")  # the line's end, LF or CRLF (a file from Windows)


def add_auth(args: list[str]) -> int:
    key = args[0]
    sender = validate.nexthop(key, "relay") if key.startswith("[") else validate.route_key(key, "domain")
    user = validate.username(args[1])
    password = args[2] if len(args) > 2 else read_password(f"Password for {user} ({sender}): ")
    from relaykit.secret import Secret  # lazy: add-domain, the hot path, never handles one

    open_store().set_credential(sender, user, Secret(validate.password(password)))
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


def _oauth2_key(text: str) -> str:
    if text.startswith("[") or ":" in text:  # a relay: [host]:port, host:port
        return validate.nexthop(text, "relay")
    key = validate.route_key(text, "domain")
    if key.startswith("@."):
        raise UsageError("OAuth2 credentials are keyed by @domain, an address or a relay, not @.domain")
    return key


def _read_oauth2_secrets(needed: list[str]) -> dict[str, str]:
    """The secrets, never from argv: prompted without echo on a terminal; otherwise lines
    `name=value` on standard input (or one bare line when one secret is needed)."""
    if sys.stdin is None:
        raise UsageError("no standard input to read the OAuth2 secrets from")
    if sys.stdin.isatty():
        import getpass  # lazy: only a terminal prompts (test_layers.LAZY)

        return {name: value for name in needed if (value := getpass.getpass(f"{name}: ").strip())}
    secrets: dict[str, str] = {}
    lines = [line.rstrip("\r\n") for line in sys.stdin.read().splitlines() if line.strip()]
    for line in lines:
        name, eq, value = line.partition("=")
        if eq and name in validate.OAUTH2_SECRETS:
            secrets[name] = value
        elif len(needed) == 1 and len(lines) == 1:
            secrets[needed[0]] = line
        else:
            raise UsageError("standard input: expected lines client_secret=... and/or refresh_token=... "
                             "(the value is not shown)")
    return secrets


def add_oauth2(args: list[str]) -> int:
    """`setup relay add-oauth2 <key> <provider> <user> [name=value...]`: the non-secret
    fields as arguments; client_secret and refresh_token from standard input (or as
    client_secret_file=/refresh_token_file= paths), never as arguments (ps(1) shows them)."""
    key, provider, user = _oauth2_key(args[0]), validate.oauth2_provider(args[1]), validate.username(args[2])
    fields: dict[str, str] = {}
    for text in args[3:]:
        name, eq, value = text.partition("=")
        if not eq:
            raise UsageError(f"expected name=value, found {text!r}")
        if name in validate.OAUTH2_SECRETS:
            raise UsageError(f"{name} is never given as an argument (ps(1) and shell history show it): "
                             f"give it on standard input, or {name}_file=/path")
        fields[name] = validate.field(value, name)
    by_file = {name.removesuffix("_file") for name in fields if name.removesuffix("_file") in validate.OAUTH2_SECRETS}
    required, optional = validate.OAUTH2_PROVIDERS[provider]
    wanted = [name for name in validate.OAUTH2_SECRETS if name in required + optional and name not in by_file]
    if provider == "microsoft" and ("certificate" in fields or "client_secret" in by_file):
        wanted = []
    secrets = _read_oauth2_secrets(wanted) if wanted else {}
    plain = {k: v for k, v in fields.items() if k.removesuffix("_file") not in validate.OAUTH2_SECRETS}
    validate.oauth2_fields(provider, {**plain, **secrets}, by_file)
    store = open_store()
    path = store.where("oauth2")
    try:
        mode = posix.stat(path).st_mode  # posix, not os: setup's fast path (add-domain) never imports os
    except OSError:
        mode = 0
    if secrets and mode & 0o077:
        raise UsageError(f"{path} may be read by others (mode {mode & 0o777:o}): "
                         f"chmod 600 it before a secret goes in")
    line = (provider, user, *(f"{k}={v}" for k, v in fields.items()), *(f"{k}={v}" for k, v in secrets.items()))
    store.set_oauth2(key, line)
    ui.ok(f"{key} logs in to its relay with XOAUTH2 as {user} ({provider}); relaykit fetches its tokens")
    return 0


def del_oauth2(args: list[str]) -> int:
    store = open_store()
    key = _oauth2_key(args[0])
    if not store.remove_oauth2(key):
        raise UsageError(f"{key} has no OAuth2 credential in {store.where('oauth2')}: nothing to delete")
    ui.ok(f"OAuth2 credential of {key} removed from {store.where('oauth2')}")
    return 0
