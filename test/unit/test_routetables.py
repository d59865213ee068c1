"""Pure parts of routing beyond DMS: new keys and relay syntax, the generated pcre and
transport tables, and resolve() (what `setup relay explain` prints) in Postfix's order."""

from __future__ import annotations

import pytest

from relaykit.core import routetables
from relaykit.inputs import validate
from relaykit.model.entries import ConfigFiles, Credential, Origin, RelayRule
from relaykit.errors import RelaykitError
from relaykit.core.plan import build
from relaykit.core.routing import resolve
from relaykit.secret import Secret
from relaykit.model.settings import Settings


@pytest.mark.parametrize("value, expected", [
    ("@Example.com", "@example.com"),
    ("example.com", "@example.com"),
    ("Bill.Ing+x@Example.com", "bill.ing+x@example.com"),
    ("@.Corp.Example", "@.corp.example"),
    ("o'neil@example.com", "o'neil@example.com"),
])
def test_route_key_forms(value, expected):
    assert validate.route_key(value) == expected


@pytest.mark.parametrize("value", ['"a b"@example.com', "a..b@example.com", ".a@example.com", "a.@example.com",
                                   "a\x01b@example.com", "a(b)@example.com", "é@example.com", "a@b@example.com",
                                   "@.", "@..example.com", "[relay.test]:25"])
def test_route_key_refuses_local_parts_postfix_would_misread(value):
    with pytest.raises(RelaykitError):
        validate.route_key(value)


@pytest.mark.parametrize("value, hops, implicit", [
    ("[r.test]:587", ("[r.test]:587",), False),
    ("[r.test]:465", ("[r.test]:465",), True),
    ("[r.test]:2465", ("[r.test]:2465",), True),
    ("smtps:[r.test]:2587", ("[r.test]:2587",), True),
    ("smtp:[r.test]:465", ("[r.test]:465",), False),
    ("smtp:25", ("smtp:25",), False),  # host "smtp", port 25: a prefix needs brackets
    ("[a.test]:465,[b.test]:465", ("[a.test]:465", "[b.test]:465"), True),
])
def test_relay_list_tls_mode_by_port_or_prefix(value, hops, implicit):
    parsed = validate.relay_list(value)
    assert parsed == hops
    assert [hop.implicit_tls for hop in parsed] == [implicit] * len(hops)


def test_relay_list_refuses_mixed_tls_modes():
    with pytest.raises(RelaykitError, match="same TLS mode"):
        validate.relay_list("[a.test]:465,[b.test]:587")


def test_pcre_escape_leaves_no_metacharacter_active():
    assert routetables.pcre_escape("a.b-c*(x)/$^|?+[]{}\\") == \
        "a\\.b\\-c\\*\\(x\\)\\/\\$\\^\\|\\?\\+\\[\\]\\{\\}\\\\"


O = Origin("postfix-relaymap.cf", 1)


def plan(relays=(), creds=(), recipients=(), **settings):
    files = ConfigFiles(
        relay_rules=tuple(RelayRule(k, validate.relay_list(",".join(h)) if h else (), Origin("postfix-relaymap.cf", i))
                          for i, (k, h) in enumerate(relays, 1)),
        credentials=tuple(Credential(k if "@" in k else validate.nexthop(k), u, Secret(p),
                                     Origin("postfix-sasl-password.cf", i)) for i, (k, u, p) in enumerate(creds, 1)),
        recipient_rules=tuple(RelayRule(k, validate.relay_list(",".join(h)), Origin("postfix-recipient-relaymap.cf", i))
                              for i, (k, h) in enumerate(recipients, 1)),
        relaymap_exists=bool(relays), sasl_exists=bool(creds))
    if settings.get("default_relay_host"):  # parsed, as inputs/settings.load does
        settings["default_relay_hops"] = validate.nexthops(settings["default_relay_host"])
    return build(Settings(**settings), files, "lmdb")


def test_wildcard_table_repeats_exact_domains_first_and_orders_wildcards_by_depth():
    p = plan(relays=[("@.example.com", ["[w.test]:25"]), ("@.eu.example.com", ["[eu.test]:25"]),
                     ("@a.example.com", ["[a.test]:25"]), ("@b.example.com", []), ("@other.test", ["[o.test]:25"])])
    assert p.table("relayhost_map").lines == ("@a.example.com [a.test]:25", "@other.test [o.test]:25")
    assert p.table(routetables.RELAYHOST_WILDCARDS).lines == (
        r"/^[^@]*@a\.example\.com$/ [a.test]:25",
        r"/^[^@]*@b\.example\.com$/ DUNNO",
        r"/^[^@]*@[^@]+\.eu\.example\.com$/ [eu.test]:25",
        r"/^[^@]*@[^@]+\.example\.com$/ [w.test]:25",
    )
    assert p.params["sender_dependent_relayhost_maps"].endswith(f"{routetables.RELAYHOST_WILDCARDS}")
    assert p.table(routetables.RELAYHOST_WILDCARDS).kind == "pcre"


def test_wildcard_credentials_are_secret_and_keep_dollar_signs_literal():
    p = plan(relays=[("@.example.com", ["[w.test]:25"])], creds=[("@.example.com", "u", "pa$word")])
    table = p.table(routetables.SASL_WILDCARDS)
    assert table.secret and table.lines == (r"/^[^@]*@[^@]+\.example\.com$/ u:pa$$word",)


DIRECT_SERVICE = ("relaykit_direct unix - - n - - smtp -o syslog_name=postfix/relaykit_direct "
                  "-o smtp_sasl_auth_enable=no")


def test_a_plain_relaymap_keeps_the_contract_params_and_sends_the_rest_direct_without_sasl():
    p = plan(relays=[("@a.test", ["[r.test]:587"])])
    assert p.params["sender_dependent_relayhost_maps"] == "lmdb:/etc/postfix/relayhost_map"
    # each key's transport by its relayhost_map value: one table of sender keys, not two
    assert p.params["sender_dependent_default_transport_maps"] == \
        "pipemap:{lmdb:/etc/postfix/relayhost_map,lmdb:/etc/postfix/relay_transport}"
    assert p.table(routetables.RELAY_TRANSPORT).lines == ("[r.test]:587 smtp:[r.test]:587",)
    assert p.table(routetables.SENDER_TRANSPORT) is None
    assert p.params["default_transport"] == "relaykit_direct"
    assert [s.entry() for s in p.services] == [DIRECT_SERVICE]


def test_implicit_tls_puts_every_sender_route_in_the_transport_table():
    p = plan(relays=[("@a.test", ["[r.test]:465"]), ("@b.test", ["[s.test]:587"])])
    assert p.table(routetables.RELAY_TRANSPORT).lines == (
        "[r.test]:465 relaykit_smtps:[r.test]:465", "[s.test]:587 smtp:[s.test]:587")
    assert [s.entry() for s in p.services] == [
        "relaykit_smtps unix - - n - - smtp -o syslog_name=postfix/relaykit_smtps "
        "-o smtp_tls_wrappermode=yes -o smtp_tls_security_level=encrypt", DIRECT_SERVICE]
    assert p.table("relayhost_map").lines == ("@a.test [r.test]:465", "@b.test [s.test]:587")


def test_default_relay_skips_managed_domains_a_wildcard_covers():
    from relaykit.model.entries import Account

    files = ConfigFiles(relay_rules=(RelayRule("@.corp.test", (validate.nexthop("[w.test]:25"),), O),),
                        accounts=(Account("u@eu.corp.test", Secret("x"), O), Account("u@a.test", Secret("x"), O)),
                        relaymap_exists=True)
    p = build(Settings(relay_host="relay.test"), files, "lmdb")
    assert p.table("relayhost_map").lines == ("@a.test [relay.test]:25",)


def test_resolve_order_address_then_domain_then_nearest_wildcard():
    p = plan(relays=[("@.example.com", ["[w.test]:25"]), ("@.eu.example.com", ["[eu.test]:25"]),
                     ("@a.example.com", ["[a.test]:25"]), ("boss@a.example.com", ["[boss.test]:25"]),
                     ("@b.example.com", [])])
    assert resolve(p, "Boss@A.example.com").nexthops == ("[boss.test]:25",)
    assert resolve(p, "x@a.example.com").nexthops == ("[a.test]:25",)
    assert resolve(p, "x@de.eu.example.com").nexthops == ("[eu.test]:25",)
    assert resolve(p, "x@c.example.com").nexthops == ("[w.test]:25",)
    assert resolve(p, "x@example.com").direct
    optout = resolve(p, "x@b.example.com")
    assert optout.direct and optout.origin == Origin("postfix-relaymap.cf", 5)


def test_resolve_recipient_rule_wins_and_authenticates_by_relay_only():
    p = plan(relays=[("@a.test", ["[s.test]:587"])],
             creds=[("@a.test", "sender-user", "p"), ("[r.test]:587", "relay-user", "q")],
             recipients=[(".blocked.test", ["[r.test]:587"])])
    r = resolve(p, "x@a.test", "y@mx.blocked.test")
    assert (r.nexthops, r.transport, r.login.user, r.by_recipient) == (("[r.test]:587",), "relaykit_rcpt", "relay-user", True)
    assert resolve(p, "x@a.test", "y@blocked.test").nexthops == ("[s.test]:587",)  # .domain: subdomains only
    assert resolve(p, "x@a.test", "y@example.net").login.user == "sender-user"


def test_resolve_failover_logins_per_relay():
    p = plan(relays=[("@a.test", ["[one.test]:587", "[two.test]:587"])],
             creds=[("[one.test]:587", "u1", "p"), ("[two.test]:587", "u2", "q")])
    assert [l.user for l in resolve(p, "x@a.test").logins] == ["u1", "u2"]


def test_default_relay_host_on_465_is_the_default_transport_by_wrappermode():
    p = plan(relays=[("@a.test", ["[s.test]:587"]), ("@.w.test", ["[w.test]:25"]), ("@x.w.test", [])],
             default_relay_host="[smtp.relay.test]:465")
    assert p.params["relayhost"] == "[smtp.relay.test]:465"
    assert p.params["default_transport"] == "relaykit_smtps"
    assert p.table(routetables.SENDER_TRANSPORT).lines == (
        "@x.w.test relaykit_smtps:[smtp.relay.test]:465", "@a.test smtp:[s.test]:587")
    assert p.table(routetables.SENDER_TRANSPORT_WILDCARDS).lines == (
        r"/^[^@]*@x\.w\.test$/ relaykit_smtps:[smtp.relay.test]:465",  # opted out: the default relay
        r"/^[^@]*@[^@]+\.w\.test$/ smtp:[w.test]:25",
    )
    r = resolve(p, "u@x.w.test")
    assert (r.nexthops, r.transport) == (("[smtp.relay.test]:465",), "relaykit_smtps")
    assert resolve(p, "u@elsewhere.test").transport == "relaykit_smtps"


def test_a_recipient_domain_given_twice_differently_is_an_error():
    from relaykit.errors import ConfigError

    with pytest.raises(ConfigError, match="postfix-recipient-relaymap.cf:1 already"):
        plan(recipients=[("a.test", ["[r.test]:25"]), ("a.test", ["[s.test]:25"])])
    assert len(plan(recipients=[("a.test", ["[r.test]:25"]), ("a.test", ["[r.test]:25"])]).recipient_routes) == 1


def test_a_sender_credential_belongs_to_the_rule_that_routes_its_sender():
    p = plan(relays=[("@shop.test", ["[ses.test]:587"]), ("billing@shop.test", ["[mg.test]:587"])],
             creds=[("@shop.test", "AKIA", "s"), ("[mg.test]:587", "pm", "m")])
    billing, other = resolve(p, "billing@shop.test"), resolve(p, "x@shop.test")
    assert (billing.login.user, billing.transport) == ("pm", "relaykit_relay")  # @shop.test's is SES's
    assert (other.login.user, other.transport) == ("AKIA", "smtp")
    assert p.table(routetables.SENDER_TRANSPORT).lines == (
        "@shop.test smtp:[ses.test]:587", "billing@shop.test relaykit_relay:[mg.test]:587")


def test_an_opted_out_address_goes_direct_and_stops_the_relayhost_lookup():
    p = plan(relays=[("@shop.test", ["[ses.test]:587"]), ("intern@shop.test", [])], creds=[("@shop.test", "u", "p")])
    r = resolve(p, "intern@shop.test")
    assert (r.direct, r.login, r.transport) == (True, None, "relaykit_direct")
    assert "intern@shop.test DUNNO" in p.table(routetables.SENDER_TRANSPORT).lines
    assert p.table(routetables.RELAYHOST_WILDCARDS).lines[0] == r"/^intern\@shop\.test$/ DUNNO"


def test_a_bare_domain_credential_that_no_route_relays_through_is_refused():
    from relaykit.errors import ConfigError

    with pytest.raises(ConfigError, match="postfix-sasl-password.cf:1.*@shop.test"):
        plan(relays=[("@shop.test", ["[ses.test]:587"])], creds=[("shop.test", "u", "p")])
