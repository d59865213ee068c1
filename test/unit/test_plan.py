"""The plan is pure: settings + parsed files in, tables and parameters out."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest

from relaykit.model.entries import Account, ConfigFiles, Credential, Origin, RelayRule
from relaykit.errors import ConfigError
from relaykit.core.plan import build
from relaykit.inputs import validate
from relaykit.secret import Secret
from relaykit.model.settings import Settings

O = Origin("test", 1)


def files(relays=(), creds=(), domains=(), **kw) -> ConfigFiles:
    return ConfigFiles(
        relay_rules=tuple(RelayRule(s, validate.relay_list(",".join(h)) if h else (), O) for s, h in relays),
        credentials=tuple(Credential(k if "@" in k else validate.nexthop(k), u, Secret(p), O) for k, u, p in creds),
        accounts=tuple(Account(f"u@{d}", Secret("x"), O) for d in domains),
        relaymap_exists=bool(relays) or kw.get("relaymap_exists", False),
        sasl_exists=bool(creds),
    )


def test_nothing_configured_plans_nothing():
    plan = build(Settings(), files(domains=["a.test"]), "hash")
    assert not plan.configured and plan.tables == ()


def test_default_relay_covers_unmapped_managed_domains_only():
    plan = build(Settings(relay_host="relay.test", relay_port=587),
                 files(relays=[("@b.test", ["[x.test]:25"]), ("@c.test", [])], domains=["a.test", "b.test", "c.test"]),
                 "hash")
    assert plan.table("relayhost_map").lines == ("@b.test [x.test]:25", "@a.test [relay.test]:587")


def test_default_routes_are_made_only_when_read_and_equal_the_routes_themselves():
    """RELAY_HOST's default routes (model/plan.Routes) and relayhost_map's lines (Lines):
    the summary counts them without making them; read, they are the explicit routes then
    one per managed domain without a rule, as tuples, sliced and compared like tuples."""
    from relaykit.core.overview import summary
    from relaykit.model.plan import Lines, Routes

    relays = [("@b.test", ["[x.test]:25"]), ("@c.test", []), ("u@a.test", ["[y.test]:25"])]
    plan = build(Settings(relay_host="relay.test", relay_port=587),
                 files(relays=relays, domains=["d.test", "a.test", "b.test", "c.test", "e.test"]), "hash")
    assert isinstance(plan.routes, Routes) and isinstance(plan.table("relayhost_map").lines, Lines)
    assert summary(plan) == ("relay: [x.test]:25 <- 1 sender(s), 0 with credentials; [y.test]:25 <- 1 sender(s), "
                             "0 with credentials; [relay.test]:587 <- 3 sender(s), 0 with credentials; 0 credential(s)")
    assert plan.routes._items is None  # counted, not made
    hops, origin = validate.relay_list("[relay.test]:587"), Origin("RELAY_HOST")
    expected = (RelayRule("@b.test", validate.relay_list("[x.test]:25"), O),
                RelayRule("u@a.test", validate.relay_list("[y.test]:25"), O),
                *(RelayRule(f"@{d}.test", hops, origin) for d in "ade"))
    assert tuple(plan.routes) == expected and plan.routes == expected and expected == plan.routes
    assert len(plan.routes) == 5 and plan.routes[2:4] == expected[2:4] and plan.routes[-1] == expected[-1]
    lines = ("@b.test [x.test]:25", "u@a.test [y.test]:25", "@a.test [relay.test]:587", "@d.test [relay.test]:587",
             "@e.test [relay.test]:587")
    table = plan.table("relayhost_map")
    assert table.lines == lines and len(table.lines) == 5 and table.text() == "".join(f"{line}\n" for line in lines)
    assert build(Settings(relay_host="relay.test", relay_port=587),
                 files(relays=relays, domains=["a.test", "b.test", "c.test", "d.test", "e.test"]), "hash") == plan


def test_managed_domains_are_routed_once_each_in_order_whatever_their_accounts_order():
    plan = build(Settings(relay_host="relay.test", relay_port=587),
                 files(domains=["c.test", "a.test", "c.test", "b.test", "a.test", "c.test"]), "hash")
    assert plan.table("relayhost_map").lines == ("@a.test [relay.test]:587", "@b.test [relay.test]:587",
                                                  "@c.test [relay.test]:587")


def test_failover_list_is_one_value():
    plan = build(Settings(), files(relays=[("@a.test", ["[one.test]:587", "[two.test]:587"])]), "hash")
    assert plan.table("relayhost_map").lines == ("@a.test [one.test]:587,[two.test]:587",)
    assert plan.table("tls_policy").lines == ("[one.test]:587 encrypt", "[two.test]:587 encrypt")


def test_env_credentials_do_not_override_the_file():
    plan = build(Settings(relay_host="relay.test", relay_user="env", relay_password=Secret("p")),
                 files(creds=[("[relay.test]:25", "file", "q")]), "hash")
    assert plan.table("sasl_passwd").lines == ("[relay.test]:25 file:q",)
    assert any("RELAY_USER is not used" in w for w in plan.warnings)


def test_conflicting_duplicate_is_an_error_identical_one_is_not():
    with pytest.raises(ConfigError):
        build(Settings(), files(relays=[("@a.test", ["[x.test]:25"]), ("@a.test", ["[y.test]:25"])]), "hash")
    plan = build(Settings(), files(relays=[("@a.test", ["[x.test]:25"]), ("@a.test", ["[x.test]:25"])]), "hash")
    assert plan.table("relayhost_map").lines == ("@a.test [x.test]:25",)


def test_plan_never_shows_a_password_in_its_repr():
    plan = build(Settings(relay_host="r.test", relay_user="u", relay_password=Secret("hunter2")),
                 files(domains=["a.test"]), "hash")
    assert "hunter2" not in repr(plan.logins) + repr(plan.routes) + repr(plan.warnings)


def test_planning_is_linear_in_the_number_of_domains():
    def timed(n: int) -> float:
        inputs = files(domains=[f"d{i}.test" for i in range(n)],
                       relays=[(f"@r{i}.test", ["[x.test]:25"]) for i in range(n)])
        gc.disable()  # measure the algorithm, not when the collector happens to run
        try:
            start = time.perf_counter()
            build(Settings(relay_host="relay.test", mail_config=Path("/etc/postfix")), inputs, "hash")
            return time.perf_counter() - start
        finally:
            gc.enable()

    timed(1000)
    # the fastest of several runs: other processes on the machine only ever add time
    small, large = min(timed(5_000) for _ in range(5)), min(timed(50_000) for _ in range(5))
    assert large < small * 10 * 3  # 10x the input, well under 30x the time (quadratic would be 100x)


def test_overview_of_the_plan_is_linear_too():
    """rows() feeds the start-up summary of every configure: one Router, not one per sender."""
    from relaykit.core.overview import rows

    def timed(n: int) -> float:
        plan = build(Settings(relay_host="relay.test", mail_config=Path("/etc/postfix")),
                     files(domains=[f"d{i}.test" for i in range(n)]), "hash")
        gc.disable()
        try:
            start = time.perf_counter()
            rows(plan)
            return time.perf_counter() - start
        finally:
            gc.enable()

    timed(500)
    small, large = min(timed(1_000) for _ in range(5)), min(timed(10_000) for _ in range(5))
    assert large < small * 10 * 3  # quadratic would be 100x


SENDER_KEYED = [("@shop.test", "akia", "p"), ("billing@shop.test", "mg", "p"), ("@b.test", "bee", "p"),
                ("@out.test", "oo", "p")]


@pytest.mark.parametrize("creds, expected", [
    (SENDER_KEYED, "relay: [ses.test]:587 <- 2 sender(s), 2 with credentials; [mailgun.test]:587 <- 1 sender(s), "
                   "1 with credentials; [relay.test]:587 <- 2 sender(s), 2 with credentials; [smart.test]:587 <- "
                   "1 sender(s), 1 with credentials + every other sender, without credentials; 6 credential(s)"),
    ((), "relay: [ses.test]:587 <- 2 sender(s), 2 with credentials; [mailgun.test]:587 <- 1 sender(s), "
         "0 with credentials; [relay.test]:587 <- 2 sender(s), 2 with credentials; [smart.test]:587 <- "
         "every other sender, without credentials; 2 credential(s)"),
], ids=["sender-keyed credentials", "relay-keyed credentials only"])
def test_summary_of_a_plan_without_decisions_is_the_same(creds, expected):
    """The PostgreSQL store's plan carries no decisions: summary() decides them itself, and
    says what it says of the file store's plan (explicit routes, an opt-out, RELAY_HOST's
    managed domains, credentials by sender and by relay)."""
    from relaykit.record import replace

    from relaykit.core.overview import summary

    relays = [("@shop.test", ["[ses.test]:587"]), ("billing@shop.test", ["[mailgun.test]:587"]), ("@out.test", []),
              ("@.corp.test", ["[ses.test]:587"])]
    by_relay = [("[relay.test]:587", "relayuser", "p"), ("[ses.test]:587", "sesuser", "p")]
    plan = build(Settings(relay_host="relay.test", relay_port=587, default_relay_host="[smart.test]:587",
                          default_relay_hops=validate.nexthops("[smart.test]:587")),
                 files(relays=relays, creds=[*by_relay, *creds],
                       domains=["shop.test", "out.test", "a.test", "b.test", "x.corp.test"]), "hash")
    assert plan.decisions and summary(plan) == expected
    assert summary(replace(plan, decisions={})) == expected
