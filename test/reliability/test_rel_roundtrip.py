"""Whatever relaykit accepts, Postfix reads exactly as meant; whatever it refuses changes
nothing. Through the real console scripts, the real `relaykit configure` and the real
postmap (-s dumps a whole table as Postfix parsed it). Many values per configure."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.postfix_instance import PostfixInstance
from relaykit.inputs import validate
from relaykit.run.configure import prepare

from e2e.conftest import BIN
from strategies import ASCII_DOMAIN, DOMAINS, FILE_TEXT, HOSTS, PASSWORDS, PORTS, USERS
from test_rel_input import _run_setup, command_key

QUICK = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
LONG = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
TABLES = ("relayhost_map", "sasl_passwd", "tls_policy")


@pytest.fixture(scope="module")
def postfix(tmp_path_factory) -> PostfixInstance:
    return PostfixInstance(tmp_path_factory.mktemp("roundtrip")).create()


def dump(postfix: PostfixInstance, name: str) -> dict[str, str]:
    """The whole table as Postfix reads it (postmap -s), {} when relaykit wrote none."""
    ref = postfix.param({"relayhost_map": "sender_dependent_relayhost_maps", "sasl_passwd": "smtp_sasl_password_maps",
                         "tls_policy": "smtp_tls_policy_maps"}[name])
    if not ref:
        return {}
    # The exact table only: an opted-out address adds a pcre table after it in the same
    # parameter (`lmdb:.../relayhost_map, pcre:.../relayhost_map_subdomains`)
    ref = ref.split(",")[0].strip()
    result = subprocess.run(["postmap", "-c", str(postfix.config_dir), "-s", ref], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    pairs = [line.partition("\t")[::2] for line in result.stdout.splitlines()]
    found = dict(pairs)
    assert len(found) == len(pairs), f"duplicate keys in {name}"
    return found


def environ(postfix: PostfixInstance, config_dir: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY", "DEFAULT_RELAY", "LOG_LEVEL"))}
    return {**env, "MAIL_CONFIG": str(postfix.config_dir), "RELAYKIT_CONFIG_DIR": config_dir, **extra}


def configure(postfix: PostfixInstance, config_dir: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "relaykit"), "configure"], capture_output=True, text=True,
                          env=environ(postfix, config_dir, **extra), timeout=60)


def mail_config_files(postfix: PostfixInstance) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(postfix.config_dir.iterdir()) if p.is_file()}


def assert_postfix_reads_the_plan(postfix: PostfixInstance, environ_: dict[str, str]) -> int:
    """Every table as Postfix parses it equals the plan's key -> value. Returns #entries."""
    plan = prepare(environ_).plan
    entries = 0
    for name in TABLES:
        table = plan.table(name)
        meant = dict(line.split(" ", 1) for line in table.lines) if table else {}
        assert len(meant) == len(table.lines if table else ()), f"plan has a duplicate key in {name}"
        assert dump(postfix, name) == meant, name
        entries += len(meant)
    return entries


# -- setup relay ... -> relaykit configure -> postmap ------------------------------------

COMMAND = st.one_of(
    st.builds(lambda d, h, p: ["add-domain", d, h, p], st.one_of(ASCII_DOMAIN, DOMAINS), HOSTS, PORTS),
    st.builds(lambda d, u, p: ["add-auth", d, u, p], st.one_of(ASCII_DOMAIN, DOMAINS), USERS, PASSWORDS),
    st.builds(lambda d: ["exclude-domain", d], DOMAINS),
)


def roundtrip_setup(postfix, commands):
    """Run every command; one configure; Postfix reads exactly the model of accepted ones."""
    with tempfile.TemporaryDirectory() as directory:
        relays: dict[str, str | None] = {"@base.test": "[relay.test]:25"}
        creds: dict[str, str] = {}
        assert _run_setup(directory, ["relay", "add-domain", "base.test", "relay.test"])[0] == 0
        for argv in commands:
            status, _, err = _run_setup(directory, ["relay", *argv])
            assert status in (0, 1), err
            if status or argv[1:2] in (["-h"], ["--help"]):  # refused, or its help shown
                continue
            sender = command_key(argv)
            if argv[0] == "add-domain":
                relays[sender] = validate.bracketed(validate.host(argv[2]), validate.port(argv[3]))
            elif argv[0] == "exclude-domain":
                relays[sender] = None
            else:
                creds[sender] = f"{argv[2]}:{argv[3]}"
        result = configure(postfix, directory)
        assert result.returncode == 0, result.stderr
        routes = {s: hop for s, hop in relays.items() if hop}
        assert dump(postfix, "relayhost_map") == routes
        assert dump(postfix, "sasl_passwd") == creds
        # TLS is required from every relay: the routed ones and those with credentials by relay
        relays_with_creds = [key for key in creds if key.startswith("[")]
        assert dump(postfix, "tls_policy") == {hop: "encrypt" for hop in [*routes.values(), *relays_with_creds]}
        # and the one-key lookup Postfix's smtp client does agrees with the dump
        ref = postfix.param("sender_dependent_relayhost_maps").split(",")[0].strip()  # the exact table
        for sender, hop in list(routes.items())[:3]:
            assert postfix.query(ref, sender) == hop


@QUICK
@given(st.lists(COMMAND, min_size=10, max_size=40))
@example(commands=[["add-domain", "0", "0", "0"]] * 8 + [["exclude-domain", "b@\u00d4"]])  # + a pcre table
def test_accepted_setup_values_reach_postfix_exactly(postfix, commands):
    roundtrip_setup(postfix, commands)


@pytest.mark.slow
@LONG
@given(st.lists(COMMAND, min_size=10, max_size=60))
def test_accepted_setup_values_reach_postfix_exactly_long(postfix, commands):
    roundtrip_setup(postfix, commands)


def test_idn_domains_are_punycoded_in_the_tables(env):
    assert env.run("setup", "relay", "add-domain", "münchen.de", "bücher.example", "587").returncode == 0
    assert env.run("setup", "relay", "add-auth", "MÜNCHEN.DE", "user", "pw-Zq9").returncode == 0
    assert (env.config_dir / "postfix-relaymap.cf").read_text() == "@xn--mnchen-3ya.de\t[xn--bcher-kva.example]:587\n"
    env.configure()
    assert env.lookup("relayhost_map", "@xn--mnchen-3ya.de") == "[xn--bcher-kva.example]:587"
    assert env.lookup("sasl_passwd", "@xn--mnchen-3ya.de") == "user:pw-Zq9"


# -- config files + environment -> relaykit configure -> postmap -------------------------

ENV = st.fixed_dictionaries({}, optional={
    "RELAY_HOST": HOSTS, "RELAY_PORT": PORTS, "RELAY_USER": USERS, "RELAY_PASSWORD": PASSWORDS,
    "DEFAULT_RELAY_HOST": st.one_of(HOSTS, st.builds(lambda h, p: f"[{h}]:{p}", ASCII_DOMAIN, PORTS)),
})
FILES = st.fixed_dictionaries({}, optional={
    "postfix-relaymap.cf": FILE_TEXT, "postfix-sasl-password.cf": FILE_TEXT,
    "postfix-accounts.cf": st.lists(st.builds(lambda d: f"u@{d}|{{PLAIN}}x", DOMAINS), max_size=6).map("\n".join),
    "postfix-virtual.cf": st.lists(st.builds(lambda d: f"a@{d} t@x.test", DOMAINS), max_size=6).map("\n".join),
})


def roundtrip_configure(postfix, files, env):
    """configure either applies exactly its plan, or exits 1 naming the problem and
    leaves MAIL_CONFIG byte for byte as it was."""
    env = {k: v for k, v in env.items() if "\x00" not in v}
    with tempfile.TemporaryDirectory() as directory:
        for name, text in files.items():
            Path(directory, name).write_bytes(text.encode("utf-8", "surrogateescape"))
        before = mail_config_files(postfix)
        result = configure(postfix, directory, **env)
        assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
        if result.returncode == 1:
            assert result.stderr.startswith("error: "), result.stderr
            assert mail_config_files(postfix) == before, "a refused configure changed MAIL_CONFIG"
            return
        assert_postfix_reads_the_plan(postfix, environ(postfix, directory, **env))


@QUICK
@given(FILES, ENV)
def test_configure_applies_exactly_its_plan_or_changes_nothing(postfix, files, env):
    roundtrip_configure(postfix, files, env)


@pytest.mark.slow
@LONG
@given(FILES, ENV)
def test_configure_applies_exactly_its_plan_or_changes_nothing_long(postfix, files, env):
    roundtrip_configure(postfix, files, env)


# -- the console script itself: raw bytes, odd file systems ------------------------------

RAW_ARGS = [
    [b"add-domain", b"\xff.test", b"h.test"], [b"add-domain", b"a.test", b"h\xfe.test"],
    [b"add-auth", b"a.test", b"\xc3", b"pw"], [b"add-auth", b"a.test", b"u", b"p\xffw"],
    [b"add-domain", b"a.test", b"h.test", b"\xb2"], [b"exclude-domain", b"\xe2\x80\xa8a.test"],
    [b"add-domain", b"-", b"-"], [b"add-domain", b"--help"], [b"add-auth"], [b"exclude-domain", b"a", b"b"],
]


def run_setup_bytes(config_dir: Path, args: list[bytes], stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {**os.environ, "RELAYKIT_CONFIG_DIR": str(config_dir)}
    return subprocess.run([os.fsencode(BIN / "setup"), b"relay", *args], capture_output=True, input=stdin,
                          env=env, timeout=30)


@pytest.mark.parametrize("args", RAW_ARGS, ids=lambda a: b" ".join(a).decode("utf-8", "replace"))
def test_setup_with_raw_bytes_refuses_cleanly_and_changes_nothing(tmp_path, args):
    relaymap = tmp_path / "postfix-relaymap.cf"
    relaymap.write_bytes(b"@keep.test [one.test]:25\n")
    result = run_setup_bytes(tmp_path, args)
    assert result.returncode in (0, 1) and b"Traceback" not in result.stderr, result.stderr
    if result.returncode:
        assert result.stderr.startswith(b"error: ") or b"Usage" in result.stderr
        assert relaymap.read_bytes() == b"@keep.test [one.test]:25\n"


def test_password_from_stdin_that_is_not_utf8_is_refused(tmp_path):
    result = run_setup_bytes(tmp_path, [b"add-auth", b"a.test", b"user"], stdin=b"p\xff\xfew\n")
    assert result.returncode == 1 and result.stderr.startswith(b"error: "), result.stderr
    assert not (tmp_path / "postfix-sasl-password.cf").exists()


def test_setup_on_an_unusable_config_path_exits_1_naming_it(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = run_setup_bytes(not_a_dir, [b"add-domain", b"a.test", b"h.test"])
    assert (result.returncode, result.stderr) == (1, f"error: {not_a_dir}: File exists\n".encode())
    (tmp_path / "dir" / "postfix-relaymap.cf").mkdir(parents=True)
    result = run_setup_bytes(tmp_path / "dir", [b"add-domain", b"a.test", b"h.test"])
    assert result.returncode == 1 and b"postfix-relaymap.cf: Is a directory" in result.stderr


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.binary(min_size=0, max_size=12).filter(lambda b: b"\x00" not in b), min_size=1, max_size=4),
       st.sampled_from([b"add-domain", b"add-auth", b"exclude-domain"]))
def test_setup_console_script_never_shows_a_traceback(args, command):
    with tempfile.TemporaryDirectory() as directory:
        result = run_setup_bytes(Path(directory), [command, *args], stdin=b"pw-Zq9\n")
        assert result.returncode in (0, 1) and b"Traceback" not in result.stderr, result.stderr
