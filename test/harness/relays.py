"""Local capture relays: real SMTP servers (aiosmtpd) with STARTTLS or implicit TLS and
AUTH PLAIN/LOGIN (or AUTH XOAUTH2 with tokens of a harness/token_endpoint.py, as
Microsoft 365 and Gmail), that record every message with who logged in and over what.

They stand in for Amazon SES, Mailgun, a company smarthost...: listening on 127.0.0.1
only, with certificates from a private CA made by `trustme` for the test session.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword, Session

from harness.postfix_instance import free_port


@dataclass
class Received:
    relay: str
    mail_from: str
    rcpt_tos: list[str]
    login: str | None  # the user that authenticated, None when none did
    tls: bool
    data: bytes
    helo: str | None = None  # the name the client gave in HELO/EHLO
    at: float = 0.0  # time.monotonic() when the message was taken


@dataclass
class AuthAttempt:
    relay: str
    login: str
    password: str
    ok: bool
    tls: bool


class CertificateAuthority:
    """One private CA per test session; server certificates for loopback names."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.server = self.ca.issue_cert("127.0.0.1", "localhost", "relay.test", "*.relay.test")
        self.cert_file = self.directory / "server.pem"
        self.key_file = self.directory / "server.key"
        self.server.cert_chain_pems[0].write_to_path(str(self.cert_file))
        for extra in self.server.cert_chain_pems[1:]:
            extra.write_to_path(str(self.cert_file), append=True)
        self.server.private_key_pem.write_to_path(str(self.key_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(context)
        return context


class _Handler:
    def __init__(self, relay: CaptureRelay) -> None:
        self.relay = relay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.relay.rcpt_reply:
            return self.relay.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.relay.drop_data:
            # The whole message came in; the connection dies before the final reply: the
            # client cannot know whether it was taken (Postfix: "lost connection ... while
            # sending end of data -- message may be sent more than once"). Not recorded.
            with self.relay.lock:
                self.relay.dropped += 1
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        if self.relay.data_reply:
            return self.relay.data_reply
        if self.relay.hold:  # a slow relay: deliveries overlap, so their number shows
            with self.relay.lock:
                self.relay.in_data += 1
                self.relay.max_in_data = max(self.relay.max_in_data, self.relay.in_data)
            await asyncio.sleep(self.relay.hold)
            with self.relay.lock:
                self.relay.in_data -= 1
        login = session.auth_data.login.decode() if session.authenticated and session.auth_data else None
        received = Received(self.relay.name, envelope.mail_from, list(envelope.rcpt_tos), login,
                            self.relay.secure(session), envelope.content, session.host_name, time.monotonic())
        with self.relay.lock:
            self.relay.messages.append(received)
        return "250 2.0.0 Ok: queued"


class _Session(Session):
    """aiosmtpd 1.4 itself still sets the deprecated `login_data` after every successful
    AUTH, even with the current authenticator/AuthResult API used here, and warns
    ("Session.login_data is deprecated") each time. We read `auth_data`; keep the legacy
    attribute quiet."""

    @property
    def login_data(self):
        return self._login_data

    @login_data.setter
    def login_data(self, value) -> None:
        self._login_data = value
class _XOAuth2Handler(_Handler):
    """AUTH XOAUTH2 only: `user=<user>^Aauth=Bearer <token>^A^A`, the token checked with the
    token endpoint (issued, unexpired, for this user), as Exchange Online does."""

    async def auth_XOAUTH2(self, server, args):
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        fields = dict(part.split("=", 1) for part in blob.decode(errors="replace").split("\x01") if "=" in part)
        user, auth = fields.get("user", ""), fields.get("auth", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        ok = bool(token) and self.relay.xoauth2.valid(user, token)
        with self.relay.lock:
            self.relay.auth_attempts.append(AuthAttempt(self.relay.name, user, token, ok,
                                                        self.relay.secure(server.session)))
        if not ok:
            await server.push("535 5.7.3 Authentication unsuccessful")
            return AuthResult(success=False, handled=True)
        return AuthResult(success=True, auth_data=LoginPassword(user.encode(), token.encode()))


class _SMTP(SMTP):
    """aiosmtpd's server, able to die in the middle of a message (CaptureRelay.drop_mid_data)."""

    def __init__(self, relay: CaptureRelay, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.relay = relay

    def _create_session(self) -> Session:
        return _Session(self.loop)
    def connection_made(self, transport) -> None:
        if self.transport is None:  # a new connection, not its STARTTLS (called again then)
            with self.relay.lock:
                self.relay.connections += 1
                self.relay.max_connections = max(self.relay.max_connections, self.relay.connections)
        super().connection_made(transport)

    def connection_lost(self, exc) -> None:
        if self.transport is not None:  # once (aiosmtpd may call it again after a TLS failure)
            with self.relay.lock:
                self.relay.connections -= 1
        super().connection_lost(exc)

    async def smtp_DATA(self, arg: str) -> None:
        if not (self.relay.drop_mid_data and self.envelope and self.envelope.rcpt_tos and not arg):
            return await super().smtp_DATA(arg)
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        await self._reader.readuntil(b"\r\n")  # the first line of the message arrives...
        with self.relay.lock:
            self.relay.dropped += 1
        self.transport.abort()  # ...and the connection is gone


class _Controller(Controller):
    def __init__(self, relay: CaptureRelay, *args, **kwargs) -> None:
        self.relay = relay
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        return _SMTP(self.relay, self.handler, **self.SMTP_kwargs)


class CaptureRelay:
    """tls: "starttls", "implicit" (TLS from the first byte, as on port 465) or "none".
    users: the accounts AUTH accepts; None means no AUTH is offered."""

    def __init__(self, name: str, ca: CertificateAuthority, *, tls: str = "starttls",
                 users: dict[str, str] | None = None, port: int | None = None, host: str = "127.0.0.1",
                 xoauth2=None) -> None:
        """xoauth2: a harness.token_endpoint.TokenEndpoint: AUTH XOAUTH2 (only), its tokens."""
        self.name, self.ca, self.tls, self.users, self.host = name, ca, tls, users, host
        self.xoauth2 = xoauth2
        self.port = port or free_port()
        self.messages: list[Received] = []
        self.auth_attempts: list[AuthAttempt] = []
        self.lock = threading.Lock()
        self.rcpt_reply: str | None = None  # e.g. "451 4.3.0 try later" to refuse
        self.data_reply: str | None = None
        self.drop_data = False  # abort the connection at the end of DATA, before replying
        self.drop_mid_data = False  # abort it after the first line of the message
        self.dropped = 0
        self.hold = 0.0  # seconds each message waits before its final reply
        self.in_data = self.max_in_data = 0  # deliveries in DATA now, and at most at once
        self.connections = self.max_connections = 0  # open SMTP connections, now and at most
        self.controller: Controller | None = None

    @property
    def nexthop(self) -> str:
        return f"[127.0.0.1]:{self.port}"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        ok = bool(self.users) and self.users.get(login) == password
        with self.lock:
            self.auth_attempts.append(AuthAttempt(self.name, login, password, ok, self.secure(session)))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def secure(self, session) -> bool:
        """TLS on this session: after STARTTLS (session.ssl), or from the first byte."""
        return session.ssl is not None or self.tls == "implicit"

    def start(self) -> CaptureRelay:
        kwargs: dict = {}
        if self.xoauth2 is not None:
            kwargs.update(auth_exclude_mechanism=["PLAIN", "LOGIN"], auth_require_tls=self.tls == "starttls")
        elif self.users is not None:
            # aiosmtpd's auth_require_tls only knows STARTTLS; an implicit-TLS session is
            # encrypted already, and a "none" relay offers AUTH in clear (a trap for clients).
            kwargs.update(authenticator=self._authenticate, auth_require_tls=self.tls == "starttls")
        if self.tls == "starttls":
            kwargs.update(tls_context=self.ca.server_context(), require_starttls=False)
        elif self.tls == "implicit":
            kwargs.update(ssl_context=self.ca.server_context())
        handler = _XOAuth2Handler(self) if self.xoauth2 is not None else _Handler(self)
        self.controller = _Controller(self, handler, hostname=self.host, port=self.port,
                                     server_hostname="relay.test", ready_timeout=10, **kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"relay {self.name} got {len(self.messages)} of {count} messages")
            time.sleep(0.05)
        return self.messages


@dataclass
class RelaySet:
    relays: dict[str, CaptureRelay] = field(default_factory=dict)

    def __getitem__(self, name: str) -> CaptureRelay:
        return self.relays[name]

    def who_got(self, subject_or_sender: str) -> list[Received]:
        return [m for r in self.relays.values() for m in r.messages
                if m.mail_from == subject_or_sender or subject_or_sender.encode() in m.data]

    def stop(self) -> None:
        for relay in self.relays.values():
            relay.stop()
