"""Watch the config directory with inotify (watchfiles) and report debounced bursts.

watchfiles groups the events of a burst: RustNotify.watch returns once nothing new happened
for QUIET_MS (at most MAX_MS after the first), so `setup relay add-domain` (temp file +
rename) or an editor's save-as-several-writes gives one reload, not several. No polling,
no sleeps. Its Rust backend is used directly (documented in watchfiles' API reference, and
what watchfiles.watch() runs on) so that the watches exist before `start` returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from watchfiles._rust_notify import RustNotify  # watchfiles' documented Rust backend (watch() runs on it)

from relaykit import log

# The quiet time that ends a burst. Small: it is paid on every reload (see README, "Live reload").
QUIET_MS = 30
MAX_MS = 1000


def _relevant(path: str) -> bool:
    """Ignore editor.py's lock and temp files (`.name.lock`, `.name.PID.tmp`): only the
    rename that publishes the new file matters."""
    name = Path(path).name
    return not (name.startswith(".") and name.endswith((".lock", ".tmp")))


def start(paths: Iterable[Path], on_change: Callable[[set[str]], None],
          stop: threading.Event) -> threading.Thread:
    """Call `on_change(changed paths)` from a daemon thread for every burst of changes
    under `paths` (directories that must exist), until `stop` is set. The inotify watches
    are in place when this returns (RustNotify is made here, not in the thread as
    watchfiles.watch() would): a change made right after is never missed."""
    targets = [str(p) for p in paths]

    def failed(exc: Exception) -> None:  # e.g. a directory is gone: say so, Postfix keeps running
        log.error(f"live reload stopped: watching {', '.join(targets)} failed: {exc}")

    try:
        notify = RustNotify(targets, False, False, 300, True, False)
    except Exception as exc:
        failed(exc)
        notify = None

    def loop() -> None:
        if notify is None:
            return
        try:
            with notify:
                while True:
                    changes = notify.watch(MAX_MS, QUIET_MS, 0, stop)
                    if isinstance(changes, str):  # 'stop' (or 'signal', 'timeout': not asked for)
                        if changes == "timeout":
                            continue
                        return
                    changed = {path for _, path in changes if _relevant(path)}
                    if changed:
                        on_change(changed)
        except Exception as exc:
            failed(exc)

    thread = threading.Thread(target=loop, name="relaykit-watch", daemon=True)
    thread.start()
    return thread
