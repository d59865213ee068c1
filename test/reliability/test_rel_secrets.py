"""Secrets: RELAY_PASSWORD and every credential never appear on stdout/stderr at any
LOG_LEVEL in either LOG_FORMAT (text, json), in `relaykit start`'s output (its own lines and
Postfix's, which pass through it), on the command line of any program configure runs (what ps shows), in the
Postfix log of a real authenticated delivery, or in any file but the 0600 tables."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest

from relaykit.model.settings import LOG_FORMATS, LOG_LEVELS

ENV_PASSWORD = "Env-Pass-Zq9!x"
FILE_PASSWORDS = ("Dom-Pass-Zq9", "Hop-Pass-Zq9")
SECRET_FILE_PASSWORD = "Docker-Secret-Zq9"
ALL = (ENV_PASSWORD, *FILE_PASSWORDS, SECRET_FILE_PASSWORD)
SECRET_TABLES = {"sasl_passwd", "postfix-sasl-password.cf"}


def configured(env):
    env.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\n")
    env.write("postfix-relaymap.cf", "@two.example [relay-two.test]:587\n")
    env.write("postfix-sasl-password.cf", f"@two.example apikey:{FILE_PASSWORDS[0]}\n"
                                          f"[relay-three.test]:25 hopuser:{FILE_PASSWORDS[1]}\n")
    os.chmod(env.config_dir / "postfix-sasl-password.cf", 0o600)
    env.vars.update(RELAY_HOST="relay.test", RELAY_PORT="587", RELAY_USER="relay-user", RELAY_PASSWORD=ENV_PASSWORD)


def leaks(text: str, secrets=ALL) -> list[str]:
    return [s for s in secrets if s in text]


@pytest.mark.parametrize("fmt", LOG_FORMATS)
@pytest.mark.parametrize("level", LOG_LEVELS)
def test_configure_prints_no_credential_at_any_log_level(env, level, fmt):
    configured(env)
    for _ in range(2):  # first run (everything changes) and a no-op run
        result = env.configure(LOG_LEVEL=level, LOG_FORMAT=fmt)
        assert not leaks(result.stdout + result.stderr)
        assert result.stderr.strip() or level in ("warn", "error"), "nothing logged: the test would prove nothing"
    assert env.lookup("sasl_passwd", "[relay.test]:587") == f"relay-user:{ENV_PASSWORD}"


def test_configure_errors_name_the_problem_never_the_password(env):
    configured(env)
    env.write("postfix-sasl-password.cf", f"@two.example apikey:{FILE_PASSWORDS[0]}\n"
                                          f"@two.example other:{FILE_PASSWORDS[1]}\n"
                                          f"@bad example:{SECRET_FILE_PASSWORD}\n")
    for level in LOG_LEVELS:
        result = env.run("relaykit", "configure", LOG_LEVEL=level)
        assert result.returncode == 1 and "postfix-sasl-password.cf:" in result.stderr
        assert not leaks(result.stdout + result.stderr)
    result = env.run("relaykit", "configure", RELAY_PASSWORD="has #hash-Zq9")
    assert result.returncode == 1 and "RELAY_PASSWORD" in result.stderr and "hash-Zq9" not in result.stderr


def test_no_program_configure_runs_gets_a_credential_on_its_command_line(env, shims):
    configured(env)
    secret_file = env.config_dir.parent / "relay_password"
    secret_file.write_text(SECRET_FILE_PASSWORD + "\n")
    path_env, recorded = shims
    result = env.configure(**path_env, LOG_LEVEL="trace")
    env.vars.pop("RELAY_PASSWORD")
    env.configure(**path_env, RELAY_PASSWORD_FILE=str(secret_file))  # the *_FILE variant too
    argv = recorded()
    assert "postmap" in argv and "postconf" in argv, "the shims recorded nothing"
    assert not leaks(argv), argv
    assert env.lookup("sasl_passwd", "[relay.test]:587") == f"relay-user:{SECRET_FILE_PASSWORD}"
    assert not leaks(result.stdout + result.stderr)


def test_ps_never_shows_a_credential_while_configure_runs(env):
    """What ps(1) shows: every process's /proc/<pid>/cmdline, polled while configure runs."""
    configured(env)
    seen: set[bytes] = set()
    done = threading.Event()

    def poll():
        while not done.is_set():
            # not Path.glob: it stats each entry, and a process exiting meanwhile raises there
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        seen.add(Path("/proc", pid, "cmdline").read_bytes())
                    except OSError:  # gone in between
                        pass

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        for i in range(4):  # each run rewrites the tables: postmap and postconf run every time
            env.vars["RELAY_PASSWORD"] = f"{ENV_PASSWORD}{i}"
            env.configure()
    finally:
        done.set()
        thread.join()
    argv = b"\n".join(seen).replace(b"\0", b" ").decode(errors="replace")
    assert "postmap" in argv or "postconf" in argv, "the poll saw none of configure's children"
    assert not leaks(argv), "a credential was on a command line"


def test_credentials_are_only_in_the_0600_tables(env):
    configured(env)
    env.configure()
    env.run("setup", "relay", "add-auth", "four.example", "u4", input=f"{SECRET_FILE_PASSWORD}\n")
    env.configure()
    holders = {}
    for root in (env.config_dir, env.postfix.config_dir, env.postfix.data_dir):
        for path in Path(root).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                found = [s for s in ALL if s.encode() in data]
                if found:
                    holders[path.name] = stat.S_IMODE(path.stat().st_mode)
    assert set(holders) <= {name + suffix for name in SECRET_TABLES for suffix in ("", ".db", ".lmdb", ".cdb")}
    assert {"sasl_passwd", "postfix-sasl-password.cf"} <= set(holders)
    assert set(holders.values()) == {0o600}, holders


@pytest.mark.e2e
def test_postfix_log_of_a_real_authenticated_delivery_holds_no_credential(mailrun):
    relay = mailrun.relay("auth", users={"relay-user": ENV_PASSWORD})
    wrong = mailrun.relay("wrong", users={"apikey": "something-else"})
    mailrun.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\nb@two.example|{PLAIN}x\n")
    mailrun.write("postfix-relaymap.cf", f"@two.example {wrong.nexthop}\n")
    mailrun.write("postfix-sasl-password.cf", f"@two.example apikey:{FILE_PASSWORDS[0]}\n")
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(relay.port), RELAY_USER="relay-user",
                        RELAY_PASSWORD=ENV_PASSWORD, LOG_LEVEL="trace")
    mailrun.start()
    delivered = mailrun.wait_received(mailrun.send("a@one.example"))
    assert [(r.name, m.login, m.tls) for r, m in delivered] == [("auth", "relay-user", True)]
    offset = len(mailrun.postfix.log())
    mailrun.send("b@two.example", subject="refused-auth")  # the relay refuses this login
    mailrun.postfix.wait_log(r"SASL authentication failed", after=offset)
    log = mailrun.postfix.log()
    encoded = [base64.b64encode(f"\0{user}\0{password}".encode()).decode() for user, password in
               (("relay-user", ENV_PASSWORD), ("apikey", FILE_PASSWORDS[0]))]
    encoded += [base64.b64encode(p.encode()).decode() for p in ALL]
    assert not leaks(log, (*ALL, *encoded))
    assert {a.password for a in wrong.auth_attempts} == {FILE_PASSWORDS[0]}  # it was tried, over TLS
    assert all(a.tls for a in relay.auth_attempts + wrong.auth_attempts)


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", LOG_FORMATS)
def test_start_output_holds_no_credential_in_either_log_format(mailrun, fmt):
    """Postfix's log through relaykit (maillog_file = /dev/stdout, as in the image) and
    relaykit's own lines at LOG_LEVEL=trace: an authenticated delivery, a refused login."""
    relay = mailrun.relay("auth", users={"relay-user": ENV_PASSWORD})
    wrong = mailrun.relay("wrong", users={"apikey": "something-else"})
    mailrun.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\nb@two.example|{PLAIN}x\n")
    mailrun.write("postfix-relaymap.cf", f"@two.example {wrong.nexthop}\n")
    mailrun.write("postfix-sasl-password.cf", f"@two.example apikey:{FILE_PASSWORDS[0]}\n")
    mailrun.postfix.postconf({"maillog_file": "/dev/stdout",
                              "maillog_file_prefixes": f"{mailrun.postfix.root}, /dev/stdout"})
    mailrun.vars.update(RELAY_HOST="127.0.0.1", RELAY_PORT=str(relay.port), RELAY_USER="relay-user",
                        RELAY_PASSWORD=ENV_PASSWORD, LOG_LEVEL="trace", LOG_FORMAT=fmt)
    daemon = mailrun.daemon()
    mailrun.wait_received(mailrun.send("a@one.example"))
    mailrun.send("b@two.example", subject="refused-auth")
    daemon.wait_log(r"SASL authentication failed")
    daemon.stop()
    encoded = [base64.b64encode(f"\0{user}\0{password}".encode()).decode() for user, password in
               (("relay-user", ENV_PASSWORD), ("apikey", FILE_PASSWORDS[0]))]
    encoded += [base64.b64encode(p.encode()).decode() for p in ALL]
    assert "status=sent" in daemon.log() or '"status": "sent"' in daemon.log()
    assert not leaks(daemon.log(), (*ALL, *encoded))


def test_tls_secure_makes_a_relay_verified_and_is_validated(env):
    env.vars.update(RELAY_HOST="smtp.relay.test", RELAY_PORT="587")
    env.write("postfix-relaymap.cf", "@two.example [other.test]:25\n")
    env.write("postfix-accounts.cf", "a@one.example|{PLAIN}x\n")
    result = env.configure(RELAYKIT_TLS_SECURE="[smtp.relay.test]:587, [nowhere.test]:25")
    assert env.lookup("tls_policy", "[smtp.relay.test]:587") == "secure"
    assert env.lookup("tls_policy", "[other.test]:25") == "encrypt"
    assert "RELAYKIT_TLS_SECURE: [nowhere.test]:25 is not a relay next hop" in result.stderr
    before = env.table("tls_policy")
    refused = env.run("relaykit", "configure", RELAYKIT_TLS_SECURE="[bad host]:x")
    assert refused.returncode == 1 and refused.stderr.startswith("error: RELAYKIT_TLS_SECURE: ")
    assert env.table("tls_policy") == before
