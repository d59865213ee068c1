"""core/overrides.py, pure: which overrides may apply, and the plan that applies them."""

from __future__ import annotations

import pytest

from relaykit.core.overrides import apply_to, owned_reason, trial_errors
from relaykit.errors import ConfigError, ConfigErrors
from relaykit.model.entries import Origin, Override
from relaykit.model.plan import Plan, Service

DEFAULTS = {"message_size_limit": "10240000", "smtpd_helo_required": "no", "bounce_queue_lifetime": "5d",
            "smtpd_banner": "$myhostname ESMTP $mail_name", "smtpd_client_connection_count_limit": "50",
            "myhostname": "host.example"}
SUBMISSION = Service("submission", "inet", "smtpd", (("smtpd_sender_restrictions", "reject"),))


def o(name, value, service=None, line=1):
    return Override(name, value, Origin("postfix-main.cf", line), service)


def test_routing_credentials_and_relay_permissions_are_owned_whether_or_not_planned():
    for name in ("relayhost", "transport_maps", "smtp_sasl_mechanism_filter", "smtpd_sasl_path", "mynetworks",
                 "smtpd_relay_restrictions", "smtp_tls_policy_maps"):
        assert owned_reason(name, {}), name
    assert owned_reason("message_size_limit", {}) is None
    assert owned_reason("myhostname", {}) is None
    assert owned_reason("myhostname", {"myhostname": "x"}) == "OVERRIDE_HOSTNAME sets it"


def test_main_overrides_become_params_and_a_later_one_wins():
    plan = apply_to(Plan(params={"relayhost": "[r]:587"}), [o("message_size_limit", "1", line=1),
                    o("message_size_limit", "2", line=2)], DEFAULTS, [])
    assert plan.params == {"relayhost": "[r]:587", "message_size_limit": "2"}
    assert [x.origin.line for x in plan.overrides] == [2]


def test_an_override_of_relaykits_service_joins_its_entry_but_cannot_replace_its_options():
    plan = apply_to(Plan(services=(SUBMISSION,)), [o("smtpd_client_connection_count_limit", "5", "submission/inet")],
                    DEFAULTS, [])
    assert plan.services[0].options[-1] == ("smtpd_client_connection_count_limit", "5")
    assert plan.service_params == {}
    with pytest.raises(ConfigError, match="relaykit sets it for submission/inet"):
        apply_to(Plan(services=(SUBMISSION,)), [o("smtpd_sender_restrictions", "permit", "submission/inet")],
                 DEFAULTS, [])


def test_other_services_get_service_params_when_they_exist():
    plan = apply_to(Plan(), [o("smtpd_helo_required", "yes", "smtp/inet")], DEFAULTS, ["smtp/inet"])
    assert plan.service_params == {"smtp/inet/smtpd_helo_required": "yes"}
    with pytest.raises(ConfigError, match="no service smtp/inet"):
        apply_to(Plan(), [o("smtpd_helo_required", "yes", "smtp/inet")], DEFAULTS, [])


def test_every_problem_is_reported_at_its_line():
    with pytest.raises(ConfigErrors) as caught:
        apply_to(Plan(), [o("message_size_limit", "10M", line=1), o("bounce_queue_lifetime", "soon", line=2),
                          o("smtpd_helo_required", "si", line=3), o("no_such_thing", "x", line=4)], DEFAULTS, [])
    assert [str(e.origin) for e in caught.value.errors] == [f"postfix-main.cf:{n}" for n in (1, 2, 3, 4)]


def test_a_parameter_of_ones_own_is_accepted_when_used_and_references_pass_the_kind_check():
    plan = apply_to(Plan(), [o("my_limit", "5000", line=1), o("message_size_limit", "$my_limit", line=2)],
                    DEFAULTS, [])
    assert plan.params == {"my_limit": "5000", "message_size_limit": "$my_limit"}


def test_postfix_warnings_are_charged_to_the_override_that_caused_them():
    overrides = [o("smtpd_banner", "$myhostnme ESMTP", line=3)]
    errors = trial_errors(["main.cf: undefined parameter: myhostnme", "main.cf: unused parameter: other=1"],
                          overrides)
    assert [(str(e.origin), "myhostnme" in e.message) for e in errors] == [("postfix-main.cf:3", True)]
