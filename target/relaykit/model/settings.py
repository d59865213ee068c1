"""Settings: the environment's values, validated (inputs/settings.py loads them)."""

from __future__ import annotations

from pathlib import Path

from relaykit.model.entries import Override
from relaykit.model.nexthop import NextHop, tls_level
from relaykit.record import record
from relaykit.secret import Secret

TABLE_TYPES = ("hash", "btree", "lmdb", "cdb", "dbm", "texthash")
LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
LOG_FORMATS = ("text", "json")
DOCKER_MODES = ("none", "container", "host", "network", "connected-networks")


@record
class SubmissionSettings:
    """Ports 587/465 for mail clients, and the networks trusted without a login."""

    enabled: bool = False  # ENABLE_SUBMISSION
    submission_port: int | None = 587  # None: the service is off
    submissions_port: int | None = 465
    address: str | None = None  # SUBMISSION_ADDRESS; None: every inet_interfaces address
    permit_networks: tuple[str, ...] = ()  # PERMIT_NETWORKS, Postfix's notation
    permit_docker: str = "none"
    cert_file: Path | None = None  # SSL_CERT_PATH; None: self-signed, made at start
    key_file: Path | None = None
    dovecot_dir: Path = Path("/run/relaykit/dovecot")  # generated dovecot.conf + passwd

    @property
    def active(self) -> bool:
        """Anything to plan: submission itself, or trusted networks for port 25."""
        return self.enabled or bool(self.permit_networks) or self.permit_docker != "none"


@record
class Settings:
    """relaykit's settings, from the environment (and relaykit.env)."""

    mail_config: Path = Path("/etc/postfix")
    config_dir: Path = Path("/tmp/docker-mailserver")
    default_relay_host: str | None = None  # verbatim main.cf relayhost
    relay_host: str | None = None  # without brackets
    relay_port: int = 25
    relay_user: str | None = None
    relay_password: Secret | None = None
    table_type: str | None = None  # None: Postfix's default_database_type
    log_level: str = "info"
    log_format: str = "text"  # LOG_FORMAT: text (DMS lines) or json (one object a line)
    # METRICS_PORT / METRICS_ADDRESS: the Prometheus endpoint of `relaykit start` (None: off)
    metrics_port: int | None = None
    metrics_address: str = "0.0.0.0"
    submission: SubmissionSettings | None = None  # ports 587/465, trusted networks
    # PostgreSQL store (stores/postgres.py): relaykit's admin connection, and the
    # read-only one Postfix's pgsql: lookups use (defaults to the admin one).
    database_url: Secret | None = None
    postfix_database_url: Secret | None = None
    # RELAYKIT_TLS_SECURE: relay next hops whose certificate must verify (tls_policy
    # `secure`) instead of only being encrypted (`encrypt`, the default).
    tls_secure: tuple[NextHop, ...] = ()
    # DEFAULT_RELAY_HOST parsed (the hops RELAY_USER authenticates to when it is set).
    default_relay_hops: tuple[NextHop, ...] = ()
    # OVERRIDE_HOSTNAME (DMS): main.cf myhostname (HELO name, banner, bounces, the
    # self-signed certificate). None: Postfix's default, the container's hostname.
    hostname: str | None = None
    # POSTFIX_<name>: main.cf parameters set by variable (inputs/dmsvars.py), and the
    # DMS variables relaykit does not support that are set, one report line each.
    postfix_params: tuple[Override, ...] = ()
    dms_reports: tuple[str, ...] = ()
    # RELAYKIT_STRIP_RECEIVED: Received headers (and X-Originating-IP) removed as mail
    # leaves (smtp_header_checks): the relay does not learn the internal hosts and clients.
    strip_received: bool = False
    # RELAYKIT_DKIM_DIR: OpenDKIM's generated configuration, key copies and milter socket.
    dkim_dir: Path = Path("/run/relaykit/opendkim")
    # ENABLE_OPENDKIM (DMS): 0 turns signing off even where opendkim/keys has keys.
    dkim_enabled: bool = True

    @property
    def default_relay(self) -> tuple[NextHop, ...]:
        """The next hop(s) RELAY_USER authenticates to: DEFAULT_RELAY_HOST, else RELAY_HOST."""
        if self.default_relay_host:
            return self.default_relay_hops
        if self.relay_nexthop:
            return (self.relay_nexthop,)
        return ()

    @property
    def relay_nexthop(self) -> NextHop | None:
        """`[RELAY_HOST]:RELAY_PORT`, the relay of managed domains without an entry."""
        if not self.relay_host:
            return None
        hop = NextHop(self.relay_host, self.relay_port)
        return hop.with_level(tls_level(hop, self.tls_secure))

    @property
    def relay_credentials(self) -> tuple[str, Secret] | None:
        if self.relay_user and self.relay_password:
            return self.relay_user, self.relay_password
        return None
