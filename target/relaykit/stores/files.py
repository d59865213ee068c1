"""The embedded default store: the DMS files of RELAYKIT_CONFIG_DIR, edited in place."""

from __future__ import annotations

import os

from relaykit.editor import set_line
from relaykit.secret import Secret

# The DMS file names (configfiles.py reads them; that module is imported only to read).
RELAYMAP = "postfix-relaymap.cf"
SASL_PASSWORD = "postfix-sasl-password.cf"


class FileStore:
    kind = "files"

    def __init__(self, config_dir: os.PathLike | str) -> None:
        self.config_dir = os.fspath(config_dir)
        self.relaymap = os.path.join(self.config_dir, RELAYMAP)
        self.sasl = os.path.join(self.config_dir, SASL_PASSWORD)

    def load(self):
        from pathlib import Path

        from relaykit import configfiles

        return configfiles.load(Path(self.config_dir))

    def set_relay(self, sender: str, nexthops: tuple[str, ...]) -> bool:
        """Route `sender` through `nexthops`; an empty tuple opts it out of the default relay."""
        line = f"{sender}\t{','.join(nexthops)}" if nexthops else sender
        return set_line(self.relaymap, sender, line)

    def remove_relay(self, sender: str) -> bool:
        return set_line(self.relaymap, sender, None)

    def set_credential(self, key: str, user: str, password: Secret) -> bool:
        return set_line(self.sasl, key, f"{key}\t{user}:{password.reveal()}", new_mode=0o600)

    def remove_credential(self, key: str) -> bool:
        return set_line(self.sasl, key, None)
