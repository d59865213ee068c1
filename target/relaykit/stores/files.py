"""The embedded default store: the DMS files of RELAYKIT_CONFIG_DIR, edited in place."""

from __future__ import annotations

import os

from relaykit.edges.editor import set_line
from relaykit.secret import Secret

# The DMS file names (configfiles.py reads them; that module is imported only to read).
RELAYMAP = "postfix-relaymap.cf"
RECIPIENT_RELAYMAP = "postfix-recipient-relaymap.cf"
SASL_PASSWORD = "postfix-sasl-password.cf"
ACCOUNTS = "postfix-accounts.cf"
VIRTUAL = "postfix-virtual.cf"


class FileStore:
    kind = "files"

    def __init__(self, config_dir: os.PathLike | str) -> None:
        self.config_dir = os.fspath(config_dir)
        self.relaymap = os.path.join(self.config_dir, RELAYMAP)
        self.recipient_relaymap = os.path.join(self.config_dir, RECIPIENT_RELAYMAP)
        self.sasl = os.path.join(self.config_dir, SASL_PASSWORD)
        self.accounts = os.path.join(self.config_dir, ACCOUNTS)
        self.virtual = os.path.join(self.config_dir, VIRTUAL)

    def load(self):
        from pathlib import Path

        from relaykit.inputs import dmsfiles as configfiles

        return configfiles.load(Path(self.config_dir))

    def set_relay(self, sender: str, nexthops: tuple[str, ...]) -> bool:
        """Route `sender` through `nexthops`; an empty tuple opts it out of the default relay."""
        line = f"{sender}\t{','.join(nexthops)}" if nexthops else sender
        return set_line(self.relaymap, sender, line)

    def remove_relay(self, sender: str) -> bool:
        return set_line(self.relaymap, sender, None)

    def set_recipient_relay(self, key: str, nexthops: tuple[str, ...]) -> bool:
        """Route mail TO `key` (domain, or .domain for its subdomains) through `nexthops`."""
        return set_line(self.recipient_relaymap, key, f"{key}\t{','.join(nexthops)}")

    def remove_recipient_relay(self, key: str) -> bool:
        return set_line(self.recipient_relaymap, key, None)

    def set_credential(self, key: str, user: str, password: Secret) -> bool:
        return set_line(self.sasl, key, f"{key}\t{user}:{password.reveal()}", new_mode=0o600)

    def remove_credential(self, key: str) -> bool:
        return set_line(self.sasl, key, None)

    # Accounts (submission logins) and aliases: DMS's postfix-accounts.cf, postfix-virtual.cf.
    def set_account(self, address: str, password_hash: Secret) -> bool:
        """Add or replace `address|{SCHEME}hash` (a new file is 0600: it holds hashes)."""
        return set_line(self.accounts, address, f"{address}|{password_hash.reveal()}", new_mode=0o600)

    def remove_account(self, address: str) -> bool:
        return set_line(self.accounts, address, None)

    def set_alias(self, address: str, targets: tuple[str, ...]) -> bool:
        return set_line(self.virtual, address, f"{address} {','.join(targets)}")

    def remove_alias(self, address: str) -> bool:
        return set_line(self.virtual, address, None)
