"""`setup relay ...`: DMS semantics on the real files, through the installed console script."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor

import pytest


def test_add_domain_writes_the_relaymap_line_with_port_25_by_default(env):
    assert env.run("setup", "relay", "add-domain", "example.com", "smtp.relay.test").returncode == 0
    assert (env.config_dir / "postfix-relaymap.cf").read_text() == "@example.com\t[smtp.relay.test]:25\n"


def test_add_domain_replaces_the_existing_line_and_keeps_the_others_byte_for_byte(env):
    original = "# my relays\n@a.test   [one.test]:25\n\n  # indented comment\n@example.com [old.test]:25\n@z.test\n"
    env.write("postfix-relaymap.cf", original)
    assert env.run("setup", "relay", "add-domain", "example.com", "new.test", "587").returncode == 0
    assert (env.config_dir / "postfix-relaymap.cf").read_text() == original.replace(
        "@example.com [old.test]:25", "@example.com\t[new.test]:587")


def test_add_domain_accepts_bracketed_and_ip_hosts(env):
    for host, hop in (("[smtp.relay.test]", "[smtp.relay.test]:587"), ("192.0.2.7", "[192.0.2.7]:587"),
                      ("2001:db8::25", "[2001:db8::25]:587"), ("[2001:DB8::25]", "[2001:db8::25]:587")):
        assert env.run("setup", "relay", "add-domain", "example.com", host, "587").returncode == 0
        assert (env.config_dir / "postfix-relaymap.cf").read_text() == f"@example.com\t{hop}\n"


def test_exclude_domain_sets_the_opt_out_line(env):
    env.write("postfix-relaymap.cf", "@example.com [relay.test]:25\n")
    assert env.run("setup", "relay", "exclude-domain", "example.com").returncode == 0
    assert (env.config_dir / "postfix-relaymap.cf").read_text() == "@example.com\n"


def test_recipient_domain_commands_edit_the_recipient_relaymap_that_configure_applies(env):
    env.write("postfix-recipient-relaymap.cf", "# partners\npartner.example [old.test]:25\n")
    assert env.run("setup", "relay", "add-recipient-domain", "Partner.Example", "new.test", "587").returncode == 0
    assert env.run("setup", "relay", "add-recipient-domain", ".blocked.example", "smtps:r.test", "2587").returncode == 0
    path = env.config_dir / "postfix-recipient-relaymap.cf"
    assert path.read_text() == (
        "# partners\npartner.example\t[new.test]:587\n.blocked.example\tsmtps:[r.test]:2587\n")
    env.configure()
    table = f"lmdb:{env.postfix.config_dir / 'recipient_transport'}"
    assert env.postfix.query(table, "partner.example") == "relaykit_rcpt:[new.test]:587"
    assert env.postfix.query(table, ".blocked.example") == "relaykit_rcpt_smtps:[r.test]:2587"

    assert env.run("setup", "relay", "del-recipient-domain", "partner.example").returncode == 0
    again = env.run("setup", "relay", "del-recipient-domain", "partner.example")
    assert again.returncode == 1 and "nothing to delete" in again.stderr
    refused = env.run("setup", "relay", "add-recipient-domain", "@x.example", "r.test")
    assert refused.returncode == 1 and "without '@'" in refused.stderr
    assert path.read_text() == "# partners\n.blocked.example\tsmtps:[r.test]:2587\n"


def test_add_auth_with_password_argument(env):
    assert env.run("setup", "relay", "add-auth", "example.com", "apikey", "s3cret").returncode == 0
    path = env.config_dir / "postfix-sasl-password.cf"
    assert path.read_text() == "@example.com\tapikey:s3cret\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_add_auth_reads_the_password_from_stdin_and_never_prints_it(env):
    result = env.run("setup", "relay", "add-auth", "example.com", "apikey", input="from-stdin\n")
    assert result.returncode == 0, result.stderr
    assert (env.config_dir / "postfix-sasl-password.cf").read_text() == "@example.com\tapikey:from-stdin\n"
    assert "from-stdin" not in result.stdout + result.stderr


def test_a_carriage_return_ends_a_line_of_stdin_but_is_refused_in_an_argument(env):
    """A password piped from a Windows file ends in CRLF: the line's end, not the password.
    The same character in an argument is part of the value, and refused as whitespace
    (stored without it, Postfix would get another password than the one given)."""
    result = env.run("setup", "relay", "add-auth", "example.com", "apikey", input="from-windows\r\n")
    assert result.returncode == 0, result.stderr
    path = env.config_dir / "postfix-sasl-password.cf"
    assert path.read_text() == "@example.com\tapikey:from-windows\n"
    result = env.run("setup", "relay", "add-auth", "example.com", "apikey", "s3cret\r")
    assert result.returncode == 1 and "must not contain" in result.stderr
    assert path.read_text() == "@example.com\tapikey:from-windows\n"


def test_add_auth_replaces_and_keeps_mode(env):
    env.run("setup", "relay", "add-auth", "example.com", "old", "x")
    env.run("setup", "relay", "add-auth", "example.com", "new", "y")
    path = env.config_dir / "postfix-sasl-password.cf"
    assert path.read_text() == "@example.com\tnew:y\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_add_auth_prompts_without_echo_on_a_terminal(env):
    """A real pseudo-terminal: the prompt appears and the typed password is not echoed."""
    import os
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        os.execve(str(env.run.__globals__["BIN"] / "setup"),
                  ["setup", "relay", "add-auth", "example.com", "apikey"], env.environ())
    output = b""
    while b"Password" not in output:
        output += os.read(fd, 1024)
    os.write(fd, b"typed-secret\n")
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"typed-secret" not in output
    assert (env.config_dir / "postfix-sasl-password.cf").read_text() == "@example.com\tapikey:typed-secret\n"


@pytest.mark.parametrize("args, message", [
    (["add-domain", "exa mple.com", "relay.test"], "domain must not contain a space"),
    (["add-domain", "example.com", "relay.test", "0"], "port must be a number from 1 to 65535"),
    (["add-domain", "example.com", "relay.test", "65536"], "port must be a number from 1 to 65535"),
    (["add-domain", "example.com", "relay.test", "abc"], "port must be a number"),
    # int() would take these; a newline would also break the DMS file's line
    (["add-domain", "example.com", "relay.test", "25\n"], "port must be a number from 1 to 65535 (digits only)"),
    (["add-domain", "example.com", "relay.test", " 25"], "port must be a number"),
    (["add-domain", "example.com", "relay.test", "+25"], "port must be a number"),
    (["add-domain", "example.com", "relay.test", "٢٥"], "port must be a number"),
    (["add-domain", "example.com", "relay#1.test"], "must not contain '#'"),
    (["add-domain", "example.com", "re lay.test"], "must not contain a space"),
    (["add-domain", "example.com", "relay.test\n@evil.test"], "must not contain a newline"),
    (["add-domain", "example.com", "-relay.test"], "not a hostname"),
    (["add-domain", "example.com", "[relay.test"], "not a hostname"),
    (["add-domain", "example.com", "300.1.1.1"], "not a valid IPv4 address"),
    (["add-domain", "example.com", "2001:db8::zz"], "not a valid IPv6 address"),
    (["add-domain", "", "relay.test"], "domain is empty"),
    (["add-domain", "example..com", "relay.test"], "not a valid domain name"),
    (["add-auth", "example.com", "user:name", "pw"], "must not contain ':'"),
    (["add-auth", "example.com", "user", "pass word"], "password must not contain whitespace"),
    (["add-auth", "example.com", "user", "pw#1"], "password must not contain whitespace, '#'"),
    (["add-auth", "example.com", "", "pw"], "user is empty"),
    (["exclude-domain", "#example.com"], "must not contain '#'"),
    (["add-domain", "example.com"], "wrong number of arguments"),
    (["add-domain", "a.com", "b.test", "25", "extra"], "wrong number of arguments"),
])
def test_bad_input_is_refused_with_exit_1_and_nothing_changes(env, args, message):
    original = "# keep me\n@keep.test [relay.test]:25\n"
    env.write("postfix-relaymap.cf", original)
    env.write("postfix-sasl-password.cf", "@keep.test u:p\n")
    result = env.run("setup", "relay", *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert (env.config_dir / "postfix-relaymap.cf").read_text() == original
    assert (env.config_dir / "postfix-sasl-password.cf").read_text() == "@keep.test u:p\n"


def test_empty_password_from_stdin_is_refused(env):
    result = env.run("setup", "relay", "add-auth", "example.com", "apikey", input="\n")
    assert result.returncode == 1 and "password is empty" in result.stderr
    assert not (env.config_dir / "postfix-sasl-password.cf").exists()


def test_unknown_commands_exit_2(env):
    assert env.run("setup", "relay", "add-domian", "x").returncode == 2
    assert "did you mean 'add-domain'" in env.run("setup", "relay", "add-domian").stderr
    assert env.run("setup", "nonsense").returncode == 2
    assert env.run("relaykit", "nonsense").returncode == 2


def test_help_has_an_example_for_every_command(env):
    for args in (["help"], ["relay", "help"], ["relay", "--help"]):
        result = env.run("setup", *args)
        assert result.returncode == 0 and "Usage:" in result.stdout
    for command in ("add-domain", "add-auth", "exclude-domain"):
        result = env.run("setup", "relay", command, "--help")
        assert result.returncode == 0 and f"setup relay {command}" in result.stdout
        assert "Examples:" in result.stdout
    same = env.run("relaykit", "setup", "relay", "help").stdout.replace("relaykit setup", "setup")
    assert same == env.run("setup", "relay", "help").stdout


def test_relaykit_setup_is_the_same_command(env):
    assert env.run("relaykit", "setup", "relay", "add-domain", "example.com", "relay.test").returncode == 0
    assert (env.config_dir / "postfix-relaymap.cf").read_text() == "@example.com\t[relay.test]:25\n"


def test_concurrent_commands_never_lose_an_entry(env):
    def add(i: int) -> int:
        return env.run("setup", "relay", "add-domain", f"d{i}.example", "relay.test", str(1000 + i)).returncode

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert list(pool.map(add, range(40))) == [0] * 40
    lines = (env.config_dir / "postfix-relaymap.cf").read_text().splitlines()
    assert sorted(lines) == sorted(f"@d{i}.example\t[relay.test]:{1000 + i}" for i in range(40))


def test_idn_domain_is_stored_as_punycode(env):
    assert env.run("setup", "relay", "add-domain", "bücher.example", "relay.test").returncode == 0
    assert (env.config_dir / "postfix-relaymap.cf").read_text() == "@xn--bcher-kva.example\t[relay.test]:25\n"


def test_idn_domain_uses_idna2008_and_an_invalid_one_is_refused(env):
    assert env.run("setup", "relay", "add-domain", "faß.de", "relay.test").returncode == 0
    relaymap = env.config_dir / "postfix-relaymap.cf"
    assert relaymap.read_text() == "@xn--fa-hia.de\t[relay.test]:25\n"  # not fass.de (IDNA 2003)
    result = env.run("setup", "relay", "add-domain", "☃.net", "relay.test")
    assert result.returncode == 1
    assert "not a valid internationalized domain name (IDNA 2008): '☃.net'" in result.stderr
    assert relaymap.read_text() == "@xn--fa-hia.de\t[relay.test]:25\n"


def test_setup_output_is_plain_when_piped(env):
    result = env.run("setup", "relay", "add-domain", "example.com", "relay.test")
    assert "\x1b[" not in result.stdout + result.stderr
