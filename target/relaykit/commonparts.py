"""Where two versions of a large text (a 100k-line table or relaymap) start and stop
differing: so that an edit is handled in proportion to the lines it changed.

Compared in 64 KiB blocks: slicing a 3 MB text whole for each comparison allocates fresh
pages every time (~6 ms a slice here), small blocks reuse the same memory.
"""

from __future__ import annotations

from typing import TypeVar

Text = TypeVar("Text", str, bytes)
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
    while done < most and a[max(la - done - BLOCK, la - most):la - done] == b[max(lb - done - BLOCK, lb - most):lb - done]:
        done += BLOCK
    low, high = min(done, most), min(done + BLOCK, most)
    while low < high:
        middle = (low + high + 1) // 2
        if a[la - middle:la - done] == b[lb - middle:lb - done]:
            low = middle
        else:
            high = middle - 1
    return low
