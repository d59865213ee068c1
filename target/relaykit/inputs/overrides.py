"""DMS's Postfix override files in the config directory, parsed with file:line origins.

- postfix-main.cf: main.cf syntax, as DMS appends it to main.cf. `name = value`; a line
  that starts with whitespace continues the one before; `#` lines and blank lines are
  skipped. A parameter set twice: the later line wins (as Postfix), with a warning.
- postfix-master.cf: one `service/type/parameter=value` per line, what DMS passes to
  `postconf -P`: the parameter is set for that master.cf service only (`-o`). DMS skips
  a line it cannot use without a word; relaykit refuses it, saying which line.

core/overrides.py decides which of them may be applied; run/configure.py applies them.
"""

from __future__ import annotations

import re
from pathlib import Path

from relaykit.errors import ConfigError, ConfigErrors, RelaykitError
from relaykit.inputs.env import POSTFIX_MAIN, POSTFIX_MASTER
from relaykit.model.entries import Origin, Override

_NAME = re.compile(r"[A-Za-z0-9_]+")
_SERVICE_TYPES = ("inet", "unix", "unix-dgram", "fifo", "pass")


def load(config_dir: Path) -> tuple[tuple[Override, ...], tuple[str, ...]]:
    """(overrides, warnings) of both files; ConfigError(s) naming every bad line."""
    errors: list[RelaykitError] = []
    warnings: list[str] = []
    found = [*_main(config_dir / POSTFIX_MAIN, errors, warnings), *_master(config_dir / POSTFIX_MASTER, errors)]
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return tuple(found), tuple(warnings)


def _lines(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read it: {exc}", Origin(str(path))) from None
    for number, line in enumerate(text.splitlines(), 1):
        yield Origin(str(path), number), line


def _main(path: Path, errors: list, warnings: list) -> list[Override]:
    logical: list[tuple[Origin, str]] = []
    for origin, line in _lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            if not logical:
                errors.append(ConfigError("a continuation line (it starts with whitespace) with no parameter "
                                          "before it", origin))
                continue
            first, text = logical[-1]
            logical[-1] = (first, f"{text} {line.strip()}")
        else:
            logical.append((origin, line.strip()))
    found: dict[str, Override] = {}
    for origin, text in logical:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name):
            errors.append(ConfigError(f"not a main.cf `name = value` line: {text!r}", origin))
            continue
        if name in found:
            warnings.append(f"{origin}: {name} is set again: this line wins over {found[name].origin}")
        found[name] = Override(name, value.strip(), origin)
    return list(found.values())


def _master(path: Path, errors: list) -> list[Override]:
    found: dict[str, Override] = {}
    for origin, line in _lines(path):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition("=")
        parts = key.strip().rsplit("/", 2)
        if not sep or len(parts) != 3 or not all(parts) or not _NAME.fullmatch(parts[2]):
            errors.append(ConfigError(f"not a postfix-master.cf `service/type/parameter=value` line: {text!r}",
                                      origin))
            continue
        service, kind, name = parts
        if kind not in _SERVICE_TYPES:
            errors.append(ConfigError(f"{kind!r} is not a master.cf service type ({', '.join(_SERVICE_TYPES)})",
                                      origin))
            continue
        value = value.strip()
        if any(c.isspace() for c in value):
            errors.append(ConfigError("a master.cf parameter value cannot hold whitespace (it is written as "
                                      f"`-o {name}=value`): set it in postfix-main.cf as a parameter of your own "
                                      f"and use it here as $name", origin))
            continue
        override = Override(name, value, origin, service=f"{service}/{kind}")
        found[override.key] = override
    return list(found.values())
