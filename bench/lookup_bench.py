"""Postfix lookup cost of the generated table, per table type, at 100k entries.

`postmap -q` of a hit and a miss (a whole process: open the table, one lookup), and the
time postmap takes to build the table. Baseline in the same run: the same query on a
10-entry table of the same type, so the ratio is what 100k entries add.

texthash is not compiled, but every process that opens it reads and hashes the whole
file: each smtp(8) client Postfix starts pays that, and so does every reload.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from common import Row, median_time, postfix_config, run

TYPES = ("lmdb", "hash", "cdb", "btree", "texthash")
N = 100_000
RUNS = 9


def table(n: int) -> str:
    return "".join(f"@d{i}.example [relay{i % 4}.test]:587\n" for i in range(n))


def bench(work: Path, quick: bool = False) -> list[Row]:
    rows = []
    etc = postfix_config(work / "lookup-etc")
    available = run(["postconf", "-c", str(etc), "-m"]).stdout.split()
    big, small = etc / "big", etc / "small"
    big.write_text(table(N))
    small.write_text(table(10))
    for kind in TYPES:
        if kind not in available:
            rows.append(Row("lookup", f"{kind}: not available", N, None, None, note="postconf -m lacks it"))
            continue

        def build(path: Path) -> None:
            run(["postmap", "-c", str(etc), f"{kind}:{path}"])

        built = 0.0
        if kind != "texthash":
            built = median_time(lambda: build(big), 3)
            build(small)
            size = sum(p.stat().st_size for p in etc.glob("big.*"))
            rows.append(Row("lookup", f"{kind}: postmap (build)", N, built, None, runs=3,
                            note=f"{size / 1e6:.1f} MB indexed file"))
        for case, key in (("hit", f"@d{N // 2}.example"), ("miss", "@absent.example")):
            def query(path: Path) -> None:
                result = run(["postmap", "-c", str(etc), "-q", key, f"{kind}:{path}"], check=False)
                if (result.returncode == 0) != (case == "hit" and path == big):
                    raise RuntimeError(f"postmap -q {key} {kind}:{path}: exit {result.returncode}")

            ours = median_time(lambda: query(big), RUNS)
            base = median_time(lambda: query(small), RUNS)
            rows.append(Row("lookup", f"{kind}: postmap -q {case}", N, ours, base, "same type, 10 entries", RUNS))
            print(f"  lookup {kind:9} {case:4}: {ours * 1000:6.2f} ms  (10 entries {base * 1000:6.2f} ms)", flush=True)
        for path in etc.glob("big.*"):
            path.unlink()
    shutil.rmtree(etc)
    return rows
