"""Recording relays and a mail client for the image tests, run INSIDE a container that
shares its network namespace with relaykit's (`--network container:<id>`), so everything
talks over 127.0.0.1 and nothing leaves the machine.

  relay_server.py serve OUT NAME:PORT:USER:PASSWORD ...   # STARTTLS + AUTH relays
  (RELAY_LISTEN=0.0.0.0 to listen beyond loopback: on compose's internal network)
  relay_server.py send FROM TO [HOST:PORT]                # one message into relaykit

`serve` writes what each relay received (messages, AUTH attempts, HELO names) to
OUT/NAME.json after every change, atomically, for the test on the host to read.
"""

from __future__ import annotations

import json
import os
import smtplib
import sys
import time
from dataclasses import asdict
from email.message import EmailMessage
from pathlib import Path

from harness.relays import CaptureRelay, CertificateAuthority


def serve(out: Path, specs: list[str]) -> None:
    ca = CertificateAuthority(Path("/tmp/relay-ca"))
    relays = []
    for spec in specs:
        name, port, user, password = spec.split(":")
        relays.append(CaptureRelay(name, ca, users={user: password}, port=int(port),
                                   host=os.environ.get("RELAY_LISTEN", "127.0.0.1")).start())
    out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, int] = {}
    while True:
        for relay in relays:
            with relay.lock:
                state = {"messages": [{**asdict(m), "data": m.data.decode(errors="replace")} for m in relay.messages],
                         "auth": [asdict(a) for a in relay.auth_attempts]}
            count = len(state["messages"]) + len(state["auth"])
            if seen.get(relay.name) != count or relay.name not in seen:
                tmp = out / f".{relay.name}.json"
                tmp.write_text(json.dumps(state))
                tmp.replace(out / f"{relay.name}.json")
                seen[relay.name] = count
        time.sleep(0.05)


def send(sender: str, recipient: str, address: str = "127.0.0.1:25") -> None:
    host, _, port = address.rpartition(":")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, recipient, f"from {sender}"
    message.set_content(f"mail from {sender} to {recipient}\n")
    with smtplib.SMTP(host, int(port), local_hostname="client.test", timeout=30) as smtp:
        smtp.send_message(message)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "serve":
        serve(Path(args[0]), args[1:])
    elif command == "send":
        send(*args)
    else:
        sys.exit(f"unknown command {command!r}")
