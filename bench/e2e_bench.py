"""End to end: 2,000 messages from 200 sender domains through a private Postfix to 4 local
relays (STARTTLS + AUTH), configured by the real `relaykit configure`. Also a correctness
check: every message must reach the relay its domain is routed to, with the right login.

Routing (the mix DMS users have):
- relay r0: the default relay (RELAY_HOST, RELAY_USER) for managed domains (accounts file)
- relay r1: explicit relaymap lines, credentials by relay ([127.0.0.1]:port user:pass)
- relays r2, r3: explicit relaymap lines, credentials by sender domain (@domain user:pass)

Baseline in the same run: the same Postfix with a hand-written single relayhost (r0 with
its credentials, TLS required), no relaykit tables: what mail costs without routing.
"""

from __future__ import annotations

import shutil
import smtplib
import statistics
import threading
import time
from pathlib import Path

from common import BIN, Row, clean_env, run

DOMAINS = 200
MESSAGES = 2_000
CLIENTS = 8  # concurrent SMTP sessions submitting to Postfix


def _domain(i: int) -> str:
    return f"d{i}.example"


def _expected(i: int) -> tuple[str, str]:
    """(relay name, login) that mail from domain i must reach."""
    relay = i % 4
    if relay == 0:
        return "r0", "relay-user"
    if relay == 1:
        return "r1", "user-r1"
    return f"r{relay}", f"login-{_domain(i)}"


def _submit(port: int, senders: list[str]) -> None:
    body = "Subject: bench\r\n\r\nrelaykit bench\r\n"
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        for sender in senders:
            smtp.sendmail(sender, ["someone@example.net"], f"From: {sender}\r\nTo: someone@example.net\r\n{body}")


def _send_all(postfix, relays, expect: int, timeout: float = 300) -> float:
    """Submit MESSAGES messages over CLIENTS sessions; seconds until the relays have them all."""
    senders = [f"u{j}@{_domain(j % DOMAINS)}" for j in range(MESSAGES)]
    start = time.perf_counter()
    threads = [threading.Thread(target=_submit, args=(postfix.smtpd_port, senders[k::CLIENTS]))
               for k in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + timeout
    while sum(len(r.messages) for r in relays) < expect:
        if time.monotonic() > deadline:
            got = sum(len(r.messages) for r in relays)
            raise TimeoutError(f"relays got {got} of {expect} messages:\n{postfix.log()[-3000:]}")
        time.sleep(0.01)
    return time.perf_counter() - start


def bench(work: Path, quick: bool = False, rounds: int = 3) -> list[Row]:
    from harness.postfix_instance import PostfixInstance
    from harness.relays import CaptureRelay, CertificateAuthority

    rounds = 1 if quick else rounds
    ca = CertificateAuthority(work / "ca")
    users = {"r0": {"relay-user": "relay-pass"}, "r1": {"user-r1": "pass-r1"}, "r2": {}, "r3": {}}
    for i in range(DOMAINS):
        relay, login = _expected(i)
        if relay in ("r2", "r3"):
            users[relay][login] = f"pass-{i}"
    relays = [CaptureRelay(name, ca, users=users[name]).start() for name in ("r0", "r1", "r2", "r3")]
    instances = []
    try:
        # relaykit-configured instance
        config = work / "e2e-config"
        shutil.rmtree(config, ignore_errors=True)
        config.mkdir()
        accounts, relaymap, sasl = [], [], [f"{relays[1].nexthop}\tuser-r1:pass-r1"]
        for i in range(DOMAINS):
            relay, login = _expected(i)
            if relay == "r0":
                accounts.append(f"user@{_domain(i)}|{{PLAIN}}x")
            else:
                relaymap.append(f"@{_domain(i)}\t{relays[int(relay[1])].nexthop}")
            if relay in ("r2", "r3"):
                sasl.append(f"@{_domain(i)}\t{login}:pass-{i}")
        for name, lines in (("postfix-accounts.cf", accounts), ("postfix-relaymap.cf", relaymap),
                            ("postfix-sasl-password.cf", sasl)):
            (config / name).write_text("\n".join(lines) + "\n")
        ours = PostfixInstance(work / "e2e-relaykit").create(smtp_tls_CAfile=str(ca.ca_file))
        instances.append(ours)
        env = clean_env(MAIL_CONFIG=str(ours.config_dir), RELAYKIT_CONFIG_DIR=str(config),
                        RELAY_HOST="127.0.0.1", RELAY_PORT=str(relays[0].port),
                        RELAY_USER="relay-user", RELAY_PASSWORD="relay-pass")
        run([str(BIN / "relaykit"), "configure"], env=env)

        # baseline: one relayhost, written by hand
        base = PostfixInstance(work / "e2e-baseline").create(smtp_tls_CAfile=str(ca.ca_file))
        instances.append(base)
        sasl_file = base.config_dir / "sasl_passwd"
        sasl_file.write_text(f"{relays[0].nexthop} relay-user:relay-pass\n")
        sasl_file.chmod(0o600)
        base.run("postmap", f"lmdb:{sasl_file}")
        base.postconf({"relayhost": relays[0].nexthop, "smtp_sasl_auth_enable": "yes",
                       "smtp_sasl_password_maps": f"lmdb:{sasl_file}",
                       "smtp_sasl_security_options": "noanonymous", "smtp_tls_security_level": "encrypt"})

        timings: dict[str, list[float]] = {"relaykit": [], "baseline": []}
        wrong: list[str] = []
        for _ in range(rounds):
            for name, instance in (("relaykit", ours), ("baseline", base)):
                for relay in relays:
                    relay.messages.clear()
                instance.start()
                try:
                    timings[name].append(_send_all(instance, relays, MESSAGES))
                finally:
                    instance.stop()
                if name == "relaykit":
                    for relay in relays:
                        for message in relay.messages:
                            i = int(message.mail_from.rpartition("@d")[2].split(".")[0])
                            if (relay.name, message.login) != _expected(i) or not message.tls:
                                wrong.append(f"{message.mail_from} -> {relay.name} as {message.login}")
                    total = sum(len(r.messages) for r in relays)
                    if total != MESSAGES:
                        wrong.append(f"{total} messages received, {MESSAGES} sent")
        ours_s, base_s = statistics.median(timings["relaykit"]), statistics.median(timings["baseline"])
        correct = "100% routed to the right relay with the right login over TLS" if not wrong else \
            f"{len(wrong)} WRONG, e.g. {wrong[:3]}"
        print(f"  e2e: relaykit {MESSAGES / ours_s:.0f} msg/s, baseline {MESSAGES / base_s:.0f} msg/s; {correct}",
              flush=True)
        return [Row("e2e", f"{MESSAGES} messages, {DOMAINS} domains, 4 relays", MESSAGES, ours_s, base_s,
                    "single hand-written relayhost", rounds,
                    note=f"{MESSAGES / ours_s:.0f} msg/s vs {MESSAGES / base_s:.0f} msg/s; {correct}",
                    extra={"wrong": len(wrong)})]
    finally:
        for instance in instances:
            instance.stop()
        for relay in relays:
            relay.stop()
