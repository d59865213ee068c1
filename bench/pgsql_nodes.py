"""Three Postfix nodes on one PostgreSQL database (the PostgreSQL store): how long a change
made on one node takes to be used by the others, and how long mail takes to flow again
after the database was down and came back. Real Postfix 3.7, real PostgreSQL, recording
relays; the queue retries every second here (the test instances' queue_run_delay).

    test/netns.sh .venv/bin/python bench/pgsql_nodes.py [--down SECONDS] [--reload]

--reload: run `postfix reload` on each node as soon as the database answers again (what
`relaykit start` does, see README "Several nodes, one database"), to compare.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))

import psycopg  # noqa: E402

from e2e.conftest import MailRun  # noqa: E402
from harness.postgres import PostgresServer  # noqa: E402
from harness.relays import CertificateAuthority  # noqa: E402

from relaykit.stores.db import upgrade  # noqa: E402


def try_send(node: MailRun, sender: str, recipient: str) -> str | None:
    """The subject when the node accepted the message, None when it refused it (4xx)."""
    try:
        return node.send(sender, recipient)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--down", type=float, default=5.0, help="seconds the database stays down")
    parser.add_argument("--reload", action="store_true", help="postfix reload on each node when it is back")
    parser.add_argument("--rounds", type=int, default=10, help="changes measured for propagation")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp())
    ca = CertificateAuthority(root / "ca")
    server = PostgresServer(root / "pg").create().start()
    nodes = [MailRun(root / f"node-{n}", ca) for n in "abc"]
    try:
        db = server.database()
        with psycopg.connect(server.url(db), autocommit=True) as conn:
            upgrade(conn)
        relays = [nodes[0].relay(f"r{i}") for i in range(2)]
        for node in nodes:
            node.vars.update(RELAYKIT_DATABASE_URL=server.url(db))
        nodes[0].run("setup", "relay", "add-domain", "shop.test", "127.0.0.1", str(relays[0].port))
        for node in nodes:
            node.start()
            nodes[0].wait_received(node.send("warm@shop.test"))

        # propagation: a change on node i, the next message of node i+1 uses it
        samples = []
        for n in range(args.rounds):
            changer, user = nodes[n % 3], nodes[(n + 1) % 3]
            relay = relays[(n + 1) % 2]
            changer.run("setup", "relay", "add-domain", "shop.test", "127.0.0.1", str(relay.port))
            changed = time.monotonic()
            got = nodes[0].wait_received(user.send("jane@shop.test", f"r{n}@far.test"))
            samples.append(time.monotonic() - changed)
            assert [r.name for r, _ in got] == [relay.name], got
        print(f"propagation (setup on one node -> relay accepted the next message of another): "
              f"median {statistics.median(samples) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms "
              f"(n={len(samples)})")

        # the database goes down: one message waits in each node's queue (its relay said
        # "try later" just before), new mail is refused with 4xx, nothing bounces
        route = relays[args.rounds % 2]
        route.rcpt_reply = "451 4.3.0 try later"
        queued = [node.send("queued@shop.test", f"q{i}@far.test") for i, node in enumerate(nodes)]
        for i, node in enumerate(nodes):
            node.postfix.wait_log(rf"to=<q{i}@far\.test>.*status=deferred")
        server.stop()
        down = time.monotonic()
        route.rcpt_reply = None
        refused = sum(try_send(node, "during@shop.test", "x@far.test") is None for node in nodes)
        time.sleep(max(0.0, args.down - (time.monotonic() - down)))
        server.start()
        back = time.monotonic()
        if args.reload:
            for node in nodes:
                node.postfix.reload()
        accepted: dict[int, float] = {}
        delivered: dict[int, float] = {}
        while len(delivered) < len(nodes) or len(accepted) < len(nodes):
            now = time.monotonic() - back
            if now > 300:
                raise TimeoutError(f"not recovered after 300 s: accepted {accepted}, delivered {delivered}")
            for i, node in enumerate(nodes):
                if i not in accepted and try_send(node, "after@shop.test", f"a{i}@far.test"):
                    accepted[i] = time.monotonic() - back
                if i not in delivered and nodes[0].received(queued[i]):
                    delivered[i] = time.monotonic() - back
            time.sleep(0.5)
        bounced = sum("bounced" in node.postfix.log() for node in nodes)
        print(f"database down {args.down:.0f} s ({refused}/3 new messages refused with 4xx while down); "
              f"after it is back{' (postfix reload)' if args.reload else ''}: new mail accepted after "
              + ", ".join(f"{accepted[i]:.1f}" for i in range(3)) + " s; the queued message delivered after "
              + ", ".join(f"{delivered[i]:.1f}" for i in range(3)) + f" s; bounced: {bounced}; "
              f"lost: {sum(not nodes[0].received(q) for q in queued)}")
    finally:
        for node in nodes:
            node.stop()
        server.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
