"""OAuth2 token rotation under load: how many messages reach an XOAUTH2 relay across
several token renewals, and whether any is lost, deferred or bounced.

    test/netns.sh .venv/bin/python bench/oauth2_rotation.py [seconds] [lifetime]

A real `relaykit start` (Postfix in the foreground, the token keeper in its thread), a
local HTTPS token endpoint issuing tokens that live `lifetime` seconds (default 12: the
keeper renews them a third of that, 4 s, before expiry), and a relay accepting AUTH
XOAUTH2 only with a currently valid token. Messages are submitted continuously (one every
50 ms) for `seconds` (default 45: at least three renewals); then we wait until every one
arrived and print the counts: submitted, delivered, tokens issued, distinct tokens the
relay saw, renewals, deferred and bounced deliveries, rejected AUTH attempts.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="Session.login_data is deprecated")  # aiosmtpd, per session
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))

from harness.postfix_instance import PostfixInstance, wait_port  # noqa: E402
from harness.relays import CaptureRelay, CertificateAuthority  # noqa: E402
from harness.token_endpoint import TokenEndpoint  # noqa: E402

BIN = Path(sys.executable).parent


def main(seconds: float = 45.0, lifetime: float = 12.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="relaykit-oauth2-bench-") as scratch:
        root = Path(scratch)
        ca = CertificateAuthority(root / "ca")
        endpoint = TokenEndpoint(ca, lifetime=lifetime).start()
        endpoint.app("bench-app", "bench-secret", ("relay@corp.test",))
        relay = CaptureRelay("m365", ca, xoauth2=endpoint).start()
        postfix = PostfixInstance(root / "postfix").create(smtp_tls_CAfile=str(ca.ca_file))
        config = root / "config"
        config.mkdir()
        (config / "postfix-relaymap.cf").write_text(f"@corp.test {relay.nexthop}\n")
        oauth2 = config / "postfix-oauth2.cf"
        oauth2.write_text(f"{relay.nexthop} microsoft relay@corp.test tenant=contoso client_id=bench-app "
                          f"client_secret=bench-secret authority={endpoint.url}\n")
        oauth2.chmod(0o600)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("RELAY", "DEFAULT_RELAY"))},
               "MAIL_CONFIG": str(postfix.config_dir), "RELAYKIT_CONFIG_DIR": str(config),
               "REQUESTS_CA_BUNDLE": str(ca.ca_file)}
        log = root / "relaykit.log"
        with open(log, "wb") as out:
            daemon = subprocess.Popen([str(BIN / "relaykit"), "start"], env=env, stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while b"watching" not in log.read_bytes():
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text())
                time.sleep(0.05)
            wait_port(postfix.smtpd_port)
            submitted, started = 0, time.monotonic()
            while time.monotonic() - started < seconds:
                with smtplib.SMTP("127.0.0.1", postfix.smtpd_port, timeout=30) as smtp:
                    smtp.sendmail("a@corp.test", ["someone@example.net"],
                                  f"Subject: bench {submitted}\r\n\r\nrotation\r\n")
                submitted += 1
                time.sleep(0.05)
            relay.wait_for(submitted, timeout=60)
            time.sleep(1)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
            relay.stop()
            endpoint.stop()
        text, maillog = log.read_text(), postfix.log()
        subjects = {m.data.split(b"Subject: ")[1].split(b"\r\n")[0].split(b"\n")[0] for m in relay.messages}
        result = {
            "seconds": seconds, "token lifetime (s)": lifetime, "submitted": submitted,
            "delivered": len(relay.messages), "distinct delivered": len(subjects),
            "lost": submitted - len(subjects),
            "tokens issued": len(endpoint.tokens_issued("bench-app")),
            "distinct tokens used by Postfix": len({a.password for a in relay.auth_attempts}),
            "renewals logged": text.count("renewed the token"),
            "rejected AUTH": sum(not a.ok for a in relay.auth_attempts),
            "deferred": maillog.count("status=deferred"), "bounced": maillog.count("status=bounced"),
            "postfix reloads": text.count("reloaded postfix"),
        }
        return result


if __name__ == "__main__":
    args = [float(a) for a in sys.argv[1:3]]
    for name, value in main(*args).items():
        print(f"{name:32} {value}")
