"""OAuth2 access tokens for XOAUTH2 relays (postfix-oauth2.cf): fetched from the
provider's token endpoint, kept fresh ahead of expiry, handed to the plan.

Postfix's SMTP client does XOAUTH2 through the Cyrus SASL plugin of
libsasl2-modules-kdexoauth2: it sends `user=<user>^Aauth=Bearer <password>^A^A`, so the
"password" in its table must be a current access token. relaykit gets those tokens:

- microsoft: the client-credentials flow of an Entra ID app registration (tenant,
  client_id, client secret or certificate), through msal; scope
  https://outlook.office365.com/.default by default.
- google: a refresh token (client_id, client_secret, refresh_token) through
  requests-oauthlib; token_url https://oauth2.googleapis.com/token by default.
- generic: any token endpoint: the refresh_token grant when a refresh token is given,
  else client credentials (requests-oauthlib).

Both libraries use `requests`, which trusts the CA bundle named by REQUESTS_CA_BUNDLE
(a private CA, a TLS-inspecting proxy) and honours HTTPS_PROXY. They are imported only
here, when a token is needed: `setup`'s commands never pay for them.

Timing (the daemon, TokenKeeper): a token is renewed REFRESH_MARGIN (5 min) before it
expires, or a third of its lifetime before for short-lived tokens. Postfix needs no
reload: its smtp processes notice the changed table and re-open it before their next
delivery, and a session that already read the previous token uses a token that is
still valid for minutes. When the endpoint is down or refuses, the current token is
used while it lasts and the fetch is retried (5 s, doubling to 60 s); once the token
has expired its line leaves the table, and Postfix defers that relay's mail (a lookup
error: see core/routetables.oauth2_password_maps) until a new token comes.

No secret, refresh token or access token is ever logged, passed as an argument or
written anywhere but the 0600 sasl_passwd_oauth2 table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from relaykit import log
from relaykit.errors import RelaykitError
from relaykit.model.entries import OAuth2Credential
from relaykit.record import record
from relaykit.secret import Secret

MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
REFRESH_MARGIN = 300.0  # seconds before expiry (at most a third of the token's lifetime)
RETRY_FIRST, RETRY_MAX = 5.0, 60.0  # after a failed fetch: 5 s, doubling, at most 60 s
TIMEOUT = 15.0  # seconds for one token request
DEFAULT_LIFETIME = 3600.0  # when the endpoint does not say (expires_in)


class TokenError(RelaykitError):
    """The token endpoint could not be reached or refused; the message names it and why."""


@record
class Token:
    """An OAuth2 access token and its validity."""

    value: Secret
    obtained: float  # time.time()
    expires_at: float

    @property
    def lifetime(self) -> float:
        return self.expires_at - self.obtained

    @property
    def refresh_at(self) -> float:
        return self.expires_at - min(REFRESH_MARGIN, self.lifetime / 3)

    def valid(self, now: float | None = None) -> bool:
        return (now or time.time()) < self.expires_at - 1.0


def endpoint(cred: OAuth2Credential) -> str:
    """Where the tokens come from, for messages."""
    if cred.provider == "microsoft":
        return f"{(cred.option('authority') or MICROSOFT_AUTHORITY).rstrip('/')}/{cred.option('tenant')}"
    return cred.option("token_url") or GOOGLE_TOKEN_URL


def _scrub(text: str, cred: OAuth2Credential) -> str:
    for _, secret in cred.secrets:
        text = text.replace(secret.reveal(), "********")
    return " ".join(text.split())[:300]


def fetch(cred: OAuth2Credential) -> Token:
    """One new access token for `cred`; TokenError saying what went wrong (no secret in it)."""
    started = time.time()
    try:
        value, expires_in = (_microsoft if cred.provider == "microsoft" else _oauthlib)(cred)
    except TokenError as exc:
        raise TokenError(_scrub(exc.message, cred)) from None
    except Exception as exc:  # the libraries raise many kinds (requests, oauthlib, ValueError...)
        reason = getattr(exc, "description", None) or str(exc) or type(exc).__name__
        error = getattr(exc, "error", None)
        raise TokenError(_scrub(f"{error}: {reason}" if error else f"{type(exc).__name__}: {reason}", cred)) from None
    return Token(Secret(value), started, started + (float(expires_in) if expires_in else DEFAULT_LIFETIME))


def _microsoft(cred: OAuth2Credential) -> tuple[str, float | None]:
    import msal  # ~150 ms of imports (requests, cryptography): only when a token is needed (test_layers.LAZY)

    if cred.option("certificate"):
        credential = _certificate(cred.option("certificate"))
    else:
        credential = cred.secret("client_secret").reveal()
    # instance_discovery=False: no call to login.microsoftonline.com to validate an authority
    # (a sovereign cloud's, or a test's); the token endpoint comes from the authority's
    # OpenID configuration. A new application (and cache) each time: a fresh token.
    app = msal.ConfidentialClientApplication(cred.option("client_id"), client_credential=credential,
                                             authority=endpoint(cred), instance_discovery=False,
                                             validate_authority=False, timeout=TIMEOUT)
    result = app.acquire_token_for_client(scopes=[cred.option("scope") or MICROSOFT_SCOPE])
    if "access_token" not in result:
        raise TokenError(f"{result.get('error', 'error')}: {result.get('error_description', 'no access token')}")
    return result["access_token"], result.get("expires_in")


def _certificate(path: str) -> dict:
    """msal's certificate credential from one PEM file holding the private key and the
    certificate uploaded to the app registration (its SHA-1 thumbprint identifies it)."""
    from cryptography import x509  # lazy: certificate credentials only (test_layers.LAZY)
    from cryptography.hazmat.primitives import hashes

    try:
        with open(path, "rb") as file:
            pem = file.read()
    except OSError as exc:
        raise TokenError(f"cannot read the certificate {path}: {exc.strerror}") from None
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise TokenError(f"{path} holds no PEM certificate (it must hold the private key and the certificate)") \
            from None
    return {"private_key": pem.decode(), "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),
            "public_certificate": cert.public_bytes(_pem()).decode()}


def _pem():
    from cryptography.hazmat.primitives.serialization import Encoding  # lazy: see _certificate

    return Encoding.PEM


def _oauthlib(cred: OAuth2Credential) -> tuple[str, float | None]:
    from oauthlib.oauth2 import BackendApplicationClient  # lazy, as msal (test_layers.LAZY)
    from requests_oauthlib import OAuth2Session

    url = endpoint(cred)
    client_id = cred.option("client_id")
    secret = cred.secret("client_secret")
    scope = cred.option("scope")
    refresh = cred.secret("refresh_token")
    extra = {"client_secret": secret.reveal()} if secret else {}
    if refresh:
        session = OAuth2Session(client_id, scope=scope.split(",") if scope else None)
        token = session.refresh_token(url, refresh_token=refresh.reveal(), client_id=client_id, timeout=TIMEOUT,
                                      **extra)
    else:
        session = OAuth2Session(client=BackendApplicationClient(client_id=client_id),
                                scope=scope.split(",") if scope else None)
        token = session.fetch_token(url, client_id=client_id, include_client_id=True, timeout=TIMEOUT, **extra)
    if not token.get("access_token"):
        raise TokenError("the endpoint answered without an access token")
    return token["access_token"], token.get("expires_in")


def _describe(cred: OAuth2Credential) -> str:
    return f"oauth2 {cred.key} ({cred.provider}, as {cred.user}, {cred.origin})"


def fetch_once(creds: Iterable[OAuth2Credential]) -> dict[str, Secret]:
    """`relaykit configure` alone: one token for each credential, now; a failure is
    logged (that relay's mail is deferred) and is not fatal."""
    tokens = {}
    for cred in creds:
        try:
            token = fetch(cred)
        except TokenError as exc:
            log.error(f"{_describe(cred)}: no token from {endpoint(cred)}: {exc.message}; "
                      "mail through this relay is deferred until a token can be had (relaykit start keeps trying)")
            continue
        tokens[cred.key] = token.value
        log.info(f"{_describe(cred)}: token from {endpoint(cred)}, valid {token.lifetime:.0f}s")
    return tokens


class TokenKeeper:
    """The daemon's tokens: fetched when a credential appears, renewed ahead of expiry in a
    thread of their own; `on_change()` is called (from that thread) whenever the set of
    current tokens changes, and the daemon then re-applies the plan with `current()`."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self.on_change = on_change
        self.creds: dict[str, OAuth2Credential] = {}
        self.tokens: dict[str, Token] = {}
        self.retry_at: dict[str, float] = {}
        self.failures: dict[str, int] = {}
        self.fetching: set[str] = set()  # keys whose token is being fetched (by sync or the thread)
        self.cond = threading.Condition()
        self.stopped = False
        self.thread: threading.Thread | None = None

    def current(self) -> dict[str, Secret]:
        now = time.time()
        with self.cond:
            return {key: token.value for key, token in self.tokens.items() if token.valid(now)}

    def sync(self, creds: Iterable[OAuth2Credential]) -> dict[str, Secret]:
        """Track exactly these credentials (a changed one starts over); fetch now those that
        were never tried; the current tokens."""
        creds = {c.key: c for c in creds}
        with self.cond:
            for key in list(self.creds):
                if creds.get(key) != self.creds[key]:
                    self.tokens.pop(key, None)
                    self.retry_at.pop(key, None)
                    self.failures.pop(key, None)
            self.creds = creds
            new = [c for key, c in creds.items()
                   if key not in self.tokens and key not in self.retry_at and key not in self.fetching]
            self.fetching.update(c.key for c in new)
        for cred in new:
            self._refresh(cred)
        with self.cond:
            self.cond.notify_all()
        if creds and self.thread is None:
            self.thread = threading.Thread(target=self._run, name="oauth2-tokens", daemon=True)
            self.thread.start()
        return self.current()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def _refresh(self, cred: OAuth2Credential) -> bool:
        """Fetch a token for `cred` (the caller marked it in `fetching`); True when it is one
        (logged either way)."""
        try:
            token = fetch(cred)
        except TokenError as exc:
            with self.cond:
                self.fetching.discard(cred.key)
            return self._failed(cred, exc)
        with self.cond:
            self.fetching.discard(cred.key)
            if self.creds.get(cred.key) != cred:
                return False
            renewed = cred.key in self.tokens
            self.tokens[cred.key] = token
            self.retry_at.pop(cred.key, None)
            recovered = self.failures.pop(cred.key, 0)
        log.info(f"{_describe(cred)}: {'renewed the' if renewed else 'new'} token from {endpoint(cred)}, "
                 f"valid {token.lifetime:.0f}s, renewed in {token.refresh_at - time.time():.0f}s"
                 f"{f' (after {recovered} failed attempt(s))' if recovered else ''}")
        return True

    def _failed(self, cred: OAuth2Credential, exc: TokenError) -> bool:
        """A failed fetch: retry later (5 s, doubling, at most 60 s), and say what it means."""
        with self.cond:
            if self.creds.get(cred.key) != cred:
                return False
            failures = self.failures[cred.key] = self.failures.get(cred.key, 0) + 1
            delay = min(RETRY_FIRST * 2 ** (failures - 1), RETRY_MAX)
            self.retry_at[cred.key] = time.time() + delay
            held = self.tokens.get(cred.key)
        still = (f"the current token is used while it lasts ({held.expires_at - time.time():.0f}s)"
                 if held and held.valid() else
                 "mail through this relay is deferred (never sent without a login or with another one)")
        log.error(f"{_describe(cred)}: no token from {endpoint(cred)}: {exc.message}; {still}; "
                  f"retrying in {delay:.0f}s")
        return False

    def _due(self, now: float) -> tuple[list[OAuth2Credential], list[str], float]:
        """(credentials to fetch now, keys whose token just expired, when to look again)."""
        fetch_now, expired, wake = [], [], now + 3600.0
        for key, cred in self.creds.items():
            if key in self.fetching:
                continue
            token = self.tokens.get(key)
            when = self.retry_at.get(key) or (token.refresh_at if token else now)
            if when <= now:
                fetch_now.append(cred)
            else:
                wake = min(wake, when)
            if token and not token.valid(now):
                expired.append(key)
            elif token:
                wake = min(wake, token.expires_at - 0.5)
        return fetch_now, expired, wake

    def _run(self) -> None:
        while True:
            with self.cond:
                if self.stopped:
                    return
                now = time.time()
                fetch_now, expired, wake = self._due(now)
                for key in expired:
                    log.error(f"{_describe(self.creds[key])}: the token expired and none could be had: "
                              "mail through this relay is deferred until one can")
                    del self.tokens[key]
                if not fetch_now and not expired:
                    self.cond.wait(max(0.05, wake - now))
                    continue
                self.fetching.update(c.key for c in fetch_now)
            changed = bool(expired)
            for cred in fetch_now:
                changed |= self._refresh(cred)
            if changed:
                try:
                    self.on_change()
                except Exception as exc:  # the daemon's queue: never kill the thread
                    log.error(f"oauth2: applying new tokens failed: {exc}")
