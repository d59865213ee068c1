"""compose.yaml brought up for real with Debian's docker-compose (v1, the one most hosts
still have; it reads the same file as `docker compose`): relaykit, read-only, its volumes
and the password as a Docker secret, with test/image/compose.test.yaml adding a recording
relay on an internal network."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import docker as d

pytestmark = pytest.mark.image

SECRET = "compose-s3cret"


def _project(tmp: Path) -> Path:
    """compose.yaml as shipped, without what a test may not do: publish host ports, and
    build (the image under test is built already, from this tree)."""
    compose = yaml.safe_load((d.REPO / "compose.yaml").read_text())
    service = compose["services"]["relay"]
    assert service.pop("ports") and service.pop("build") == "."
    project = tmp / "project"
    for sub in ("config", "secrets", "tls"):
        (project / sub).mkdir(parents=True)
    (project / "compose.yaml").write_text(yaml.safe_dump(compose))
    shutil.copy(Path(__file__).parent / "compose.test.yaml", project / "compose.test.yaml")
    (project / "secrets" / "relay_password").write_text(SECRET)
    (project / "config" / "postfix-virtual.cf").write_text("info@shop.test jane@elsewhere.test\n")
    # SSL_TYPE=manual in compose.yaml: the certificate the user mounts in ./tls
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=relay.example.com",
                    "-keyout", str(project / "tls" / "privkey.pem"), "-out", str(project / "tls" / "fullchain.pem")],
                   check=True, capture_output=True)
    return project


def test_compose_up_relays_with_credentials_turns_healthy_and_answers_setup(images, tmp_path):
    project = _project(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    name = d.unique("rkcompose")
    env = {**os.environ, "RELAY_TEST_DIR": str(d.REPO / "test"), "RELAY_TEST_OUT": str(out),
           "RELAY_TEST_PASSWORD": SECRET}

    def compose(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker-compose", "-p", name, "-f", "compose.yaml", "-f", "compose.test.yaml", *args],
                                cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert not check or result.returncode == 0, f"docker-compose {args}: {result.stdout}\n{result.stderr}"
        return result

    compose("config", "-q")  # v1 accepts the file as shipped
    try:
        compose("up", "-d")
        relay = d.Container("relay")
        relay.wait_healthy(timeout=60)
        assert "relay.example.com" == relay.exec("postconf", "-h", "myhostname").stdout.strip()
        listed = compose("exec", "-T", "relay", "setup", "relay", "list").stdout
        assert "[smarthost]:2525" in listed and SECRET not in listed
        d.wait_received(out, "smart", 0)  # the relay has started: it wrote its first state
        # a client on the Docker network (PERMIT_DOCKER=connected-networks) relays on 25
        compose("exec", "-T", "smarthost", "python3", "/tests/image/relay_server.py", "send",
                "info@shop.test", "someone@far.test", "relay:25")
        state = d.wait_received(out, "smart", 1)
        message = state["messages"][0]
        assert (message["mail_from"], message["login"], message["tls"]) == ("info@shop.test", "relayuser", True)
        assert [(a["password"], a["tls"]) for a in state["auth"]] == [(SECRET, True)]
        assert SECRET not in compose("logs", "--no-color", "relay").stdout
    finally:
        compose("down", "-v", "-t", "10", check=False)
