"""`relaykit configure` against a real Postfix config: the DMS relay scenarios, checked in
the files, in `postconf`, and in what Postfix itself looks up (`postmap -q`)."""

from __future__ import annotations

import stat

import pytest

ACCOUNTS = """\
# DMS accounts
user1@domainone.tld|{SHA512-CRYPT}$6$abc$def
user2@domaintwo.tld|{SHA512-CRYPT}$6$abc$def
user3@domainthree.tld|{SHA512-CRYPT}$6$abc$def
"""
VIRTUAL = """\
alias1@domainfour.tld user1@domainone.tld
@domainfive.tld user2@domaintwo.tld,user1@domainone.tld
"""
RELAYMAP = """\
# explicit relays
@domaintwo.tld        [other.relay.host]:9925

# opt out
@domainthree.tld
"""
SASL = """\
@domaintwo.tld  smtp_user_2:smtp_password_2
[other.relay.host]:9925 by_relay_user:by_relay_password
"""
DMS_ENV = {"RELAY_HOST": "default.relay.host", "RELAY_PORT": "2525",
           "RELAY_USER": "smtp_user", "RELAY_PASSWORD": "smtp_password"}


@pytest.fixture
def dms(env):
    """The docker-mailserver relay test setup (test/config/relay-hosts)."""
    env.write("postfix-accounts.cf", ACCOUNTS)
    env.write("postfix-virtual.cf", VIRTUAL)
    env.write("postfix-relaymap.cf", RELAYMAP)
    env.write("postfix-sasl-password.cf", SASL)
    env.vars.update(DMS_ENV)
    return env


def test_relayhost_map_has_explicit_lines_then_default_relay_for_managed_domains(dms):
    dms.configure()
    assert dms.table("relayhost_map").splitlines() == [
        "@domaintwo.tld [other.relay.host]:9925",
        "@domainfive.tld [default.relay.host]:2525",
        "@domainfour.tld [default.relay.host]:2525",
        "@domainone.tld [default.relay.host]:2525",
    ]


def test_postfix_resolves_each_sender_to_its_relay(dms):
    dms.configure()
    assert dms.lookup("relayhost_map", "@domainone.tld") == "[default.relay.host]:2525"
    assert dms.lookup("relayhost_map", "@domaintwo.tld") == "[other.relay.host]:9925"
    assert dms.lookup("relayhost_map", "@domainfive.tld") == "[default.relay.host]:2525"


def test_opted_out_domain_reaches_no_relay(dms):
    dms.configure()
    assert "domainthree" not in dms.table("relayhost_map")
    assert dms.lookup("relayhost_map", "@domainthree.tld") is None


def test_credentials_by_domain_by_relay_and_from_env(dms):
    dms.configure()
    assert dms.table("sasl_passwd").splitlines() == [
        "@domaintwo.tld smtp_user_2:smtp_password_2",
        "[other.relay.host]:9925 by_relay_user:by_relay_password",
        "[default.relay.host]:2525 smtp_user:smtp_password",
    ]
    assert dms.lookup("sasl_passwd", "@domaintwo.tld") == "smtp_user_2:smtp_password_2"
    assert dms.lookup("sasl_passwd", "[default.relay.host]:2525") == "smtp_user:smtp_password"


def test_sasl_passwd_and_its_index_are_0600_root(dms):
    dms.configure()
    for name in ("sasl_passwd", "sasl_passwd.lmdb"):
        info = (dms.postfix.config_dir / name).stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, name
        assert info.st_uid == 0


def test_main_cf_parameters(dms):
    dms.configure()
    pf, directory = dms.postfix, dms.postfix.config_dir
    assert pf.param("sender_dependent_relayhost_maps") == f"lmdb:{directory}/relayhost_map"
    assert pf.param("smtp_sasl_password_maps") == f"lmdb:{directory}/sasl_passwd"
    assert pf.param("smtp_sasl_auth_enable") == "yes"
    assert pf.param("smtp_sasl_security_options") == "noplaintext, noanonymous"  # never PLAIN without TLS
    assert pf.param("smtp_sender_dependent_authentication") == "yes"
    assert pf.explicit("relayhost") is None  # only DEFAULT_RELAY_HOST sets it
    assert pf.check() == ""


def test_every_relay_requires_tls_and_direct_delivery_stays_opportunistic(dms):
    dms.configure()
    assert dms.lookup("tls_policy", "[default.relay.host]:2525") == "encrypt"
    assert dms.lookup("tls_policy", "[other.relay.host]:9925") == "encrypt"
    assert dms.lookup("tls_policy", "gmail.com") is None
    assert dms.postfix.param("smtp_tls_security_level") == "may"


def test_default_relay_host_becomes_relayhost_with_env_credentials(env):
    env.vars.update(DEFAULT_RELAY_HOST="[mail.relay.test]:587", RELAY_USER="u", RELAY_PASSWORD="p")
    env.configure()
    assert env.postfix.param("relayhost") == "[mail.relay.test]:587"
    assert env.table("sasl_passwd") == "[mail.relay.test]:587 u:p\n"
    assert env.table("relayhost_map") == ""
    assert env.lookup("tls_policy", "[mail.relay.test]:587") == "encrypt"


def test_default_relay_host_wins_for_credentials_over_relay_host(dms):
    dms.vars["DEFAULT_RELAY_HOST"] = "[smarthost.test]:587"
    dms.configure()
    assert dms.postfix.param("relayhost") == "[smarthost.test]:587"
    assert "[smarthost.test]:587 smtp_user:smtp_password" in dms.table("sasl_passwd").splitlines()
    assert "[default.relay.host]:2525" not in dms.table("sasl_passwd")


def test_relay_port_defaults_to_25(env):
    env.write("postfix-accounts.cf", "a@example.com|{PLAIN}x\n")
    env.vars["RELAY_HOST"] = "relay.test"
    env.configure()
    assert env.table("relayhost_map") == "@example.com [relay.test]:25\n"


def test_relaymap_alone_routes_only_its_senders(env):
    env.write("postfix-accounts.cf", "a@example.com|{PLAIN}x\nb@other.com|{PLAIN}x\n")
    env.write("postfix-relaymap.cf", "@example.com [relay.test]:587\n")
    env.configure()
    assert env.table("relayhost_map") == "@example.com [relay.test]:587\n"
    assert env.postfix.explicit("relayhost") is None


def test_no_relay_configured_sets_nothing(env):
    env.write("postfix-accounts.cf", "a@example.com|{PLAIN}x\n")
    before = (env.postfix.config_dir / "main.cf").read_text()
    env.configure()
    assert (env.postfix.config_dir / "main.cf").read_text() == before
    assert not (env.postfix.config_dir / "relayhost_map").exists()


def test_configure_twice_gives_the_same_files(dms):
    dms.configure()
    directory = dms.postfix.config_dir
    first = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
    dms.configure()
    assert {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()} == first


def test_a_removed_line_disappears_from_the_output(dms):
    dms.configure()
    dms.write("postfix-relaymap.cf", "@domainthree.tld\n")
    dms.write("postfix-sasl-password.cf", "")
    dms.configure()
    assert "other.relay.host" not in dms.table("relayhost_map")
    assert "@domaintwo.tld [default.relay.host]:2525" in dms.table("relayhost_map").splitlines()
    assert dms.table("sasl_passwd") == "[default.relay.host]:2525 smtp_user:smtp_password\n"
    assert dms.lookup("relayhost_map", "@domaintwo.tld") == "[default.relay.host]:2525"


def test_removing_every_relay_setting_unsets_what_relaykit_set(env):
    env.write("postfix-relaymap.cf", "@example.com [relay.test]:587\n")
    env.configure(DEFAULT_RELAY_HOST="[smarthost.test]:587")
    (env.config_dir / "postfix-relaymap.cf").unlink()
    env.configure()
    for name in ("relayhost", "sender_dependent_relayhost_maps", "smtp_sasl_password_maps",
                 "smtp_sasl_auth_enable", "smtp_tls_policy_maps"):
        assert env.postfix.explicit(name) is None, name
    assert not (env.postfix.config_dir / "sasl_passwd").exists()


def test_a_parameter_the_administrator_set_is_kept(env):
    env.postfix.postconf({"relayhost": "[admin.choice.test]:25"})
    env.configure()
    assert env.postfix.param("relayhost") == "[admin.choice.test]:25"


@pytest.mark.parametrize("kind", ["hash", "lmdb", "texthash"])
def test_table_type_is_configurable(env, kind):
    env.write("postfix-relaymap.cf", "@example.com [relay.test]:587\n")
    env.configure(RELAYKIT_TABLE_TYPE=kind)
    assert env.postfix.param("sender_dependent_relayhost_maps").startswith(f"{kind}:")
    assert env.lookup("relayhost_map", "@example.com") == "[relay.test]:587"


def test_postfix_default_database_type_is_the_default(env):
    env.postfix.postconf({"default_database_type": "hash"})
    env.write("postfix-relaymap.cf", "@example.com [relay.test]:587\n")
    env.configure()
    assert env.postfix.param("sender_dependent_relayhost_maps").startswith("hash:")
    assert (env.postfix.config_dir / "relayhost_map.db").exists()


def test_idn_domains_are_written_as_punycode(env):
    env.write("postfix-relaymap.cf", "@bücher.example [relay.test]:587\n")
    env.configure()
    assert env.lookup("relayhost_map", "@xn--bcher-kva.example") == "[relay.test]:587"


def test_secret_files_and_dotenv(env, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    env.write("relaykit.env", "RELAY_HOST=relay.test\nRELAY_PORT=2525\nRELAY_USER=envfile\n")
    env.write("postfix-accounts.cf", "a@example.com|{PLAIN}x\n")
    env.configure(RELAY_PASSWORD__FILE=str(secret), RELAY_PORT="587")  # real env wins
    assert env.table("sasl_passwd") == "[relay.test]:587 envfile:from-file\n"
    assert env.table("relayhost_map") == "@example.com [relay.test]:587\n"


def test_override_hostname_sets_myhostname_and_unsetting_it_restores_the_default(env):
    env.postfix.run("postconf", "-X", "myhostname")  # as the image's main.cf: no myhostname
    env.configure(OVERRIDE_HOSTNAME="Mail.Example.COM.")
    assert env.postfix.explicit("myhostname") == "mail.example.com"
    env.configure()  # Postfix's default again: the machine's (container's) hostname
    assert env.postfix.explicit("myhostname") is None
    assert env.postfix.param("myhostname") == env.postfix.run("postconf", "-dh", "myhostname").stdout.strip()


def test_an_override_hostname_that_is_not_a_hostname_is_refused(env):
    result = env.run("relaykit", "configure", OVERRIDE_HOSTNAME="mail example.com")
    assert result.returncode == 1
    assert "OVERRIDE_HOSTNAME" in result.stderr


def test_unsetting_override_hostname_gives_back_a_hostname_set_by_hand(env):
    assert env.postfix.explicit("myhostname") == "relaykit.test"  # the test instance's, by hand
    env.configure(OVERRIDE_HOSTNAME="mail.example.com")
    assert env.postfix.explicit("myhostname") == "mail.example.com"
    env.configure()
    assert env.postfix.explicit("myhostname") == "relaykit.test"


def test_configure_leaves_without_teardown_and_its_piped_output_arrives_whole(env):
    """`relaykit configure` ends with os._exit once its output is flushed (cli/main._leave):
    the summary line and every warning still reach a pipe, and the exit status is 0."""
    env.write("postfix-relaymap.cf", "".join(f"@d{n}.test [relay{n % 2}.test]:587\n" for n in range(2000)))
    env.write("postfix-sasl-password.cf", "@nowhere.test u:p\n")  # a warning: its domain has no route
    result = env.configure(LOG_LEVEL="debug")
    lines = result.stderr.splitlines()
    assert any("1000 sender(s)" in line for line in lines), result.stderr[-2000:]
    assert sum(" -> [relay" in line for line in lines) == 2000  # the debug line of every sender
    assert result.stderr.endswith("\n")
