"""A table edit applied in place (`postmap -i -r` / `postmap -d`, core/tabledelta.py) leaves
exactly the compiled table that compiling the new source whole gives, checked against
Postfix's own postmap; and apply() takes that path for a few changed lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaykit.core.tabledelta import delta
from relaykit.edges.postfix import Postfix
from relaykit.model.plan import Plan, Table
from relaykit.run import apply as apply_module
from relaykit.run.apply import apply


def _compiled(postfix: Postfix, kind: str, path: Path) -> dict[str, str]:
    """Every entry of the compiled table, as Postfix reads it (postmap -s)."""
    out = subprocess.run(["postmap", "-c", str(postfix.config_dir), "-s", f"{kind}:{path}"],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split(None, 1) for line in out.splitlines())


def _text(entries) -> bytes:
    return "".join(f"{key} {value}\n" for key, value in entries).encode()


def test_a_changed_line_is_one_upsert():
    old = _text([("@a.example", "[one]:587"), ("@b.example", "[two]:587")])
    new = _text([("@a.example", "[one]:587"), ("@b.example", "[three]:587"), ("@c.example", "[one]:587")])
    assert delta(old, new) == (b"@b.example [three]:587\n@c.example [one]:587\n", b"")
    assert delta(new, old) is None  # a change and a removal: two postmap runs (see the module)
    assert delta(new, new.replace(b"@c.example [one]:587\n", b"")) == (b"", b"@c.example\n")
    assert not delta(old, old)


def test_what_an_in_place_update_would_get_wrong_is_compiled_whole():
    base = [(f"@d{n}.example", "[one]:587") for n in range(1000)]
    old = _text(base)
    # a new key that an unchanged line has already (postmap keeps the first line's value)
    assert delta(old, old + b"@d5.example [two]:587\n") is None
    assert delta(old + b"@D5.example [two]:587\n", old) is None  # keys are case-folded
    assert delta(old, old + b"@x.example [a]:1\n@x.example [b]:1\n") is None
    # a continuation line changes the entry of the line before it
    assert delta(old, old + b"@x.example [a]:1\n  ,[b]:1\n") is None
    # most of the table changed: compiling it whole is as fast
    assert delta(old, _text((key, "[two]:587") for key, _ in base)) is None
    assert delta(old, old + b"# a comment\n\n") == (b"", b"")


KEYS = st.sampled_from([f"@d{n}.example" for n in range(40)] + [f"u{n}@d1.example" for n in range(5)])
VALUES = st.sampled_from(["[one]:587", "[two]:2525", "smtp:[three]:465", "DUNNO"])
TABLES = st.dictionaries(KEYS, VALUES, min_size=1, max_size=30)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    from harness.postfix_instance import PostfixInstance

    return PostfixInstance(tmp_path_factory.mktemp("delta")).create()


@pytest.mark.parametrize("kind", ["lmdb", "hash"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=TABLES, new=TABLES, order=st.randoms(use_true_random=False))
def test_an_in_place_update_compiles_to_what_a_full_compile_does(scratch, kind, old, new, order):
    postfix = Postfix(scratch.config_dir)
    entries = list(new.items())
    order.shuffle(entries)
    old_text, new_text = _text(old.items()), _text(entries)
    updated, whole = scratch.config_dir / f"updated-{kind}", scratch.config_dir / f"whole-{kind}"
    updated.write_bytes(old_text)
    postfix.postmap(kind, [updated])
    whole.write_bytes(new_text)
    postfix.postmap(kind, [whole])
    change = delta(old_text, new_text)
    if change is None:  # declined: nothing to check but that it is rare for small tables
        return
    updated.write_bytes(new_text)
    postfix.postmap_update(kind, [(updated, *change)])
    assert _compiled(postfix, kind, updated) == _compiled(postfix, kind, whole) == dict(new)


def test_apply_updates_a_large_table_in_place_when_a_line_changes(env, monkeypatch):
    postfix = Postfix(env.postfix.config_dir)
    lines = tuple(f"@d{n}.example [relay{n % 3}.test]:587" for n in range(5000))
    apply(Plan(tables=(Table("relayhost_map", lines),), table_type="lmdb"), postfix)
    compiled_whole = []
    monkeypatch.setattr(Postfix, "postmap", lambda self, kind, paths: compiled_whole.extend(paths))
    changed = (*lines[:10], "@d10.example [elsewhere.test]:587", *lines[11:], "@new.example [relay1.test]:587")
    changes = apply(Plan(tables=(Table("relayhost_map", changed),), table_type="lmdb"), postfix)
    assert changes.tables == ("relayhost_map",) and compiled_whole == []
    lookup = f"lmdb:{env.postfix.config_dir / 'relayhost_map'}"
    assert postfix.query(lookup, "@d10.example") == "[elsewhere.test]:587"
    assert postfix.query(lookup, "@new.example") == "[relay1.test]:587"
    assert postfix.query(lookup, "@d11.example") == "[relay2.test]:587"
    apply(Plan(tables=(Table("relayhost_map", changed[:-1]),), table_type="lmdb"), postfix)  # a removal
    assert postfix.query(lookup, "@new.example") is None
    assert postfix.query(lookup, "@d10.example") == "[elsewhere.test]:587" and compiled_whole == []


def test_a_table_whose_update_was_cut_short_is_compiled_whole_next_time(env, monkeypatch):
    """A killed run (container stop) can leave an in-place update half-done, with a compiled
    table newer than its source: the marker apply leaves until postmap succeeded says so."""
    postfix = Postfix(env.postfix.config_dir)
    lines = tuple(f"@d{n}.example [relay{n % 3}.test]:587" for n in range(500))
    apply(Plan(tables=(Table("relayhost_map", lines),), table_type="lmdb"), postfix)

    def killed(self, kind, updates):
        raise KeyboardInterrupt  # as if the process died while postmap ran

    monkeypatch.setattr(Postfix, "postmap_update", killed)
    with pytest.raises(KeyboardInterrupt):
        apply(Plan(tables=(Table("relayhost_map", (*lines, "@new.example [x.test]:25")),), table_type="lmdb"), postfix)
    monkeypatch.undo()
    compiled_whole = []
    real = Postfix.postmap
    monkeypatch.setattr(Postfix, "postmap", lambda self, kind, paths: (compiled_whole.extend(paths),
                                                                       real(self, kind, paths)))
    apply(Plan(tables=(Table("relayhost_map", (*lines, "@new.example [x.test]:25")),), table_type="lmdb"), postfix)
    assert compiled_whole == [env.postfix.config_dir / "relayhost_map"]
    lookup = f"lmdb:{env.postfix.config_dir / 'relayhost_map'}"
    assert postfix.query(lookup, "@new.example") == "[x.test]:25"
    assert not list(env.postfix.config_dir.glob(".*.tmp"))


def test_a_new_process_compiles_a_changed_table_whole_before_it_updates_in_place(env, monkeypatch):
    """The sources are written without fsync: after a restart the source on disk may not
    be what the compiled table was made from, so the first change is compiled whole."""
    postfix = Postfix(env.postfix.config_dir)
    lines = tuple(f"@d{n}.example [relay{n % 3}.test]:587" for n in range(500))
    apply(Plan(tables=(Table("relayhost_map", lines),), table_type="lmdb"), postfix)
    monkeypatch.setattr(apply_module, "_SOURCES", {})  # what a new relaykit process knows
    compiled_whole, updated = [], []
    real, real_update = Postfix.postmap, Postfix.postmap_update
    monkeypatch.setattr(Postfix, "postmap", lambda self, kind, paths: (compiled_whole.extend(paths),
                                                                       real(self, kind, paths)))
    monkeypatch.setattr(Postfix, "postmap_update", lambda self, kind, updates: (updated.extend(updates),
                                                                                real_update(self, kind, updates)))
    apply(Plan(tables=(Table("relayhost_map", (*lines, "@new.example [x.test]:25")),), table_type="lmdb"), postfix)
    assert compiled_whole == [env.postfix.config_dir / "relayhost_map"] and not updated
    apply(Plan(tables=(Table("relayhost_map", (*lines, "@new.example [y.test]:25")),), table_type="lmdb"), postfix)
    assert len(compiled_whole) == 1 and len(updated) == 1  # from then on, in place
    lookup = f"lmdb:{env.postfix.config_dir / 'relayhost_map'}"
    assert postfix.query(lookup, "@new.example") == "[y.test]:25"
