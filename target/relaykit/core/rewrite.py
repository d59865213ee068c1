"""Sender rewriting and header privacy: what the relay sees of the sender and of the
network behind it. Pure, like core/plan.py.

- postfix-sender-rewrite.cf -> `sender_rewrite`, Postfix's sender_canonical_maps
  (canonical(5)): cleanup rewrites the envelope sender and the sender headers (From,
  Sender, Return-Path...) as mail enters, recipients untouched. Lookup order: the full
  address, then `@domain`; a target `@newdomain` keeps the local part. Routing and
  credentials then see the new sender: that is how a relay that only takes verified
  senders (SES, SendGrid) is given one (`@shop.example noreply@verified.example`, and the
  route for `@verified.example`). `setup relay explain` shows both.
  Cleanup rewrites the headers of mail from remote clients only for
  local_header_rewrite_clients: relaykit lists those that may relay (mynetworks and
  logged-in users), so the From of mail from other containers is rewritten too.
- RELAYKIT_STRIP_RECEIVED -> smtp_header_checks (header_checks(5), applied by the SMTP
  client as mail leaves, whichever route): every Received header (the internal hosts,
  the submitting client's name and IP) and X-Originating-IP are removed.
"""

from __future__ import annotations

from pathlib import Path

from relaykit.model.entries import SenderRewrite
from relaykit.model.plan import Plan, Table
from relaykit.model.settings import Settings

SENDER_REWRITE = "sender_rewrite"
PRIVACY_CHECKS = "smtp_header_checks_privacy"
PRIVACY = ("/^Received:/ IGNORE", "/^X-Originating-IP:/ IGNORE")


def build(settings: Settings, rewrites: tuple[SenderRewrite, ...], table_type: str) -> Plan:
    tables, params = [], {}
    if rewrites:
        tables.append(Table(SENDER_REWRITE, tuple(f"{r.key} {r.target}" for r in rewrites)))
        params["sender_canonical_maps"] = f"{table_type}:{Path(settings.mail_config, SENDER_REWRITE)}"
        params["local_header_rewrite_clients"] = "permit_inet_interfaces, permit_mynetworks, permit_sasl_authenticated"
    if settings.strip_received:
        tables.append(Table(PRIVACY_CHECKS, PRIVACY, kind="regexp"))
        params["smtp_header_checks"] = f"regexp:{Path(settings.mail_config, PRIVACY_CHECKS)}"
    return Plan(tables=tuple(tables), params=params, table_type=table_type)


def rewritten(rewrites: tuple[SenderRewrite, ...], sender: str) -> SenderRewrite | None:
    """The line that rewrites `sender` (Postfix's order: address, then @domain), if any."""
    by_key = {r.key: r for r in rewrites}
    address = sender.lower()
    return by_key.get(address) or by_key.get("@" + address.rpartition("@")[2])
