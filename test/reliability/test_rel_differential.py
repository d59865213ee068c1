"""Differential: what `setup relay explain` says against what Postfix itself decides.

hypothesis generates whole configurations (domains, addresses, wildcards, opt-outs at
every level, recipient rules, failover lists, credentials by sender and by relay,
DEFAULT_RELAY_HOST and RELAY_HOST in every accepted spelling, 465/2465/smtps:/smtp:),
runs the real `relaykit configure`, and for every sender and recipient compares the
route explain reads (core/routing.py, the code behind explain, list and `setup relay
test`) with harness/postfix_model.py: Postfix's documented lookup order applied to the
tables and master.cf that were written, through the real `postconf` and `postmap -q`.

The same for the PostgreSQL store (issue 20): the files of each configuration go into
the database with `setup relay import`, Postfix then asks relaykit.sender_decision and
the other pgsql: lookups (read here through the real postmap -q, as the read-only role),
and explain, which reads the database's own rules, must agree with it, and with what it
says for the same configuration in files.

Invariants for every pair: the same next hops; the same login at each hop; a login only
where TLS is required (policy encrypt/secure, or wrappermode); no login at all for direct
delivery to an MX. A configuration relaykit refuses must say what and where (exit 1).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.postfix_instance import PostfixInstance
from harness.postfix_model import PostfixModel

from e2e.conftest import BIN

QUICK = settings(max_examples=int(os.environ.get("DIFFERENTIAL_EXAMPLES", 25)), deadline=None,
                 suppress_health_check=list(HealthCheck))
# `make test` runs the slow tests too: 80 more configurations (~2 min); set more to search longer
LONG = settings(max_examples=int(os.environ.get("DIFFERENTIAL_LONG_EXAMPLES", 80)), deadline=None,
                suppress_health_check=list(HealthCheck))

DOMAINS = ["shop.test", "corp.test", "eu.corp.test", "dev.corp.test", "news.test", "other.test"]
SENDER_KEYS = ["@shop.test", "billing@shop.test", "intern@shop.test", "@.corp.test", "@corp.test",
               "@eu.corp.test", "@dev.corp.test", "@news.test", "x@dev.corp.test"]
HOPS = ["[r1.test]:587", "[r2.test]:2525", "[r3.test]:465", "smtps:[r4.test]:2587", "smtp:[r5.test]:465",
        "[10.0.0.5]:25", "[2001:db8::5]:587", "[r6.test]:2465"]
DEFAULT_RELAYS = ["[d1.test]:587", "[d2.test]:465", "[d1.test]:587,[d3.test]:587", "[::1]:2525",
                  "[D1.Test]:587", "[d4.test]:2465", "[0:0:0:0:0:0:0:1]:2525", "[localhost.]:2525",
                  "[d2.test]:465,[d3.test]:587"]
SENDERS = ["a@shop.test", "billing@shop.test", "intern@shop.test", "a@corp.test", "a@eu.corp.test",
           "x@dev.corp.test", "y@dev.corp.test", "a@deep.eu.corp.test", "a@news.test", "a@other.test",
           "a@unknown.test"]
RECIPIENTS = ["someone@far.test", "a@partner.test", "b@eu.partner.test"]

hop_lists = st.lists(st.sampled_from(HOPS), min_size=1, max_size=2, unique=True)
relaymap = st.dictionaries(st.sampled_from(SENDER_KEYS), st.one_of(st.none(), hop_lists), max_size=6)
sasl_keys = st.sampled_from(SENDER_KEYS + [h.split(":", 1)[1] if h.startswith("smtp") else h for h in HOPS]
                            + ["[d1.test]:587", "[d2.test]:465"])
sasl = st.lists(sasl_keys, max_size=6, unique=True)
recipient_rules = st.dictionaries(st.sampled_from(["partner.test", ".partner.test"]), st.sampled_from(HOPS),
                                  max_size=2)
environment = st.fixed_dictionaries({}, optional={
    "DEFAULT_RELAY_HOST": st.sampled_from(DEFAULT_RELAYS),
    "RELAY_HOST": st.sampled_from(["r7.test", "10.0.0.7", "2001:db8::7"]),
    "RELAY_PORT": st.sampled_from(["25", "587", "465", "2465"]),
    "RELAY_USER": st.just("relayuser"),
})
managed = st.lists(st.sampled_from(DOMAINS), max_size=4, unique=True)


# the database store: fewer examples (each one imports and configures through the database)
PG_QUICK = settings(max_examples=int(os.environ.get("DIFFERENTIAL_PG_EXAMPLES", 10)), deadline=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    root = tmp_path_factory.mktemp("differential")
    return root, PostfixInstance(root / "postfix").create()


@pytest.fixture(scope="module")
def pg_instance(tmp_path_factory, pg_server):
    """A Postfix of its own (its main.cf points at pgsql: tables) and one database,
    emptied before each example."""
    import psycopg

    from relaykit.stores.db import upgrade

    root = tmp_path_factory.mktemp("differential-pg")
    name = pg_server.database()
    with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
        upgrade(conn)
    return root, PostfixInstance(root / "postfix").create(), pg_server.url(name)


def _write(root, rules, creds, rcpt, managed_domains) -> None:
    config = root / "config"
    config.mkdir(exist_ok=True)
    for path in config.iterdir():
        path.unlink()
    (config / "postfix-relaymap.cf").write_text(
        "".join(f"{key} {','.join(hops)}\n" if hops else f"{key}\n" for key, hops in rules.items()))
    (config / "postfix-sasl-password.cf").write_text(
        "".join(f"{key} u{i}:p{i}\n" for i, key in enumerate(creds)))
    if rcpt:
        (config / "postfix-recipient-relaymap.cf").write_text("".join(f"{k} {v}\n" for k, v in rcpt.items()))
    (config / "postfix-virtual.cf").write_text("".join(f"alias@{d} target@far.test\n" for d in managed_domains))


def _environ(root, postfix, env) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY", "DEFAULT_RELAY"))}
    environ.update(env, MAIL_CONFIG=str(postfix.config_dir), RELAYKIT_CONFIG_DIR=str(root / "config"))
    if "RELAY_USER" in env:
        environ["RELAY_PASSWORD"] = "relaypw"
    return environ


def _check(instance, rules, creds, rcpt, env, managed_domains, database: str | None = None) -> None:
    import subprocess

    import psycopg

    from relaykit.core.routing import Router
    from relaykit.run.configure import routing

    root, postfix = instance
    _write(root, rules, creds, rcpt, managed_domains)
    environ = _environ(root, postfix, env)
    result = subprocess.run([str(BIN / "relaykit"), "configure"], env=environ, capture_output=True, text=True)
    if result.returncode:
        assert result.returncode == 1 and result.stderr.strip(), result.stderr
        return
    files_router = Router(routing(environ)[2])
    if database:  # the same configuration, moved into the database
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("TRUNCATE relaykit.domains, relaykit.relay_hosts, relaykit.sender_rules, "
                         "relaykit.sender_credentials, relaykit.recipient_relays CASCADE")
        environ["RELAYKIT_DATABASE_URL"] = database
        for command in (("setup", "relay", "import"), ("relaykit", "configure")):
            result = subprocess.run([str(BIN / command[0]), *command[1:]], env=environ, capture_output=True,
                                    text=True)
            assert result.returncode == 0, f"{command}: {result.stderr}"
    model, (_, _, plan) = PostfixModel(postfix), routing(environ)
    router = Router(plan)
    sender_keys = [k for s in SENDERS for k, _ in model.address_keys(s)]
    model.prefetch([m for m in model.main.get("sender_dependent_relayhost_maps", "").replace(",", " ").split()],
                   sender_keys)
    if database:  # every lookup of the database in one postmap per table (one connection each)
        hops = [h.lower() for v in (*HOPS, *DEFAULT_RELAYS) for h in v.split(",")]
        hops = [h.partition(":")[2] if h.startswith("smtp") else h for h in hops]
        hosts = [h[1:h.index("]")] if h.startswith("[") else h for h in hops]
        rcpt_keys = [k for r in RECIPIENTS for k in (r, r.rpartition("@")[2], ".partner.test", ".test")]
        for param, keys in (("sender_dependent_default_transport_maps", sender_keys),
                            ("smtp_sasl_password_maps", sender_keys + hops + hosts),
                            ("smtp_tls_policy_maps", hops), ("transport_maps", rcpt_keys)):
            model.prefetch(model.main.get(param, "").replace(",", " ").split(), keys)
    for sender in SENDERS:
        for recipient in RECIPIENTS:
            said, did = router.resolve(sender, recipient), model.decide(sender, recipient)
            where = f"{sender} -> {recipient}: explain {said}, Postfix {did}"
            assert [str(hop).lower() for hop in said.nexthops] == [h.lower() for h in did.nexthops], where
            assert [login.user if login else None for login in said.logins] == list(did.logins[:len(said.logins)]) \
                or (said.direct and set(did.logins) == {None}), where
            for login, level in zip(did.logins, did.tls):
                assert login is None or level in ("encrypt", "secure") or did.wrappermode, where
            if did.direct:
                assert set(did.logins) == {None}, where  # an MX never gets a credential
            if database:  # explain says the same in both stores (only the rules' origins differ)
                in_files = files_router.resolve(sender, recipient)
                assert (said.nexthops, [l.user if l else None for l in said.logins], said.transport) == (
                    in_files.nexthops, [l.user if l else None for l in in_files.logins], in_files.transport), where


@QUICK
@given(relaymap, sasl, recipient_rules, environment, managed)
def test_explain_agrees_with_postfix_for_every_sender_and_recipient(instance, rules, creds, rcpt, env, domains):
    _check(instance, rules, creds, rcpt, env, domains)


@PG_QUICK
@given(relaymap, sasl, recipient_rules, environment, managed)
def test_explain_agrees_with_postfix_with_the_database_store(pg_instance, rules, creds, rcpt, env, domains):
    _check(pg_instance[:2], rules, creds, rcpt, env, domains, database=pg_instance[2])


@pytest.mark.slow
@LONG
@given(relaymap, sasl, recipient_rules, environment, managed)
def test_explain_agrees_with_postfix_long(instance, rules, creds, rcpt, env, domains):
    _check(instance, rules, creds, rcpt, env, domains)
