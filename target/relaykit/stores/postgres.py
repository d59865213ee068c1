"""The scale-out store: the relay configuration in PostgreSQL, shared by every node.

The Store protocol (stores/protocol.py), as FileStore, so `setup relay ...` behaves the
same; Postfix reads the result itself through pgsql: lookup tables (core/pgsql.py), so a
change is live on every node for the next message, with no reload and no sync daemon.

Each method is one transaction; a domain's rows are changed under a row lock on the
domain, so two commands run at once never lose an entry. Values arrive validated (the
CLI validates before it opens a store); the schema's constraints are the second line.
psycopg is imported here only: the file store never pays for it.
"""

from __future__ import annotations

from relaykit import log
from relaykit.core import pgsql, submission
from relaykit.core.dovecot import Passdb
from relaykit.errors import ConfigError, RelaykitError
from relaykit.inputs import validate
from relaykit.inputs.env import OAUTH2, RELAY_LIMITS
from relaykit.model.entries import Account, Alias, ConfigFiles, Credential, Origin, RelayRule
from relaykit.model.nexthop import NextHop
from relaykit.model.plan import Plan
from relaykit.model.settings import Settings
from relaykit.secret import Secret
from relaykit.stores.db import ensure_current, upgrade

ORIGIN = "postgresql"
WHERE = "PostgreSQL (RELAYKIT_DATABASE_URL)"


class DatabaseError(RelaykitError):
    """The database cannot be reached or refused a statement."""


def connect(url: str, what: str = "RELAYKIT_DATABASE_URL", timeout: int = 10):
    import psycopg  # lazy: ~60 ms, paid only when a database is used (test_layers.LAZY)

    try:
        return psycopg.connect(url, connect_timeout=timeout, application_name="relaykit")
    except psycopg.OperationalError as exc:
        # libpq's message names host/port/user, never the password
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "connection failed"
        raise DatabaseError(f"cannot connect to the database: {detail}", what) from None


def upgrade_schema(url: str, always: bool = True) -> list[str]:
    """Create or upgrade the schema (`relaykit configure`/`start` run it first, with
    always=False: only when a migration is missing, so a reload stays cheap)."""
    with connect(url) as conn:
        conn.autocommit = True
        applied = upgrade(conn) if always else ensure_current(conn)
    for name in applied:
        log.info(f"database: applied migration {name}")
    return applied


def _port_mode(hop: NextHop) -> bool:
    """Whether the typed tables (001) can hold `hop`: its mode is its port's (no prefix);
    the others are written as in a relaymap line into relaykit.sender_rules (006)."""
    return hop.written == hop


def _written(nexthops: tuple[NextHop, ...]) -> str | None:
    """As postfix-relaymap.cf spells them (`smtps:` where the mode is not the port's)."""
    return ",".join(hop.written for hop in nexthops) or None


def _domain_of(key: str) -> str:
    return key.rpartition("@")[2]


OAUTH2_FILES_ONLY = ("OAuth2 credentials are supported with the files store only (postfix-oauth2.cf), "
                     "not with RELAYKIT_DATABASE_URL")


# Files the database store does not read: next to it, they would be silently ignored.
FILES_ONLY = {
    OAUTH2: OAUTH2_FILES_ONLY,
    RELAY_LIMITS: "per-relay limits are supported with the files store only (postfix-relay-limits.cf), "
                  "not with RELAYKIT_DATABASE_URL",
}


def _refuse_files_only(settings: Settings) -> None:
    """A files-store-only file with entries next to a database store: refuse it."""
    for name, why in FILES_ONLY.items():
        path = settings.config_dir / name
        try:
            text = path.read_text()
        except OSError:
            continue
        if any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
            raise ConfigError(why, Origin(str(path)))


class PostgresStore:
    def __init__(self, url: str) -> None:
        self._url = url
        self._conn = None

    def where(self, what: str) -> str:
        return WHERE

    # planning: Postfix asks the database itself (core/pgsql.py)
    def plan(self, settings: Settings, table_type: str, networks: tuple[str, ...] = ()) -> Plan:
        _refuse_files_only(settings)
        relay = pgsql.build(settings, table_type)
        login_map = relay.params["smtpd_sender_login_maps"]  # the database's accounts and aliases
        return submission.add_to(relay, settings, ConfigFiles(), table_type, networks, login_map)

    def foreseen(self) -> dict[str, bytes]:
        """Nothing: the rows are only read when planning."""
        return {}

    def passdb(self, settings: Settings) -> Passdb:
        """Dovecot's sql passdb, as Postfix's read-only role."""
        url = (settings.postfix_database_url or settings.database_url).reveal()
        return Passdb(database=pgsql.connection(url), summary="accounts in PostgreSQL")

    def prepare(self) -> None:
        """Bring the schema up to date. A database that does not answer is not fatal here:
        the node starts, and Postfix defers mail (nothing bounces) until it is back."""
        try:
            upgrade_schema(self._url, always=False)
        except DatabaseError as exc:
            log.warn(f"{exc}; Postfix defers mail until the database answers")
        log.info("relay routes and credentials: looked up in PostgreSQL by Postfix (pgsql: tables)")

    # connection
    def connection(self):
        if self._conn is None:
            self._conn = connect(self._url)
            self._conn.autocommit = True  # transactions are explicit: `with conn.transaction()`
            ensure_current(self._conn)
        return self._conn

    def reachable(self) -> bool:
        """Whether the database answers a new connection now (within 3 s)."""
        try:
            with connect(self._url, timeout=3) as conn:
                conn.execute("SELECT 1")
        except Exception:  # any failure means "not now": the caller asks again later
            return False
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _tx(self):
        return self.connection().transaction()

    def _q(self, sql: str, params: tuple = ()):
        return self.connection().execute(sql, params)

    # building blocks
    def _domain_id(self, name: str, lock: bool = True) -> int:
        """The id of a domain, created if new, locked for this transaction."""
        self._q("INSERT INTO relaykit.domains (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (name,))
        lock_sql = " FOR UPDATE" if lock else ""
        return self._q(f"SELECT id FROM relaykit.domains WHERE name = %s{lock_sql}", (name,)).fetchone()[0]

    def _relay_host_id(self, hop: NextHop) -> int:
        host, port, mx = hop.host, hop.port, not hop.bracketed
        row = self._q("SELECT id FROM relaykit.relay_hosts WHERE nexthop = %s", (hop,)).fetchone()
        if row:
            return row[0]
        return self._q(
            "INSERT INTO relaykit.relay_hosts (host, port, mx_lookup) VALUES (%s, %s, %s) "
            "ON CONFLICT (nexthop) DO UPDATE SET host = EXCLUDED.host RETURNING id", (host, port, mx)).fetchone()[0]

    def _rules_of(self, sender: str) -> list:
        """What relaykit.relay_rules holds for one key, whichever table: to say whether a
        command changed anything."""
        return self._q("SELECT nexthops FROM relaykit.relay_rules WHERE sender_key = %s ORDER BY 1",
                       (sender,)).fetchall()

    def _link(self, table: str, column: str, owner: int, nexthops: tuple[NextHop, ...]) -> None:
        self._q(f"DELETE FROM relaykit.{table} WHERE {column} = %s", (owner,))
        for position, hop in enumerate(nexthops):
            self._q(f"INSERT INTO relaykit.{table} ({column}, position, relay_host_id) VALUES (%s, %s, %s)",
                    (owner, position, self._relay_host_id(hop)))

    def _remove_rule(self, sender: str) -> int:
        """Delete the key's rule from every table that may hold it; how many rows went."""
        n = self._q("DELETE FROM relaykit.sender_rules WHERE sender_key = %s", (sender,)).rowcount
        if sender.startswith("@."):
            return n
        if sender.startswith("@"):
            row = self._q("SELECT id FROM relaykit.domains WHERE name = %s FOR UPDATE", (sender[1:],)).fetchone()
            if row:
                n += self._q("DELETE FROM relaykit.domain_relays WHERE domain_id = %s", row).rowcount
                n += self._q("DELETE FROM relaykit.opt_outs WHERE domain_id = %s", row).rowcount
            return n
        kind, owner = self._sender_kind(sender)
        if kind is not None:
            n += self._q(f"DELETE FROM relaykit.{_LINKS[kind][0]} WHERE {_LINKS[kind][1]} = %s", (owner,)).rowcount
        return n

    # relays (postfix-relaymap.cf)
    def set_relay(self, sender: str, nexthops: tuple[NextHop, ...]) -> bool:
        """Route `sender` (@domain, user@domain, @.domain) through `nexthops`; an empty tuple
        opts it out. A domain's route, and an address's that is a user, alias or sender
        address, go into the typed tables when their hops need no TLS prefix; every
        other rule into relaykit.sender_rules, as its relaymap line says it."""
        with self._tx():
            before = self._rules_of(sender)
            self._remove_rule(sender)
            typed = all(_port_mode(hop) for hop in nexthops)
            if sender.startswith("@") and not sender.startswith("@.") and typed:
                domain_id = self._domain_id(sender[1:])
                if nexthops:
                    self._link("domain_relays", "domain_id", domain_id, nexthops)
                else:
                    self._q("INSERT INTO relaykit.opt_outs VALUES (%s) ON CONFLICT DO NOTHING", (domain_id,))
            else:
                kind, owner = (None, None) if sender.startswith("@") or not (typed and nexthops) \
                    else self._sender_kind(sender)
                if kind is not None:
                    self._link(*_LINKS[kind], owner, nexthops)
                else:
                    self._q("INSERT INTO relaykit.sender_rules (sender_key, nexthops) VALUES (%s, %s)",
                            (sender, _written(nexthops)))
            return self._rules_of(sender) != before

    def remove_relay(self, sender: str) -> bool:
        with self._tx():
            return self._remove_rule(sender) > 0

    def _sender_kind(self, address: str) -> tuple[str | None, int | None]:
        """Whether `address` is a user, an alias or an external sender address, and its id."""
        for kind, table in (("user", "users"), ("alias", "aliases"), ("sender address", "sender_addresses")):
            row = self._q(f"SELECT id FROM relaykit.{table} WHERE address = %s FOR UPDATE", (address,)).fetchone()
            if row:
                return kind, row[0]
        return None, None

    def link(self, address: str, nexthops: tuple[NextHop, ...]) -> str:
        """Route mail from one address through `nexthops`; returns its kind (user, alias...)."""
        with self._tx():
            kind, _ = self._sender_kind(address)
            if kind is None:
                raise RelaykitError(f"{address} is not a user, an alias or an external sender address "
                                    "in the database: add it first")
            if not nexthops:
                raise RelaykitError(f"{address}: only a domain can be excluded from the default relay")
            self.set_relay(address, nexthops)
            return kind

    # relays by recipient domain (postfix-recipient-relaymap.cf): `domain` or `.domain`
    def set_recipient_relay(self, key: str, nexthops: tuple[NextHop, ...]) -> bool:
        with self._tx():
            return self._q(
                "INSERT INTO relaykit.recipient_relays AS r VALUES (%s, %s) ON CONFLICT (recipient_key) "
                "DO UPDATE SET nexthops = EXCLUDED.nexthops WHERE r.nexthops <> EXCLUDED.nexthops",
                (key, _written(nexthops))).rowcount > 0

    def remove_recipient_relay(self, key: str) -> bool:
        with self._tx():
            return self._q("DELETE FROM relaykit.recipient_relays WHERE recipient_key = %s", (key,)).rowcount > 0

    # credentials (postfix-sasl-password.cf)
    def set_credential(self, key: str, user: str, password: Secret) -> bool:
        with self._tx():
            if "@" in key and (key.startswith("@.") or not key.startswith("@")):  # an address, a wildcard
                return self._q(
                    "INSERT INTO relaykit.sender_credentials AS c VALUES (%s, %s, %s) ON CONFLICT (sasl_key) "
                    "DO UPDATE SET username = EXCLUDED.username, password = EXCLUDED.password "
                    "WHERE (c.username, c.password) IS DISTINCT FROM (EXCLUDED.username, EXCLUDED.password)",
                    (key, user, password.reveal())).rowcount > 0
            if key.startswith("@"):
                domain_id = self._domain_id(key[1:])
                return self._q(
                    "INSERT INTO relaykit.domain_credentials AS c VALUES (%s, %s, %s) ON CONFLICT (domain_id) "
                    "DO UPDATE SET username = EXCLUDED.username, password = EXCLUDED.password "
                    "WHERE (c.username, c.password) IS DISTINCT FROM (EXCLUDED.username, EXCLUDED.password)",
                    (domain_id, user, password.reveal())).rowcount > 0
            relay_id = self._relay_host_id(key)  # by relay: a NextHop, parsed by validation
            return self._q(
                "UPDATE relaykit.relay_hosts SET username = %s, password = %s WHERE id = %s "
                "AND (username, password) IS DISTINCT FROM (%s, %s)",
                (user, password.reveal(), relay_id, user, password.reveal())).rowcount > 0

    def set_oauth2(self, key: str, fields: tuple[str, ...]) -> bool:
        raise RelaykitError(OAUTH2_FILES_ONLY)

    def remove_oauth2(self, key: str) -> bool:
        raise RelaykitError(OAUTH2_FILES_ONLY)

    def remove_credential(self, key: str) -> bool:
        with self._tx():
            if "@" in key and (key.startswith("@.") or not key.startswith("@")):
                return self._q("DELETE FROM relaykit.sender_credentials WHERE sasl_key = %s", (key,)).rowcount > 0
            if key.startswith("@"):
                return self._q("DELETE FROM relaykit.domain_credentials USING relaykit.domains d "
                               "WHERE d.id = domain_id AND d.name = %s", (key[1:],)).rowcount > 0
            return self._q("UPDATE relaykit.relay_hosts SET username = NULL, password = NULL "
                           "WHERE nexthop = %s AND username IS NOT NULL", (key,)).rowcount > 0

    # accounts and aliases (postfix-accounts.cf, postfix-virtual.cf)
    def set_account(self, address: str, password_hash: Secret) -> bool:
        with self._tx():
            domain_id = self._domain_id(_domain_of(address))
            return self._q(
                "INSERT INTO relaykit.users AS u (address, domain_id, password_hash) VALUES (%s, %s, %s) "
                "ON CONFLICT (address) DO UPDATE SET password_hash = EXCLUDED.password_hash "
                "WHERE u.password_hash <> EXCLUDED.password_hash",
                (address, domain_id, password_hash.reveal())).rowcount > 0

    def remove_account(self, address: str) -> bool:
        with self._tx():
            return self._q("DELETE FROM relaykit.users WHERE address = %s", (address,)).rowcount > 0

    def set_alias(self, address: str, targets: tuple[str, ...]) -> bool:
        with self._tx():
            domain_id = self._domain_id(_domain_of(address))
            return self._q(
                "INSERT INTO relaykit.aliases AS a (address, domain_id, targets) VALUES (%s, %s, %s) "
                "ON CONFLICT (address) DO UPDATE SET targets = EXCLUDED.targets "
                "WHERE a.targets <> EXCLUDED.targets", (address, domain_id, list(targets))).rowcount > 0

    def remove_alias(self, address: str) -> bool:
        with self._tx():
            return self._q("DELETE FROM relaykit.aliases WHERE address = %s", (address,)).rowcount > 0

    def set_sender_address(self, address: str, user: str) -> bool:
        """Let the user `user` send as `address`, hosted elsewhere."""
        with self._tx():
            row = self._q("SELECT id FROM relaykit.users WHERE address = %s", (user,)).fetchone()
            if not row:
                raise RelaykitError(f"{user} is not a user in the database")
            return self._q(
                "INSERT INTO relaykit.sender_addresses AS s (address, user_id) VALUES (%s, %s) "
                "ON CONFLICT (address) DO UPDATE SET user_id = EXCLUDED.user_id "
                "WHERE s.user_id <> EXCLUDED.user_id", (address, row[0])).rowcount > 0

    # reading
    def load(self, secure=()) -> ConfigFiles:
        """Every entry as the file store's ConfigFiles, origins naming the database tables;
        next hops parsed by the same validation as the files' (inputs/validate.py), so
        `explain`, `list`, `check` and `setup relay test` resolve with the same Router as
        with files, and agree with relaykit.sender_decision (db/006)."""
        def origin(table: str) -> Origin:
            return Origin(f"{ORIGIN}:{table}")

        def relay_rules(sql: str, table: str) -> list[RelayRule]:
            return [RelayRule(key, validate.relay_list(hops, "relay", secure) if hops else (), origin(table))
                    for key, hops in self._q(sql)]

        def credentials(sql: str, table: str) -> list[Credential]:
            return [Credential(key if "@" in key else validate.nexthop(key, secure=secure),
                               value.partition(":")[0], Secret(value.partition(":")[2]), origin(table))
                    for key, value in self._q(sql)]

        with self._tx():
            rules = relay_rules("SELECT sender_key, nexthops FROM relaykit.sender_relays ORDER BY 1", "sender_relays")
            rules += relay_rules("SELECT '@' || d.name, NULL FROM relaykit.opt_outs o JOIN relaykit.domains d "
                                 "ON d.id = o.domain_id ORDER BY 1", "opt_outs")
            rules += relay_rules("SELECT sender_key, nexthops FROM relaykit.sender_rules ORDER BY 1", "sender_rules")
            creds = credentials("SELECT sasl_key, credentials FROM relaykit.sasl_passwords ORDER BY 1",
                                "sasl_passwords")
            creds += credentials("SELECT sasl_key, username || ':' || password FROM relaykit.sender_credentials "
                                 "ORDER BY 1", "sender_credentials")
            recipients = relay_rules("SELECT recipient_key, nexthops FROM relaykit.recipient_relays ORDER BY 1",
                                     "recipient_relays")
            accounts = [Account(a, Secret(h), origin("users"))
                        for a, h in self._q("SELECT address, password_hash FROM relaykit.users ORDER BY 1")]
            aliases = [Alias(a, tuple(t), origin("aliases"))
                       for a, t in self._q("SELECT address, targets FROM relaykit.aliases ORDER BY 1")]
        return ConfigFiles(tuple(rules), tuple(creds), tuple(accounts), tuple(aliases),
                           relaymap_exists=True, sasl_exists=True, recipient_rules=tuple(recipients))

    def import_files(self, files: ConfigFiles) -> dict[str, int]:
        """Copy a parsed DMS config directory in, in ONE transaction: every rule the files
        can hold, the database holds too (db/006)."""
        with self._tx():
            for account in files.accounts:
                self.set_account(account.address, account.password_hash)
            for alias in files.aliases:
                self.set_alias(alias.address, alias.targets)
            for rule in files.relay_rules:
                self.set_relay(rule.sender, rule.nexthops)
            for rule in files.recipient_rules:
                self.set_recipient_relay(rule.sender, rule.nexthops)
            for cred in files.credentials:
                self.set_credential(cred.key, cred.user, cred.password)
        return {"relay rules": len(files.relay_rules), "recipient relay rules": len(files.recipient_rules),
                "credentials": len(files.credentials), "accounts": len(files.accounts),
                "aliases": len(files.aliases)}


# link table and its owner column, by sender kind
_LINKS = {"user": ("user_relays", "user_id"), "alias": ("alias_relays", "alias_id"),
          "sender address": ("sender_address_relays", "sender_address_id")}
