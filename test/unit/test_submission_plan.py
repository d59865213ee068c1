"""The submission plan is pure: settings + accounts/aliases in, services/params/tables out."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaykit.model.entries import Account, Alias, ConfigFiles, Origin
from relaykit.edges.dovecot import Layout, render_config, render_passwd, render_sql
from relaykit.edges.editor import replace_key
from relaykit.errors import ConfigError
from relaykit.core.plan import build as build_relay
from relaykit.model.plan import combine
from relaykit.secret import Secret
from relaykit.model.settings import Settings
from relaykit.core.submission import build, docker_networks
from relaykit.inputs.settings import load_submission as load_settings
from relaykit.model.settings import SubmissionSettings

O = Origin("postfix-accounts.cf", 3)
FILES = ConfigFiles(
    accounts=(Account("alice@one.example", Secret("{PLAIN}a"), O), Account("Bob@two.example", Secret("{PLAIN}b"), O)),
    aliases=(Alias("info@one.example", ("alice@one.example", "bob@two.example"), O),
             Alias("@three.example", ("bob@two.example",), O)),
)


def settings(**kw) -> Settings:
    return Settings(mail_config=Path("/etc/postfix"), submission=SubmissionSettings(**kw))


def test_disabled_submission_plans_nothing():
    plan = build(settings(), FILES, "lmdb")
    assert not plan.configured and plan.tables == ()


def test_users_may_send_as_themselves_and_their_aliases_only():
    plan = build(settings(enabled=True), FILES, "lmdb")
    assert plan.table("sender_login").lines == (
        "alice@one.example alice@one.example",
        "bob@two.example bob@two.example",
        "info@one.example alice@one.example,bob@two.example",
        "@three.example bob@two.example",  # a catch-all gives its targets the whole domain
    )
    assert plan.params["smtpd_sender_login_maps"] == "lmdb:/etc/postfix/sender_login"


def test_submission_services_require_tls_and_sasl_and_refuse_everyone_else():
    plan = build(settings(enabled=True), FILES, "lmdb")
    services = {s.name: dict(s.options) for s in plan.services}
    assert set(services) == {"submission", "submissions"}
    assert services["submission"]["smtpd_tls_security_level"] == "encrypt"
    assert services["submissions"]["smtpd_tls_wrappermode"] == "yes"
    for options in services.values():
        assert options["smtpd_sasl_auth_enable"] == "yes"
        assert options["smtpd_relay_restrictions"] == "permit_sasl_authenticated,reject"
        # the null sender first (reject_sender_login_mismatch skips it), then the login's own addresses
        assert options["smtpd_sender_restrictions"].startswith(
            "check_sender_access,inline:{<>=REJECT},reject_sender_login_mismatch,")
    assert plan.params["smtpd_tls_auth_only"] == "yes"
    assert plan.params["smtpd_sasl_path"] == "private/auth"
    assert "smtpd_sasl_auth_enable" not in plan.params  # no AUTH on port 25
    assert plan.params["mynetworks"] == "127.0.0.1/32 [::1]/128"


def test_listen_address_and_ports_name_the_services():
    plan = build(settings(enabled=True, address="127.0.0.1", submission_port=2587, submissions_port=None),
                 FILES, "lmdb")
    assert [s.key for s in plan.services] == ["127.0.0.1:2587/inet"]
    assert dict(plan.services[0].options)["syslog_name"] == "postfix/submission"
    plan = build(settings(enabled=True, submission_port=2587), FILES, "lmdb")
    assert [s.key for s in plan.services] == ["2587/inet", "submissions/inet"]


def test_trusted_networks_alone_only_set_mynetworks():
    plan = build(settings(permit_networks=("10.0.0.0/8",)), FILES, "lmdb", ("172.16.0.0/12",))
    assert plan.params == {"mynetworks": "127.0.0.1/32 [::1]/128 10.0.0.0/8 172.16.0.0/12"}
    assert plan.services == ()


def test_combines_with_the_relay_plan():
    relay = build_relay(Settings(relay_host="relay.test"), FILES, "lmdb")
    plan = combine(relay, build(settings(enabled=True), FILES, "lmdb"))
    assert {t.name for t in plan.tables} == {"relayhost_map", "sasl_passwd", "tls_policy", "relay_transport",
                                             "sender_login"}


def test_no_accounts_warns():
    plan = build(settings(enabled=True), ConfigFiles(), "lmdb")
    assert any("no account" in w for w in plan.warnings)


def test_settings_from_the_environment():
    sub = load_settings({"ENABLE_SUBMISSION": "1", "PERMIT_NETWORKS": "192.168.0.0/16, 2001:db8::/32 10.1.2.3",
                         "SUBMISSIONS_PORT": "0", "PERMIT_DOCKER": "network"}, {})
    assert sub.enabled and sub.submission_port == 587 and sub.submissions_port is None
    assert sub.permit_networks == ("192.168.0.0/16", "[2001:db8::]/32", "10.1.2.3/32")
    assert sub.cert_file is None  # self-signed


@pytest.mark.parametrize("env, name", [
    ({"PERMIT_NETWORKS": "10.0.0.0/33"}, "PERMIT_NETWORKS"),
    ({"PERMIT_DOCKER": "everything"}, "PERMIT_DOCKER"),
    ({"ENABLE_SUBMISSION": "maybe"}, "ENABLE_SUBMISSION"),
    ({"SUBMISSION_PORT": "70000"}, "SUBMISSION_PORT"),
    ({"SSL_TYPE": "letsencrypt"}, "SSL_TYPE"),
    ({"SSL_TYPE": "manual", "SSL_CERT_PATH": "/etc/hostname"}, "SSL_KEY_PATH"),
    ({"SSL_CERT_PATH": "/nonexistent/cert.pem", "SSL_KEY_PATH": "/etc/hostname"}, "SSL_CERT_PATH"),
])
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(ConfigError) as error:
        load_settings(env, {})
    assert str(error.value).startswith(f"{name}: ")


IP_ADDR = [
    {"ifname": "lo", "flags": ["LOOPBACK", "UP"], "addr_info": [{"family": "inet", "local": "127.0.0.1",
                                                                  "prefixlen": 8, "scope": "host"}]},
    {"ifname": "eth0", "flags": ["UP"], "addr_info": [
        {"family": "inet", "local": "172.18.0.5", "prefixlen": 16, "scope": "global"},
        {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"}]},
    {"ifname": "eth1", "flags": ["UP"], "addr_info": [{"family": "inet", "local": "10.5.0.7", "prefixlen": 24,
                                                       "scope": "global"}]},
]


@pytest.mark.parametrize("mode, expected", [
    ("none", ()),
    ("network", ("172.16.0.0/12",)),
    ("container", ("172.18.0.5/32", "10.5.0.7/32")),
    ("host", ("172.18.0.0/16", "10.5.0.0/16")),
    ("connected-networks", ("172.18.0.0/16", "10.5.0.0/24")),
])
def test_permit_docker_modes(mode, expected):
    assert docker_networks(mode, IP_ADDR) == expected


# `ip -j addr show` of a container on a dual-stack Docker network (the keys ip prints, life
# times left out): lo with ::1, eth0 with a global IPv6 (ULA), its link-local, a tentative
# address (duplicate detection still running, as at a container's start) and one whose
# detection failed, and a second network with a public IPv6 prefix.
IP_ADDR_DUAL_STACK = [
    {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"], "link_type": "loopback", "addr_info": [
        {"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host", "label": "lo"},
        {"family": "inet6", "local": "::1", "prefixlen": 128, "scope": "host"}]},
    {"ifindex": 17, "link_index": 18, "ifname": "eth0", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
     "link_type": "ether", "link_netnsid": 0, "addr_info": [
         {"family": "inet", "local": "172.18.0.5", "prefixlen": 16, "broadcast": "172.18.255.255",
          "scope": "global", "label": "eth0"},
         {"family": "inet6", "local": "fd00:dead:beef::5", "prefixlen": 64, "scope": "global", "nodad": True},
         {"family": "inet6", "local": "fd00:cafe::5", "prefixlen": 64, "scope": "global", "tentative": True},
         {"family": "inet6", "local": "fd00:bad::5", "prefixlen": 64, "scope": "global", "tentative": True,
          "dadfailed": True},
         {"family": "inet6", "local": "fe80::42:acff:fe12:5", "prefixlen": 64, "scope": "link", "nodad": True}]},
    {"ifindex": 19, "ifname": "eth1", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "addr_info": [
        {"family": "inet6", "local": "2001:db8:1:2::7", "prefixlen": 64, "scope": "global"},
        {"family": "inet", "local": "169.254.3.3", "prefixlen": 16, "scope": "global"}]},  # link-local, however scoped
]


@pytest.mark.parametrize("mode, expected", [
    ("none", ()),
    ("network", ("172.16.0.0/12",)),
    ("container", ("172.18.0.5/32", "[fd00:dead:beef::5]/128", "[fd00:cafe::5]/128", "[2001:db8:1:2::7]/128")),
    ("host", ("172.18.0.0/16", "[fd00:dead:beef::]/64", "[fd00:cafe::]/64", "[2001:db8:1:2::]/64")),
    ("connected-networks", ("172.18.0.0/16", "[fd00:dead:beef::]/64", "[fd00:cafe::]/64", "[2001:db8:1:2::]/64")),
])
def test_permit_docker_includes_ipv6_but_never_loopback_or_link_local(mode, expected):
    assert docker_networks(mode, IP_ADDR_DUAL_STACK) == expected


def test_permit_docker_ipv6_networks_are_what_postfix_reads_in_mynetworks():
    networks = docker_networks("connected-networks", IP_ADDR_DUAL_STACK)
    settings = Settings(mail_config=Path("/etc/postfix"), config_dir=Path("/tmp/dms"),
                        submission=SubmissionSettings(enabled=False, permit_docker="connected-networks"))
    plan = build(settings, ConfigFiles(), "lmdb", networks)
    assert plan.params["mynetworks"] == ("127.0.0.1/32 [::1]/128 172.18.0.0/16 [fd00:dead:beef::]/64 "
                                         "[fd00:cafe::]/64 [2001:db8:1:2::]/64")


def test_editor_matches_an_account_key_ended_by_a_bar():
    data = b"a@x.test|{SHA512-CRYPT}old\nab@x.test|{SHA512-CRYPT}keep\n"
    assert replace_key(data, "a@x.test", "a@x.test|{SHA512-CRYPT}new") == \
        b"a@x.test|{SHA512-CRYPT}new\nab@x.test|{SHA512-CRYPT}keep\n"
    assert replace_key(data, "A@X.test", None) == b"ab@x.test|{SHA512-CRYPT}keep\n"


def test_dovecot_passwd_file_is_lower_cased_and_refuses_what_would_shift_its_fields():
    assert render_passwd(FILES.accounts) == "alice@one.example:{PLAIN}a\nbob@two.example:{PLAIN}b\n"
    with pytest.raises(ConfigError) as error:
        render_passwd([Account("c@x.test", Secret("{PLAIN}a:b"), O)])
    assert "postfix-accounts.cf:3" in str(error.value) and "a:b" not in str(error.value)


def test_dovecot_config_is_auth_only_and_private():
    text = render_config(Layout(Path("/run/rk/dovecot"), Path("/var/spool/postfix/private/auth")))
    assert "\nprotocols =\n" in text and "base_dir = /run/rk/dovecot/run" in text
    assert "unix_listener /var/spool/postfix/private/auth {" in text
    assert "passwd-file" in text and "/run/rk/dovecot/passwd" in text


def test_an_account_dovecot_could_not_read_fails_the_plan():
    bad = ConfigFiles(accounts=(Account("c@x.test", Secret("{PLAIN}a b"), O),))
    with pytest.raises(ConfigError, match="postfix-accounts.cf:3"):
        build(settings(enabled=True), bad, "lmdb")


# -- the database store: Dovecot's sql passdb, Postfix's login map from the database ----

def test_with_the_database_store_logins_come_from_its_lookup_not_from_files():
    plan = build(settings(enabled=True), ConfigFiles(), "lmdb", login_map="proxy:pgsql:/etc/postfix/logins.cf")
    assert plan.params["smtpd_sender_login_maps"] == "proxy:pgsql:/etc/postfix/logins.cf"
    assert plan.tables == () and plan.warnings == ()  # no sender_login file, no "no account"
    assert {s.name for s in plan.services} == {"submission", "submissions"}


def test_dovecot_config_for_the_database_store_uses_an_sql_passdb():
    text = render_config(Layout(Path("/run/rk/dovecot"), Path("/var/spool/postfix/private/auth")), sql=True)
    assert "driver = sql" in text and "args = /run/rk/dovecot/dovecot-sql.conf.ext" in text
    assert "driver = passwd-file" not in text


@pytest.mark.parametrize("hosts, expected", [
    ("inet:db.example:5433", "host='db.example' port='5433' dbname"),
    ("inet:::1:5432", "host='::1' port='5432' dbname"),
    ("unix:/var/run/postgresql", "host='/var/run/postgresql' dbname"),
])
def test_dovecot_sql_connection_has_each_host_form(hosts, expected):
    text = render_sql({"hosts": hosts, "user": "reader", "password": "pw", "dbname": "mail"})
    assert f'connect = "{expected}' in text
    assert "WHERE login = '%Lu'" in text  # Dovecot escapes %Lu for SQL itself


def test_dovecot_sql_connection_quotes_the_password_for_libpq_then_for_dovecot():
    text = render_sql({"hosts": "inet:db:5432", "user": "u", "password": 'p\'w\\x "y" #z', "dbname": "d"})
    libpq = r"""password='p\'w\\x "y" #z'"""  # conninfo: \ and ' escaped, single quotes
    dovecot = libpq.replace("\\", "\\\\").replace('"', '\\"')  # then Dovecot's "..." string
    assert f'{dovecot}"\n' in text


def test_dovecot_sql_connection_refuses_a_newline():
    with pytest.raises(ConfigError, match="RELAYKIT_POSTFIX_DATABASE_URL"):
        render_sql({"hosts": "inet:db:5432", "user": "u", "password": "a\nb", "dbname": "d"})
