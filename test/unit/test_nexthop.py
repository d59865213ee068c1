"""NextHop: a next hop parsed once, with the two TLS facts decided in one place."""

from __future__ import annotations

import pytest

from relaykit.inputs import validate
from relaykit.model.nexthop import ENCRYPT, IMPLICIT, SECURE, STARTTLS, NextHop, tls_level


@pytest.mark.parametrize("text, mode", [("[r.test]:465", IMPLICIT), ("[r.test]:2465", IMPLICIT),
                                        ("[r.test]:587", STARTTLS), ("[r.test]", STARTTLS),
                                        ("smtps:[r.test]:2587", IMPLICIT), ("smtp:[r.test]:465", STARTTLS)])
def test_the_mode_is_the_ports_unless_a_prefix_says_otherwise(text, mode):
    [hop] = validate.relay_list(text)
    assert hop.mode == mode
    assert hop.written == (text if text.startswith("smtp") else str(hop))  # a prefix only where it matters


def test_a_next_hop_is_its_postfix_spelling_with_its_parts():
    hop = validate.nexthop("[2001:db8::25]:2525")
    assert hop == "[2001:db8::25]:2525" and {hop: 1}["[2001:db8::25]:2525"] == 1
    assert (hop.host, hop.port, hop.bracketed) == ("2001:db8::25", 2525, True)
    mx = validate.nexthop("relay.test")
    assert (mx, mx.port, mx.bracketed) == ("relay.test", None, False)
    with pytest.raises(AttributeError):
        hop.port = 25


def test_the_level_is_secure_only_for_the_listed_hops():
    listed = validate.nexthops("[a.test]:587")
    assert tls_level(NextHop("a.test", 587), listed) == SECURE
    assert tls_level(NextHop("b.test", 587), listed) == ENCRYPT
    assert [h.level for h in validate.relay_list("[a.test]:587,[b.test]:587", secure=listed)] == [SECURE, ENCRYPT]


def test_setup_arguments_become_the_same_next_hop_as_the_files():
    assert validate.relay("smtps:relay.test", "2587") == validate.relay_list("smtps:[relay.test]:2587")[0]
    assert validate.relay("smtps:relay.test", "2587").written == "smtps:[relay.test]:2587"
    assert validate.relay("smtp:relay.test", "465").written == "smtp:[relay.test]:465"
    assert validate.relay("smtps:relay.test", "465").written == "[relay.test]:465"
