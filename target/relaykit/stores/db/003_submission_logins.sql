-- relaykit schema 3: submission with the database store. Dovecot (the SASL server of
-- ports 587/465) checks passwords against relaykit.users, and an alias's targets may
-- send as the alias, as with postfix-virtual.cf (submission.py, sender_logins).

-- Dovecot's sql passdb: the login and its {SCHEME}hash, nothing else of users.
CREATE OR REPLACE VIEW relaykit.submission_logins AS
    SELECT address AS login, password_hash FROM relaykit.users;

-- smtpd_sender_login_maps: the envelope sender -> the SASL login(s) that may use it.
-- One row per owner; Postfix joins the rows of a key with commas.
CREATE OR REPLACE VIEW relaykit.sender_logins AS
    SELECT address AS sender, address AS login FROM relaykit.users
    UNION ALL
    SELECT s.address, u.address FROM relaykit.sender_addresses s JOIN relaykit.users u ON u.id = s.user_id
    UNION ALL
    SELECT DISTINCT a.address, lower(t.target)
      FROM relaykit.aliases a CROSS JOIN LATERAL unnest(a.targets) AS t(target);

-- The node's read-only role (002) serves Dovecot too: one login per node, SELECT only.
GRANT SELECT ON relaykit.submission_logins TO relaykit_postfix;
