"""Live reload: time from a relaymap edit to the new route being used, with a small config
(DOMAIN's line only: median of 10) and with a relaymap of 100,000 other lines (median of 5).

Written against CONTRACT.md: `relaykit start` configures, runs Postfix in the foreground
and re-applies on every change of RELAYKIT_CONFIG_DIR. Each round moves one sender
domain to the other of two relays with `setup relay add-domain`, then submits a probe
message every PROBE_EVERY seconds; the latency is from the start of the edit to the
submission of the first probe that reaches the new relay (resolution PROBE_EVERY).

Baseline in the same run: the same Postfix started directly, the same move done by hand
in MAIL_CONFIG the way DMS's change detector does it: rewrite relayhost_map, postmap it,
`postfix reload` (with relaykit's sender_dependent_default_transport_maps removed, so that,
as in DMS, relayhost_map alone decides the route). (postmap alone is not enough under steady traffic: trivial-rewrite
notices a changed table only when qmgr reconnects to it, which took ~28 s here.)
When `relaykit start` does not exist yet the relaykit half is skipped, saying so.

At size N the relaymap holds N other plain lines `@dI.example [127.0.0.1]:PORT` (the two
capture relays' next hops, alternating) before DOMAIN's line is added, and the baseline
rewrites the whole N-line relayhost_map (its text prepared in advance) before its postmap.
--quick: 10,000 instead of 100,000.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import smtplib
import statistics
import subprocess
import time
from pathlib import Path

from common import BIN, Row, clean_env, run

SIZES = (0, 100_000)
QUICK_SIZES = (0, 10_000)
ROUNDS = 10  # small config
BIG_ROUNDS = 5  # at 10k/100k lines each relaykit round re-plans and recompiles the whole table: ~1-2 s
START_TIMEOUT = 90.0  # `relaykit start` configures (~1-2 s at 100k lines) before Postfix opens its port
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


def _rounds(port: int, relays, move, rounds: int) -> list[float]:
    """Move DOMAIN back and forth between the two relays `rounds` times; latency of each move."""
    latencies = []
    for number in range(rounds):
        target = relays[(number + 1) % 2]
        start = time.perf_counter()
        move(target)
        latencies.append(_probe_until(port, target) - start)
    return latencies


def prefill(path: Path, relays, n: int) -> None:
    """The relaymap with n other sender domains, alternating between the two relays."""
    hops = [relay.nexthop for relay in relays]
    path.write_text("".join(f"@d{i}.example\t{hops[i % 2]}\n" for i in range(n)))


def moved(table: str, old: str, new: str) -> str:
    """relayhost_map's text with DOMAIN's line sent to `new` instead of `old`."""
    line = re.search(rf"^@{re.escape(DOMAIN)}\s+{re.escape(old)}$", table, re.M)
    if not line:
        raise RuntimeError(f"relayhost_map has no line @{DOMAIN} {old}")
    return table[:line.start()] + f"@{DOMAIN} {new}" + table[line.end():]


def bench(work: Path, quick: bool = False) -> list[Row]:
    from harness.relays import CaptureRelay, CertificateAuthority

    ca = CertificateAuthority(work / "reload-ca")
    relays = [CaptureRelay(name, ca).start() for name in ("a", "b")]
    rows: list[Row] = []
    try:
        for n in QUICK_SIZES if quick else SIZES:
            for relay in relays:
                relay.messages.clear()
            rows.append(_bench_size(work / f"reload-{n}", ca, relays, n))
        return rows
    finally:
        for relay in relays:
            relay.stop()


def _bench_size(work: Path, ca, relays, n: int) -> Row:
    from harness.postfix_instance import PostfixInstance, wait_port

    rounds = ROUNDS if n < 10_000 else BIG_ROUNDS
    label = f"{n:,} other lines" if n else "small config"
    config = work / "config"
    shutil.rmtree(config, ignore_errors=True)
    config.mkdir(parents=True)
    prefill(config / "postfix-relaymap.cf", relays, n)
    case = "setup relay add-domain -> new route used"
    baseline_name = "by hand: edit + postmap + postfix reload"
    size_note = f"relaymap of {n:,} other lines + DOMAIN's; " if n else ""

    def setup_move(target) -> None:
        run([str(BIN / "setup"), "relay", "add-domain", DOMAIN, "127.0.0.1", str(target.port)], env=env)

    # baseline: Postfix started directly, the table edited and compiled by hand
    base = PostfixInstance(work / "baseline").create(smtp_tls_CAfile=str(ca.ca_file))
    env = clean_env(MAIL_CONFIG=str(base.config_dir), RELAYKIT_CONFIG_DIR=str(config))
    setup_move(relays[0])  # DOMAIN's line: a new key after the n others
    run([str(BIN / "relaykit"), "configure"], env=env)
    # DMS routes a sender by relayhost_map alone; relaykit's sender-dependent transport
    # (which takes precedence and carries the same next hop) is dropped so that the one
    # table edited decides
    base.run("postconf", "-X", "sender_dependent_default_transport_maps")
    table = base.config_dir / "relayhost_map"
    text = table.read_text()
    if text.count("\n") < n + 1:
        raise RuntimeError(f"relayhost_map has {text.count(chr(10))} lines, expected {n + 1}")
    # the whole table rewritten each time (as DMS's change detector rebuilds it), its text
    # prepared in advance: the by-hand floor
    texts = {relays[0].name: text, relays[1].name: moved(text, relays[0].nexthop, relays[1].nexthop)}

    def hand_move(target) -> None:
        table.write_text(texts[target.name])
        base.run("postmap", f"lmdb:{table}")
        base.reload()

    base.start()
    try:
        _probe_until(base.smtpd_port, relays[0])
        baseline = _rounds(base.smtpd_port, relays, hand_move, rounds)
    finally:
        base.stop()
    base_median = statistics.median(baseline)
    print(f"  reload baseline, {label} (edit + postmap + postfix reload): {base_median * 1000:.0f} ms "
          f"(min {min(baseline) * 1000:.0f}, max {max(baseline) * 1000:.0f})", flush=True)

    if not available():
        print("  reload: relaykit start not available: skipped", flush=True)
        return Row("reload", "relaykit start not available", n, None, base_median, baseline_name, rounds,
                   note="relaykit start not available (relaykit.run.daemon missing): skipped; "
                        "the lead runs this after merging the daemon")

    for relay in relays:
        relay.messages.clear()
    ours = PostfixInstance(work / "relaykit").create(smtp_tls_CAfile=str(ca.ca_file))
    env = clean_env(MAIL_CONFIG=str(ours.config_dir), RELAYKIT_CONFIG_DIR=str(config))
    setup_move(relays[0])
    log = open(work / "relaykit-start.log", "w")
    daemon = subprocess.Popen([str(BIN / "relaykit"), "start"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        deadline = started + START_TIMEOUT
        while daemon.poll() is None and time.monotonic() < deadline:
            try:
                wait_port(ours.smtpd_port, timeout=0.5)
                break
            except TimeoutError:
                pass
        else:
            log.flush()
            raise RuntimeError(f"relaykit start did not open the SMTP port in {START_TIMEOUT:.0f} s "
                               f"(exit status {daemon.poll()}): "
                               + (work / "relaykit-start.log").read_text()[-500:]) from None
        up = time.monotonic() - started
        _probe_until(ours.smtpd_port, relays[0], timeout=START_TIMEOUT)
        latencies = _rounds(ours.smtpd_port, relays, setup_move, rounds)
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
    print(f"  reload relaykit start, {label}: {median * 1000:.0f} ms (min {min(latencies) * 1000:.0f}, "
          f"max {max(latencies) * 1000:.0f}; SMTP port open {up:.1f} s after start)", flush=True)
    return Row("reload", case, n, median, base_median, baseline_name, rounds,
               note=f"{size_note}min {min(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
                    f"baseline min {min(baseline) * 1000:.0f} ms, max {max(baseline) * 1000:.0f} ms")
