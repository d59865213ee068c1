"""The PostgreSQL store: `setup relay ...` has the file store's semantics (one contract
suite, parametrized by store), and Postfix reads the result itself through pgsql: tables
(real postmap -q, as the read-only role)."""

from __future__ import annotations

import grp
import json
import re
import stat

import pytest

from relaykit.inputs import validate
from relaykit.stores.db import migrations
from relaykit.secret import Secret
from relaykit.stores.files import FileStore
from relaykit.stores.postgres import PostgresStore


@pytest.fixture(params=["files", "postgresql"])
def store_env(request, env):
    """The `env` fixture bound to one store; `.store()` reads back what the CLI wrote."""
    if request.param == "postgresql":
        db = request.getfixturevalue("pgdb")
        env.vars.update(db.vars())
        env.store = lambda: PostgresStore(db.url)
    else:
        env.store = lambda: FileStore(env.config_dir)
    env.kind = request.param
    return env


def routes(env) -> dict[str, tuple[str, ...]]:
    store = env.store()
    return {r.sender: r.nexthops for r in store.load().relay_rules}


def logins(env) -> dict[str, tuple[str, str]]:
    return {c.key: (c.user, c.password.reveal()) for c in env.store().load().credentials}


# --- the contract: same commands, same results, same exit codes, either store ---

def test_add_domain_routes_the_domain_with_port_25_by_default(store_env):
    assert store_env.run("setup", "relay", "add-domain", "Example.COM", "smtp.relay.test").returncode == 0
    assert routes(store_env) == {"@example.com": ("[smtp.relay.test]:25",)}


def test_add_domain_twice_replaces_the_route(store_env):
    store_env.run("setup", "relay", "add-domain", "example.com", "old.test")
    assert store_env.run("setup", "relay", "add-domain", "example.com", "new.test", "587").returncode == 0
    assert routes(store_env) == {"@example.com": ("[new.test]:587",)}


def test_exclude_domain_replaces_a_route_with_an_opt_out_and_back(store_env):
    store_env.run("setup", "relay", "add-domain", "example.com", "relay.test")
    assert store_env.run("setup", "relay", "exclude-domain", "example.com").returncode == 0
    assert routes(store_env) == {"@example.com": ()}
    store_env.run("setup", "relay", "add-domain", "example.com", "relay.test", "2525")
    assert routes(store_env) == {"@example.com": ("[relay.test]:2525",)}


def test_add_auth_sets_and_replaces_domain_credentials_without_printing_them(store_env):
    store_env.run("setup", "relay", "add-auth", "example.com", "old", "x")
    result = store_env.run("setup", "relay", "add-auth", "example.com", "apikey", input="n3w-s3cret\n")
    assert result.returncode == 0, result.stderr
    assert logins(store_env) == {"@example.com": ("apikey", "n3w-s3cret")}
    assert "n3w-s3cret" not in result.stdout + result.stderr


@pytest.mark.parametrize("args", [
    ("add-domain", "exa mple.com", "relay.test"),
    ("add-domain", "example.com", "relay.test", "70000"),
    ("add-domain", "example.com", "relay#.test"),
    ("add-auth", "example.com", "us:er", "pw"),
    ("add-auth", "example.com", "user", "pw with space"),
    ("exclude-domain", "[relay.test]"),
])
def test_bad_input_exits_1_naming_the_problem_and_changes_nothing(store_env, args):
    store_env.run("setup", "relay", "add-domain", "keep.test", "relay.test")
    result = store_env.run("setup", "relay", *args)
    assert result.returncode == 1
    assert result.stderr.strip()
    assert routes(store_env) == {"@keep.test": ("[relay.test]:25",)}
    assert logins(store_env) == {}


def test_unknown_relay_command_exits_2(store_env):
    assert store_env.run("setup", "relay", "frobnicate").returncode == 2


# --- the database only ---

def test_schema_upgrade_is_idempotent(env, pgdb):
    env.vars.update(pgdb.vars())
    first = env.run("relaykit", "db", "upgrade")
    second = env.run("relaykit", "db", "upgrade")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "0 migration(s) applied" in second.stdout
    assert [r[0] for r in pgdb.sql("SELECT version FROM relaykit.schema_migrations ORDER BY 1")] == [n for n, _, _ in migrations()]


def test_relay_credentials_are_both_or_neither(pgdb):
    import psycopg

    with pytest.raises(psycopg.errors.CheckViolation):
        pgdb.sql("INSERT INTO relaykit.relay_hosts (host, port, username) VALUES ('r.test', 25, 'u')")


def test_unreachable_database_is_a_clear_error_exit_1(env, pg_server):
    url = pg_server.url("postgres").replace(str(pg_server.port), "1")
    result = env.run("setup", "relay", "add-domain", "example.com", "relay.test", RELAYKIT_DATABASE_URL=url)
    assert result.returncode == 1
    assert "RELAYKIT_DATABASE_URL: cannot connect to the database" in result.stderr
    assert pg_server.ADMIN_PASSWORD not in result.stderr


def test_link_finds_the_kind_of_each_address(env, pgdb):
    env.vars.update(pgdb.vars())
    store = PostgresStore(pgdb.url)
    store.set_account("jane@example.com", Secret("{SHA512-CRYPT}x"))
    store.set_alias("sales@example.com", ("jane@example.com",))
    store.set_sender_address("jane@elsewhere.test", "jane@example.com")
    for address, kind in (("jane@example.com", "user"), ("sales@example.com", "alias"),
                          ("Jane@Elsewhere.test", "sender address")):
        result = env.run("setup", "relay", "link", address, "relay.test", "587")
        assert result.returncode == 0, result.stderr
        assert f"({kind})" in result.stdout
    assert dict(pgdb.sql("SELECT sender_key, nexthops FROM relaykit.sender_relays")) == {
        "jane@example.com": "[relay.test]:587", "sales@example.com": "[relay.test]:587",
        "jane@elsewhere.test": "[relay.test]:587"}
    unknown = env.run("setup", "relay", "link", "nobody@example.com", "relay.test")
    assert unknown.returncode == 1 and "nobody@example.com is not a user, an alias" in unknown.stderr


def test_link_without_a_database_is_refused(env):
    result = env.run("setup", "relay", "link", "jane@example.com", "relay.test")
    assert result.returncode == 1 and "RELAYKIT_DATABASE_URL" in result.stderr


def test_import_moves_a_dms_config_dir_into_the_database(env, pgdb):
    env.write("postfix-relaymap.cf", "@a.test [relay.test]:587\n@b.test\n")
    env.write("postfix-sasl-password.cf", "@a.test apikey:s3cret\n[relay.test]:587 relayuser:pw2\n")
    env.write("postfix-accounts.cf", "jane@c.test|{SHA512-CRYPT}$6$hash\n")
    env.write("postfix-virtual.cf", "sales@c.test jane@c.test,bob@c.test\n")
    env.vars.update(pgdb.vars())
    result = env.run("setup", "relay", "import")
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    loaded = PostgresStore(pgdb.url).load()
    assert {r.sender: r.nexthops for r in loaded.relay_rules} == {"@a.test": ("[relay.test]:587",), "@b.test": ()}
    assert {c.key: (c.user, c.password.reveal()) for c in loaded.credentials} == {
        "@a.test": ("apikey", "s3cret"), "[relay.test]:587": ("relayuser", "pw2")}
    assert [(a.address, a.password_hash.reveal()) for a in loaded.accounts] == [("jane@c.test", "{SHA512-CRYPT}$6$hash")]
    assert [(a.address, a.targets) for a in loaded.aliases] == [("sales@c.test", ("jane@c.test", "bob@c.test"))]


@pytest.mark.parametrize("line", ["@b.test smtps:[relay.test]:587", "@b.test smtp:[relay.test]:465",
                                  "@.b.test [relay.test]:587", "@.b.test", "nobody@b.test [relay.test]:587",
                                  "nobody@b.test"])
def test_import_holds_every_rule_of_the_files_as_the_files_say_it(env, pgdb, line):
    env.write("postfix-relaymap.cf", f"@a.test [relay.test]:587\n{line}\n")
    env.write("postfix-recipient-relaymap.cf", "partner.example smtps:[r.test]:587\n.partner.example [r.test]:25\n")
    env.write("postfix-sasl-password.cf", "@.b.test wild:pw1\nnobody@b.test addr:pw2\n")
    env.vars.update(pgdb.vars())
    result = env.run("setup", "relay", "import")
    assert result.returncode == 0, result.stderr

    def as_written(files):
        return ({r.sender: tuple(h.written for h in r.nexthops) for r in files.relay_rules},
                {r.sender: tuple(h.written for h in r.nexthops) for r in files.recipient_rules},
                {c.key: (c.user, c.password.reveal()) for c in files.credentials})

    assert as_written(PostgresStore(pgdb.url).load()) == as_written(FileStore(env.config_dir).load())


def test_a_tls_mode_against_the_port_is_kept_by_the_database_store(env, pgdb):
    env.vars.update(pgdb.vars())
    assert env.run("setup", "relay", "add-domain", "a.test", "smtps:relay.test", "587").returncode == 0
    assert {r.sender: r.nexthops[0].written for r in PostgresStore(pgdb.url).load().relay_rules} == {
        "@a.test": "smtps:[relay.test]:587"}
    # the same mode as the port's: the prefix is dropped, the typed tables hold it
    assert env.run("setup", "relay", "add-domain", "a.test", "smtps:relay.test", "465").returncode == 0
    assert pgdb.sql("SELECT sender_key, nexthops FROM relaykit.sender_relays") == [("@a.test", "[relay.test]:465")]
    assert pgdb.sql("SELECT count(*) FROM relaykit.sender_rules") == [(0,)]


def test_recipient_rules_work_in_either_store(store_env):
    assert store_env.run("setup", "relay", "add-recipient-domain", ".partner.example", "r.test", "465").returncode == 0
    assert {r.sender: r.nexthops for r in store_env.store().load().recipient_rules} == {
        ".partner.example": ("[r.test]:465",)}
    assert store_env.run("setup", "relay", "del-recipient-domain", ".partner.example").returncode == 0
    assert store_env.store().load().recipient_rules == ()


def test_oauth2_credentials_are_refused_by_the_database_store_never_ignored(env, pgdb):
    env.vars.update(pgdb.vars())
    result = env.run("setup", "relay", "add-oauth2", "[smtp.office365.com]:587", "microsoft", "u@corp.test",
                     "tenant=t", "client_id=c", "client_secret_file=/run/secrets/x")
    assert result.returncode == 1 and "supported with the files store only" in result.stderr, result.stderr
    assert not (env.config_dir / "postfix-oauth2.cf").exists()
    (env.config_dir / "postfix-oauth2.cf").write_text("# nothing yet\n")
    assert env.run("relaykit", "configure").returncode == 0  # comments only: nothing to ignore
    (env.config_dir / "postfix-oauth2.cf").write_text("[smtp.office365.com]:587 microsoft u@corp.test\n")
    result = env.run("relaykit", "configure")
    assert result.returncode == 1 and "postfix-oauth2.cf" in result.stderr and "files store only" in result.stderr


@pytest.mark.parametrize("text", ["@a.test [relay.test]:587\n@b.test [relay.test]:99999\n",
                                  "@a.test [relay.test]:587\n@a.test [other.test]:587\n"])
def test_import_of_a_bad_file_names_the_line_and_imports_nothing(env, pgdb, text):
    env.write("postfix-relaymap.cf", text)
    env.vars.update(pgdb.vars())
    result = env.run("setup", "relay", "import")
    assert result.returncode == 1
    assert "postfix-relaymap.cf:2" in result.stderr
    assert pgdb.sql("SELECT count(*) FROM relaykit.domains") == [(0,)]


# --- what Postfix sees: pgsql: lookup files, queried by postmap as the read-only role ---

HOSTILE = ["o'brien@example.com", "back\\slash@example.com", "x'; drop table relaykit.users; --@example.com",
           "jürgen@example.com"]


@pytest.fixture
def configured(env, pgdb):
    env.vars.update(pgdb.vars(), RELAY_HOST="default.relay.test", RELAY_PORT="2525")
    store = PostgresStore(pgdb.url)
    store.set_relay("@example.com", (validate.nexthop("[domain.relay.test]:587"),))
    store.set_credential("@example.com", "apikey", Secret("dom'ain\\pw"))
    for address in HOSTILE:
        store.set_account(address, Secret("{PLAIN}x"))
        store.link(address, (validate.nexthop("[user.relay.test]:465"),))
    store.set_account("ann@managed.test", Secret("{PLAIN}x"))
    store.set_relay("@optout.test", ())
    store.set_account("bob@optout.test", Secret("{PLAIN}x"))
    env.configure()
    return env, pgdb


def pgsql_lookup(env, name: str, key: str) -> str | None:
    return env.postfix.query(f"pgsql:{env.postfix.config_dir / name}", key)


@pytest.mark.parametrize("address", HOSTILE)
def test_hostile_addresses_find_exactly_their_own_route(configured, address):
    env, db = configured
    assert pgsql_lookup(env, "pgsql-sender-relays.cf", address) == "[user.relay.test]:465"
    # another address of the domain: the domain's route (the chain's nearest rule)
    assert pgsql_lookup(env, "pgsql-sender-relays.cf", address.replace("@", "x@")) == "[domain.relay.test]:587"
    assert db.sql("SELECT count(*) FROM relaykit.users") == [(len(HOSTILE) + 2,)]


def test_postfix_finds_domain_routes_credentials_and_this_nodes_default_relay(configured):
    env, _ = configured
    assert pgsql_lookup(env, "pgsql-sender-relays.cf", "@example.com") == "[domain.relay.test]:587"
    assert pgsql_lookup(env, "pgsql-sasl-passwords.cf", "@example.com") == "apikey:dom'ain\\pw"
    assert pgsql_lookup(env, "pgsql-tls-policies.cf", "[user.relay.test]:465") == "encrypt"
    # this node's RELAY_HOST for a managed domain with no rule; an opt-out goes to the MX
    assert pgsql_lookup(env, "pgsql-sender-relays.cf", "ann@managed.test") == "[default.relay.test]:2525"
    assert pgsql_lookup(env, "pgsql-sender-relays.cf", "bob@optout.test") == "DUNNO"
    assert pgsql_lookup(env, "pgsql-sender-relays.cf", "x@unknown.test") is None
    assert pgsql_lookup(env, "pgsql-sender-logins.cf", "ann@managed.test") == "ann@managed.test"
    assert env.postfix.param("sender_dependent_relayhost_maps") == (
        f"proxy:pgsql:{env.postfix.config_dir}/pgsql-sender-relays.cf")


def test_every_route_has_its_transport_implicit_tls_by_port(configured):
    env, _ = configured
    # a route of one address: credentials by relay only (the domain's are for its own route)
    assert pgsql_lookup(env, "pgsql-sender-transports.cf", HOSTILE[0]) == "relaykit_relay_smtps:[user.relay.test]:465"
    assert pgsql_lookup(env, "pgsql-sender-transports.cf", "@example.com") == "smtp:[domain.relay.test]:587"
    assert pgsql_lookup(env, "pgsql-sender-transports.cf", "@managed.test") == "smtp:[default.relay.test]:2525"
    assert pgsql_lookup(env, "pgsql-sender-transports.cf", "@optout.test") == "DUNNO"
    assert "relaykit_smtps" in (env.postfix.config_dir / "master.cf").read_text()


def test_lookup_files_are_0640_root_postfix_and_use_the_read_only_role(configured):
    env, db = configured
    for path in env.postfix.config_dir.glob("pgsql-*.cf"):
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o640, path
        assert (info.st_uid, info.st_gid) == (0, grp.getgrnam("postfix").gr_gid), path
        assert "relaykit_reader" in path.read_text() and db.server.ADMIN_PASSWORD not in path.read_text()


def test_the_read_only_role_reads_the_views_and_nothing_else(configured):
    import psycopg

    _, db = configured
    with psycopg.connect(db.reader_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM relaykit.sender_relays").fetchone()[0] > 0
        for statement in ("SELECT password FROM relaykit.relay_hosts", "SELECT * FROM relaykit.users",
                          "DELETE FROM relaykit.domains"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_configure_with_the_database_prints_no_password(configured):
    env, db = configured
    result = env.configure()
    for secret in (db.server.ADMIN_PASSWORD, "dom'ain\\pw", "r'ead"):
        assert secret not in result.stdout + result.stderr


def test_concurrent_commands_never_lose_an_entry(store_env):
    from concurrent.futures import ThreadPoolExecutor

    domains = [f"d{i}.test" for i in range(12)]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda d: store_env.run("setup", "relay", "add-domain", d, "relay.test"), domains))
    assert [r.returncode for r in results] == [0] * len(domains), [r.stderr for r in results]
    assert routes(store_env) == {f"@{d}": ("[relay.test]:25",) for d in domains}


def test_utf8_values_come_back_to_postfix_as_the_same_bytes(configured):
    env, db = configured
    store = PostgresStore(db.url)
    store.set_alias("team@managed.test", ("jürgen@example.com", "zoë@example.com"))
    assert pgsql_lookup(env, "pgsql-virtual-aliases.cf", "team@managed.test") == "jürgen@example.com,zoë@example.com"
    assert pgsql_lookup(env, "pgsql-managed-domains.cf", "managed.test") == "managed.test"


def test_account_and_alias_methods_say_whether_anything_changed(pgdb):
    store = PostgresStore(pgdb.url)
    assert store.set_account("jane@example.com", Secret("{PLAIN}a")) is True
    assert store.set_account("jane@example.com", Secret("{PLAIN}a")) is False
    assert store.set_account("jane@example.com", Secret("{PLAIN}b")) is True
    assert store.set_alias("sales@example.com", ("jane@example.com",)) is True
    assert store.set_alias("sales@example.com", ("jane@example.com",)) is False
    assert store.remove_alias("sales@example.com") is True
    assert store.remove_alias("sales@example.com") is False
    assert store.remove_account("jane@example.com") is True
    assert store.remove_account("jane@example.com") is False
    assert store.remove_relay("@nowhere.test") is False
    loaded = store.load()
    assert (loaded.accounts, loaded.aliases) == ((), ())


def test_configure_creates_the_schema_of_an_empty_database(env, pg_server):
    name = pg_server.database()
    env.vars["RELAYKIT_DATABASE_URL"] = pg_server.url(name)
    result = env.configure()
    assert "RELAYKIT_POSTFIX_DATABASE_URL" in result.stdout + result.stderr  # the admin-role warning
    assert pg_server.sql("SELECT max(version) FROM relaykit.schema_migrations", name) == [(migrations()[-1][0],)]
    assert env.run("setup", "relay", "add-domain", "x.test", "relay.test").returncode == 0
    assert pgsql_lookup(env, "pgsql-sender-relays.cf", "@x.test") == "[relay.test]:25"


def test_configure_with_the_database_down_still_configures_postfix_and_warns(env, pg_server):
    env.vars["RELAYKIT_DATABASE_URL"] = pg_server.url("postgres").replace(str(pg_server.port), "1")
    result = env.configure()
    assert "cannot connect to the database" in result.stdout + result.stderr
    assert pg_server.ADMIN_PASSWORD not in result.stdout + result.stderr
    assert env.postfix.param("sender_dependent_relayhost_maps").startswith("proxy:pgsql:")


def test_del_domain_and_del_auth_say_where_the_entry_was_in_either_store(store_env):
    """Both stores name where their data lives (a file, or the database): the messages of
    del-domain and del-auth read it from the store, whichever store it is."""
    where = str(store_env.config_dir / "postfix-relaymap.cf") if store_env.kind == "files" else "PostgreSQL"
    sasl_where = str(store_env.config_dir / "postfix-sasl-password.cf") if store_env.kind == "files" else "PostgreSQL"
    store_env.run("setup", "relay", "add-domain", "example.com", "relay.test", "587")
    store_env.run("setup", "relay", "add-auth", "example.com", "user", "pw")
    removed = store_env.run("setup", "relay", "del-domain", "example.com")
    assert (removed.returncode, removed.stderr) == (0, "")
    assert f"@example.com removed from {where}" in removed.stdout
    again = store_env.run("setup", "relay", "del-domain", "example.com")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert f"@example.com has no entry in {where}" in again.stderr
    removed = store_env.run("setup", "relay", "del-auth", "example.com")
    assert (removed.returncode, removed.stderr) == (0, "")
    assert f"credentials of @example.com removed from {sasl_where}" in removed.stdout
    again = store_env.run("setup", "relay", "del-auth", "example.com")
    assert again.returncode == 1 and f"@example.com has no credentials in {sasl_where}" in again.stderr
    assert routes(store_env) == {} and logins(store_env) == {}


# --- every configuration the README documents moves into the database, and reads the same ---

README_FILES = {  # each line from a README example (Files, Routing beyond DMS)
    "postfix-relaymap.cf": "@example.com [email-smtp.eu-west-1.amazonaws.com]:587\n@internal.example\n"
                           "billing@example.com [smtp.mailgun.org]:587\nintern@example.com\n"
                           "@.corp.example [smtp.corp.example]:587\n@eu.corp.example [eu-relay.corp.example]:587\n"
                           "@dev.corp.example\n@example.org smtps:[smtp.relay.test]:2587\n"
                           "@example.net smtp:[smtp.relay.test]:465\n@example.io [smtp.relay.test]:465\n"
                           "@failover.example [smtp.eu.relay.test]:587,[smtp.us.relay.test]:587\n",
    "postfix-sasl-password.cf": "@example.com AKIAEXAMPLE:secret\n[smtp.mailgun.org]:587 postmaster@mg.example.org:secret\n"
                                "billing@example.com postmaster@mg.example.com:secret\n@.corp.example corp:secret\n"
                                "[smtp.eu.relay.test]:587 eu-user:secret\n[smtp.us.relay.test]:587 us-user:secret\n",
    "postfix-recipient-relaymap.cf": "outlook.com [smtp.company.example]:587\n"
                                     ".blocked.example smtps:[smtp.company.example]:465\n",
    "postfix-accounts.cf": "jane@example.com|{PLAIN}x\nann@managed.example|{PLAIN}y\n",
    "postfix-virtual.cf": "sales@lists.corp.example jane@example.com\n",
}
PROBES = [(s, "bob@far.example") for s in (
    "billing@example.com", "intern@example.com", "x@example.com", "a@x.corp.example", "a@eu.corp.example",
    "a@dev.corp.example", "a@example.org", "a@example.net", "a@failover.example", "ann@managed.example",
    "a@internal.example", "a@other.example", "sales@lists.corp.example")] + [
    ("billing@example.com", "x@outlook.com"), ("a@x.corp.example", "y@a.blocked.example")]
VARIABLES = {"RELAY_HOST": "default.relay.test", "RELAY_PORT": "587", "DEFAULT_RELAY_HOST": "[smarthost.test]:587",
             "RELAY_USER": "node", "RELAY_PASSWORD": "node-pw"}


def test_every_readme_configuration_imports_and_every_inspection_command_reads_the_same(env, pgdb):
    """(The differential test covers configurations without relay variables.)"""
    for name, text in README_FILES.items():
        env.write(name, text)
    env.vars.update(VARIABLES)
    in_files = {"list": env.run("setup", "relay", "list", "--json").stdout,
                "explain": [env.run("setup", "relay", "explain", *probe).stdout for probe in PROBES],
                "check": env.run("setup", "relay", "check")}
    assert in_files["check"].returncode == 0, in_files["check"].stderr
    env.vars.update(pgdb.vars())
    imported = env.run("setup", "relay", "import")
    assert imported.returncode == 0, imported.stderr
    for path in env.config_dir.iterdir():
        path.unlink()
    check = env.run("setup", "relay", "check")
    assert check.returncode == 0, check.stderr

    def parts(result) -> list[str]:  # the summary's relays, in any order (the database's is by key)
        return sorted(result.stdout.split("configuration is valid: relay: ")[1].split("; "))

    assert parts(check) == parts(in_files["check"])

    def without_origins(text: str) -> str:  # file:line against table names: the rest must be equal
        return re.sub(r"(\(from |matched:\s+|\"rule\": |\"credentials\": )\S+", r"\1<origin>", text)

    def rows(text: str) -> list[dict]:  # origins aside; "(opted out)" stays
        found = [{**row, "rule": row["rule"].partition(" ")[2], "credentials": bool(row["credentials"])}
                 for row in json.loads(text)]
        return sorted(found, key=json.dumps)

    assert rows(env.run("setup", "relay", "list", "--json").stdout) == rows(in_files["list"])
    for probe, said in zip(PROBES, in_files["explain"]):
        assert without_origins(env.run("setup", "relay", "explain", *probe).stdout) == without_origins(said), probe
