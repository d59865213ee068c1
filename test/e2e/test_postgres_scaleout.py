"""Scale-out: several Postfix nodes share one relay configuration in PostgreSQL, read by
Postfix itself (proxy:pgsql:), over real SMTP."""

from __future__ import annotations

import smtplib

import psycopg
import pytest
from e2e.conftest import MailRun
from harness.postgres import PostgresServer

from relaykit.stores.db import upgrade
from relaykit.secret import Secret
from relaykit.stores.postgres import PostgresStore

pytestmark = pytest.mark.e2e
READER_PASSWORD = "node'pw\\ü"


def test_a_route_set_on_node_a_is_used_by_node_b_for_the_next_message_without_reload(mailrun, pgdb, tmp_path, ca):
    node_a, node_b = mailrun, MailRun(tmp_path / "node-b", ca)
    try:
        first = node_a.relay("first", users={"u1": "p1"})
        second = node_a.relay("second", users={"u2": "p2"})
        default = node_a.relay("default")
        for node in (node_a, node_b):
            node.vars.update(pgdb.vars(), RELAY_HOST="127.0.0.1", RELAY_PORT=str(default.port))
        PostgresStore(pgdb.url).set_account("ann@managed.example", Secret("{PLAIN}x"))
        node_a.run("setup", "relay", "add-domain", "example.com", "127.0.0.1", str(first.port))
        node_a.run("setup", "relay", "add-auth", "example.com", "u1", input="p1\n")
        node_a.start()
        node_b.start()

        got = node_a.wait_received(node_b.send("jane@example.com", "one@example.net"))
        assert [(r.name, m.login, m.tls) for r, m in got] == [("first", "u1", True)]

        master = node_b.postfix.master_pid()
        node_a.run("setup", "relay", "add-domain", "example.com", "127.0.0.1", str(second.port))
        node_a.run("setup", "relay", "add-auth", "example.com", "u2", input="p2\n")
        got = node_a.wait_received(node_b.send("jane@example.com", "two@example.net"))
        assert [(r.name, m.login) for r, m in got] == [("second", "u2")]
        assert node_b.postfix.master_pid() == master
        # a domain of the database with no relay of its own: this node's RELAY_HOST, over TLS
        got = node_a.wait_received(node_b.send("ann@managed.example", "three@example.net"))
        assert [(r.name, m.tls) for r, m in got] == [("default", True)]
        assert "reload" not in node_b.postfix.log()
    finally:
        node_b.stop()


def test_database_down_defers_mail_and_it_flows_when_the_database_is_back(mailrun, tmp_path):
    server = PostgresServer(tmp_path / "pg").create().start()
    try:
        db = server.database()
        with psycopg.connect(server.url(db), autocommit=True) as conn:
            upgrade(conn)
            conn.execute("CREATE ROLE relaykit_reader LOGIN PASSWORD "
                         f"'{READER_PASSWORD.replace(chr(39), chr(39) * 2)}' IN ROLE relaykit_postfix")
        relay = mailrun.relay("relay")
        mailrun.vars.update(RELAYKIT_DATABASE_URL=server.url(db),
                            RELAYKIT_POSTFIX_DATABASE_URL=server.url(db, "relaykit_reader", READER_PASSWORD))
        mailrun.run("setup", "relay", "add-domain", "example.com", "127.0.0.1", str(relay.port))
        mailrun.start()
        mailrun.wait_received(mailrun.send("jane@example.com", "before@example.net"))

        # A message in the queue (the relay says "try later") when the database goes down.
        relay.rcpt_reply = "451 4.3.0 try later"
        offset = len(mailrun.postfix.log())
        queued = mailrun.send("jane@example.com", "queued@example.net")
        mailrun.postfix.wait_log(r"to=<queued@example\.net>.*status=deferred", after=offset)
        server.stop()
        relay.rcpt_reply = None
        offset = len(mailrun.postfix.log())
        mailrun.postfix.flush()
        mailrun.postfix.wait_log(r"to=<queued@example\.net>.*status=deferred", after=offset)
        assert "lookup error" in mailrun.postfix.log()[offset:]
        # New mail is refused with a temporary code, so the sending client keeps it.
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            mailrun.send("jane@example.com", "during@example.net")
        assert refused.value.recipients["during@example.net"][0] == 451
        assert not mailrun.received(queued)
        assert "bounced" not in mailrun.postfix.log()
        assert [q["recipients"][0]["address"] for q in mailrun.postfix.queue()] == ["queued@example.net"]
        assert READER_PASSWORD not in mailrun.postfix.log() and "r%27ead" not in mailrun.postfix.log()

        server.start()
        # Postfix's pgsql client retries a server it found down after 60 s (RETRY_CONN_INTV
        # in dict_pgsql.c); the queue retries every 1-2 s here, so the mail leaves then.
        got = mailrun.wait_received(queued, timeout=100)
        assert [r.name for r, _ in got] == ["relay"]
        assert mailrun.postfix.queue() == []
    finally:
        server.stop()


def test_implicit_tls_relays_from_the_database_and_the_environment(mailrun, pgdb):
    """Ports 465/2465 mean TLS from the first byte here too: a database route, this node's
    RELAY_HOST and DEFAULT_RELAY_HOST, next to a STARTTLS route of the database."""
    smtps = mailrun.relay("smtps", tls="implicit", port=465, users={"u1": "p1", "relay-user": "relay-pass"})
    default = mailrun.relay("default", tls="implicit", port=2465, users={"node-user": "node-pass"})
    starttls = mailrun.relay("starttls", users={"u2": "p2"})
    mailrun.vars.update(pgdb.vars(), RELAY_HOST="127.0.0.1", RELAY_PORT="465",
                        DEFAULT_RELAY_HOST="[127.0.0.1]:2465", RELAY_USER="node-user", RELAY_PASSWORD="node-pass")
    mailrun.run("setup", "email", "add", "ann@managed.example", input="pw\n")  # managed: gets RELAY_HOST
    mailrun.run("setup", "relay", "add-domain", "one.example", "127.0.0.1", "465")
    mailrun.run("setup", "relay", "add-auth", "one.example", "u1", input="p1\n")
    # RELAY_USER is DEFAULT_RELAY_HOST's (README): RELAY_HOST's credentials by relay, here
    mailrun.run("setup", "relay", "add-auth", "[127.0.0.1]:465", "relay-user", input="relay-pass\n")
    mailrun.start()
    mailrun.run("setup", "relay", "add-domain", "two.example", "127.0.0.1", str(starttls.port))  # while running
    mailrun.run("setup", "relay", "add-auth", "two.example", "u2", input="p2\n")

    cases = [("a@one.example", ("smtps", "u1")), ("ann@managed.example", ("smtps", "relay-user")),
             ("b@two.example", ("starttls", "u2")), ("c@elsewhere.example", ("default", "node-user"))]
    for sender, expected in cases:
        got = mailrun.wait_received(mailrun.send(sender))
        assert [(r.name, m.login, m.tls) for r, m in got] == [(*expected, True)], sender
    assert "reload" not in mailrun.postfix.log()
