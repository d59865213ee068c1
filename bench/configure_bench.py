"""`relaykit configure` at N sender domains, against the floor of one postmap + one postconf.

Two inputs: N managed domains (postfix-accounts.cf) under RELAY_HOST, and N explicit
lines in postfix-relaymap.cf. Each run starts from a fresh Postfix config dir, so every
table is written and compiled (the worst case; an unchanged input is cheaper).

The split (read+parse, plan, write, postconf, postmap) is measured in-process by calling
the library functions the CLI calls, with a Postfix subclass that times its programs; the
real CLI is timed as a subprocess too (its extra is interpreter start-up and imports).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from common import BIN, Row, clean_env, interleaved, postfix_config, run

SIZES = (100, 1_000, 10_000, 100_000)
PHASES = ("parse", "plan", "write", "postconf", "postmap")


def write_inputs(directory: Path, kind: str, n: int) -> dict[str, str]:
    """A DMS config dir with n sender domains; returns the relay variables to set."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    if kind == "managed":
        lines = [f"user@d{i}.example|{{SHA512-CRYPT}}$6$salt$hash\n" for i in range(n)]
        (directory / "postfix-accounts.cf").write_text("".join(lines))
        return {"RELAY_HOST": "smtp.relay.test", "RELAY_PORT": "587",
                "RELAY_USER": "relay-user", "RELAY_PASSWORD": "relay-pass"}
    lines = [f"@d{i}.example\t[relay{i % 4}.test]:587\n" for i in range(n)]
    (directory / "postfix-relaymap.cf").write_text("".join(lines))
    return {}


class _TimedPostfix:
    """Wraps relaykit.edges.postfix.Postfix._run to add up the time spent per program."""

    def __new__(cls, config_dir):
        from relaykit.edges.postfix import Postfix

        class TimedPostfix(Postfix):
            def __init__(self, directory) -> None:
                super().__init__(directory)
                self.spent = {"postconf": 0.0, "postmap": 0.0, "postfix": 0.0}

            def _run(self, program, *args, **kwargs):
                start = time.perf_counter()
                try:
                    return super()._run(program, *args, **kwargs)
                finally:
                    self.spent[program] += time.perf_counter() - start

            def postmap(self, *args, **kwargs):  # parallel runs, not through _run
                start = time.perf_counter()
                try:
                    return super().postmap(*args, **kwargs)
                finally:
                    self.spent["postmap"] += time.perf_counter() - start

            def take_ahead(self, *args, **kwargs):  # waits for the postmap started ahead
                start = time.perf_counter()
                try:
                    return super().take_ahead(*args, **kwargs)
                finally:
                    self.spent["postmap"] += time.perf_counter() - start

        return TimedPostfix(config_dir)


def split(env: dict[str, str]) -> dict[str, float]:
    """One in-process configure, phase by phase, without the cyclic GC as in the CLI."""
    import gc

    gc.disable()
    try:
        return _split(env)
    finally:
        gc.enable()


def _split(env: dict[str, str]) -> dict[str, float]:
    """The calls configure.prepare and configure make, timed one by one."""
    from relaykit.run.apply import apply
    from relaykit.core.plan import build

    try:
        from relaykit.gcpause import paused_gc
    except ImportError:  # before the gc pause existed
        from contextlib import nullcontext as paused_gc
    from relaykit.inputs.settings import load
    from relaykit.stores import open_store

    from relaykit.inputs import dmsfiles

    try:  # the relaymap compiled while reading and planning, as configure.prepare does
        from relaykit.run.apply import compile_ahead
    except ImportError:  # before it was
        def compile_ahead(*args):
            return None

    dmsfiles._LAST_RELAYMAP = None  # a cold read, as each CLI run (not live reload) does
    t0 = time.perf_counter()
    settings = load(env)
    store = open_store(env)
    postfix = _TimedPostfix(settings.mail_config)
    table_type = settings.table_type or postfix.param("default_database_type")
    read = postfix.spent["postconf"]  # a postconf phase's, not parsing
    ahead = compile_ahead(postfix, table_type, store.foreseen()) if hasattr(store, "foreseen") else None
    with paused_gc():  # as configure.prepare does
        files = store.load()
    t2 = time.perf_counter()
    t1 = t2 - read
    with paused_gc():
        plan = build(settings, files, table_type)
    t3 = time.perf_counter()
    try:
        apply(plan, postfix, *((ahead,) if ahead else ()))
    finally:
        if ahead:
            postfix.discard_ahead(ahead)
    t4 = time.perf_counter()
    subprocesses = postfix.spent["postconf"] + postfix.spent["postmap"]
    return {"parse": t1 - t0, "plan": t3 - t2, "write": (t4 - t3) - (subprocesses - (t2 - t1)),
            "postconf": postfix.spent["postconf"], "postmap": postfix.spent["postmap"]}


def floor_command(mail_config: Path, table_type: str, params: dict[str, str], tables: list[str]) -> str:
    """The bare floor: one postmap of the same tables, one postconf -e, as a shell one-liner."""
    maps = " ".join(shlex.quote(f"{table_type}:{mail_config / t}") for t in tables)
    settings = " ".join(shlex.quote(f"{k} = {v}") for k, v in params.items())
    return f"postmap -c {mail_config} {maps} && postconf -c {mail_config} -e {settings}"


def bench(work: Path, quick: bool = False) -> list[Row]:
    import statistics

    from relaykit.core.plan import build
    from relaykit.inputs.settings import load
    from relaykit.stores import open_store

    rows = []
    sizes = SIZES[:3] if quick else SIZES
    for kind in ("managed", "explicit"):
        for n in sizes:
            runs = 5
            config_dir = work / f"cfg-{kind}"
            mail_config = work / "etc"
            env = clean_env(RELAYKIT_CONFIG_DIR=str(config_dir), MAIL_CONFIG=str(mail_config),
                            **write_inputs(config_dir, kind, n))
            # one untimed run: warms the caches, gives the tables the floor compiles
            postfix_config(mail_config)
            run([str(BIN / "relaykit"), "configure"], env=env)
            settings = load(env)
            plan = build(settings, open_store(env).load(), "lmdb")
            assert len(plan.table("relayhost_map").lines) == n
            texts = {t.name: (mail_config / t.name).read_text() for t in plan.tables}
            assert texts["relayhost_map"] == plan.table("relayhost_map").text(), "CLI output differs from the plan"

            def fresh_tables() -> None:
                postfix_config(mail_config)
                for name, text in texts.items():
                    (mail_config / name).write_text(text)

            command = floor_command(mail_config, "lmdb", plan.params, list(texts))
            phases = []
            medians = interleaved({
                "cli": (lambda: run([str(BIN / "relaykit"), "configure"], env=env), lambda: postfix_config(mail_config)),
                "floor": (lambda: run(["sh", "-c", command]), fresh_tables),
                "split": (lambda: phases.append(split(env)), lambda: postfix_config(mail_config)),
            }, runs)
            (cli, cli_cpu), (floor, floor_cpu) = medians["cli"], medians["floor"]
            split_median = {p: statistics.median(r[p] for r in phases) for p in PHASES}
            in_process = sum(split_median.values())
            rows.append(Row("configure", f"{kind} domains", n, cli, floor, "postmap + postconf one-liner",
                            runs, extra={**split_median, "startup": max(cli - in_process, 0.0),
                                          "cpu": cli_cpu, "floor_cpu": floor_cpu}))
            print(f"  configure {kind:8} {n:>7}: {cli * 1000:8.1f} ms  floor {floor * 1000:7.1f} ms  "
                  + "  ".join(f"{p} {split_median[p] * 1000:.1f}" for p in PHASES)
                  + f"  (CPU {cli_cpu * 1000:.0f} / {floor_cpu * 1000:.0f} ms)", flush=True)
    return rows
