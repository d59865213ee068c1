-- relaykit schema 5: each relay gets only the credential of its route (core/routing.py).
-- A route chosen for one address (a user's, an alias's, a linked sender address's) is
-- sent through a client that looks credentials up by relay only (relaykit_relay, or
-- relaykit_relay_smtps for implicit TLS): the domain's credential belongs to the domain's
-- route, not to a relay picked for one of its addresses. Domain routes keep `smtp:` /
-- `relaykit_smtps:` (the domain's credential, then the relay's).
CREATE OR REPLACE VIEW relaykit.sender_transports AS
    SELECT r.sender_key,
           CASE WHEN (SELECT bool_and(coalesce(substring(hop FROM ':([0-9]+)$') IN ('465', '2465'), false))
                        FROM unnest(string_to_array(r.nexthops, ',')) AS hop)
                THEN CASE WHEN r.sender_key LIKE '@%' THEN 'relaykit_smtps:' ELSE 'relaykit_relay_smtps:' END
                ELSE CASE WHEN r.sender_key LIKE '@%' THEN 'smtp:' ELSE 'relaykit_relay:' END
           END || r.nexthops AS transport
      FROM relaykit.sender_relays r;

GRANT SELECT ON relaykit.sender_transports TO relaykit_postfix;
