-- relaykit schema 6: every rule of the files, with the files' precedence (issue 20).
--
-- What the typed tables of 001 cannot hold goes into three plain tables keyed like the
-- DMS files: subdomain wildcards (`@.corp.example`), rules for addresses that are not a
-- user, alias or sender address of the database, opted-out addresses, routes whose TLS
-- mode is not their port's (written `smtps:[host]:587`, as in postfix-relaymap.cf),
-- credentials by address or wildcard, and relays by recipient domain.
--
-- Postfix asks ONE function per question. relaykit.sender_decision(key, relayhost,
-- relay_host) is core/routing.py's Router.decide in SQL: the nearest rule of the key's
-- chain (address, @domain, then @.parent wildcards, nearest first; sender_chain), this
-- node's RELAY_HOST for a managed domain no rule covers, DEFAULT_RELAY_HOST for an
-- opt-out, and the client that presents only the credential scoped to that rule. The
-- node's own relays arrive as literals in its lookup file (core/pgsql.py). Postfix's
-- pgsql client gets `user@domain`, then `@domain`, never a parent domain: the function
-- walks the parents itself, so the first query already returns the nearest match.

CREATE TABLE IF NOT EXISTS relaykit.sender_rules (
    sender_key text PRIMARY KEY CHECK (sender_key = lower(sender_key) AND sender_key LIKE '%@_%'),
    nexthops   text CHECK (nexthops <> '')  -- as a relaymap line writes them; NULL: opted out
);

CREATE TABLE IF NOT EXISTS relaykit.sender_credentials (  -- by address or @.domain
    sasl_key text PRIMARY KEY CHECK (sasl_key = lower(sasl_key) AND sasl_key LIKE '%@_%'),
    username text NOT NULL CHECK (username <> ''),
    password text NOT NULL CHECK (password <> '')
);

CREATE TABLE IF NOT EXISTS relaykit.recipient_relays (  -- postfix-recipient-relaymap.cf
    recipient_key text PRIMARY KEY CHECK (recipient_key = lower(recipient_key) AND recipient_key <> ''
                                          AND strpos(recipient_key, '@') = 0),
    nexthops      text NOT NULL CHECK (nexthops <> '')
);

-- `smtps:[a]:587,smtps:[b]:587` -> `[a]:587,[b]:587`: Postfix's next-hop list.
CREATE OR REPLACE FUNCTION relaykit.plain_hops(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT regexp_replace($1, '(^|,)smtps?:\[', '\1[', 'gi') $$;

-- TLS from the first byte: the first hop's prefix, else its port (model/nexthop.default_mode).
CREATE OR REPLACE FUNCTION relaykit.implicit_tls(text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN split_part($1, ',', 1) ~* '^smtps:\[' THEN true
                WHEN split_part($1, ',', 1) ~* '^smtp:\[' THEN false
                ELSE coalesce(substring(split_part($1, ',', 1) FROM ':([0-9]+)$') IN ('465', '2465'), false)
           END $$;

-- The keys Postfix's order tries for `key` (core/routing.key_chain): `u@a.b.c` ->
-- {u@a.b.c, @a.b.c, @.b.c, @.c}; `@a.b` -> {@a.b, @.b}; `@.b.c` -> {@.b.c, @.c}.
CREATE OR REPLACE FUNCTION relaykit.sender_chain(key text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    domain text;
    chain  text[];
    labels text[];
BEGIN
    IF key LIKE '@.%' THEN
        domain := substr(key, 3); chain := ARRAY[key];
    ELSIF key LIKE '@%' THEN
        domain := substr(key, 2); chain := ARRAY[key];
    ELSIF strpos(key, '@') > 0 THEN
        domain := substring(key FROM '@([^@]*)$'); chain := ARRAY[key, '@' || domain];
    ELSE
        RETURN ARRAY[key];  -- a next hop
    END IF;
    labels := string_to_array(domain, '.');
    FOR i IN 2 .. coalesce(array_length(labels, 1), 0) LOOP
        chain := chain || ('@.' || array_to_string(labels[i:], '.'));
    END LOOP;
    RETURN chain;
END $$;

-- Every sender rule, whichever table holds it: key -> written next hops (NULL: opted out).
-- (For reading; sender_decision searches the same tables by their indexes.)
CREATE OR REPLACE VIEW relaykit.relay_rules AS
    SELECT sender_key, nexthops FROM relaykit.sender_relays
    UNION ALL
    SELECT '@' || d.name, NULL FROM relaykit.opt_outs o JOIN relaykit.domains d ON d.id = o.domain_id
    UNION ALL
    SELECT sender_key, nexthops FROM relaykit.sender_rules;

-- Every credential: @domain and relays (001's view), addresses and wildcards.
CREATE OR REPLACE VIEW relaykit.sasl_credentials AS
    SELECT sasl_key, credentials FROM relaykit.sasl_passwords
    UNION ALL
    SELECT sasl_key, username || ':' || password FROM relaykit.sender_credentials;

-- sender_dependent_default_transport_maps and sender_dependent_relayhost_maps: the
-- transport (with next hops) and the next hops Router.decide gives the sender chain of
-- `key`; both NULL when no rule applies (then Postfix's own relayhost/default_transport
-- agree with the Router), both DUNNO when the mail goes to the recipient's MX.
-- `relayhost`: this node's DEFAULT_RELAY_HOST, `relay_host`: its RELAY_HOST ('' : none).
CREATE OR REPLACE FUNCTION relaykit.sender_decision(key text, relayhost text, relay_host text,
                                                    OUT transport text, OUT nexthops text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    chain  text[] := relaykit.sender_chain(key);
    found  integer;
    hops   text;
    at_domain integer;
    hidden boolean;
BEGIN
    -- relay_rules, written out so that every table is searched by its index (the view's
    -- `'@' || name` keys would scan every domain: ~40 ms a lookup at 100,000 domains)
    SELECT x.pos, x.hops INTO found, hops FROM (
        SELECT array_position(chain, '@' || d.name) AS pos,
               (SELECT string_agg(r.nexthop, ',' ORDER BY l.position) FROM relaykit.domain_relays l
                  JOIN relaykit.relay_hosts r ON r.id = l.relay_host_id WHERE l.domain_id = d.id) AS hops,
               EXISTS (SELECT 1 FROM relaykit.opt_outs o WHERE o.domain_id = d.id) AS opted_out
          FROM relaykit.domains d
         WHERE d.name = ANY (ARRAY(SELECT substr(k, 2) FROM unnest(chain) AS k WHERE k LIKE '@%' AND k NOT LIKE '@.%'))
        UNION ALL
        SELECT array_position(chain, u.address),
               (SELECT string_agg(r.nexthop, ',' ORDER BY l.position) FROM relaykit.user_relays l
                  JOIN relaykit.relay_hosts r ON r.id = l.relay_host_id WHERE l.user_id = u.id), false
          FROM relaykit.users u WHERE u.address = ANY (chain)
        UNION ALL
        SELECT array_position(chain, a.address),
               (SELECT string_agg(r.nexthop, ',' ORDER BY l.position) FROM relaykit.alias_relays l
                  JOIN relaykit.relay_hosts r ON r.id = l.relay_host_id WHERE l.alias_id = a.id), false
          FROM relaykit.aliases a WHERE a.address = ANY (chain)
        UNION ALL
        SELECT array_position(chain, s.address),
               (SELECT string_agg(r.nexthop, ',' ORDER BY l.position) FROM relaykit.sender_address_relays l
                  JOIN relaykit.relay_hosts r ON r.id = l.relay_host_id WHERE l.sender_address_id = s.id), false
          FROM relaykit.sender_addresses s WHERE s.address = ANY (chain)
        UNION ALL
        SELECT array_position(chain, s.sender_key), s.nexthops, s.nexthops IS NULL
          FROM relaykit.sender_rules s WHERE s.sender_key = ANY (chain)
    ) AS x WHERE x.hops IS NOT NULL OR x.opted_out ORDER BY x.pos LIMIT 1;
    IF found IS NULL AND relay_host <> '' THEN
        -- no rule anywhere in the chain (so none for a parent wildcard either): a managed
        -- domain gets this node's RELAY_HOST (core/plan.py, the default routes)
        at_domain := CASE WHEN key LIKE '@.%' THEN NULL WHEN key LIKE '@%' THEN 1 ELSE 2 END;
        IF at_domain IS NOT NULL AND cardinality(chain) >= at_domain AND EXISTS (
                SELECT 1 FROM relaykit.managed_domains m WHERE m.name = substr(chain[at_domain], 2)) THEN
            found := at_domain;
            hops := relay_host;
        END IF;
    END IF;
    IF found IS NULL THEN
        RETURN;
    END IF;
    IF hops IS NULL THEN  -- opted out: DEFAULT_RELAY_HOST, else the recipient's MX
        IF relayhost = '' THEN
            transport := 'DUNNO';
            nexthops := 'DUNNO';
            RETURN;
        END IF;
        hops := relayhost;
    END IF;
    -- A credential of a broader key than the rule's belongs to another rule: the relay
    -- then gets only its own (credentials by relay: relaykit_relay*). See core/routing.py.
    hidden := NOT EXISTS (SELECT 1 FROM relaykit.sasl_credentials c WHERE c.sasl_key = ANY (chain[1:found]))
              AND EXISTS (SELECT 1 FROM relaykit.sasl_credentials c
                           WHERE c.sasl_key = ANY (chain[found + 1:cardinality(chain)]));
    nexthops := relaykit.plain_hops(hops);
    transport := CASE WHEN relaykit.implicit_tls(hops)
                      THEN CASE WHEN hidden THEN 'relaykit_relay_smtps' ELSE 'relaykit_smtps' END
                      ELSE CASE WHEN hidden THEN 'relaykit_relay' ELSE 'smtp' END
                 END || ':' || nexthops;
END $$;

-- smtp_sasl_password_maps: the credential of the nearest key of `key`'s chain (an
-- address's own, @domain's, the nearest @.parent's), or a relay's by its next hop.
CREATE OR REPLACE FUNCTION relaykit.sasl_lookup(key text) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.credentials FROM relaykit.sasl_credentials c
     WHERE c.sasl_key = ANY (relaykit.sender_chain(key))
     ORDER BY array_position(relaykit.sender_chain(key), c.sasl_key) LIMIT 1 $$;

-- transport_maps (relays by recipient domain: `domain`, `.domain`; Postfix itself tries
-- the recipient's domain, then its `.parent`s): credentials by relay only (relaykit_rcpt*).
CREATE OR REPLACE VIEW relaykit.recipient_transports AS
    SELECT recipient_key,
           CASE WHEN relaykit.implicit_tls(nexthops) THEN 'relaykit_rcpt_smtps:' ELSE 'relaykit_rcpt:' END
           || relaykit.plain_hops(nexthops) AS transport
      FROM relaykit.recipient_relays;

-- smtp_tls_policy_maps: the relays of the new tables require TLS too.
CREATE OR REPLACE VIEW relaykit.tls_policies AS
    SELECT nexthop, 'encrypt'::text AS policy FROM relaykit.relay_hosts
    UNION
    SELECT hop, 'encrypt'::text
      FROM (SELECT nexthops FROM relaykit.sender_rules WHERE nexthops IS NOT NULL
            UNION ALL SELECT nexthops FROM relaykit.recipient_relays) r
           CROSS JOIN LATERAL unnest(string_to_array(relaykit.plain_hops(r.nexthops), ',')) AS h(hop);

-- Functions that read credentials run as their owner: only Postfix's role may call them.
REVOKE ALL ON FUNCTION relaykit.sender_decision(text, text, text), relaykit.sasl_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION relaykit.sender_decision(text, text, text), relaykit.sasl_lookup(text),
                          relaykit.plain_hops(text), relaykit.implicit_tls(text), relaykit.sender_chain(text)
    TO relaykit_postfix;
GRANT SELECT ON relaykit.recipient_transports TO relaykit_postfix;
