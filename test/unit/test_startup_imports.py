"""What `relaykit configure` imports before it reads anything: start-up time is a third
of issue 19's budget (100k relaymap lines in 0.3 s), so features a configuration does not
use, and stdlib modules nothing on that path needs, stay unimported (run/configure.py)."""

from __future__ import annotations

import os
import subprocess
import sys

# Imported by a feature only when it is configured, or not at all on this path (log.py
# writes its own lines; the named tuples come from collections).
NOT_AT_START_UP = (
    "relaykit.core.dkim", "relaykit.edges.opendkim",  # DKIM signing
    "relaykit.core.overrides",  # POSTFIX_<name>, postfix-main.cf, postfix-master.cf
    "relaykit.run.oauth2",  # postfix-oauth2.cf
    "relaykit.stores.postgres", "psycopg",  # RELAYKIT_DATABASE_URL
    "logging", "typing",
    "dataclasses", "inspect",  # ~25 ms with ast, dis, tokenize, enum: relaykit/record.py instead
)


def test_configure_imports_no_unused_feature():
    code = ("import sys, relaykit.run.configure, relaykit.cli.main; "
            f"print(' '.join(m for m in {NOT_AT_START_UP!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout
    assert out.split() == []
