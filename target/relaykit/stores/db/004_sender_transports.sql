-- relaykit schema 4: implicit TLS (ports 465 and 2465) with the database store, as with
-- files (routetables.py). sender_dependent_default_transport_maps picks the transport
-- and, above sender_dependent_relayhost_maps, the next hop: so it answers for EVERY
-- route of sender_relays, `smtp:` (STARTTLS) or `relaykit_smtps:` (TLS from the first
-- byte), and a more specific key always wins as it does there.
CREATE OR REPLACE VIEW relaykit.sender_transports AS
    SELECT r.sender_key,
           CASE WHEN (SELECT bool_and(coalesce(substring(hop FROM ':([0-9]+)$') IN ('465', '2465'), false))
                        FROM unnest(string_to_array(r.nexthops, ',')) AS hop)
                THEN 'relaykit_smtps:' ELSE 'smtp:' END || r.nexthops AS transport
      FROM relaykit.sender_relays r;

GRANT SELECT ON relaykit.sender_transports TO relaykit_postfix;
