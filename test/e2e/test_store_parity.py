"""The two stores are one product: the same configuration, in files or moved into
PostgreSQL with `setup relay import`, routes every message the same way over real SMTP,
and every inspection command (explain, list --json, check, `setup relay test`) says what
the recording relays received.

The configuration hides rules behind others: an address with its own relay but the
domain's credential (which must not follow it), an opted-out address, a subdomain
wildcard in implicit TLS by an `smtps:` prefix on a STARTTLS port, an exact domain that
beats its wildcard, a recipient-domain relay that beats every sender rule, this node's
RELAY_HOST and DEFAULT_RELAY_HOST.
"""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.e2e

# sender, recipient -> (relay name, login) the relay must see
CASES = {
    ("jane@shop.test", "a@far.test"): ("jane", "ujane"),  # her rule, her own credential
    ("billing@shop.test", "a@far.test"): ("jane", "ub"),  # her relay; @shop.test's login is not for it
    ("bob@shop.test", "a@far.test"): ("shop", "ushop"),
    ("intern@shop.test", "a@far.test"): ("default", "urelay"),  # opted out: DEFAULT_RELAY_HOST, its own login
    ("x@dev.corp.test", "a@far.test"): ("corp", "ucorp"),  # @.corp.test, smtps: on a STARTTLS port
    ("y@eu.corp.test", "a@far.test"): ("default", "urelay"),  # exact opt-out beats the wildcard
    ("ann@managed.test", "a@far.test"): ("node", None),  # managed, no rule: this node's RELAY_HOST
    ("a@other.test", "a@far.test"): ("default", "urelay"),  # no rule at all
    ("bob@shop.test", "a@partner.test"): ("partner", "urcpt"),  # by recipient: wins over @shop.test
}


def _configure(mailrun, store: str, pgdb) -> dict:
    relays = {name: mailrun.relay(name, users=users, **extra) for name, users, extra in (
        ("shop", {"ushop": "pshop"}, {}),
        ("jane", {"ujane": "pjane", "ub": "pb"}, {}),
        ("corp", {"ucorp": "pcorp"}, {"tls": "implicit"}),
        ("partner", {"urcpt": "prcpt"}, {}),
        ("default", {"urelay": "prelay"}, {}),
        ("node", {}, {}),
    )}
    hop = {name: relay.nexthop for name, relay in relays.items()}
    mailrun.write("postfix-relaymap.cf", f"@shop.test {hop['shop']}\njane@shop.test {hop['jane']}\n"
                  f"billing@shop.test {hop['jane']}\nintern@shop.test\n@.corp.test smtps:{hop['corp']}\n"
                  "@eu.corp.test\n")
    mailrun.write("postfix-recipient-relaymap.cf", f"partner.test {hop['partner']}\n")
    mailrun.write("postfix-sasl-password.cf", f"@shop.test ushop:pshop\njane@shop.test ujane:pjane\n"
                  f"{hop['jane']} ub:pb\n@.corp.test ucorp:pcorp\n{hop['partner']} urcpt:prcpt\n"
                  f"{hop['default']} urelay:prelay\n")
    mailrun.write("postfix-accounts.cf", "jane@shop.test|{PLAIN}x\nann@managed.test|{PLAIN}y\n")
    mailrun.vars.update(DEFAULT_RELAY_HOST=hop["default"], RELAY_HOST="127.0.0.1",
                        RELAY_PORT=str(relays["node"].port))
    if store == "postgresql":
        mailrun.vars.update(pgdb.vars())
        mailrun.run("setup", "relay", "import")
        for path in mailrun.config_dir.iterdir():  # from now on, the database only
            path.unlink()
    mailrun.start()
    return relays


def _explained(mailrun, sender: str, recipient: str) -> tuple[str, str | None]:
    out = mailrun.run("setup", "relay", "explain", sender, recipient).stdout
    login = re.search(r"^login:\s+\S+: (\S+)", out, re.M).group(1)
    return re.search(r"^route:\s+relay (\S+)", out, re.M).group(1), None if login == "none" else login


@pytest.mark.parametrize("store", ["files", "postgresql"])
def test_every_inspection_command_says_what_the_relays_received(mailrun, store, request):
    pgdb = request.getfixturevalue("pgdb") if store == "postgresql" else None
    relays = _configure(mailrun, store, pgdb)
    by_hop = {relay.nexthop: name for name, relay in relays.items()}
    subjects = {case: mailrun.send(*case) for case in CASES}
    for case, subject in subjects.items():
        got = mailrun.wait_received(subject)
        assert [(r.name, m.login, m.tls) for r, m in got] == [(*CASES[case], True)], case
        hop, login = _explained(mailrun, *case)
        assert (by_hop[hop], login) == CASES[case], case

    listed = {row["sender"]: row for row in json.loads(mailrun.run("setup", "relay", "list", "--json").stdout)}
    for key, sender in (("jane@shop.test", "jane@shop.test"), ("billing@shop.test", "billing@shop.test"),
                        ("@shop.test", "bob@shop.test"), ("intern@shop.test", "intern@shop.test"),
                        ("@.corp.test", "x@dev.corp.test"), ("@eu.corp.test", "y@eu.corp.test"),
                        ("@managed.test", "ann@managed.test"), ("*", "a@other.test")):
        row = listed[key]
        assert ([by_hop[h] for h in row["relays"]], row["user"]) == (
            [CASES[(sender, "a@far.test")][0]], CASES[(sender, "a@far.test")][1]), key

    check = mailrun.run("setup", "relay", "check")
    assert "configuration is valid" in check.stdout + check.stderr

    # `setup relay test` sends along the route explain names, with the scoped login
    for sender, (name, login) in (("billing@shop.test", ("jane", "ub")), ("x@dev.corp.test", ("corp", "ucorp"))):
        before = len(relays[name].messages)
        mailrun.run("setup", "relay", "test", sender, "probe@far.test")
        assert [(m.mail_from, m.login, m.tls) for m in relays[name].messages[before:]] == [(sender, login, True)]
    assert "bounced" not in mailrun.postfix.log()
