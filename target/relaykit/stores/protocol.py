"""The Store protocol: what `configure` and the `setup` commands may ask of a store.

Not imported at run time by the stores themselves (typing costs the `setup` fast path
~20 ms); test/unit/test_layers.py checks that both stores implement every method with
the same signature.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, runtime_checkable

from relaykit.core.dovecot import Passdb
from relaykit.model.entries import ConfigFiles
from relaykit.model.nexthop import NextHop
from relaykit.model.plan import Plan
from relaykit.model.settings import Settings
from relaykit.secret import Secret

# The kinds of entry `where` names, for messages ("removed from <where>").
RELAYS, RECIPIENT_RELAYS, CREDENTIALS, ACCOUNTS, ALIASES, OAUTH2 = (
    "relays", "recipient relays", "credentials", "accounts", "aliases", "oauth2")


@runtime_checkable
class Store(Protocol):
    def where(self, what: str) -> str:
        """Where entries of kind `what` live, as a person reads it: a file, or the database."""

    # reading and planning
    def load(self, secure: Collection[str] = ()) -> ConfigFiles:
        """Every entry, validated; next hops listed in `secure` get tls_policy `secure`."""

    def plan(self, settings: Settings, table_type: str, networks: tuple[str, ...] = ()) -> Plan:
        """The complete Postfix plan (relay and submission) for this store's data;
        `networks`: PERMIT_DOCKER's networks (edges/system.py found them)."""

    def foreseen(self) -> dict[str, bytes]:
        """Tables whose text this store can guess before reading and planning ({name:
        text}), for configure to compile meanwhile (run/apply.compile_ahead); {}: none."""

    def passdb(self, settings: Settings) -> Passdb:
        """What Dovecot checks submission passwords against."""

    def prepare(self) -> None:
        """Make the store ready before Postfix reads it (the database schema); never fatal."""

    def close(self) -> None: ...

    def reachable(self) -> bool | None:
        """Whether the store answers now (`relaykit start` asks every few seconds and
        reloads Postfix when it is back); None: nothing to watch (files)."""

    # editing: True when something changed
    def set_relay(self, sender: str, nexthops: tuple[NextHop, ...]) -> bool: ...

    def remove_relay(self, sender: str) -> bool: ...

    def set_recipient_relay(self, key: str, nexthops: tuple[NextHop, ...]) -> bool: ...

    def remove_recipient_relay(self, key: str) -> bool: ...

    def set_credential(self, key: str, user: str, password: Secret) -> bool: ...

    def remove_credential(self, key: str) -> bool: ...

    def set_oauth2(self, key: str, fields: tuple[str, ...]) -> bool:
        """An OAuth2 credential: `fields` are provider, user and name=value (the files
        store only; the database store refuses)."""

    def remove_oauth2(self, key: str) -> bool: ...

    def set_account(self, address: str, password_hash: Secret) -> bool: ...

    def remove_account(self, address: str) -> bool: ...

    def set_alias(self, address: str, targets: tuple[str, ...]) -> bool: ...

    def remove_alias(self, address: str) -> bool: ...
