"""Where the relay configuration lives. Files (the DMS config directory) are the default.

A store reads everything the plan needs (`load`) and edits one entry at a time; the CLI
and the plan do not know which store they have.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def database_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """RELAYKIT_DATABASE_URL, or the content of the file RELAYKIT_DATABASE_URL_FILE names.

    Read from the real environment only (not the dotenv file), so that this check costs
    nothing on the `setup` fast path; settings.py applies the same rule.
    """
    url, path = environ.get("RELAYKIT_DATABASE_URL"), environ.get("RELAYKIT_DATABASE_URL_FILE")
    if url and path:
        from relaykit.errors import ConfigError

        raise ConfigError("set either RELAYKIT_DATABASE_URL or RELAYKIT_DATABASE_URL_FILE, not both",
                          "RELAYKIT_DATABASE_URL_FILE")
    if path:
        from relaykit.errors import ConfigError

        try:
            with open(path, encoding="utf-8") as file:
                url = file.read().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}", "RELAYKIT_DATABASE_URL_FILE") from None
    return url or None


def open_store(environ: Mapping[str, str] = os.environ):
    url = database_url(environ)
    if url:
        from relaykit.stores.postgres import PostgresStore

        return PostgresStore(url)
    from relaykit.stores.files import FileStore

    # RELAYKIT_CONFIG_DIR as settings.config_dir() reads it, without importing settings.
    return FileStore(environ.get("RELAYKIT_CONFIG_DIR") or "/tmp/docker-mailserver")
