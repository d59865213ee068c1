"""`relaykit start`, the container entrypoint: Postfix in the foreground, live reload,
clean stop, and mail that is deferred (never bounced, never lost) when a relay is unusable.
Everything through the real `relaykit start`, real Postfix and real SMTP relays."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

pytestmark = pytest.mark.e2e

APPLIED = r"changed: applied .*reloaded postfix"


def queued(mailrun) -> list[dict]:
    return mailrun.postfix.queue()


def wait_deferred(mailrun, count: int = 1, timeout: float = 20.0) -> list[dict]:
    """Until `count` messages were deferred: tried and kept with a reason. Not "in the
    deferred queue now": with 1 s retries a deferred message is back in the active (or
    incoming) queue much of the time, more so on a loaded machine."""
    deadline = time.monotonic() + timeout
    while len(entries := [q for q in queued(mailrun)
                          if any(r.get("delay_reason") for r in q["recipients"])]) < count:
        assert time.monotonic() < deadline, f"not deferred: {queued(mailrun)}\n{mailrun.postfix.log()[-2000:]}"
        time.sleep(0.1)
    return entries


def test_start_serves_mail_and_stops_cleanly_on_sigterm(mailrun):
    default = mailrun.relay("default", users={"relay-user": "relay-pass"})
    mailrun.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\n")
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(default.port),
                        RELAY_USER="relay-user", RELAY_PASSWORD="relay-pass")
    daemon = mailrun.daemon()

    got = mailrun.wait_received(mailrun.send("a@one.example"))
    assert [(r.name, m.login, m.tls) for r, m in got] == [("default", "relay-user", True)]
    master = mailrun.postfix.master_pid()
    assert master

    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.kill(master, 0)
    assert "relay-pass" not in daemon.log()


def test_start_refuses_an_invalid_config_naming_file_and_line(mailrun):
    relaymap = mailrun.write("postfix-relaymap.cf", "@ok.example [127.0.0.1]:2525\n@bad.example [127.0.0.1]:99999\n")
    daemon = mailrun.daemon(wait=False)
    assert daemon.wait_exit() == 1
    assert f"{relaymap}:2" in daemon.log()
    assert mailrun.postfix.master_pid() is None  # Postfix was never started


def test_postfix_dying_makes_start_exit_non_zero(mailrun):
    daemon = mailrun.daemon()
    os.kill(mailrun.postfix.master_pid(), signal.SIGKILL)
    assert daemon.wait_exit() != 0
    assert "postfix exited unexpectedly" in daemon.log()


def test_setup_relay_add_domain_while_running_routes_the_next_message(mailrun):
    first, second = mailrun.relay("first"), mailrun.relay("second")
    mailrun.run("setup", "relay", "add-domain", "shop.example", "127.0.0.1", str(first.port))
    daemon = mailrun.daemon()
    master = mailrun.postfix.master_pid()
    assert [r.name for r, _ in mailrun.wait_received(mailrun.send("a@shop.example"))] == ["first"]

    offset = len(daemon.log())
    mailrun.run("setup", "relay", "add-domain", "shop.example", "127.0.0.1", str(second.port))
    daemon.wait_log(APPLIED, after=offset)
    assert [r.name for r, _ in mailrun.wait_received(mailrun.send("a@shop.example"))] == ["second"]
    assert mailrun.postfix.master_pid() == master  # reloaded, not restarted


def test_a_burst_of_edits_is_applied_once(mailrun):
    relay = mailrun.relay("relay")
    mailrun.write("postfix-relaymap.cf", "")
    daemon = mailrun.daemon()
    master = mailrun.postfix.master_pid()
    offset = len(daemon.log())
    for n in range(5):
        mailrun.write("postfix-relaymap.cf", "".join(f"@d{i}.example [127.0.0.1]:{relay.port}\n" for i in range(n + 1)))
    daemon.wait_log(APPLIED, after=offset)
    time.sleep(0.5)  # would a second reload follow? (the burst ends 30 ms after the last write)
    assert len(re.findall(APPLIED, daemon.log()[offset:])) == 1
    assert [r.name for r, _ in mailrun.wait_received(mailrun.send("x@d4.example"))] == ["relay"]
    assert mailrun.postfix.master_pid() == master


def test_a_bad_edit_keeps_mail_flowing_on_the_last_good_config_and_the_fix_applies(mailrun):
    good, better = mailrun.relay("good"), mailrun.relay("better")
    relaymap = mailrun.write("postfix-relaymap.cf", f"@shop.example [127.0.0.1]:{good.port}\n")
    daemon = mailrun.daemon()

    offset = len(daemon.log())
    mailrun.write("postfix-relaymap.cf", f"@shop.example [127.0.0.1]:{better.port}\n@broken.example [bad host]:25\n")
    daemon.wait_log(rf"{relaymap}:2.*\n.*still running the last good one", after=offset)
    assert [r.name for r, _ in mailrun.wait_received(mailrun.send("a@shop.example"))] == ["good"]
    assert daemon.process.poll() is None

    offset = len(daemon.log())
    mailrun.write("postfix-relaymap.cf", f"@shop.example [127.0.0.1]:{better.port}\n")
    daemon.wait_log(APPLIED, after=offset)
    assert [r.name for r, _ in mailrun.wait_received(mailrun.send("a@shop.example"))] == ["better"]


def test_relay_without_tls_never_gets_the_credentials_and_the_mail_waits_until_it_is_fixed(mailrun):
    plain = mailrun.relay("plain", tls="none", users={"AKIA": "ses-pass"})
    mailrun.run("setup", "relay", "add-domain", "shop.example", "127.0.0.1", str(plain.port))
    mailrun.run("setup", "relay", "add-auth", "shop.example", "AKIA", input="ses-pass\n")
    mailrun.daemon()

    subject = mailrun.send("a@shop.example")
    [entry] = wait_deferred(mailrun)
    assert "TLS" in entry["recipients"][0]["delay_reason"]
    mailrun.postfix.flush()
    time.sleep(1.5)  # a retry or two against the same plain relay
    assert plain.auth_attempts == [] and plain.messages == []
    assert "bounced" not in mailrun.postfix.log()

    # The relay gets fixed: same address, now with STARTTLS.
    plain.stop()
    fixed = mailrun.relay("fixed", port=plain.port, users={"AKIA": "ses-pass"})
    mailrun.postfix.flush()
    got = mailrun.wait_received(subject)
    assert [(r.name, m.login, m.tls) for r, m in got] == [("fixed", "AKIA", True)]
    assert all(a.tls for a in fixed.auth_attempts)


def test_relay_down_defers_the_mail_and_delivers_it_when_back(mailrun):
    relay = mailrun.relay("relay", users={"relay-user": "relay-pass"})
    port = relay.port
    relay.stop()
    mailrun.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\n")
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(port),
                        RELAY_USER="relay-user", RELAY_PASSWORD="relay-pass")
    mailrun.daemon()

    subject = mailrun.send("a@one.example")
    [entry] = wait_deferred(mailrun)
    assert "refused" in entry["recipients"][0]["delay_reason"]

    back = mailrun.relay("back", port=port, users={"relay-user": "relay-pass"})
    mailrun.postfix.flush()
    got = mailrun.wait_received(subject)
    assert [(r.name, m.login) for r, m in got] == [("back", "relay-user")]
    assert back.messages and not queued(mailrun)


def test_the_queue_survives_a_stop_and_start_and_is_delivered_afterwards(mailrun):
    relay = mailrun.relay("relay")
    port = relay.port
    relay.stop()
    mailrun.run("setup", "relay", "add-domain", "shop.example", "127.0.0.1", str(port))
    daemon = mailrun.daemon()
    subjects = [mailrun.send("a@shop.example") for _ in range(3)]
    wait_deferred(mailrun, 3)
    assert daemon.stop() == 0

    mailrun.relay("back", port=port)
    mailrun.daemon()
    mailrun.postfix.flush()
    for subject in subjects:
        assert [r.name for r, _ in mailrun.wait_received(subject)] == ["back"]


def test_no_mail_is_lost_while_routes_change_under_load(mailrun):
    left, right = mailrun.relay("left"), mailrun.relay("right")
    mailrun.run("setup", "relay", "add-domain", "shop.example", "127.0.0.1", str(left.port))
    daemon = mailrun.daemon()
    in_flight = []
    for n in range(6):
        relay = (right, left)[n % 2]
        offset = len(daemon.log())
        mailrun.run("setup", "relay", "add-domain", "shop.example", "127.0.0.1", str(relay.port))
        # Mail submitted while the reload happens, not after it. Postfix routes a message
        # when its queue manager delivers it, and every reload starts a new queue manager,
        # so this mail may take the old route or the new one (or a later one): exactly once.
        in_flight += [mailrun.send("a@shop.example") for _ in range(3)]
        daemon.wait_log(APPLIED, after=offset)
        # Mail submitted once the reload is done, with no change after it, takes the new route.
        marker = mailrun.send("a@shop.example")
        got = [r.name for r, _ in mailrun.wait_received(marker)]
        assert got == [relay.name], f"{marker}: {got}\n{mailrun.postfix.log()[-3000:]}"
    for subject in in_flight:
        assert len(mailrun.wait_received(subject)) == 1
    assert len(left.messages) + len(right.messages) == len(in_flight) + 6


def test_postfix_logs_to_the_entrypoint_stdout(mailrun):
    # The image's main.cf says maillog_file = /dev/stdout: the container log shows Postfix.
    mailrun.postfix.postconf({"maillog_file": "/dev/stdout", "maillog_file_prefixes": "/dev/stdout"})
    relay = mailrun.relay("relay")
    mailrun.run("setup", "relay", "add-domain", "shop.example", "127.0.0.1", str(relay.port))
    daemon = mailrun.daemon()
    mailrun.send("a@shop.example")
    daemon.wait_log(rf"postfix/smtp\[\d+\]: .*relay=127\.0\.0\.1\[127\.0\.0\.1\]:{relay.port}, .*status=sent")
    assert "started postfix" in daemon.log()  # relaykit's own lines are kept alongside


def test_start_refuses_when_postfix_itself_is_misconfigured(mailrun):
    # a Postfix problem relaykit does not check itself: `postfix check` (as start-fg runs it) does
    mailrun.postfix.run("postconf", "-MX", "postlog/unix-dgram")
    daemon = mailrun.daemon(wait=False)
    assert daemon.wait_exit() == 1
    assert "postfix check failed" in daemon.log() and "missing 'postlog' service in master.cf" in daemon.log()
    assert mailrun.postfix.master_pid() is None


def test_sigint_stops_as_cleanly_as_sigterm(mailrun):
    daemon = mailrun.daemon()
    master = mailrun.postfix.master_pid()
    daemon.process.send_signal(signal.SIGINT)
    assert daemon.wait_exit(5) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(master, 0)


def test_editing_relaykit_env_while_running_changes_the_default_relay(mailrun):
    old, new = mailrun.relay("old"), mailrun.relay("new")
    mailrun.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\n")
    mailrun.write("relaykit.env", f"RELAY_HOST=127.0.0.1\nRELAY_PORT={old.port}\n")
    daemon = mailrun.daemon()
    assert [r.name for r, _ in mailrun.wait_received(mailrun.send("a@one.example"))] == ["old"]

    offset = len(daemon.log())
    mailrun.write("relaykit.env", f"RELAY_HOST=127.0.0.1\nRELAY_PORT={new.port}\n")
    daemon.wait_log(APPLIED, after=offset)
    assert [r.name for r, _ in mailrun.wait_received(mailrun.send("a@one.example"))] == ["new"]
