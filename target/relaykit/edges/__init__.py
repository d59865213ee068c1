"""The only code that touches the system: Postfix, Dovecot, ip/openssl, the atomic file editor."""
