"""Where the relay configuration lives. Files (the DMS config directory) are the default.

A store reads everything the plan needs (`load`) and edits one entry at a time; the CLI
and the plan do not know which store they have.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def open_store(environ: Mapping[str, str] = os.environ):
    from relaykit.stores.files import FileStore

    # RELAYKIT_CONFIG_DIR as settings.config_dir() reads it, without importing settings.
    return FileStore(environ.get("RELAYKIT_CONFIG_DIR") or "/tmp/docker-mailserver")
