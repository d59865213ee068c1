"""Watch the config directory with inotify (watchfiles) and report debounced bursts.

watchfiles groups the events of a burst: it yields once nothing new happened for `quiet_ms`
(at most `max_ms` after the first), so `setup relay add-domain` (temp file + rename) or an
editor's save-as-several-writes gives one reload, not several. No polling, no sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import watchfiles

from relaykit import log

# The quiet time that ends a burst. Small: it is paid on every reload (see README, "Live reload").
QUIET_MS = 30
MAX_MS = 1000


def _relevant(change, path: str) -> bool:
    """Ignore editor.py's lock and temp files (`.name.lock`, `.name.PID.tmp`): only the
    rename that publishes the new file matters."""
    name = Path(path).name
    return not (name.startswith(".") and name.endswith((".lock", ".tmp")))


def start(paths: Iterable[Path], on_change: Callable[[set[str]], None],
          stop: threading.Event) -> threading.Thread:
    """Call `on_change(changed paths)` from a daemon thread for every burst of changes
    under `paths` (directories that must exist), until `stop` is set."""
    targets = [str(p) for p in paths]

    def loop() -> None:
        try:
            for changes in watchfiles.watch(*targets, watch_filter=_relevant, debounce=MAX_MS,
                                            step=QUIET_MS, stop_event=stop, rust_timeout=0,
                                            yield_on_timeout=False, raise_interrupt=False):
                on_change({path for _, path in changes})
        except Exception as exc:  # e.g. the directory was removed: say so, Postfix keeps running
            log.error(f"live reload stopped: watching {', '.join(targets)} failed: {exc}")

    thread = threading.Thread(target=loop, name="relaykit-watch", daemon=True)
    thread.start()
    return thread
