"""Where two versions of a large text (a 100k-line table or relaymap) start and stop
differing, in whole lines: so that an edit is handled in proportion to the lines it changed.

Compared in 64 KiB blocks: slicing a 3 MB text whole for each comparison allocates fresh
pages every time (~6 ms a slice here), small blocks reuse the same memory.
"""

from __future__ import annotations

# str or bytes, the same for both arguments (not a typing.TypeVar: importing typing costs
# ~5 ms of `relaykit configure`'s start-up).
Text = str | bytes
BLOCK = 1 << 16


def common_prefix(a: Text, b: Text) -> int:
    """The length of the longest common prefix of a and b."""
    most = min(len(a), len(b))
    start = 0
    while start < most and a[start:start + BLOCK] == b[start:start + BLOCK]:
        start += BLOCK
    low, high = min(start, most), min(start + BLOCK, most)  # the first difference is in this block
    while low < high:
        middle = (low + high + 1) // 2
        if a[start:middle] == b[start:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def common_suffix(a: Text, b: Text, most: int) -> int:
    """The length of the longest common suffix of a and b, at most `most`."""
    la, lb = len(a), len(b)
    most = min(most, la, lb)
    done = 0
    while done < most and (a[max(la - done - BLOCK, la - most):la - done]
                           == b[max(lb - done - BLOCK, lb - most):lb - done]):
        done += BLOCK
    low, high = min(done, most), min(done + BLOCK, most)
    while low < high:
        middle = (low + high + 1) // 2
        if a[la - middle:la - done] == b[lb - middle:lb - done]:
            low = middle
        else:
            high = middle - 1
    return low


def changed_lines(old: Text, new: Text) -> tuple[int, int, int]:
    """(start, old_end, new_end): old[start:old_end] became new[start:new_end], whole
    lines (start and both ends at line starts, or the texts' ends); what is before and
    after is the same in both."""
    newline = "\n" if isinstance(new, str) else b"\n"
    start = common_prefix(old, new)
    start = old.rfind(newline, 0, start) + 1  # back to the start of the first changed line
    end = common_suffix(old, new, min(len(old), len(new)) - start)
    old_end, new_end = len(old) - end, len(new) - end
    if (new_end and new[new_end - 1:new_end] != newline) or (old_end and old[old_end - 1:old_end] != newline):
        # forward to the next line start, in the common part: then one in both texts
        new_end = new.find(newline, new_end) + 1 or len(new)
        old_end = len(old) - (len(new) - new_end)
    return start, old_end, new_end
