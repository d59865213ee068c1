"""Bad input, systematically (hypothesis): every parser and every `setup relay` command
either accepts a value or refuses it with a RelaykitError (exit 1 and a message); never
another exception (a traceback), never a changed file on refusal, never a file relaykit
itself can no longer read."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaykit.inputs import dmsfiles as configfiles
from relaykit.inputs import validate
from relaykit.inputs import settings as relaykit_settings
from relaykit.cli import setup as setup_cli
from relaykit.errors import ConfigError, RelaykitError

from strategies import DOMAINS, FILE_TEXT, HOSTS, PASSWORDS, PORTS, USERS

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fuzz(prop, *strategies):
    """The property as two tests: a quick one by default, a long one behind `slow`."""
    return FAST(given(*strategies)(prop)), pytest.mark.slow(SLOW(given(*strategies)(prop)))
TABLE_CHARS_REFUSED = (" ", "\t", "\n", "\r", "#")


def _clean(value: str, hash_allowed: bool = False) -> None:
    """An accepted value can stand in a Postfix table field as it is. `hash_allowed`: a
    '#' inside a credential of a file is data to Postfix (DMS files may have one)."""
    refused = [c for c in TABLE_CHARS_REFUSED if not (hash_allowed and c == "#")]
    assert value and not any(c in value for c in refused), repr(value)
    assert not any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value), repr(value)
    value.encode("utf-8")  # no lone surrogates: it can be written to a file


# -- validate: total functions onto clean values, idempotent -----------------------------

def prop_validate_domain_accepts_a_clean_idempotent_name_or_refuses(value):
    try:
        name = validate.domain(value)
    except RelaykitError as exc:
        assert exc.message
        return
    _clean(name)
    assert name.isascii() and name == name.lower() and not name.startswith("@")
    assert validate.domain(name) == name


def prop_validate_host_accepts_a_clean_idempotent_host_or_refuses(value):
    try:
        host = validate.host(value)
    except RelaykitError:
        return
    _clean(host)
    assert validate.host(host) == host
    assert validate.nexthop(validate.bracketed(host, 25)) == validate.bracketed(host, 25)


def prop_validate_nexthops_accepts_clean_hops_or_refuses(value):
    try:
        hops = validate.nexthops(value)
    except RelaykitError:
        return
    for hop in hops:
        _clean(hop)
        assert "," not in hop and validate.nexthop(hop) == hop


def prop_validate_port_is_1_to_65535_or_refused(value):
    try:
        port = validate.port(value)
    except RelaykitError:
        return
    assert 1 <= port <= 65535 and str(port) == value.strip().lstrip("0")


def prop_validate_credentials_accept_clean_values_or_refuse_without_echoing_the_password(user, password):
    try:
        _clean(validate.username(user))
        assert ":" not in user
    except RelaykitError:
        pass
    try:
        _clean(validate.password(password))
    except RelaykitError as exc:
        # fixed messages: nothing of the value is ever echoed
        assert exc.message in ("password is empty", "password must not contain whitespace, '#' or control characters")


def test_idn_domains_are_stored_as_punycode():
    assert validate.domain("münchen.de") == "xn--mnchen-3ya.de"
    assert validate.domain("MÜNCHEN.DE") == "xn--mnchen-3ya.de"
    assert validate.sender_key("@例え.テスト") == "@xn--r8jz45g.xn--zckzah"
    assert validate.host("bücher.example") == "xn--bcher-kva.example"
    with pytest.raises(RelaykitError, match="internationalized"):
        validate.domain("ü" * 70 + ".de")  # a label longer than 63 once encoded


# -- config file parsers -----------------------------------------------------------------

def prop_every_config_file_parses_or_reports_file_and_line(name, text):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, name)
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        try:
            files = configfiles.load(Path(directory))
        except ConfigError as exc:
            for error in getattr(exc, "errors", [exc]):
                assert str(error).startswith(f"{path}:"), str(error)
            return
    for rule in files.relay_rules:
        _clean(rule.sender)
        for hop in rule.nexthops:
            _clean(hop)
    for cred in files.credentials:
        _clean(cred.key)
        for value in (cred.user, cred.password.reveal()):
            _clean(value, hash_allowed=True)
    for entry in (*files.accounts, *files.aliases):
        _clean(entry.domain)


def prop_relaymap_with_arbitrary_bytes_parses_or_is_refused_naming_the_file(data):
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, configfiles.RELAYMAP).write_bytes(data)
        try:
            configfiles.load(Path(directory))
        except ConfigError as exc:
            assert configfiles.RELAYMAP in str(exc)


# -- settings (environment, *_FILE secrets, dotenv file) ---------------------------------

ENV_VALUES = st.one_of(HOSTS, PORTS, USERS, PASSWORDS, st.sampled_from(["trace", "DEBUG", "hash", "lmdb", "x"]))
ENV_NAMES = ["DEFAULT_RELAY_HOST", "RELAY_HOST", "RELAY_PORT", "RELAY_USER", "RELAY_PASSWORD", "LOG_LEVEL",
             "RELAYKIT_TABLE_TYPE", "RELAYKIT_TLS_SECURE"]


def _distinct(values: dict[str, str], name: str) -> bool:
    """The value of `name` is long enough and appears in no other value or name, so
    finding it in a message means that value leaked."""
    value = values.get(name, "")
    others = [v for k, v in values.items() if k != name] + ENV_NAMES + ["Settings", "PosixPath", "relaykit"]
    return len(value) >= 6 and not value.isalpha() and not any(value in other for other in others)


def prop_settings_load_or_refuse_naming_the_variable(values, env_file_text):
    with tempfile.TemporaryDirectory() as directory:
        environ = {"RELAYKIT_CONFIG_DIR": directory}
        if env_file_text is not None:
            Path(directory, "relaykit.env").write_bytes(env_file_text.encode("utf-8", "surrogateescape"))
        environ.update(values)
        try:
            loaded = relaykit_settings.load(environ)
        except ConfigError as exc:
            where = str(exc.origin)
            assert where in ENV_NAMES or where.startswith(str(Path(directory, "relaykit.env"))), str(exc)
            if _distinct(values, "RELAY_PASSWORD"):
                assert values["RELAY_PASSWORD"] not in str(exc)
            return
        for hop in loaded.default_relay:
            _clean(hop)
        if loaded.relay_password:
            _clean(loaded.relay_password.reveal())
            if _distinct(values, "RELAY_PASSWORD"):
                assert values["RELAY_PASSWORD"] not in repr(loaded)


# -- setup relay ... (the real CLI entry point, in process for speed) --------------------

BASE_RELAYMAP = b"# my relays\n@keep.test   [one.test]:25\n\n  # indented\n@out.test\n"
BASE_SASL = b"@keep.test\tuser:keep-secret\n"
STDIN_PASSWORD = "from-stdin-Zq9"


def _run_setup(directory: str, argv: list[str]) -> tuple[int, str, str]:
    old = os.environ.get("RELAYKIT_CONFIG_DIR")
    os.environ["RELAYKIT_CONFIG_DIR"] = directory
    out, err, stdin = io.StringIO(), io.StringIO(), sys.stdin
    sys.stdin = io.StringIO(STDIN_PASSWORD + "\n")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = setup_cli.main(argv)
    finally:
        sys.stdin = stdin
        if old is None:
            del os.environ["RELAYKIT_CONFIG_DIR"]
        else:
            os.environ["RELAYKIT_CONFIG_DIR"] = old
    return status, out.getvalue(), err.getvalue()


def _snapshot(directory: str) -> dict[str, tuple[bytes, int]]:
    return {name: (Path(directory, name).read_bytes(), stat.S_IMODE(os.stat(Path(directory, name)).st_mode))
            for name in sorted(os.listdir(directory)) if not name.startswith(".")}


COMMANDS = st.one_of(
    st.builds(lambda d, h, p: ["add-domain", d, h, *p], DOMAINS, HOSTS, st.lists(PORTS, max_size=1)),
    st.builds(lambda d, u, p: ["add-auth", d, u, p], DOMAINS, USERS, PASSWORDS),
    st.builds(lambda d: ["exclude-domain", d], DOMAINS),
    st.builds(lambda c, a: [c, *a], st.sampled_from(["add-domain", "add-auth", "exclude-domain"]),
              st.lists(st.text(max_size=8), max_size=5)),
)


def command_key(argv: list[str]) -> str:
    """The key of an accepted `setup relay` command, as the command reads it: add-auth
    also takes a relay ([host]:port)."""
    by_relay = argv[0] == "add-auth" and argv[1].startswith("[")
    return validate.nexthop(argv[1], "relay") if by_relay else validate.route_key(argv[1])


def check_setup_outcome(directory: str, argv: list[str], before, status: int, out: str, err: str) -> None:
    """The contract of one `setup relay` run, whatever its input."""
    after = _snapshot(directory)
    assert status in (0, 1), (argv, status, err)
    password = (argv[3] if len(argv) == 4 else STDIN_PASSWORD) if argv[0] == "add-auth" else ""
    # Unless the password is also in the other arguments, which are printed normalized
    # (a key lower-cased: `add-auth 000A0000 0 000a0000` prints @000a0000 rightly).
    if len(password) >= 8 and not password.isalpha() and password.lower() not in " ".join(argv[:3]).lower():
        assert password not in out + err, "the password was printed"
    if status == 1:
        assert err.startswith("error: ") and len(err.strip()) > len("error:"), err
        assert after == before, f"a refused command changed a file: {argv}"
        return
    if argv[1:2] in (["-h"], ["--help"]):  # the command's help was shown instead
        assert after == before and "Usage:" in out, (argv, out)
        return
    files = configfiles.load(Path(directory))  # whatever was accepted, relaykit reads back
    sender = command_key(argv)
    if argv[0] == "add-domain":
        hop = validate.bracketed(validate.host(argv[2]), validate.port(argv[3] if len(argv) > 3 else "25"))
        assert [r.nexthops for r in files.relay_rules if r.sender == sender] == [(hop,)]
    elif argv[0] == "exclude-domain":
        assert [r.nexthops for r in files.relay_rules if r.sender == sender] == [()]
    else:
        assert [(c.user, c.password.reveal()) for c in files.credentials if c.key == sender] == [(argv[2], password)]
        assert stat.S_IMODE(os.stat(Path(directory, configfiles.SASL_PASSWORD)).st_mode) == 0o600
    # every other entry is still there, byte for byte
    for line in (BASE_RELAYMAP + BASE_SASL).splitlines():
        if line.strip() and not line.lstrip().startswith(b"#") and not line.lower().startswith(sender.encode() + b"\t") \
                and line.split()[0].lower() != sender.encode():
            assert any(line in data for data, _ in after.values()), line


def prop_setup_relay_commands_work_or_refuse_with_exit_1_and_leave_files_untouched(argv):
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, configfiles.RELAYMAP).write_bytes(BASE_RELAYMAP)
        Path(directory, configfiles.SASL_PASSWORD).write_bytes(BASE_SASL)
        os.chmod(Path(directory, configfiles.SASL_PASSWORD), 0o600)
        before = _snapshot(directory)
        status, out, err = _run_setup(directory, ["relay", *argv])
        check_setup_outcome(directory, argv, before, status, out, err)


# -- the tests: each property quick by default, long under the slow marker ----------------
test_validate_domain_accepts_a_clean_idempotent_name_or_refuses, test_validate_domain_accepts_a_clean_idempotent_name_or_refuses_long = fuzz(prop_validate_domain_accepts_a_clean_idempotent_name_or_refuses, DOMAINS)
test_validate_host_accepts_a_clean_idempotent_host_or_refuses, test_validate_host_accepts_a_clean_idempotent_host_or_refuses_long = fuzz(prop_validate_host_accepts_a_clean_idempotent_host_or_refuses, HOSTS)
test_validate_nexthops_accepts_clean_hops_or_refuses, test_validate_nexthops_accepts_clean_hops_or_refuses_long = fuzz(prop_validate_nexthops_accepts_clean_hops_or_refuses, st.one_of(HOSTS, st.builds(lambda h, p: f"{h}:{p}", HOSTS, PORTS), st.text(max_size=30)))
test_validate_port_is_1_to_65535_or_refused, test_validate_port_is_1_to_65535_or_refused_long = fuzz(prop_validate_port_is_1_to_65535_or_refused, PORTS)
test_validate_credentials_accept_clean_values_or_refuse_without_echoing_the_password, test_validate_credentials_accept_clean_values_or_refuse_without_echoing_the_password_long = fuzz(prop_validate_credentials_accept_clean_values_or_refuse_without_echoing_the_password, USERS, PASSWORDS)
test_every_config_file_parses_or_reports_file_and_line, test_every_config_file_parses_or_reports_file_and_line_long = fuzz(prop_every_config_file_parses_or_reports_file_and_line, st.sampled_from([configfiles.RELAYMAP, configfiles.SASL_PASSWORD, configfiles.ACCOUNTS,
                        configfiles.VIRTUAL]), FILE_TEXT)
test_relaymap_with_arbitrary_bytes_parses_or_is_refused_naming_the_file, test_relaymap_with_arbitrary_bytes_parses_or_is_refused_naming_the_file_long = fuzz(prop_relaymap_with_arbitrary_bytes_parses_or_is_refused_naming_the_file, st.binary(max_size=60))
test_settings_load_or_refuse_naming_the_variable, test_settings_load_or_refuse_naming_the_variable_long = fuzz(prop_settings_load_or_refuse_naming_the_variable, st.dictionaries(st.sampled_from(ENV_NAMES), ENV_VALUES.filter(lambda v: "\x00" not in v)),
       st.one_of(st.none(), FILE_TEXT))
test_setup_relay_commands_work_or_refuse_with_exit_1_and_leave_files_untouched, test_setup_relay_commands_work_or_refuse_with_exit_1_and_leave_files_untouched_long = fuzz(prop_setup_relay_commands_work_or_refuse_with_exit_1_and_leave_files_untouched, COMMANDS)
