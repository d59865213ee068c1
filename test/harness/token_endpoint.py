"""A local OAuth2 token endpoint over HTTPS (certificates from the session's trustme CA)
that stands in for Microsoft Entra ID and Google: it issues short-lived random access
tokens, records every request, and can be taken down or have a client secret revoked.

    /<tenant>/v2.0/.well-known/openid-configuration   Entra's OpenID configuration (msal reads it)
    /<tenant>/oauth2/v2.0/token                        client_credentials (secret or certificate)
    /token                                             refresh_token (Google) and client_credentials

`valid(user, token)` is what the XOAUTH2 relay (harness/relays.py) asks: the token was
issued, has not expired, and lets `user` send (the app's mailboxes, or the refresh
token's account). Listening on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from harness.postfix_instance import free_port


@dataclass
class Issued:
    token: str
    client_id: str
    users: frozenset[str]
    expires_at: float


@dataclass
class Request:
    path: str
    grant_type: str | None
    client_id: str | None
    ok: bool
    at: float = field(default_factory=time.time)


class TokenEndpoint:
    def __init__(self, ca, lifetime: float = 3600.0) -> None:
        self.ca = ca
        self.lifetime = lifetime
        self.port = free_port()
        self.apps: dict[str, tuple[str | None, frozenset[str]]] = {}  # client_id -> (secret, mailboxes)
        self.certificates: dict[str, object] = {}  # client_id -> public key (client assertions)
        self.refresh_tokens: dict[str, tuple[str, str]] = {}  # refresh token -> (client_id, user)
        self.issued: dict[str, Issued] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # what the provider knows
    def app(self, client_id: str, secret: str | None, mailboxes: tuple[str, ...]) -> None:
        self.apps[client_id] = (secret, frozenset(mailboxes))

    def app_certificate(self, client_id: str, public_key, mailboxes: tuple[str, ...]) -> None:
        self.apps[client_id] = (None, frozenset(mailboxes))
        self.certificates[client_id] = public_key

    def refresh_token(self, client_id: str, secret: str, refresh_token: str, user: str) -> None:
        self.apps[client_id] = (secret, frozenset())
        self.refresh_tokens[refresh_token] = (client_id, user)

    def revoke(self, client_id: str) -> None:
        """The client secret no longer works, and the tokens issued to it neither."""
        with self.lock:
            self.apps[client_id] = ("revoked-" + secrets.token_hex(8), self.apps[client_id][1])
            for token in [t for t, i in self.issued.items() if i.client_id == client_id]:
                del self.issued[token]

    # what the relay asks
    def valid(self, user: str, token: str) -> bool:
        with self.lock:
            issued = self.issued.get(token)
        return bool(issued) and time.time() < issued.expires_at and user in issued.users

    def tokens_issued(self, client_id: str | None = None) -> list[Issued]:
        with self.lock:
            return [i for i in self.issued.values() if client_id in (None, i.client_id)]

    # the server
    def start(self) -> TokenEndpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path.endswith("/v2.0/.well-known/openid-configuration"):
                    tenant = self.path.split("/")[1]
                    base = f"{endpoint.url}/{tenant}"
                    self._reply(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                                      "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                                      "issuer": f"{base}/v2.0"})
                else:
                    self._reply(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = endpoint._token(self.path, form)
                with endpoint.lock:
                    endpoint.requests.append(Request(self.path, form.get("grant_type"), form.get("client_id"),
                                                     status == 200))
                self._reply(status, body)

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.server.configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, name="token-endpoint", daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: nothing listens on its port any more (connection refused)."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def _token(self, path: str, form: dict[str, str]) -> tuple[int, dict]:
        grant, client_id = form.get("grant_type"), form.get("client_id")
        if client_id not in self.apps:
            return 400, {"error": "unauthorized_client", "error_description": f"unknown client {client_id}"}
        secret, mailboxes = self.apps[client_id]
        if form.get("client_assertion"):
            if not self._assertion_ok(client_id, form["client_assertion"]):
                return 401, {"error": "invalid_client", "error_description": "client assertion invalid"}
        elif form.get("client_secret") != secret:
            return 401, {"error": "invalid_client",
                         "error_description": "AADSTS7000215: Invalid client secret provided."}
        if grant == "client_credentials":
            users = mailboxes
        elif grant == "refresh_token":
            owner = self.refresh_tokens.get(form.get("refresh_token", ""))
            if not owner or owner[0] != client_id:
                return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            users = frozenset({owner[1]})
        else:
            return 400, {"error": "unsupported_grant_type"}
        token = "tok-" + secrets.token_urlsafe(24)
        lifetime = self.lifetime
        with self.lock:
            self.issued[token] = Issued(token, client_id, users, time.time() + lifetime)
        return 200, {"token_type": "Bearer", "access_token": token, "expires_in": int(lifetime)}

    def _assertion_ok(self, client_id: str, assertion: str) -> bool:
        import jwt  # PyJWT, as msal brings it

        key = self.certificates.get(client_id)
        if key is None:
            return False
        try:
            claims = jwt.decode(assertion, key, algorithms=["RS256", "PS256"], options={"verify_aud": False})
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == client_id and claims.get("sub") == client_id
