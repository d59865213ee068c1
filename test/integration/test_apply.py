"""apply(): master.cf services relaykit adds are kept in step with the plan."""

from __future__ import annotations

import pytest

from relaykit.run.apply import apply
from relaykit.model.plan import Plan, Service
from relaykit.edges.postfix import SMALL_TABLE, Postfix, PostfixError

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


def test_postmap_compiles_large_and_small_tables_and_names_a_source_it_cannot_read(env):
    """Large tables each get a postmap of their own, the small ones share one (compiled in
    turn): every table answers, and a failure names its file."""
    postfix = Postfix(env.postfix.config_dir)
    directory = env.postfix.config_dir
    large = [directory / f"large{i}" for i in range(2)]
    small = [directory / f"small{i}" for i in range(3)]
    lines = SMALL_TABLE // len("@d00000.example [relay.test]:587\n") + 1
    for i, path in enumerate(large):
        path.write_text("".join(f"@d{n:05}.example [relay{i}.test]:587\n" for n in range(lines)))
        assert path.stat().st_size >= SMALL_TABLE
    for i, path in enumerate(small):
        path.write_text(f"@small.example [small{i}.test]:25\n")
    postfix.postmap("lmdb", [large[0], *small, large[1]])
    for i, path in enumerate(large):
        assert postfix.query(f"lmdb:{path}", f"@d{lines - 1:05}.example") == f"[relay{i}.test]:587"
    for i, path in enumerate(small):
        assert postfix.query(f"lmdb:{path}", "@small.example") == f"[small{i}.test]:25"
    with pytest.raises(PostfixError, match="missing-table"):
        postfix.postmap("lmdb", [small[0], directory / "missing-table", large[0]])


def test_main_cf_is_set_on_a_copy_and_put_in_place_only_once_the_tables_are_compiled(env):
    """apply sets main.cf's new parameters on a scratch copy while the tables compile, and
    renames it over main.cf after: a failed compile leaves main.cf as it was (it never
    names a table that is not compiled), and no scratch directory stays behind."""
    from relaykit.model.plan import Table

    postfix = Postfix(env.postfix.config_dir)
    directory = env.postfix.config_dir
    before = (directory / "main.cf").read_bytes()
    (directory / "relay_table.lmdb").mkdir()  # where postmap must write: it fails
    bad = Plan(params={"relayhost": "[bad.test]:25"}, table_type="lmdb",
               tables=(Table("relay_table", ("@a.example [bad.test]:25",)),))
    with pytest.raises(PostfixError, match="relay_table"):
        apply(bad, postfix)
    (directory / "relay_table.lmdb").rmdir()
    assert (directory / "main.cf").read_bytes() == before
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".relaykit-edit-")]
    good = Plan(params={"relayhost": "[good.test]:25", "smtp_helo_timeout": "123s"}, table_type="lmdb",
                tables=(Table("relay_table", ("@a.example [good.test]:25",)),))
    changes = apply(good, postfix)
    assert {"relayhost", "smtp_helo_timeout"} <= set(changes.params)
    assert postfix.param("relayhost") == "[good.test]:25" and postfix.param("smtp_helo_timeout") == "123s"
    assert postfix.query(f"lmdb:{directory / 'relay_table'}", "@a.example") == "[good.test]:25"
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".relaykit-edit-")]
    assert env.postfix.check() == ""


def test_main_cf_that_cannot_be_replaced_is_a_postfix_error_naming_it(env, monkeypatch):
    """The copy's rename over main.cf fails (e.g. main.cf bind-mounted as a file, where
    postconf -e's own rename failed the same way): a PostfixError naming main.cf, main.cf
    unchanged, no scratch directory left."""
    import errno
    import os

    from relaykit.model.plan import Table

    postfix = Postfix(env.postfix.config_dir)
    directory = env.postfix.config_dir
    before = (directory / "main.cf").read_bytes()
    real = os.replace

    def busy(src, dst, *args, **kwargs):
        if str(dst).endswith("/main.cf"):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(src), None, str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", busy)
    plan = Plan(params={"relayhost": "[busy.test]:25"}, table_type="lmdb",
                tables=(Table("relay_table", ("@a.example [busy.test]:25",)),))
    with pytest.raises(PostfixError, match=f"cannot replace {directory / 'main.cf'}: Device or resource busy"):
        apply(plan, postfix)
    assert (directory / "main.cf").read_bytes() == before
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".relaykit-edit-")]
