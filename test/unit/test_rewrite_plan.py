"""postfix-sender-rewrite.cf and RELAYKIT_STRIP_RECEIVED: syntax and the plan."""

from __future__ import annotations

import pytest

from relaykit.core import rewrite
from relaykit.errors import RelaykitError
from relaykit.inputs.dmsfiles import Row, parse_rewrite_row
from relaykit.model.entries import Origin
from relaykit.model.settings import Settings


def line(text: str):
    return parse_rewrite_row(Row(tuple(text.split()), Origin("postfix-sender-rewrite.cf", 1)))


@pytest.mark.parametrize("text, message", [
    ("@shop.example", "expected '@domain new@address'"),
    ("@shop.example a@b.example c@d.example", "found 3 fields"),
    ("@.shop.example a@b.example", "@.domain"),
    ("@shop.example @.b.example", "@.domain"),
    ("@shop.example no-domain", "must be an address or @newdomain"),
    ("@sh op.example a@b.example", "fields"),
])
def test_bad_rewrite_lines_are_refused(text, message):
    with pytest.raises(RelaykitError, match=message):
        line(text)


def test_rewrites_follow_postfix_canonical_order_and_keep_the_local_part_for_a_domain():
    rewrites = (line("@Shop.example noreply@verified.example"), line("boss@shop.example @mail.shop.example"))
    assert rewrite.rewritten(rewrites, "Boss@shop.example").apply("boss@shop.example") == "boss@mail.shop.example"
    assert rewrite.rewritten(rewrites, "anna@shop.example").apply("anna@shop.example") == "noreply@verified.example"
    assert rewrite.rewritten(rewrites, "anna@other.example") is None


def test_plan_sets_canonical_maps_header_clients_and_privacy_checks():
    settings = Settings(strip_received=True)
    plan = rewrite.build(settings, (line("@shop.example noreply@verified.example"),), "lmdb")
    assert plan.table("sender_rewrite").lines == ("@shop.example noreply@verified.example",)
    assert plan.params["sender_canonical_maps"] == "lmdb:/etc/postfix/sender_rewrite"
    assert "permit_sasl_authenticated" in plan.params["local_header_rewrite_clients"]
    assert plan.table("smtp_header_checks_privacy").lines == ("/^Received:/ IGNORE", "/^X-Originating-IP:/ IGNORE")
    assert rewrite.build(Settings(), (), "lmdb").params == {}
