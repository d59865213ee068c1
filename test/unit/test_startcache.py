"""relaykit's start-up cache (relaykit/__init__.py reads it, relaykit/edges/startcache.py writes
it): modules come from it only while their sources are as they were compiled, and any file
that is not a usable cache leaves the usual imports. Each test runs a fresh interpreter on a
copy of the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.util import cache_from_source
from pathlib import Path

import pytest

import relaykit

PACKAGE = Path(relaykit.__file__).parent
CACHE = f"__pycache__/startcache.{sys.implementation.cache_tag}.bin"
LOADERS = ("import sys, relaykit.cli.setup, relaykit.edges.editor, relaykit.errors\n"
           "for name in ('relaykit.cli.setup', 'relaykit.edges.editor', 'relaykit.errors'):\n"
           "    print(name, type(sys.modules[name].__loader__).__name__, sys.modules[name].__file__)\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package (no .pyc files), its directory on PYTHONPATH of python()."""
    shutil.copytree(PACKAGE, tmp_path / "tree" / "relaykit", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "tree"


def python(tree: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0 or not check, done.stderr
    return done


def loaders(tree: Path, *flags: str) -> dict[str, tuple[str, str]]:
    lines = python(tree, *flags, "-c", LOADERS).stdout.splitlines()
    return {name: (loader, file) for name, loader, file in (line.split() for line in lines)}


def write_cache(tree: Path) -> str:
    return python(tree, "-m", "relaykit.edges.startcache").stdout


def test_the_cache_holds_every_module_but_the_package_s_own_and_is_written_readable(tree):
    os.umask(umask := os.umask(0o077))
    try:
        printed = write_cache(tree)
    finally:
        os.umask(umask)
    sources = [p for p in (tree / "relaykit").rglob("*.py")]
    assert printed == f"{tree / 'relaykit' / CACHE}: {len(sources) - 1} modules\n"
    assert os.stat(tree / "relaykit" / CACHE).st_mode & 0o777 == 0o644
    assert sorted(p.name for p in (tree / "relaykit" / "__pycache__").iterdir()) == [Path(CACHE).name]


def test_modules_come_from_the_cache_with_their_own_file_names(tree):
    assert {loader for loader, _ in loaders(tree).values()} == {"SourceFileLoader"}
    write_cache(tree)
    found = loaders(tree)
    assert found == {name: ("_StartCache", str(tree / "relaykit" / f"{name[9:].replace('.', '/')}.py"))
                     for name in found}
    # As imported from source: __cached__, __path__, and running one.
    done = python(tree, "-c", "import relaykit.cli as c, relaykit.inputs.validate as v\n"
                              "print(c.__path__, c.__cached__, v.relay('smtp.relay.test', '587'))")
    assert done.stdout.split() == [f"['{tree / 'relaykit' / 'cli'}']",
                                   cache_from_source(str(tree / "relaykit" / "cli" / "__init__.py")),
                                   "[smtp.relay.test]:587"]


@pytest.mark.parametrize("change", ["content", "mtime only"])
def test_a_module_changed_after_the_cache_was_written_is_imported_from_its_source(tree, change):
    write_cache(tree)
    editor = tree / "relaykit" / "edges" / "editor.py"
    if change == "content":
        editor.write_text(editor.read_text() + "EDITED = True\n")
    else:  # same size, same bytes: a newer mtime is enough, as for a .pyc (in seconds, as a .pyc)
        stat = editor.stat()
        os.utime(editor, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    found = loaders(tree)
    assert found["relaykit.edges.editor"][0] == "SourceFileLoader"
    assert found["relaykit.errors"][0] == found["relaykit.cli.setup"][0] == "_StartCache"
    if change == "content":
        assert python(tree, "-c", "import relaykit.edges.editor as e; print(e.EDITED)").stdout == "True\n"


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"not a cache at all, but long enough",
                                     "another layout", "another python", "a cut index"])
def test_a_file_that_is_not_a_usable_cache_leaves_the_usual_imports(tree, content):
    write_cache(tree)
    path = tree / "relaykit" / CACHE
    data = path.read_bytes()
    if content == "another layout":
        content = data[:4] + b"rks0" + data[8:]
    elif content == "another python":
        content = b"\x00\x00\r\n" + data[4:]
    elif content == "a cut index":
        content = data[:40]
    path.write_bytes(content)
    assert {loader for loader, _ in loaders(tree).values()} == {"SourceFileLoader"}


def test_modules_cut_off_the_file_are_imported_from_their_sources(tree):
    """The index is whole but the modules' code is not (a file cut short): the modules
    still in it come from the cache, the others from their sources."""
    write_cache(tree)
    path = tree / "relaykit" / CACHE
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    names = [".".join(("relaykit", *p.relative_to(tree / "relaykit").with_suffix("").parts)).removesuffix(".__init__")
             for p in sorted((tree / "relaykit").rglob("*.py"))]
    code = (f"import sys\nfor name in {names!r}: __import__(name)\n"
            f"print(' '.join(sorted({{type(sys.modules[n].__loader__).__name__ for n in {names!r}[1:]}})))")
    assert python(tree, "-c", code).stdout == "SourceFileLoader _StartCache\n"


def test_a_moved_tree_reports_its_new_file_names(tree, tmp_path):
    """Tracebacks name the files where they are now, as a .pyc's code does (the
    cache was compiled at the old place)."""
    write_cache(tree)
    moved = tmp_path / "moved"
    tree.rename(moved)
    done = python(moved, "-c", "import relaykit.inputs.validate as v; v.port('x', 'RELAY_PORT')", check=False)
    assert f'File "{moved}/relaykit/inputs/validate.py"' in done.stderr, done.stderr
    assert loaders(moved)["relaykit.errors"][0] == "_StartCache"


def test_python_dash_m_runs_a_module_of_the_cache(tree):
    write_cache(tree)
    assert python(tree, "-m", "relaykit.cli.main", "--version").stdout == f"relaykit {relaykit.__version__}\n"
    assert loaders(tree)["relaykit.cli.setup"][0] == "_StartCache"


def test_python_dash_o_imports_as_usual(tree):
    """-O compiles without asserts: the cache holds the code of a plain run."""
    write_cache(tree)
    assert {loader for loader, _ in loaders(tree, "-O").values()} == {"SourceFileLoader"}


def test_another_tree_s_modules_are_never_served(tree, tmp_path):
    """relaykit imported again from another copy in the same process: its modules are
    that copy's, not the first one's cache's."""
    write_cache(tree)
    other = tmp_path / "other"
    shutil.copytree(tree / "relaykit", other / "relaykit", ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import sys, relaykit.errors\n"
            "for name in [n for n in sys.modules if n.startswith('relaykit')]: del sys.modules[name]\n"
            f"sys.path.insert(0, {str(other)!r})\n"
            "import relaykit.errors\n"
            "print(relaykit.errors.__file__, type(relaykit.errors.__loader__).__name__)")
    assert python(tree, "-c", code).stdout == f"{other}/relaykit/errors.py SourceFileLoader\n"
