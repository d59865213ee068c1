"""Operating `relaykit start`: the Prometheus endpoint (METRICS_PORT) scraped while real
mail flows to relays that accept, defer (4xx), are down and reject (5xx); LOG_FORMAT=json
for relaykit's lines and Postfix's (which pass through relaykit on their way to stdout);
SIGHUP always reloading Postfix; a renewed submission certificate served without a
restart. Retries are slow (5 minutes) here, so each message is tried exactly once and the
counters can be checked exactly."""

from __future__ import annotations

import json
import re
import signal
import smtplib
import socket
import ssl
import time
import urllib.request

import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from harness.postfix_instance import free_port, wait_port

pytestmark = pytest.mark.e2e

SLOW_RETRIES = {"queue_run_delay": "300s", "minimal_backoff_time": "300s", "maximal_backoff_time": "300s"}
PASSWORD = "Relay-Pass-Zq9!"


def scrape(port: int) -> dict[tuple, float]:
    """{(sample name, (label, value)...): value} from the endpoint, as Prometheus reads it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(s.name, *sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def wait_metric(port: int, key: tuple, value: float, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while (got := scrape(port)).get(key) != value:
        assert time.monotonic() < deadline, f"{key} is {got.get(key)}, not {value}: " + \
            "\n".join(f"{k} {v}" for k, v in got.items() if k[0].startswith("relaykit_deliver"))
        time.sleep(0.1)
    return got


def delivered(nexthop_port: int, status: str) -> tuple:
    return ("relaykit_deliveries_total", ("nexthop", f"127.0.0.1[127.0.0.1]:{nexthop_port}"), ("status", status))


def postfix_to_stdout(mailrun) -> None:
    """As in the image: maillog_file = /dev/stdout, so Postfix's log passes through relaykit."""
    mailrun.postfix.postconf({"maillog_file": "/dev/stdout",
                              "maillog_file_prefixes": f"{mailrun.postfix.root}, /dev/stdout", **SLOW_RETRIES})


def test_metrics_count_deliveries_per_relay_queue_and_reloads_exactly_and_json_logs(mailrun):
    good = mailrun.relay("good", users={"relay-user": PASSWORD})
    failing = mailrun.relay("failing")
    failing.rcpt_reply = "451 4.3.0 try again later"
    rejecting = mailrun.relay("rejecting")
    rejecting.rcpt_reply = "550 5.1.1 no such user"
    down = free_port()  # nothing listens
    relaymap = mailrun.write("postfix-relaymap.cf", f"@good.example [127.0.0.1]:{good.port}\n"
                                                    f"@failing.example [127.0.0.1]:{failing.port}\n"
                                                    f"@rejecting.example [127.0.0.1]:{rejecting.port}\n"
                                                    f"@down.example [127.0.0.1]:{down}\n")
    mailrun.write("postfix-sasl-password.cf", f"@good.example relay-user:{PASSWORD}\n")
    # bounces (from <>) are delivered to the sender's domain: hold them for the count
    mailrun.postfix.postconf({"bounce_notice_recipient": "postmaster"})
    postfix_to_stdout(mailrun)
    port = free_port()
    mailrun.vars.update(METRICS_PORT=str(port), METRICS_ADDRESS="127.0.0.1", LOG_FORMAT="json", LOG_LEVEL="trace")
    daemon = mailrun.daemon()

    first = scrape(port)
    assert first[("relaykit_build_info", ("postfix_version", mailrun.postfix.param("mail_version")),
                  ("python_version", first_python(first)), ("version", "0.1.0"))] == 1
    assert first[("relaykit_config_last_reload_successful",)] == 1
    assert time.time() - first[("relaykit_last_good_config_timestamp_seconds",)] < 60
    assert first[("relaykit_queue_up",)] == 1

    for sender in ("a@good.example", "b@good.example", "c@failing.example", "d@down.example",
                   "e@rejecting.example"):
        mailrun.send(sender)
    wait_metric(port, delivered(good.port, "sent"), 2)
    wait_metric(port, delivered(failing.port, "deferred"), 1)
    wait_metric(port, delivered(down, "deferred"), 1)
    got = wait_metric(port, delivered(rejecting.port, "bounced"), 1)
    time.sleep(1)  # nothing more moves: one attempt each
    again = scrape(port)
    mine = {k: v for k, v in again.items() if k[0] == "relaykit_deliveries_total" and "127.0.0.1" in k[1][1]}
    assert mine == {delivered(good.port, "sent"): 2, delivered(failing.port, "deferred"): 1,
                    delivered(down, "deferred"): 1, delivered(rejecting.port, "bounced"): 1}
    assert again[("relaykit_queue_messages", ("queue", "deferred"))] >= 2
    assert again[("relaykit_queue_messages", ("queue", "hold"))] == 0
    assert 0 < again[("relaykit_queue_oldest_deferred_age_seconds",)] < 60

    # reloads: a good edit is applied, a bad one refused, SIGHUP reloads Postfix with no change
    offset = len(daemon.log())
    relaymap.write_text(relaymap.read_text() + f"@new.example [127.0.0.1]:{good.port}\n")
    daemon.wait_log(r"changed: applied .*reloaded postfix", after=offset)
    offset = len(daemon.log())
    relaymap.write_text(relaymap.read_text() + "@bad.example [bad host]:25\n")
    daemon.wait_log("still running the last good one", after=offset)
    refused = scrape(port)
    assert refused[("relaykit_reloads_total", ("result", "applied"))] == 1
    assert refused[("relaykit_reloads_total", ("result", "refused"))] == 1
    assert refused[("relaykit_config_last_reload_successful",)] == 0
    offset = len(daemon.log())  # SIGHUP reloads Postfix even now, on the last good configuration
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_log(r"SIGHUP: reloaded postfix \(on the last good configuration\)", after=offset)
    daemon.wait_log(r"reload -- version", after=offset)
    relaymap.write_text(relaymap.read_text().replace("@bad.example [bad host]:25\n", ""))
    wait_metric(port, ("relaykit_config_last_reload_successful",), 1)

    master = mailrun.postfix.master_pid()
    offset = len(daemon.log())
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_log(r"SIGHUP changed: applied nothing new; reloaded postfix", after=offset)
    daemon.wait_log(r"reload -- version", after=offset)  # Postfix's master says it reloaded
    assert mailrun.postfix.master_pid() == master

    # JSON: every line of stdout and stderr is one object; Postfix's carry their fields
    assert daemon.stop() == 0
    records = [json.loads(line) for line in daemon.log().splitlines()]
    assert {r["source"] for r in records} == {"relaykit", "postfix"}
    sent = [r for r in records if r.get("status") == "sent" and r.get("to") == "someone@example.net"]
    assert len(sent) == 2 and all(r["relay"] == f"127.0.0.1[127.0.0.1]:{good.port}" and r["queue_id"]
                                  and isinstance(r["delay"], float) and r["dsn"] == "2.0.0" for r in sent)
    deferred = [r for r in records if r.get("status") == "deferred" and r.get("nexthop", "").endswith(f":{down}")]
    assert deferred and "Connection refused" in deferred[0]["reason"]
    assert any(r["source"] == "relaykit" and r["level"] == "debug" for r in records)  # LOG_LEVEL=trace shows debug
    assert PASSWORD not in daemon.log()


def first_python(samples: dict) -> str:
    return next(dict(k[1:])["python_version"] for k in samples if k[0] == "relaykit_build_info")


def test_text_logs_keep_postfix_lines_verbatim_and_metrics_are_off_by_default(mailrun):
    relay = mailrun.relay("relay")
    mailrun.write("postfix-relaymap.cf", f"@shop.example [127.0.0.1]:{relay.port}\n")
    postfix_to_stdout(mailrun)
    daemon = mailrun.daemon()
    mailrun.wait_received(mailrun.send("a@shop.example"))
    daemon.wait_log(r"\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ postfix/smtp\[\d+\]: [0-9A-F]+: to=<someone@example.net>, "
                    rf"relay=127.0.0.1\[127.0.0.1\]:{relay.port}, .*status=sent")
    assert re.search(r"^\[    INF    \]  started postfix", daemon.log(), re.M)
    assert "metrics on" not in daemon.log()


def served_certificate(port: int, ca_file) -> bytes:
    """The certificate a new STARTTLS session on the submission port presents (DER)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.starttls(context=context)
        return smtp.sock.getpeercert(binary_form=True)


def test_a_renewed_submission_certificate_is_served_without_a_restart(mailrun, tmp_path):
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    certs = tmp_path / "certs"
    certs.mkdir()
    cert_file, key_file = certs / "fullchain.pem", certs / "privkey.pem"

    def issue():
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        leaf.private_key_pem.write_to_path(str(key_file))
        leaf.cert_chain_pems[0].write_to_path(str(cert_file))
        return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())

    old = issue()
    port = free_port()
    mailrun.vars.update(ENABLE_SUBMISSION="1", SUBMISSION_ADDRESS="127.0.0.1", SUBMISSION_PORT=str(port),
                        SUBMISSIONS_PORT="0", SSL_TYPE="manual", SSL_CERT_PATH=str(cert_file),
                        SSL_KEY_PATH=str(key_file), RELAYKIT_DOVECOT_DIR=str(mailrun.root / "dovecot"))
    daemon = mailrun.daemon()
    wait_port(port)
    master = mailrun.postfix.master_pid()
    assert served_certificate(port, ca_file) == old

    # what certbot's renewal does: a new key, then its certificate, at the same paths. In
    # between the two do not match: Postfix is not reloaded onto a pair that cannot work.
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    new = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    offset = len(daemon.log())
    leaf.private_key_pem.write_to_path(str(key_file))
    daemon.wait_log(r"changed but cannot be used with .*keeping the current one", after=offset)
    assert "reloaded postfix" not in daemon.log()[offset:]
    assert served_certificate(port, ca_file) == old
    offset = len(daemon.log())
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    daemon.wait_log(r"certificate .* changed: new connections get it", after=offset)
    daemon.wait_log(r"reloaded postfix", after=offset)
    deadline = time.monotonic() + 10
    while (served := served_certificate(port, ca_file)) != new and time.monotonic() < deadline:
        time.sleep(0.2)  # the reloaded master's new smtpd processes
    assert served == new
    assert mailrun.postfix.master_pid() == master  # reloaded, not restarted


def test_metrics_port_in_use_refuses_to_start(mailrun):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        mailrun.vars.update(METRICS_PORT=str(taken.getsockname()[1]), METRICS_ADDRESS="127.0.0.1")
        daemon = mailrun.daemon(wait=False)
        assert daemon.wait_exit() == 1
    assert "METRICS_PORT: cannot listen on 127.0.0.1" in daemon.log()
