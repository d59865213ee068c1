"""PERMIT_DOCKER reads the container's real interfaces: the real `relaykit configure` (and
its `ip -j addr`) in a fresh network namespace whose veth has an IPv4 and two IPv6
networks, plus the link-local address the kernel adds itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RELAYKIT = Path(sys.executable).parent / "relaykit"  # the real console script, as env.run uses

# A veth pair, as Docker gives a container; nodad on one address, the other left tentative
# (duplicate detection still running, as at a container's start: it must count too).
SETUP = ("ip link set lo up && ip link add eth0 type veth peer name peer0 && ip link set eth0 up && "
         "ip link set peer0 up && ip addr add 172.20.3.4/24 dev eth0 && "
         "ip -6 addr add fd00:1::5/64 dev eth0 && ip -6 addr add 2001:db8:5::7/48 dev eth0 nodad")


def configure_in_namespace(env, mode: str) -> subprocess.CompletedProcess:
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode:
        pytest.skip("cannot create a network namespace here")
    script = f'{SETUP} && ip -j addr show eth0 >&2 && exec "$0" configure'
    return subprocess.run(["unshare", "--net", "sh", "-c", script, str(RELAYKIT)], capture_output=True,
                          text=True, env=env.environ(PERMIT_DOCKER=mode), timeout=60)


@pytest.mark.parametrize("mode, expected", [
    ("connected-networks", {"172.20.3.0/24", "[fd00:1::]/64", "[2001:db8:5::]/48"}),
    ("container", {"172.20.3.4/32", "[fd00:1::5]/128", "[2001:db8:5::7]/128"}),
])
def test_permit_docker_trusts_the_interfaces_ipv6_networks_too(env, mode, expected):
    result = configure_in_namespace(env, mode)
    assert result.returncode == 0, result.stderr
    assert '"fe80::' in result.stderr  # the link-local address was there, and is not trusted
    loopback, docker = env.postfix.param("mynetworks").split()[:2], env.postfix.param("mynetworks").split()[2:]
    assert loopback == ["127.0.0.1/32", "[::1]/128"]
    assert sorted(docker) == sorted(expected)  # in the kernel's order of addresses
