"""`setup email ...` and `relaykit configure` with ENABLE_SUBMISSION, on real files and a
real Postfix config (postconf). Passwords authenticating for real: test/e2e/test_submission.py."""

from __future__ import annotations

import grp
import stat

ACCOUNTS = "postfix-accounts.cf"


def accounts(env) -> str:
    return (env.config_dir / ACCOUNTS).read_text()


def test_add_hashes_the_password_with_sha512_crypt_into_a_0600_file(env):
    result = env.run("setup", "email", "add", "alice@example.com", input="s3cret pass\n")
    assert result.returncode == 0, result.stderr
    line, = accounts(env).splitlines()
    address, _, hashed = line.partition("|")
    assert address == "alice@example.com" and hashed.startswith("{SHA512-CRYPT}$6$")
    assert "s3cret" not in result.stdout + result.stderr + line
    assert stat.S_IMODE((env.config_dir / ACCOUNTS).stat().st_mode) == 0o600


def test_add_refuses_an_existing_account_and_update_a_missing_one(env):
    env.run("setup", "email", "add", "alice@example.com", input="one\n")
    before = accounts(env)
    again = env.run("setup", "email", "add", "ALICE@example.com", input="two\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    missing = env.run("setup", "email", "update", "bob@example.com", input="two\n")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert accounts(env) == before


def test_update_replaces_only_that_accounts_hash(env):
    env.write(ACCOUNTS, "# users\nalice@example.com|{PLAIN}old\nbob@example.com|{PLAIN}keep\n")
    assert env.run("setup", "email", "update", "alice@example.com", input="new\n").returncode == 0
    lines = accounts(env).splitlines()
    assert lines[0] == "# users" and lines[2] == "bob@example.com|{PLAIN}keep"
    assert lines[1].startswith("alice@example.com|{SHA512-CRYPT}$6$")


def test_del_and_list(env):
    env.write(ACCOUNTS, "alice@example.com|{PLAIN}a\nbob@example.com|{PLAIN}b\n")
    env.write("postfix-virtual.cf", "info@example.com alice@example.com\n")
    listed = env.run("setup", "email", "list")
    assert listed.stdout.splitlines() == ["* alice@example.com  [ aliases: info@example.com ]", "* bob@example.com"]
    assert env.run("setup", "email", "del", "-y", "bob@example.com").returncode == 0
    assert accounts(env) == "alice@example.com|{PLAIN}a\n"
    gone = env.run("setup", "email", "del", "bob@example.com")
    assert gone.returncode == 1 and "no such account: bob@example.com" in gone.stderr


def test_bad_input_is_refused_and_changes_nothing(env):
    env.write(ACCOUNTS, "alice@example.com|{PLAIN}a\n")
    for args, stdin, message in ((["no-at-sign"], "pw\n", "not an email address"),
                                 (["a|b@example.com"], "pw\n", "must not contain '|'"),
                                 (["c@exa mple.com"], "pw\n", "must not contain a space"),
                                 (["c@example.com"], "\n", "password is empty")):
        result = env.run("setup", "email", "add", *args, input=stdin)
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)
    assert accounts(env) == "alice@example.com|{PLAIN}a\n"


def submission_env(env, tmp_path):
    env.vars.update(ENABLE_SUBMISSION="1", RELAYKIT_DOVECOT_DIR=str(tmp_path / "dovecot"))
    env.write(ACCOUNTS, "alice@example.com|{PLAIN}a\n")


def test_configure_without_a_certificate_makes_a_self_signed_one_and_says_so_loudly(env, tmp_path):
    submission_env(env, tmp_path)
    result = env.configure()
    assert "SELF-SIGNED" in result.stderr
    key = env.postfix.config_dir / "tls" / "selfsigned-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert env.postfix.param("smtpd_tls_key_file") == str(key)
    again = env.configure()  # made once, then reused
    assert "SELF-SIGNED" not in again.stderr
    assert env.postfix.check() == ""  # postfix check is happy with the services and files


def test_configure_writes_services_dovecot_files_and_removes_them_when_disabled(env, tmp_path):
    submission_env(env, tmp_path)
    env.configure()
    services = " ".join(env.postfix.run("postconf", "-M").stdout.split())
    assert "submission inet n - n - - smtpd" in services and "smtpd_tls_wrappermode=yes" in services
    passwd = tmp_path / "dovecot" / "passwd"
    assert passwd.read_text() == "alice@example.com:{PLAIN}a\n"
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o640 and passwd.stat().st_gid == grp.getgrnam("dovecot").gr_gid
    assert env.postfix.query(env.postfix.param("smtpd_sender_login_maps"), "alice@example.com") == "alice@example.com"
    env.vars["ENABLE_SUBMISSION"] = "0"
    env.configure()
    services = " ".join(env.postfix.run("postconf", "-M").stdout.split())
    assert "submission" not in services and env.postfix.explicit("smtpd_sasl_type") is None


def test_a_bad_variable_is_named_and_changes_nothing(env, tmp_path):
    submission_env(env, tmp_path)
    before = (env.postfix.config_dir / "main.cf").read_text()
    result = env.run("relaykit", "configure", PERMIT_NETWORKS="10.0.0.0/8 not-a-network")
    assert result.returncode == 1 and result.stderr.startswith("error: PERMIT_NETWORKS: ")
    assert (env.postfix.config_dir / "main.cf").read_text() == before


def test_alias_add_appends_targets_and_del_removes_them(env):
    env.write("postfix-virtual.cf", "# aliases\nsales@example.com bob@example.com\n")
    assert env.run("setup", "alias", "add", "sales@example.com", "alice@example.com").returncode == 0
    assert env.run("setup", "alias", "add", "@other.example", "alice@example.com").returncode == 0
    virtual = env.config_dir / "postfix-virtual.cf"
    assert virtual.read_text() == ("# aliases\nsales@example.com bob@example.com,alice@example.com\n"
                                   "@other.example alice@example.com\n")
    twice = env.run("setup", "alias", "add", "sales@example.com", "alice@example.com")
    assert twice.returncode == 1 and "already goes to" in twice.stderr
    assert env.run("setup", "alias", "del", "sales@example.com", "bob@example.com").returncode == 0
    assert env.run("setup", "alias", "del", "@other.example", "alice@example.com").returncode == 0
    assert virtual.read_text() == "# aliases\nsales@example.com alice@example.com\n"
    assert env.run("setup", "alias", "list").stdout == "* sales@example.com alice@example.com\n"
