"""Submission for users: ports 587 (STARTTLS) and 465 (implicit TLS), Dovecot SASL, no
open relay, no sender spoofing. Pure: settings + parsed entries -> Plan. The environment's
part is in inputs/settings.py; reading the container's interfaces and making a
self-signed certificate are edges (edges/system.py).

What Postfix ends up with (postconf(5), master(5), SASL_README):
- master.cf `submission` and `submissions`: smtpd with TLS required (`encrypt`, or the
  TLS wrapper on 465), SASL offered, and every restriction `permit_sasl_authenticated,
  reject`: an unauthenticated client there can do nothing.
- `smtpd_tls_auth_only = yes`: AUTH is never offered before STARTTLS, so a password never
  crosses the network in clear, whatever the port.
- `smtpd_sasl_type = dovecot`, `smtpd_sasl_path = private/auth`: Dovecot (edges/dovecot.py)
  checks the passwords of postfix-accounts.cf (or of the database store's users) through
  a socket in Postfix's queue dir.
- Port 25 relays for trusted networks only: `mynetworks` is the container's own loopback
  address plus PERMIT_NETWORKS / PERMIT_DOCKER; main.cf's smtpd_relay_restrictions
  (permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination) do the rest,
  and SASL is not offered on port 25 at all.
- `smtpd_sender_login_maps` -> `sender_login`: who may use which envelope sender. An
  account owns its own address; an alias of postfix-virtual.cf is owned by its targets
  (DMS's SPOOF_PROTECTION semantics; a catch-all `@domain` gives its targets the whole
  domain). `reject_sender_login_mismatch` refuses anything else with 553.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from relaykit.core.dovecot import render_passwd
from relaykit.model.entries import ConfigFiles
from relaykit.model.plan import Plan, Service, Table, combine
from relaykit.model.settings import Settings, SubmissionSettings

SENDER_LOGIN = "sender_login"
AUTH_SOCKET = "private/auth"  # relative to Postfix's queue_directory (smtpd runs there)
# The container's own processes are always trusted; other loopback addresses are not
# (tests connect from 127.0.0.2 to prove it).
LOOPBACK = ("127.0.0.1/32", "[::1]/128")
def add_to(relay: Plan, settings: Settings, files: ConfigFiles, table_type: str, networks: tuple[str, ...] = (),
           login_map: str | None = None) -> Plan:
    """The node's plan: the relay plan, plus submission when it is on. mynetworks is
    always written, loopback only without PERMIT_*: Postfix's own default trusts every
    subnet of every interface, and a removed PERMIT_NETWORKS must not leave it at that."""
    if settings.submission and settings.submission.active:
        return combine(relay, build(settings, files, table_type, networks, login_map))
    return combine(relay, Plan(params={"mynetworks": " ".join(LOOPBACK)}, table_type=table_type))


def tls_files(settings: SubmissionSettings, mail_config: Path) -> tuple[Path, Path]:
    """(certificate, key): the given files, else the self-signed pair in MAIL_CONFIG/tls."""
    if settings.cert_file and settings.key_file:
        return settings.cert_file, settings.key_file
    return mail_config / "tls" / "selfsigned-cert.pem", mail_config / "tls" / "selfsigned-key.pem"


def _ref(table_type: str, mail_config: Path, name: str) -> str:
    return f"{table_type}:{mail_config / name}"


def sender_logins(files: ConfigFiles) -> tuple[str, ...]:
    """`sender owner[,owner...]` lines: each account owns itself, each alias its targets."""
    owners: dict[str, list[str]] = {}
    # Lower-cased: the login is (Dovecot's auth_username_format %Lu).
    for account in files.accounts:
        owners.setdefault(account.address.lower(), []).append(account.address.lower())
    for alias in files.aliases:
        found = owners.setdefault(alias.address.lower(), [])
        found += [t.lower() for t in alias.targets if t.lower() not in found]
    return tuple(f"{sender} {','.join(logins)}" for sender, logins in owners.items() if logins)


def _service(name: str, role: str, tls: tuple[str, str], restrictions: tuple[tuple[str, str], ...]) -> Service:
    """An smtpd in master.cf; its log lines say postfix/submission or postfix/submissions."""
    return Service(name, "inet", "smtpd", (("syslog_name", f"postfix/{role}"), tls, *restrictions), private="n")


def _listen(address: str | None, port: int, default_port: int, default_name: str) -> str:
    if address:
        return f"{address}:{port}" if ":" not in address else f"[{address}]:{port}"
    return default_name if port == default_port else str(port)


def build(settings: Settings, files: ConfigFiles, table_type: str, networks: tuple[str, ...] = (),
          login_map: str | None = None) -> Plan:
    """The submission plan; `networks` are the PERMIT_DOCKER networks the edge found
    (trusted_networks). `login_map`: the database's smtpd_sender_login_maps lookup
    (pgsql.py), whose accounts and aliases are in the database, not in `files`."""
    sub: SubmissionSettings = settings.submission
    if sub is None or not sub.active:
        return Plan(table_type=table_type)
    trusted = tuple(dict.fromkeys((*LOOPBACK, *sub.permit_networks, *networks)))
    params = {"mynetworks": " ".join(trusted)}
    if not sub.enabled:
        return Plan(params=params, table_type=table_type)

    mail_config = settings.mail_config
    if login_map is None:
        render_passwd(files.accounts)  # an account Dovecot could not read fails here, before any change
    cert, key = tls_files(sub, mail_config)
    params.update({
        "smtpd_tls_cert_file": str(cert),
        "smtpd_tls_key_file": str(key),
        "smtpd_tls_security_level": "may",  # port 25: STARTTLS offered, not required
        "smtpd_tls_mandatory_protocols": ">=TLSv1.2",  # where TLS is required: 587 and 465
        "smtpd_tls_auth_only": "yes",
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": AUTH_SOCKET,
        "smtpd_sasl_security_options": "noanonymous",
        "smtpd_sender_login_maps": login_map or _ref(table_type, mail_config, SENDER_LOGIN),
    })
    # Commas, not spaces: master.cf -o values cannot hold whitespace.
    restrictions = (
        ("smtpd_sasl_auth_enable", "yes"),
        ("smtpd_client_restrictions", "permit_sasl_authenticated,reject"),
        # reject_sender_login_mismatch skips the null sender: a logged-in user must not
        # send as nobody (MAIL FROM:<>, the bounce address), so <> is refused first.
        ("smtpd_sender_restrictions",
         "check_sender_access,inline:{<>=REJECT},reject_sender_login_mismatch,permit_sasl_authenticated,reject"),
        ("smtpd_relay_restrictions", "permit_sasl_authenticated,reject"),
        ("milter_macro_daemon_name", "ORIGINATING"),
    )
    services = []
    if sub.submission_port:
        name = _listen(sub.address, sub.submission_port, 587, "submission")
        services.append(_service(name, "submission", ("smtpd_tls_security_level", "encrypt"), restrictions))
    if sub.submissions_port:
        name = _listen(sub.address, sub.submissions_port, 465, "submissions")
        services.append(_service(name, "submissions", ("smtpd_tls_wrappermode", "yes"), restrictions))
    if login_map:
        return Plan(params=params, services=tuple(services), table_type=table_type)
    warnings = ()
    if not files.accounts:
        warnings = ("ENABLE_SUBMISSION is set but postfix-accounts.cf has no account: nobody can log in "
                    "(add one with: setup email add user@example.com)",)
    return Plan(
        tables=(Table(SENDER_LOGIN, sender_logins(files)),),
        params=params,
        services=tuple(services),
        table_type=table_type,
        warnings=warnings,
    )


def docker_networks(mode: str, interfaces: list[dict]) -> tuple[str, ...]:
    """DMS's PERMIT_DOCKER, from `ip -j addr` output (edges/system.py runs it), in
    mynetworks notation (IPv6 in brackets):
    - container: this container's addresses (/32, IPv6 /128);
    - host: their IPv4 /16 (DMS: the Docker host's networks); an IPv6 address adds only
      its own interface's network (a /16 of IPv6 would be a slice of the Internet);
    - network: Docker's default IPv4 pool 172.16.0.0/12, as DMS (IPv4 only: Docker has
      no fixed IPv6 pool; use connected-networks or PERMIT_NETWORKS);
    - connected-networks: every network an interface of the container is on, IPv4 and
      IPv6 (DMS lists only IPv4: an IPv6 client there would not be trusted).
    Only global addresses count: never loopback (always trusted, as LOOPBACK) nor link-local
    (fe80::/10, 169.254/16: every interface has one, and its "network" is every neighbour
    on every link). An address whose duplicate detection failed is not the container's;
    a tentative one (still in detection, as at a container's start) is."""
    if mode == "none":
        return ()
    if mode == "network":
        return ("172.16.0.0/12",)
    found = []
    for interface in interfaces:
        if "LOOPBACK" in interface.get("flags", ()):
            continue
        for info in interface.get("addr_info", ()):
            if info.get("family") not in ("inet", "inet6") or info.get("scope") != "global" or info.get("dadfailed"):
                continue
            address = ipaddress.ip_interface(f"{info['local']}/{info.get('prefixlen', 128)}")
            if address.is_loopback or address.is_link_local:
                continue
            if mode == "container":
                prefix = address.max_prefixlen
            elif mode == "host" and address.version == 4:
                prefix = 16
            else:
                prefix = address.network.prefixlen
            found.append(_mynetworks_form(ipaddress.ip_interface(f"{address.ip}/{prefix}").network))
    return tuple(dict.fromkeys(found))


def _mynetworks_form(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """`10.0.0.0/8`, `[fd00:1::]/64`: Postfix's notation for an IPv6 network (postconf(5))."""
    return str(network) if network.version == 4 else f"[{network.network_address}]/{network.prefixlen}"
