"""run/watch.py: a change made as soon as start() returns is seen, even before the watcher
thread has run at all (`relaykit start` logs "watching ..." right after, and users and
tests edit on it); a burst gives one call; the editor's lock and temp files are ignored."""

from __future__ import annotations

import queue
import threading

from relaykit.run import watch


def test_a_change_made_before_the_watcher_thread_runs_is_seen(tmp_path, monkeypatch):
    held: list[threading.Thread] = []
    start_thread = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: held.append(thread))  # not run yet
    seen: queue.Queue = queue.Queue()
    stop = threading.Event()
    watch.start([tmp_path], seen.put, stop)
    (tmp_path / "postfix-relaymap.cf").write_text("@a.example [r.test]:587\n")
    (tmp_path / ".postfix-relaymap.cf.lock").touch()
    (tmp_path / ".postfix-relaymap.cf.1.tmp").write_text("x")
    monkeypatch.undo()
    start_thread(held[0])
    try:
        assert seen.get(timeout=5) == {str(tmp_path / "postfix-relaymap.cf")}
    finally:
        stop.set()
        held[0].join(timeout=5)
    assert not held[0].is_alive() and seen.empty()


def test_a_missing_directory_is_logged_not_raised(tmp_path, capsys):
    thread = watch.start([tmp_path / "gone"], lambda paths: None, threading.Event())
    thread.join(timeout=5)
    assert "live reload stopped: watching" in capsys.readouterr().err
