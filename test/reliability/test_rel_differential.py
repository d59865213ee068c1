"""Differential: what `setup relay explain` says against what Postfix itself decides.

hypothesis generates whole configurations (domains, addresses, wildcards, opt-outs at
every level, recipient rules, failover lists, credentials by sender and by relay,
DEFAULT_RELAY_HOST and RELAY_HOST in every accepted spelling, 465/2465/smtps:/smtp:),
runs the real `relaykit configure`, and for every sender and recipient compares the
route explain reads (core/routing.py, the code behind explain, list and `setup relay
test`) with harness/postfix_model.py: Postfix's documented lookup order applied to the
tables and master.cf that were written, through the real `postconf` and `postmap -q`.

Invariants for every pair: the same next hops; the same login at each hop; a login only
where TLS is required (policy encrypt/secure, or wrappermode); no login at all for direct
delivery to an MX. A configuration relaykit refuses must say what and where (exit 1).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.postfix_instance import PostfixInstance
from harness.postfix_model import PostfixModel

from e2e.conftest import BIN

QUICK = settings(max_examples=int(os.environ.get("DIFFERENTIAL_EXAMPLES", 25)), deadline=None,
                 suppress_health_check=list(HealthCheck))
# `make test` runs the slow tests too: 80 more configurations (~2 min); set more to search longer
LONG = settings(max_examples=int(os.environ.get("DIFFERENTIAL_LONG_EXAMPLES", 80)), deadline=None,
                suppress_health_check=list(HealthCheck))

DOMAINS = ["shop.test", "corp.test", "eu.corp.test", "dev.corp.test", "news.test", "other.test"]
SENDER_KEYS = ["@shop.test", "billing@shop.test", "intern@shop.test", "@.corp.test", "@corp.test",
               "@eu.corp.test", "@dev.corp.test", "@news.test", "x@dev.corp.test"]
HOPS = ["[r1.test]:587", "[r2.test]:2525", "[r3.test]:465", "smtps:[r4.test]:2587", "smtp:[r5.test]:465",
        "[10.0.0.5]:25", "[2001:db8::5]:587", "[r6.test]:2465"]
DEFAULT_RELAYS = ["[d1.test]:587", "[d2.test]:465", "[d1.test]:587,[d3.test]:587", "[::1]:2525",
                  "[D1.Test]:587", "[d4.test]:2465", "[0:0:0:0:0:0:0:1]:2525", "[localhost.]:2525",
                  "[d2.test]:465,[d3.test]:587"]
SENDERS = ["a@shop.test", "billing@shop.test", "intern@shop.test", "a@corp.test", "a@eu.corp.test",
           "x@dev.corp.test", "y@dev.corp.test", "a@deep.eu.corp.test", "a@news.test", "a@other.test",
           "a@unknown.test"]
RECIPIENTS = ["someone@far.test", "a@partner.test", "b@eu.partner.test"]

hop_lists = st.lists(st.sampled_from(HOPS), min_size=1, max_size=2, unique=True)
relaymap = st.dictionaries(st.sampled_from(SENDER_KEYS), st.one_of(st.none(), hop_lists), max_size=6)
sasl_keys = st.sampled_from(SENDER_KEYS + [h.split(":", 1)[1] if h.startswith("smtp") else h for h in HOPS]
                            + ["[d1.test]:587", "[d2.test]:465"])
sasl = st.lists(sasl_keys, max_size=6, unique=True)
recipient_rules = st.dictionaries(st.sampled_from(["partner.test", ".partner.test"]), st.sampled_from(HOPS),
                                  max_size=2)
environment = st.fixed_dictionaries({}, optional={
    "DEFAULT_RELAY_HOST": st.sampled_from(DEFAULT_RELAYS),
    "RELAY_HOST": st.sampled_from(["r7.test", "10.0.0.7", "2001:db8::7"]),
    "RELAY_PORT": st.sampled_from(["25", "587", "465", "2465"]),
    "RELAY_USER": st.just("relayuser"),
})
managed = st.lists(st.sampled_from(DOMAINS), max_size=4, unique=True)


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    root = tmp_path_factory.mktemp("differential")
    return root, PostfixInstance(root / "postfix").create()


def _write(root, rules, creds, rcpt, managed_domains) -> None:
    config = root / "config"
    config.mkdir(exist_ok=True)
    for path in config.iterdir():
        path.unlink()
    (config / "postfix-relaymap.cf").write_text(
        "".join(f"{key} {','.join(hops)}\n" if hops else f"{key}\n" for key, hops in rules.items()))
    (config / "postfix-sasl-password.cf").write_text(
        "".join(f"{key} u{i}:p{i}\n" for i, key in enumerate(creds)))
    if rcpt:
        (config / "postfix-recipient-relaymap.cf").write_text("".join(f"{k} {v}\n" for k, v in rcpt.items()))
    (config / "postfix-virtual.cf").write_text("".join(f"alias@{d} target@far.test\n" for d in managed_domains))


def _check(instance, rules, creds, rcpt, env, managed_domains) -> None:
    import subprocess

    from relaykit.core.routing import Router
    from relaykit.run.configure import routing

    root, postfix = instance
    _write(root, rules, creds, rcpt, managed_domains)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY", "DEFAULT_RELAY"))}
    environ.update(env, MAIL_CONFIG=str(postfix.config_dir), RELAYKIT_CONFIG_DIR=str(root / "config"))
    if "RELAY_USER" in env:
        environ["RELAY_PASSWORD"] = "relaypw"
    result = subprocess.run([str(BIN / "relaykit"), "configure"], env=environ, capture_output=True, text=True)
    if result.returncode:
        assert result.returncode == 1 and result.stderr.strip(), result.stderr
        return
    model, (_, _, plan) = PostfixModel(postfix), routing(environ)
    router = Router(plan)
    model.prefetch([m for m in model.main.get("sender_dependent_relayhost_maps", "").replace(",", " ").split()],
                   [k for s in SENDERS for k, _ in model.address_keys(s)])
    for sender in SENDERS:
        for recipient in RECIPIENTS:
            said, did = router.resolve(sender, recipient), model.decide(sender, recipient)
            where = f"{sender} -> {recipient}: explain {said}, Postfix {did}"
            assert [str(hop).lower() for hop in said.nexthops] == [h.lower() for h in did.nexthops], where
            assert [login.user if login else None for login in said.logins] == list(did.logins[:len(said.logins)]) \
                or (said.direct and set(did.logins) == {None}), where
            for login, level in zip(did.logins, did.tls):
                assert login is None or level in ("encrypt", "secure") or did.wrappermode, where
            if did.direct:
                assert set(did.logins) == {None}, where  # an MX never gets a credential


@QUICK
@given(relaymap, sasl, recipient_rules, environment, managed)
def test_explain_agrees_with_postfix_for_every_sender_and_recipient(instance, rules, creds, rcpt, env, domains):
    _check(instance, rules, creds, rcpt, env, domains)


@pytest.mark.slow
@LONG
@given(relaymap, sasl, recipient_rules, environment, managed)
def test_explain_agrees_with_postfix_long(instance, rules, creds, rcpt, env, domains):
    _check(instance, rules, creds, rcpt, env, domains)
