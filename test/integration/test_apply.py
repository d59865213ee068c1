"""apply(): master.cf services relaykit adds are kept in step with the plan."""

from __future__ import annotations

from relaykit.run.apply import apply
from relaykit.model.plan import Plan, Service
from relaykit.edges.postfix import Postfix

WRAPPED = Service("relaykit-smtps", "unix", "smtp",
                  (("smtp_tls_wrappermode", "yes"), ("smtp_tls_security_level", "encrypt")))


def test_planned_service_is_added_then_removed_when_no_longer_planned(env):
    postfix = Postfix(env.postfix.config_dir)
    changes = apply(Plan(services=(WRAPPED,)), postfix)
    assert "relaykit-smtps/unix" in changes.params
    entry = postfix.services()["relaykit-smtps/unix"]
    assert entry == "relaykit-smtps unix - - n - - smtp -o smtp_tls_wrappermode=yes -o smtp_tls_security_level=encrypt"
    assert env.postfix.check() == ""
    assert not apply(Plan(services=(WRAPPED,)), postfix)  # idempotent: nothing to do
    apply(Plan(), postfix)
    assert "relaykit-smtps/unix" not in postfix.services()
    assert "smtp/unix" in postfix.services()  # the administrator's services stay


def test_a_prefetched_postconf_read_is_used_only_while_main_cf_is_unchanged(env):
    """Postfix.prefetch starts postconf in the background; what it printed is used only if
    neither main.cf nor master.cf changed since it started (else it is read again)."""
    postfix = Postfix(env.postfix.config_dir)
    postfix.prefetch(("-h", "myorigin"))
    postfix.edit_params({"myorigin": "prefetch-a.example"}, ())  # changes main.cf after the start
    assert postfix.param("myorigin") == "prefetch-a.example"
    postfix.prefetch(("-h", "myorigin"), ("-h", "mydomain"))
    assert postfix.param("myorigin") == "prefetch-a.example"
    assert postfix.param("mydomain") == postfix._run("postconf", "-h", "mydomain").strip()
