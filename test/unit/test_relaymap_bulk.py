"""The bulk relaymap reader (dmsfiles._plain_relaymap, configure's path for 100k-line
files) reads a file to exactly the rules the line-by-line reader does, or declines it.

Declining is always safe (the line reader then decides, with file:line errors); what must
never happen is the bulk reader accepting a line the line reader refuses or reads otherwise.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings, strategies as st

from relaykit.errors import RelaykitError
from relaykit.inputs import dmsfiles
from relaykit.model.entries import Origin

# Keys near the edges of what domain()/route_key() accept or normalize.
LABELS = st.sampled_from(["a", "b-c", "xn--p1ai", "1", "255", "0", "-x", "y-", "", "A", "Ab", "é", "a_b",
                          "a" * 63, "a" * 64, "a--b", "9z"])
KEYS = st.one_of(
    st.builds(lambda labels: "@" + ".".join(labels), st.lists(LABELS, min_size=1, max_size=6)),
    st.builds(lambda labels: "@." + ".".join(labels), st.lists(LABELS, min_size=1, max_size=3)),
    st.builds(lambda a, b, c, d: f"@{a}.{b}.{c}.{d}", *[st.integers(0, 9999)] * 4),
    st.builds(lambda labels: "@" + ".".join(labels) + ".", st.lists(LABELS, min_size=1, max_size=3)),
    st.text(alphabet="abz09-.@_A#\u00e9", max_size=14),
    st.sampled_from(["user@shop.example", "@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61,
                     "@" + "a." * 126 + "bc"]),
)
VALUES = st.sampled_from(["[relay.test]:587", "[r.test]:99999", "smtps:[h.test]:465", "[a.test]:25,[b.test]:465",
                          "[a.test]:587,[b.test]:587", "x#y", "[Relay.Test]:587", "h.test", "[::1]:25", "[1.2.3.4]:2525"])
SEPARATORS = st.sampled_from([" ", "\t", "  \t", "\t\t"])
LINES = st.builds(lambda key, sep, value, tail: f"{key}{sep}{value}{tail}", KEYS, SEPARATORS, VALUES,
                  st.sampled_from(["", "", " ", "\t", " extra", "\r"]))
OTHER_LINES = st.sampled_from(["", "# a comment", "  ", "@opt.example", "\u2028"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(LINES, LINES, LINES, OTHER_LINES), min_size=1, max_size=6), st.booleans())
def test_the_bulk_reader_reads_exactly_what_the_line_reader_reads_or_declines(tmp_path_factory, lines, newline):
    _same_or_declined(tmp_path_factory, "postfix-relaymap.cf", "\n".join(lines) + ("\n" if newline else ""),
                      lambda text, name: dmsfiles._plain_relaymap(text, name, ()), dmsfiles.parse_relay_row)


def _same_or_declined(tmp_path_factory, name: str, text: str, bulk_reader, parse_row) -> None:
    """The bulk reader declines `text` (None), or reads it to what the line reader does."""
    path = Path(tmp_path_factory.mktemp("bulk")) / name
    path.write_text(text, encoding="utf-8")
    bulk = bulk_reader(text, str(path))
    if bulk is None:
        return
    try:
        by_line = dmsfiles._collect(path, parse_row, (), text)
    except RelaykitError as exc:
        raise AssertionError(f"the bulk reader accepted what the line reader refuses: {text!r}: {exc}") from None
    assert bulk == by_line
    if hasattr(bulk, "nexthop_counts"):  # relaymap: counted as read, each list in first-use order
        from collections import Counter

        counts = Counter(rule.nexthops for rule in by_line)
        assert bulk.nexthop_counts() == counts and list(bulk.nexthop_counts()) == list(counts)
    written = getattr(bulk, "written", None)  # relaymap: the text as relayhost_map's lines, when it is
    if written is not None:
        assert written == "".join(f"{rule.sender} {','.join(rule.nexthops)}\n" for rule in by_line)
    elif hasattr(bulk, "written"):  # not written so: some line has more blanks, or a value to normalize
        assert text.replace("\t", " ").rstrip("\n").split("\n") != [
            f"{rule.sender} {','.join(rule.nexthops)}" for rule in by_line]


def test_a_plain_file_is_read_in_bulk_and_anything_else_line_by_line(tmp_path):
    plain = "".join(f"@d{i}.example\t[relay{i % 3}.test]:587\n" for i in range(1000))
    assert dmsfiles._plain_relaymap(plain, "f", ()).written == plain.replace("\t", " ")
    # read in bulk, but not the rules' lines as they are written: blanks, a value normalized
    for other in (plain + "@a.example  [r.test]:587\n", plain + "@a.example [r.test]:587 \n",
                  plain + "@a.example [Relay.Test]:587\n", plain + "@a.example smtps:[h.test]:465\n"):
        assert dmsfiles._plain_relaymap(other, "f", ()).written is None
    for other in ("# header\n" + plain, plain + "@Upper.example [r.test]:587\n", plain + "@.wild.example [r.test]:587\n",
                  plain + "@bad.example [r.test]:0\n",
                  # two fields a line on average, but not on each line
                  plain + "@a.example [r.test]:587 @b.example\n[r.test]:587\n", plain + " @a.example [r.test]:587\n"):
        assert dmsfiles._plain_relaymap(other, "f", ()) is None
    path = tmp_path / "postfix-relaymap.cf"
    path.write_text(plain + "@d0.example [other.test]:587\n@bad.example [r.test]:0\n")
    try:
        dmsfiles.load_relaymap(path)
    except RelaykitError as exc:
        assert f"{path}:1002" in str(exc) and "port" in str(exc)
    else:
        raise AssertionError("a bad port in a 1000-line file was accepted")


RELOAD_LINES = st.sampled_from(["@a.example [r.test]:587", "@b.example [s.test]:587", "@c.example", "# comment", "",
                                "@a.example [s.test]:587", "@Upper.example [r.test]:587", "@.wild.example [r.test]:587",
                                "x@d.example [r.test]:587", "@bad.example [r.test]:0"])


def _read_whole(path: Path):
    """What reading the file afresh gives: its rules, or the error's text."""
    dmsfiles._LAST_RELAYMAP = None
    try:
        return dmsfiles.load_relaymap(path)
    except RelaykitError as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(st.lists(RELOAD_LINES, max_size=8), st.lists(RELOAD_LINES, max_size=8), st.booleans(), st.booleans())
def test_a_file_read_again_after_an_edit_gives_what_reading_it_whole_does(tmp_path_factory, before, after, nl1, nl2):
    path = Path(tmp_path_factory.mktemp("relaymap")) / "postfix-relaymap.cf"
    path.write_text("\n".join(before) + ("\n" if nl1 and before else ""))
    first = _read_whole(path)
    if isinstance(first, str):
        return  # only a file read without error is read against
    path.write_text("\n".join(after) + ("\n" if nl2 and after else ""))
    expected = _read_whole(path)
    dmsfiles._LAST_RELAYMAP = None
    path.write_text("\n".join(before) + ("\n" if nl1 and before else ""))
    remembered = dmsfiles.load_relaymap(path)
    path.write_text("\n".join(after) + ("\n" if nl2 and after else ""))
    try:
        again = dmsfiles.load_relaymap(path)
    except RelaykitError as exc:
        again = str(exc)
    assert again == expected
    if isinstance(again, str):
        return
    # The edit core/replan.py patches a plan by: the rules before it kept, then the added
    # ones, then the same rules as after the removed ones (renumbered).
    edit = dmsfiles.relaymap_edit(again)
    if edit is None:  # read whole: only after an empty file
        assert not "\n".join(before)
        return
    assert edit.before is remembered
    assert all(a is b for a, b in zip(again[:edit.start], remembered[:edit.start]))
    assert len(again) == len(remembered) - edit.removed + edit.added
    assert [rule[:2] for rule in again[edit.start + edit.added:]] == \
        [rule[:2] for rule in remembered[edit.start + edit.removed:]]


def test_an_edit_of_a_large_file_keeps_the_unchanged_lines_rules(tmp_path):
    path = tmp_path / "postfix-relaymap.cf"
    lines = [f"@d{i}.example [relay{i % 3}.test]:587\n" for i in range(1000)]
    path.write_text("".join(lines))
    dmsfiles._LAST_RELAYMAP = None
    old = dmsfiles.load_relaymap(path)
    path.write_text("".join(lines[:10] + ["# inserted\n", "@new.example [x.test]:25\n"] + lines[11:]))
    new = dmsfiles.load_relaymap(path)
    assert new[:10] == old[:10] and new[10].sender == "@new.example" and str(new[10].origin).endswith(":12")
    assert new[11].origin.line == 13 and new[11].sender == "@d11.example"
    assert all(a is b for a, b in zip(new[:10], old[:10]))  # kept, not parsed again


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(RELOAD_LINES, min_size=1, max_size=10), min_size=2, max_size=5))
def test_a_file_read_again_after_several_edits_gives_what_reading_it_whole_does(tmp_path_factory, versions):
    """Each reread counts lines from what the one before it counted (dmsfiles._reread)."""
    path = Path(tmp_path_factory.mktemp("relaymap")) / "postfix-relaymap.cf"
    dmsfiles._LAST_RELAYMAP = None
    for lines in versions:
        text = "".join(f"{line}\n" for line in lines)
        path.write_text(text)
        try:
            again = dmsfiles.load_relaymap(path)
        except RelaykitError as exc:
            again = str(exc)
        remembered = dmsfiles._LAST_RELAYMAP
        assert again == _read_whole(path)
        dmsfiles._LAST_RELAYMAP = remembered  # as if _read_whole had not read it


# postfix-accounts.cf: the same promise for its bulk reader (dmsfiles._plain_accounts).
LOCALS = st.sampled_from(["user", "a.b", "x+tag", "", "us er", "a#b", "a@b", "Ü", "a|b", "{x}"])
DOMAINS = st.one_of(st.builds(".".join, st.lists(LABELS, min_size=1, max_size=4)),
                    st.sampled_from(["d.example.", "1.2.3.4", "1234.5.6.7", "@d.example", "D.Example"]))
HASHES = st.sampled_from(["{SHA512-CRYPT}$6$salt$hash", "", "{PLAIN}p@ss", "{PLAIN}a|b", "h#x", "{X}a b", "\x01"])
ACCOUNT_LINES = st.builds(lambda local, domain, bar, hash_, tail: f"{local}@{domain}{bar}{hash_}{tail}", LOCALS, DOMAINS,
                          st.sampled_from(["|", "|", "", "||"]), HASHES, st.sampled_from(["", "", " ", "\t", "\r"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(ACCOUNT_LINES, ACCOUNT_LINES, ACCOUNT_LINES, OTHER_LINES), min_size=1, max_size=6),
       st.booleans())
def test_the_bulk_accounts_reader_reads_exactly_what_the_line_reader_reads_or_declines(tmp_path_factory, lines,
                                                                                     newline):
    _same_or_declined(tmp_path_factory, "postfix-accounts.cf", "\n".join(lines) + ("\n" if newline else ""),
                      _plain_accounts_with_their_domains, dmsfiles.parse_account_row)


def _plain_accounts_with_their_domains(text: str, name: str):
    """_plain_accounts' accounts, once the domains it gives with them are checked to be
    theirs (core/plan.py takes them as the managed domains); read as _read_accounts does,
    with the file's bytes when it is one."""
    data = Path(name).read_bytes() if Path(name).is_file() else text.encode()
    read = dmsfiles._plain_accounts(text, name, data)
    if read is None:
        return None
    accounts, domains = read
    assert list(domains) == [account.domain for account in accounts]
    return accounts


def test_plain_accounts_are_read_in_bulk_and_anything_else_line_by_line(tmp_path):
    plain = "".join(f"user{i}@d{i % 7}.example|{{SHA512-CRYPT}}$6$s$h{i}\n" for i in range(1000))
    assert len(_plain_accounts_with_their_domains(plain, "f")) == 1000
    for other in ("# header\n" + plain, plain + "a@Upper.example|{X}h\n", plain + "\n", plain + "a@1.2.3.4|{X}h\n",
                  plain + "nobar@d.example\n"):
        assert dmsfiles._plain_accounts(other, "f", other.encode()) is None
    (tmp_path / "postfix-accounts.cf").write_text(plain + "a@b..example|{X}h\n")
    try:
        dmsfiles.load_accounts(tmp_path)
    except RelaykitError as exc:
        assert f"{tmp_path / 'postfix-accounts.cf'}:1001" in str(exc)
    else:
        raise AssertionError("a bad domain in a 1000-line file was accepted")


def test_an_accounts_file_with_crlf_line_ends_is_read_line_by_line_as_text_mode_reads_it(tmp_path):
    """Its bytes hold '\r' where its text (universal newlines) does not: the bulk reader,
    given both, declines, and the line reader reads the text."""
    plain = "".join(f"user{i}@d{i}.example|{{SHA512-CRYPT}}$6$s$h{i}\r\n" for i in range(3))
    (tmp_path / "postfix-accounts.cf").write_bytes(plain.encode())
    accounts, domains = dmsfiles._read_accounts(tmp_path)
    assert domains is None  # not the bulk reader's
    assert [(a.address, a.password_hash.reveal()) for a in accounts] == [
        (f"user{i}@d{i}.example", f"{{SHA512-CRYPT}}$6$s$h{i}") for i in range(3)]
    (tmp_path / "postfix-accounts.cf").write_bytes(plain.replace("\r\n", "\n").encode())
    assert dmsfiles._read_accounts(tmp_path)[1] == ["d0.example", "d1.example", "d2.example"]


def test_bulk_accounts_are_made_when_first_used_and_two_reads_compare_without_making_them():
    plain = "".join(f"user{i}@d{i}.example|{{SHA512-CRYPT}}$6$s$h{i}\n" for i in range(100))
    accounts, domains = dmsfiles._plain_accounts(plain, "f", plain.encode())
    again, _ = dmsfiles._plain_accounts(plain, "f", plain.encode())
    assert len(accounts) == 100 and accounts._items is None  # configure's relay plan reads only `domains`
    assert accounts == again and again._items is None  # the same text: equal, neither made
    other = plain.replace("h99", "h98")
    changed, _ = dmsfiles._plain_accounts(other, "f", other.encode())
    assert accounts != changed  # compared entry by entry
    assert accounts == dmsfiles._collect(Path("f"), dmsfiles.parse_account_row, (), plain)
    assert accounts[99].origin == Origin("f", 100) and accounts[1:3] == tuple(accounts)[1:3]
    assert domains[99] == "d99.example"


def test_bulk_rules_are_made_when_read_and_plan_as_the_line_readers_rules(tmp_path):
    """model/entries.Rules: a rule is made when one is read, all of them when sliced or
    compared; a plan from them is the plan from the line reader's tuple, and making it
    (with its summary) makes none of them."""
    from collections import Counter

    from relaykit.core.overview import summary
    from relaykit.core.plan import build
    from relaykit.model.entries import Account, ConfigFiles
    from relaykit.model.settings import Settings
    from relaykit.secret import Secret

    path = tmp_path / "postfix-relaymap.cf"
    text = "".join(f"@d{i}.example\t[relay{i % 3}.test]:587\n" for i in range(300))
    path.write_text(text)
    rules, by_line = dmsfiles._plain_relaymap(text, str(path), ()), dmsfiles._collect(path, dmsfiles.parse_relay_row, ())
    assert rules[7] == by_line[7] and rules[-1] == by_line[-1] and list(rules) == list(by_line)
    assert rules.nexthop_counts() == Counter(rule.nexthops for rule in by_line)
    assert rules._items is None
    accounts = tuple(Account(f"u@{d}.example", Secret("x"), Origin("a", 1)) for d in ("d5", "m1", "m0"))
    cases = ((Settings(), {}), (Settings(relay_host="relay.test", relay_port=587), {"accounts": accounts}))
    plans = [build(settings, ConfigFiles(relay_rules=rules, relaymap_exists=True, **extra), "lmdb")
             for settings, extra in cases]
    assert [summary(plan) for plan in plans] == [summary(plan) for plan in plans] and rules._items is None
    assert rules.nexthop_counts() == Counter(rule.nexthops for rule in by_line)  # counting defaults changed nothing
    for plan, (settings, extra) in zip(plans, cases):
        assert plan == build(settings, ConfigFiles(relay_rules=by_line, relaymap_exists=True, **extra), "lmdb")
    assert rules[10:20] == by_line[10:20] and rules == by_line and rules._items is not None
