"""Opening a file the package reads back: a regular file only, never a directory, pipe or device.

A named pipe opened for reading blocks until a writer comes, and a symlink to ``/dev/zero``
yields bytes forever, so a crafted or misplaced path must be refused *before* it is read.
[`open_regular`][metaclip2.core.regularfile.open_regular] opens without blocking (``O_NONBLOCK``), checks with ``fstat`` that what
it opened is a regular file (so a path swapped between a check and the open cannot slip
through), and only then hands back a normal binary file object.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from metaclip2.core.errors import DataError, MissingInputError

__all__ = ["open_regular", "open_regular_fd"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_regular(path: str | os.PathLike, hint: str = "delete it and run the stage that writes it again") -> BinaryIO:
    """`path` opened for binary reading, if it is a regular file (symlinks followed).

    Parameters
    ----------
    path : path
    hint : str
        What to do about a refused file, appended to the message.

    Raises
    ------
    MissingInputError
        `path` does not exist.
    DataError
        It is a directory, a named pipe, a device or a socket, or cannot be opened; the
        message names it.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.regularfile import open_regular
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> with open(f"{d}/run.json", "w") as f:
    ...     _ = f.write("{}")
    >>> with open_regular(f"{d}/run.json") as f:
    ...     f.read()
    b'{}'
    >>> os.mkfifo(f"{d}/stats.json")  # a pipe with no writer: refused at once, not waited on
    >>> open_regular(f"{d}/stats.json", hint="run stage 1 again")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: .../stats.json is a named pipe (FIFO), not a regular file: run stage 1 again
    >>> tmp.cleanup()
    """
    fd, _ = open_regular_fd(path, hint)
    try:
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_regular_fd(path: str | os.PathLike, hint: str = "delete it and run the stage that writes it again") -> tuple[int, os.stat_result]:
    """[`open_regular`][metaclip2.core.regularfile.open_regular] as ``(file descriptor, fstat)``, for a caller that maps the file; it closes `fd`.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.regularfile import open_regular_fd
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = open(os.path.join(tmp, "a.bin"), "wb").write(b"abc")
    ...     fd, st = open_regular_fd(os.path.join(tmp, "a.bin"))
    ...     os.close(fd)
    ...     st.st_size
    3
    """
    # O_NONBLOCK: opening a FIFO with no writer must not hang
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise MissingInputError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory, not a regular file: {hint}") from None
    except OSError as e:
        raise DataError(f"{path} cannot be read ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise DataError(f"{path} is {kind}, not a regular file: {hint}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # O_NONBLOCK only guarded the open
        return fd, st
    except BaseException:
        os.close(fd)
        raise
