"""Reliability fixtures: the e2e `mailrun`/`ca` fixtures, batch lookups through the real
postmap, and recording shims that log the argv of every Postfix program relaykit runs."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from e2e.conftest import BIN, MailRun, ca, mailrun  # noqa: F401  (fixtures re-exported)

POSTFIX_PROGRAMS = ("postconf", "postmap", "postfix", "postqueue", "postsuper")


def lookup_many(config_dir: Path, table: str, keys: list[str]) -> dict[str, str]:
    """What Postfix finds for each key, in ONE `postmap -q -` (keys on stdin, so no key
    is ever an argument). Keys not found are absent from the result."""
    result = subprocess.run(["postmap", "-c", str(config_dir), "-q", "-", table], input="".join(k + "\n" for k in keys),
                            capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    found = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("\t")
        found[key] = value
    return found


def table_ref(config_dir: Path, name: str) -> str:
    """type:path of a relaykit table, as main.cf names it."""
    param = {"relayhost_map": "sender_dependent_relayhost_maps", "sasl_passwd": "smtp_sasl_password_maps",
             "tls_policy": "smtp_tls_policy_maps"}[name]
    out = subprocess.run(["postconf", "-c", str(config_dir), "-h", param], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture
def shims(tmp_path: Path):
    """A PATH directory whose postconf/postmap/postfix... record their argv, then exec the
    real program. Returns (environment additions, function reading the recorded argv lines)."""
    directory = tmp_path / "shims"
    directory.mkdir()
    record = tmp_path / "argv.log"
    for program in POSTFIX_PROGRAMS:
        real = subprocess.run(["sh", "-c", f"command -v {program}"], capture_output=True, text=True).stdout.strip()
        shim = directory / program
        # printf %s with each argument on its own: the record is exactly what ps would show
        shim.write_text(f'#!/bin/sh\n{{ printf "%s" "{program}"; for a in "$@"; do printf " %s" "$a"; done; echo; }}'
                        f' >> "{record}"\nexec {real} "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{directory}:{os.environ['PATH']}"}
    return env, lambda: record.read_text() if record.exists() else ""
