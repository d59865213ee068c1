"""Shared pieces of the benchmarks: timing, result rows, scratch Postfix config dirs.

Every measurement is the median of several runs, and is reported next to a baseline
measured in the same run (a ratio > 1 means slower than the baseline).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "target" / "postfix"
BIN = Path(sys.executable).parent  # the venv's console scripts: relaykit, setup
sys.path.insert(0, str(REPO / "test"))  # the test harness: PostfixInstance, CaptureRelay
# aiosmtpd (the capture relays) warns once per authenticated session
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")


@dataclass
class Row:
    """One line of the results table."""

    section: str
    case: str
    size: int | None
    seconds: float | None  # median
    baseline: float | None  # median of the baseline, same run
    baseline_name: str = ""
    runs: int = 0
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.seconds is None or not self.baseline:
            return None
        return self.seconds / self.baseline


def median_time(function, runs: int, setup=None) -> float:
    """Median wall time of `function()` over `runs` runs; `setup()` runs untimed before each."""
    times = []
    for _ in range(runs):
        if setup:
            setup()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cpu() -> float:
    """CPU seconds (user + system) used so far by this process and its waited-for children."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def interleaved(cases: dict, runs: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each case, {name: (function, setup or None)}, the cases
    taking turns run after run so that both sides of a ratio see the same machine load.
    CPU time (this process + the programs it ran) is less disturbed by other load."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (function, setup) in cases.items():
            if setup:
                setup()
            cpu, start = _cpu(), time.perf_counter()
            function()
            times[name].append((time.perf_counter() - start, _cpu() - cpu))
    return {name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            for name, values in times.items()}


def run(argv: list[str], env: dict | None = None, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, **kwargs)
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return result


def cool(*paths: Path) -> None:
    """Date files 2.5 s back: Postfix pauses ~1.8 s before reading a config file younger
    than ~2 s, which would otherwise dominate every measurement (see Postfix.cool_down)."""
    past = time.time() - 2.5
    for path in paths:
        os.utime(path, (past, past))


def postfix_config(directory: Path) -> Path:
    """A fresh Postfix config dir (the image's main.cf and master.cf), ready for postconf."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for name in ("main.cf", "master.cf"):
        shutil.copy(TEMPLATES / name, directory / name)
    cool(directory / "main.cf", directory / "master.cf")
    return directory


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY", "DEFAULT_RELAY", "LOG_LEVEL"))}
    return {**env, **extra}


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"
