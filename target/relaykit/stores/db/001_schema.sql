-- relaykit schema 1: the relay configuration, shared by every Postfix node.
-- Idempotent (IF NOT EXISTS / OR REPLACE): running it twice changes nothing.
-- Addresses and domains are stored lower-case: Postfix folds pgsql lookup keys.
CREATE SCHEMA IF NOT EXISTS relaykit;

CREATE TABLE IF NOT EXISTS relaykit.domains (
    id   bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name <> '' AND name = lower(name))
);

-- Mailbox users (postfix-accounts.cf): user@domain|{SCHEME}hash.
CREATE TABLE IF NOT EXISTS relaykit.users (
    id            bigserial PRIMARY KEY,
    address       text NOT NULL UNIQUE CHECK (address = lower(address) AND address LIKE '_%@_%'),
    domain_id     bigint NOT NULL REFERENCES relaykit.domains ON DELETE RESTRICT,
    password_hash text NOT NULL
);

-- Virtual aliases (postfix-virtual.cf): alias@domain -> targets, in order.
CREATE TABLE IF NOT EXISTS relaykit.aliases (
    id        bigserial PRIMARY KEY,
    address   text NOT NULL UNIQUE CHECK (address = lower(address) AND address LIKE '%@_%'),
    domain_id bigint NOT NULL REFERENCES relaykit.domains ON DELETE RESTRICT,
    targets   text[] NOT NULL CHECK (cardinality(targets) > 0)
);

-- External sender addresses: hosted elsewhere, but user_id may send as them.
CREATE TABLE IF NOT EXISTS relaykit.sender_addresses (
    id      bigserial PRIMARY KEY,
    address text NOT NULL UNIQUE CHECK (address = lower(address) AND address LIKE '_%@_%'),
    user_id bigint NOT NULL REFERENCES relaykit.users ON DELETE CASCADE
);

-- Relay hosts. `nexthop` is the Postfix form: [host]:port, or host[:port] with MX lookup.
-- Credentials by relay (sasl key = nexthop): both or neither.
CREATE TABLE IF NOT EXISTS relaykit.relay_hosts (
    id        bigserial PRIMARY KEY,
    host      text NOT NULL CHECK (host <> ''),
    port      integer CHECK (port BETWEEN 1 AND 65535),
    mx_lookup boolean NOT NULL DEFAULT false,
    username  text,
    password  text,
    nexthop   text GENERATED ALWAYS AS (
                  CASE WHEN mx_lookup THEN host ELSE '[' || host || ']' END
                  || COALESCE(':' || port::text, '')) STORED UNIQUE,
    CONSTRAINT relay_credentials_both_or_neither CHECK ((username IS NULL) = (password IS NULL))
);

-- Links from each kind of sender to its relay host(s); `position` orders a next-hop list
-- (Postfix 3.5+ tries them in turn).
CREATE TABLE IF NOT EXISTS relaykit.domain_relays (
    domain_id     bigint NOT NULL REFERENCES relaykit.domains ON DELETE CASCADE,
    position      smallint NOT NULL DEFAULT 0,
    relay_host_id bigint NOT NULL REFERENCES relaykit.relay_hosts ON DELETE RESTRICT,
    PRIMARY KEY (domain_id, position)
);
CREATE TABLE IF NOT EXISTS relaykit.user_relays (
    user_id       bigint NOT NULL REFERENCES relaykit.users ON DELETE CASCADE,
    position      smallint NOT NULL DEFAULT 0,
    relay_host_id bigint NOT NULL REFERENCES relaykit.relay_hosts ON DELETE RESTRICT,
    PRIMARY KEY (user_id, position)
);
CREATE TABLE IF NOT EXISTS relaykit.alias_relays (
    alias_id      bigint NOT NULL REFERENCES relaykit.aliases ON DELETE CASCADE,
    position      smallint NOT NULL DEFAULT 0,
    relay_host_id bigint NOT NULL REFERENCES relaykit.relay_hosts ON DELETE RESTRICT,
    PRIMARY KEY (alias_id, position)
);
CREATE TABLE IF NOT EXISTS relaykit.sender_address_relays (
    sender_address_id bigint NOT NULL REFERENCES relaykit.sender_addresses ON DELETE CASCADE,
    position          smallint NOT NULL DEFAULT 0,
    relay_host_id     bigint NOT NULL REFERENCES relaykit.relay_hosts ON DELETE RESTRICT,
    PRIMARY KEY (sender_address_id, position)
);

-- DMS exclude-domain: the domain gets no default relay (RELAY_HOST).
CREATE TABLE IF NOT EXISTS relaykit.opt_outs (
    domain_id bigint PRIMARY KEY REFERENCES relaykit.domains ON DELETE CASCADE
);

-- DMS add-auth: credentials by sender domain (sasl key = @domain).
CREATE TABLE IF NOT EXISTS relaykit.domain_credentials (
    domain_id bigint PRIMARY KEY REFERENCES relaykit.domains ON DELETE CASCADE,
    username  text NOT NULL CHECK (username <> ''),
    password  text NOT NULL CHECK (password <> '')
);

-- THE routing view: any sender key (user@domain or @domain) -> its next hop(s).
-- sender_dependent_relayhost_maps queries only this.
CREATE OR REPLACE VIEW relaykit.sender_relays AS
    SELECT '@' || d.name AS sender_key, string_agg(r.nexthop, ',' ORDER BY l.position) AS nexthops
      FROM relaykit.domain_relays l JOIN relaykit.domains d ON d.id = l.domain_id
      JOIN relaykit.relay_hosts r ON r.id = l.relay_host_id GROUP BY d.name
    UNION ALL
    SELECT u.address, string_agg(r.nexthop, ',' ORDER BY l.position)
      FROM relaykit.user_relays l JOIN relaykit.users u ON u.id = l.user_id
      JOIN relaykit.relay_hosts r ON r.id = l.relay_host_id GROUP BY u.address
    UNION ALL
    SELECT a.address, string_agg(r.nexthop, ',' ORDER BY l.position)
      FROM relaykit.alias_relays l JOIN relaykit.aliases a ON a.id = l.alias_id
      JOIN relaykit.relay_hosts r ON r.id = l.relay_host_id GROUP BY a.address
    UNION ALL
    SELECT s.address, string_agg(r.nexthop, ',' ORDER BY l.position)
      FROM relaykit.sender_address_relays l JOIN relaykit.sender_addresses s ON s.id = l.sender_address_id
      JOIN relaykit.relay_hosts r ON r.id = l.relay_host_id GROUP BY s.address;

-- Managed sender domains (of users and aliases) that get each node's RELAY_HOST:
-- neither routed explicitly nor opted out.
CREATE OR REPLACE VIEW relaykit.default_relay_senders AS
    SELECT '@' || d.name AS sender_key FROM relaykit.domains d
     WHERE (EXISTS (SELECT 1 FROM relaykit.users u WHERE u.domain_id = d.id)
            OR EXISTS (SELECT 1 FROM relaykit.aliases a WHERE a.domain_id = d.id))
       AND NOT EXISTS (SELECT 1 FROM relaykit.domain_relays l WHERE l.domain_id = d.id)
       AND NOT EXISTS (SELECT 1 FROM relaykit.opt_outs o WHERE o.domain_id = d.id);

-- smtp_sasl_password_maps: @domain (add-auth) or a relay's next hop -> user:password.
CREATE OR REPLACE VIEW relaykit.sasl_passwords AS
    SELECT '@' || d.name AS sasl_key, c.username || ':' || c.password AS credentials
      FROM relaykit.domain_credentials c JOIN relaykit.domains d ON d.id = c.domain_id
    UNION ALL
    SELECT nexthop, username || ':' || password FROM relaykit.relay_hosts WHERE username IS NOT NULL;

-- smtpd_sender_login_maps: the envelope sender -> the SASL login(s) that may use it.
CREATE OR REPLACE VIEW relaykit.sender_logins AS
    SELECT address AS sender, address AS login FROM relaykit.users
    UNION ALL
    SELECT s.address, u.address FROM relaykit.sender_addresses s JOIN relaykit.users u ON u.id = s.user_id;

-- virtual_alias_maps: one row per alias, targets comma-separated as Postfix expects.
CREATE OR REPLACE VIEW relaykit.virtual_aliases AS
    SELECT address, array_to_string(targets, ',') AS targets FROM relaykit.aliases;

-- smtp_tls_policy_maps: every relay host requires TLS (credentials never travel in clear).
-- A view, so that Postfix's role never reads relay_hosts (it holds passwords).
CREATE OR REPLACE VIEW relaykit.tls_policies AS
    SELECT nexthop, 'encrypt'::text AS policy FROM relaykit.relay_hosts;

-- virtual_alias_domains / relay domain checks: the domains relaykit manages.
CREATE OR REPLACE VIEW relaykit.managed_domains AS
    SELECT name FROM relaykit.domains d
     WHERE EXISTS (SELECT 1 FROM relaykit.users u WHERE u.domain_id = d.id)
        OR EXISTS (SELECT 1 FROM relaykit.aliases a WHERE a.domain_id = d.id);

-- Postfix 3.7's pgsql client sets client_encoding LATIN1 whatever the data: a UTF-8 key
-- arrives as one Latin-1 character per byte. These undo that on the way in and redo it
-- on the way out, so UTF-8 addresses match and come back as the same bytes.
CREATE OR REPLACE FUNCTION relaykit.postfix_key(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT convert_from(convert_to($1, 'LATIN1'), 'UTF8') $$;
CREATE OR REPLACE FUNCTION relaykit.postfix_value(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT convert_from(convert_to($1, 'UTF8'), 'LATIN1') $$;
