"""The one editor of user files: set or remove the line of a key, atomically.

Every `setup` command goes through `set_line`. Guarantees:
- Concurrent commands never lose an entry: the read-modify-write runs under an exclusive
  flock(2) on a lock file beside the table. The kernel drops the lock when its holder
  dies, so a killed command never leaves a stale lock behind.
- A command killed halfway leaves the previous file intact: the new content goes to a
  temporary file in the same directory, is fsync'ed, then rename(2)d over the old one.
- Comments, blank lines and every other line are kept byte for byte; the file's mode and
  owner are kept (a new credentials file is created 0600).

Keys are matched case-insensitively (domains and hosts are), as the first field of a line
(ended by whitespace, or by `|` as in postfix-accounts.cf).

Linear and light on a 100,000-line (3 MB) table, whose edit is `setup`'s whole job: the
table is searched in blocks of whole lines (read with pread, lower-cased where they hold
capitals, then bytes.find), never held whole nor split into lines; the new file is the old
one's byte ranges copied by the kernel (sendfile) around the one new line. A 3 MB buffer
would cost more in page faults than the search itself.
"""

from __future__ import annotations

import errno
import fcntl
import posix

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only (os.PathLike)
    import os

# str paths and posix, not pathlib or os: this module is on the `setup` fast path, which
# never imports os (~2 ms with _collections_abc). os is imported only to make missing
# directories.

BLOCK = 1 << 16  # bytes searched at a time: small enough to reuse the same memory, cache-warm
# bytes.find searches at most this many bytes at once: below 30,000 CPython uses its Horspool
# search, above it the Two-Way search, which takes twice as long on table text (a 3 MB relaymap:
# ~1 ms more for each `setup relay add-domain`)
WINDOW = 24_000
# sendfile(2) refused for these files: copy through a buffer instead
_NO_SENDFILE = frozenset((errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP, errno.EXDEV))


def _key_spans(read, size: int, key: bytes) -> list[tuple[int, int]]:
    """(start, end) of every line whose first field is `key`, end including its newline.
    `read(offset, count)` returns the bytes of the content (`size` bytes long) at offset."""
    key = key.lower()
    # A block holding none of the capitals of the key's letters can only hold the key as
    # written: it is searched as it is, not lower-cased (memchr scans cost a fifth of that).
    capitals = [bytes((char - 32,)) for char in set(key) if 97 <= char <= 122]
    spans = []
    pos = 0
    while pos < size:
        want = BLOCK
        while True:  # a block of whole lines: from a line start to just after a newline, or to the end
            block = read(pos, min(want, size - pos))
            if len(block) < min(want, size - pos) or pos + len(block) >= size:
                cut = len(block)  # the last block (or the file shrank under us: stop there)
                size = pos + cut
                break
            cut = block.rfind(b"\n") + 1
            if cut:
                break
            want *= 2  # one line longer than the block: read it whole
        if not cut:
            break
        low = block.lower() if any(capital in block for capital in capitals) else block
        at = _find(low, key, 0, cut)
        while at != -1:
            start = low.rfind(b"\n", 0, at) + 1
            after = at + len(key)
            # The key ends at whitespace, or at `|` (postfix-accounts.cf: `user@domain|hash`).
            if not low[start:at].strip(b" \t") and (after == len(low) or low[after] in b" \t\r\n|"):
                end = low.find(b"\n", after)
                end = len(low) if end == -1 else end + 1
                spans.append((pos + start, pos + end))
                at = _find(low, key, end, cut)
            else:
                at = _find(low, key, after, cut)
        pos += cut
    return spans


def _find(data: bytes, key: bytes, start: int, end: int) -> int:
    """data.find(key, start, end), a WINDOW at a time."""
    while start < end:
        stop = min(start + WINDOW, end)
        at = data.find(key, start, min(stop + len(key) - 1, end))
        if at != -1:
            return at
        start = stop
    return -1


def _plan(read, size: int, key: str, line: str | None) -> list[bytes | tuple[int, int]] | None:
    """The new content as pieces, each new bytes or an (offset, count) range of the old
    content: the first line of `key` replaced by `line` (appended if absent), later lines
    of the same key dropped; `line=None` removes every line of the key. None: no change."""
    spans = _key_spans(read, size, key.encode())
    new = b"" if line is None else line.encode() + b"\n"
    if not spans:
        if line is None:
            return None
        sep = b"\n" if size and read(size - 1, 1) != b"\n" else b""
        return [(0, size), sep + new]
    if len(spans) == 1 and read(spans[0][0], spans[0][1] - spans[0][0]) == new:
        return None
    pieces: list[bytes | tuple[int, int]] = []
    last = 0
    for index, (start, end) in enumerate(spans):
        pieces.append((last, start - last))
        if index == 0:
            pieces.append(new)
        last = end
    pieces.append((last, size - last))
    return pieces


def replace_key(data: bytes, key: str, line: str | None) -> bytes:
    """The new content: the first line of `key` replaced by `line` (appended if absent),
    later lines of the same key dropped; `line=None` removes every line of the key."""
    pieces = _plan(lambda offset, count: data[offset:offset + count], len(data), key, line)
    if pieces is None:
        return data
    return b"".join(data[p[0]:p[0] + p[1]] if isinstance(p, tuple) else p for p in pieces)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view):]


def _copy_range(src: int, dst: int, offset: int, count: int) -> None:
    """Append `count` bytes of `src` from `offset` to `dst`, in the kernel where it can."""
    while count:
        try:
            sent = posix.sendfile(dst, src, offset, count)
        except OSError as exc:
            if exc.errno not in _NO_SENDFILE:
                raise
            sent = len(chunk := posix.pread(src, min(count, BLOCK), offset))
            _write_all(dst, chunk)
        if not sent:
            raise OSError(errno.EIO, "the file shrank while it was being edited")
        offset, count = offset + sent, count - sent


def _beside(path: str, template: str) -> str:
    """`path` with its last component `name` replaced by template.format(name=name)."""
    directory, slash, name = path.rpartition("/")
    return f"{directory}{slash}{template.format(name=name)}"


class Locked:
    """An exclusive lock on `<dir>/.<name>.lock`, for one read-modify-write of `<name>`."""

    def __init__(self, path: os.PathLike | str) -> None:
        self.lock_path = _beside(posix.fspath(path), ".{name}.lock")

    def __enter__(self) -> Locked:
        self.fd = posix.open(self.lock_path, posix.O_RDWR | posix.O_CREAT | posix.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        posix.close(self.fd)  # closing the descriptor releases the flock


def remove_stale_temps(path: str) -> None:
    """Delete the temporary files of `path` left by writers killed before their rename.

    A temp file is named after its writer's pid; one whose writer is gone is garbage
    (never read: no table or config file name ends in `.tmp`). A live pid, even a reused
    one, keeps its file: at worst a leftover stays until that pid is gone too.
    """
    directory, slash, name = path.rpartition("/")
    prefix = f".{name}."
    try:
        names = posix.listdir(directory + slash or ".")
    except OSError:
        return
    for entry in names:
        pid = entry[len(prefix):-len(".tmp")] if entry.startswith(prefix) and entry.endswith(".tmp") else ""
        if pid.isdigit() and int(pid) != posix.getpid() and not _alive(int(pid)):
            try:
                posix.unlink(f"{directory}{slash}{entry}")
            except FileNotFoundError:
                pass


def _alive(pid: int) -> bool:
    try:
        posix.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def write_atomic(path: os.PathLike | str, data: bytes, mode: int = 0o644, *, uid: int = -1, gid: int = -1,
                 durable: bool = True) -> None:
    """Replace `path` with `data` all at once: temp file, fsync, rename. `durable=False`
    leaves out the fsync (~7 ms for 3 MB), for a file made again whenever it differs from
    what it should hold: readers still see the old file or the new one, never a mix."""
    _replace(posix.fspath(path), lambda fd: _write_all(fd, data), mode, uid, gid, durable)


def _replace(path: str, write, mode: int, uid: int, gid: int, durable: bool = True) -> None:
    """Replace `path` all at once with what `write(fd)` writes: temp file, fsync, rename."""
    remove_stale_temps(path)
    tmp = _beside(path, ".{name}.%d.tmp" % posix.getpid())
    fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o600)
    try:
        posix.fchmod(fd, mode)  # exact mode, whatever the umask
        if (uid, gid) != (-1, -1):
            posix.fchown(fd, uid, gid)
        write(fd)
        if durable:
            posix.fsync(fd)
        posix.close(fd)
        fd = -1
        posix.replace(tmp, path)
    except BaseException:
        if fd != -1:
            posix.close(fd)
        try:
            posix.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _make_directory(directory: str) -> None:
    """mkdir -p, for the file about to be written there (its first edit)."""
    try:
        if not directory or posix.stat(directory).st_mode & 0o170000 == 0o040000:  # S_ISDIR
            return
    except OSError:
        pass
    import os  # lazy: only a first edit in a new directory, or an error to report (test_layers.LAZY)

    os.makedirs(directory, exist_ok=True)


def set_line(path: os.PathLike | str, key: str, line: str | None, *, new_mode: int = 0o644) -> bool:
    """Set the line of `key` in `path` to `line` (None removes it). True when the file changed."""
    path = posix.fspath(path)
    _make_directory(path.rpartition("/")[0])
    with Locked(path):
        try:
            file = open(path, "rb", buffering=0)
        except FileNotFoundError:
            if line is None:
                return False
            write_atomic(path, line.encode() + b"\n", new_mode)
            return True
        with file:
            src, stat = file.fileno(), posix.fstat(file.fileno())
            pieces = _plan(lambda offset, count: posix.pread(src, count, offset), stat.st_size, key, line)
            if pieces is None:
                return False
            if len(pieces) == 2 and pieces[0] == (0, stat.st_size):  # a new key: at the end
                _append(path, pieces[1])  # type: ignore[arg-type]
                return True

            def write(fd: int) -> None:
                for piece in pieces:
                    if isinstance(piece, bytes):
                        _write_all(fd, piece)
                    elif piece[1]:
                        _copy_range(src, fd, *piece)

            _replace(path, write, stat.st_mode & 0o7777, stat.st_uid, stat.st_gid)
        return True


def _append(path: str, line: bytes) -> None:
    """Add a line at the end of the file in place, by one write(2) of a few bytes: a
    killed writer leaves the file as it was or with the whole line (a signal does not cut
    a write to a regular file short), and the file is never replaced. No copy of a 100k-line
    file, as `echo >>` in DMS; synced like write_atomic's files."""
    remove_stale_temps(path)  # as every edit does (_replace)
    fd = posix.open(path, posix.O_WRONLY | posix.O_APPEND | posix.O_CLOEXEC)
    try:
        _write_all(fd, line)
        posix.fdatasync(fd)
    finally:
        posix.close(fd)


def write_if_changed(path: os.PathLike | str, data: bytes, mode: int, *, uid: int = -1, gid: int = -1) -> bool:
    """Replace `path` atomically unless it already holds `data` with this mode (and owner
    and group, where given: -1 leaves them as they are). True when it was written: the
    one rule for every generated file (Postfix's tables, Dovecot's files)."""
    return replace_if_changed(path, data, mode, uid=uid, gid=gid)[0]


def replace_if_changed(path: os.PathLike | str, data: bytes, mode: int, *, uid: int = -1,
                       gid: int = -1, durable: bool = True) -> tuple[bool, bytes | None]:
    """write_if_changed, also giving what the file held before (None: there was none), so
    that a table's change can be applied to its compiled form as a delta."""
    path = posix.fspath(path)
    try:
        stat = posix.stat(path)
        with open(path, "rb") as file:
            previous = file.read()
        if (previous == data and stat.st_mode & 0o777 == mode and uid in (-1, stat.st_uid)
                and gid in (-1, stat.st_gid)):
            return False, previous
    except FileNotFoundError:
        previous = None
    write_atomic(path, data, mode, uid=uid, gid=gid, durable=durable)
    return True, previous
