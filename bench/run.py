"""relaykit's benchmark suite: `make bench` (inside test/netns.sh: loopback only).

    bench/run.py [configure] [setup] [lookup] [e2e] [reload] [image] [--quick] [--no-write]
    bench/run.py --render     # results.md + png again from results.json (after editing analysis.md)

Runs the sections (all by default), prints a table, writes bench/results.md,
bench/results.png and the raw rows in bench/results.json. Every time is a median of several runs, next to a baseline measured
in the same run. --quick: smaller sizes, for trying the suite out (results not written).
Issue 19's figures for docker-mailserver (bench/dms_reference.py, measured elsewhere) are
set against the matching rows of this run in results.md ("Issue 19: relaykit against DMS").
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Row, fmt_time  # noqa: E402

HERE = REPO / "bench"
SECTIONS = ("configure", "setup", "lookup", "e2e", "reload", "image")


def table(rows: list[Row]) -> list[str]:
    lines = ["| section | case | size | median | baseline | ratio | runs | note |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: | --- |"]
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        base = f"{fmt_time(row.baseline)} ({row.baseline_name})" if row.baseline is not None else "-"
        size = f"{row.size:,}" if row.size is not None else ""
        lines.append(f"| {row.section} | {row.case} | {size} | {fmt_time(row.seconds)} | {base} | {ratio} "
                     f"| {row.runs} | {row.note} |")
    return lines


def configure_split(rows: list[Row]) -> list[str]:
    from configure_bench import PHASES

    lines = ["| input | N | CLI total | CLI - phases | " + " | ".join(PHASES) + " | floor | ratio | CPU: CLI / floor | µs/domain |",
             "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in PHASES) + " | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if row.section != "configure":
            continue
        e = row.extra
        lines.append(f"| {row.case} | {row.size:,} | {fmt_time(row.seconds)} | {fmt_time(e['startup'])} | "
                     + " | ".join(fmt_time(e[p]) for p in PHASES)
                     + f" | {fmt_time(row.baseline)} | {row.ratio:.2f}x "
                     f"| {fmt_time(e['cpu'])} / {fmt_time(e['floor_cpu'])} = {e['cpu'] / e['floor_cpu']:.2f}x "
                     f"| {row.seconds / row.size * 1e6:.1f} |")
    return lines


def verdicts(rows: list[Row]) -> list[str]:
    """Which of issue 8's targets this run meets, computed from the rows."""
    out = []
    conf = {(r.case, r.size): r for r in rows if r.section == "configure"}
    for kind in ("managed domains", "explicit domains"):
        big, mid = conf.get((kind, 100_000)), conf.get((kind, 10_000))
        if big:
            met = big.ratio <= 1.5
            out.append(f"- configure, {kind}, 100k: {big.ratio:.2f}x the postmap+postconf floor "
                       f"(target <= 1.5x): **{'met' if met else 'not met'}**")
        small = conf.get((kind, 1_000))
        if big and mid and small:
            # linear = a constant cost per added domain (the fixed start-up cost aside)
            early = (mid.seconds - small.seconds) / (mid.size - small.size) * 1e6
            late = (big.seconds - mid.seconds) / (big.size - mid.size) * 1e6
            out.append(f"- configure, {kind}, linear growth: {early:.1f} µs per added domain from 1k to 10k, "
                       f"{late:.1f} µs from 10k to 100k (time x{big.seconds / mid.seconds:.1f} for 10x the "
                       f"domains): **{'met' if late <= 2 * max(early, 1.0) else 'not met'}**")
    for row in rows:
        if row.section == "setup" and row.note.startswith("target"):
            out.append(f"- setup relay {row.case} at {row.size:,} lines: {fmt_time(row.seconds)} "
                       f"(bash {fmt_time(row.baseline)}); {row.note}")
    for row in rows:
        if row.section == "e2e":
            out.append(f"- end to end: {row.note}; {row.ratio:.2f}x the time of a single relayhost")
        if row.section == "reload":
            where = f"relaymap of {row.size:,} other lines" if row.size else "small config"
            out.append(f"- live reload, {where}: {row.note}" if row.seconds is None else
                       f"- live reload, {where}: {fmt_time(row.seconds)} median from edit to new route "
                       f"({row.ratio:.2f}x the baseline: edit + postmap + postfix reload by hand, "
                       f"{fmt_time(row.baseline)})")
    return out


def against_dms(rows: list[Row]) -> list[str]:
    """Issue 19: this run's figures against docker-mailserver's (bench/dms_reference.py),
    each verdict computed from the matching row."""
    from dms_reference import CONFIGURE_TARGET, REFERENCES, SOURCE

    # rows saved before the reload bench had sizes: the small config had none
    found = {(r.section, r.case, r.size or 0): r for r in rows if r.seconds is not None}
    out = [f"DMS figures: {SOURCE}. relaykit figures: this run (the matching row of the table below).", ""]
    for ref in REFERENCES:
        row = found.get((ref.section, ref.case, ref.size))
        remark = f" ({ref.remark})" if ref.remark else ""
        if row is None:
            out.append(f"- {ref.label}: relaykit not measured in this run; DMS {ref.shown}{remark}")
            continue
        ours = f"relaykit {fmt_time(row.seconds)}, DMS {ref.shown}"
        if ref.seconds is None:
            out.append(f"- {ref.label}: {ours}: no DMS figure to compare{remark}")
        elif row.seconds <= ref.seconds:
            out.append(f"- {ref.label}: {ours}: relaykit <= DMS: **yes**{remark}")
        elif ref.lower_bound:
            out.append(f"- {ref.label}: {ours}: relaykit <= DMS: **not shown** (above DMS's lower bound){remark}")
        else:
            out.append(f"- {ref.label}: {ours}: relaykit <= DMS: **no**{remark}")
    for case in ("managed domains", "explicit domains"):
        row = found.get(("configure", case, 100_000))
        target = f"configure, {case}, 100,000: <= {CONFIGURE_TARGET:g} s"
        if row is None:
            out.append(f"- {target}: not measured in this run")
        else:
            met = row.seconds <= CONFIGURE_TARGET
            out.append(f"- {target}: {fmt_time(row.seconds)}: **{'met' if met else 'not met'}**")
    return out


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    postfix = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} CPU(s) ({cpu}), Python {platform.python_version()}, Postfix {postfix}, "
            f"{platform.system()} {platform.release()}")


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 6.4))
    for kind, marker in (("managed domains", "o"), ("explicit domains", "s")):
        data = sorted((r.size, r.seconds, r.baseline) for r in rows if r.section == "configure" and r.case == kind)
        if data:
            sizes = [d[0] for d in data]
            left.plot(sizes, [d[1] for d in data], marker=marker, label=f"relaykit configure ({kind})")
            left.plot(sizes, [d[2] for d in data], marker=marker, linestyle="--",
                      label=f"floor: postmap + postconf ({kind})")
    if any(r.section == "configure" for r in rows):
        big = max((r.baseline for r in rows if r.section == "configure" and r.size == 100_000), default=None)
        if big:
            left.scatter([100_000], [1.5 * big], marker="_", s=400, color="red", label="target: 1.5x floor at 100k")
    from dms_reference import CONFIGURE_TARGET, REFERENCES

    for case, color in (("managed domains", "black"), ("explicit domains", "gray")):
        refs = sorted((r.size, r.seconds) for r in REFERENCES if r.section == "configure" and r.case == case)
        if refs:
            left.scatter([r[0] for r in refs], [r[1] for r in refs], marker="x", s=60, color=color,
                         label=f"DMS relay.sh ({case}; issue 19, not this run)")
    left.scatter([100_000], [CONFIGURE_TARGET], marker="_", s=400, color="purple",
                 label=f"issue 19 target: {CONFIGURE_TARGET:g} s at 100k")
    left.set(xscale="log", yscale="log", xlabel="sender domains", ylabel="seconds (median)",
             title="relaykit configure vs. the Postfix floor")
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)  # below: the points fill the axes
    left.grid(True, which="both", alpha=0.3)
    for case, marker in (("add-domain new key", "o"), ("add-domain replace", "s")):
        data = sorted((r.size, r.seconds, r.baseline) for r in rows if r.section == "setup" and r.case == case)
        if data:
            sizes = [d[0] for d in data]
            right.plot(sizes, [d[1] * 1000 for d in data], marker=marker, label=f"setup relay {case}")
            right.plot(sizes, [d[2] * 1000 for d in data], marker=marker, linestyle="--", label=f"DMS-style bash ({case})")
    right.scatter([10_000, 100_000], [40, 60], marker="_", s=400, color="red", label="targets (40 / 60 ms)")
    for case, color in (("add-domain new key", "black"), ("add-domain replace", "gray")):
        refs = sorted((r.size, r.seconds) for r in REFERENCES
                      if r.section == "setup" and r.case == case and r.seconds is not None)
        if refs:
            right.scatter([r[0] for r in refs], [r[1] * 1000 for r in refs], marker="x", s=60, color=color,
                          label=f"DMS setup ({case}; issue 19, not this run)")
    right.set(xscale="log", xlabel="relaymap lines", ylabel="milliseconds (median)",
              title="setup relay add-domain vs. relaymap size")
    right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)  # below: the points fill the axes
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    write = not quick and "--no-write" not in argv
    chosen = [a for a in argv if not a.startswith("--")] or list(SECTIONS)
    write = write or "--render" in argv
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        print(f"unknown section(s): {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    if "--render" in argv:
        saved = json.loads((HERE / "results.json").read_text())
        rows = [Row(**row) for row in saved["rows"]]
        elapsed, load, when = saved["elapsed"], saved["load"], saved["when"]
    else:
        rows = []
        # As installed (pip and the image write bytecode): without it, each command would
        # compile relaykit's modules first (~30-40 ms) where PYTHONDONTWRITEBYTECODE is set.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "target" / "relaykit")],
                       check=True, stdout=subprocess.DEVNULL)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="relaykit-bench-") as tmp:
            for name in chosen:
                print(f"== {name}", flush=True)
                module = __import__(f"{name}_bench")
                work = Path(tmp) / name
                work.mkdir()
                try:
                    rows += module.bench(work, quick=quick)
                except Exception as exc:  # one broken section must not lose the others' results
                    traceback.print_exc()
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    rows.append(Row(name, f"FAILED: {type(exc).__name__}", None, None, None,
                                    note=first[:200].replace("|", "/")))
        elapsed = time.perf_counter() - started
        load = f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
        when = f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, on {machine()}"

    lines = table(rows)
    print("\n" + "\n".join(lines))
    split = configure_split(rows)
    verdict = verdicts(rows)
    dms = against_dms(rows)
    print("\n" + "\n".join(split) + "\n\n" + "\n".join(verdict) + "\n\n" + "\n".join(dms))
    print(f"\nbench: {elapsed:.0f} s; {load}")
    if not write:
        return 0
    analysis = (HERE / "analysis.md").read_text() if (HERE / "analysis.md").exists() else ""
    results = [
        "# relaykit benchmarks", "",
        f"Generated by `make bench` ({elapsed:.0f} s in all), {when}; {load}.",
        "Each time is a median of several runs (column runs); ratio = relaykit / baseline, both measured",
        "in this same run. ![time against size](results.png)", "",
        "## Targets", "", *verdict, "",
        "## Issue 19: relaykit against DMS", "", *dms, "",
        "## configure, phase by phase", "",
        "Each run starts from an empty MAIL_CONFIG, so every table is written and compiled. The phases",
        "are measured in-process (same library calls as the CLI); CLI - phases = CLI total minus them:",
        "the interpreter's start-up and imports (~35 ms on a quiet machine), and at 100k mostly what a",
        "fresh process pays that the warm benchmark process does not (~30k page faults for its memory).", "",
        *split, "",
        "## All measurements", "", *lines, "",
        analysis,
    ]
    if "--render" not in argv:
        (HERE / "results.json").write_text(json.dumps(
            {"when": when, "elapsed": elapsed, "load": load, "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    (HERE / "results.md").write_text("\n".join(results).rstrip() + "\n")
    if any(r.section in ("configure", "setup") for r in rows):
        plot(rows, HERE / "results.png")
    print(f"wrote {HERE / 'results.md'} and {HERE / 'results.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
