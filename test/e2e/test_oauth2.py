"""OAuth2 (XOAUTH2) relays with real parts: a local HTTPS token endpoint issuing
short-lived tokens (harness/token_endpoint.py), relays that accept AUTH XOAUTH2 only with
a currently valid token for the right user (harness/relays.py), a real Postfix with the
Cyrus XOAUTH2 plugin, and relaykit fetching and refreshing the tokens.

"microsoft" goes through msal (client credentials, its OpenID discovery served by the
endpoint), "google" through requests-oauthlib (refresh token); both trust the test CA
through REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from harness.token_endpoint import TokenEndpoint

pytestmark = pytest.mark.e2e

MS_SECRET = "ms-client-secret-0123456789"
G_SECRET = "google-client-secret-abcdef"
G_REFRESH = "1//google-refresh-token-xyz"
PASSWORD = "password-relay-secret-42"


@pytest.fixture
def endpoint(ca):
    endpoint = TokenEndpoint(ca).start()
    yield endpoint
    endpoint.stop()


def _setup(mailrun, endpoint, *, ms_secret: str = MS_SECRET, password_relay: bool = True):
    """Microsoft 365 by relay (client credentials), Gmail by sender domain (refresh token),
    and a password relay for a third domain, in one configuration."""
    endpoint.app("ms-app", MS_SECRET, ("relay@corp.test",))
    endpoint.refresh_token("g-client", G_SECRET, G_REFRESH, "me@gmail.test")
    m365 = mailrun.relay("m365", xoauth2=endpoint)
    gmail = mailrun.relay("gmail", tls="implicit", xoauth2=endpoint)
    secret_file = mailrun.root / "ms_secret"
    secret_file.write_text(ms_secret + "\n")
    secret_file.chmod(0o600)
    routes = f"@corp.test {m365.nexthop}\n@gmail.test smtps:{gmail.nexthop}\n"
    if password_relay:
        plain = mailrun.relay("plain", users={"pwuser": PASSWORD})
        routes += f"@other.test {plain.nexthop}\n"
        mailrun.write("postfix-sasl-password.cf", f"@other.test pwuser:{PASSWORD}\n").chmod(0o600)
    mailrun.write("postfix-relaymap.cf", routes)
    mailrun.write("postfix-oauth2.cf",
                  f"{m365.nexthop} microsoft relay@corp.test tenant=contoso client_id=ms-app "
                  f"client_secret_file={secret_file} authority={endpoint.url}\n"
                  f"@gmail.test google me@gmail.test client_id=g-client client_secret={G_SECRET} "
                  f"refresh_token={G_REFRESH} token_url={endpoint.url}/token\n").chmod(0o600)
    mailrun.vars["REQUESTS_CA_BUNDLE"] = str(mailrun.ca.ca_file)
    return m365, gmail


def _no_secret_anywhere(mailrun, endpoint, *logs: str) -> None:
    """No client secret, refresh token or access token in a log or any file but the 0600
    token table (and the user's own 0600 inputs)."""
    needles = [MS_SECRET, G_SECRET, G_REFRESH, *(i.token for i in endpoint.issued.values())]
    for text in (*logs, mailrun.postfix.log()):
        assert not [n for n in needles if n in text]
    allowed = {mailrun.root / "ms_secret", mailrun.config_dir / "postfix-oauth2.cf"}
    for path in mailrun.root.rglob("*"):
        if not path.is_file() or path.is_symlink() or path in allowed:
            continue
        data = path.read_bytes()
        if any(n.encode() in data for n in needles):
            assert path.name.startswith("sasl_passwd_oauth2"), path
            assert path.stat().st_mode & 0o077 == 0, f"{path} is {path.stat().st_mode & 0o777:o}"


def _argv_of_everything() -> str:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return "\n".join(out)


def test_configure_fetches_tokens_and_mail_reaches_the_relays_with_xoauth2_over_tls(mailrun, endpoint):
    m365, gmail = _setup(mailrun, endpoint)
    result = mailrun.run("relaykit", "configure")
    mailrun.postfix.start()
    subjects = {sender: mailrun.send(sender) for sender in ("a@corp.test", "me@gmail.test", "b@other.test")}
    got = {sender: mailrun.wait_received(subject) for sender, subject in subjects.items()}
    assert [(r.name, m.login, m.tls) for r, m in got["a@corp.test"]] == [("m365", "relay@corp.test", True)]
    assert [(r.name, m.login, m.tls) for r, m in got["me@gmail.test"]] == [("gmail", "me@gmail.test", True)]
    assert [(r.name, m.login, m.tls) for r, m in got["b@other.test"]] == [("plain", "pwuser", True)]
    # each relay saw exactly its own kind of credential: a valid token, or the password
    assert all(a.ok and a.password.startswith("tok-") for a in m365.auth_attempts + gmail.auth_attempts)
    assert [a.password for r in mailrun.relays if r.name == "plain" for a in r.auth_attempts] == [PASSWORD]
    assert {(r.path, r.grant_type) for r in endpoint.requests} == {
        ("/contoso/oauth2/v2.0/token", "client_credentials"), ("/token", "refresh_token")}
    table = mailrun.postfix.config_dir / "sasl_passwd_oauth2"
    assert table.stat().st_mode & 0o777 == 0o600
    _no_secret_anywhere(mailrun, endpoint, result.stdout, result.stderr)


def test_a_refused_client_secret_defers_the_mail_with_a_clear_log_line(mailrun, endpoint):
    m365, _ = _setup(mailrun, endpoint, ms_secret="wrong-secret-value")
    result = mailrun.run("relaykit", "configure")
    assert "oauth2 [127.0.0.1]" in result.stderr and "invalid_client" in result.stderr
    assert "AADSTS7000215" in result.stderr and "deferred" in result.stderr
    assert "wrong-secret-value" not in result.stderr + result.stdout
    mailrun.postfix.start()
    subject = mailrun.send("a@corp.test")
    ok = mailrun.send("b@other.test")  # the password relay is not affected
    mailrun.wait_received(ok)
    # no token: the key's lookup is an error (oauth2_token_unavailable), the mail waits
    mailrun.postfix.wait_log(r"oauth2_token_unavailable\} lookup error for \"\[127.0.0.1\]")
    mailrun.postfix.wait_log(r"to=<someone@example.net>, relay=127.0.0.1.*status=deferred")
    assert not mailrun.received(subject) and m365.auth_attempts == []  # no AUTH, not even a bad one
    assert [m["sender"] for m in mailrun.postfix.queue()] == ["a@corp.test"]
    assert "status=bounced" not in mailrun.postfix.log()


def test_the_daemon_defers_while_the_endpoint_is_down_and_delivers_once_it_is_back(mailrun, endpoint):
    m365, _ = _setup(mailrun, endpoint, password_relay=False)
    endpoint.stop()
    daemon = mailrun.daemon()
    daemon.wait_log(r"no token from .*contoso.*deferred")
    subject = mailrun.send("a@corp.test")
    mailrun.postfix.wait_log(r"status=deferred")
    assert not mailrun.received(subject)
    endpoint.start()
    daemon.wait_log(r"new token from .*contoso", timeout=30)
    mailrun.postfix.flush()
    got = mailrun.wait_received(subject, timeout=30)
    assert [(r.name, m.login) for r, m in got] == [("m365", "relay@corp.test")]
    assert "status=bounced" not in mailrun.postfix.log()
    _no_secret_anywhere(mailrun, endpoint, daemon.log())
    assert not [n for n in (MS_SECRET, G_SECRET, G_REFRESH) if n in _argv_of_everything()]


def test_tokens_are_renewed_before_expiry_without_a_reload_and_no_message_fails(mailrun, endpoint):
    endpoint.lifetime = 9.0  # renewed 3 s before expiry (a third of the lifetime)
    m365, gmail = _setup(mailrun, endpoint, password_relay=False)
    daemon = mailrun.daemon()
    subjects, started = [], time.monotonic()
    while time.monotonic() - started < 16:  # at least two renewals of each token
        subjects += [mailrun.send("a@corp.test"), mailrun.send("me@gmail.test")]
        time.sleep(0.5)
    for subject in subjects:
        mailrun.wait_received(subject, timeout=30)
    used = {a.password for a in m365.auth_attempts + gmail.auth_attempts}
    assert all(a.ok for a in m365.auth_attempts + gmail.auth_attempts)
    assert len(endpoint.tokens_issued("ms-app")) >= 3 and len(endpoint.tokens_issued("g-client")) >= 3
    assert len(used) >= 4  # the relays saw the renewed tokens, not only the first ones
    assert "renewed the token" in daemon.log()
    assert "reloaded postfix" not in daemon.log()  # a token needs no Postfix reload
    assert "status=deferred" not in mailrun.postfix.log() and "status=bounced" not in mailrun.postfix.log()
    _no_secret_anywhere(mailrun, endpoint, daemon.log())


def test_setup_adds_oauth2_from_stdin_and_list_explain_and_relay_test_speak_xoauth2(mailrun, endpoint):
    endpoint.app("ms-app", MS_SECRET, ("relay@corp.test",))
    m365 = mailrun.relay("m365", xoauth2=endpoint)
    mailrun.vars["REQUESTS_CA_BUNDLE"] = str(mailrun.ca.ca_file)
    mailrun.run("setup", "relay", "add-domain", "corp.test", "127.0.0.1", str(m365.port))
    refused = mailrun.run("setup", "relay", "add-oauth2", m365.nexthop, "microsoft", "relay@corp.test",
                          "tenant=contoso", "client_id=ms-app", f"client_secret={MS_SECRET}", check=False)
    assert refused.returncode == 1 and "never given as an argument" in refused.stderr
    mailrun.run("setup", "relay", "add-oauth2", m365.nexthop, "microsoft", "relay@corp.test", "tenant=contoso",
                "client_id=ms-app", f"authority={endpoint.url}", input=f"client_secret={MS_SECRET}\n")
    path = mailrun.config_dir / "postfix-oauth2.cf"
    assert path.stat().st_mode & 0o777 == 0o600 and MS_SECRET in path.read_text()

    listed = mailrun.run("setup", "relay", "list", "--json")
    row = next(r for r in __import__("json").loads(listed.stdout) if r["sender"] == "@corp.test")
    assert (row["user"], row["password"], row["oauth2"]) == ("relay@corp.test", "********", "microsoft")
    explained = mailrun.run("setup", "relay", "explain", "a@corp.test").stdout
    assert "relaykit_oauth2" in explained and "XOAUTH2" in explained

    tested = mailrun.run("setup", "relay", "test", "a@corp.test", "x@example.net")
    assert "ok   token" in tested.stdout and "XOAUTH2" in tested.stdout and "235" in tested.stdout
    assert [(m.login, m.tls) for m in m365.messages] == [("relay@corp.test", True)]
    assert [a.ok for a in m365.auth_attempts] == [True]
    issued = [i.token for i in endpoint.issued.values()]
    for text in (listed.stdout, explained, tested.stdout, tested.stderr):
        assert MS_SECRET not in text and not [t for t in issued if t in text]

    endpoint.revoke("ms-app")  # a refused secret: the test says so, and why
    failed = mailrun.run("setup", "relay", "test", "a@corp.test", "x@example.net", check=False)
    assert failed.returncode == 1 and "invalid_client" in failed.stdout + failed.stderr
    mailrun.run("setup", "relay", "del-oauth2", m365.nexthop)
    assert m365.nexthop not in path.read_text()


def test_a_secret_revoked_while_running_defers_mail_until_the_provider_takes_it_again(mailrun, endpoint):
    endpoint.lifetime = 6.0  # renewed 2 s before expiry
    m365, _ = _setup(mailrun, endpoint, password_relay=False)
    mailrun.postfix.postconf({"smtp_sasl_auth_soft_bounce": "no"})  # relaykit's clients say yes anyway
    daemon = mailrun.daemon()
    mailrun.wait_received(mailrun.send("a@corp.test"))
    endpoint.revoke("ms-app")  # the secret and the tokens issued with it stop working
    subject = mailrun.send("a@corp.test")
    mailrun.postfix.wait_log(r"SASL authentication failed.*status=deferred|status=deferred.*SASL authentication")
    daemon.wait_log(r"no token from .*invalid_client: AADSTS7000215", timeout=20)
    assert not mailrun.received(subject)
    endpoint.app("ms-app", MS_SECRET, ("relay@corp.test",))  # the admin fixes it at the provider
    daemon.wait_log(r"token from .*contoso.*after \d+ failed attempt", timeout=30)
    mailrun.postfix.flush()
    assert [(r.name, m.login) for r, m in mailrun.wait_received(subject, timeout=30)] == [("m365", "relay@corp.test")]
    assert "status=bounced" not in mailrun.postfix.log()
    _no_secret_anywhere(mailrun, endpoint, daemon.log())


def test_a_microsoft_certificate_credential_signs_its_own_assertion(mailrun, endpoint, tmp_path):
    import trustme
    from cryptography import x509

    app_cert = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("relaykit-app.corp.test",
                                                                    key_type=trustme.KeyType.RSA)
    pem = tmp_path / "app.pem"
    pem.write_bytes(app_cert.private_key_pem.bytes() + app_cert.cert_chain_pems[0].bytes())
    pem.chmod(0o600)
    public_key = x509.load_pem_x509_certificate(app_cert.cert_chain_pems[0].bytes()).public_key()
    endpoint.app_certificate("cert-app", public_key, ("relay@corp.test",))
    m365 = mailrun.relay("m365", xoauth2=endpoint)
    mailrun.vars["REQUESTS_CA_BUNDLE"] = str(mailrun.ca.ca_file)
    mailrun.write("postfix-relaymap.cf", f"@corp.test {m365.nexthop}\n")
    mailrun.run("setup", "relay", "add-oauth2", m365.nexthop, "microsoft", "relay@corp.test", "tenant=contoso",
                "client_id=cert-app", f"certificate={pem}", f"authority={endpoint.url}")
    tested = mailrun.run("setup", "relay", "test", "a@corp.test", "x@example.net")
    assert "ok   token" in tested.stdout and [m.login for m in m365.messages] == ["relay@corp.test"]
    assert [(r.grant_type, r.ok) for r in endpoint.requests] == [("client_credentials", True)]
