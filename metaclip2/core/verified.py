"""Files checked once per machine: open only regular files, and remember which versions passed a full check.

A large data file that many processes of a machine map (matchers) is hashed once, not by every
process: a version that passed is recorded under a key of its identity and its recorded checksum,
``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns, sha256)``, in a per-machine cache directory
(``$METACLIP2_CACHE``, else ``$XDG_CACHE_HOME/metaclip2``, else ``~/.cache/metaclip2``) and in
this process. Any change to the file (a rewrite, a rename over it, a touch) changes the key, so
the new version is checked again. The cache is only a record of passed checks: losing it costs
one more check, and a cache that cannot be written is ignored.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

from metaclip2.core.atomic import write_json
from metaclip2.core.errors import DataError, MissingInputError, OutputError

__all__ = ["open_regular", "verified_key", "is_verified", "mark_verified", "verified_cache_dir"]

_MEMO: set[str] = set()


def open_regular(path: str | os.PathLike) -> tuple[int, os.stat_result]:
    """Open `path` read-only, without blocking, and return ``(fd, fstat)`` if it is a regular file.

    A directory, FIFO, socket or device (also through a symlink, e.g. to ``/dev/zero``) raises
    :class:`DataError` naming the file; a missing one :class:`MissingInputError`. The caller
    closes `fd`.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.verified import open_regular
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "a.bin")
    ...     _ = open(path, "wb").write(b"abc")
    ...     fd, st = open_regular(path)
    ...     os.close(fd)
    ...     print(st.st_size)
    ...     try:
    ...         open_regular(tmp)
    ...     except Exception as e:
    ...         print(type(e).__name__)
    3
    DataError
    """
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not hang.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise MissingInputError(f"{path} does not exist") from None
    except OSError as e:
        if e.errno == errno.EISDIR:
            raise DataError(f"{path} is a directory, not a regular file") from None
        raise DataError(f"cannot open {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or special file"
            raise DataError(f"{path} is {kind}, not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def verified_key(st: os.stat_result, sha256: str) -> str:
    """The key of one version of a file: its identity, size, times and recorded checksum.

    Examples
    --------
    >>> import os
    >>> from metaclip2.core.verified import verified_key
    >>> len(verified_key(os.stat("."), "0" * 64))
    64
    """
    ident = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{sha256}"
    return hashlib.sha256(ident.encode()).hexdigest()


def verified_cache_dir() -> Path:
    """The per-machine directory recording verified file versions.

    Examples
    --------
    >>> from metaclip2.core.verified import verified_cache_dir
    >>> verified_cache_dir().name
    'verified'
    """
    root = os.environ.get("METACLIP2_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = os.path.join(xdg if xdg else os.path.join(os.path.expanduser("~"), ".cache"), "metaclip2")
    return Path(root) / "verified"


def is_verified(key: str) -> bool:
    """Whether the file version `key` passed its check on this machine (or in this process).

    Examples
    --------
    >>> from metaclip2.core.verified import is_verified
    >>> is_verified("0" * 64)
    False
    """
    if key in _MEMO:
        return True
    try:
        if (verified_cache_dir() / key[:2] / key).is_file():
            _MEMO.add(key)
            return True
    except OSError:
        pass
    return False


def mark_verified(key: str, path: str | os.PathLike) -> None:
    """Record that the file version `key` (of `path`) passed its check; a cache that cannot be written is ignored.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.verified import is_verified, mark_verified
    >>> old, tmp = os.environ.get("METACLIP2_CACHE"), tempfile.TemporaryDirectory()
    >>> os.environ["METACLIP2_CACHE"] = tmp.name
    >>> mark_verified("ab" * 32, "x.matcher")
    >>> is_verified("ab" * 32), os.listdir(os.path.join(tmp.name, "verified", "ab"))
    (True, ['abababababababababababababababababababababababababababababababab'])
    >>> if old is None: del os.environ["METACLIP2_CACHE"]
    ... else: os.environ["METACLIP2_CACHE"] = old
    >>> tmp.cleanup()
    """
    _MEMO.add(key)
    try:
        write_json(verified_cache_dir() / key[:2] / key, {"path": str(path)})
    except (OutputError, OSError):
        pass
