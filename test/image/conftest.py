"""The image as users run it: built from this working tree with `docker build`, run with
`docker run`/`docker exec`/compose. Needs a Docker engine (CI starts one with
../shared/container/local-docker.sh, see .ci/run). Without one these tests are skipped,
unless RELAYKIT_IMAGE_TESTS=required (CI), where a missing engine fails the run."""

from __future__ import annotations

import os
import time

import pytest

from harness import docker as d


@pytest.fixture(scope="session")
def images() -> dict[str, float]:
    """Build relaykit's image and the recording relay's; the seconds each build took."""
    reason = d.available()
    if reason:
        if os.environ.get("RELAYKIT_IMAGE_TESTS") == "required":
            pytest.fail(f"RELAYKIT_IMAGE_TESTS=required but {reason}")
        pytest.skip(reason)
    took = {}
    for tag, dockerfile in ((d.IMAGE, None), (d.RELAY_IMAGE, d.REPO / "test" / "image" / "relay.Dockerfile")):
        start = time.monotonic()
        d.build(tag, dockerfile.parent if dockerfile else d.REPO, dockerfile)
        took[tag] = time.monotonic() - start
    return took


@pytest.fixture
def docker(images):
    """Containers and volumes for one test, removed afterwards."""
    made = d.Docker()
    yield made
    made.cleanup()


@pytest.fixture(scope="module")
def module_docker(images):
    """The same, shared by a module's tests (one running server for many checks)."""
    made = d.Docker()
    yield made
    made.cleanup()
