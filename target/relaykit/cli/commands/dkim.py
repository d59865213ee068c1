"""`setup config dkim [<domain>...] [keysize <bits>] [selector <name>]` and `setup config
dkim list`: DKIM keys in DMS's layout (opendkim/keys/<domain>/<selector>.private), made by
opendkim-genkey; the DNS TXT record to publish is printed. Without domains: every domain
of postfix-accounts.cf and postfix-virtual.cf, as DMS does. A domain that has a key keeps
it (remove its directory to make a new one)."""

from __future__ import annotations

from pathlib import Path

from relaykit.cli import ui
from relaykit.edges import system
from relaykit.errors import UsageError
from relaykit.inputs import validate
from relaykit.inputs.dmsfiles import load_dkim_keys, selector as valid_selector
from relaykit.inputs.env import DKIM_KEYS, config_dir
from relaykit.stores import open_store

_SIZES = ("1024", "2048", "4096")


def _options(args: list[str]) -> tuple[list[str], int, str]:
    domains, bits, selector = [], 2048, "mail"
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word in ("keysize", "selector", "domain"):
            if not rest:
                raise UsageError(f"{word} needs a value")
            value = rest.pop(0)
            if word == "keysize":
                if value not in _SIZES:
                    raise UsageError(f"keysize must be one of {', '.join(_SIZES)}, not {value!r}")
                bits = int(value)
            elif word == "selector":
                selector = valid_selector(value)
            else:
                domains.append(validate.domain(value, "domain"))
        else:
            domains.append(validate.domain(word, "domain"))
    return domains, bits, selector


def dkim(args: list[str]) -> int:
    if args[:1] == ["list"]:
        return list_keys(args[1:])
    domains, bits, selector = _options(args)
    if not domains:
        files = open_store().load()
        domains = sorted({entry.domain for entry in (*files.accounts, *files.aliases)})
        if not domains:
            raise UsageError("no domain given, and postfix-accounts.cf and postfix-virtual.cf name none")
    root = Path(config_dir()) / DKIM_KEYS
    have = {key.domain: key for key in load_dkim_keys(Path(config_dir()))}
    for domain in dict.fromkeys(domains):
        if domain in have:
            ui.info(f"{domain} has a key already: {have[domain].path} (selector {have[domain].selector})")
            continue
        private, record = system.dkim_genkey(root / domain, domain, selector, bits)
        ui.ok(f"{domain}: {bits}-bit key {private}; publish this TXT record, then restart:")
        print(record, end="" if record.endswith("\n") else "\n")
    return 0


def list_keys(args: list[str]) -> int:
    if args:
        raise UsageError("setup config dkim list takes no arguments")
    keys = load_dkim_keys(Path(config_dir()))
    if not keys:
        ui.info("no DKIM keys: mail leaves unsigned (setup config dkim <domain> makes one)")
    for key in keys:
        print(f"{key.domain}  selector {key.selector}  DNS {key.record_name}  key {key.path}")
    return 0
