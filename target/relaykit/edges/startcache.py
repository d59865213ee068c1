"""Write relaykit's start-up cache: every module of the package compiled into one file,
relaykit/__pycache__/startcache.<cache tag>.bin, which relaykit/__init__.py reads (the
format is described there).

install.sh runs it after pip, as pip compiles the .pyc files: `python -m relaykit.edges.startcache`.
`make test` and `make bench` run it again, since a development tree changes. A module edited
after the cache was written is imported from its source, so a stale cache costs time, never
correctness.
"""

from __future__ import annotations

import marshal
import os
import sys
from importlib.util import MAGIC_NUMBER, cache_from_source

import relaykit
from relaykit import START_CACHE_FORMAT, start_cache_path
from relaykit.edges.editor import write_atomic


def build(directory: str) -> tuple[bytes, int]:
    """The cache file's content for the package in `directory`, and its number of modules."""
    index, codes, offset = {}, [], 0
    for parent, subdirectories, names in os.walk(directory):
        subdirectories[:] = sorted(d for d in subdirectories if d != "__pycache__")
        for file_name in sorted(n for n in names if n.endswith(".py")):
            path = os.path.join(parent, file_name)
            relative = os.path.relpath(path, directory)
            package = file_name == "__init__.py"
            parts = ["relaykit", *relative[:-len(".py")].split(os.sep)]
            name = ".".join(parts[:-1] if package else parts)
            if name == "relaykit":
                continue  # imported as usual: it is what reads the cache
            with open(path, "rb") as file:
                stat = os.fstat(file.fileno())
                source = file.read()
            code = marshal.dumps(compile(source, path, "exec", dont_inherit=True))
            cached = os.path.relpath(cache_from_source(path), directory)
            seconds = stat.st_mtime_ns // 1_000_000_000  # as relaykit/__init__.py compares it
            index[name] = (relative, seconds, stat.st_size, offset, len(code), package, cached)
            codes.append(code)
            offset += len(code)
    head = marshal.dumps(index)
    return MAGIC_NUMBER + START_CACHE_FORMAT + len(head).to_bytes(4, "little") + head + b"".join(codes), len(index)


def write(directory: str) -> tuple[str, int]:
    """Write the cache of the package in `directory` (edges/editor.write_atomic: a process
    starting meanwhile reads the old file or the new one), readable by every user as the
    .pyc files are. Returns its path and number of modules."""
    path = start_cache_path(directory)
    data, count = build(directory)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, data, 0o644)
    return path, count


def main() -> int:
    try:
        path, count = write(relaykit.__path__[0])
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{path}: {count} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
