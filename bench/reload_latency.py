"""How long from a postfix-relaymap.cf edit until Postfix routes the next message by it.

    test/netns.sh .venv/bin/python bench/reload_latency.py [rounds]

For each table type (RELAYKIT_TABLE_TYPE) and each way of applying:
  start      `relaykit start` running; the edit is all we do (inotify -> apply -> reload)
  configure  Postfix running, `relaykit configure` after the edit, no reload: how long the
             daemons take to notice a changed table by themselves
a sender domain is moved from relay A to relay B by rewriting postfix-relaymap.cf (temp +
rename, as `setup relay` does); then one message is sent every 10 ms and we record when
the first one that reaches B was submitted, and when B received it, relative to the rename. Also: from
launching `relaykit start` to the SMTP banner.
"""

from __future__ import annotations

import os
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))

from harness.postfix_instance import PostfixInstance  # noqa: E402
from harness.relays import CaptureRelay, CertificateAuthority  # noqa: E402

BIN = Path(sys.executable).parent


def send(port: int, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail("a@x.example", ["someone@example.net"], f"Subject: {subject}\r\n\r\nbench\r\n")


def banner_time(port: int, started: float, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5):
                return time.monotonic() - started
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def one(ca, table_type: str, mode: str, root: Path) -> tuple[float, float, float | None]:
    """(first message on the new route: submitted, delivered) after the edit; banner time."""
    a, b = CaptureRelay("A", ca).start(), CaptureRelay("B", ca).start()
    postfix = PostfixInstance(root / "pf").create(smtp_tls_CAfile=str(ca.ca_file))
    config = root / "config"
    config.mkdir()
    relaymap = config / "postfix-relaymap.cf"
    relaymap.write_text(f"@x.example [127.0.0.1]:{a.port}\n")
    env = {**os.environ, "MAIL_CONFIG": str(postfix.config_dir), "RELAYKIT_CONFIG_DIR": str(config),
           "RELAYKIT_TABLE_TYPE": table_type}
    daemon = None
    banner = None
    try:
        if mode == "start":
            started = time.monotonic()
            daemon = subprocess.Popen([str(BIN / "relaykit"), "start"], env=env, stderr=open(root / "start.log", "wb"))
            banner = banner_time(postfix.smtpd_port, started)
        else:
            subprocess.run([str(BIN / "relaykit"), "configure"], env=env, check=True)
            postfix.start()
        # warm up: route to A is in use, daemons running
        send(postfix.smtpd_port, "warm")
        a.wait_for(1)
        time.sleep(1.0)
        tmp = config / ".relaymap.tmp"
        tmp.write_text(f"@x.example [127.0.0.1]:{b.port}\n")
        os.replace(tmp, relaymap)
        edited = time.monotonic()
        if mode == "configure":
            subprocess.run([str(BIN / "relaykit"), "configure"], env=env, check=True)
        sent: dict[str, float] = {}
        n = 0
        while not b.messages:
            if time.monotonic() - edited > 200:
                return float("inf"), float("inf"), banner
            subject = f"m{n}"
            sent[subject] = time.monotonic() - edited
            send(postfix.smtpd_port, subject)
            n += 1
            time.sleep(0.01)
        b.wait_for(1)
        delivered = time.monotonic() - edited
        if daemon:
            for line in (root / "start.log").read_text().splitlines():
                if "reloaded" in line:
                    print(f"    {table_type} daemon: {line.split('applied ')[1].split(';')[0]}: "
                          f"{line.split(' in ')[1].split(';')[0]} from inotify event to SIGHUP sent", flush=True)
        first = min(sent[m.data.decode().split("Subject: ")[1].split("\r")[0].split("\n")[0]] for m in b.messages)
        return first, delivered, banner
    finally:
        if daemon:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(15)
        else:
            postfix.stop()
        a.stop()
        b.stop()


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    modes = sys.argv[2].split(",") if len(sys.argv) > 2 else ["start", "configure"]
    types = sys.argv[3].split(",") if len(sys.argv) > 3 else ["lmdb", "hash", "texthash"]
    with tempfile.TemporaryDirectory(prefix="relaykit-bench-") as tmp:
        ca = CertificateAuthority(Path(tmp) / "ca")
        banners = []
        for table_type in types:
            for mode in modes:
                times, deliveries = [], []
                for i in range(rounds):
                    latency, delivered, banner = one(ca, table_type, mode, Path(tmp) / f"{table_type}-{mode}-{i}")
                    times.append(latency)
                    deliveries.append(delivered)
                    if banner is not None:
                        banners.append(banner)
                print(f"{table_type:9} {mode:9} edit -> new route: median {statistics.median(times)*1000:7.0f} ms"
                      f"  (all: {', '.join(f'{t*1000:.0f}' for t in times)});"
                      f" it reached the relay at {statistics.median(deliveries)*1000:.0f} ms"
                      f" (all: {', '.join(f'{t*1000:.0f}' for t in deliveries)})", flush=True)
        if banners:
            print(f"relaykit start -> SMTP banner: median {statistics.median(banners)*1000:.0f} ms "
                  f"(all: {', '.join(f'{t*1000:.0f}' for t in banners)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
