"""Concurrency and crashes: many `setup` processes at once lose nothing; kill -9 at random
points of `setup` and of `relaykit configure` leaves every file either the old or the new
version; a killed process's lock and temporary files do not get in the next one's way."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from relaykit.inputs import dmsfiles as configfiles

from e2e.conftest import BIN
from test_rel_roundtrip import TABLES, assert_postfix_reads_the_plan, dump

RELAYMAP = configfiles.RELAYMAP
SEED = int(os.environ.get("RELIABILITY_SEED", time.time_ns() % 100000))
COUNTS: dict[str, int] = {}


def count(what: str, n: int = 1) -> None:
    COUNTS[what] = COUNTS.get(what, 0) + n


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    if COUNTS:
        print(f"\nreliability counts (seed {SEED}): {COUNTS}")


def setup_cmd(env, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "setup"), "relay", *args], env=env.environ(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen)


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# -- concurrency -------------------------------------------------------------------------

def test_50_concurrent_add_domain_processes_lose_no_entry(env):
    env.write(RELAYMAP, "# mine\n@keep.test [keep.test]:25\n")
    processes = [setup_cmd(env, "add-domain", f"d{i}.test", f"relay{i}.test", str(1000 + i)) for i in range(50)]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in processes]
    assert all(status == 0 for status, _ in results), results
    rules = {r.sender: r.nexthops for r in configfiles.load(env.config_dir).relay_rules}
    assert rules == {"@keep.test": ("[keep.test]:25",),
                     **{f"@d{i}.test": (f"[relay{i}.test]:{1000 + i}",) for i in range(50)}}
    assert (env.config_dir / RELAYMAP).read_text().startswith("# mine\n@keep.test [keep.test]:25\n")
    assert temp_files(env.config_dir) == []


def test_concurrent_add_auth_processes_lose_no_credential_and_keep_0600(env):
    processes = [setup_cmd(env, "add-auth", f"d{i}.test", f"user{i}", stdin=subprocess.PIPE) for i in range(20)]
    for i, p in enumerate(processes):
        p.communicate(f"pw-{i}-Zq9\n".encode(), timeout=60)
        assert p.returncode == 0
    creds = {c.key: (c.user, c.password.reveal()) for c in configfiles.load(env.config_dir).credentials}
    assert creds == {f"@d{i}.test": (f"user{i}", f"pw-{i}-Zq9") for i in range(20)}
    assert (env.config_dir / configfiles.SASL_PASSWORD).stat().st_mode & 0o777 == 0o600


def test_setup_while_configure_applies_gives_consistent_tables(env):
    """A writer adds d0, d1, ... one after another while configure runs in a loop: every
    table Postfix sees is the plan of some prefix of those additions, never a mix."""
    env.write(RELAYMAP, "@base.test [relay.test]:25\n")
    added, done = [], threading.Event()

    def writer():
        for i in range(40):
            assert setup_cmd(env, "add-domain", f"d{i}.test", "relay.test").wait(timeout=60) == 0
            added.append(i)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = set()
    try:
        while not done.is_set() or not seen:
            env.configure()
            table = dump(env.postfix, "relayhost_map")
            text = (env.postfix.config_dir / "relayhost_map").read_text()
            assert dict(line.split(" ", 1) for line in text.splitlines()) == table, "compiled table != its source"
            prefix = len(table) - 1
            assert table == {"@base.test": "[relay.test]:25",
                             **{f"@d{i}.test": "[relay.test]:25" for i in range(prefix)}}
            seen.add(prefix)
            count("configure runs during setup")
    finally:
        thread.join()
    env.configure()
    assert len(dump(env.postfix, "relayhost_map")) == 41
    assert len(seen) >= 2, "configure never overlapped the writer"


def test_two_configures_at_once_converge(env):
    env.write(RELAYMAP, "".join(f"@d{i}.test [relay.test]:25\n" for i in range(200)))
    env.vars.update(RELAY_HOST="relay.test", RELAY_USER="u", RELAY_PASSWORD="pw-Zq9")
    runs = [subprocess.Popen([str(BIN / "relaykit"), "configure"], env=env.environ(), stderr=subprocess.PIPE)
            for _ in range(4)]
    assert [p.wait(timeout=60) for p in runs] == [0] * 4, [p.stderr.read() for p in runs]
    assert_postfix_reads_the_plan(env.postfix, env.environ())
    assert temp_files(env.postfix.config_dir) == []


# -- crashes of setup ------------------------------------------------------------------

def test_a_lock_held_by_a_killed_process_does_not_block_the_next_command(env):
    env.write(RELAYMAP, "@keep.test\n")
    holder = subprocess.Popen([str(BIN.parent / "bin" / "python"), "-c",
                               "import sys, time; from relaykit.edges.editor import Locked\n"
                               f"with Locked({str(env.config_dir / RELAYMAP)!r}):\n"
                               "    print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    blocked = setup_cmd(env, "add-domain", "a.test", "relay.test")
    time.sleep(0.3)
    assert blocked.poll() is None, "setup did not wait for the lock holder"
    holder.kill()
    holder.wait()
    assert blocked.wait(timeout=5) == 0
    assert (env.config_dir / f".{RELAYMAP}.lock").exists()  # the stale lock file is harmless
    started = time.monotonic()
    assert setup_cmd(env, "add-domain", "b.test", "relay.test").wait(timeout=5) == 0
    assert time.monotonic() - started < 2


def kill_setup_loop(env, iterations: int) -> None:
    rng = random.Random(SEED)
    path = env.config_dir / RELAYMAP
    # a big file, so that the write itself takes long enough to be interrupted
    path.write_text("".join(f"@base{i}.test [relay.test]:25\n" for i in range(30000)))
    # The first run also syncs the whole new file: the runs below, each adding a line, are
    # timed as the loop's are (the fastest: a run without the machine's noise). Kill
    # anywhere from exec to the final rename of such a run.
    assert setup_cmd(env, "add-domain", "first.test", "relay.test").wait(timeout=10) == 0
    durations = []
    for i in range(3):
        started = time.monotonic()
        assert setup_cmd(env, "add-domain", f"timed{i}.test", "relay.test").wait(timeout=10) == 0
        durations.append(time.monotonic() - started)
    duration = min(durations)
    killed = 0
    for i in range(iterations):
        old = path.read_bytes()
        new = old + f"@k{i}.test\t[relay.test]:25\n".encode()
        process = setup_cmd(env, "add-domain", f"k{i}.test", "relay.test")
        time.sleep(rng.uniform(0, duration))
        process.send_signal(signal.SIGKILL)
        status = process.wait()
        killed += status == -signal.SIGKILL
        assert path.read_bytes() in (old, new), f"partial {RELAYMAP} after kill -9 #{i}"
        count("setup kill -9 sent")
    count("setup killed before finishing", killed)
    assert killed > iterations // 4, "the kills did not land while setup ran"
    # leftovers of killed writers do not accumulate, and are never read as the table
    assert setup_cmd(env, "add-domain", "after.test", "relay.test").wait(timeout=10) == 0
    assert temp_files(env.config_dir) == []
    assert len(configfiles.load(env.config_dir).relay_rules) >= 30001


def test_kill_9_during_setup_leaves_old_or_new_file(env):
    kill_setup_loop(env, 40)


@pytest.mark.slow
def test_kill_9_during_setup_leaves_old_or_new_file_long(env):
    kill_setup_loop(env, 150)


# -- crashes of relaykit configure -----------------------------------------------------

INPUTS = {
    "A": ({RELAYMAP: "".join(f"@a{i}.test [relay-a.test]:25\n" for i in range(3000)),
           configfiles.SASL_PASSWORD: "@a0.test ua:pa-Zq9\n"},
          {"RELAY_HOST": "relay.test", "RELAY_USER": "u", "RELAY_PASSWORD": "pw-A-Zq9"}),
    "B": ({RELAYMAP: "".join(f"@b{i}.test [relay-b.test]:2525\n" for i in range(2000)),
           configfiles.SASL_PASSWORD: "@b0.test ub:pb-Zq9\n[relay-b.test]:2525 rb:rb-Zq9\n"},
          {"DEFAULT_RELAY_HOST": "[relay-b.test]:2525", "RELAY_USER": "u2", "RELAY_PASSWORD": "pw-B-Zq9"}),
}


def use(env, name: str) -> None:
    files, variables = INPUTS[name]
    for file, text in files.items():
        env.write(file, text)
    env.vars.clear()
    env.vars.update(variables)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()
            if p.is_file() and not p.name.endswith((".db", ".lmdb", ".cdb", ".lock", ".tmp"))}


def kill_configure_loop(env, iterations: int) -> None:
    rng = random.Random(SEED)
    mail_config = env.postfix.config_dir
    versions: dict[str, set[bytes]] = {}
    dumps: dict[str, list[dict]] = {name: [] for name in TABLES}
    base = snapshot(mail_config)
    for name in ("A", "B", "A"):  # every file's complete versions, and the tables' contents
        use(env, name)
        env.configure()
        for file, data in snapshot(mail_config).items():
            versions.setdefault(file, set()).add(data)
        for table in TABLES:
            dumps[table].append(dump(env.postfix, table))
    for file, data in base.items():
        versions.setdefault(file, set()).add(data)
    started = time.monotonic()
    use(env, "B")
    env.configure()
    duration = time.monotonic() - started
    killed = 0
    for i in range(iterations):
        # A then B...: each run changes what the one before applied, so it does the whole
        # work the kill window was measured on (a run with nothing to change ends early,
        # and too few kills then land while configure runs)
        name = "AB"[i % 2]
        use(env, name)
        process = subprocess.Popen([str(BIN / "relaykit"), "configure"], env=env.environ(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, duration))
        process.send_signal(signal.SIGKILL)
        killed += process.wait() == -signal.SIGKILL
        count("configure kill -9 sent")
        time.sleep(0.15)  # a postmap/postconf child may outlive its killed parent briefly
        for file, data in snapshot(mail_config).items():
            assert data in versions.get(file, ()), f"{file} is neither an old nor a new version after kill #{i}"
        for table in TABLES:
            assert dump(env.postfix, table) in dumps[table], f"{table} as Postfix reads it is partial"
        env.configure()  # the next run repairs whatever the killed one left half-done
        assert_postfix_reads_the_plan(env.postfix, env.environ())
    count("configure killed before finishing", killed)
    assert killed > iterations // 4
    assert temp_files(mail_config) == []


def test_kill_9_during_configure_leaves_old_or_new_files(env):
    kill_configure_loop(env, 6)


@pytest.mark.slow
def test_kill_9_during_configure_leaves_old_or_new_files_long(env):
    kill_configure_loop(env, 60)


def test_configure_recompiles_a_table_whose_source_a_killed_run_replaced(env):
    """The exact point where a crash hurts: the new table text is in place, its compiled
    .db is still the old one (postmap never ran). The next configure must compile it."""
    use(env, "A")
    env.configure()
    mail_config = env.postfix.config_dir
    old = {t: (mail_config / t).read_bytes() for t in TABLES}
    use(env, "B")
    env.configure()
    new = {t: (mail_config / t).read_bytes() for t in TABLES}
    use(env, "A")
    env.configure()
    for table in TABLES:  # B's text over A's compiled tables, as write + cool_down leave it
        path = mail_config / table
        path.write_bytes(new[table])
        past = time.time() - 2.5
        os.utime(path, (past, past))
    assert old != new
    use(env, "B")
    env.configure()
    assert_postfix_reads_the_plan(env.postfix, env.environ())


def test_leftover_temp_files_of_killed_writers_are_removed_and_never_read(env):
    env.write(RELAYMAP, "@keep.test [relay.test]:25\n")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = env.config_dir / f".{RELAYMAP}.{dead.pid}.tmp"
    stale.write_text("@evil.test [evil.test]:25\n")
    stale_config = env.postfix.config_dir / f".relayhost_map.{dead.pid}.tmp"
    stale_config.write_text("@evil.test [evil.test]:25\n")
    assert env.run("setup", "relay", "add-domain", "a.test", "relay.test").returncode == 0
    env.configure()
    assert env.lookup("relayhost_map", "@evil.test") is None
    assert env.lookup("relayhost_map", "@a.test") == "[relay.test]:25"
    assert temp_files(env.config_dir) == [] and temp_files(env.postfix.config_dir) == []
