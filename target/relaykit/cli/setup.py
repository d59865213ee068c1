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
             "setup relay add-domain example.com [2001:db8::25] 2525",
             "setup relay add-domain billing@example.com smtp.relay.test 465",
             "setup relay add-domain @.example.com smtps:smtp.relay.test 2587"),
            min_args=2, max_args=3,
            details="Sets the line '@domain [host]:port' in postfix-relaymap.cf, replacing the\n"
                    "domain's previous entry. <host> is a hostname, [hostname], IPv4 or IPv6 address.\n"
                    "<domain> may also be one address (user@domain) or @.domain (every subdomain).\n"
                    "Ports 465 and 2465 use implicit TLS (TLS from the first byte), others STARTTLS;\n"
                    "<host> written smtps:<host> forces implicit TLS, smtp:<host> STARTTLS.",
        ),
        Command(
            "add-auth", "relaykit.commands.relay:add_auth", "<domain|[host]:port> <user> [<password>]",
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
            "explain", "relaykit.commands.explain:explain", "<sender> [<recipient>]",
            "Show the route Postfix takes for mail from <sender> (to <recipient>), and why.",
            ("setup relay explain alice@example.com",
             "setup relay explain alice@example.com bob@example.net"),
            min_args=1, max_args=2,
            details="Prints relay or direct delivery, the transport, whether TLS is required,\n"
                    "the username presented to each relay (never a password) and the file:line\n"
                    "(or variable) of the rule that decided it, from the current configuration files.",
        ),
    ),
)

SETUP = Group("setup", "relaykit admin commands (docker-mailserver compatible).", (RELAY,))


def main(argv: list[str] | None = None) -> int:
    return main_guard(lambda args: run(SETUP, args, "setup"), sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
