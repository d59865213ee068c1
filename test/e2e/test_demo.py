"""`make demo` (demo/demo.py) as a user runs it through a pipe: every message where the
table says, the table at the width it needs (not squeezed to 80 columns), and none of
aiosmtpd's "Session.login_data is deprecated" warnings between its lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_demo_output_through_a_pipe_is_clean_and_wide_enough():
    result = subprocess.run([sys.executable, str(REPO / "demo" / "demo.py")], capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "deprecated" not in output
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ ")]
    assert len(rows) == 6, result.stdout
    assert all(line.count("│") == 6 for line in rows)  # one line per row: nothing folded
    assert any("live reload: `setup relay add-domain` while running -> Mailgun" in line for line in rows)
    assert "5 of 5 relayed messages arrived" in result.stdout
