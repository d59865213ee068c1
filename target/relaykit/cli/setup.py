"""`setup`: the docker-mailserver admin CLI (`docker exec <ctr> setup relay ...`).

The tree below is the whole command surface; each leaf names the function that runs it.
"""

from __future__ import annotations

import atexit
import gc
import posix
import sys

from relaykit.cli.dispatch import Command, Group, main_guard, run

RELAY = Group(
    "relay",
    "Route outbound mail through relay hosts (postfix-relaymap.cf, postfix-sasl-password.cf,\n"
    "postfix-oauth2.cf).",
    (
        Command(
            "add-domain", "relaykit.cli.commands.relay:add_domain", "<domain> <host> [<port>]",
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
            "add-auth", "relaykit.cli.commands.relay:add_auth", "<domain|[host]:port> <user> [<password>]",
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
            "add-oauth2", "relaykit.cli.commands.relay:add_oauth2",
            "<domain|[host]:port> <provider> <user> [<name>=<value>...]",
            "Log in to the relay of <domain> with OAuth2 (XOAUTH2) tokens that relaykit fetches.",
            ("printf 'client_secret=%s\\n' \"$SECRET\" | setup relay add-oauth2 [smtp.office365.com]:587 "
             "microsoft relay@corp.example tenant=<tenant-id> client_id=<app-id>",
             "printf 'client_secret=%s\\nrefresh_token=%s\\n' \"$S\" \"$T\" | setup relay add-oauth2 "
             "example.com google you@example.com client_id=<id>.apps.googleusercontent.com",
             "setup relay add-oauth2 [smtp.relay.test]:587 generic app@relay.test "
             "token_url=https://idp.relay.test/token client_id=app client_secret_file=/run/secrets/app"),
            min_args=3, max_args=None,
            details="Sets '<key> <provider> <user> name=value...' in postfix-oauth2.cf (mode 0600).\n"
                    "<provider>: microsoft (tenant, client_id; client_secret or certificate=/path.pem;\n"
                    "optional authority, scope), google (client_id, client_secret, refresh_token;\n"
                    "optional token_url, scope) or generic (token_url, client_id; client_secret,\n"
                    "refresh_token, scope as the endpoint needs). client_secret and refresh_token are\n"
                    "never arguments: they are asked for without echo, or read from standard input\n"
                    "as name=value lines, or named as client_secret_file=/refresh_token_file= paths.\n"
                    "relaykit start renews the tokens before they expire. Files store only.",
        ),
        Command(
            "del-oauth2", "relaykit.cli.commands.relay:del_oauth2", "<domain>|<[host]:port>",
            "Remove the OAuth2 credential of a sender domain or of a relay.",
            ("setup relay del-oauth2 [smtp.office365.com]:587",),
            min_args=1, max_args=1,
            details="Removes the entry from postfix-oauth2.cf. Exit status 1 when there is none.",
        ),
        Command(
            "exclude-domain", "relaykit.cli.commands.relay:exclude_domain", "<domain>",
            "Deliver mail from <domain> directly, not through RELAY_HOST.",
            ("setup relay exclude-domain internal.example.com",),
            min_args=1, max_args=1,
            details="Sets the opt-out line '@domain' in postfix-relaymap.cf.",
        ),
        Command(
            "del-domain", "relaykit.cli.commands.relay:del_domain", "<domain>",
            "Remove the relaymap line of <domain> (its route or its opt-out).",
            ("setup relay del-domain example.com",),
            min_args=1, max_args=1,
            details="Its mail then follows RELAY_HOST / DEFAULT_RELAY_HOST again.\n"
                    "Exit status 1 when <domain> has no line in postfix-relaymap.cf.",
        ),
        Command(
            "del-auth", "relaykit.cli.commands.relay:del_auth", "<domain>|<[host]:port>",
            "Remove the credentials of a sender domain or of a relay.",
            ("setup relay del-auth example.com", "setup relay del-auth [smtp.mailgun.org]:587"),
            min_args=1, max_args=1,
            details="Removes the entry from postfix-sasl-password.cf. Exit status 1 when there is none.",
        ),
        Command(
            "add-recipient-domain", "relaykit.cli.commands.relay:add_recipient_domain",
            "<domain|.domain> <host> [<port>]",
            "Send mail TO <domain> through the relay <host>:<port>, whoever the sender.",
            ("setup relay add-recipient-domain partner.example smtp.partner-relay.test 587",
             "setup relay add-recipient-domain .blocked.example smtps:smtp.relay.test 2587"),
            min_args=2, max_args=3,
            details="Sets the line 'domain [host]:port' in postfix-recipient-relaymap.cf (.domain:\n"
                    "every subdomain). A recipient rule beats every sender rule, and the relay gets\n"
                    "its own credentials (add-auth [host]:port), never the sender's. <host> and\n"
                    "<port> as for add-domain. Files only: refused with RELAYKIT_DATABASE_URL.",
        ),
        Command(
            "del-recipient-domain", "relaykit.cli.commands.relay:del_recipient_domain", "<domain|.domain>",
            "Remove the recipient rule of <domain> from postfix-recipient-relaymap.cf.",
            ("setup relay del-recipient-domain partner.example",),
            min_args=1, max_args=1,
            details="Exit status 1 when <domain> has no line there.",
        ),
        Command(
            "list", "relaykit.cli.commands.relay_view:list_relays", "[--json]",
            "Show which relay each sender uses and as which user (passwords masked).",
            ("setup relay list", "setup relay list --json | jq '.[] | select(.user == null)'"),
            min_args=0, max_args=1,
            details="Read from the plan relaykit configure applies: '*' is every sender without\n"
                    "an entry of its own (DEFAULT_RELAY_HOST). --json prints a list of objects\n"
                    "{sender, relays, direct, rule, user, password, credentials, tls, oauth2} for scripts\n"
                    "(oauth2: the provider of an XOAUTH2 login, else null).",
        ),
        Command(
            "check", "relaykit.cli.commands.relay_view:check", "",
            "Validate the environment and every config file; report all problems.",
            ("setup relay check",),
            details="Each problem is printed as file:line (or the variable) and a message.\n"
                    "Exit status 1 if there is any; nothing is changed either way.",
        ),
        Command(
            "test", "relaykit.cli.commands.relay_probe:main", "<sender> <recipient>",
            "Send a real test message along the configured route, showing each SMTP step.",
            ("setup relay test alice@example.com me@example.org",),
            min_args=2, max_args=2,
            details="Connects to the relay the sender's mail goes to, requires TLS (STARTTLS,\n"
                    "or implicit TLS on port 465), logs in with the configured credentials\n"
                    "(never shown), and sends a short message to <recipient>. Exit status 1\n"
                    "when any step fails; the printed steps say which and what the relay said.",
        ),
        Command(
            "explain", "relaykit.cli.commands.explain:explain", "<sender> [<recipient>]",
            "Show the route Postfix takes for mail from <sender> (to <recipient>), and why.",
            ("setup relay explain alice@example.com",
             "setup relay explain alice@example.com bob@example.net"),
            min_args=1, max_args=2,
            details="Prints relay or direct delivery, the transport, whether TLS is required,\n"
                    "the username presented to each relay (never a password) and the file:line\n"
                    "(or variable) of the rule that decided it, from the current configuration files.",
        ),
        Command(
            "link", "relaykit.cli.commands.database:link", "<address> <host> [<port>]",
            "Send mail from one address through a relay (PostgreSQL store).",
            ("setup relay link jane@example.com smtp.relay.test 587",),
            min_args=2, max_args=3,
            details="<address> is a user, an alias or an external sender address in the database;\n"
                    "the link is made for that kind. Address links win over domain ones.",
        ),
        Command(
            "import", "relaykit.cli.commands.database:import_", "[<config-dir>]",
            "Copy a DMS config directory into the database (PostgreSQL store).",
            ("setup relay import", "setup relay import /tmp/docker-mailserver"),
            min_args=0, max_args=1,
            details="Reads postfix-relaymap.cf, postfix-recipient-relaymap.cf,\n"
                    "postfix-sasl-password.cf, postfix-accounts.cf and postfix-virtual.cf (default:\n"
                    "RELAYKIT_CONFIG_DIR) and writes them in one transaction: every rule the files\n"
                    "can hold (wildcards, smtps:/smtp: modes, address rules); an invalid line imports\n"
                    "nothing. The files are left in place.",
        ),
    ),
)

COMPLETION = Command(
    "completion", "relaykit.cli.commands.completion:main", "[bash|zsh]",
    "Print a shell completion script for setup and relaykit.",
    ("source <(setup completion bash)", "source <(setup completion zsh)"),
    min_args=0, max_args=1,
    details="The image installs it in /usr/share/bash-completion/completions/.",
)

EMAIL = Group(
    "email",
    "Accounts that may send on the submission ports 587/465 (postfix-accounts.cf).",
    (
        Command(
            "add", "relaykit.cli.commands.email:add", "<email> [<password>]",
            "Add an account; its owner may then send as <email> and its aliases.",
            ("setup email add user@example.com",
             "printf '%s\\n' \"$PASSWORD\" | setup email add user@example.com"),
            min_args=1, max_args=2,
            details="Without <password> it is asked for without echo, or read from standard input\n"
                    "when that is not a terminal (a password argument shows in ps(1) and shell\n"
                    "history). Stored as a SHA512-CRYPT hash made by Dovecot's doveadm pw.",
        ),
        Command(
            "update", "relaykit.cli.commands.email:update", "<email> [<password>]",
            "Change the password of an existing account.",
            ("setup email update user@example.com",),
            min_args=1, max_args=2,
        ),
        Command(
            "del", "relaykit.cli.commands.email:delete", "[-y] <email> [<email>...]",
            "Delete accounts (-y is accepted for DMS compatibility).",
            ("setup email del user@example.com",),
            min_args=1, max_args=None,
        ),
        Command(
            "list", "relaykit.cli.commands.email:list_accounts", "",
            "List the accounts and the aliases that point to them.",
            ("setup email list",),
        ),
    ),
)

ALIAS = Group(
    "alias",
    "Aliases (postfix-virtual.cf); their targets may send as them on ports 587/465.",
    (
        Command(
            "add", "relaykit.cli.commands.alias:add", "<alias> <target>",
            "Make <alias> (user@domain, or @domain for a whole domain) go to <target> too.",
            ("setup alias add info@example.com alice@example.com",),
            min_args=2, max_args=2,
        ),
        Command(
            "del", "relaykit.cli.commands.alias:delete", "<alias> <target>",
            "Remove <target> from <alias>; the alias goes with its last target.",
            ("setup alias del info@example.com alice@example.com",),
            min_args=2, max_args=2,
        ),
        Command(
            "list", "relaykit.cli.commands.alias:list_aliases", "",
            "List the aliases and their targets.",
            ("setup alias list",),
        ),
    ),
)

QUEUE = Group(
    "queue",
    "Postfix's mail queue: what waits, why, and what to do with it (postqueue, postsuper).",
    (
        Command(
            "list", "relaykit.cli.commands.queue:list_queue", "[--json]",
            "Show every queued message: id, queue, age, sender, recipients, last reason.",
            ("setup queue list", "setup queue list --json | jq '.[] | select(.queue == \"deferred\")'"),
            min_args=0, max_args=1,
            details="Oldest first. The reason is Postfix's last delivery failure (e.g. 'connect to\n"
                    "...: Connection refused'). --json prints a list of objects {queue_id, queue,\n"
                    "sender, recipients, arrival_time, age_seconds, size, reason} for scripts.",
        ),
        Command(
            "flush", "relaykit.cli.commands.queue:flush", "[<relay>]",
            "Try deferred mail now: all of it, or the messages routed through <relay>.",
            ("setup queue flush", "setup queue flush smtp.relay.test", "setup queue flush [smtp.relay.test]:587"),
            min_args=0, max_args=1,
            details="<relay> is host, [host], host:port or [host]:port. Which messages it carries is\n"
                    "decided by the current routes (as 'setup relay explain' shows), per recipient.",
        ),
        Command(
            "retry", "relaykit.cli.commands.queue:retry", "<queue id>",
            "Try one deferred message now (postqueue -i).",
            ("setup queue retry 7FA91226B30",), min_args=1, max_args=1,
        ),
        Command(
            "hold", "relaykit.cli.commands.queue:hold", "<queue id>",
            "Keep a message from being delivered until it is released (postsuper -h).",
            ("setup queue hold 7FA91226B30",), min_args=1, max_args=1,
        ),
        Command(
            "release", "relaykit.cli.commands.queue:release", "<queue id>",
            "Return a held message to delivery (postsuper -H).",
            ("setup queue release 7FA91226B30",), min_args=1, max_args=1,
        ),
        Command(
            "delete", "relaykit.cli.commands.queue:delete",
            "[-y] <queue id>... | [-y] --deferred-older-than <age>",
            "Delete messages, or every deferred message older than <age> (7d, 12h, 30m).",
            ("setup queue delete 7FA91226B30", "setup queue delete -y --deferred-older-than 7d"),
            min_args=1, max_args=None,
            details="Asks for confirmation (reads the answer from standard input when that is not a\n"
                    "terminal); -y does not ask, as in DMS. The senders get no bounce (postsuper -d).",
        ),
    ),
)

CONFIG = Group(
    "config",
    "Signing keys (DMS's setup config).",
    (
        Command(
            "dkim", "relaykit.cli.commands.dkim:dkim", "[<domain>...] [keysize <bits>] [selector <name>] | list",
            "Make DKIM keys (opendkim/keys/<domain>/<selector>.private) and print the DNS records.",
            ("setup config dkim example.com", "setup config dkim keysize 4096 selector s2026 example.org",
             "setup config dkim", "setup config dkim list"),
            min_args=0, max_args=None,
            details="Without a domain: every domain of postfix-accounts.cf and postfix-virtual.cf.\n"
                    "keysize 1024, 2048 (default) or 4096; selector default 'mail'. A domain with a key\n"
                    "keeps it. Publish the printed TXT record as <selector>._domainkey.<domain>, then\n"
                    "restart: mail whose From is in that domain is signed by OpenDKIM.",
        ),
    ),
)

SETUP = Group("setup", "relaykit admin commands (docker-mailserver compatible).",
              (RELAY, EMAIL, ALIAS, QUEUE, CONFIG, COMPLETION))


def main(argv: list[str] | None = None) -> int:
    return main_guard(lambda args: run(SETUP, args, "setup"), sys.argv[1:] if argv is None else argv)


def script() -> None:
    """The `setup` script's whole run (target/bin/setup): main(), then the process's exit.

    The interpreter's exit frees every object the imports made (~1 ms, a garbage collection
    over them included). Nothing needs that when no atexit callback is registered (logging,
    psycopg and tempfile's finalizers register one) and no thread may be running (threading
    was never imported: subprocess, rich and psycopg import it): the command closed its
    files, so flushing stdout and stderr is all that is left before _exit. Otherwise
    gc.freeze() still spares the exit's last collection the imports' objects (~2 ms)."""
    status = main()
    callbacks = getattr(atexit, "_ncallbacks", lambda: -1)()  # CPython's count (3.11+); -1: unknown
    if callbacks == 0 and "threading" not in sys.modules and type(status) is int:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # e.g. a closed pipe: the normal exit reports it, as always
            pass
        else:
            posix._exit(status)  # os._exit, without importing os (setup's fast path never does)
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    sys.exit(main())
