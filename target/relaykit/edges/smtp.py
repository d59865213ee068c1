"""SMTP client sessions: the relay test (`setup relay test`) and the health probe.

The relay test speaks to a relay as Postfix's SMTP client would, from the route's next
hop itself (model/nexthop.py): implicit TLS or STARTTLS as its mode says, never
credentials before TLS. Each step is printed as it happens; the password is scrubbed
from everything (steps, the relay's replies, errors).
"""

from __future__ import annotations

import smtplib
import socket
import ssl

from relaykit.errors import RelaykitError
from relaykit.model.nexthop import NextHop
from relaykit.model.plan import Login

TIMEOUT = 30.0
HEALTH_TIMEOUT = 5.0


class StepFailed(RelaykitError):
    """A step of the SMTP session failed; the steps printed so far say which."""


class Session:
    """Prints each step as it happens; `scrub` keeps the password out of everything."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret
        self.failed = False

    def scrub(self, text: str) -> str:
        return text.replace(self.secret, "********") if self.secret else text

    def step(self, ok: bool, name: str, detail: str) -> None:
        mark = "ok  " if ok else "FAIL"
        print(f"  {mark} {name:<10} {self.scrub(detail)}", flush=True)

    def reply(self, name: str, code: int, message: bytes | str, expect: tuple[int, ...], note: str = "") -> None:
        text = message.decode(errors="replace") if isinstance(message, bytes) else message
        text = " ".join(text.split())
        ok = code in expect
        self.step(ok, name, f"{code} {text}{note}")
        if not ok:
            raise StepFailed(f"the relay refused {name}: {self.scrub(f'{code} {text}')}")


def tls_context(cafile: str | None, verify: bool) -> ssl.SSLContext:
    if not verify:
        # Postfix's tls_policy level `encrypt` (what relaykit sets for relays) demands
        # encryption without verifying the certificate: this is what Postfix would accept.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=cafile or None)


def _tls_note(sock, verified: bool) -> str:
    version = sock.version() if hasattr(sock, "version") else "?"
    return f" ({version}, certificate {'verified' if verified else 'NOT verified'})"


def _first_line(text: bytes) -> bytes:
    return text.splitlines()[0] if text else b""


def _xoauth2(user: str, token: str):
    """smtplib's authobject for XOAUTH2: the initial response, then an empty answer to the
    error challenge a server sends before its 535 (Gmail's JSON)."""
    def respond(challenge: bytes | None = None) -> str:
        return f"user={user}\x01auth=Bearer {token}\x01\x01" if challenge is None else ""
    return respond


def _login(smtp: smtplib.SMTP, login: Login, password: str | None) -> tuple[int, bytes]:
    if login.oauth2:  # the mechanism Postfix's OAuth2 clients use, and nothing else
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        if "XOAUTH2" not in offered:
            raise smtplib.SMTPException(f"the relay does not offer AUTH XOAUTH2 (it offers {' '.join(offered)})")
        return smtp.auth("XOAUTH2", _xoauth2(login.user, password or ""), initial_response_ok=True)
    return smtp.login(login.user, password)


def _converse(smtp: smtplib.SMTP, out: Session, host: str, port: int, implicit: bool, verified: bool,
              context: ssl.SSLContext, sender: str, recipient: str, login: Login | None,
              password: str | None, data: bytes) -> None:
    """The session Postfix's SMTP client would have with the relay, step by step."""
    try:
        code, banner = smtp.connect(host, port)
    except ssl.SSLCertVerificationError:
        raise
    except (OSError, smtplib.SMTPException) as exc:
        out.step(False, "connect", f"[{host}]:{port}: {exc}")
        raise StepFailed(f"cannot connect to [{host}]:{port}: {exc}") from None
    out.reply("connect", code, banner, (220,), _tls_note(smtp.sock, verified) if implicit else "")
    code, text = smtp.ehlo()
    out.reply("EHLO", code, _first_line(text), (250,))
    if not implicit:
        if not smtp.has_extn("starttls"):
            out.step(False, "STARTTLS", "not offered by the relay")
            raise StepFailed("the relay offers no STARTTLS: relaykit never sends credentials or mail "
                             "to a relay in clear, so Postfix keeps this sender's mail deferred")
        code, text = smtp.starttls(context=context)
        out.reply("STARTTLS", code, text, (220,), _tls_note(smtp.sock, verified))
        code, text = smtp.ehlo()
        out.reply("EHLO", code, _first_line(text), (250,))
    if login is None:
        out.step(True, "AUTH", "skipped: this route has no credentials")
    elif not smtp.has_extn("auth"):
        out.step(False, "AUTH", "not offered by the relay")
        raise StepFailed(f"the relay offers no AUTH, but the route logs in as {login.user}")
    else:
        try:
            code, text = _login(smtp, login, password)
        except smtplib.SMTPAuthenticationError as exc:
            code, text = exc.smtp_code, exc.smtp_error
        except smtplib.SMTPException as exc:  # e.g. no mechanism in common
            out.step(False, "AUTH", str(exc))
            raise StepFailed(f"AUTH as {login.user} failed: {out.scrub(str(exc))}") from None
        how = ", XOAUTH2" if login.oauth2 else ""
        out.reply("AUTH", code, text, (235,), f" (as {login.user}, from {login.origin}{how})")
    code, text = smtp.mail(sender)
    out.reply("MAIL FROM", code, text, (250,))
    code, text = smtp.rcpt(recipient)
    out.reply("RCPT TO", code, text, (250, 251))
    code, text = smtp.data(data)
    out.reply("DATA", code, text, (250,))
    code, text = smtp.quit()
    out.step(True, "QUIT", f"{code} {text.decode(errors='replace')}")


def send(hop: NextHop, sender: str, recipient: str, login: Login | None,
         password: str | None, data: bytes, context: ssl.SSLContext, verified: bool) -> None:
    """One SMTP session with a relay, as Postfix's SMTP client would have it, each step
    printed; StepFailed when a step fails, SSLCertVerificationError to retry unverified."""
    out = Session(password)
    host, port, implicit = hop.host, hop.port or 25, hop.implicit_tls
    helo = socket.gethostname() or "relaykit.localdomain"  # no DNS lookup (smtplib's getfqdn)
    if implicit:
        smtp = smtplib.SMTP_SSL(timeout=TIMEOUT, local_hostname=helo, context=context)
    else:
        smtp = smtplib.SMTP(timeout=TIMEOUT, local_hostname=helo)
    smtp._host = host  # the TLS server name: smtplib sets it only in its constructor
    try:
        _converse(smtp, out, host, port, implicit, verified, context, sender, recipient, login, password, data)
    except ssl.SSLCertVerificationError:
        smtp.close()
        raise
    except StepFailed:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
        raise
    except (OSError, smtplib.SMTPException) as exc:
        smtp.close()
        out.step(False, "session", str(exc))
        raise StepFailed(f"the SMTP session with [{host}]:{port} failed: {out.scrub(str(exc))}") from None


def probe_smtp(host: str, port: int) -> str:
    """The listener's greeting and EHLO reply; RelaykitError saying what went wrong."""
    try:
        with smtplib.SMTP(timeout=HEALTH_TIMEOUT, local_hostname="relaykit-health") as smtp:
            code, banner = smtp.connect(host, port)
            if code != 220:
                raise RelaykitError(f"SMTP [{host}]:{port} greeted with {code} {banner.decode(errors='replace')}")
            code, _ = smtp.ehlo()
            if code != 250:
                raise RelaykitError(f"SMTP [{host}]:{port} answered EHLO with {code}")
            return banner.decode(errors="replace")
    except (OSError, smtplib.SMTPException) as exc:
        raise RelaykitError(f"SMTP [{host}]:{port} does not answer: {exc or type(exc).__name__}") from None
