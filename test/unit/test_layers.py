"""The layers of target/relaykit/ (ARCHITECTURE.md), read from the code with `ast`.

Each layer imports only from itself and the layers before it in LAYERS; there is no
import cycle at all; and an import inside a function is allowed only where LAZY says
why (a start-up-time choice: `setup relay add-domain` must start in a few milliseconds,
so what it does not need is imported when it is needed).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import relaykit
from relaykit.stores.files import FileStore
from relaykit.stores.postgres import PostgresStore
from relaykit.stores.protocol import Store

ROOT = Path(relaykit.__file__).parent

# In import order: a module may import from its own layer and the ones before it.
LAYERS = (
    "foundation",  # relaykit/*.py: errors, secret, log, metrics, gcpause, commonparts (import nothing of relaykit)
    "model",  # values only
    "inputs",  # settings, DMS files, validation
    "core",  # pure planners
    "edges",  # the system: Postfix, Dovecot, ip/openssl, the file editor
    "stores",  # the Store protocol and its two implementations
    "run",  # orchestration: configure/apply, the daemon, watch
    "cli",  # the command trees and commands
)

# (module, what it imports inside a function): why. Every entry must still be used.
LAZY = {
    # `setup`'s fast path (cli.setup -> cli.commands.relay -> stores -> stores.files):
    # the file store edits without reading or planning; those import what they need.
    ("relaykit.stores", "relaykit.stores.files"): "open_store: only the store in use is imported",
    ("relaykit.stores", "relaykit.stores.postgres"): "open_store: psycopg and the planners only with a database",
    ("relaykit.stores.files", "pathlib"): "reading: the editing commands use os.path only",
    ("relaykit.stores.files", "relaykit.inputs.dmsfiles"): "reading: dataclasses and the parsers",
    ("relaykit.stores.files", "relaykit.core.replan"): "planning (configure, live reload): not for edits",
    ("relaykit.stores.files", "relaykit.core.submission"): "planning (configure): not for edits",
    ("relaykit.stores.files", "relaykit.core.dovecot"): "Dovecot's passdb (configure): not for edits",
    ("relaykit.stores.files", "relaykit.gcpause"): "planning 100k-line files (configure): not for edits",
    ("relaykit.stores.files", "relaykit.model.plan"): "the table foreseen (configure): not for edits",
    ("relaykit.edges.editor", "os"): "os.makedirs: only a first edit in a new directory (the fast path never "
                                     "imports os, ~2 ms: inputs/env.environment)",
    ("relaykit.inputs.validate", "ipaddress"): "only IP literals pay for it (~3 ms)",
    ("relaykit.inputs.validate", "idna"): "~30 ms: only a domain name that is not ASCII",
    ("relaykit.cli.commands.relay", "getpass"): "only a password prompt on a terminal",
    ("relaykit.cli.commands.relay", "relaykit.secret"): "only add-auth wraps a password (add-domain never)",
    ("relaykit.cli.dispatch", "difflib"): "only a mistyped command's suggestion",
    ("relaykit.cli.ui", "rich"): "~30 ms: only styled terminal output",
    ("relaykit.cli.commands.relay_view", "rich"): "only the table of `setup relay list` (not --json)",
    ("relaykit.cli.main", "relaykit.run.configure"): "`relaykit configure` only: run/ imports every layer",
    ("relaykit.cli.main", "relaykit.edges.postfix"): "`relaykit configure` only: its postconf reads, started "
                                                     "before run/'s imports (_prefetch)",
    ("relaykit.cli.main", "relaykit.inputs.env"): "`relaykit configure` only: MAIL_CONFIG for _prefetch",
    ("relaykit.cli.main", "pathlib"): "`relaykit configure` only: MAIL_CONFIG for _prefetch",
    # `relaykit configure`'s start-up (issue 19): features imported only when configured
    ("relaykit.run.configure", "relaykit.core.dkim"): "only a domain with a DKIM key",
    ("relaykit.run.configure", "relaykit.edges.opendkim"): "only a domain with a DKIM key",
    ("relaykit.run.configure", "relaykit.core.overrides"): "only POSTFIX_<name>, postfix-main.cf, postfix-master.cf",
    ("relaykit.run.configure", "relaykit.run.oauth2"): "only postfix-oauth2.cf credentials",
    ("relaykit.core.dovecot", "string"): "string.Template: only rendering dovecot.conf (submission on)",
    ("relaykit.edges.postfix", "tempfile"): "only a main.cf/master.cf edit that sets and removes",
    ("relaykit.stores.postgres", "psycopg"): "~60 ms: only with RELAYKIT_DATABASE_URL",
    ("relaykit.inputs.settings", "dotenv"): "~25 ms: only when the dotenv file exists",
    ("relaykit.cli.main", "relaykit.log"): "only a JSON error of `relaykit configure|start`",
    ("relaykit.edges.system", "ssl"): "only `relaykit start` checking a renewed certificate",
    ("relaykit.metrics", "prometheus_client"): "~40 ms: only `relaykit start` with METRICS_PORT",
    ("relaykit.cli.commands.queue", "rich"): "only the table of `setup queue list` (not --json)",
    ("relaykit.cli.commands.queue", "relaykit.core.routing"): "only `setup queue flush <relay>` routes",
    ("relaykit.cli.commands.queue", "relaykit.run.configure"): "only `setup queue flush <relay>`: run/ imports "
                                                                "every layer",
    # OAuth2 token flows: ~150 ms (requests, cryptography), only when a token is fetched
    ("relaykit.run.oauth2", "msal"): "~150 ms: only to fetch a Microsoft 365 token",
    ("relaykit.run.oauth2", "cryptography"): "only a Microsoft certificate credential",
    ("relaykit.run.oauth2", "oauthlib"): "~100 ms: only to fetch a Google/generic token",
    ("relaykit.run.oauth2", "requests_oauthlib"): "~100 ms: only to fetch a Google/generic token",
    ("relaykit.run.apply", "shutil"): "only to clear a killed run's scratch copy: shutil imports bz2, lzma",
    ("relaykit.cli.main", "atexit"): "only as `relaykit configure` leaves (_leave)",
    ("relaykit.cli.main", "threading"): "only as `relaykit configure` leaves (_leave): loaded by then anyway",
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and not (ROOT / parts[1]).is_dir()):
        return "foundation"
    return parts[1]


def _target(name: str) -> str:
    """The relaykit module an imported name lives in (a package's submodule if it is one)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of `module`."""
    tree = ast.parse(MODULES[module].read_text())
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                assert child.level == 0, f"{module}:{child.lineno}: relative import"
                found.extend((f"{child.module}.{alias.name}" if child.module.startswith("relaykit") else child.module,
                              child.lineno, in_function) for alias in child.names)
            visit(child, inner)

    visit(tree, False)
    return found


def _internal(name: str) -> str | None:
    return _target(name) if name == "relaykit" or name.startswith("relaykit.") else None


def test_every_package_is_a_layer():
    assert {layer(m) for m in MODULES} == set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layer_order(module):
    allowed = LAYERS[:LAYERS.index(layer(module)) + 1]
    wrong = [f"{MODULES[module].name}:{line} imports {target} ({layer(target)})"
             for name, line, _ in _imports(module) if (target := _internal(name)) and layer(target) not in allowed]
    assert not wrong, f"{module} is in layer {layer(module)}: " + "; ".join(wrong)


def _lazy_key(module: str, name: str) -> tuple[str, str]:
    target = _internal(name)
    if target is None:
        return module, name.partition(".")[0]  # a third-party or stdlib package
    return module, target


def test_function_level_imports_are_only_the_documented_start_up_choices():
    used = {_lazy_key(m, name): (m, line) for m in MODULES for name, line, lazy in _imports(m) if lazy}
    undocumented = sorted(f"{MODULES[m].relative_to(ROOT)}:{line} imports {key[1]}"
                          for key, (m, line) in used.items() if key not in LAZY)
    assert not undocumented, "an import inside a function that LAZY does not explain: " + "; ".join(undocumented)
    assert not set(LAZY) - set(used), f"stale LAZY entries: {sorted(set(LAZY) - set(used))}"


def test_there_is_no_import_cycle():
    graph = {m: {t for name, _, _ in _imports(m) if (t := _internal(name)) and t != m} for m in MODULES}
    # Tarjan's strongly connected components: any with two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            connect(module)
    assert cycles == []


def test_only_the_edges_run_programs_and_speak_smtp():
    # Postfix's programs through subprocess in edges/postfix.py (the sh package: ~90 ms of imports)
    assert [m for m in MODULES for name, _, _ in _imports(m) if name == "sh"] == []
    # processes: the edges, and the daemon, which supervises Postfix's master and Dovecot
    spawns = sorted({m for m in MODULES for name, _, _ in _imports(m) if name == "subprocess"})
    assert [m for m in spawns if layer(m) != "edges"] == ["relaykit.run.daemon"]
    # SMTP sessions (setup relay test, relaykit health): edges/smtp.py
    assert sorted({m for m in MODULES for name, _, _ in _imports(m) if name == "smtplib"}) == ["relaykit.edges.smtp"]


def test_configure_and_the_commands_never_ask_which_store_they_have():
    """run/ and cli/ open "the store" (stores.open_store) and use the Store protocol;
    only the PostgreSQL-only commands (link, import, db upgrade) name that store."""
    postgres_only = {"relaykit.cli.commands.database"}
    for module in MODULES:
        if layer(module) not in ("run", "cli") or module in postgres_only:
            continue
        names = {name for name, _, _ in _imports(module)}
        assert not {n for n in names if n.startswith(("relaykit.stores.files", "relaykit.stores.postgres"))}, module
        asks = [f"{MODULES[module].name}:{node.lineno}" for node in ast.walk(ast.parse(MODULES[module].read_text()))
                if isinstance(node, ast.Attribute) and (node.attr in ("database_url", "postfix_database_url") or (
                    node.attr == "kind" and "store" in ast.unparse(node.value)))]
        assert not asks, f"{module} asks which store it has: {asks}"


@pytest.mark.parametrize("store", [FileStore, PostgresStore])
def test_both_stores_implement_the_store_protocol(store):
    protocol = {name for name, value in vars(Store).items() if callable(value) and not name.startswith("_")}
    for name in protocol:
        assert hasattr(store, name), f"{store.__name__} lacks {name}"
        expected = list(inspect.signature(getattr(Store, name)).parameters)
        assert list(inspect.signature(getattr(store, name)).parameters) == expected, (store.__name__, name)
    assert isinstance(store.__new__(store), Store)


def test_setup_relay_add_domain_stays_on_its_fast_path(tmp_path):
    """The editing commands import the CLI, validation, NextHop, the store and the editor:
    none of the costly modules the other layers use (measured: each is milliseconds)."""
    import subprocess
    import sys

    code = ("import sys; from relaykit.cli.setup import main; "
            "main(['relay', 'add-domain', 'x.example', 'smtp.relay.test', '587']); "
            "print(' '.join(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"RELAYKIT_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    loaded = set(result.stdout.splitlines()[-1].split())
    assert (tmp_path / "postfix-relaymap.cf").read_text() == "@x.example\t[smtp.relay.test]:587\n"
    heavy = {"dataclasses", "typing", "pathlib", "re", "inspect", "sh", "psycopg", "rich", "dotenv", "ipaddress", "idna",
             "collections", "importlib"}  # ~1.5 ms and ~0.5 ms: collections.abc, import_module
    assert loaded & heavy == set()
    assert not [m for m in loaded if m.startswith(("relaykit.core", "relaykit.run", "relaykit.model.plan"))]


def test_the_setup_script_itself_imports_nothing_costly(tmp_path):
    """`setup` is a plain script (setup.py scripts=), not a console_scripts wrapper, which
    imports re. Fails in a virtualenv installed before that change: pip install -e . again."""
    import subprocess
    import sys

    script = Path(sys.executable).parent / "setup"
    result = subprocess.run([sys.executable, "-X", "importtime", str(script), "relay", "add-domain", "x.example",
                             "smtp.relay.test"], capture_output=True, text=True, check=True,
                            env={"RELAYKIT_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    imported = {line.rpartition("|")[2].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert imported & {"re", "collections", "importlib", "typing", "pathlib"} == set()
