"""`relaykit health`: the container's HEALTHCHECK. Healthy means Postfix's master runs
(`postfix status`) AND its SMTP listener answers like a mail server: a 220 greeting,
250 to EHLO, then QUIT. A port that merely accepts connections is not enough.

Quiet on success unless asked (`-v`): Docker keeps the output of every probe.
"""

from __future__ import annotations

import os
import sys

from relaykit.edges.postfix import Postfix
from relaykit.edges.smtp import probe_smtp
from relaykit.errors import RelaykitError, UsageError
from relaykit.inputs.settings import mail_config
from relaykit.inputs.validate import is_number

DEFAULT_ADDRESS = "127.0.0.1:25"


def _address(text: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not is_number(port, 5) or not 0 < int(port) < 65536:
        raise UsageError(f"expected <host>:<port>, e.g. {DEFAULT_ADDRESS}, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(args: list[str]) -> int:
    verbose = "-v" in args
    rest = [a for a in args if a != "-v"]
    if len(rest) > 1:
        raise UsageError("usage: relaykit health [-v] [<host>:<port>]")
    host, port = _address(rest[0] if rest else os.environ.get("RELAYKIT_HEALTH_ADDRESS") or DEFAULT_ADDRESS)
    if not Postfix(mail_config()).running():
        raise RelaykitError(f"Postfix is not running (postfix status, MAIL_CONFIG={mail_config()})")
    banner = probe_smtp(host, port)
    if verbose:
        print(f"healthy: Postfix is running; SMTP [{host}]:{port} says 220 {banner}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
