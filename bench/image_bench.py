"""The image as users run it (needs a Docker engine: `source .ci/local-docker.sh`).

- size: `docker image inspect` of the image built from this tree, what it adds to its
  base, and its largest layers;
- start: `docker run` -> the SMTP banner on port 25 (median of ROUNDS), against the same
  image running `true` (what Docker itself takes to start and stop a container);
- reload: `docker exec setup relay add-domain` -> relaykit's "reloaded postfix" line
  (Docker's own timestamp of that log line), against a `docker exec true` round trip.

The banner is awaited from inside the container's network namespace (a probe in a helper
container that relaykit joins with --network container:), polling every 5 ms.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from datetime import datetime
from pathlib import Path

from common import REPO, Row
from harness import docker as d

ROUNDS = 5
PROBE = """
import socket, sys, time
while True:
    try:
        with socket.create_connection(("127.0.0.1", 25), timeout=1) as s:
            if s.recv(64).startswith(b"220"):
                print(time.time()); sys.exit(0)
    except OSError:
        time.sleep(0.005)
"""


def _size_rows() -> list[Row]:
    size = json.loads(d.docker("image", "inspect", d.IMAGE).stdout)[0]["Size"]
    base = json.loads(d.docker("image", "inspect", "debian:12-slim").stdout)[0]["Size"]
    layers = d.docker("history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", d.IMAGE).stdout
    largest = [line.split("\t") for line in layers.splitlines() if not line.startswith("0B")]
    note = "; ".join(f"{s} {c.replace('/bin/sh -c ', '')[:50]}" for s, c in largest[:3]).replace("|", "/")
    return [Row("image", "size (MB): image / added to debian:12-slim", None, None, None,
                note=f"{size / 1e6:.0f} / {(size - base) / 1e6:.0f}; largest layers: {note}")]


def _start(docker: d.Docker) -> float:
    holder = docker.run("--network", "none", image=d.RELAY_IMAGE, command=("sleep", "600"))
    probe = subprocess.Popen(["docker", "exec", holder.name, "python3", "-c", PROBE], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)  # the probe is polling
    started = time.time()
    docker.run("--network", f"container:{holder.name}")
    banner = float(probe.communicate(timeout=60)[0])
    return banner - started


def _bare_start(docker: d.Docker) -> float:
    started = time.time()
    docker.run("--network", "none", detach=False, command=("true",))
    return time.time() - started


def _reloads(container: d.Container) -> list[str]:
    """relaykit's "reloaded postfix" lines (stderr), each with Docker's timestamp."""
    result = d.docker("logs", "-t", container.name)
    return [line for line in (result.stdout + result.stderr).splitlines() if "reloaded postfix" in line]


def _reload(container: d.Container, round_: int) -> float:
    before = len(_reloads(container))
    started = time.time()
    container.exec("setup", "relay", "add-domain", f"d{round_}.example", "127.0.0.1", "2525")
    deadline = time.monotonic() + 30
    while len(lines := _reloads(container)) == before:
        assert time.monotonic() < deadline, "no reload logged"
        time.sleep(0.05)
    stamp = lines[before].split()[0]  # 2026-11-30T13:30:17.953231546Z
    return datetime.fromisoformat(stamp[:26] + "+00:00").timestamp() - started


def bench(work: Path, quick: bool = False) -> list[Row]:
    reason = d.available()
    if reason:
        return [Row("image", "skipped", None, None, None, note=reason)]
    d.build(d.IMAGE, REPO)
    d.build(d.RELAY_IMAGE, REPO / "test" / "image", REPO / "test" / "image" / "relay.Dockerfile")
    rounds = 2 if quick else ROUNDS
    docker = d.Docker()
    try:
        rows = _size_rows()
        starts, bare = [], []
        for _ in range(rounds):
            starts.append(_start(docker))
            bare.append(_bare_start(docker))
            docker.cleanup()
            docker = d.Docker()
        rows.append(Row("image", "docker run -> SMTP banner", None, statistics.median(starts),
                        statistics.median(bare), "docker run true", rounds))
        container = docker.run("--network", "none", "-e", "RELAY_HOST=127.0.0.1")
        container.wait_log("watching")
        reloads, execs = [], []
        for i in range(rounds):
            reloads.append(_reload(container, i))
            started = time.time()
            container.exec("true")
            execs.append(time.time() - started)
        rows.append(Row("image", "docker exec setup relay add-domain -> reloaded", None, statistics.median(reloads),
                        statistics.median(execs), "docker exec true", rounds))
        return rows
    finally:
        docker.cleanup()
