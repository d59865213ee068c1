"""Bad configuration: a clear message naming file and line (or variable), exit 1, and
nothing already configured is lost."""

from __future__ import annotations

import pytest


def configure_fails(env, **extra):
    result = env.run("relaykit", "configure", **extra)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("line, message", [
    ("@example.com [relay.test]:587 # note", "found 4 fields"),
    ("@example.com [relay.test]:99999", "port must be a number from 1 to 65535"),
    ("@example.com [relay.test]:+25", "port must be a number from 1 to 65535 (digits only)"),
    ("@example.com [relay.test]:٢٥", "port must be a number from 1 to 65535 (digits only)"),
    ("@exa_mple.com [relay.test]:25", "not a valid domain name"),
    ("@example.com [relay.test", "not a next hop"),
    ("[relay.test]:25 [other.test]:25", "must be @domain, not a relay host"),
])
def test_bad_relaymap_line_names_file_and_line(env, line, message):
    env.write("postfix-relaymap.cf", f"# comment\n@ok.test [relay.test]:25\n{line}\n")
    stderr = configure_fails(env)
    assert f"{env.config_dir}/postfix-relaymap.cf:3" in stderr
    assert message in stderr


def test_bad_sasl_line_names_file_and_line_without_the_password(env):
    env.write("postfix-relaymap.cf", "@example.com [relay.test]:25\n")
    env.write("postfix-sasl-password.cf", "@example.com user-without-password-s3cr3t\n")
    stderr = configure_fails(env)
    assert f"{env.config_dir}/postfix-sasl-password.cf:1" in stderr
    assert "s3cr3t" not in stderr


def test_every_bad_line_is_reported_at_once(env):
    env.write("postfix-relaymap.cf", "@bad_1.test [r.test]:25\n@ok.test [r.test]:25\n@bad_2.test [r.test]:25\n")
    env.write("postfix-accounts.cf", "no-at-sign|{PLAIN}x\n")
    stderr = configure_fails(env)
    assert "postfix-relaymap.cf:1" in stderr and "postfix-relaymap.cf:3" in stderr
    assert "postfix-accounts.cf:1" in stderr


def test_conflicting_entries_for_one_domain_name_both_lines(env):
    env.write("postfix-relaymap.cf", "@example.com [one.test]:25\n@example.com [two.test]:25\n")
    stderr = configure_fails(env)
    assert "postfix-relaymap.cf:2" in stderr and "postfix-relaymap.cf:1" in stderr


@pytest.mark.parametrize("variables, message", [
    ({"RELAY_HOST": "relay.test", "RELAY_PORT": "abc"}, "RELAY_PORT: RELAY_PORT must be a number"),
    ({"RELAY_HOST": "relay.test", "RELAY_PORT": "25\n"}, "RELAY_PORT: RELAY_PORT must be a number"),
    ({"ENABLE_SUBMISSION": "1", "SUBMISSION_PORT": " 587"}, "SUBMISSION_PORT: SUBMISSION_PORT must be a number"),
    ({"RELAY_HOST": "relay .test"}, "RELAY_HOST"),
    ({"RELAY_HOST": "relay.test", "RELAY_USER": "u"}, "RELAY_USER is set but RELAY_PASSWORD is not"),
    ({"DEFAULT_RELAY_HOST": "[relay.test]:0"}, "DEFAULT_RELAY_HOST"),
    ({"RELAYKIT_TABLE_TYPE": "mysql"}, "RELAYKIT_TABLE_TYPE"),
    ({"RELAY_PASSWORD_FILE": "/nonexistent/secret", "RELAY_USER": "u"}, "cannot read /nonexistent/secret"),
])
def test_bad_environment_names_the_variable(env, variables, message):
    assert message in configure_fails(env, **variables)


def test_password_and_password_file_together_is_an_error(env, tmp_path):
    (tmp_path / "pw").write_text("x")
    stderr = configure_fails(env, RELAY_USER="u", RELAY_PASSWORD="p", RELAY_PASSWORD_FILE=str(tmp_path / "pw"))
    assert "set either RELAY_PASSWORD or RELAY_PASSWORD_FILE, not both" in stderr


def test_bad_env_file_line_is_named(env):
    env.write("relaykit.env", "RELAY_HOST=relay.test\nRELAY_PORT=7x\n")
    assert f"{env.config_dir}/relaykit.env:2" in configure_fails(env)


def test_a_signed_port_in_the_env_file_is_refused_naming_its_line(env):
    env.write("relaykit.env", "RELAY_HOST=relay.test\nRELAY_PORT=+25\n")
    assert f"{env.config_dir}/relaykit.env:2: RELAY_PORT must be a number from 1 to 65535" in configure_fails(env)


def test_health_refuses_a_port_that_is_not_ascii_digits(env):
    result = env.run("relaykit", "health", "127.0.0.1:²")  # int() would raise: a traceback before
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "expected <host>:<port>" in result.stderr


def test_an_error_leaves_the_previous_configuration_in_place(env):
    env.write("postfix-relaymap.cf", "@example.com [relay.test]:587\n")
    env.configure()
    tables = {p.name: p.read_bytes() for p in env.postfix.config_dir.iterdir() if p.is_file()}
    env.write("postfix-relaymap.cf", "@example.com [relay.test]:587\n@broken_domain\n")
    configure_fails(env)
    assert {p.name: p.read_bytes() for p in env.postfix.config_dir.iterdir() if p.is_file()} == tables


@pytest.mark.parametrize("name, value, message", [
    ("LOG_FORMAT", "xml", "must be one of text, json"),
    ("METRICS_PORT", "99999", "METRICS_PORT"),
    ("METRICS_PORT", "ninety", "METRICS_PORT"),
    ("METRICS_ADDRESS", "all", "must be an IP address"),
])
def test_bad_operations_variable_is_named(env, name, value, message):
    env.write("postfix-relaymap.cf", "@example.com [relay.test]:25\n")
    stderr = configure_fails(env, **{name: value})
    assert stderr.startswith(f"error: {name}") and message in stderr, stderr
    assert env.postfix.explicit("relayhost") is None and not (env.postfix.config_dir / "relayhost_map").exists()


def test_with_log_format_json_a_refused_configuration_is_one_json_line(env):
    import json

    env.write("postfix-relaymap.cf", "@example.com [relay.test]:99999\n")
    stderr = configure_fails(env, LOG_FORMAT="json")
    record = json.loads(stderr)
    assert record["level"] == "error" and record["source"] == "relaykit"
    assert f"{env.config_dir}/postfix-relaymap.cf:1" in record["message"]
def test_bad_relay_limits_line_names_file_and_line(env):
    env.write("postfix-relaymap.cf", "@example.com [relay.test]:587\n")
    env.write("postfix-relay-limits.cf", "# SES\n[relay.test]:587 rate=14/s\n")
    stderr = configure_fails(env)
    assert f"{env.config_dir}/postfix-relay-limits.cf:2" in stderr
    assert "faster than one message a second" in stderr


def test_bad_sender_rewrite_line_names_file_and_line(env):
    env.write("postfix-sender-rewrite.cf", "@shop.example noreply@verified.example\n@shop.example other@verified.example\n")
    stderr = configure_fails(env)
    assert f"{env.config_dir}/postfix-sender-rewrite.cf:2" in stderr and "rewritten at" in stderr


def test_sender_canonical_maps_is_relaykits(env):
    stderr = configure_fails(env, POSTFIX_SENDER_CANONICAL_MAPS="hash:/etc/postfix/x")
    assert "postfix-sender-rewrite.cf" in stderr
