"""Pause Python's cyclic garbage collector while a large configuration is parsed.

Parsing 100k lines allocates about ten small objects a line (rows, origins, rules,
routes) and frees almost none, so the collector keeps running generation scans that
find nothing: a third to a half of `relaykit configure` at 100k domains
(bench/results.md). None of these objects form cycles; reference counting frees them as
usual, and the collector is back on (if it was on) as soon as the block ends.
"""

from __future__ import annotations

import gc


class paused_gc:  # noqa: N801  (used like a function: `with paused_gc():`)
    """A class rather than @contextmanager: no contextlib import on the CLI's path."""

    def __enter__(self) -> None:
        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.was_enabled:
            gc.enable()
