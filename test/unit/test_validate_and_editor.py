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


def test_replace_key_skips_comments_longer_keys_and_keys_further_in_a_line():
    data = b"# @a.test old\n@a.test.net x\n@a.testing y\nz @a.test\n"
    assert replace_key(data, "@a.test", "@a.test new") == data + b"@a.test new\n"


def test_replace_key_on_a_last_line_without_newline_and_on_crlf_lines():
    assert replace_key(b"@b.test x\n@a.test old", "@a.test", "@a.test new") == b"@b.test x\n@a.test new\n"
    # the replaced line gets a newline; every other line keeps its CRLF
    assert replace_key(b"@a.test old\r\n@b.test x\r\n", "@a.test", "@a.test new") == b"@a.test new\n@b.test x\r\n"
    assert replace_key(b"@b.test x\r\n@a.test\r\n", "@a.test", None) == b"@b.test x\r\n"


def _reference(data: bytes, key: str, line: str | None) -> bytes:
    """replace_key's rule, line by line."""
    out, done = [], line is None
    for text in data.splitlines(keepends=True):
        field = text.lstrip(b" \t")
        rest = field[len(key):]
        if field[:len(key)].lower() == key.lower().encode() and (not rest or rest[:1] in b" \t\r\n|"):
            if not done:
                out.append(line.encode() + b"\n")
                done = True
            continue
        out.append(text)
    if not done:
        if out and not out[-1].endswith(b"\n"):
            out.append(b"\n")
        out.append(line.encode() + b"\n")
    return b"".join(out)


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 16])
@pytest.mark.parametrize("window", [1, 5, 9, 24_000])
def test_replace_key_across_the_blocks_and_windows_it_searches(monkeypatch, block, window):
    """Blocks read, and windows searched with bytes.find, of every size around a key's."""
    from relaykit.edges import editor

    monkeypatch.setattr(editor, "BLOCK", block)
    monkeypatch.setattr(editor, "WINDOW", window)
    lines = [f"@d{i}.test [r{i % 3}.test]:587\n" for i in range(300)]
    lines[5] = "  @D7.Test [upper.test]:25\r\n"
    lines[150] = "@long.test " + "x" * 500 + "\n"
    lines[200] = "@d7.test|dup\n"
    data = "".join(lines).encode() + b"@end.test x"
    for key in ("@d7.test", "@d0.test", "@long.test", "@end.test", "@d299.test", "@new.test"):
        for line in (f"{key} [n.test]:2525", None):
            assert replace_key(data, key, line) == _reference(data, key, line), (key, line)


@pytest.mark.parametrize("sendfile", ["works", "refused"])
def test_set_line_writes_the_same_bytes_keeps_the_mode_and_reports_no_change(tmp_path, monkeypatch, sendfile):
    import os

    from relaykit.edges import editor

    if sendfile == "refused":  # a file system without sendfile(2) between files: copied through a buffer
        def refuse(*args):
            raise OSError(22, "Invalid argument")
        monkeypatch.setattr(os, "sendfile", refuse)
    monkeypatch.setattr(editor, "BLOCK", 16)
    path = tmp_path / "postfix-relaymap.cf"
    data = b"# relays\r\n" + b"".join(b"@d%d.test [r.test]:587\n" % i for i in range(50)) + b"@last.test x"
    path.write_bytes(data)
    os.chmod(path, 0o640)
    assert set_line(path, "@d20.test", "@d20.test [n.test]:25") is True
    assert path.read_bytes() == replace_key(data, "@d20.test", "@d20.test [n.test]:25")
    assert set_line(path, "@d20.test", "@d20.test [n.test]:25") is False
    assert set_line(path, "@new.test", "@new.test [n.test]:25") is True
    assert path.read_bytes().endswith(b"@last.test x\n@new.test [n.test]:25\n")
    assert set_line(path, "@D0.TEST", None) is True and b"@d0.test " not in path.read_bytes()
    assert set_line(path, "@gone.test", None) is False
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [".postfix-relaymap.cf.lock", "postfix-relaymap.cf"]


def test_a_new_key_is_appended_in_place_and_a_changed_one_replaces_the_file(tmp_path):
    """A new key is one write at the end of the same file (no copy of a 100k-line file);
    a replaced or removed line makes a new file, renamed over the old one."""
    import os

    path = tmp_path / "postfix-relaymap.cf"
    path.write_bytes(b"@a.test [r.test]:587\n@b.test [r.test]:587")  # no final newline
    inode = os.stat(path).st_ino
    assert set_line(path, "@new.test", "@new.test [n.test]:25") is True
    assert path.read_bytes() == b"@a.test [r.test]:587\n@b.test [r.test]:587\n@new.test [n.test]:25\n"
    assert os.stat(path).st_ino == inode
    assert set_line(path, "@a.test", "@a.test [n.test]:25") is True
    assert path.read_bytes().startswith(b"@a.test [n.test]:25\n") and os.stat(path).st_ino != inode


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


# -- numbers: ASCII digits only, in argv, the environment, files and the database alike

NOT_NUMBERS = ["25\n", " 25", "25 ", "+25", "-25", "2_5", "²5", "٢٥", "２５", "0x19", "25.0", "", "1" * 5000]


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_port_takes_ascii_digits_only(value):
    # int() would take most of these ("25\n", " 25", "+25", "2_5", "٢٥"); 5000 digits make it raise
    with pytest.raises(RelaykitError, match="port must be a number from 1 to 65535"):
        validate.port(value)


@pytest.mark.parametrize("value", ["[relay.test]:25\n", "[relay.test]:+25", "[relay.test]:٢٥", "relay.test:2_5"])
def test_nexthop_port_takes_ascii_digits_only(value):
    with pytest.raises(RelaykitError):
        validate.nexthop(value)


def test_port_accepts_plain_numbers():
    assert [validate.port(v) for v in ("1", "25", "00587", "65535", 2525)] == [1, 25, 587, 65535, 2525]


@pytest.mark.parametrize("name", ["RELAY_PORT", "SUBMISSION_PORT", "SUBMISSIONS_PORT"])
@pytest.mark.parametrize("value", ["587\n", " 587", "+587", "٥٨٧", "0 "])
def test_port_variables_take_ascii_digits_only(name, value):
    from relaykit.errors import ConfigError
    from relaykit.inputs.settings import load

    environ = {"RELAYKIT_CONFIG_DIR": "/nonexistent", "RELAY_HOST": "relay.test", "ENABLE_SUBMISSION": "1",
               name: value}
    with pytest.raises(ConfigError, match=f"{name}: {name} must be a number from 1 to 65535"):
        load(environ)


@pytest.mark.parametrize("text", ["127.0.0.1:²", "127.0.0.1:25\n", "127.0.0.1:+25", "127.0.0.1:" + "9" * 5000])
def test_health_address_takes_ascii_digits_only(text):
    from relaykit.errors import UsageError
    from relaykit.run.health import _address

    with pytest.raises(UsageError, match="expected <host>:<port>"):
        _address(text)


@pytest.mark.parametrize("directory", ["", "/", "/etc", "/etc/", "relative", "relative/", "a//b"])
def test_the_path_helpers_without_os_join_as_os_path_does(directory):
    """setup's fast path never imports os: inputs/env.path_in and the editor's _beside
    stand in for os.path.join and os.path.split."""
    import os.path

    from relaykit.edges.editor import _beside
    from relaykit.inputs.env import path_in

    assert path_in(directory, "postfix-relaymap.cf") == os.path.join(directory, "postfix-relaymap.cf")
    path = os.path.join(directory, "postfix-relaymap.cf")
    head, name = os.path.split(path)
    assert os.path.normpath(_beside(path, ".{name}.lock")) == os.path.normpath(os.path.join(head, f".{name}.lock"))
