"""Postfix's log, passing through `relaykit start` on its way to the container's stdout.

main.cf has maillog_file = /dev/stdout: postlogd writes every Postfix line to the
master's stdout, which the daemon makes a pipe to us. Two threads, so that Postfix never
waits for us:

  reader  reads the pipe as fast as lines come, parses each (core/postfixlog.py), counts
          deliveries for the metrics, and queues the line for the writer. It never blocks
          on output: when the queue is full (stdout stalled: a slow log driver, a paused
          `docker logs` consumer), the line is dropped and counted instead of making the
          pipe fill up and postlogd (and every Postfix daemon that logs) wait.
  writer  writes the lines to stdout in LOG_FORMAT (verbatim, or JSON), and says how many
          were dropped, if any, once stdout moves again.

So a slow stdout costs log lines (counted: relaykit_log_lines_dropped_total, and a warning),
never mail throughput, and the metrics count every line either way. A line relaykit cannot
parse is written as it came.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import BinaryIO

from relaykit import log, metrics
from relaykit.core.postfixlog import parse

CAPACITY = 50_000  # lines held while stdout is stalled (~10 MB of typical lines)


class LogPump:
    def __init__(self, stream: BinaryIO, write: Callable[[str, dict | None], None] = log.postfix_line,
                 capacity: int = CAPACITY) -> None:
        self.stream, self.write = stream, write
        self.lines: queue.Queue = queue.Queue(capacity)
        self.dropped = 0  # since the writer last reported
        self.total_dropped = 0
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, name="postfix-log-reader", daemon=True)
        self.writer = threading.Thread(target=self._write, name="postfix-log-writer", daemon=True)

    def start(self) -> LogPump:
        self.reader.start()
        self.writer.start()
        return self

    def _read(self) -> None:
        try:
            for raw in iter(self.stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                try:
                    fields = parse(line)
                except Exception:  # never lose a line to a parser bug
                    fields = None
                if fields and "status" in fields and "nexthop" in fields:
                    metrics.delivery(fields["nexthop"], fields["status"])
                try:
                    self.lines.put_nowait((line, fields))
                except queue.Full:
                    with self.lock:
                        self.dropped += 1
                        self.total_dropped += 1
                    metrics.log_lines_dropped(1)
        finally:
            self.lines.put((None, None))  # end of Postfix's log (the writer may be stalled: wait)

    def _write(self) -> None:
        while True:
            line, fields = self.lines.get()
            if line is None:
                return
            with self.lock:
                dropped, self.dropped = self.dropped, 0
            try:
                if dropped:
                    log.warn(f"{dropped} Postfix log lines were dropped: stdout did not keep up")
                self.write(line, fields)
            except Exception:  # stdout closed: keep draining, so the reader never blocks
                continue

    def join(self, timeout: float = 2.0) -> None:
        """Wait until Postfix's last lines are written (after its master exited)."""
        self.reader.join(timeout)
        self.writer.join(timeout)
