"""`setup relay test <sender> <recipient>`: send one real message along the route Postfix
would take for it, and print each SMTP step with the relay's reply, as people debug
relays with swaks.

The route and the login come from the plan (core/routing.resolve), the password from the
plan's sasl_passwd table (the only place it lives besides the user's files). An OAuth2
login (postfix-oauth2.cf) gets a fresh access token from its token endpoint and speaks
AUTH XOAUTH2, as Postfix's OAuth2 client does; the token is never printed either. It follows
relaykit's rule for relays, from the route's next hop itself (model/nexthop.py): TLS first
(STARTTLS, or implicit TLS wherever Postfix speaks it: ports 465/2465 or `smtps:`), no
credentials over a connection that is not encrypted, and the certificate verified where
the hop's level is `secure` (RELAYKIT_TLS_SECURE). The password is never printed: not in
the steps, not in a relay's reply, not in an error.

(Named relay_probe, not relay_test: a module called *_test.py reads as a test.)
"""

from __future__ import annotations

import os
import ssl
import sys
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from relaykit.cli import ui
from relaykit.core.routing import resolve
from relaykit.edges.postfix import Postfix, PostfixError
from relaykit.edges.smtp import StepFailed, send, tls_context
from relaykit.errors import RelaykitError
from relaykit.inputs import validate
from relaykit.model.nexthop import SECURE
from relaykit.model.plan import SASL_PASSWD, Login, Plan
from relaykit.run.configure import routing
from relaykit.run.oauth2 import TokenError, endpoint, fetch


def _password(plan: Plan, login: Login) -> str:
    table = plan.table(SASL_PASSWD)
    prefix = f"{login.key} {login.user}:"
    line = next((line for line in (table.lines if table else ()) if line.startswith(prefix)), None)
    if line is None:  # the plan always writes a login's line: this is a bug, not input
        raise RelaykitError(f"no password for {login.key} in the plan")
    return line[len(prefix):]


def _token(files, login: Login) -> str:
    """A fresh access token for an OAuth2 login, from its token endpoint (printed: where
    from and for how long, never the token)."""
    cred = next(c for c in files.oauth2 if c.key == login.key)
    try:
        token = fetch(cred)
    except TokenError as exc:
        print(f"  FAIL token     from {endpoint(cred)}: {exc.message}", flush=True)
        raise StepFailed(f"no OAuth2 token for {login.user}: {exc.message} (Postfix keeps this mail deferred)") \
            from None
    print(f"  ok   token      from {endpoint(cred)} ({cred.provider}), valid {token.lifetime:.0f}s", flush=True)
    return token.value.reveal()


def _message(sender: str, recipient: str, route: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = sender, recipient
    message["Subject"] = "relaykit relay test"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message.set_content(f"A test message sent by `setup relay test` through {route}.\n"
                        "If you read this, the relay accepted and delivered it.\n")
    return message.as_bytes()


def main(args: list[str]) -> int:
    sender, recipient = validate.address(args[0], "sender"), validate.address(args[1], "recipient")
    settings, files, plan = routing()
    route = resolve(plan, sender, recipient)
    if route.direct:
        raise RelaykitError(f"mail from {sender} is not relayed ({route.origin or 'no relay matches'}): "
                            "Postfix delivers it directly to the recipient's MX; nothing to test")
    hop = route.nexthops[0]
    login = f"{route.login.user} ({route.login.origin})" if route.login else "none"
    oauth2 = bool(route.login and route.login.oauth2)
    if oauth2:
        login += f", XOAUTH2 ({route.login.oauth2})"
    print(f"route: {sender} -> {hop} (rule {route.origin}); login: {login}; TLS required", flush=True)
    if oauth2:
        password = _token(files, route.login)
    else:
        password = _password(plan, route.login) if route.login else None
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
        send(hop, sender, recipient, route.login, password, data, tls_context(cafile, True), True)
    except ssl.SSLCertVerificationError as exc:
        if hop.level == SECURE:
            print(f"  FAIL certificate {exc.verify_message}", flush=True)
            raise StepFailed(f"the certificate of {hop} does not verify, and its tls_policy level is "
                             "'secure' (RELAYKIT_TLS_SECURE): Postfix keeps this mail deferred") from None
        print(f"  warn certificate {exc.verify_message}: retrying as Postfix would "
              "(tls_policy 'encrypt' does not verify certificates)", flush=True)
        send(hop, sender, recipient, route.login, password, data, tls_context(cafile, False), False)
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
