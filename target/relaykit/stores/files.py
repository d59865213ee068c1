"""The embedded default store: the DMS files of RELAYKIT_CONFIG_DIR, edited in place.

Every edit is one edges/editor.set_line (lock, temp file, rename). On `setup`'s fast path:
only the editor at import (not even os); reading and planning import what they need when asked.
"""

from __future__ import annotations

import posix

from relaykit.edges.editor import set_line
from relaykit.inputs.env import ACCOUNTS, OAUTH2, RECIPIENT_RELAYMAP, RELAYMAP, SASL_PASSWORD, VIRTUAL, path_in

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: the editing commands never load relaykit.secret (or os) for them
    import os

    from relaykit.secret import Secret

# The last plan and what the next is patched from after an edit (core/replan.py): live
# reload plans an edit of a 100k-line relaymap in proportion to the edit.
_BASIS = None

_FILES = {"relays": RELAYMAP, "recipient relays": RECIPIENT_RELAYMAP, "credentials": SASL_PASSWORD,
          "accounts": ACCOUNTS, "aliases": VIRTUAL, "oauth2": OAUTH2}  # stores/protocol.py's kinds


class FileStore:
    def __init__(self, config_dir: os.PathLike | str) -> None:
        self.config_dir = posix.fspath(config_dir)

    def where(self, what: str) -> str:
        return path_in(self.config_dir, _FILES[what])

    # reading and planning
    def load(self, secure=()):  # -> model.entries.ConfigFiles
        from pathlib import Path  # lazy, as below: the editing commands never read

        from relaykit.inputs import dmsfiles

        return dmsfiles.load(Path(self.config_dir), secure)

    def plan(self, settings, table_type: str, networks: tuple[str, ...] = ()):  # -> model.plan.Plan
        """relayhost_map, sasl_passwd, tls_policy... from the files (core/plan.py), plus
        submission's sender_login from the accounts and aliases (core/submission.py)."""
        global _BASIS
        from relaykit.core import replan, submission
        from relaykit.gcpause import paused_gc

        with paused_gc():  # 100k-line configs: see gcpause.py
            files = self.load(settings.tls_secure)
            relay, _BASIS = replan.plan(_BASIS, settings, files, table_type)
        return submission.add_to(relay, settings, files, table_type, networks)

    def foreseen(self) -> dict[str, bytes]:
        """relayhost_map's likely text, known before reading and planning: the relaymap's
        own, tabs as blanks, which it is exactly when every line is `key value` in normal
        form (as `setup relay add-domain` writes them) and no RELAY_HOST default adds to
        it. A guess, to compile while planning: run/apply.py uses what was compiled only
        when the planned text is the same, byte for byte."""
        try:
            with open(self.where("relays"), "rb") as file:
                data = file.read().replace(b"\t", b" ")
        except OSError:
            return {}
        from relaykit.model.plan import RELAYHOST_MAP

        return {RELAYHOST_MAP: data if data.endswith(b"\n") else data + b"\n"}

    def passdb(self, settings):  # -> core.dovecot.Passdb
        from pathlib import Path

        from relaykit.core.dovecot import Passdb
        from relaykit.inputs.dmsfiles import load_accounts

        accounts = load_accounts(Path(self.config_dir))
        return Passdb(accounts=accounts, summary=f"{len(accounts)} account(s)")

    def prepare(self) -> None:
        """Nothing to prepare: Postfix reads the tables configure writes."""

    def close(self) -> None:
        """Nothing to close: every edit opens and closes its file."""

    def reachable(self) -> None:
        """Nothing to watch: Postfix reads the tables configure writes."""
        return None

    # relays (postfix-relaymap.cf)
    def set_relay(self, sender: str, nexthops: tuple) -> bool:
        """Route `sender` through `nexthops`; an empty tuple opts it out of the default relay."""
        line = f"{sender}\t{','.join(hop.written for hop in nexthops)}" if nexthops else sender
        return set_line(self.where("relays"), sender, line)

    def remove_relay(self, sender: str) -> bool:
        return set_line(self.where("relays"), sender, None)

    def set_recipient_relay(self, key: str, nexthops: tuple) -> bool:
        """Route mail TO `key` (domain, or .domain for its subdomains) through `nexthops`."""
        return set_line(self.where("recipient relays"), key, f"{key}\t{','.join(h.written for h in nexthops)}")

    def remove_recipient_relay(self, key: str) -> bool:
        return set_line(self.where("recipient relays"), key, None)

    # credentials (postfix-sasl-password.cf; a new file is 0600)
    def set_credential(self, key: str, user: str, password: Secret) -> bool:
        return set_line(self.where("credentials"), key, f"{key}\t{user}:{password.reveal()}", new_mode=0o600)

    def remove_credential(self, key: str) -> bool:
        return set_line(self.where("credentials"), key, None)

    # OAuth2 credentials (postfix-oauth2.cf: `key provider user name=value...`; it may hold a
    # client secret or refresh token, so it is 0600)
    def set_oauth2(self, key: str, fields: tuple[str, ...]) -> bool:
        return set_line(self.where("oauth2"), key, "\t".join((key, *fields)), new_mode=0o600)

    def remove_oauth2(self, key: str) -> bool:
        return set_line(self.where("oauth2"), key, None)

    # accounts (submission logins) and aliases: DMS's postfix-accounts.cf, postfix-virtual.cf
    def set_account(self, address: str, password_hash: Secret) -> bool:
        """Add or replace `address|{SCHEME}hash` (a new file is 0600: it holds hashes)."""
        return set_line(self.where("accounts"), address, f"{address}|{password_hash.reveal()}", new_mode=0o600)

    def remove_account(self, address: str) -> bool:
        return set_line(self.where("accounts"), address, None)

    def set_alias(self, address: str, targets: tuple[str, ...]) -> bool:
        return set_line(self.where("aliases"), address, f"{address} {','.join(targets)}")

    def remove_alias(self, address: str) -> bool:
        return set_line(self.where("aliases"), address, None)
