"""The tables of routing beyond DMS, as Postfix itself reads them (postmap -q, postfix
check), and file:line errors for the new syntaxes."""

from __future__ import annotations

import pytest

from test_errors import configure_fails


def pcre(env, name: str, key: str) -> str | None:
    return env.postfix.query(f"pcre:{env.postfix.config_dir / name}", key)


def test_subdomain_wildcards_match_as_postfix_reads_them(env):
    env.write("postfix-relaymap.cf", "@.a-b.example [w.test]:25\n@x.a-b.example\n@y.a-b.example [y.test]:25\n")
    env.write("postfix-sasl-password.cf", "@.a-b.example user:pa$$w0rd\n")
    env.configure()
    table = "relayhost_map_subdomains"
    assert pcre(env, table, "u@sub.a-b.example") == "[w.test]:25"
    assert pcre(env, table, "u@deep.sub.A-B.example") == "[w.test]:25"  # case-insensitive, like lmdb
    assert pcre(env, table, "u@x.a-b.example") == "DUNNO"  # opted out: ends Postfix's search
    assert pcre(env, table, "u@y.a-b.example") == "[y.test]:25"  # exact beats the wildcard
    for key in ("u@a-b.example", "u@subxa-b.example", "u@sub.a-bxexample", "u@sub.a-b.example.evil", "@.a-b.example"):
        assert pcre(env, table, key) is None, key
    assert pcre(env, "sasl_passwd_subdomains", "u@s.a-b.example") == "user:pa$$w0rd"
    assert oct((env.postfix.config_dir / "sasl_passwd_subdomains").stat().st_mode & 0o777) == "0o600"
    assert env.postfix.check() == ""
    env.write("postfix-sasl-password.cf", "@a-b.example user:pa$$w0rd\n")  # no wildcard any more
    env.configure()
    assert not (env.postfix.config_dir / "sasl_passwd_subdomains").exists()
    assert env.postfix.explicit("smtp_sasl_password_maps") == f"lmdb:{env.postfix.config_dir / 'sasl_passwd'}"


def test_implicit_tls_and_recipient_services_are_planned_and_removed_again(env):
    env.write("postfix-relaymap.cf", "@a.test [r.test]:465\n")
    env.write("postfix-recipient-relaymap.cf", "blocked.test [b.test]:587\n")
    env.configure()
    services = env.postfix.run("postconf", "-M").stdout
    assert "relaykit_smtps" in services and "relaykit_rcpt" in services
    assert env.postfix.query(f"lmdb:{env.postfix.config_dir / 'recipient_transport'}", "blocked.test") == \
        "relaykit_rcpt:[b.test]:587"
    assert env.postfix.check() == ""
    env.write("postfix-relaymap.cf", "@a.test [r.test]:587\n")
    (env.config_dir / "postfix-recipient-relaymap.cf").unlink()
    env.configure()
    for name in ("recipient_transport", "recipient_transport.lmdb"):
        assert not (env.postfix.config_dir / name).exists()
    services = env.postfix.run("postconf", "-M").stdout
    assert "relaykit_smtps" not in services and "relaykit_rcpt" not in services
    assert env.postfix.explicit("transport_maps") is None
    # every sender key keeps its transport; mail no rule routes goes direct, without SASL
    # (through relayhost_map: pipemap:{relayhost_map,relay_transport}, which real postmap reads)
    transports = env.postfix.explicit("sender_dependent_default_transport_maps")
    assert transports.startswith("pipemap:{") and env.postfix.query(transports, "@a.test") == "smtp:[r.test]:587"
    assert not (env.postfix.config_dir / "sender_transport").exists()
    assert env.postfix.explicit("default_transport") == "relaykit_direct" and "relaykit_direct" in services


@pytest.mark.parametrize("name, line, message", [
    ("postfix-relaymap.cf", "a b@example.com [r.test]:25", "found 3 fields"),
    ("postfix-relaymap.cf", "a..b@example.com [r.test]:25", "invalid local part"),
    ("postfix-relaymap.cf", "@.exa_mple.com [r.test]:25", "not a valid domain name"),
    ("postfix-relaymap.cf", "@a.test [r.test]:465,[s.test]:587", "same TLS mode"),
    ("postfix-sasl-password.cf", "bad\x01@a.test u:p", "must not contain '\\x01'"),
    ("postfix-recipient-relaymap.cf", "blocked.test", "found 1 fields"),
    ("postfix-recipient-relaymap.cf", "@blocked.test [r.test]:25", "without '@'"),
])
def test_bad_lines_of_the_new_syntaxes_name_file_and_line(env, name, line, message):
    env.write("postfix-relaymap.cf", "@ok.test [relay.test]:25\n")
    env.write(name, ("@ok.test [relay.test]:25\n" if name == "postfix-relaymap.cf" else "# first\n") + line + "\n")
    stderr = configure_fails(env)
    assert f"{env.config_dir}/{name}:2" in stderr and message in stderr


def test_setup_accepts_an_address_a_wildcard_and_a_tls_mode(env):
    assert env.run("setup", "relay", "add-domain", "Bill@Example.com", "r.test", "587").returncode == 0
    assert env.run("setup", "relay", "add-domain", "@.example.com", "smtps:r.test", "2587").returncode == 0
    assert env.run("setup", "relay", "add-domain", "example.org", "smtp:r.test", "465").returncode == 0
    assert env.run("setup", "relay", "add-domain", "example.net", "r.test", "465").returncode == 0
    assert (env.config_dir / "postfix-relaymap.cf").read_text() == (
        "bill@example.com\t[r.test]:587\n@.example.com\tsmtps:[r.test]:2587\n"
        "@example.org\tsmtp:[r.test]:465\n@example.net\t[r.test]:465\n")
    assert env.run("setup", "relay", "exclude-domain", "@.example.com").returncode == 0
    assert "\n@.example.com\n" in (env.config_dir / "postfix-relaymap.cf").read_text()
    result = env.run("setup", "relay", "add-domain", "a b@example.com", "r.test")
    assert result.returncode == 1 and "a b@example.com" in result.stderr


def test_explain_prints_the_route_without_any_password(env):
    env.write("postfix-relaymap.cf", "@a.test [one.test]:587,[two.test]:587\n")
    env.write("postfix-sasl-password.cf", "[two.test]:587 u2:very-secret\n")
    result = env.run("setup", "relay", "explain", "x@a.test")
    assert result.returncode == 0, result.stderr
    assert "relay [one.test]:587, then [two.test]:587 (tried in order)" in result.stdout
    assert "[two.test]:587: u2" in result.stdout and "very-secret" not in result.stdout + result.stderr
    assert env.run("setup", "relay", "explain", "not-an-address").returncode == 1


def test_explain_says_secure_for_a_relay_listed_in_relaykit_tls_secure(env):
    env.write("postfix-relaymap.cf", "@a.test [one.test]:587\n@b.test [two.test]:587\n")
    env.vars["RELAYKIT_TLS_SECURE"] = "[one.test]:587"
    secure = env.run("setup", "relay", "explain", "x@a.test")
    assert secure.returncode == 0, secure.stderr
    assert "tls:        required (secure)" in secure.stdout
    other = env.run("setup", "relay", "explain", "x@b.test")
    assert "tls:        required (encrypt)" in other.stdout
