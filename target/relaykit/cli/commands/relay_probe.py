"""`setup relay test <sender> <recipient>`: send one real message along the route Postfix
would take for it, and print each SMTP step with the relay's reply, as people debug
relays with swaks.

The route and the login come from the plan (core/routing.resolve), the password from the
plan's sasl_passwd table (the only place it lives besides the user's files). It follows
relaykit's rule for relays, from the route's next hop itself (model/nexthop.py): TLS first
(STARTTLS, or implicit TLS wherever Postfix speaks it: ports 465/2465 or `smtps:`), no
credentials over a connection that is not encrypted, and the certificate verified where
the hop's level is `secure` (RELAYKIT_TLS_SECURE). The password is never printed: not in
the steps, not in a relay's reply, not in an error.

(Named relay_probe, not relay_test: a module called *_test.py reads as a test.)
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import sys
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from relaykit.cli import ui
from relaykit.core.routing import resolve
from relaykit.edges.postfix import Postfix, PostfixError
from relaykit.errors import RelaykitError
from relaykit.inputs import validate
from relaykit.model.nexthop import SECURE, NextHop
from relaykit.model.plan import SASL_PASSWD, Login, Plan
from relaykit.run.configure import routing

TIMEOUT = 30.0


class StepFailed(RelaykitError):
    """A step of the SMTP session failed; the steps printed so far say which."""


def _password(plan: Plan, login: Login) -> str:
    table = plan.table(SASL_PASSWD)
    prefix = f"{login.key} {login.user}:"
    line = next((line for line in (table.lines if table else ()) if line.startswith(prefix)), None)
    if line is None:  # the plan always writes a login's line: this is a bug, not input
        raise RelaykitError(f"no password for {login.key} in the plan")
    return line[len(prefix):]


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


def _message(sender: str, recipient: str, route: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = sender, recipient
    message["Subject"] = "relaykit relay test"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message.set_content(f"A test message sent by `setup relay test` through {route}.\n"
                        "If you read this, the relay accepted and delivered it.\n")
    return message.as_bytes()


def _tls_context(cafile: str | None, verify: bool) -> ssl.SSLContext:
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
            code, text = smtp.login(login.user, password)
        except smtplib.SMTPAuthenticationError as exc:
            code, text = exc.smtp_code, exc.smtp_error
        except smtplib.SMTPException as exc:  # e.g. no mechanism in common
            out.step(False, "AUTH", str(exc))
            raise StepFailed(f"AUTH as {login.user} failed: {out.scrub(str(exc))}") from None
        out.reply("AUTH", code, text, (235,), f" (as {login.user}, from {login.origin})")
    code, text = smtp.mail(sender)
    out.reply("MAIL FROM", code, text, (250,))
    code, text = smtp.rcpt(recipient)
    out.reply("RCPT TO", code, text, (250, 251))
    code, text = smtp.data(data)
    out.reply("DATA", code, text, (250,))
    code, text = smtp.quit()
    out.step(True, "QUIT", f"{code} {text.decode(errors='replace')}")


def _session(hop: NextHop, sender: str, recipient: str, login: Login | None,
             password: str | None, data: bytes, context: ssl.SSLContext, verified: bool) -> None:
    """One SMTP session; StepFailed when a step fails, SSLCertVerificationError to retry."""
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


def main(args: list[str]) -> int:
    sender, recipient = validate.address(args[0], "sender"), validate.address(args[1], "recipient")
    settings, _, plan = routing()
    route = resolve(plan, sender, recipient)
    if route.direct:
        raise RelaykitError(f"mail from {sender} is not relayed ({route.origin or 'no relay matches'}): "
                            "Postfix delivers it directly to the recipient's MX; nothing to test")
    hop = route.nexthops[0]
    password = _password(plan, route.login) if route.login else None
    login = f"{route.login.user} ({route.login.origin})" if route.login else "none"
    print(f"route: {sender} -> {hop} (rule {route.origin}); login: {login}; TLS required", flush=True)
    if len(route.nexthops) > 1:
        print(f"  (testing the first of {len(route.nexthops)} relays: {', '.join(route.nexthops)})")
    if not hop.bracketed:
        print(f"  ({hop} is not in brackets: Postfix would use the MX records of {hop.host}; "
              "testing the host itself)")
    if hop.implicit_tls:
        print(f"  (port {hop.port}: implicit TLS from the first byte)" if hop.written == hop
              else "  (smtps: implicit TLS from the first byte)")
    cafile = _ca_file(settings.mail_config)
    data = _message(sender, recipient, hop)
    started = time.monotonic()
    try:
        _session(hop, sender, recipient, route.login, password, data, _tls_context(cafile, True), True)
    except ssl.SSLCertVerificationError as exc:
        if hop.level == SECURE:
            print(f"  FAIL certificate {exc.verify_message}", flush=True)
            raise StepFailed(f"the certificate of {hop} does not verify, and its tls_policy level is "
                             "'secure' (RELAYKIT_TLS_SECURE): Postfix keeps this mail deferred") from None
        print(f"  warn certificate {exc.verify_message}: retrying as Postfix would "
              "(tls_policy 'encrypt' does not verify certificates)", flush=True)
        _session(hop, sender, recipient, route.login, password, data, _tls_context(cafile, False), False)
    ui.ok(f"the relay accepted the test message in {time.monotonic() - started:.2f} s")
    return 0


def _ca_file(mail_config) -> str | None:
    """The CA bundle Postfix's SMTP client uses (smtp_tls_CAfile), if it has one."""
    try:
        value = Postfix(mail_config).param("smtp_tls_CAfile")
    except PostfixError:
        return None
    return value if value and os.path.isfile(value) else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
