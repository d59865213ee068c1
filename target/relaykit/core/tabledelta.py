"""What changed between two versions of a Postfix table's source, as postmap can apply it
to the compiled table in place (`postmap -i -r` for new and changed lines, `postmap -d`
for keys gone) instead of compiling 100k lines again: ~5 ms instead of ~100 ms a table.

Pure: bytes in, bytes out. postmap(1)'s input format: `key whitespace value`, the key
case-folded (lmdb, hash, btree: postmap without -f); blank lines and lines starting with
`#` are ignored; a line starting with whitespace continues the previous one. A delta is
only given when applying it yields exactly what compiling the new source would:

- no continuation line among or right after the changed lines (it belongs to its neighbour);
- no key that a changed line names is on an unchanged line too, old or new: with duplicate
  keys postmap keeps the first line's value, which an in-place update would not;
- small: past MAX_SHARE of the table, compiling it whole is as fast and simpler;
- one kind of change: new and changed lines, or removed keys, not both. Then one postmap
  run applies it, and it finishes even when relaykit is killed meanwhile, as a whole
  compile does: a table is never left with the old lines removed and the new not added.
"""

from __future__ import annotations

import re
from collections import namedtuple

from relaykit.commonparts import changed_lines

MAX_SHARE = 0.1  # of the new table's lines
MIN_LINES = 64  # up to this many changed lines always go as a delta


# upserts: `key value` lines, for `postmap -i -r`; deletions: one key a line, for
# `postmap -d -` (both bytes). collections' namedtuple: typing costs ~5 ms to import.
class Delta(namedtuple("Delta", ("upserts", "deletions"))):
    __slots__ = ()

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletions)


def _significant(lines: set[bytes]) -> set[bytes]:
    return {line for line in lines if line and not line.startswith(b"#")}


def _key(line: bytes) -> bytes:
    return line.split(None, 1)[0].lower()


def _continued(text: bytes) -> bool:
    return text[:1] in (b" ", b"\t") or b"\n " in text or b"\n\t" in text


def delta(old: bytes, new: bytes) -> Delta | None:
    """The in-place update that turns the table compiled from `old` into the one compiled
    from `new`, or None when only compiling `new` whole is exact (see the module's docstring).
    In proportion to the changed lines, but for a few C-level scans of the texts."""
    start, old_end, new_end = changed_lines(old, new)
    old_part, new_part = old[start:old_end], new[start:new_end]
    # a continuation line among the changed ones or right after them changes its neighbour's entry
    if _continued(old_part) or _continued(new_part) or new[new_end:new_end + 1] in (b" ", b"\t"):
        return None
    old_lines, new_lines = set(old_part.split(b"\n")), set(new_part.split(b"\n"))
    added, removed = _significant(new_lines - old_lines), _significant(old_lines - new_lines)
    if len(added) + len(removed) > max(MIN_LINES, MAX_SHARE * new.count(b"\n")):
        return None
    added_keys = [_key(line) for line in added]
    if len(set(added_keys)) != len(added_keys):  # a key twice among the new lines
        return None
    removed_keys = {_key(line) for line in removed}
    if len(removed_keys) != len(removed):
        return None
    gone = sorted(removed_keys - set(added_keys))
    if added and gone:
        return None
    # a new key on an old line that stays, or a changed or removed key on a line that stays
    if _named_elsewhere(old, set(added_keys) - removed_keys, ()) or _named_elsewhere(new, removed_keys, added):
        return None
    return Delta(b"".join(line + b"\n" for line in sorted(added)), b"".join(key + b"\n" for key in gone))


def _named_elsewhere(text: bytes, keys: set[bytes], own: set[bytes] | tuple) -> bool:
    """Whether a line of `text` other than the `own` lines has one of these (case-folded)
    keys: a few substring searches, or one compiled pass for many keys."""
    if not keys:
        return False
    # ASCII only: the same length, the same positions. relaykit's tables are lower-case
    # already: a scan instead of a 3 MB copy.
    folded = text if text.islower() else text.lower()
    if len(keys) > 16:
        starts = (m.start() for m in re.finditer(b"^(?:" + b"|".join(map(re.escape, sorted(keys))) + b")[ \t]",
                                                 folded, re.MULTILINE))
    else:
        starts = (at for key in keys for at in _line_starts(folded, key))
    for at in starts:
        stop = text.find(b"\n", at)
        if text[at:stop if stop != -1 else len(text)] not in own:
            return True
    return False


def _line_starts(text: bytes, key: bytes):
    """Where lines that start with `key` and a blank begin."""
    for separator in (b" ", b"\t"):
        if text.startswith(key + separator):
            yield 0
        needle, at = b"\n" + key + separator, text.find(b"\n" + key + separator)
        while at != -1:
            yield at + 1
            at = text.find(needle, at + 1)
