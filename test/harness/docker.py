"""The Docker CLI for the image tests: build the image as users get it, run containers,
exec into them, and clean up everything a test made (containers, volumes) by name.

Network rule (the machine reaches no one): relaykit's containers run with `--network
none` or `--network container:<relay>` (sharing the recording relay's namespace, over
127.0.0.1); compose uses an `internal: true` network. Builds use `--network host` so
apt and pip reach the package registries.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGE = "relaykit:test"
RELAY_IMAGE = "relaykit-test-relay:latest"


def available() -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        result = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                                capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no docker client: {exc}"
    if result.returncode:
        return f"no Docker engine (DOCKER_HOST={os.environ.get('DOCKER_HOST', 'unset')}): {result.stderr.strip()}"
    return None


def docker(*args: str, check: bool = True, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, input=input, timeout=timeout)
    if check and result.returncode:
        raise AssertionError(f"docker {' '.join(args)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def build(tag: str, context: Path, dockerfile: Path | None = None) -> None:
    args = ["build", "--network", "host", "-q", "-t", tag]
    if dockerfile:
        args += ["-f", str(dockerfile)]
    docker(*args, str(context), timeout=900)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Container:
    name: str

    def exec(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        return docker("exec", *(["-i"] if input is not None else []), self.name, *args, check=check, input=input)

    def inspect(self) -> dict:
        return json.loads(docker("inspect", self.name).stdout)[0]

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def health(self) -> str | None:
        state = self.inspect()["State"]
        return (state.get("Health") or {}).get("Status")

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds until Docker's own HEALTHCHECK reports healthy."""
        start = time.monotonic()
        while (status := self.health()) != "healthy":
            if not self.inspect()["State"]["Running"]:
                raise AssertionError(f"{self.name} exited:\n{self.logs()}")
            if time.monotonic() - start > timeout:
                raise AssertionError(f"{self.name} is {status} after {timeout} s:\n{self.logs()}")
            time.sleep(0.2)
        return time.monotonic() - start

    def wait_log(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while text not in (logs := self.logs()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the logs of {self.name} after {timeout} s:\n{logs}")
            time.sleep(0.1)
        return logs


@dataclass
class Docker:
    """Containers and volumes made by one test module, all removed by cleanup()."""

    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def volume(self, prefix: str = "rk-vol") -> str:
        name = unique(prefix)
        docker("volume", "create", name)
        self.volumes.append(name)
        return name

    def run(self, *args: str, image: str = IMAGE, command: tuple[str, ...] = (), name: str | None = None,
            detach: bool = True, check: bool = True, timeout: float = 120) -> Container | subprocess.CompletedProcess:
        """`docker run` a container; detached: the Container, else the finished process."""
        name = name or unique("rk")
        self.containers.append(name)
        result = docker("run", *(["-d"] if detach else []), "--name", name, *args, image, *command,
                        check=check, timeout=timeout)
        return Container(name) if detach else result

    def relay(self, out: Path, *specs: str) -> Container:
        """Recording relays (NAME:PORT:USER:PASSWORD) in a namespace of their own, writing
        to `out`; relaykit joins it with `--network container:<name>`."""
        out.mkdir(parents=True, exist_ok=True)
        return self.run("--network", "none", "-v", f"{REPO / 'test'}:/tests:ro", "-v", f"{out}:/out",
                        image=RELAY_IMAGE, command=("python3", "/tests/image/relay_server.py", "serve", "/out", *specs))

    def cleanup(self) -> None:
        if self.containers:
            docker("rm", "-f", "-v", *self.containers, check=False)
        if self.volumes:
            docker("volume", "rm", "-f", *self.volumes, check=False)


def received(out: Path, relay: str) -> dict:
    """What a recording relay has received so far: {"messages": [...], "auth": [...]}."""
    path = out / f"{relay}.json"
    return json.loads(path.read_text()) if path.exists() else {"messages": [], "auth": []}


def wait_received(out: Path, relay: str, count: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while not (out / f"{relay}.json").exists() or len((state := received(out, relay))["messages"]) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"relay {relay} got {len(received(out, relay)['messages'])} of {count} messages")
        time.sleep(0.1)
    return state
