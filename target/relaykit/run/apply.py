"""Carry a plan out: write the tables, compile them, set main.cf. Idempotent.

Order matters for a running Postfix: tables are written (atomically) and compiled before
main.cf points at them, so no daemon ever opens a map that is not there yet; master.cf's
new services are added meanwhile, before a table or parameter names them, and its stale
ones removed after main.cf names them no more.
Only what changed is touched, so an unchanged configuration causes no reload churn.

relaykit remembers in `relaykit.state` (in MAIL_CONFIG) which main.cf parameters it set;
one it set before and no longer plans is removed, unless someone changed it since. A
parameter an administrator set by hand is never removed.

Every file relaykit deletes is deleted here: tables no longer planned, and the Dovecot
passdb file of the store not in use (the planners and edges only write).
"""

from __future__ import annotations

import grp
import json
import os
from collections.abc import Mapping
from pathlib import Path

from relaykit.core import routetables, tabledelta
from relaykit.core.dovecot import Layout, Passdb
from relaykit.edges import dovecot
from relaykit.edges.editor import Locked, replace_if_changed, write_atomic
from relaykit.edges.postfix import INDEXED_SUFFIX, SMALL_TABLE, UPDATABLE_TYPES, Ahead, Postfix, PostfixError
from relaykit.model.plan import RELAYHOST_MAP, SASL_PASSWD, TLS_POLICY, Plan
from relaykit.record import record

STATE_FILE = "relaykit.state"


@record
class Changes:
    """What an apply changed: Postfix's tables (file names) and main.cf/master.cf entries,
    and whether Dovecot's config changed (Dovecot then needs a reload, Postfix does not)."""

    tables: tuple[str, ...]
    params: tuple[str, ...]
    dovecot_config: bool = False

    def __bool__(self) -> bool:
        return bool(self.tables or self.params or self.dovecot_config)

    @property
    def names(self) -> tuple[str, ...]:
        """Everything changed, for the log."""
        return (*self.tables, *self.params, *(("dovecot.conf",) if self.dovecot_config else ()))


def _write_table(path: Path, data: bytes, secret: bool, group: str | None = None) -> tuple[bool, bytes | None]:
    """(written, what the file held before) as editor.replace_if_changed. Without fsync:
    a source that a crash leaves other than the plan is written again at the next start
    and compiled whole (_SOURCES), as every table whose text differs from the plan."""
    mode = 0o640 if group else 0o600 if secret else 0o644
    gid = _gid(group) if group else 0 if os.geteuid() == 0 else -1
    return replace_if_changed(path, data, mode, uid=0 if os.geteuid() == 0 else -1, gid=gid, durable=False)


# Each table source as this process last compiled it. An in-place update (core/tabledelta.py)
# is only made from that text: a source read back after a restart may not be what its
# compiled table was made from (a crash, a kill, an edit by hand), so a changed table is
# compiled whole the first time. Live reload updates in place from then on.
_SOURCES: dict[Path, bytes] = {}


def _gid(group: str) -> int:
    """The group's id when we can chown to it (as root), else -1 (leave the group as is)."""
    if os.geteuid() != 0:
        return -1
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return -1


def _compiled(path: Path, table_type: str) -> Path | None:
    suffix = INDEXED_SUFFIX.get(table_type)
    return path.with_name(path.name + suffix) if suffix else None


def _compiled_current(source: Path, compiled: Path) -> bool:
    """Whether the compiled table was made from the source as it is (see _apply)."""
    try:
        return compiled.stat().st_mtime >= source.stat().st_ctime and not _marker(source).exists()
    except FileNotFoundError:
        return False


def _marker(source: Path) -> Path:
    """There while postmap compiles or updates the source's table (see _apply)."""
    return source.with_name(f".{source.name}.postmap.tmp")


# What relaykit.state records: main.cf parameters and master.cf services and service
# parameters relaykit set, and the values they replaced (restored when relaykit no longer
# sets them: a template's value an override changed comes back when the line goes).
_STATE_KEYS = ("params", "services", "replaced", "service_params", "service_replaced")


def _read_state(directory: Path) -> dict:
    """What relaykit set last time: {"params": {name: value}, "services": {key: entry}, ...}."""
    try:
        state = json.loads((directory / STATE_FILE).read_text())
        read = {key: dict(state.get(key, {})) for key in _STATE_KEYS}
        if "tables" in state:  # since relaykit recorded them; before, see _apply
            read["tables"] = list(state["tables"])
        return read
    except (OSError, ValueError, TypeError, AttributeError):
        return {key: {} for key in _STATE_KEYS}


def _diff(planned: dict[str, str], current: dict[str, str], previous: dict[str, str],
          replaced: dict[str, str]) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """(to set, to remove, values replaced) for main.cf parameters or services' parameters.

    Set what differs. What relaykit set before and no longer plans goes, unless changed by
    hand since: back to the value it replaced, if it replaced one, else removed."""
    to_set = {k: v for k, v in planned.items() if current.get(k) != v}
    kept = {k: v for k, v in replaced.items() if k in planned}
    for k in to_set:
        if k in current and k not in previous and k not in kept:
            kept[k] = current[k]
    stale = [k for k, v in previous.items() if k not in planned and current.get(k) == v]
    to_set.update({k: replaced[k] for k in stale if k in replaced})
    return to_set, [k for k in stale if k not in replaced], kept


def compile_ahead(postfix: Postfix, table_type: str, foreseen: Mapping[str, bytes]) -> Ahead | None:
    """Start compiling the largest foreseen table (a store's guess at a table's text before
    reading and planning: stores/files.py; or the plan's own tables), unless it is small (compiled in a moment with
    the others) or its source already holds that text, compiled (nothing to compile)."""
    if table_type not in INDEXED_SUFFIX or not foreseen:
        return None
    name, data = max(foreseen.items(), key=lambda item: len(item[1]))
    if len(data) < SMALL_TABLE:
        return None
    path = postfix.config_dir / name
    if _compiled_current(path, _compiled(path, table_type)) and _holds(path, data):
        return None
    return postfix.compile_ahead(table_type, name, data)


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def apply(plan: Plan, postfix: Postfix, ahead: Ahead | None = None) -> Changes:
    """Carry the plan out (see the module's docstring); a table compiled `ahead` from
    exactly the text planned for it is used instead of compiling it again."""
    # One apply at a time per MAIL_CONFIG (the daemon's reload and a manual configure):
    # interleaved, one could compile or record the other's half-written state.
    with Locked(postfix.config_dir / STATE_FILE):
        return _apply(plan, postfix, ahead)


def _apply(plan: Plan, postfix: Postfix, ahead: Ahead | None = None) -> Changes:
    directory = postfix.config_dir
    for scratch in directory.glob(".relaykit-edit-*"):  # a killed run's copy (Postfix._edit)
        import shutil  # only after a killed run: shutil imports bz2 and lzma (~4 ms)

        shutil.rmtree(scratch, ignore_errors=True)
    changed_tables = []
    to_compile: dict[str, list[Path]] = {}  # by table type: a table may have a type of its own
    to_update: dict[str, list[tuple[Path, bytes, bytes]]] = {}  # the same, changed in place
    foreseen = None  # (type, path, text) of the table compiled ahead, if it is to be compiled
    compiled_from: dict[Path, bytes] = {}  # for _SOURCES, once postmap has succeeded
    for table in plan.tables:
        path = directory / table.name
        kind = table.kind or plan.table_type
        compiled = _compiled(path, kind) if table.indexed else None
        # st_ctime, not st_mtime: cool_down dates the source's mtime back, so a run killed
        # between writing the source and postmap would leave an old compiled table that
        # looks newer than its source. The ctime of the source is when we last wrote it.
        current = compiled is not None and _compiled_current(path, compiled)
        data = table.text().encode()
        written, previous = _write_table(path, data, table.secret, table.group)
        if written:
            changed_tables.append(table.name)
            postfix.cool_down(table.name)  # texthash tables are read through load_file too
        if not compiled:
            continue
        compiled_from[path] = data
        if current and not written:
            continue
        # A few lines changed in a large compiled table: update it in place (core/tabledelta.py)
        delta = tabledelta.delta(previous, data) if (current and previous and kind in UPDATABLE_TYPES
                                                     and previous == _SOURCES.get(path)) else None
        if delta is not None:
            to_update.setdefault(kind, []).append((path, *delta))
        elif ahead is not None and ahead.name == table.name:
            foreseen = (kind, path, data)  # compiled meanwhile: taken once the others are compiled
        else:
            to_compile.setdefault(kind, []).append(path)
    # Until postmap has succeeded, a marker says the compiled table may be half-made (a
    # killed run, a stopped container): it is then compiled whole next time, even if it
    # is newer than its source (see _compiled_current).
    compiling = [_marker(path) for paths in to_compile.values() for path in paths]
    compiling += [_marker(update[0]) for updates in to_update.values() for update in updates]
    compiling += [_marker(foreseen[1])] if foreseen else []
    for marker in compiling:
        marker.touch()
    # master.cf: the same rule as main.cf's (below), by service: add what is planned,
    # remove what relaykit added before and no longer plans (a service an administrator
    # wrote is never touched). Read before main.cf changes: a read is reused only while
    # neither file has changed. Services are added while the tables compile, so each is
    # there before a table or parameter names it; stale ones go once main.cf names them
    # no more.
    state = _read_state(directory)
    planned = {s.key: s.entry() for s in plan.services}
    services = postfix.services() if planned or state["services"] else {}
    service_set = {k: e for k, e in planned.items() if services.get(k) != e}
    service_stale = [k for k in state["services"] if k not in planned and k in services]
    current = postfix.explicit_params()  # main.cf's, read (or prefetched) before master.cf changes
    previous = state["params"]
    to_set, stale, replaced = _diff(plan.params, current, previous, state["replaced"])
    adding = postfix.start_adding_services(service_set)
    # main.cf's new values are set meanwhile too, on a copy put in place once the tables
    # are compiled (below); with parameters to remove as well, in two runs after them
    editing = postfix.start_editing_params(to_set) if not stale else None
    try:
        try:
            for kind, paths in to_compile.items():
                postfix.postmap(kind, paths)
            for kind, updates in to_update.items():
                postfix.postmap_update(kind, updates)
            if foreseen and not postfix.take_ahead(ahead, *foreseen):  # not as planned: compiled now
                postfix.postmap(foreseen[0], [foreseen[1]])
        except BaseException:
            try:  # not left running; the compile's error is the one reported
                postfix.added_services(adding)
            except PostfixError:
                pass
            raise
        postfix.added_services(adding)
        for marker in compiling:
            marker.unlink()
        _SOURCES.update(compiled_from)
        for table in plan.tables:
            compiled = _compiled(directory / table.name, table.kind or plan.table_type) if table.indexed else None
            if table.secret and compiled and compiled.exists():
                os.chmod(compiled, 0o600)  # postmap creates it with the default mode

        if editing is not None:
            postfix.edited_params(editing)
        else:
            postfix.edit_params(to_set, stale)
    finally:
        Postfix.discard_params_edit(editing)  # its scratch directory, whether or not it was used
    postfix.edit_services({}, service_stale)

    # other services' parameters (postfix-master.cf overrides), after their services exist
    param_set, param_stale, service_replaced = {}, [], {}
    if plan.service_params or state["service_params"]:
        param_set, param_stale, service_replaced = _diff(plan.service_params, postfix.service_params(),
                                                         state["service_params"], state["service_replaced"])
        postfix.edit_service_params(param_set, param_stale)

    tables = [t.name for t in plan.tables]
    new_state = {"params": plan.params, "services": planned, "replaced": replaced,
                 "service_params": plan.service_params, "service_replaced": service_replaced, "tables": tables}
    if new_state != state:
        write_atomic(directory / STATE_FILE, json.dumps(new_state, indent=1).encode() + b"\n")

    # Tables relaykit wrote before and no longer plans go, with their compiled forms (they
    # may hold passwords); a file of that name it never wrote is the administrator's. A
    # state from before tables were recorded: every relay table, if relaykit set anything.
    if "tables" in state:
        written = state["tables"]
    else:
        written = list(RELAY_TABLES) if previous or state["services"] else []
    changed_tables += _remove_tables(directory, [name for name in written if name not in tables])
    return Changes(tuple(changed_tables),
                   tuple([*to_set, *stale, *service_set, *service_stale, *param_set, *param_stale]))


RELAY_TABLES = (RELAYHOST_MAP, SASL_PASSWD, TLS_POLICY, *routetables.TABLES)


def _remove_tables(directory: Path, names: list[str]) -> list[str]:
    """Remove these tables with their compiled forms."""
    removed = []
    for name in names:
        for path in (Path(directory, name), *(Path(directory, name + s) for s in dict.fromkeys(INDEXED_SUFFIX.values()))):
            if path.exists():
                path.unlink()
                removed.append(path.name)
    return removed


def apply_dovecot(layout: Layout, passdb: Passdb) -> tuple[bool, bool]:
    """Dovecot's files for this passdb (edges/dovecot.write), and the other passdb's file
    removed: neither hashes nor a database password are left behind. Returns (config
    changed, passwd changed), as write does."""
    changed = dovecot.write(layout, passdb.accounts, passdb.database)
    (layout.passwd if passdb.database is not None else layout.sql).unlink(missing_ok=True)
    return changed
