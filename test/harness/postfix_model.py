"""What Postfix itself decides for one message, from the configuration relaykit wrote:
main.cf and master.cf through `postconf`, every table through `postmap -q` (batched).
An oracle for the differential tests, written from Postfix's documentation, not from
relaykit's code:

- trivial-rewrite (transport(5), postconf(5)): transport_maps by recipient (the address,
  the domain, then `.parent` domains); otherwise sender_dependent_default_transport_maps,
  then default_transport. The next hop: the transport entry's, else
  sender_dependent_relayhost_maps, else relayhost, else the recipient's domain (direct).
  Sender lookups (mail_addr_find): the full address in every table, then `@domain` in
  tables with fixed keys (pcre only ever sees the full address); `DUNNO` ends the search.
- the SMTP client (SASL_README): SASL only when the transport's smtp_sasl_auth_enable is
  yes; with smtp_sender_dependent_authentication the sender (as above), then the remote
  host, then the next hop, in smtp_sasl_password_maps. TLS: smtp_tls_policy_maps by next
  hop, else the transport's smtp_tls_security_level; wrappermode means TLS first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from harness.postfix_instance import PostfixInstance


@dataclass(frozen=True)
class Decision:
    transport: str
    nexthops: tuple[str, ...]  # () when direct: the recipient's domain (MX)
    logins: tuple[str | None, ...]  # per next hop: the user Postfix logs in as, None: no AUTH
    tls: tuple[str, ...]  # per next hop: the TLS level ("encrypt", "secure", "may", ...)
    wrappermode: bool

    @property
    def direct(self) -> bool:
        return not self.nexthops


def _split_maps(value: str) -> list[str]:
    """The tables of a list, as Postfix splits it: on blanks and commas, but not inside
    braces (`pipemap:{lmdb:a,lmdb:b}` is one table)."""
    return re.findall(r"(?:[^\s,{]|\{[^}]*\})+", value)


def _pattern(table: str) -> bool:
    """Whether a table sees only full addresses (pcre, regexp); a pipemap matches as its
    first table (dict_pipe.c)."""
    kind, _, name = table.partition(":")
    if kind == "pipemap":
        return _pattern(_split_maps(name.strip("{}"))[0])
    return kind in ("pcre", "regexp")


def _split_hops(value: str) -> tuple[str, ...]:
    return tuple(h for h in re.split(r"[\s,]+", value.strip()) if h)


class PostfixModel:
    def __init__(self, postfix: PostfixInstance) -> None:
        self.postfix = postfix
        self._cache: dict[tuple[str, str], str | None] = {}

    @cached_property
    def main(self) -> dict[str, str]:
        out = self.postfix.run("postconf").stdout
        return dict(line.split(" = ", 1) if " = " in line else (line.rstrip(" ="), "") for line in out.splitlines())

    @cached_property
    def overrides(self) -> dict[str, dict[str, str]]:
        """master.cf `-o` settings: {"name/type": {param: value}}."""
        found: dict[str, dict[str, str]] = {}
        for line in self.postfix.run("postconf", "-P").stdout.splitlines():
            key, _, value = line.partition(" = ")
            name, type_, param = key.split("/", 2)
            found.setdefault(f"{name}/{type_}", {})[param] = value
        return found

    def param(self, transport: str, name: str) -> str:
        return self.overrides.get(f"{transport}/unix", {}).get(name, self.main.get(name, ""))

    def prefetch(self, maps: list[str], keys: list[str]) -> None:
        """One `postmap -q -` per table for many keys (a process per lookup is slow)."""
        for table in maps:
            wanted = [k for k in dict.fromkeys(keys) if (table, k) not in self._cache]
            if not wanted:
                continue
            # proxy:pgsql: read directly (proxymap runs only with a started Postfix): the
            # same query, the same answer
            direct = table.removeprefix("proxy:") if table.startswith("proxy:pgsql:") else table
            out = self.postfix.run("postmap", "-q", "-", direct, input="".join(k + "\n" for k in wanted),
                                   check=False).stdout
            hits = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
            for key in wanted:
                self._cache[(table, key)] = hits.get(key)

    def lookup(self, table: str, key: str) -> str | None:
        if (table, key) not in self._cache:
            self.prefetch([table], [key])
        return self._cache[(table, key)]

    def _find(self, maps: list[str], keys: list[tuple[str, bool]]) -> str | None:
        """The first hit of keys (key, fixed-key tables only?) across maps, as maps_find."""
        for key, fixed_only in keys:
            for table in maps:
                if fixed_only and _pattern(table):
                    continue
                value = self.lookup(table, key)
                if value is not None:
                    return value
        return None

    @staticmethod
    def address_keys(address: str) -> list[tuple[str, bool]]:
        address = address.lower()
        local, at, domain = address.rpartition("@")
        return [(address, False), (f"@{domain}", True)] if at else [(address, False)]

    def addr_find(self, param: str, address: str) -> str | None:
        value = self._find(_split_maps(self.main.get(param, "")), self.address_keys(address))
        return None if value is None or value.upper().startswith("DUNNO") else value

    def decide(self, sender: str, recipient: str) -> Decision:
        domain = recipient.lower().rpartition("@")[2]
        transport_entry = None
        if self.main.get("transport_maps"):
            labels = domain.split(".")
            keys = [(recipient.lower(), False), (domain, True)] + [
                ("." + ".".join(labels[i:]), True) for i in range(1, len(labels))]
            transport_entry = self._find(_split_maps(self.main["transport_maps"]), keys)
        if transport_entry is None and sender:
            transport_entry = self.addr_find("sender_dependent_default_transport_maps", sender)
        transport_entry = transport_entry or self.main.get("default_transport", "smtp")
        transport, _, nexthop = transport_entry.partition(":")
        transport = transport or self.main.get("default_transport", "smtp")
        if not nexthop and sender:
            nexthop = self.addr_find("sender_dependent_relayhost_maps", sender) or ""
        if not nexthop:
            nexthop = self.main.get("relayhost", "")
        hops = _split_hops(nexthop)
        dests = hops or (domain,)
        logins = tuple(self.login(transport, sender, dest) for dest in dests)
        tls = tuple(self.tls(transport, dest) for dest in dests)
        wrapper = self.param(transport, "smtp_tls_wrappermode") == "yes"
        return Decision(transport, hops, logins, tls, wrapper)

    def login(self, transport: str, sender: str, dest: str) -> str | None:
        if self.param(transport, "smtp_sasl_auth_enable") != "yes":
            return None
        maps = _split_maps(self.param(transport, "smtp_sasl_password_maps"))
        value = None
        if sender and self.param(transport, "smtp_sender_dependent_authentication") == "yes":
            value = self._find(maps, self.address_keys(sender))
        # the remote host (an address literal's address; an MX's name is unknown here), then the next hop
        host = dest[1:dest.index("]")] if dest.startswith("[") else (dest.rpartition(":")[0] or dest)
        value = value or self._find(maps, [(host.lower(), False), (dest.lower(), False)])
        return value.split(":", 1)[0] if value else None

    def tls(self, transport: str, dest: str) -> str:
        maps = _split_maps(self.param(transport, "smtp_tls_policy_maps"))
        policy = self._find(maps, [(dest.lower(), True)]) if maps else None
        if policy:
            return policy.split()[0]
        return self.param(transport, "smtp_tls_security_level") or "none"
