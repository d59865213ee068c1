"""Live reload's patched plan (core/replan.py) is the plan build() makes of the same
files: for any sequence of relaymap edits, in every configuration, patched or not."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings as hsettings, strategies as st

from relaykit.core import replan
from relaykit.core.plan import build
from relaykit.errors import ConfigError, RelaykitError
from relaykit.inputs import dmsfiles
from relaykit.inputs.env import ACCOUNTS, RELAYMAP, SASL_PASSWORD
from relaykit.model.settings import Settings

# Keys and values that reach every case: opt-outs, addresses under routed domains,
# wildcards, managed domains (a.test, b.test), next-hop lists in and out of use, keys
# given twice, a bad line.
KEYS = ["@a.test", "@b.test", "@c.test", "@d.test", "@e.test", "x@c.test", "@.c.test", "@f.test"]
VALUES = ["[r.test]:587", "[s.test]:587", "[r.test]:587,[s.test]:587", "[t.test]:465", "", "[bad.test]:0"]
LINE = st.builds(lambda key, value: f"{key} {value}".strip(), st.sampled_from(KEYS), st.sampled_from(VALUES))
# Line 1..3: next-hop lists in use from the start, so that most edits later can be patched.
HEAD = "@h1.test [r.test]:587\n@h2.test [s.test]:587\n@h3.test [t.test]:465\n"
FILE = st.lists(st.one_of(LINE, LINE, LINE, st.just("# comment")), max_size=6)
EDIT = st.tuples(st.integers(0, 10), st.integers(0, 3), st.lists(LINE, max_size=3))  # where, how many removed, added
SETTINGS = st.sampled_from([{}, {"relay_host": "relay.test", "relay_port": 587}])
CREDENTIALS = st.sampled_from(["", "[r.test]:587 u:p\n", "@c.test u:p\n", "@.c.test u:p\n"])


def _outcome(make):
    try:
        return make()
    except RelaykitError as exc:
        return str(exc)


def _same(patched, built) -> None:
    if isinstance(built, str) or isinstance(patched, str):
        assert patched == built
        return
    assert patched == built  # every field but the decisions (compare=False)
    assert dict(patched.decisions) == dict(built.decisions)


@hsettings(max_examples=300, deadline=None)
@given(FILE, st.lists(EDIT, min_size=1, max_size=5), SETTINGS, CREDENTIALS, st.booleans())
def test_a_patched_plan_is_the_plan_built_whole(tmp_path_factory, lines, edits, env, credentials, accounts):
    _walk(Path(tmp_path_factory.mktemp("config")), lines, edits, env, credentials, accounts)


def test_random_edits_are_mostly_patched_and_always_right(tmp_path):
    """The same walk, seeded, counting: the comparisons are of patched plans too (each
    first plan of a walk is built whole, and so are edits with opt-outs or new relays)."""
    draw = random.Random(19)
    patched = total = 0
    for number in range(150):
        lines = [f"{draw.choice(KEYS)} {draw.choice(VALUES[:5])}".strip() for _ in range(draw.randrange(6))]
        edits = [(draw.randrange(3, 11), draw.randrange(2), [f"@n{number}x{i}.test {draw.choice(VALUES[:4])}"])
                 for i in range(4)]
        config = tmp_path / str(number)
        config.mkdir()
        walked = _walk(config, lines, edits, draw.choice([{}, {"relay_host": "relay.test", "relay_port": 587}]),
                       draw.choice(["", "[r.test]:587 u:p\n"]), draw.random() < 0.5)
        patched, total = patched + walked[0], total + walked[1]
    assert patched > total // 3, (patched, total)  # 295 of 659 when written


def _walk(config: Path, lines, edits, env, credentials, accounts) -> tuple[int, int]:
    """Edit the relaymap step by step; at each, replan.plan must give what build() gives
    (or the same error). (plans patched, plans made)."""
    if credentials:
        (config / SASL_PASSWORD).write_text(credentials)
    if accounts:
        (config / ACCOUNTS).write_text("u@a.test|{PLAIN}x\nu@b.test|{PLAIN}x\n")
    configured = Settings(config_dir=config, **env)
    relaymap = config / RELAYMAP
    dmsfiles._LAST_RELAYMAP = None
    basis, patched, made = None, 0, 0
    text = HEAD + "".join(f"{line}\n" for line in lines)
    for where, removed, added in [(0, 0, []), *edits]:
        kept = text.splitlines(keepends=True)
        where = min(where, len(kept))
        text = "".join(kept[:where] + [f"{line}\n" for line in added] + kept[where + removed:])
        relaymap.write_text(text)
        files = _outcome(lambda: dmsfiles.load(config))
        if isinstance(files, str):
            continue  # a file the reader refuses never reaches the planner
        built = _outcome(lambda: build(configured, files, "lmdb"))
        outcome = _outcome(lambda: replan.plan(basis, configured, files, "lmdb"))
        if isinstance(outcome, str):
            _same(outcome, built)
            continue
        plan, basis = outcome
        _same(plan, built)
        made += 1
        patched += bool(basis and basis.patched)
    return patched, made


def test_an_appended_or_replaced_line_of_a_large_relaymap_is_patched_and_other_edits_are_not(tmp_path):
    relaymap = tmp_path / RELAYMAP
    lines = [f"@d{i}.test [relay{i % 3}.test]:587\n" for i in range(1000)]
    configured = Settings(config_dir=tmp_path)
    dmsfiles._LAST_RELAYMAP = None

    def reload(text, last):
        relaymap.write_text(text)
        files = dmsfiles.load(tmp_path)
        plan, basis = replan.plan(last, configured, files, "lmdb")
        assert plan == build(configured, files, "lmdb")
        return basis

    basis = reload("".join(lines), None)
    assert basis is not None and not basis.patched
    lines.append("@new.test [relay1.test]:587\n")
    basis = reload("".join(lines), basis)
    assert basis.patched  # appended
    lines[500] = "@d500.test [relay2.test]:587\n"
    basis = reload("".join(lines), basis)
    assert basis.patched  # replaced
    del lines[700]
    basis = reload("".join(lines), basis)
    assert basis.patched  # removed
    for other in ("@optout.test\n", "@new2.test [other.test]:587\n", "@.wild.test [relay1.test]:587\n",
                  "@d3.test [relay1.test]:587\n"):  # an opt-out, a new relay, a wildcard, a key routed already
        basis = reload("".join(lines), basis)
        try:
            after = reload("".join(lines + [other]), basis)
        except ConfigError as exc:
            assert other.startswith("@d3.test") and "already" in str(exc)
            continue
        assert after is None or not after.patched, other
