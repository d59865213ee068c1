"""`relaykit start`: the container's entrypoint.

configure -> start the supervised services (Postfix's master, in the foreground) -> then
one loop in the main thread that handles, one at a time, everything that can happen:

  signal SIGTERM/SIGINT  stop every service (SIGTERM), wait for them, exit 0
  signal SIGHUP          re-apply the configuration now and reload Postfix (always, even
                         when nothing changed: `kill -HUP` is the operator's "reload")
  a service exited       stop the others, exit 1: the container must not run half-dead
  the config changed     re-plan, re-apply (only what changed), reload what needs it
  the certificate changed  (SSL_CERT_PATH/SSL_KEY_PATH, their directories are watched)
                         reload Postfix: smtpd reads its certificate when a process
                         starts, so new connections get the renewed one, no restart

Postfix's log (maillog_file = /dev/stdout) passes through us (run/logpump.py): written
to stdout as text or JSON (LOG_FORMAT) and counted for the metrics (METRICS_PORT,
relaykit/metrics.py), which also count reloads and read the queue at each scrape.
  OAuth2 tokens changed  re-apply with them (run/oauth2.TokenKeeper, its own thread):
                         only the token table changes, and Postfix needs no reload

Events come from signal handlers, the inotify watcher thread and one waiter thread per
service through a SimpleQueue (its put() is safe in a signal handler), so the main thread
blocks without polling and no two reloads ever overlap.

A configuration that turns invalid while running is logged and skipped: Postfix keeps
running on the last good one, and the next change that fixes it is applied.
"""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from relaykit import __version__, log, metrics
from relaykit.core.dkim import Files
from relaykit.edges import system
from relaykit.edges.dovecot import DovecotProcess, Layout, layout_for
from relaykit.edges.opendkim import OpenDKIMProcess
from relaykit.edges.postfix import Postfix, PostfixError
from relaykit.errors import ConfigError, RelaykitError, UsageError
from relaykit.inputs.dmsfiles import signing_keys
from relaykit.inputs.settings import config_dir, env_file, load
from relaykit.model.settings import Settings
from relaykit.model.plan import SASL_OAUTH2
from relaykit.run import watch
from relaykit.run.oauth2 import TokenKeeper
from relaykit.run.apply import Changes
from relaykit.run.logpump import LogPump
from relaykit.run.configure import apply_prepared, configure, prepare, summary
from relaykit.stores import open_store

STOP_TIMEOUT = 10.0  # seconds a service gets to stop after SIGTERM before SIGKILL
# How often a store that can go away (PostgreSQL) is asked whether it answers: the most a
# node waits, after the database is back, before it reloads Postfix (see _watch_store).
STORE_PROBE_INTERVAL = 2.0


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

    def finish(self) -> None:
        """After the process exited: anything left to pass on (its last log lines)."""


class PostfixMaster(Service):
    """Postfix's master(8) as our child, as `postfix start-fg` runs it when not PID 1
    (`master -s`: stay in the foreground, keep stdout for maillog_file = /dev/stdout).
    Run directly rather than through postfix-script so that SIGTERM/SIGHUP reach the
    master itself and its exit status is ours to see."""

    name = "postfix"

    def __init__(self, postfix: Postfix) -> None:
        super().__init__()
        self.postfix = postfix
        self.pump: LogPump | None = None

    def start(self) -> None:
        """With maillog_file = /dev/stdout (the image's main.cf), postlogd writes Postfix's
        log to the master's stdout: a pipe to our LogPump, which passes it on to ours."""
        self.prepare()
        if self.postfix.param("maillog_file") != "/dev/stdout":
            if metrics.enabled():
                log.warn("maillog_file is not /dev/stdout: Postfix's log does not pass through relaykit, "
                         "so the delivery counters stay at 0")
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL)
            return
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.pump = LogPump(self.process.stdout).start()

    def finish(self) -> None:
        if self.pump:
            self.pump.join()  # Postfix's last lines ("terminating on signal 15") reach stdout

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
        # But not for new OAuth2 tokens: only smtp(8) reads that table, and each smtp
        # process re-opens a changed table before its next delivery ("table ... has
        # changed -- restarting"), so no mail waits and no process is disturbed.
        return bool(changes.params or set(changes.tables) - {SASL_OAUTH2})


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


def supervised(settings: Settings) -> list[Service]:
    """What `relaykit start` runs, in start order (stopped in reverse)."""
    postfix = Postfix(settings.mail_config)
    services: list[Service] = []
    if settings.submission and settings.submission.enabled:
        services.append(Dovecot(layout_for(settings, postfix)))
    if signing_keys(settings):
        services.append(OpenDKIM(settings.dkim_dir))
    services.append(PostfixMaster(postfix))
    return services


class Supervisor:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.services: list[Service] = []
        self.watch_stop = threading.Event()
        self.certificates: tuple[Path, ...] = ()  # SSL_CERT_PATH, SSL_KEY_PATH: watched
        self.certificate_state = ""
        self.config_dirs: tuple[Path, ...] = ()  # a change there re-applies the configuration
        self.keeper = TokenKeeper(lambda: self.events.put(("tokens",)))

    # what goes into the queue
    def _on_signal(self, signum: int, frame) -> None:
        self.events.put(("signal", signum))

    def _waiter(self, service: Service) -> None:
        self.events.put(("exited", service, service.wait()))

    # lifecycle
    def run(self) -> int:
        started = time.monotonic()
        configure(self.environ, self.keeper)  # ConfigError -> exit 1 with file:line: refuse to start
        settings = load(self.environ)
        if settings.metrics_port:
            self._serve_metrics(settings)
        self.services = supervised(settings)
        submission = settings.submission
        if submission and submission.enabled and submission.cert_file and submission.key_file:
            self.certificates = (submission.cert_file, submission.key_file)
            self.certificate_state = _fingerprint(self.certificates)
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
        self.config_dirs = tuple(watched)
        # The certificate's directory, not the file: renewals replace files and symlinks
        # (certbot's live/, Kubernetes' ..data) rather than writing into them.
        watched.update(path.parent for path in self.certificates)
        for directory in watched:
            directory.mkdir(parents=True, exist_ok=True)
        watch.start(sorted(watched), lambda paths: self.events.put(("changed", paths)), self.watch_stop)
        log.info(f"watching {', '.join(str(d) for d in sorted(watched))} for changes")
        store = open_store(self.environ)
        if store.reachable() is not None:
            threading.Thread(target=self._watch_store, args=(store,), name="relaykit-store", daemon=True).start()
        return self._loop()

    def _watch_store(self, store) -> None:
        """After a database outage, Postfix by itself takes up to ~90 s to deliver again:
        its pgsql client waits 60 s before it retries a server it found down (dict_pgsql.c,
        not a setting in 3.7), a connection that was open when the server went down fails
        once more on first use, and processes remember failed lookups (the queue manager
        30 s, smtpd for its lifetime). So: ask the store every STORE_PROBE_INTERVAL
        seconds, and when it answers again, reload Postfix (fresh processes, fresh
        connections; a graceful reload: sessions in progress finish) and flush the queue."""
        up = bool(store.reachable())
        back = False  # the last probe found it back
        while not self.watch_stop.wait(STORE_PROBE_INTERVAL):
            now = bool(store.reachable())
            if now and not up:
                self.events.put(("store back", False))
            elif now and back:
                # Once more, a probe later: a delivery the reload caught in progress (its
                # lookup failing on an old connection) leaves its message in the active
                # queue, which the new queue manager reads only as it starts, and which
                # that delivery still held then ("skipped, still being delivered").
                self.events.put(("store back", True))
            elif up and not now:
                log.warn("the database does not answer: Postfix defers mail until it is back")
            back = now and not up
            up = now

    def _loop(self) -> int:
        while True:
            event = self.events.get()
            if event[0] == "signal":
                if event[1] == signal.SIGHUP:
                    self.reconfigure("SIGHUP", force=True)
                    continue
                log.info(f"received {signal.Signals(event[1]).name}: stopping")
                return self._stop_all()
            if event[0] == "exited":
                _, service, status = event
                log.error(f"{service.name} exited unexpectedly (status {status}): stopping")
                self._stop_all()
                return 1
            if event[0] == "tokens":
                self.reconfigure("oauth2 tokens")
                continue
            if event[0] == "changed":
                paths = {Path(p) for p in event[1]}
                renewed = self._certificate_renewed(paths)
                if renewed or any(p.is_relative_to(d) for p in paths for d in self.config_dirs):
                    self.reconfigure(", ".join(sorted(p.name for p in paths)), force=renewed)
            if event[0] == "store back":
                self.store_back(again=event[1])

    def store_back(self, again: bool = False) -> None:
        """The database answers again: reload Postfix and deliver the deferred mail now
        (`again`: a probe later, for mail a delivery in progress kept from the first)."""
        started = time.monotonic()
        for service in self.services:
            if isinstance(service, PostfixMaster):
                try:
                    service.reload()
                    service.postfix.flush()
                except (RelaykitError, OSError) as exc:
                    log.error(f"after the database came back: {exc}")
                    return
        if again:
            log.debug("the database still answers: reloaded postfix and flushed the queue once more")
            return
        log.info(f"the database answers again: reloaded postfix and flushed the queue in "
                 f"{(time.monotonic() - started) * 1000:.0f} ms")

    def _certificate_renewed(self, paths: set[Path]) -> bool:
        """Whether a change in the certificate's directory changed the certificate or key."""
        if not self.certificates or not {p.parent for p in paths} & {c.parent for c in self.certificates}:
            return False
        state = _fingerprint(self.certificates)
        if state == self.certificate_state:
            return False
        problem = system.certificate_problem(*self.certificates)
        if problem:  # half-renewed (the key is new, the certificate not yet): wait for the rest
            log.warn(f"the certificate {self.certificates[0]} changed but cannot be used with "
                     f"{self.certificates[1]} ({problem}): keeping the current one until it can")
            return False
        self.certificate_state = state
        log.info(f"the certificate {self.certificates[0]} changed: new connections get it after the reload")
        return True

    def _serve_metrics(self, settings: Settings) -> None:
        postfix = Postfix(settings.mail_config)
        try:
            metrics.serve(settings.metrics_port, settings.metrics_address, version=__version__,
                          postfix_version=postfix.param("mail_version"), queue=postfix.queue)
        except OSError as exc:  # the port is taken: refuse to start rather than run unobserved
            raise RelaykitError(f"METRICS_PORT: cannot listen on {settings.metrics_address}:"
                                f"{settings.metrics_port}: {exc.strerror or exc}") from None
        metrics.configured()
        log.info(f"metrics on http://{settings.metrics_address}:{settings.metrics_port}/metrics")

    def reconfigure(self, why: str, force: bool = False) -> Changes | None:
        """Re-plan and re-apply; reload the services the changes concern (`force`: reload
        Postfix even when nothing changed). Never raises: on an invalid config the running
        services keep the last good one."""
        started = time.monotonic()
        try:
            prepared = prepare(self.environ)
            changes = apply_prepared(prepared, self.keeper.sync(prepared.plan.oauth2))
        except ConfigError as exc:
            metrics.reload("refused")
            log.error(f"{exc}\nconfiguration not applied: still running the last good one")
            if force:
                self._reload_postfix(why)
            return None
        except (RelaykitError, OSError) as exc:
            metrics.reload("failed")
            log.error(f"re-applying the configuration failed: {exc}")
            if force:
                self._reload_postfix(why)
            return None
        if not changes and not force:
            metrics.reload("unchanged")
            log.debug(f"{why} changed: nothing to apply")
            return changes
        reloaded = []
        for service in self.services:
            if service.needs_reload(changes) or (force and isinstance(service, PostfixMaster)):
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
        metrics.reload("applied")
        log.info(f"{why} changed: applied {', '.join(changes.names) or 'nothing new'}"
                 f"{'; reloaded ' + ', '.join(reloaded) if reloaded else ''}"
                 f" in {(time.monotonic() - started) * 1000:.0f} ms; {summary(prepared.plan)}")
        return changes

    def _reload_postfix(self, why: str) -> None:
        """SIGHUP and a renewed certificate reload Postfix even on a refused configuration:
        it runs on the last good one, and new smtpd processes read the certificate."""
        for service in self.services:
            if isinstance(service, PostfixMaster):
                service.reload()
                log.info(f"{why}: reloaded postfix (on the last good configuration)")

    def _stop_all(self) -> int:
        """SIGTERM every running service (last started first), wait, SIGKILL stragglers."""
        self.watch_stop.set()
        self.keeper.stop()
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
        for service in running:
            service.finish()
        log.info("stopped")
        return 0


def _fingerprint(paths: tuple[Path, ...]) -> str:
    """What the certificate and key files hold now ("" for one being replaced)."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"\0missing")
    return digest.hexdigest()


def main(args: list[str]) -> int:
    if args:
        raise UsageError(f"relaykit start takes no arguments (got {' '.join(args)!r})")
    try:
        return Supervisor(os.environ).run()
    except PostfixError as exc:
        raise RelaykitError(f"cannot start: {exc}") from None
