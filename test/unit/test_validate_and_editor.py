from __future__ import annotations

import pytest

from relaykit.inputs import validate
from relaykit.edges.editor import replace_key, set_line
from relaykit.errors import RelaykitError


@pytest.mark.parametrize("value, expected", [
    ("[relay.test]:587", "[relay.test]:587"),
    ("relay.test:587", "relay.test:587"),
    ("[Relay.Test]", "[relay.test]"),
    ("relay.test", "relay.test"),
    ("[2001:db8::1]:25", "[2001:db8::1]:25"),
    ("[ipv6:2001:db8::1]:25", "[2001:db8::1]:25"),
    ("[192.0.2.1]:2525", "[192.0.2.1]:2525"),
])
def test_nexthop_accepts_postfix_forms(value, expected):
    assert validate.nexthop(value) == expected


@pytest.mark.parametrize("value", ["", "[relay.test", "relay.test]", "2001:db8::1", "[relay.test]:x",
                                   "[relay.test]:0", "[a b]:25", "[relay.test]25", "relay.test:25:1"])
def test_nexthop_refuses_what_postfix_would_misread(value):
    with pytest.raises(RelaykitError):
        validate.nexthop(value)


def test_nexthops_splits_commas_and_spaces():
    assert validate.nexthops("[a.test]:587, [b.test]:587") == ("[a.test]:587", "[b.test]:587")


def test_replace_key_matches_whole_first_field_case_insensitively():
    data = b"@a.test x\n@a.test.org y\nuser@a.test z\n  @A.TEST w\n"
    assert replace_key(data, "@a.test", "@a.test new") == b"@a.test new\n@a.test.org y\nuser@a.test z\n"


def test_replace_key_appends_after_a_missing_final_newline():
    assert replace_key(b"# c\n@a.test x", "@b.test", "@b.test y") == b"# c\n@a.test x\n@b.test y\n"


def test_remove_absent_key_is_a_no_op(tmp_path):
    path = tmp_path / "f"
    assert set_line(path, "@a.test", None) is False and not path.exists()


# -- internationalized domain names: IDNA 2008 with UTS #46 (not Python's IDNA 2003 codec)

@pytest.mark.parametrize("value, expected", [
    ("faß.de", "xn--fa-hia.de"),  # IDNA 2003 (the `idna` codec) would say fass.de: another domain
    ("FAß.DE", "xn--fa-hia.de"),
    ("@straße.example", "xn--strae-oqa.example"),
    ("ς.gr", "xn--3xa.gr"),  # final sigma kept (IDNA 2003: σ)
    ("münchen.de.", "xn--mnchen-3ya.de"),
])
def test_idn_domains_get_their_idna2008_ascii_form(value, expected):
    assert validate.domain(value) == expected
    assert "fass" not in validate.domain(value)


@pytest.mark.parametrize("value", ["☃.net", "a⒈com", "bü_cher.example", "-bücher.example"])
def test_names_invalid_under_idna2008_are_refused_with_a_clear_error(value):
    # ☃.net and a⒈com were valid IDNA 2003 (xn--n3h.net, a1.com)
    with pytest.raises(RelaykitError, match=r"relay domain is not a valid internationalized domain name \(IDNA 2008\)"):
        validate.domain(value, "relay domain")


def test_only_a_name_that_is_not_ascii_imports_idna():
    import subprocess
    import sys

    code = ("import sys; from relaykit.inputs import validate; "
            "validate.domain('x.example'); validate.host('relay.test'); print('idna' in sys.modules); "
            "validate.domain('faß.de'); print('idna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
