"""The only module that runs Postfix's programs: postconf, postmap, postfix, postqueue,
postsuper.

Through subprocess (see _run), always with `-c <config dir>` so a private instance is never confused with
/etc/postfix. Nothing secret is ever an argument (ps(1) shows argv): tables are written
to files first and postmap reads them; main.cf parameters hold no passwords.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from relaykit.errors import RelaykitError

# Table types whose source file postmap(1) compiles into an indexed file.
INDEXED_SUFFIX = {"hash": ".db", "btree": ".db", "dbm": ".dir", "lmdb": ".lmdb", "cdb": ".cdb"}
# Of those, the ones postmap -i/-d can update in place (cdb is write-once, dbm unlocked).
UPDATABLE_TYPES = ("lmdb", "hash", "btree")
# A table source smaller than this (~2,000 lines) compiles in a millisecond or two.
SMALL_TABLE = 64 * 1024
# What `relaykit configure` asks postconf (Postfix.prefetch): the default table type
# (unless TABLE_TYPE says), then main.cf's and master.cf's entries for run/apply.py.
TABLE_TYPE_READ = ("-h", "default_database_type")
APPLY_READS = (("-n",), ("-M",))


class PostfixError(RelaykitError):
    """A Postfix command failed; the message is its own diagnostic."""


# Postfix.compile_ahead's scratch directories: .relaykit-ahead-<pid> in the config dir.
AHEAD_SCRATCH = ".relaykit-ahead-"
EDIT_SCRATCH = ".relaykit-edit-"  # also _copy's prefix: run/apply removes a killed run's


class Ahead:
    """A table being compiled ahead (Postfix.compile_ahead): its name and type, the text
    it is compiled from, the scratch directory and the postmap process."""

    __slots__ = ("name", "table_type", "data", "directory", "process", "taken")

    def __init__(self, name: str, table_type: str, data: bytes, directory: Path,
                 process: subprocess.Popen) -> None:
        self.name, self.table_type, self.data, self.directory, self.process = name, table_type, data, directory, process
        self.taken = False


class ParamsEdit:
    """main.cf being edited on a scratch copy (Postfix.start_editing_params): the scratch
    directory and the postconf process."""

    __slots__ = ("directory", "process")

    def __init__(self, directory: Path, process: subprocess.Popen) -> None:
        self.directory, self.process = directory, process


def _remove_tree(directory: Path) -> None:
    """A scratch directory of files (no subdirectories): without shutil (~4 ms to import)."""
    try:
        for entry in os.scandir(directory):
            os.unlink(entry.path)
        os.rmdir(directory)
    except OSError:  # gone already, or not ours to remove: left as it is
        pass


def _remove_stale_scratch(config_dir: Path) -> None:
    """Scratch directories of compile_ahead whose process is gone (killed mid-way)."""
    for entry in os.scandir(config_dir):
        if entry.name.startswith(AHEAD_SCRATCH):
            pid = entry.name[len(AHEAD_SCRATCH):]
            try:
                os.kill(int(pid), 0)
                continue  # still running: its own
            except (ValueError, ProcessLookupError):
                _remove_tree(Path(entry.path))
            except PermissionError:
                continue  # another user's live process


class Postfix:
    def __init__(self, config_dir: Path) -> None:
        self.config_dir = Path(config_dir)

    def _run(self, program: str, *args: str, stdin: str | None = None, warnings: list[str] | None = None) -> str:
        """The program's standard output; its standard error lines go to `warnings` when
        given. A failed exit raises PostfixError with the program's own diagnostic.

        subprocess, not the `sh` package: sh 2.x imports asyncio and importlib.metadata
        (~90 ms, a third of configure's budget at 100k domains) and runs threads per call."""
        return self._finish(program, self._start(program, *args, stdin=stdin is not None), stdin, warnings)

    def _start(self, program: str, *args: str, stdin: bool = False) -> subprocess.Popen:
        try:
            return subprocess.Popen([program, "-c", str(self.config_dir), *args],
                                    stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, errors="replace")
        except FileNotFoundError:
            raise PostfixError(f"{program} is not installed (Debian package postfix)") from None

    @staticmethod
    def _finish(program: str, process: subprocess.Popen, stdin: str | None = None,
                warnings: list[str] | None = None, quiet_failure_ok: bool = False) -> str:
        stdout, stderr = process.communicate(stdin)
        if process.returncode and not (quiet_failure_ok and process.returncode == 1 and not stderr.strip()):
            detail = stderr.strip() or stdout.strip()
            raise PostfixError(f"{program} failed: {detail or f'exit status {process.returncode}'}")
        if warnings is not None:
            warnings.extend(stderr.splitlines())
        return stdout

    def _run_all(self, program: str, runs: list[tuple[tuple[str, ...], str | None]],
                 quiet_failure_ok: bool = False) -> None:
        """Run the program once per (args, stdin) at the same time (independent tables: one
        CPU each); PostfixError with every failure once all have ended."""
        started = [(self._start(program, *args, stdin=stdin is not None), stdin) for args, stdin in runs]
        failed = []
        for process, stdin in started:
            try:
                self._finish(program, process, stdin, quiet_failure_ok=quiet_failure_ok)
            except PostfixError as exc:
                failed.append(exc.message.removeprefix(f"{program} failed: "))
        if failed:
            raise PostfixError(f"{program} failed: {'; '.join(failed)}")

    def _postconf_read(self, *args: str) -> str:
        """What `postconf *args` prints, run again only when main.cf or master.cf changed
        since (inode, size, mtime, ctime: any write or rename changes the ctime): the live
        reload of a 100k-domain config must not spend ~10 ms a call re-reading them."""
        stamp = self._stamp()
        key = (str(self.config_dir), args)
        cached = _READS.get(key)
        if cached is None or cached[0] != stamp:
            output = self._prefetched(key, stamp)
            cached = _READS[key] = (stamp, output if output is not None else self._run("postconf", *args))
        return cached[1]

    def prefetch(self, *reads: tuple[str, ...]) -> None:
        """Start these postconf reads (argument tuples of _postconf_read) in the background:
        configure reads and plans meanwhile, and each read it then makes is ready instead
        of ~10 ms of waiting."""
        stamp = self._stamp()
        for args in reads:
            key = (str(self.config_dir), args)
            cached = _READS.get(key)
            if (cached is None or cached[0] != stamp) and key not in _PENDING:
                _PENDING[key] = (stamp, self._start("postconf", *args))

    def _prefetched(self, key: tuple, stamp: tuple) -> str | None:
        """A prefetched read's output, if it was started with main.cf and master.cf as they
        are now (a file changed since: None, and it is read again)."""
        started = _PENDING.pop(key, None)
        if started is None:
            return None
        try:
            output = self._finish("postconf", started[1])
        except PostfixError:
            if started[0] == stamp:
                raise
            return None
        return output if started[0] == stamp else None

    def _stamp(self) -> tuple:
        return tuple(_stamp(self.config_dir / name) for name in ("main.cf", "master.cf"))

    # main.cf
    def explicit_params(self) -> dict[str, str]:
        """Every parameter set in main.cf (postconf -n)."""
        return _parse_params(self._postconf_read("-n"))

    def defaults(self) -> dict[str, str]:
        """Every parameter this Postfix knows, with its default (postconf -d), including the
        per-service parameters of master.cf's services (relaykit_smtps_..._limit)."""
        return _parse_params(self._postconf_read("-d"))

    def param(self, name: str) -> str:
        """The effective value of one parameter (main.cf or Postfix's default)."""
        return self._postconf_read("-h", name).strip()

    def edit_params(self, to_set: Mapping[str, str], to_remove: Iterable[str]) -> None:
        """Set and remove main.cf parameters as one change (see _edit)."""
        self._edit("main.cf", ("-e", *(f"{name} = {value}" for name, value in to_set.items())) if to_set else (),
                   ("-X", *to_remove))

    def _edit(self, name: str, *runs: tuple[str, ...]) -> None:
        """Run postconf edits of main.cf or master.cf. One run is atomic (postconf writes a
        temporary file and renames it). Setting and removing takes two runs, so those run
        on a copy that then replaces the file: a kill between them leaves the old file,
        never a mix of old and new."""
        runs = tuple(args for args in runs if len(args) > 1)
        if len(runs) == 1:
            self._run("postconf", *runs[0])
        elif runs:
            with self._copy() as copy:
                for args in runs:
                    copy._run("postconf", *args)
                os.replace(copy.config_dir / name, self.config_dir / name)
        if runs:
            self.cool_down(name)

    def start_editing_params(self, to_set: Mapping[str, str]) -> ParamsEdit | None:
        """Set these main.cf parameters on a scratch copy of it, by one postconf run in the
        background (while the tables compile: ~10 ms off configure); edited_params puts
        the copy in place, a rename, once they are compiled, so that main.cf never names a
        table before. None when there is nothing to set or no scratch can be written: then
        edit_params does it, as always."""
        if not to_set:
            return None
        directory = self.config_dir / f"{EDIT_SCRATCH}{os.getpid()}"
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
            copy = self._copy_into(directory)
        except OSError:
            _remove_tree(directory)
            return None
        return ParamsEdit(directory, copy._start("postconf", "-e", *(f"{name} = {value}"
                                                                     for name, value in to_set.items())))

    def edited_params(self, edit: ParamsEdit) -> None:
        """Wait for start_editing_params' postconf and rename its main.cf over this one
        (atomic); PostfixError if postconf failed, main.cf then unchanged. The scratch
        directory is discard_params_edit's to remove."""
        self._finish("postconf", edit.process)
        target = self.config_dir / "main.cf"
        try:
            os.replace(edit.directory / "main.cf", target)
        except OSError as exc:  # e.g. main.cf bind-mounted as a file: postconf -e's own rename fails so too
            raise PostfixError(f"cannot replace {target}: {exc.strerror or exc}") from None
        self.cool_down("main.cf")

    @staticmethod
    def discard_params_edit(edit: ParamsEdit | None) -> None:
        """Stop the edit if it still runs; remove its scratch directory (what is left of it)."""
        if edit is None:
            return
        if edit.process.returncode is None:  # not waited for by edited_params
            if edit.process.poll() is None:
                edit.process.kill()
            edit.process.communicate()
        _remove_tree(edit.directory)

    @contextmanager
    def _copy(self) -> Iterator[Postfix]:
        """A Postfix on a scratch copy of main.cf and master.cf (postconf -c needs both), in
        the config directory (so a rename onto the real file is atomic), removed after."""
        import tempfile

        with tempfile.TemporaryDirectory(dir=self.config_dir, prefix=EDIT_SCRATCH) as scratch:
            yield self._copy_into(Path(scratch))

    def _copy_into(self, directory: Path) -> Postfix:
        """A Postfix on copies of main.cf and master.cf (postconf -c reads both) in `directory`."""
        copy = Postfix(directory)
        for name in ("main.cf", "master.cf"):
            source = self.config_dir / name
            if source.exists():
                (directory / name).write_bytes(source.read_bytes())
                copy.cool_down(name)  # else postconf would pause ~1.8 s on a file this young
        return copy

    def cool_down(self, name: str) -> None:
        """Date a file we just finished writing 2 s back.

        Postfix reads main.cf and master.cf through load_file(), which pauses in 300 ms
        steps while a file's mtime is within the last second or two ("pausing to let
        <file> cool down"), in case a writer is still busy with it. Our writer (postconf)
        has exited, so the file is complete: without this every Postfix program started in
        the next 2 s (postconf, postmap, each daemon after a reload) would wait ~1.8 s.
        """
        path = self.config_dir / name
        past = time.time() - 2.5
        os.utime(path, (past, past))

    # master.cf
    def services(self) -> dict[str, str]:
        """Every master.cf service as {"name/type": "one-line entry"} (postconf -M -f off)."""
        found = {}
        for line in self._postconf_read("-M").splitlines():
            fields = line.split()
            if len(fields) >= 8:
                found[f"{fields[0]}/{fields[1]}"] = " ".join(fields)
        return found

    def edit_services(self, to_set: Mapping[str, str], to_remove: Iterable[str]) -> None:
        """Add or replace master.cf services ({"name/type": "entry"}) and remove others, as
        one change (see _edit)."""
        self._edit("master.cf", ("-M", *(f"{key} = {entry}" for key, entry in to_set.items())),
                   ("-MX", *to_remove))

    def start_adding_services(self, entries: Mapping[str, str]) -> subprocess.Popen | None:
        """Add or replace these master.cf services ({"name/type": "entry"}) by one postconf
        run (atomic: a temporary file renamed) in the background; added_services waits."""
        if not entries:
            return None
        return self._start("postconf", "-M", *(f"{key} = {entry}" for key, entry in entries.items()))

    def added_services(self, started: subprocess.Popen | None) -> None:
        """Wait for start_adding_services' postconf (PostfixError if it failed)."""
        if started is not None:
            self._finish("postconf", started)
            self.cool_down("master.cf")

    def service_params(self) -> dict[str, str]:
        """Every master.cf `-o` parameter as {"name/type/param": value} (postconf -P)."""
        return _parse_params(self._postconf_read("-P"))

    def edit_service_params(self, to_set: Mapping[str, str], to_remove: Iterable[str]) -> None:
        """Set and remove services' `-o` parameters as one change (see _edit)."""
        self._edit("master.cf", ("-P", *(f"{key}={value}" for key, value in to_set.items())), ("-PX", *to_remove))

    def trial(self, params: Mapping[str, str], services: Mapping[str, str],
              service_params: Mapping[str, str]) -> list[str]:
        """Postfix's own verdict on main.cf and master.cf with these changes, on a copy (the
        live files are not touched): a Postfix program reads every global parameter
        (a bad number or inet_protocols is fatal there), and postconf's warnings
        (undefined $name, unused parameter) are returned. PostfixError: it is refused."""
        with self._copy() as copy:
            scratch = copy.config_dir
            if params:
                copy._run("postconf", "-e", *(f"{name} = {value}" for name, value in params.items()))
            if services:
                copy._run("postconf", "-M", *(f"{key} = {entry}" for key, entry in services.items()))
            if service_params:
                copy._run("postconf", "-P", *(f"{key}={value}" for key, value in service_params.items()))
            copy.cool_down("main.cf")
            copy.cool_down("master.cf")
            copy._run("postmap", "-q", "relaykit-probe", "inline:{relaykit-probe=ok}")
            stderr: list[str] = []
            for args in (("-nx",), ("-Px",)):
                copy._run("postconf", *args, warnings=stderr)
            warnings = []
            for line in stderr:
                _, found, text = line.partition("warning: ")
                if found:  # "<copy>/main.cf: undefined parameter: x": the copy's path says nothing
                    warnings.append(text.removeprefix(f"{scratch}/"))
            return warnings

    # lookup tables
    def postmap(self, table_type: str, paths: Iterable[Path]) -> None:
        """Compile the tables (nothing to do for texthash): each large one by its own
        postmap, all at once (one of 100k lines takes ~50-100 ms of one CPU), and the
        small ones by a single postmap besides, which compiles them in turn: a process
        each would take longer to start than they take to compile."""
        if table_type not in INDEXED_SUFFIX:
            return
        by_size = [(f"{table_type}:{path}", _size(path) < SMALL_TABLE) for path in paths]
        small = tuple(table for table, is_small in by_size if is_small)
        runs = [((table,), None) for table, is_small in by_size if not is_small] + ([(small, None)] if small else [])
        self._run_all("postmap", runs)

    def compile_ahead(self, table_type: str, name: str, data: bytes) -> Ahead | None:
        """Start compiling `data`, a guess at table `name`'s text, in a scratch directory
        of the config dir: postmap then runs on another CPU while configure reads and
        plans (~100 ms of one CPU for 100k lines). take_ahead puts the result in place
        if the guess was right; discard_ahead removes it either way. None when the
        scratch cannot be written (a read-only or full file system): the table is then
        compiled the usual way, which reports what is wrong."""
        directory = self.config_dir / f"{AHEAD_SCRATCH}{os.getpid()}"
        try:
            _remove_stale_scratch(self.config_dir)
            directory.mkdir(mode=0o700, exist_ok=True)
            (directory / name).write_bytes(data)
            # postmap gives the compiled table its source's mode: a plain table's, whatever the umask
            (directory / name).chmod(0o644)
        except OSError:
            _remove_tree(directory)
            return None
        return Ahead(name, table_type, data, directory, self._start("postmap", f"{table_type}:{directory / name}"))

    def take_ahead(self, ahead: Ahead, table_type: str, path: Path, data: bytes) -> bool:
        """Whether the table compiled ahead is now `path`'s compiled table: only if it was
        compiled from exactly `data` (just written to `path`) as `table_type`, and postmap
        succeeded. It is renamed into place (atomically, as postmap's own output would not
        be) and dated now: not older than the source written before it."""
        if (ahead.name, ahead.table_type, ahead.data) != (path.name, table_type, data) or ahead.taken:
            return False
        try:
            self._finish("postmap", ahead.process)
        except PostfixError:
            return False  # compiled again the usual way, which reports the error
        suffix = INDEXED_SUFFIX[table_type]
        target = path.with_name(path.name + suffix)
        os.replace(ahead.directory / (ahead.name + suffix), target)
        os.utime(target)
        ahead.taken = True
        return True

    @staticmethod
    def discard_ahead(ahead: Ahead | None) -> None:
        """Stop the compile if it still runs; remove its scratch directory."""
        if ahead is None:
            return
        if ahead.process.poll() is None:
            ahead.process.kill()
        ahead.process.communicate()
        _remove_tree(ahead.directory)

    def postmap_update(self, table_type: str, updates: Iterable[tuple[Path, bytes, bytes]]) -> None:
        """Update compiled tables in place, for each (source, `key value` lines to add or
        replace, keys to delete): `postmap -i -r` and `postmap -d -`, both reading standard
        input (secrets never in argv). For lmdb, hash and btree (UPDATABLE_TYPES), whose
        compiled tables postmap updates under its lock while daemons keep reading them."""
        updates = list(updates)
        # deletions, then additions: two runs on one table would wait for each other's lock
        # (and one holding it for standard input we have not written yet: a deadlock)
        # postmap -d exits 1, saying nothing, when no key was there: gone already
        self._run_all("postmap", [(("-d", "-", f"{table_type}:{path}"), deletions.decode())
                                  for path, _, deletions in updates if deletions], quiet_failure_ok=True)
        self._run_all("postmap", [(("-i", "-r", f"{table_type}:{path}"), upserts.decode())
                                  for path, upserts, _ in updates if upserts])

    def query(self, table: str, key: str) -> str | None:
        """postmap -q: what Postfix itself finds for `key` in `table` (type:name)."""
        try:
            return self._run("postmap", "-q", key, table).rstrip("\n")
        except PostfixError:  # _run turns every failed exit into this
            return None

    # the mail system
    def check(self) -> None:
        """`postfix check`: config sanity, queue directories and owners (what `postfix
        start-fg` checks first). PostfixError says why: postfix explains only on a
        terminal, so a failure is run again through script(1) for the reason."""
        try:
            self._run("postfix", "check")
        except PostfixError:
            result = subprocess.run(["script", "-qec", f"postfix -c '{self.config_dir}' check", "/dev/null"],
                                    capture_output=True, text=True, stdin=subprocess.DEVNULL)
            raise PostfixError(f"postfix check failed: {result.stdout.strip() or result.returncode}") from None

    def reload(self) -> None:
        self._run("postfix", "reload")

    def stop(self) -> None:
        self._run("postfix", "stop")

    # the queue (setup queue ..., the metrics' queue sizes)
    def queue(self) -> list[dict]:
        """Every queued message as `postqueue -j` prints it: queue_name, queue_id,
        arrival_time, message_size, sender, recipients [{address, delay_reason}]."""
        return [json.loads(line) for line in self._run("postqueue", "-j").splitlines() if line.strip()]

    def flush(self, queue_ids: Iterable[str] | None = None) -> None:
        """Deliver deferred mail now: all of it (postqueue -f) or these messages (postqueue -i)."""
        if queue_ids is None:
            self._run("postqueue", "-f")
            return
        for queue_id in queue_ids:
            self._run("postqueue", "-i", queue_id)

    def postsuper(self, option: str, queue_ids: Iterable[str]) -> None:
        """postsuper -d (delete), -h (hold), -H (release) for these messages, the ids read
        from standard input ("-"): one call, whatever their number."""
        ids = "".join(f"{queue_id}\n" for queue_id in queue_ids)
        if ids:
            self._run("postsuper", option, "-", stdin=ids)

    def running(self) -> bool:
        try:
            self._run("postfix", "status")
        except PostfixError:
            return False
        return True


_READS: dict[tuple[str, tuple[str, ...]], tuple[tuple, str]] = {}  # see Postfix._postconf_read
_PENDING: dict[tuple[str, tuple[str, ...]], tuple[tuple, subprocess.Popen]] = {}  # see Postfix.prefetch


def _size(path: Path) -> int:
    """The file's size; 0 when it cannot be read (postmap then says why)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _stamp(path: Path) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _parse_params(text: str) -> dict[str, str]:
    params = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            params[name.strip()] = value.strip()
        elif line.rstrip().endswith(" ="):
            params[line.rstrip()[:-2].strip()] = ""
    return params
