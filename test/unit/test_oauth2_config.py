"""OAuth2 (XOAUTH2) credentials: postfix-oauth2.cf parsing (file:line errors, no secret in
a readable file), the plan (XOAUTH2-only client transports that defer without a token,
password relays unchanged), and the refresh margin."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaykit.core.plan import build, with_tokens
from relaykit.errors import ConfigError, ConfigErrors
from relaykit.inputs import dmsfiles, validate
from relaykit.model.entries import ConfigFiles, Credential, Origin, RelayRule
from relaykit.model.settings import Settings
from relaykit.run.oauth2 import REFRESH_MARGIN, Token
from relaykit.secret import Secret

M365 = "[smtp.office365.com]:587"
LINE = f"{M365} microsoft relay@corp.test tenant=contoso client_id=app client_secret=s3cr3t-value\n"


def _load(tmp_path: Path, text: str, mode: int = 0o600):
    path = tmp_path / "postfix-oauth2.cf"
    path.write_text(text)
    path.chmod(mode)
    return dmsfiles.load_oauth2(tmp_path)


def test_a_microsoft_line_parses_into_options_and_a_masked_secret(tmp_path):
    [cred] = _load(tmp_path, LINE)
    assert (cred.key, cred.provider, cred.user) == (M365, "microsoft", "relay@corp.test")
    assert cred.option("tenant") == "contoso" and cred.secret("client_secret").reveal() == "s3cr3t-value"
    assert "s3cr3t" not in repr(cred) and cred.inline


def test_a_secret_in_a_file_others_can_read_is_refused_with_file_and_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "# comment\n" + LINE, mode=0o644)
    assert str(info.value.origin).endswith("postfix-oauth2.cf:2") and "chmod 600" in info.value.message
    assert "s3cr3t" not in str(info.value)


def test_secrets_by_file_are_read_and_the_file_may_then_be_readable(tmp_path):
    (tmp_path / "secret").write_text("from-a-file\n")
    [cred] = _load(tmp_path, f"@gmail.test google me@gmail.test client_id=c client_secret_file={tmp_path}/secret "
                             f"refresh_token_file={tmp_path}/secret\n", mode=0o644)
    assert cred.secret("refresh_token").reveal() == "from-a-file" and not cred.inline


@pytest.mark.parametrize("line, message", [
    (f"{M365} azure u@x.test tenant=t client_id=c client_secret=s", "unknown OAuth2 provider 'azure'"),
    (f"{M365} microsoft u@x.test client_id=c client_secret=s", "missing tenant"),
    (f"{M365} microsoft u@x.test tenant=t client_id=c", "missing client_secret (or certificate)"),
    (f"{M365} microsoft u@x.test tenant=t client_id=c client_secret=s certificate=/c.pem", "not both"),
    (f"{M365} generic u@x.test token_url=http://idp.test/token client_id=c", "https:// URL"),
    (f"{M365} generic u@x.test token_url=https://idp.test/token client_id=c colour=blue", "unknown field 'colour'"),
    (f"{M365} google u@x.test client_id=c client_secret=s refresh_token_file=/nonexistent", "cannot read"),
    ("@.corp.test generic u@x.test token_url=https://idp.test/t client_id=c", "not @.domain"),
    (f"{M365} microsoft", "expected '<@domain|[host]:port> <provider> <user>"),
])
def test_bad_lines_are_refused_with_file_line_and_what_is_wrong(tmp_path, line, message):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, line + "\n")
    assert message in info.value.message and str(info.value.origin).endswith(":1")


def test_every_bad_line_is_reported_at_once(tmp_path):
    with pytest.raises(ConfigErrors) as info:
        _load(tmp_path, f"{M365} azure u@x.test\n@a.test google u@a.test client_id=c\n")
    assert [str(e.origin)[-1] for e in info.value.errors] == ["1", "2"]


def _plan(tmp_path: Path, oauth2_text: str, relays, creds=(), **settings):
    path = tmp_path / "postfix-oauth2.cf"
    path.write_text(oauth2_text)
    path.chmod(0o600)
    o = Origin("relaymap", 1)
    files = ConfigFiles(
        relay_rules=tuple(RelayRule(s, validate.relay_list(h), o) for s, h in relays),
        credentials=tuple(Credential(k if "@" in k else validate.nexthop(k), u, Secret(p), o) for k, u, p in creds),
        relaymap_exists=True, sasl_exists=bool(creds), oauth2=dmsfiles.load_oauth2(tmp_path))
    return build(Settings(**settings), files, "lmdb")


def test_an_oauth2_relay_gets_the_xoauth2_client_and_a_password_relay_keeps_smtp(tmp_path):
    plan = _plan(tmp_path, LINE, [("@corp.test", M365), ("@other.test", "[mail.other.test]:587")],
                 creds=[("@other.test", "pw", "password")])
    transports = dict(line.split() for line in plan.table("sender_transport").lines)
    assert transports == {"@corp.test": f"relaykit_oauth2:{M365}", "@other.test": "smtp:[mail.other.test]:587"}
    [service] = [s for s in plan.services if s.name == "relaykit_oauth2"]
    options = dict(service.options)
    assert options["smtp_sasl_mechanism_filter"] == "xoauth2"
    assert options["smtp_sasl_password_maps"] == (
        f"lmdb:{Path('/etc/postfix/sasl_passwd_oauth2')},"
        f"pipemap:{{lmdb:{Path('/etc/postfix/sasl_passwd_oauth2_keys')},fail:oauth2_token_unavailable}}")
    assert plan.params["smtp_sasl_mechanism_filter"] == "!xoauth2, static:all"  # passwords never as tokens
    assert plan.table("sasl_passwd").lines == ("@other.test pw:password",)  # no OAuth2 secret there
    assert plan.table("sasl_passwd_oauth2").lines == () and plan.table("sasl_passwd_oauth2").secret
    assert plan.table("sasl_passwd_oauth2_keys").lines == (f"{M365} microsoft",)
    assert [(l.key, l.oauth2) for l in plan.logins] == [("@other.test", None), (M365, "microsoft")]


def test_with_tokens_writes_one_line_per_current_token_and_none_for_a_missing_one(tmp_path):
    plan = _plan(tmp_path, LINE + "@gmail.test google me@gmail.test client_id=c client_secret=s refresh_token=r\n",
                 [("@corp.test", M365), ("@gmail.test", "[smtp.gmail.com]:587")])
    table = with_tokens(plan, {M365: Secret("tok-1")}).table("sasl_passwd_oauth2")
    assert table.lines == (f"{M365} relay@corp.test:tok-1",)


def test_token_tables_stay_indexed_when_the_other_tables_are_texthash(tmp_path):
    path = tmp_path / "postfix-oauth2.cf"
    path.write_text(LINE)
    path.chmod(0o600)
    files = ConfigFiles(relay_rules=(RelayRule("@corp.test", validate.relay_list(M365), Origin("r", 1)),),
                        relaymap_exists=True, oauth2=dmsfiles.load_oauth2(tmp_path))
    plan = build(Settings(), files, "texthash")
    assert plan.table("sasl_passwd_oauth2").kind == "lmdb" and plan.table("sasl_passwd").kind is None
    [service] = [s for s in plan.services if s.name == "relaykit_oauth2"]
    assert dict(service.options)["smtp_sasl_password_maps"].startswith("lmdb:")


def test_a_default_relay_with_oauth2_makes_the_xoauth2_client_the_default_transport(tmp_path):
    plan = _plan(tmp_path, LINE, [], default_relay_host=M365, default_relay_hops=(validate.nexthop(M365),))
    assert plan.params["default_transport"] == "relaykit_oauth2"


def test_a_key_with_a_password_and_an_oauth2_credential_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="has credentials at"):
        _plan(tmp_path, LINE, [("@corp.test", M365)], creds=[(M365, "u", "p")])


def test_a_failover_list_mixing_passwords_and_tokens_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="some with a password and some with OAuth2"):
        _plan(tmp_path, LINE, [("@corp.test", f"{M365},[backup.test]:587")], creds=[("[backup.test]:587", "u", "p")])


def test_tokens_are_renewed_five_minutes_ahead_or_a_third_of_a_short_lifetime():
    hour = Token(Secret("t"), 1000.0, 4600.0)
    assert hour.expires_at - hour.refresh_at == REFRESH_MARGIN == 300
    short = Token(Secret("t"), 1000.0, 1009.0)
    assert short.expires_at - short.refresh_at == pytest.approx(3.0)


def test_a_limit_on_an_oauth2_relay_is_refused_not_dropped(tmp_path):
    from relaykit.record import replace

    from relaykit.model.entries import RelayLimit

    path = tmp_path / "postfix-oauth2.cf"
    path.write_text(LINE)
    path.chmod(0o600)
    limit = RelayLimit(validate.nexthop(M365), "1/s", 1, None, Origin("postfix-relay-limits.cf", 2))
    files = ConfigFiles(relay_rules=(RelayRule("@corp.test", validate.relay_list(M365), Origin("relaymap", 1)),),
                        relaymap_exists=True, oauth2=dmsfiles.load_oauth2(tmp_path), relay_limits=(limit,))
    with pytest.raises(ConfigError, match="logs in with OAuth2.*limits are not supported") as caught:
        build(Settings(), files, "lmdb")
    assert str(caught.value.origin) == "postfix-relay-limits.cf:2"
    other = replace(limit, hop=validate.nexthop("[mail.other.test]:587"))
    build(Settings(), replace(files, relay_limits=(other,)), "lmdb")  # a limit elsewhere is fine
