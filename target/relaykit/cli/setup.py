"""`setup`: the docker-mailserver admin CLI (`docker exec <ctr> setup relay ...`).

The tree below is the whole command surface; each leaf names the function that runs it.
"""

from __future__ import annotations

import sys

from relaykit.cli.dispatch import Command, Group, main_guard, run

RELAY = Group(
    "relay",
    "Route outbound mail through relay hosts (postfix-relaymap.cf, postfix-sasl-password.cf).",
    (
        Command(
            "add-domain", "relaykit.commands.relay:add_domain", "<domain> <host> [<port>]",
            "Send mail from <domain> through the relay <host>:<port> (port 25 when omitted).",
            ("setup relay add-domain example.com smtp.relay.test 587",
             "setup relay add-domain example.com [2001:db8::25] 2525"),
            min_args=2, max_args=3,
            details="Sets the line '@domain [host]:port' in postfix-relaymap.cf, replacing the\n"
                    "domain's previous entry. <host> is a hostname, [hostname], IPv4 or IPv6 address.",
        ),
        Command(
            "add-auth", "relaykit.commands.relay:add_auth", "<domain> <user> [<password>]",
            "Authenticate mail from <domain> to its relay as <user>.",
            ("setup relay add-auth example.com apikey",
             "printf '%s\\n' \"$PASSWORD\" | setup relay add-auth example.com apikey"),
            min_args=2, max_args=3,
            details="Sets '@domain user:password' in postfix-sasl-password.cf (mode 0600).\n"
                    "Without <password> it is asked for without echo, or read from standard\n"
                    "input when that is not a terminal: prefer that, since a password given as\n"
                    "an argument is visible to other users in ps(1) and in shell history.",
        ),
        Command(
            "exclude-domain", "relaykit.commands.relay:exclude_domain", "<domain>",
            "Deliver mail from <domain> directly, not through RELAY_HOST.",
            ("setup relay exclude-domain internal.example.com",),
            min_args=1, max_args=1,
            details="Sets the opt-out line '@domain' in postfix-relaymap.cf.",
        ),
        Command(
            "link", "relaykit.commands.database:link", "<address> <host> [<port>]",
            "Send mail from one address through a relay (PostgreSQL store).",
            ("setup relay link jane@example.com smtp.relay.test 587",),
            min_args=2, max_args=3,
            details="<address> is a user, an alias or an external sender address in the database;\n"
                    "the link is made for that kind. Address links win over domain ones.",
        ),
        Command(
            "import", "relaykit.commands.database:import_", "[<config-dir>]",
            "Copy a DMS config directory into the database (PostgreSQL store).",
            ("setup relay import", "setup relay import /tmp/docker-mailserver"),
            min_args=0, max_args=1,
            details="Reads postfix-relaymap.cf, postfix-sasl-password.cf, postfix-accounts.cf and\n"
                    "postfix-virtual.cf (default: RELAYKIT_CONFIG_DIR) and writes them in one\n"
                    "transaction: an invalid line imports nothing. The files are left in place.",
        ),
    ),
)

SETUP = Group("setup", "relaykit admin commands (docker-mailserver compatible).", (RELAY,))


def main(argv: list[str] | None = None) -> int:
    return main_guard(lambda args: run(SETUP, args, "setup"), sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
