from __future__ import annotations

from relaykit.model.entries import ConfigFiles, Credential, Origin, RelayRule
from relaykit.core.plan import build
from relaykit.inputs import validate
from relaykit.core.routing import resolve
from relaykit.secret import Secret
from relaykit.model.settings import Settings

O = Origin("postfix-relaymap.cf", 3)


def plan(**settings):
    files = ConfigFiles(relay_rules=(RelayRule("@a.test", (validate.nexthop("[ses.test]:587"),), O),),
                        credentials=(Credential("@a.test", "akia", Secret("p"), O),
                                     Credential(validate.nexthop("[smart.test]:587"), "smart", Secret("q"), O)),
                        relaymap_exists=True, sasl_exists=True)
    if settings.get("default_relay_host"):  # parsed, as inputs/settings.load does
        settings["default_relay_hops"] = validate.nexthops(settings["default_relay_host"])
    return build(Settings(**settings), files, "lmdb")


def test_sender_domain_route_and_its_credentials():
    r = resolve(plan(), "Alice@A.test")
    assert r.nexthops == ("[ses.test]:587",) and r.origin == O and r.login.user == "akia" and r.tls_required


def test_unmatched_sender_falls_back_to_relayhost_with_relay_credentials():
    r = resolve(plan(default_relay_host="[smart.test]:587"), "bob@b.test")
    assert r.nexthops == ("[smart.test]:587",) and r.login.user == "smart"


def test_unmatched_sender_without_relayhost_is_delivered_directly():
    r = resolve(plan(), "bob@b.test")
    assert r.direct and r.login is None and not r.tls_required
