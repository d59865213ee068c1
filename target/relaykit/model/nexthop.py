"""A relay next hop, parsed once (inputs/validate.py) and carried by every route.

It *is* its Postfix spelling, `[host]:port` (or `host:port` with MX lookups): a str, so
it is the key of tls_policy and sasl_passwd lines and compares with them directly. The
parsed parts travel with it, and the two TLS facts about it are decided here only:

- mode: STARTTLS, or implicit TLS (TLS from the first byte, Postfix's
  smtp_tls_wrappermode). By port, 465 and 2465 (submissions, RFC 8314; SES's 2465),
  unless the relaymap line says otherwise with an `smtps:`/`smtp:` prefix.
- level: the tls_policy level Postfix applies to it (smtp_tls_policy_maps, postconf(5)):
  `encrypt` (TLS required, certificate not verified), or `secure` (the certificate must
  verify for the hop's name) for the hops listed in RELAYKIT_TLS_SECURE. TLS is required
  either way, so credentials never travel in clear.

A plain class, not a dataclass: `setup relay add-domain` builds one, and the dataclasses
import alone costs more than that whole command is allowed to take.
"""

from __future__ import annotations

STARTTLS = "starttls"
IMPLICIT = "implicit"
ENCRYPT = "encrypt"
SECURE = "secure"
# Ports on which relays speak TLS from the first byte (SES, Mailgun, SendGrid: 465; SES: 2465).
IMPLICIT_TLS_PORTS = (465, 2465)
# The relaymap prefix of each mode (master.cf transports, routetables.py).
PREFIXES = {"smtps": IMPLICIT, "smtp": STARTTLS}


def default_mode(port: int | None) -> str:
    """The TLS mode a port means when nothing else is said: the one rule, used everywhere."""
    return IMPLICIT if port in IMPLICIT_TLS_PORTS else STARTTLS


def tls_level(hop: str, secure: object = ()) -> str:
    """`secure` for the next hops listed in RELAYKIT_TLS_SECURE (`secure`: any container of
    next hop strings), else `encrypt`. The one place the level is decided."""
    return SECURE if hop in secure else ENCRYPT  # type: ignore[operator]


class NextHop(str):
    """`[host]:port` with its parts: host (no brackets), port (None: Postfix's default 25),
    bracketed (False: Postfix looks up MX records of host), mode and level (see above)."""

    host: str
    port: int | None
    bracketed: bool
    mode: str
    level: str

    def __new__(cls, host: str, port: int | None = None, *, bracketed: bool = True,
                mode: str | None = None, level: str = ENCRYPT) -> NextHop:
        text = (f"[{host}]" if bracketed else host) + (f":{port}" if port is not None else "")
        self = super().__new__(cls, text)
        self.__dict__.update(host=host, port=port, bracketed=bracketed,
                             mode=mode or default_mode(port), level=level)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("NextHop is immutable")

    def __repr__(self) -> str:
        return f"NextHop({str(self)!r}, mode={self.mode!r}, level={self.level!r})"

    def __reduce__(self):
        return (_rebuild, (self.host, self.port, self.bracketed, self.mode, self.level))

    @property
    def implicit_tls(self) -> bool:
        return self.mode == IMPLICIT

    @property
    def written(self) -> str:
        """As a relaymap line spells it: an `smtps:`/`smtp:` prefix only where the mode is
        not the port's own (`setup relay add-domain x smtps:h 465` writes `[h]:465`)."""
        if self.mode == default_mode(self.port):
            return str(self)
        return f"{'smtps' if self.implicit_tls else 'smtp'}:{self}"

    def with_level(self, level: str) -> NextHop:
        return NextHop(self.host, self.port, bracketed=self.bracketed, mode=self.mode, level=level)


def _rebuild(host: str, port: int | None, bracketed: bool, mode: str, level: str) -> NextHop:
    return NextHop(host, port, bracketed=bracketed, mode=mode, level=level)


def same_mode(hops: tuple[NextHop, ...]) -> bool:
    """Whether the hops of one failover list share a mode (they share one Postfix transport)."""
    return len({hop.mode for hop in hops}) <= 1
