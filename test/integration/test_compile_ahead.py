"""`relaykit configure` compiles a large relaymap's relayhost_map while it reads and plans
(run/apply.compile_ahead): the compiled table is used only when the planned text is the
one it was compiled from, and no scratch file outlives the command."""

from __future__ import annotations

import subprocess

import pytest

from relaykit.edges.postfix import AHEAD_SCRATCH, SMALL_TABLE
from relaykit.run.configure import apply_prepared, prepare

LINE = "@d{:05}.example\t[relay{}.test]:587\n"
LINES = SMALL_TABLE // len(LINE.format(0, 0)) + 100  # over SMALL_TABLE: a table worth compiling ahead


def relaymap(lines: int = LINES) -> str:
    return "".join(LINE.format(n, n % 3) for n in range(lines))


def scratch(env) -> list[str]:
    return [p.name for p in env.postfix.config_dir.iterdir() if p.name.startswith(AHEAD_SCRATCH)]


def configure_ahead(env, **extra):
    """prepare + apply as `relaykit configure` does; the Prepared (its Ahead) for checks."""
    from relaykit.edges.postfix import Postfix

    prepared = prepare(env.environ(**extra), ahead=True)
    try:
        apply_prepared(prepared)
    finally:
        Postfix.discard_ahead(prepared.ahead)
    return prepared


@pytest.mark.parametrize("table_type", ["lmdb", "hash", "btree"])
def test_a_relaymap_in_normal_form_is_compiled_ahead_and_answers_as_postmap_made_it(env, table_type):
    env.write("postfix-relaymap.cf", relaymap())
    prepared = configure_ahead(env, RELAYKIT_TABLE_TYPE=table_type)
    assert prepared.ahead is not None and prepared.ahead.taken
    for n in (0, 1, LINES - 1):
        assert env.lookup("relayhost_map", f"@d{n:05}.example") == f"[relay{n % 3}.test]:587"
    assert env.lookup("relayhost_map", "@elsewhere.example") is None
    source = env.postfix.config_dir / "relayhost_map"
    compiled = next(p for p in env.postfix.config_dir.iterdir() if p.name.startswith("relayhost_map."))
    # not older than its source: Postfix would warn, and the next configure compile it again
    assert compiled.stat().st_mtime >= source.stat().st_mtime
    dump = subprocess.run(["postmap", "-c", str(env.postfix.config_dir), "-s", f"{table_type}:{source}"],
                          capture_output=True, text=True, check=True).stdout
    assert sorted(dump.replace("\t", " ").splitlines()) == sorted(source.read_text().splitlines())
    assert scratch(env) == []
    assert prepare(env.environ(RELAYKIT_TABLE_TYPE=table_type), ahead=True).ahead is None  # compiled already


def test_a_guess_that_is_not_the_plan_is_not_used(env):
    """A comment line: the planned relayhost_map is not the relaymap's text. It is compiled
    the usual way, and right."""
    env.write("postfix-relaymap.cf", "# relays by sender domain\n" + relaymap())
    prepared = configure_ahead(env)
    assert prepared.ahead is not None and not prepared.ahead.taken
    assert env.lookup("relayhost_map", f"@d{LINES - 1:05}.example") == f"[relay{(LINES - 1) % 3}.test]:587"
    assert scratch(env) == []


def test_an_edit_since_the_guess_is_compiled_from_the_edited_text(env):
    """The file changed between the guess and the read that is planned: the plan wins."""
    path = env.write("postfix-relaymap.cf", relaymap())
    from relaykit.edges.postfix import Postfix
    from relaykit.run import configure

    real = configure.compile_ahead

    def then_edit(*args):
        started = real(*args)
        path.write_text(relaymap().replace("[relay1.test]", "[edited.test]"))
        return started

    configure.compile_ahead = then_edit
    try:
        prepared = configure_ahead(env)
    finally:
        configure.compile_ahead = real
    assert not prepared.ahead.taken
    assert env.lookup("relayhost_map", "@d00001.example") == "[edited.test]:587"
    Postfix.discard_ahead(prepared.ahead)


def test_a_bad_line_leaves_nothing_written_and_no_scratch(env):
    env.write("postfix-relaymap.cf", relaymap() + "@bad..example [relay.test]:587\n")
    result = env.run("relaykit", "configure")
    assert result.returncode == 1
    assert f"postfix-relaymap.cf:{LINES + 1}" in result.stderr
    assert not (env.postfix.config_dir / "relayhost_map").exists()
    assert scratch(env) == []


def test_a_killed_runs_scratch_is_removed_and_a_running_ones_kept(env):
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = env.postfix.config_dir / f"{AHEAD_SCRATCH}{gone.pid}"
    stale.mkdir()
    (stale / "relayhost_map").write_text("@old.example [old.test]:25\n")
    (stale / "relayhost_map.lmdb").write_bytes(b"")
    alive = subprocess.Popen(["sleep", "30"])
    try:
        running = env.postfix.config_dir / f"{AHEAD_SCRATCH}{alive.pid}"
        running.mkdir()
        env.write("postfix-relaymap.cf", relaymap())
        env.configure()
        assert scratch(env) == [running.name]
    finally:
        alive.kill()
        alive.wait()
    assert env.lookup("relayhost_map", "@d00000.example") == "[relay0.test]:587"


def test_a_small_relaymap_an_unindexed_table_or_an_unchanged_one_is_not_compiled_ahead(env):
    env.write("postfix-relaymap.cf", relaymap(10))
    assert configure_ahead(env).ahead is None
    env.write("postfix-relaymap.cf", relaymap())
    assert configure_ahead(env, RELAYKIT_TABLE_TYPE="texthash").ahead is None
    env.configure()
    assert prepare(env.environ(), ahead=True).ahead is None
    env.postfix.config_dir.joinpath("relayhost_map").write_text("")  # the source no longer holds it
    assert configure_ahead(env).ahead.taken


def test_a_scratch_that_cannot_be_written_leaves_the_table_to_the_usual_compile(env):
    """A file where the scratch directory goes: nothing compiled ahead, configure as always."""
    import os

    env.write("postfix-relaymap.cf", relaymap())
    (env.postfix.config_dir / f"{AHEAD_SCRATCH}{os.getpid()}").write_text("in the way")
    prepared = configure_ahead(env)
    assert prepared.ahead is None
    assert env.lookup("relayhost_map", f"@d{LINES - 1:05}.example") == f"[relay{(LINES - 1) % 3}.test]:587"


def accounts(lines: int = LINES) -> str:
    return "".join(f"user@m{n:05}.example|{{SHA512-CRYPT}}$6$s$h\n" for n in range(lines))


def test_managed_domains_are_compiled_once_planned_and_answer_as_postmap_made_them(env):
    """RELAY_HOST's routes for postfix-accounts.cf's domains are nothing a store can foresee:
    the plan's relayhost_map is compiled while the rest of the plan is applied."""
    env.write("postfix-accounts.cf", accounts())
    prepared = configure_ahead(env, RELAY_HOST="smtp.relay.test", RELAY_PORT="587")
    assert prepared.ahead is not None and prepared.ahead.taken and prepared.ahead.name == "relayhost_map"
    for n in (0, LINES - 1):
        assert env.lookup("relayhost_map", f"@m{n:05}.example") == "[smtp.relay.test]:587"
    assert env.lookup("relayhost_map", "@elsewhere.example") is None
    assert scratch(env) == []
    # compiled and unchanged: nothing to compile the next time
    assert prepare(env.environ(RELAY_HOST="smtp.relay.test", RELAY_PORT="587"), ahead=True).ahead is None


def test_a_table_compiled_ahead_has_a_plain_tables_mode_whatever_the_umask(env):
    """postmap gives a compiled table its source's mode: the scratch copy's must be the
    0644 of the table it stands for, or Postfix's unprivileged daemons could not read it."""
    import os

    env.write("postfix-relaymap.cf", relaymap())
    old = os.umask(0o077)
    try:
        prepared = configure_ahead(env)
    finally:
        os.umask(old)
    assert prepared.ahead.taken
    for name in ("relayhost_map", "relayhost_map.lmdb"):
        assert (env.postfix.config_dir / name).stat().st_mode & 0o777 == 0o644, name
