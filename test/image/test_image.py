"""The image, built from this tree and run as users run it: read-only root, the DMS
environment, the password as a secret file, a recording relay with STARTTLS + AUTH in the
same network namespace. What a user sees (docker logs, inspect, exec, stop) is asserted,
and what the relay received proves the promises on the wire."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from harness import docker as d

pytestmark = pytest.mark.image

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-relay-pw"  # RELAY_PASSWORD, only ever in the secret file
OTHER_SECRET = "0ther-pw"
HOSTNAME = "mx.override.test"

# The writable places the README names for a read-only root (README.md, "Docker").
WRITABLE_VOLUMES = ("/etc/postfix", "/var/spool/postfix", "/var/lib/postfix")
WRITABLE_TMPFS = ("/tmp", "/run")


def readonly_args(docker: d.Docker, config: Path, secret: Path, volumes: dict[str, str] | None = None) -> list[str]:
    """`--read-only` with exactly the README's writable paths (named volumes, seeded from
    the image as Docker does), the config dir and the secret file mounted."""
    volumes = volumes or {path: docker.volume() for path in WRITABLE_VOLUMES}
    args = ["--read-only", *(a for path in WRITABLE_TMPFS for a in ("--tmpfs", path))]
    for path, volume in volumes.items():
        args += ["-v", f"{volume}:{path}"]
    return args + ["-v", f"{config}:/tmp/docker-mailserver", "-v", f"{secret}:/run/secrets/relay_password:ro"]


def dms_env(port: int = 2525, **extra: str) -> list[str]:
    env = {"RELAY_HOST": "127.0.0.1", "RELAY_PORT": str(port), "RELAY_USER": "relayuser",
           "RELAY_PASSWORD_FILE": "/run/secrets/relay_password", **extra}
    return [a for k, v in env.items() for a in ("-e", f"{k}={v}")]


def config_dir(tmp: Path) -> tuple[Path, Path]:
    config = tmp / "config"
    config.mkdir(parents=True)
    # shop.test is a managed domain (DMS: the domains of accounts and aliases)
    (config / "postfix-virtual.cf").write_text("sales@shop.test jane@elsewhere.test\n")
    secret = tmp / "relay_password"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    return config, secret


def send(relay: d.Container, sender: str, recipient: str = "someone@far.test") -> None:
    relay.exec("python3", "/tests/image/relay_server.py", "send", sender, recipient)


@pytest.fixture(scope="module")
def server(module_docker, tmp_path_factory):
    """relaykit's default command in the relays' namespace, read-only, healthchecked."""
    tmp = tmp_path_factory.mktemp("image")
    config, secret = config_dir(tmp)
    out = tmp / "out"
    relay = module_docker.relay(out, f"smart:2525:relayuser:{SECRET}", f"other:2526:otheruser:{OTHER_SECRET}")
    started = time.monotonic()
    container = module_docker.run(
        "--network", f"container:{relay.name}", "--health-interval", "1s", "--health-start-period", "60s",
        *readonly_args(module_docker, config, secret),
        *dms_env(OVERRIDE_HOSTNAME=HOSTNAME, ENABLE_SUBMISSION="1"))
    healthy_after = container.wait_healthy()
    return {"container": container, "relay": relay, "out": out, "config": config,
            "healthy_after": healthy_after, "started": started}


def test_default_command_turns_healthy_by_the_images_own_healthcheck(server):
    info = server["container"].inspect()
    assert info["Config"]["Healthcheck"]["Test"] == ["CMD", "relaykit", "health"]
    assert info["Config"]["Cmd"] == ["start"]
    assert server["container"].health() == "healthy"
    assert server["healthy_after"] < 30


def test_mail_from_a_managed_domain_reaches_the_relay_as_relay_user_over_tls(server):
    send(server["relay"], "sales@shop.test")
    state = d.wait_received(server["out"], "smart", 1)
    message = state["messages"][0]
    assert message["mail_from"] == "sales@shop.test"
    assert (message["login"], message["tls"]) == ("relayuser", True)
    # the password came from the secret file, and was only ever sent inside TLS
    assert [(a["login"], a["password"], a["ok"], a["tls"]) for a in state["auth"]] == [
        ("relayuser", SECRET, True, True)]
    assert d.received(server["out"], "other")["auth"] == []


def test_the_password_is_in_no_docker_logs_or_inspect_output(server):
    send(server["relay"], "sales@shop.test", "second@far.test")
    d.wait_received(server["out"], "smart", 2)
    container = server["container"]
    assert SECRET not in container.logs()
    assert SECRET not in d.docker("inspect", container.name).stdout
    assert SECRET not in container.exec("ps", "-eo", "args").stdout
    assert "sasl_method=PLAIN" in container.logs() or "relay=127.0.0.1[127.0.0.1]:2525" in container.logs()


def test_setup_relay_add_domain_in_the_container_changes_the_next_route_without_restart(server):
    container, before = server["container"], server["container"].inspect()["State"]
    container.exec("setup", "relay", "add-domain", "news.test", "127.0.0.1", "2526")
    # the password on stdin, never on argv
    container.exec("setup", "relay", "add-auth", "news.test", "otheruser", input=OTHER_SECRET + "\n")
    container.wait_log("reloaded postfix")
    send(server["relay"], "letters@news.test")
    state = d.wait_received(server["out"], "other", 1)
    assert (state["messages"][0]["mail_from"], state["messages"][0]["login"]) == ("letters@news.test", "otheruser")
    after = container.inspect()["State"]
    assert (after["StartedAt"], after["Pid"], container.inspect()["RestartCount"]) == (
        before["StartedAt"], before["Pid"], 0)
    listed = container.exec("setup", "relay", "list").stdout
    assert "news.test" in listed and OTHER_SECRET not in listed


def test_override_hostname_reaches_myhostname_helo_and_the_self_signed_certificate(server):
    container = server["container"]
    assert container.exec("postconf", "-h", "myhostname").stdout.strip() == HOSTNAME
    send(server["relay"], "sales@shop.test", "helo@far.test")
    messages = d.wait_received(server["out"], "smart", 1)["messages"]
    assert {m["helo"] for m in messages} == {HOSTNAME}
    subject = container.exec("openssl", "x509", "-noout", "-subject", "-in",
                             "/etc/postfix/tls/selfsigned-cert.pem").stdout
    assert f"CN = {HOSTNAME}" in subject


def test_the_container_hostname_is_myhostname_and_the_certificates_name(docker):
    result = docker.run("--network", "none", "--hostname", "relay.example.com", "-e", "ENABLE_SUBMISSION=1",
                        detach=False, command=("sh", "-c", "relaykit configure && postconf -h myhostname && "
                                               "openssl x509 -noout -subject -in /etc/postfix/tls/selfsigned-cert.pem"))
    assert "relay.example.com\n" in result.stdout
    assert "CN = relay.example.com" in result.stdout


def test_the_root_is_read_only_except_the_paths_the_readme_names(server):
    container = server["container"]
    info = container.inspect()
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert sorted(info["HostConfig"]["Tmpfs"]) == sorted(WRITABLE_TMPFS)
    assert container.exec("touch", "/usr/local/x", check=False).returncode != 0
    readme = (REPO / "README.md").read_text()
    docker_section = readme.split("## Docker", 1)[1].split("\n## ", 1)[0]
    for path in (*WRITABLE_VOLUMES, *WRITABLE_TMPFS):
        assert f"`{path}`" in docker_section, path


def test_pid_1_is_an_init_that_reaps_orphans(server):
    container = server["container"]
    assert container.exec("ps", "-o", "comm=", "-p", "1").stdout.strip() == "tini"
    # an orphan (its parent shell exits at once) is re-parented to PID 1 and must be reaped
    container.exec("sh", "-c", "sh -c 'sleep 0.3 &'")
    time.sleep(1.5)
    states = container.exec("ps", "-eo", "stat=,comm=").stdout
    assert not [line for line in states.splitlines() if line.strip().startswith("Z")], states


def test_docker_stop_exits_0_within_10_seconds(docker, tmp_path):
    config, secret = config_dir(tmp_path)
    container = docker.run("--network", "none", *readonly_args(docker, config, secret), *dms_env())
    _wait_listening(container)
    start = time.monotonic()
    d.docker("stop", "-t", "10", container.name)
    took = time.monotonic() - start
    state = container.inspect()["State"]
    assert state["ExitCode"] == 0, container.logs()
    assert took < 10, took


def _wait_listening(container: d.Container, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while container.exec("relaykit", "health", check=False).returncode:
        assert time.monotonic() < deadline, container.logs()
        time.sleep(0.2)


def test_mail_queued_while_the_relay_is_down_survives_a_new_container(docker, tmp_path):
    config, secret = config_dir(tmp_path)
    out = tmp_path / "out"
    relay = docker.relay(out, f"smart:2525:relayuser:{SECRET}")
    volumes = {path: docker.volume() for path in WRITABLE_VOLUMES}
    args = ["--network", f"container:{relay.name}", *readonly_args(docker, config, secret, volumes)]
    first = docker.run(*args, *dms_env(port=2527))  # nothing listens on 2527 yet
    _wait_listening(first)
    send(relay, "sales@shop.test", "queued@far.test")
    first.wait_log("status=deferred")
    d.docker("stop", first.name)
    d.docker("rm", first.name)
    # the relay comes up; a new container on the same volumes delivers the queued message
    relay.exec("sh", "-c", f"python3 /tests/image/relay_server.py serve /out/late late:2527:relayuser:{SECRET} "
               ">/dev/null 2>&1 &")
    # listening once it has written its (empty) record: else the new container's first
    # attempt can find nothing there, and defer the message for the image's 300 s backoff
    d.wait_received(out / "late", "late", 0)
    second = docker.run(*args, *dms_env(port=2527))
    _wait_listening(second)
    second.exec("postqueue", "-f")
    state = d.wait_received(out / "late", "late", 1, timeout=60)
    assert [m["rcpt_tos"] for m in state["messages"]] == [["queued@far.test"]]
    assert state["messages"][0]["login"] == "relayuser"
    time.sleep(1)
    assert len(d.received(out / "late", "late")["messages"]) == 1  # once, not twice
    assert "Mail queue is empty" in second.exec("postqueue", "-p").stdout


def test_a_bad_relaymap_line_stops_the_container_naming_file_and_line(docker, tmp_path):
    config, secret = config_dir(tmp_path)
    (config / "postfix-relaymap.cf").write_text("# routes\n@shop.test [smtp.relay.test]:99999\n")
    result = docker.run("--network", "none", *readonly_args(docker, config, secret), *dms_env(),
                        detach=False, check=False)
    assert result.returncode == 1
    assert "postfix-relaymap.cf:2" in result.stdout + result.stderr


@pytest.mark.parametrize("command, expect", [
    (("setup", "relay", "check"), "configuration is valid"),
    (("relaykit", "--version"), "relaykit "),
    (("--version",), "relaykit "),
    (("setup", "relay", "help"), "add-domain"),
])
def test_one_off_commands_run_instead_of_the_server(docker, command, expect):
    result = docker.run("--network", "none", "--rm", detach=False, command=command)
    assert result.returncode == 0, result.stderr
    assert expect in result.stdout
    docker.containers.pop()  # --rm removed it


def test_setup_starts_without_site_py_and_finds_relaykit_in_the_venv(docker):
    """install.sh's `#!/opt/relaykit/bin/python -S`: the script adds the venv's
    site-packages itself (target/bin/setup); site.py is not imported at all."""
    result = docker.run("--network", "none", "--rm", "-e", "PYTHONPROFILEIMPORTTIME=1", detach=False,
                        command=("sh", "-c", "head -n 1 /opt/relaykit/bin/setup && setup relay help"))
    docker.containers.pop()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("#!/opt/relaykit/bin/python") and result.stdout.split("\n", 1)[0].endswith(" -S")
    assert "add-domain" in result.stdout
    imported = {line.rpartition("|")[2].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "relaykit.cli.setup" in imported and "site" not in imported


def test_relaykit_is_the_same_site_free_script(docker):
    """/opt/relaykit/bin/relaykit: target/bin/setup under its other name (install.sh's -S
    too), running relaykit's commands without site.py or a console_scripts wrapper."""
    result = docker.run("--network", "none", "--rm", "-e", "PYTHONPROFILEIMPORTTIME=1", detach=False,
                        command=("sh", "-c", "head -n 1 /opt/relaykit/bin/relaykit && relaykit --version"))
    docker.containers.pop()
    assert result.returncode == 0, result.stderr
    first, version = result.stdout.splitlines()[:2]
    assert first.startswith("#!/opt/relaykit/bin/python") and first.endswith(" -S") and version.startswith("relaykit ")
    imported = {line.rpartition("|")[2].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "relaykit.cli.main" in imported and not imported & {"site", "re"}


def test_relaykit_s_modules_come_from_the_images_start_up_cache(docker):
    """install.sh wrote relaykit/__pycache__/startcache.<tag>.bin after pip, and nothing in
    the image's later layers touched a source since: `setup` loads its modules from it."""
    code = ("import sys, relaykit.cli.setup, relaykit.cli.commands.relay, relaykit.stores.files\n"
            "print(sorted({type(m.__loader__).__name__ for n, m in sys.modules.items() if n.startswith('relaykit.')}))")
    result = docker.run("--network", "none", "--rm", detach=False, command=("/opt/relaykit/bin/python", "-c", code))
    docker.containers.pop()
    assert (result.returncode, result.stdout) == (0, "['_StartCache']\n"), result.stderr


def test_the_image_has_every_map_type_sasl_mechanism_and_dovecot_driver_relaykit_uses(docker):
    result = docker.run("--network", "none", "--rm", detach=False, command=(
        "sh", "-c", "postconf -m; ls /usr/lib/x86_64-linux-gnu/sasl2 /usr/lib/*/sasl2 2>/dev/null; "
                    "dovecot --build-options; ls /usr/lib/dovecot/modules/auth"))
    docker.containers.pop()
    out = result.stdout
    maps = set(out.split())
    assert {"lmdb", "hash", "btree", "texthash", "pcre", "pgsql", "cidr", "inline", "static", "pipemap",
            "fail"} <= maps  # pipemap, fail: OAuth2 keys without a token defer (core/routetables.py)
    assert "libplain.so" in out and "liblogin.so" in out  # Cyrus SASL client mechanisms
    assert "librelaykit_xoauth2.so" in out and "libkdexoauth2.so" not in out  # XOAUTH2: ours (target/sasl)
    assert re.search(r"Passdb:.* sql\b", out) and "libdriver_pgsql.so" in out  # Dovecot's sql passdb on PostgreSQL


def test_the_image_can_sign_with_dkim(docker, tmp_path):
    """OpenDKIM and its user, and `setup config dkim` making a key in the container."""
    result = docker.run("--network", "none", "--rm", "-e", "RELAYKIT_CONFIG_DIR=/tmp/cfg", detach=False, command=(
        "sh", "-c", "id opendkim && command -v opendkim && setup config dkim example.com && "
                    "stat -c '%a' /tmp/cfg/opendkim/keys/example.com/mail.private"))
    docker.containers.pop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "v=DKIM1" in result.stdout and result.stdout.strip().endswith("600")


def test_the_image_keeps_no_build_tools_or_caches(docker):
    result = docker.run("--network", "none", "--rm", detach=False, command=(
        "sh", "-c", "ls /opt/relaykit/bin; ls /var/lib/apt/lists | wc -l; ls /var/cache/apt/archives/*.deb 2>/dev/null | wc -l; "
                    "dpkg -l python3-venv python3-pip-whl gcc libc6-dev libsasl2-dev 2>/dev/null | grep ^ii | wc -l"))
    docker.containers.pop()
    lines = result.stdout.split()
    assert "pip" not in lines and "relaykit" in lines and "setup" in lines
    assert lines[-3:] == ["0", "0", "0"]  # no apt lists, no downloaded packages, no venv or C tooling
    size = json.loads(d.docker("image", "inspect", d.IMAGE).stdout)[0]["Size"]
    base = json.loads(d.docker("image", "inspect", "debian:12-slim").stdout)[0]["Size"]
    # 125 MB before OAuth2; its token flows (msal, requests-oauthlib, cryptography) add 24 MB
    assert size - base < 155_000_000, f"relaykit adds {(size - base) / 1e6:.0f} MB to its base"
