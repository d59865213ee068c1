"""Where the relay configuration lives: the DMS files (the embedded default) or PostgreSQL.

Both stores implement the Store protocol (stores/protocol.py): they edit one entry at a
time, load everything as model entries, produce their own Postfix plan and name where
their data lives for messages. `configure` and the `setup` commands ask open_store() for
"the store" and never which one it is.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: collections.abc imports collections, ~1.5 ms of `setup`'s start-up
    from collections.abc import Mapping

from relaykit.inputs.env import config_dir, database_url, environment

__all__ = ["database_url", "open_store"]


def open_store(environ: Mapping[str, str] | None = None):  # -> stores.protocol.Store
    """The store the environment (default: inputs/env.environment()) names: PostgreSQL
    when RELAYKIT_DATABASE_URL (or its *_FILE) is set, else the files of RELAYKIT_CONFIG_DIR."""
    environ = environment() if environ is None else environ
    url = database_url(environ)
    if url:
        # lazy: the file store (every `setup` command without a database) never pays for it
        from relaykit.stores.postgres import PostgresStore

        return PostgresStore(url)
    from relaykit.stores.files import FileStore  # lazy: keeps `import relaykit.stores` cheap

    return FileStore(config_dir(environ))
