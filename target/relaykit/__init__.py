"""relaykit: route a Postfix server's outbound mail through relay hosts, DMS-compatible.

Importing the package also puts its start-up cache in front of the usual imports (below).
"""

import marshal
import posix  # not os: `setup`'s fast path never imports os (~2 ms; relaykit/inputs/env.environment)
import sys

__version__ = "0.1.0"

# The start-up cache: one file holding every relaykit module compiled (relaykit/edges/startcache.py
# writes it; install.sh runs it). `setup relay add-domain` imports 16 of them, and importlib's
# own Python code costs ~0.1 ms a module (searching the directory, three stats, opening and
# checking its .pyc), more than unmarshalling the code: with this file it is one pread and a
# stat. A module is taken from the file only while its source has the size and mtime it was
# compiled from, as a .pyc is checked (in whole seconds, as a .pyc: Docker's image layers keep
# no more); else, or with no usable file, it is imported as usual.
try:
    from _frozen_importlib import ModuleSpec
    from _frozen_importlib_external import MAGIC_NUMBER  # importlib.util's, without importing importlib
    from _imp import _fix_co_filename
except ImportError:  # not CPython: no cache
    ModuleSpec = None

START_CACHE_FORMAT = b"rks2"  # the layout below: a file of another layout is not read


class _StartCache:
    """A finder and loader (sys.meta_path) of relaykit's modules from the cache file.

    The file: MAGIC_NUMBER, START_CACHE_FORMAT, the index's length (4 bytes, little-endian),
    the index (marshal: {module name: (path under relaykit/, source mtime (s), source size,
    offset, length, is a package, its .pyc's path under relaykit/)}), then each module's
    code (marshal) at base + offset."""

    def __init__(self, directory: str, fd: int, base: int, index: dict) -> None:
        self.directory, self.fd, self.base, self.index = directory, fd, base, index

    def find_spec(self, name, path=None, target=None):
        entry = self.index.get(name)
        if entry is None or not path:
            return None
        relative, _mtime, _size, _offset, _length, package, cached = entry
        origin = f"{self.directory}/{relative}"
        if not origin.startswith(path[0] + "/"):  # its parent package is not this tree's
            return None
        code = self._code(name)
        if code is None:
            return None
        spec = ModuleSpec(name, self, origin=origin, is_package=package)
        spec.has_location = True  # __file__ and __cached__ are as usual (not computed again)
        spec.cached = f"{self.directory}/{cached}"
        if package:
            spec.submodule_search_locations = [origin.rpartition("/")[0]]
        spec.loader_state = code
        return spec

    def create_module(self, spec):
        return None  # the default module

    def exec_module(self, module) -> None:
        exec(module.__spec__.loader_state, module.__dict__)

    def get_code(self, name):
        """runpy's question (`python -m relaykit.x`)."""
        code = self._code(name)
        if code is None:
            raise ImportError(f"{name}: not in relaykit's start-up cache, or its source changed", name=name)
        return code

    def _code(self, name):
        """The module's code from the file, or None if its source changed since (or the
        file cannot give it)."""
        relative, mtime, size, offset, length, _package, _cached = self.index[name]
        origin = f"{self.directory}/{relative}"
        try:
            stat = posix.stat(origin)
            if stat.st_mtime_ns // 1_000_000_000 != mtime or stat.st_size != size:
                return None
            code = marshal.loads(posix.pread(self.fd, length, self.base + offset))
        except (OSError, ValueError, EOFError, TypeError):
            return None
        _fix_co_filename(code, origin)  # the tree may have moved since it was compiled
        return code

    def is_package(self, name) -> bool:
        return self.index[name][5]

    def get_source(self, name) -> str:
        with open(f"{self.directory}/{self.index[name][0]}", encoding="utf-8") as file:
            return file.read()


def start_cache_path(directory: str) -> str:
    """The cache file of the package in `directory` (its __path__)."""
    return f"{directory}/__pycache__/startcache.{sys.implementation.cache_tag}.bin"


def _use_start_cache(directory: str) -> None:
    try:
        fd = posix.open(start_cache_path(directory), posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError:
        return  # none: the usual imports
    try:
        head = posix.pread(fd, 12, 0)
        length = int.from_bytes(head[8:], "little")
        index = marshal.loads(posix.pread(fd, length, 12)) if head[:8] == MAGIC_NUMBER + START_CACHE_FORMAT else None
    except (OSError, ValueError, EOFError, TypeError, MemoryError):  # MemoryError: a length made of garbage
        index = None
    if type(index) is not dict:  # another Python's or relaykit's, or not a cache: the usual imports
        posix.close(fd)
        return
    sys.meta_path.insert(0, _StartCache(directory, fd, 12 + length, index))


if ModuleSpec is not None and not sys.flags.optimize:  # -O: the cache holds the unoptimized code
    _use_start_cache(__path__[0])
