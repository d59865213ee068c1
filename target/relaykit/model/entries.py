"""What the user's configuration says, parsed: relay rules, credentials, accounts,
aliases, each with its Origin (file:line, a variable, or a database table).

Both stores produce these (stores/files.py from the DMS files through inputs/dmsfiles.py,
stores/postgres.py from its tables); the planners (core/) read nothing else.
"""

from __future__ import annotations

from collections import Counter, namedtuple
from functools import partial
from itertools import count, repeat

from relaykit.model.nexthop import NextHop
from relaykit.record import field, record
from relaykit.secret import Secret


# Records are named tuples where nothing needs a record (relaykit/record.py: core/ and
# the tests call replace() on Credential, RelayLimit, ConfigFiles): creating a record
# class compiles its __init__, __eq__ and __hash__, a named tuple's is cheaper. From
# collections, not typing.NamedTuple: importing typing alone costs ~5 ms at `relaykit
# configure`'s start-up, and nothing else needs it.
class Origin(namedtuple("Origin", ("path", "line"), defaults=(0,))):
    """Where an entry came from: a file and line, or the name of an environment variable.
    A named tuple, not a dataclass: configure makes one per line of 100k-line files.
    Fields: path (str), line (int, 0: none)."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


class RelayRule(namedtuple("RelayRule", ("sender", "nexthops", "origin"))):
    """A relaymap line: mail from `sender` (str) goes to `nexthops` (tuple[NextHop, ...],
    tried in order); none = opt-out. `origin`: its Origin. In postfix-recipient-relaymap.cf,
    `sender` holds the recipient domain key. The plan's routes are relay rules too
    (model/plan.Route). A named tuple, as Origin."""

    __slots__ = ()

    @property
    def opted_out(self) -> bool:
        return not self.nexthops

    @property
    def value(self) -> str:
        return ",".join(self.nexthops)

    @property
    def implicit_tls(self) -> bool:
        """TLS from the first byte (validation makes every hop of a list agree)."""
        return bool(self.nexthops) and self.nexthops[0].implicit_tls


@record
class RelayLimit:
    """A postfix-relay-limits.cf line: how fast and how wide Postfix may send to one relay.

    `delay`: whole seconds between two deliveries (Postfix's _destination_rate_delay),
    from `rate` (the user's `N/s`, `N/m`...); `concurrency`: parallel connections at most
    (_destination_concurrency_limit). None: not limited that way."""

    hop: NextHop
    rate: str | None
    delay: int | None
    concurrency: int | None
    origin: Origin

    def describe(self) -> str:
        parts = []
        if self.delay:
            parts.append(f"rate {self.rate} (one message every {self.delay}s)")
        if self.concurrency:
            parts.append(f"at most {self.concurrency} connection(s)")
        return ", ".join(parts)


class SenderRewrite(namedtuple("SenderRewrite", ("key", "target", "origin"))):
    """A postfix-sender-rewrite.cf line: senders `key` (user@domain or @domain) leave as
    `target` (an address, or @domain to keep the local part). `origin`: its Origin."""

    __slots__ = ()

    def apply(self, sender: str) -> str:
        return sender.rpartition("@")[0] + self.target if self.target.startswith("@") else self.target


class DkimKey(namedtuple("DkimKey", ("domain", "selector", "path"))):
    """A DKIM private key in the config directory, DMS's layout:
    opendkim/keys/<domain>/<selector>.private (mail From <domain> is signed with it).
    Fields: domain, selector, path (str)."""

    __slots__ = ()

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


@record
class Credential:
    """A sasl_passwd entry: `key` is `@domain` (an address, `@.domain`) or a relay next hop."""

    key: str
    user: str
    password: Secret
    origin: Origin


@record
class OAuth2Credential:
    """A postfix-oauth2.cf entry: log in to the relay with XOAUTH2 as `user`, with access
    tokens relaykit gets from the provider's token endpoint (run/oauth2.py).

    `key` as a Credential's. `provider`: "microsoft" (client credentials: tenant,
    client_id, client_secret or certificate), "google" (refresh token: client_id,
    client_secret, refresh_token) or "generic" (token_url, client_id, client_secret, and a
    refresh_token or else the client-credentials grant). `options` are the non-secret
    fields, `secrets` the others (read from their *_file when given so)."""

    key: str
    provider: str
    user: str
    options: tuple[tuple[str, str], ...]
    secrets: tuple[tuple[str, Secret], ...]
    origin: Origin
    inline: bool = False  # a secret is written in the file itself (which must then be 0600)

    def option(self, name: str, default: str | None = None) -> str | None:
        return dict(self.options).get(name, default)

    def secret(self, name: str) -> Secret | None:
        return dict(self.secrets).get(name)


class Account(namedtuple("Account", ("address", "password_hash", "origin"))):
    """A postfix-accounts.cf line: a mailbox `address` and its `password_hash` (a Secret).
    `origin`: its Origin."""

    __slots__ = ()

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


class Deferred:
    """A tuple of entries, made when first used and equal to it: configure's relay plan
    reads only the domains of postfix-accounts.cf's 100k accounts (ConfigFiles.
    account_domains), so their Accounts, Secrets and Origins (~40-80 ms) are made only
    for what needs them (Dovecot's passwd-file, `setup email list`). `make()` returns the
    tuple; `length` is its length; `source` stands for its contents (equal sources make
    equal tuples: the file's text), so that two reads compare without making either."""

    __slots__ = ("_make", "_length", "_source", "_items")

    def __init__(self, make, length: int, source: object) -> None:
        self._make, self._length, self._source, self._items = make, length, source, None

    def _tuple(self) -> tuple:
        if self._items is None:
            self._items = self._make()
        return self._items

    def __len__(self) -> int:
        return self._length

    def __iter__(self):
        return iter(self._tuple())

    def __getitem__(self, index):
        return self._tuple()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Deferred) and other._length == self._length and other._source == self._source:
            return True
        return self._tuple() == (other._tuple() if isinstance(other, Deferred) else other)

    def __hash__(self) -> int:
        return hash(self._tuple())

    def __repr__(self) -> str:
        return repr(self._tuple())


def origins(name: str, first: int):
    """Origin(name, first), Origin(name, first + 1)... without end, for lines read in bulk
    (NamedTuple._make is tuple.__new__: no Python call per line)."""
    return map(partial(tuple.__new__, Origin), zip(repeat(name), count(first)))


class Rules(Deferred):
    """A relaymap's rules read in bulk (inputs/dmsfiles._plain_relaymap) as two columns:
    the sender keys and their next-hop lists, in file order from line `first` of file
    `name`. A rule is made when one is read (explain, an error, a live edit), all of them
    when they are sliced or compared: configure plans from the columns (100k lines: ~70 ms
    of tuples and Origins it would never read). `source` as Deferred's; `written`: the
    rules as `sender hop,hop` lines ("\n" each) when that is the file's own text (tabs as
    blanks), else None: relayhost_map's lines, with no line made."""

    __slots__ = ("keys", "nexthops", "written", "_name", "_first", "_counts")

    def __init__(self, keys: list[str], nexthops: list[tuple[NextHop, ...]], name: str, first: int,
                 source: object, written: str | None = None, counts: Counter | None = None) -> None:
        """`counts`: how many rules name each next-hop list, in first-use order, when the
        reader counted them (from the values' strings, whose hashes are kept: counting
        100k tuples of next hops hashes each tuple again, ~8 ms)."""
        self.keys, self.nexthops, self.written, self._name, self._first = keys, nexthops, written, name, first
        self._counts = counts
        super().__init__(lambda: tuple(self._made()), len(keys), source)

    def _made(self):
        return map(partial(tuple.__new__, RelayRule), zip(self.keys, self.nexthops, origins(self._name, self._first)))

    def __iter__(self):
        return iter(self._items) if self._items is not None else self._made()

    def __getitem__(self, index):
        if self._items is not None or not isinstance(index, int):
            return self._tuple()[index]
        at = range(self._length)[index]  # IndexError, negative indexes
        return RelayRule(self.keys[at], self.nexthops[at], Origin(self._name, self._first + at))

    def nexthop_counts(self) -> Counter:
        """How many rules name each next-hop list, in first-use order: a new Counter (of a
        handful of lists), the caller's to change."""
        if self._counts is None:
            self._counts = Counter(self.nexthops)
        return Counter(self._counts)


class Alias(namedtuple("Alias", ("address", "targets", "origin"))):
    """A postfix-virtual.cf line: mail to `address` (user@domain, or @domain for a
    catch-all) goes to `targets` (a tuple of addresses). `origin`: its Origin."""

    __slots__ = ()

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@record
class ConfigFiles:
    """Everything a store holds, validated (for the database store, as if it were files)."""

    relay_rules: tuple[RelayRule, ...] = ()
    credentials: tuple[Credential, ...] = ()
    accounts: tuple[Account, ...] = ()  # or a Deferred tuple (the files store's bulk reader)
    aliases: tuple[Alias, ...] = ()
    relaymap_exists: bool = False
    sasl_exists: bool = False
    recipient_rules: tuple[RelayRule, ...] = ()  # `sender` holds the recipient domain key
    oauth2: tuple[OAuth2Credential, ...] = ()  # postfix-oauth2.cf (files store only)
    relay_limits: tuple[RelayLimit, ...] = ()  # postfix-relay-limits.cf (files store only)
    # How relay_rules came from the rules of the relaymap's previous read, when they did
    # (files store, live reload): what core/replan.py re-plans. Derived data.
    relay_edit: RulesEdit | None = field(default=None, compare=False, repr=False)
    # The domain of each account, in order, when the reader split them already (the files
    # store's bulk reader): core/plan.py's managed domains, without splitting 100k
    # addresses again. Derived data; None: split them.
    account_domains: list[str] | None = field(default=None, compare=False, repr=False)


class RulesEdit(namedtuple("RulesEdit", ("before", "start", "removed", "added"))):
    """The relay rules are `before` (tuple[RelayRule, ...]) with `removed` (int) rules from
    index `start` (int) replaced by the `added` (int) ones there; the rules after them are
    the same lines (renumbered when lines were added or removed)."""

    __slots__ = ()


class Override(namedtuple("Override", ("name", "value", "origin", "service"), defaults=(None,))):
    """A Postfix parameter the user sets beyond relaykit's: a main.cf parameter `name`
    (postfix-main.cf, POSTFIX_<name>) set to `value`, or with `service` ("name/type", else
    None) one service's master.cf `-o name=value` (postfix-master.cf), as DMS applies
    them. `origin`: its Origin."""

    __slots__ = ()

    @property
    def key(self) -> str:
        """`name`, or `service/name` as `postconf -P` spells a service's parameter."""
        return f"{self.service}/{self.name}" if self.service else self.name
