"""Three Postfix nodes on one PostgreSQL database: a change made with `setup` on any node
is used by the other two for their next message, with no reload and no sync step. Every
kind of rule the files know travels this way (a domain route with its credential, a
subdomain wildcard in implicit TLS by an smtps: prefix, a relay by recipient domain).

The time from the end of the `setup` command to the relay accepting the other node's
next message is measured and printed (`-s`); bench/pgsql_nodes.py measures it, and the
recovery after a database restart, at length (README: "Several nodes, one database").
"""

from __future__ import annotations

import time

import pytest
from e2e.conftest import MailRun

pytestmark = pytest.mark.e2e


def test_a_change_on_any_of_three_nodes_is_used_by_the_others_for_their_next_message(mailrun, pgdb, tmp_path, ca):
    nodes = [mailrun, MailRun(tmp_path / "node-b", ca), MailRun(tmp_path / "node-c", ca)]
    try:
        shop = mailrun.relay("shop", users={"ushop": "pshop"})
        corp = mailrun.relay("corp", tls="implicit", users={"ucorp": "pcorp"})
        partner = mailrun.relay("partner", users={"urcpt": "prcpt"})
        for node in nodes:
            node.vars.update(pgdb.vars())
            node.start()
        masters = [node.postfix.master_pid() for node in nodes]
        changes = [  # (node that changes, setup commands, sender, recipient, relay, login)
            (0, [("add-domain", "shop.test", "127.0.0.1", str(shop.port)), ("add-auth", "shop.test", "ushop", "pshop")],
             "jane@shop.test", "a@far.test", "shop", "ushop"),
            (1, [("add-domain", "@.corp.test", "smtps:127.0.0.1", str(corp.port)),
                 ("add-auth", "@.corp.test", "ucorp", "pcorp")],
             "x@dev.corp.test", "a@far.test", "corp", "ucorp"),
            (2, [("add-recipient-domain", "partner.test", "127.0.0.1", str(partner.port)),
                 ("add-auth", f"[127.0.0.1]:{partner.port}", "urcpt", "prcpt")],
             "jane@shop.test", "b@partner.test", "partner", "urcpt"),
        ]
        propagation = []
        for changer, commands, sender, recipient, relay, login in changes:
            for command in commands:
                nodes[changer].run("setup", "relay", *command)
            changed = time.monotonic()
            for i, node in enumerate(nodes):
                if i == changer:
                    continue
                got = mailrun.wait_received(node.send(sender, recipient))
                propagation.append(time.monotonic() - changed)
                assert [(r.name, m.login, m.tls) for r, m in got] == [(relay, login, True)], (changer, i)
                changed = time.monotonic()
        print(f"\nchange on one node -> accepted by the relay from another node: "
              f"max {max(propagation):.2f} s, " + ", ".join(f"{t:.2f}" for t in propagation))
        assert [node.postfix.master_pid() for node in nodes] == masters
        assert not any("reload" in node.postfix.log() or "bounced" in node.postfix.log() for node in nodes)
    finally:
        for node in nodes[1:]:
            node.stop()
