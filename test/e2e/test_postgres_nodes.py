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


@pytest.mark.slow
def test_relaykit_start_delivers_within_seconds_once_the_database_is_back(mailrun, tmp_path):
    """Postfix alone takes 60-90 s (its pgsql client's retry interval); `relaykit start`
    asks the database every 2 s and reloads Postfix and flushes the queue when it is back."""
    import psycopg
    from harness.postgres import PostgresServer

    from relaykit.stores.db import upgrade

    server = PostgresServer(tmp_path / "pg").create().start()
    try:
        name = server.database()
        with psycopg.connect(server.url(name), autocommit=True) as conn:
            upgrade(conn)
        relay = mailrun.relay("relay")
        mailrun.vars.update(RELAYKIT_DATABASE_URL=server.url(name))
        mailrun.run("setup", "relay", "add-domain", "example.com", "127.0.0.1", str(relay.port))
        daemon = mailrun.daemon()
        mailrun.wait_received(mailrun.send("jane@example.com", "before@example.net"))

        relay.rcpt_reply = "451 4.3.0 try later"  # one message waits in the queue
        queued = mailrun.send("jane@example.com", "queued@example.net")
        mailrun.postfix.wait_log(r"to=<queued@example\.net>.*status=deferred")
        server.stop()
        relay.rcpt_reply = None
        daemon.wait_log("the database does not answer", timeout=10)
        offset = len(mailrun.postfix.log())
        mailrun.postfix.flush()  # tried while the database is down: deferred, not bounced
        mailrun.postfix.wait_log(r"to=<queued@example\.net>.*status=deferred", after=offset)

        server.start()
        back = time.monotonic()
        got = mailrun.wait_received(queued, timeout=30)
        recovery = time.monotonic() - back
        print(f"\ndatabase back -> queued message delivered in {recovery:.1f} s")
        assert [r.name for r, _ in got] == ["relay"] and recovery < 15
        daemon.wait_log("the database answers again: reloaded postfix")
        assert "bounced" not in mailrun.postfix.log() and mailrun.postfix.queue() == []
    finally:
        server.stop()
