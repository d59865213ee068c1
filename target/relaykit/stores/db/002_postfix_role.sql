-- The role Postfix's lookups run as: SELECT on the views it queries, nothing else.
-- Create a login role for each node (or one for all) as a member of it:
--   CREATE ROLE postfix_reader LOGIN PASSWORD '...' IN ROLE relaykit_postfix;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'relaykit_postfix') THEN
        CREATE ROLE relaykit_postfix NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA relaykit TO relaykit_postfix;
GRANT SELECT ON relaykit.sender_relays, relaykit.default_relay_senders, relaykit.sasl_passwords,
                relaykit.tls_policies, relaykit.sender_logins, relaykit.virtual_aliases,
                relaykit.managed_domains
    TO relaykit_postfix;
GRANT EXECUTE ON FUNCTION relaykit.postfix_key(text), relaykit.postfix_value(text) TO relaykit_postfix;
