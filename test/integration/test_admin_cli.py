"""The admin commands beyond DMS: list, del-domain, del-auth, check, help, completion;
through the installed `setup` script on real files."""

from __future__ import annotations

import json
import subprocess

import pytest

from relaykit.cli.dispatch import Group
from relaykit.cli.main import _tree

SECRET = "Pa55-w0rd-never-shown"


@pytest.fixture
def configured(env):
    env.write("postfix-accounts.cf", "a@shop.example|{PLAIN}x\nb@news.example|{PLAIN}x\n")
    env.write("postfix-relaymap.cf", "@news.example [email-smtp.eu-west-1.amazonaws.com]:587\n@lab.example\n")
    env.write("postfix-sasl-password.cf", f"@news.example AKIANEWS:{SECRET}\n")
    env.vars.update(RELAY_HOST="smarthost.example", RELAY_PORT="587",
                    RELAY_USER="relay-user", RELAY_PASSWORD=SECRET + "2")
    return env


def test_list_json_shows_each_sender_its_relay_and_login_with_the_password_masked(configured):
    result = configured.run("setup", "relay", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["sender"]: row for row in json.loads(result.stdout)}
    assert rows["@news.example"]["relays"] == ["[email-smtp.eu-west-1.amazonaws.com]:587"]
    assert rows["@news.example"]["user"] == "AKIANEWS"
    assert rows["@news.example"]["password"] == "********"
    assert rows["@news.example"]["rule"].endswith("postfix-relaymap.cf:1")
    assert rows["@shop.example"] == {
        "sender": "@shop.example", "relays": ["[smarthost.example]:587"], "direct": False,
        "rule": "RELAY_HOST", "user": "relay-user", "password": "********", "credentials": "RELAY_USER",
        "tls": "encrypt", "oauth2": None}  # oauth2: the provider of an XOAUTH2 login
    assert rows["@lab.example"]["direct"] is True and "opted out" in rows["@lab.example"]["rule"]
    assert rows["@lab.example"]["tls"] is None  # direct: main.cf's level, not a tls_policy entry
    assert SECRET not in result.stdout + result.stderr


def test_list_table_is_readable_and_never_shows_a_password(configured):
    result = configured.run("setup", "relay", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    news = next(line for line in lines if "@news.example" in line)
    assert "[email-smtp.eu-west-1.amazonaws.com]:587" in news and "AKIANEWS" in news and "********" in news
    assert any("@lab.example" in line and "direct" in line for line in lines)
    assert SECRET not in result.stdout + result.stderr


def test_list_with_a_default_relayhost_has_a_row_for_every_other_sender(env):
    env.vars.update(DEFAULT_RELAY_HOST="[smtp.office365.com]:587", RELAY_USER="me@corp.example",
                    RELAY_PASSWORD=SECRET)
    rows = json.loads(env.run("setup", "relay", "list", "--json").stdout)
    assert rows == [{"sender": "*", "relays": ["[smtp.office365.com]:587"], "direct": False,
                     "rule": "DEFAULT_RELAY_HOST", "user": "me@corp.example", "password": "********",
                     "credentials": "RELAY_USER", "tls": "encrypt", "oauth2": None}]


def test_list_without_any_relay_says_so(env):
    assert "no relay configured" in env.run("setup", "relay", "list").stdout
    assert json.loads(env.run("setup", "relay", "list", "--json").stdout) == []


def test_list_refuses_unknown_options_and_bad_config(configured):
    result = configured.run("setup", "relay", "list", "--yaml")
    assert result.returncode == 1 and "unknown option '--yaml'" in result.stderr
    configured.write("postfix-relaymap.cf", "@news.example [a]:587 junk\n")
    result = configured.run("setup", "relay", "list")
    assert result.returncode == 1 and "postfix-relaymap.cf:1" in result.stderr


def test_del_domain_removes_a_route_or_an_opt_out_and_keeps_the_rest(configured):
    assert configured.run("setup", "relay", "del-domain", "lab.example").returncode == 0
    assert configured.run("setup", "relay", "del-domain", "@news.example").returncode == 0
    assert (configured.config_dir / "postfix-relaymap.cf").read_text() == ""
    configured.write("postfix-relaymap.cf", "# keep me\n@a.example [x.test]:25\n@b.example [y.test]:25\n")
    assert configured.run("setup", "relay", "del-domain", "a.example").returncode == 0
    assert (configured.config_dir / "postfix-relaymap.cf").read_text() == "# keep me\n@b.example [y.test]:25\n"


@pytest.mark.parametrize("args, message", [
    (("missing.example",), "@missing.example has no entry"),
    (("bad domain",), "domain"),
    (("[relay.test]:25",), "must be @domain"),
    ((), "wrong number of arguments"),
])
def test_del_domain_bad_input_exits_1_and_changes_nothing(configured, args, message):
    before = (configured.config_dir / "postfix-relaymap.cf").read_text()
    result = configured.run("setup", "relay", "del-domain", *args)
    assert result.returncode == 1 and message in result.stderr
    assert (configured.config_dir / "postfix-relaymap.cf").read_text() == before


def test_del_auth_removes_domain_or_relay_credentials_and_keeps_mode_0600(configured):
    path = configured.config_dir / "postfix-sasl-password.cf"
    path.write_text(f"@news.example AKIANEWS:{SECRET}\n[smtp.mailgun.org]:587 pm@mg.example:{SECRET}\n")
    path.chmod(0o600)
    result = configured.run("setup", "relay", "del-auth", "news.example")
    assert result.returncode == 0 and SECRET not in result.stdout + result.stderr
    assert configured.run("setup", "relay", "del-auth", "[smtp.mailgun.org]:587").returncode == 0
    assert path.read_text() == ""
    path.write_text(f"smtp.relay.test:2525 u:{SECRET}\n")  # an unbracketed next hop (MX lookup)
    assert configured.run("setup", "relay", "del-auth", "smtp.relay.test:2525").returncode == 0
    assert path.read_text() == ""
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("args, message", [
    (("other.example",), "@other.example has no credentials"),
    (("[smtp.mailgun.org]:99999",), "port"),
    (("a", "b"), "wrong number of arguments"),
])
def test_del_auth_bad_input_exits_1_and_changes_nothing(configured, args, message):
    before = (configured.config_dir / "postfix-sasl-password.cf").read_text()
    result = configured.run("setup", "relay", "del-auth", *args)
    assert result.returncode == 1 and message in result.stderr
    assert (configured.config_dir / "postfix-sasl-password.cf").read_text() == before


def test_check_passes_a_valid_configuration_with_its_summary(configured):
    result = configured.run("setup", "relay", "check")
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout
    assert "[email-smtp.eu-west-1.amazonaws.com]:587 <- 1 sender(s), 1 with credentials" in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_check_reports_every_problem_with_file_and_line_and_exits_1(configured):
    configured.write("postfix-relaymap.cf", "@ok.example [relay.test]:25\n@bad..example [r.test]:25\n"
                                            "# fine\n@x.example [r.test]:25 trailing\n")
    configured.write("postfix-sasl-password.cf", f"@news.example AKIA:{SECRET}\n@news.example nocolon\n")
    result = configured.run("setup", "relay", "check", RELAY_PORT="0")
    assert result.returncode == 1
    relaymap = configured.config_dir / "postfix-relaymap.cf"
    sasl = configured.config_dir / "postfix-sasl-password.cf"
    for where in ("RELAY_PORT", f"{relaymap}:2", f"{relaymap}:4", f"{sasl}:2"):
        assert f"error: {where}:" in result.stderr, (where, result.stderr)
    assert "4 problem(s) found" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_check_reports_conflicting_entries_the_plan_refuses(configured):
    configured.write("postfix-relaymap.cf", "@news.example [a.test]:25\n@news.example [b.test]:25\n")
    result = configured.run("setup", "relay", "check")
    assert result.returncode == 1 and "postfix-relaymap.cf:2" in result.stderr and "already" in result.stderr


def test_check_prints_the_plans_warnings(env):
    env.write("postfix-sasl-password.cf", "@a.example u:p\n")
    env.write("postfix-relaymap.cf", "@b.example [r.test]:25\n")
    result = env.run("setup", "relay", "check")
    assert result.returncode == 0
    assert "warning:" in result.stderr and "@a.example has credentials but (some of) its mail is delivered directly" in result.stderr


def _commands(node: Group, path: tuple[str, ...] = ()):
    for child in node.children:
        if isinstance(child, Group):
            yield from _commands(child, (*path, child.name))
        else:
            yield (*path, child.name)


@pytest.mark.parametrize("path", list(_commands(_tree())), ids="/".join)
def test_every_command_has_help_with_usage_and_an_example(env, path):
    for args in ((*path, "--help"), (*path[:-1], "help", path[-1])):
        result = env.run("relaykit", *args)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.startswith(f"Usage: relaykit {' '.join(path)}")
        assert "Examples:" in result.stdout


def test_dms_help_subcommands(env):
    assert "relay" in env.run("setup", "help").stdout
    for command in ("add-domain", "list", "check", "test", "del-auth"):
        assert command in env.run("setup", "relay", "help").stdout
    assert env.run("setup", "relay", "help", "nope").returncode == 2


def _complete(script: str, words: list[str]) -> list[str]:
    """Run the generated completion in a real bash, as it would complete `words`."""
    program = f"""{script}
COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}
_relaykit_{words[0]}; printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout
    return sorted(filter(None, out.splitlines()))


def test_bash_completion_follows_the_command_tree(env):
    result = env.run("setup", "completion", "bash")
    assert result.returncode == 0
    script = result.stdout
    assert _complete(script, ["setup", "re"]) == ["relay"]
    assert _complete(script, ["setup", "relay", "del-"]) == ["del-auth", "del-domain", "del-oauth2",
                                                              "del-recipient-domain"]
    assert _complete(script, ["setup", "relay", "list", "--"]) == ["--help", "--json"]
    assert _complete(script, ["relaykit", "he"]) == ["health", "help"]
    assert "add-domain" in _complete(script, ["relaykit", "setup", "relay", ""])


def test_completion_for_an_unknown_shell_exits_1(env):
    result = env.run("setup", "completion", "tcsh")
    assert result.returncode == 1 and "bash and zsh are supported" in result.stderr


def test_configure_logs_a_summary_per_relay_without_secrets(configured):
    result = configured.configure()
    line = next(l for l in result.stderr.splitlines() if "relay:" in l)
    assert "[email-smtp.eu-west-1.amazonaws.com]:587 <- 1 sender(s), 1 with credentials" in line
    assert "[smarthost.example]:587 <- 1 sender(s), 1 with credentials" in line
    assert SECRET not in result.stdout + result.stderr


def test_log_level_debug_shows_each_route_and_warn_hides_the_summary(configured):
    debug = configured.configure(LOG_LEVEL="debug").stderr
    assert "[   DEBUG   ]  route @news.example -> [email-smtp.eu-west-1.amazonaws.com]:587 as AKIANEWS" in debug
    assert "[    INF    ]  relay:" in debug
    quiet = configured.configure(LOG_LEVEL="warn").stderr
    assert "relay:" not in quiet and "route @" not in quiet
    assert SECRET not in debug + quiet


def test_summary_names_the_default_relayhost_for_every_other_sender(env):
    env.write("postfix-relaymap.cf", "@news.example [smtp.mailgun.org]:587\n")
    env.vars.update(DEFAULT_RELAY_HOST="[smtp.sendgrid.net]:587", RELAY_USER="apikey", RELAY_PASSWORD=SECRET)
    line = next(l for l in env.configure().stderr.splitlines() if "relay:" in l)
    assert line.endswith("relay: [smtp.mailgun.org]:587 <- 1 sender(s), 0 with credentials; "
                         "[smtp.sendgrid.net]:587 <- every other sender, with credentials; 1 credential(s)")


@pytest.mark.skipif(not __import__("shutil").which("zsh"), reason="zsh is not installed")
def test_zsh_completion_registers_through_bashcompinit_in_a_real_zsh(env):
    script = env.run("setup", "completion", "zsh").stdout
    program = (f"{script}\nsetopt ksharrays  # as bashcompinit's _bash_complete runs it\n"
               "COMP_WORDS=(setup relay ''); COMP_CWORD=2; _relaykit_setup\n"
               'print -r -- "${_comps[setup]}|${COMPREPLY[*]}"')
    result = subprocess.run(["zsh", "-fc", program], capture_output=True, text=True)
    registered, _, words = result.stdout.strip().partition("|")
    assert registered == "_bash_complete -F _relaykit_setup", result.stderr
    assert {"add-domain", "del-auth", "list", "test"} <= set(words.split())


def test_list_shows_each_relays_tls_level_as_postfix_applies_it(env):
    env.write("postfix-relaymap.cf", "@a.test [one.test]:587\n@b.test [two.test]:587\n")
    env.vars["RELAYKIT_TLS_SECURE"] = "[one.test]:587"
    rows = {row["sender"]: row["tls"] for row in json.loads(env.run("setup", "relay", "list", "--json").stdout)}
    assert rows == {"@a.test": "secure", "@b.test": "encrypt"}
    table = env.run("setup", "relay", "list").stdout
    assert any("@a.test" in line and "secure" in line for line in table.splitlines())
