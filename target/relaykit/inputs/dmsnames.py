"""The DMS config file names (in RELAYKIT_CONFIG_DIR). A module of their own, with no
imports: the file store edits them on `setup`'s fast path, dmsfiles.py parses them."""

RELAYMAP = "postfix-relaymap.cf"
RECIPIENT_RELAYMAP = "postfix-recipient-relaymap.cf"
SASL_PASSWORD = "postfix-sasl-password.cf"
ACCOUNTS = "postfix-accounts.cf"
VIRTUAL = "postfix-virtual.cf"
