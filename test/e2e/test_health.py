"""`relaykit health` (the image's HEALTHCHECK) against a real running private Postfix."""

from __future__ import annotations

import socket
import threading

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def running(env):
    env.postfix.start()
    try:
        yield env
    finally:
        env.postfix.stop()


def test_healthy_when_postfix_runs_and_its_listener_speaks_smtp(running):
    address = f"127.0.0.1:{running.postfix.smtpd_port}"
    result = running.run("relaykit", "health", "-v", address)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"healthy: Postfix is running; SMTP [127.0.0.1]:{running.postfix.smtpd_port} says 220")
    # quiet by default (Docker stores the output of every probe); the address may come from the env
    quiet = running.run("relaykit", "health", RELAYKIT_HEALTH_ADDRESS=address)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_unhealthy_when_postfix_is_stopped(running):
    running.postfix.stop()
    result = running.run("relaykit", "health", f"127.0.0.1:{running.postfix.smtpd_port}")
    assert result.returncode == 1
    assert "Postfix is not running" in result.stderr


def test_unhealthy_when_the_port_does_not_speak_smtp(running):
    """A listener that accepts and says nothing (a hung smtpd) is not healthy."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        threading.Thread(target=lambda: server.accept()[0].sendall(b"HTTP/1.0 400 Bad\r\n\r\n"),
                         daemon=True).start()
        result = running.run("relaykit", "health", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"SMTP [127.0.0.1]:{port}" in result.stderr


def test_unhealthy_when_nothing_listens(running):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = running.run("relaykit", "health", f"127.0.0.1:{port}")
    assert result.returncode == 1 and "does not answer" in result.stderr


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:0", "host:port"])
def test_a_bad_address_exits_1(env, address):
    result = env.run("relaykit", "health", address)
    assert result.returncode == 1 and "expected <host>:<port>" in result.stderr
