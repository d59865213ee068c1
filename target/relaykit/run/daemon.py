"""`relaykit start`: the container's entrypoint.

configure -> start the supervised services (Postfix's master, in the foreground) -> then
one loop in the main thread that handles, one at a time, everything that can happen:

  signal SIGTERM/SIGINT  stop every service (SIGTERM), wait for them, exit 0
  signal SIGHUP          re-apply the configuration now
  a service exited       stop the others, exit 1: the container must not run half-dead
  the config changed     re-plan, re-apply (only what changed), reload what needs it

Events come from signal handlers, the inotify watcher thread and one waiter thread per
service through a SimpleQueue (its put() is safe in a signal handler), so the main thread
blocks without polling and no two reloads ever overlap.

A configuration that turns invalid while running is logged and skipped: Postfix keeps
running on the last good one, and the next change that fixes it is applied.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from relaykit import log
from relaykit.core.dkim import Files
from relaykit.edges.dovecot import DovecotProcess, Layout, layout_for
from relaykit.edges.opendkim import OpenDKIMProcess
from relaykit.edges.postfix import Postfix, PostfixError
from relaykit.errors import ConfigError, RelaykitError, UsageError
from relaykit.inputs.dmsfiles import load_dkim_keys
from relaykit.inputs.settings import config_dir, env_file, load
from relaykit.run import watch
from relaykit.run.apply import Changes
from relaykit.run.configure import apply_prepared, configure, prepare, summary

STOP_TIMEOUT = 10.0  # seconds a service gets to stop after SIGTERM before SIGKILL


class Service:
    """A supervised child process. Subclasses say how to start it and what a config change
    means for it; supervising one more daemon (Dovecot) is one more subclass in the list."""

    name = "service"

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Checks before the first start; raise RelaykitError to refuse to start."""

    def start(self) -> None:
        self.prepare()
        # stdout/stderr are ours: the service's log goes to the container's log.
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL)

    def needs_reload(self, changes: Changes) -> bool:
        return bool(changes)

    def reload(self) -> None:
        self.signal(signal.SIGHUP)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def signal(self, signum: int) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def wait(self) -> int:
        assert self.process
        return self.process.wait()


class PostfixMaster(Service):
    """Postfix's master(8) as our child, as `postfix start-fg` runs it when not PID 1
    (`master -s`: stay in the foreground, keep stdout for maillog_file = /dev/stdout).
    Run directly rather than through postfix-script so that SIGTERM/SIGHUP reach the
    master itself and its exit status is ours to see."""

    name = "postfix"

    def __init__(self, postfix: Postfix) -> None:
        super().__init__()
        self.postfix = postfix

    def command(self) -> list[str]:
        daemon_directory = self.postfix.param("daemon_directory")
        return [f"{daemon_directory}/master", "-c", str(self.postfix.config_dir), "-s"]

    def prepare(self) -> None:
        if self.postfix.running():
            raise RelaykitError(f"Postfix is already running for {self.postfix.config_dir} (postfix stop first)")
        # What `postfix start-fg` checks first: config sanity, queue directories and owners.
        try:
            self.postfix.check()
        except PostfixError as exc:  # its own message, not "cannot start: ..." (main)
            raise RelaykitError(exc.message) from None

    def needs_reload(self, changes: Changes) -> bool:
        # main.cf/master.cf changes need a reload. So does any table change, even of an
        # indexed table that daemons would re-open by themselves: trivial-rewrite only
        # notices that a table changed when it accepts a new client, and qmgr stays
        # connected, so a new route could go unused for minutes (README, "Live reload").
        return bool(changes.params or changes.tables)


class Dovecot(Service):
    """Dovecot as Postfix's SASL server (submission on 587/465). Started before Postfix,
    so the auth socket exists when the first client authenticates. Account changes need
    nothing from us (Dovecot re-reads its passwd-file); a changed dovecot.conf, a SIGHUP."""

    name = "dovecot"

    def __init__(self, layout: Layout) -> None:
        super().__init__()
        self.dovecot = DovecotProcess(layout)

    def start(self) -> None:
        self.dovecot.start()  # returns once the auth socket is there
        self.process = self.dovecot.process

    def needs_reload(self, changes: Changes) -> bool:
        return changes.dovecot_config


class OpenDKIM(Service):
    """OpenDKIM, Postfix's signing milter, when a domain has a key (started before
    Postfix, so the socket is there for the first message). New or removed keys need a
    restart of the container, as in DMS."""

    name = "opendkim"

    def __init__(self, directory) -> None:
        super().__init__()
        self.opendkim = OpenDKIMProcess(Files(directory, {}, {}))

    def start(self) -> None:
        self.opendkim.start()  # returns once the socket is there
        self.process = self.opendkim.process

    def needs_reload(self, changes: Changes) -> bool:
        return False


def supervised(environ: Mapping[str, str]) -> list[Service]:
    """What `relaykit start` runs, in start order (stopped in reverse)."""
    settings = load(environ)
    postfix = Postfix(settings.mail_config)
    services: list[Service] = []
    if settings.submission and settings.submission.enabled:
        services.append(Dovecot(layout_for(settings, postfix)))
    if load_dkim_keys(settings.config_dir):
        services.append(OpenDKIM(settings.dkim_dir))
    services.append(PostfixMaster(postfix))
    return services


class Supervisor:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.services: list[Service] = []
        self.watch_stop = threading.Event()

    # what goes into the queue
    def _on_signal(self, signum: int, frame) -> None:
        self.events.put(("signal", signum))

    def _waiter(self, service: Service) -> None:
        self.events.put(("exited", service, service.wait()))

    # lifecycle
    def run(self) -> int:
        started = time.monotonic()
        configure(self.environ)  # ConfigError -> exit 1 with file:line: refuse to start
        self.services = supervised(self.environ)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        try:
            for service in self.services:
                service.start()
                threading.Thread(target=self._waiter, args=(service,), name=f"wait-{service.name}",
                                 daemon=True).start()
        except BaseException:
            self._stop_all()
            raise
        log.info(f"started {', '.join(s.name for s in self.services)} in {time.monotonic() - started:.2f}s")

        watched = {config_dir(self.environ)}
        if env_file(self.environ).parent.is_dir():
            watched.add(env_file(self.environ).parent)
        for directory in watched:
            directory.mkdir(parents=True, exist_ok=True)
        watch.start(sorted(watched), lambda paths: self.events.put(("changed", paths)), self.watch_stop)
        log.info(f"watching {', '.join(str(d) for d in sorted(watched))} for changes")
        return self._loop()

    def _loop(self) -> int:
        while True:
            event = self.events.get()
            if event[0] == "signal":
                if event[1] == signal.SIGHUP:
                    self.reconfigure("SIGHUP")
                    continue
                log.info(f"received {signal.Signals(event[1]).name}: stopping")
                return self._stop_all()
            if event[0] == "exited":
                _, service, status = event
                log.error(f"{service.name} exited unexpectedly (status {status}): stopping")
                self._stop_all()
                return 1
            if event[0] == "changed":
                self.reconfigure(", ".join(sorted(Path(p).name for p in event[1])))

    def reconfigure(self, why: str) -> Changes | None:
        """Re-plan and re-apply; reload the services the changes concern. Never raises:
        on an invalid config the running services keep the last good one."""
        started = time.monotonic()
        try:
            prepared = prepare(self.environ)
            changes = apply_prepared(prepared)
        except ConfigError as exc:
            log.error(f"{exc}\nconfiguration not applied: still running the last good one")
            return None
        except (RelaykitError, OSError) as exc:
            log.error(f"re-applying the configuration failed: {exc}")
            return None
        if not changes:
            log.debug(f"{why} changed: nothing to apply")
            return changes
        reloaded = []
        for service in self.services:
            if service.needs_reload(changes):
                try:
                    service.reload()
                    reloaded.append(service.name)
                except (RelaykitError, OSError) as exc:
                    log.error(f"reloading {service.name} failed: {exc}")
        # postconf(5): a change of these takes `postfix stop; postfix start`, not a reload
        restart = [name for name in ("inet_interfaces", "inet_protocols") if name in changes.params]
        if restart:
            log.warn(f"{' and '.join(restart)} changed: Postfix only uses the new value after a restart "
                     "(restart the container)")
        log.info(f"{why} changed: applied {', '.join(changes.names)}"
                 f"{'; reloaded ' + ', '.join(reloaded) if reloaded else ''}"
                 f" in {(time.monotonic() - started) * 1000:.0f} ms; {summary(prepared.plan)}")
        return changes

    def _stop_all(self) -> int:
        """SIGTERM every running service (last started first), wait, SIGKILL stragglers."""
        self.watch_stop.set()
        running = [s for s in reversed(self.services) if s.process and s.process.poll() is None]
        for service in running:
            service.stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        for service in running:
            try:
                service.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warn(f"{service.name} did not stop within {STOP_TIMEOUT:.0f}s: killing it")
                service.kill()
                service.process.wait()
        log.info("stopped")
        return 0


def main(args: list[str]) -> int:
    if args:
        raise UsageError(f"relaykit start takes no arguments (got {' '.join(args)!r})")
    try:
        return Supervisor(os.environ).run()
    except PostfixError as exc:
        raise RelaykitError(f"cannot start: {exc}") from None
