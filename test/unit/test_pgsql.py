"""The PostgreSQL plan (pure): which lookup files and main.cf parameters, from settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaykit.core import pgsql
from relaykit.inputs import validate
from relaykit.errors import ConfigError
from relaykit.secret import Secret
from relaykit.inputs.settings import load
from relaykit.model.settings import Settings

ADMIN = "postgresql://admin:adm%21n@db.internal:6543/relaykit"
READER = "postgresql://reader:r%27e%5Cad@db.internal:6543/relaykit"


def settings(**kw) -> Settings:
    base = dict(mail_config=Path("/etc/pf"), database_url=Secret(ADMIN), postfix_database_url=Secret(READER))
    if kw.get("default_relay_host"):  # parsed, as inputs/settings.load does
        kw["default_relay_hops"] = validate.nexthops(kw["default_relay_host"])
    return Settings(**{**base, **kw})


def test_postfix_asks_the_database_for_routes_credentials_tls_and_sender_logins():
    plan = pgsql.build(settings(), "lmdb")
    assert plan.params["sender_dependent_relayhost_maps"] == "proxy:pgsql:/etc/pf/pgsql-sender-relays.cf"
    assert plan.params["smtp_sasl_password_maps"] == "proxy:pgsql:/etc/pf/pgsql-sasl-passwords.cf, lmdb:/etc/pf/sasl_passwd"
    # this node's table first: its RELAYKIT_TLS_SECURE `secure` must win over the view's `encrypt`
    assert plan.params["smtp_tls_policy_maps"] == "lmdb:/etc/pf/tls_policy, proxy:pgsql:/etc/pf/pgsql-tls-policies.cf"
    assert plan.params["smtpd_sender_login_maps"] == "proxy:pgsql:/etc/pf/pgsql-sender-logins.cf"
    assert plan.params["smtp_sender_dependent_authentication"] == "yes"
    assert plan.table("relayhost_map") is None
    assert plan.warnings == ()


def test_lookup_files_hold_the_reader_password_as_its_own_setting_mode_0640_postfix():
    table = pgsql.build(settings(), "lmdb").table(pgsql.SENDER_RELAYS)
    assert (table.secret, table.group, table.indexed) == (True, "postfix", False)
    assert table.lines[1:5] == ("hosts = inet:db.internal:6543", "user = reader", "password = r'e\\ad",
                                "dbname = relaykit")
    assert "reader" in table.text() and "admin" not in table.text()
    assert "'%s'" in table.lines[-1] and table.lines[-1].startswith("query = SELECT")


def test_this_nodes_relays_are_literals_of_its_own_sender_queries():
    plan = pgsql.build(settings(relay_host="relay.test", relay_port=587, default_relay_host="[dr.test]:465"),
                       "hash")
    assert plan.params["sender_dependent_relayhost_maps"] == "proxy:pgsql:/etc/pf/pgsql-sender-relays.cf"
    for name in (pgsql.SENDER_RELAYS, pgsql.SENDER_TRANSPORTS):
        assert "relaykit.sender_decision(relaykit.postfix_key('%s'), '[dr.test]:465', '[relay.test]:587')" \
            in plan.table(name).text()
    assert plan.table("tls_policy").lines == ("[dr.test]:465 encrypt", "[relay.test]:587 encrypt")


def test_without_a_reader_url_postfix_uses_the_admin_one_with_a_warning():
    plan = pgsql.build(settings(postfix_database_url=None), "hash")
    assert "user = admin" in plan.table(pgsql.SENDER_RELAYS).lines
    assert "RELAYKIT_POSTFIX_DATABASE_URL" in plan.warnings[0]


@pytest.mark.parametrize("url", ["mysql://u:p@h/db", "host=db dbname=x", "postgresql://u:p@h:99999/db",
                                 "postgresql://:p@h/db"])
def test_a_bad_reader_url_is_a_config_error_naming_the_variable(url):
    with pytest.raises(ConfigError) as error:
        pgsql.build(settings(postfix_database_url=Secret(url)), "hash")
    assert error.value.origin == "RELAYKIT_POSTFIX_DATABASE_URL"


def test_settings_read_the_database_url_from_a_file_and_refuse_both(tmp_path):
    secret = tmp_path / "url"
    secret.write_text(ADMIN + "\n")
    assert load({"RELAYKIT_DATABASE_URL_FILE": str(secret)}).database_url == Secret(ADMIN)
    with pytest.raises(ConfigError) as error:
        load({"RELAYKIT_DATABASE_URL_FILE": str(secret), "RELAYKIT_DATABASE_URL": ADMIN})
    assert error.value.origin == "RELAYKIT_DATABASE_URL_FILE"
    assert ADMIN not in repr(load({"RELAYKIT_DATABASE_URL": ADMIN}))


def test_every_database_route_has_its_transport_and_the_wrappermode_client_always_exists():
    plan = pgsql.build(settings(), "lmdb")
    assert plan.params["sender_dependent_default_transport_maps"] == "proxy:pgsql:/etc/pf/pgsql-sender-transports.cf"
    assert "relaykit.sender_decision(relaykit.postfix_key('%s'), '', '')" in plan.table(pgsql.SENDER_TRANSPORTS).text()
    # relays by recipient domain: transport_maps, with their by-relay clients
    assert plan.params["transport_maps"] == "proxy:pgsql:/etc/pf/pgsql-recipient-transports.cf"
    rcpt = [s for s in plan.services if s.name in ("relaykit_rcpt", "relaykit_rcpt_smtps")]
    assert len(rcpt) == 2 and all(("smtp_sender_dependent_authentication", "no") in s.options for s in rcpt)
    smtps = [s for s in plan.services if s.name == "relaykit_smtps"]
    assert len(smtps) == 1 and ("smtp_tls_wrappermode", "yes") in smtps[0].options
    # no DEFAULT_RELAY_HOST: what no route takes goes to the MX by a client without SASL
    assert plan.params["default_transport"] == "relaykit_direct"
    direct = [s for s in plan.services if s.name == "relaykit_direct"]
    assert len(direct) == 1 and ("smtp_sasl_auth_enable", "no") in direct[0].options
    by_relay = [s for s in plan.services if s.name in ("relaykit_relay", "relaykit_relay_smtps")]
    assert len(by_relay) == 2 and all(("smtp_sender_dependent_authentication", "no") in s.options for s in by_relay)


def test_default_relay_host_on_465_makes_wrappermode_the_default_transport_without_node_files():
    plan = pgsql.build(settings(default_relay_host="[smtp.example.com]:465"), "lmdb")
    assert plan.params["default_transport"] == "relaykit_smtps"
    assert plan.params["relayhost"] == "[smtp.example.com]:465"
    # the file store's sender_transport tables are not written here, so never referenced
    assert "sender_transport" not in plan.params["sender_dependent_default_transport_maps"].replace(
        "pgsql-sender-transports", "")
    assert len([s for s in plan.services if s.name == "relaykit_smtps"]) == 1


def test_tls_secure_relays_get_secure_on_this_node_and_it_wins_over_the_databases_encrypt(tmp_path):
    """RELAYKIT_TLS_SECURE names relays that may be routed in the database: this node's
    tls_policy says `secure` for them, and is looked up before the database's view (whose
    default is `encrypt` for every relay host), so the stricter level is the one applied."""
    plan = pgsql.build(load({"MAIL_CONFIG": "/etc/pf", "RELAYKIT_CONFIG_DIR": str(tmp_path),
                             "RELAYKIT_DATABASE_URL": ADMIN, "RELAYKIT_POSTFIX_DATABASE_URL": READER,
                             "RELAYKIT_TLS_SECURE": "[smtp.relay.test]:587"}), "lmdb")
    assert "[smtp.relay.test]:587 secure" in plan.table("tls_policy").lines
    assert plan.params["smtp_tls_policy_maps"] == "lmdb:/etc/pf/tls_policy, proxy:pgsql:/etc/pf/pgsql-tls-policies.cf"
    assert not any("RELAYKIT_TLS_SECURE" in w for w in plan.warnings)


def test_the_database_views_say_what_the_model_decides():
    """The SQL views restate two rules of model/nexthop.py, because Postfix asks the
    database directly: the default TLS level of every relay host, and the implicit-TLS
    ports of sender_transports. They must agree with the one place that decides."""
    from relaykit.model.nexthop import ENCRYPT, IMPLICIT_TLS_PORTS
    from relaykit.stores.db import migrations

    sql = {name: Path(path).read_text() for _, name, path in migrations()}
    assert f"SELECT nexthop, '{ENCRYPT}'::text AS policy FROM relaykit.relay_hosts" in sql["001_schema.sql"]
    ports = ", ".join(f"'{port}'" for port in IMPLICIT_TLS_PORTS)
    assert f"IN ({ports})" in sql["004_sender_transports.sql"]
    assert f"IN ({ports})" in sql["006_rules_parity.sql"]  # relaykit.implicit_tls
