"""`setup relay add-domain` (new key, replace) on relaymaps of 10, 10k, 100k lines, and
`setup relay --help`; Python start-up and import time measured separately.

Baselines in the same run: the same edit done the way DMS's bash does it (grep + sed -i /
echo >>, bench/dms_add_domain.sh), and the bare interpreter start-up (`python -c pass`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from common import BIN, REPO, Row, clean_env, interleaved, run

SIZES = (10, 10_000, 100_000)
RUNS = 15
TARGET = {10_000: 0.040, 100_000: 0.060}


def relaymap(n: int) -> str:
    return "".join(f"@d{i}.example\t[relay{i % 4}.test]:587\n" for i in range(n))


def import_profile(*args: str, env: dict | None = None) -> tuple[float, list[tuple[str, int]]]:
    """(total import seconds, the five costliest top-level imports in µs) of `setup <args>`,
    from `python -X importtime` (each top-level line's cumulative time, summed), with the
    interpreter options of the script's first line (install.sh's -S) as the kernel runs it."""
    script = BIN / "setup"
    options = script.read_text().split("\n", 1)[0].split()[1:]
    result = run([sys.executable, *options, "-X", "importtime", str(script), *args], env=env)
    total, top = 0, []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        _self, cumulative, name = line[len("import time:"):].split("|")
        if not cumulative.strip().isdigit():
            continue  # the header line
        if name.startswith(" ") and not name.startswith("  "):  # top level: one leading space
            total += int(cumulative)
            top.append((name.strip(), int(cumulative)))
    top.sort(key=lambda item: -item[1])
    return total / 1e6, top[:5]


def bench(work: Path, quick: bool = False) -> list[Row]:
    rows = []
    config_dir = work / "setup-cfg"
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "postfix-relaymap.cf"
    env = clean_env(RELAYKIT_CONFIG_DIR=str(config_dir))
    setup = [str(BIN / "setup"), "relay"]

    medians = interleaved({
        "startup": (lambda: run([sys.executable, "-c", "pass"]), None),
        "isolated": (lambda: run([sys.executable, "-I", "-S", "-c", "pass"]), None),
        "help": (lambda: run([*setup, "--help"], env=env), None),
    }, RUNS)
    startup, startup_isolated, help_ = (medians[k][0] for k in ("startup", "isolated", "help"))
    rows.append(Row("setup", "python -c pass (start-up)", None, startup, startup_isolated,
                    "python -I -S -c pass", RUNS, note="site + venv .pth processing is the difference"))
    rows.append(Row("setup", "setup relay --help", None, help_, startup, "python -c pass", RUNS))
    for label, args in (("setup relay --help", ("relay", "--help")),
                        ("setup relay add-domain", ("relay", "add-domain", "imports.example", "smtp.relay.test"))):
        samples = [import_profile(*args, env=env) for _ in range(5)]
        imports, top = sorted(samples)[len(samples) // 2]
        rows.append(Row("setup", f"imports of {label} (-X importtime)", None, imports, startup,
                        "python -c pass", 5, note="costliest: " + ", ".join(f"{name} {us / 1000:.1f} ms"
                                                                             for name, us in top)))

    for n in SIZES:
        text = relaymap(n)
        middle = f"d{n // 2}.example"

        def reset() -> None:
            # On disk before the timed edit, as a relaymap is in use: else the edit's own
            # sync (relaykit syncs what it writes) would also write out the bench's 3 MB.
            with open(path, "w") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())

        for case, domain in (("add-domain new key", "new.example"), ("add-domain replace", middle)):
            medians = interleaved({
                "ours": (lambda: run([*setup, "add-domain", domain, "smtp.new.test", "2525"], env=env), reset),
                "dms": (lambda: run(["bash", str(REPO / "bench" / "dms_add_domain.sh"), str(path),
                                     domain, "smtp.new.test", "2525"]), reset),
            }, RUNS)
            (ours, ours_cpu), (dms, dms_cpu) = medians["ours"], medians["dms"]
            run([*setup, "add-domain", domain, "smtp.new.test", "2525"], env=env)
            assert f"@{domain}\t[smtp.new.test]:2525\n" in path.read_text()
            target = TARGET.get(n)
            note = f"target <= {target * 1000:.0f} ms: {'met' if ours <= target else 'MISSED'}" if target else ""
            note = "; ".join(filter(None, (note, f"CPU {ours_cpu * 1000:.1f} ms vs {dms_cpu * 1000:.1f} ms")))
            rows.append(Row("setup", case, n, ours, dms, "DMS-style bash (grep + sed -i)", RUNS, note=note))
            print(f"  setup {case:20} {n:>7}: {ours * 1000:6.1f} ms  bash {dms * 1000:6.1f} ms", flush=True)
    return rows
