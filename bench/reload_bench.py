"""Live reload: time from a relaymap edit to the new route being used (median of 10).

Written against CONTRACT.md: `relaykit start` configures, runs Postfix in the foreground
and re-applies on every change of RELAYKIT_CONFIG_DIR. Each round moves one sender
domain to the other of two relays with `setup relay add-domain`, then submits a probe
message every PROBE_EVERY seconds; the latency is from the start of the edit to the
submission of the first probe that reaches the new relay (resolution PROBE_EVERY).

Baseline in the same run: the same Postfix started directly, the same move done by hand
in MAIL_CONFIG the way DMS's change detector does it: rewrite relayhost_map, postmap it,
`postfix reload`. (postmap alone is not enough under steady traffic: trivial-rewrite
notices a changed table only when qmgr reconnects to it, which took ~28 s here.)
When `relaykit start` does not exist yet the relaykit half is skipped, saying so.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import smtplib
import statistics
import subprocess
import time
from pathlib import Path

from common import BIN, Row, clean_env, run

ROUNDS = 10
PROBE_EVERY = 0.05
DOMAIN = "live.example"


def available() -> bool:
    return importlib.util.find_spec("relaykit.run.daemon") is not None


def _probe_until(port: int, target, timeout: float = 30.0) -> float:
    """Submit probes until one reaches `target`; the send time (perf_counter) of the first that did."""
    sent: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    number = 0
    while time.monotonic() < deadline:
        arrived = [sent[s] for s in (m.data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
                                     for m in list(target.messages) if b"Subject: probe-" in m.data) if s in sent]
        if arrived:
            return min(arrived)
        subject = f"probe-{os.getpid()}-{time.monotonic_ns()}-{number}"
        number += 1
        message = f"From: a@{DOMAIN}\r\nTo: someone@example.net\r\nSubject: {subject}\r\n\r\nprobe\r\n"
        start = time.perf_counter()
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.sendmail(f"a@{DOMAIN}", ["someone@example.net"], message)
        except (OSError, smtplib.SMTPException):
            pass  # Postfix may be restarting: keep probing
        else:
            sent[subject] = start
        time.sleep(max(0.0, PROBE_EVERY - (time.perf_counter() - start)))
    raise TimeoutError(f"no probe reached relay {target.name} in {timeout}s")


def _rounds(port: int, relays, move) -> list[float]:
    """Move DOMAIN back and forth between the two relays ROUNDS times; latency of each move."""
    latencies = []
    for number in range(ROUNDS):
        target = relays[(number + 1) % 2]
        start = time.perf_counter()
        move(target)
        latencies.append(_probe_until(port, target) - start)
    return latencies


def bench(work: Path, quick: bool = False) -> list[Row]:
    from harness.postfix_instance import PostfixInstance, wait_port
    from harness.relays import CaptureRelay, CertificateAuthority

    ca = CertificateAuthority(work / "reload-ca")
    relays = [CaptureRelay(name, ca).start() for name in ("a", "b")]
    config = work / "reload-config"
    shutil.rmtree(config, ignore_errors=True)
    config.mkdir()
    rows = []

    def setup_move(target) -> None:
        run([str(BIN / "setup"), "relay", "add-domain", DOMAIN, "127.0.0.1", str(target.port)], env=env)

    try:
        # baseline: Postfix started directly, the table edited and compiled by hand
        base = PostfixInstance(work / "reload-baseline").create(smtp_tls_CAfile=str(ca.ca_file))
        env = clean_env(MAIL_CONFIG=str(base.config_dir), RELAYKIT_CONFIG_DIR=str(config))
        setup_move(relays[0])
        run([str(BIN / "relaykit"), "configure"], env=env)
        table = base.config_dir / "relayhost_map"

        def hand_move(target) -> None:
            table.write_text(f"@{DOMAIN} {target.nexthop}\n")
            base.run("postmap", f"lmdb:{table}")
            base.reload()

        base.start()
        try:
            _probe_until(base.smtpd_port, relays[0])
            baseline = _rounds(base.smtpd_port, relays, hand_move)
        finally:
            base.stop()
        base_median = statistics.median(baseline)
        print(f"  reload baseline (edit + postmap + postfix reload): {base_median * 1000:.0f} ms", flush=True)

        if not available():
            rows.append(Row("reload", "relaykit start not available", None, None, base_median,
                            "by hand: edit + postmap + postfix reload", ROUNDS,
                            note="relaykit start not available (relaykit.run.daemon missing): skipped; "
                                 "the lead runs this after merging the daemon"))
            print("  reload: relaykit start not available: skipped", flush=True)
            return rows

        for relay in relays:
            relay.messages.clear()
        ours = PostfixInstance(work / "reload-relaykit").create(smtp_tls_CAfile=str(ca.ca_file))
        env = clean_env(MAIL_CONFIG=str(ours.config_dir), RELAYKIT_CONFIG_DIR=str(config))
        setup_move(relays[0])
        log = open(work / "relaykit-start.log", "w")
        daemon = subprocess.Popen([str(BIN / "relaykit"), "start"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while daemon.poll() is None and time.monotonic() < deadline:
                try:
                    wait_port(ours.smtpd_port, timeout=0.5)
                    break
                except TimeoutError:
                    pass
            else:
                log.flush()
                raise RuntimeError(f"relaykit start did not open the SMTP port (exit status {daemon.poll()}): "
                                   + (work / "relaykit-start.log").read_text()[-500:]) from None
            _probe_until(ours.smtpd_port, relays[0])
            latencies = _rounds(ours.smtpd_port, relays, setup_move)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            ours.stop()
            log.close()
        median = statistics.median(latencies)
        print(f"  reload relaykit start: {median * 1000:.0f} ms", flush=True)
        rows.append(Row("reload", "setup relay add-domain -> new route used", None, median, base_median,
                        "by hand: edit + postmap + postfix reload", ROUNDS,
                        note=f"min {min(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"))
        return rows
    finally:
        for relay in relays:
            relay.stop()
