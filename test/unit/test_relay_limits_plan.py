"""postfix-relay-limits.cf: the line syntax, and what the plan makes of it (a client per
limited relay, qmgr's limits named after it, the routes and explain agreeing)."""

from __future__ import annotations

import pytest

from relaykit.core.plan import build
from relaykit.core.routing import resolve
from relaykit.errors import RelaykitError
from relaykit.inputs.dmsfiles import Row, parse_limit_row, rate_delay
from relaykit.model.entries import ConfigFiles, Credential, Origin, RelayRule
from relaykit.inputs import validate
from relaykit.model.settings import Settings
from relaykit.secret import Secret

HOP = "[ses.test]:587"


def limit(text: str):
    return parse_limit_row(Row(tuple(text.split()), Origin("postfix-relay-limits.cf", 1)))


@pytest.mark.parametrize("rate, delay", [("1/s", 1), ("30/m", 2), ("7/m", 9), ("100/h", 36), ("1/d", 86400)])
def test_rate_becomes_whole_seconds_rounded_up(rate, delay):
    assert rate_delay(rate) == delay


@pytest.mark.parametrize("line, message", [
    (f"{HOP} rate=20/s", "faster than one message a second"),
    (f"{HOP} rate=0/s", "rate must be N/s"),
    (f"{HOP} rate=1/x", "rate must be N/s"),
    (f"{HOP} rate=+1/s", "rate must be N/s"),
    (f"{HOP} concurrency=0", "concurrency must be a number from 1"),
    (f"{HOP} concurrency=two", "concurrency must be a number from 1"),
    (f"{HOP} speed=1", "expected rate=N/s or concurrency=N"),
    (f"{HOP} rate=1/s rate=1/m", "rate is given twice"),
    (f"{HOP} rate=1/s concurrency=3", "not both"),
    (HOP, "expected '[host]:port rate=N/s concurrency=N'"),
    ("@example.com rate=1/s", "limits are per relay"),
])
def test_bad_limit_lines_are_refused(line, message):
    with pytest.raises(RelaykitError, match=message.replace("[", r"\[").replace("+", r"\+")):
        limit(line)


def plan_with(limits: str, credentials=(), recipient=False):
    rules = (RelayRule("@shop.example", validate.relay_list(HOP), Origin("relaymap", 1)),
             RelayRule("@other.example", validate.relay_list("[other.test]:587"), Origin("relaymap", 2)))
    files = ConfigFiles(relay_rules=rules, relaymap_exists=True, credentials=tuple(credentials),
                        sasl_exists=bool(credentials), relay_limits=tuple(limit(line) for line in limits.splitlines()),
                        recipient_rules=(RelayRule("partner.example", validate.relay_list(HOP), Origin("rcpt", 1)),)
                        if recipient else ())
    return build(Settings(mail_config="/etc/postfix"), files, "hash")


def test_a_limited_relay_gets_its_own_client_and_qmgr_limits():
    plan = plan_with(f"{HOP} rate=30/m")
    # by relayhost_map's value (pipemap: core/routetables.py, RELAY_TRANSPORT)
    assert plan.table("relay_transport").lines == ("[ses.test]:587 relaykit_limit1:[ses.test]:587",
                                                   "[other.test]:587 smtp:[other.test]:587")
    service = next(s for s in plan.services if s.name == "relaykit_limit1")
    assert ("smtp_connection_cache_on_demand", "no") in service.options
    assert plan.params["relaykit_limit1_destination_rate_delay"] == "2s"
    assert plan.params["relaykit_limit1_destination_concurrency_limit"] == "1"
    assert plan.params["relaykit_limit1_destination_concurrency_failed_cohort_limit"] == "10"
    r = resolve(plan, "a@shop.example")
    assert r.transport == "relaykit_limit1" and r.limit.delay == 2
    assert resolve(plan, "a@other.example").limit is None


def test_concurrency_alone_and_recipient_routes_use_the_relay_only_client():
    plan = plan_with(f"{HOP} concurrency=3", recipient=True)
    assert plan.params["relaykit_limit1_relay_destination_concurrency_limit"] == "3"
    assert "relaykit_limit1_relay_destination_rate_delay" not in plan.params
    assert "partner.example relaykit_limit1_relay:[ses.test]:587" in plan.table("recipient_transport").lines
    assert resolve(plan, "a@x.example", "b@partner.example").transport == "relaykit_limit1_relay"


def test_an_unused_limit_and_a_relay_reached_two_ways_are_warned_about():
    plan = plan_with(f"[nowhere.test]:25 rate=1/s\n{HOP} concurrency=2", recipient=True)
    assert any("[nowhere.test]:25 is not the (first) relay of any route" in w for w in plan.warnings)
    assert any(f"{HOP} gets mail with the sender's credentials and with its own" in w for w in plan.warnings)
