"""Atomic file writes: every file the package writes appears whole or not at all.

A file is written under a temporary name beside its target (``<name>.tmp<pid>``, so two
processes never share one), flushed and fsynced, then renamed into place with
`os.replace`. A killed writer leaves only its temporary file, which
[`remove_temporaries`][metaclip2.core.atomic.remove_temporaries] deletes when the directory is next resumed.

A write that the system refuses (disk full, read-only file system, no permission, a path
through a file) raises [`OutputError`][metaclip2.core.errors.OutputError], one sentence naming the path and the cause,
instead of a bare `OSError` traceback.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import IO, Any

from metaclip2.core.errors import Metaclip2Error, OutputError

__all__ = [
    "OutputError", "output_error", "make_directory", "AtomicFile", "write_bytes", "write_text", "write_json",
    "remove_temporaries", "temporary_name",
]  # fmt: skip

_TMP = re.compile(r"\.tmp\d+$")

# errno -> what the user should know; these only ever come from writing.
_WRITE_ERRORS = {
    errno.ENOSPC: "the disk is full: free space (or choose another output directory) and run again",
    errno.EDQUOT: "the disk quota is exceeded: free space (or choose another output directory) and run again",
    errno.EROFS: "the file system is read-only: choose a writable output directory",
    errno.EFBIG: "the file is too large for this file system or process limit",
}
# errno -> cause, for errors that reading can raise too (mapped only around our own writes)
_PATH_ERRORS = {
    errno.EACCES: "permission denied: choose an output directory you can write to",
    errno.EPERM: "operation not permitted: choose an output directory you can write to",
    errno.ENOTDIR: "a part of the path is a file, not a directory: choose another output path",
    errno.EISDIR: "it is a directory",
    errno.EEXIST: "a file of that name is in the way",
}


def output_error(e: OSError, path: str | os.PathLike, any_errno: bool = True) -> OSError | None:
    """The [`OutputError`][metaclip2.core.errors.OutputError] for `e`, raised while writing `path`.

    With ``any_errno=False`` only errors that reading never raises (disk full, read-only file
    system, quota, file too large) are mapped and None is returned for others, for code that
    also reads inside the block. An error of ours is returned as it is.

    Examples
    --------
    >>> import errno
    >>> from metaclip2.core.atomic import output_error
    >>> print(output_error(OSError(errno.ENOSPC, "No space left on device"), "/data/out/en.tsv"))
    cannot write /data/out/en.tsv: the disk is full: free space (or choose another output directory) and run again
    >>> print(output_error(OSError(errno.ENOENT, "No such file"), "/data/out/en.tsv", any_errno=False))
    None
    """
    if isinstance(e, Metaclip2Error):
        return e if any_errno else None
    cause = _WRITE_ERRORS.get(e.errno)
    if cause is None and any_errno:
        cause = _PATH_ERRORS.get(e.errno) or e.strerror or str(e)
    if cause is None:
        return None
    err = OutputError(f"cannot write {path}: {cause}")
    err.errno = e.errno
    return err


def make_directory(path: str | os.PathLike) -> Path:
    """``mkdir -p`` `path`; a refusal raises [`OutputError`][metaclip2.core.errors.OutputError] naming it.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.atomic import make_directory
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     print(make_directory(os.path.join(tmp, "run", "stage1")).relative_to(tmp))
    run/stage1
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot write {path}: it (or a part of it) is a file, not a directory") from None
    except OSError as e:
        raise output_error(e, path) from None
    return path


def temporary_name(path: str | os.PathLike) -> Path:
    """The temporary path this process writes `path` under.

    Examples
    --------
    >>> import os
    >>> from metaclip2.core.atomic import temporary_name
    >>> temporary_name("out/en.tsv").name == f"en.tsv.tmp{os.getpid()}"
    True
    """
    path = Path(path)
    return path.with_name(f"{path.name}.tmp{os.getpid()}")


class AtomicFile:
    """A file written under a temporary name and renamed to `path` on success.

    Parameters
    ----------
    path : path
        The target. Its directory is created if missing.
    mode : {"wb", "w"}
        Binary, or text (UTF-8, ``\\n`` line ends).

    Notes
    -----
    Use as a context manager: leaving the block normally commits (flush, fsync, rename);
    an exception removes the temporary file and leaves `path` as it was.

    See Also
    --------
    - [`write_bytes`][metaclip2.core.atomic.write_bytes] : One call for a whole file's bytes.
    - [`write_json`][metaclip2.core.atomic.write_json] : One call for a JSON file.

    Examples
    --------
    A block that fails leaves nothing behind:

    >>> import os, tempfile
    >>> from metaclip2.core.atomic import AtomicFile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with AtomicFile(os.path.join(tmp, "ok.txt"), "w") as f:
    ...         _ = f.write("whole")
    ...     try:
    ...         with AtomicFile(os.path.join(tmp, "bad.txt"), "w") as f:
    ...             _ = f.write("half")
    ...             raise RuntimeError("interrupted")
    ...     except RuntimeError:
    ...         pass
    ...     print(sorted(os.listdir(tmp)))
    ['ok.txt']
    """

    def __init__(self, path: str | os.PathLike, mode: str = "wb"):
        if mode not in ("wb", "w"):
            raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
        self.path = Path(path)
        make_directory(self.path.parent)
        self.tmp = temporary_name(self.path)
        try:
            if mode == "w":
                self._f: IO = open(self.tmp, "w", encoding="utf-8", newline="\n")
            else:
                self._f = open(self.tmp, "wb")
        except OSError as e:
            raise output_error(e, self.path) from None

    @property
    def stream(self) -> IO:
        """The open temporary file, for writers that want a file object."""
        return self._f

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as e:
            self.abort()
            raise output_error(e, self.path) from None

    def commit(self) -> Path:
        """Flush, fsync and rename into place; returns the target path."""
        try:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.abort()
            raise output_error(e, self.path) from None
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; the target is left as it was."""
        try:
            self._f.close()
        except OSError:  # a full disk can refuse the final flush too
            pass
        try:
            os.unlink(self.tmp)
        except OSError:
            pass

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
            return
        self.abort()
        if isinstance(exc, OSError):
            # a writer that wrote through `stream` (e.g. pyarrow, matplotlib) hit a full or
            # read-only disk; errors reading can also raise (EACCES) are left alone
            mapped = output_error(exc, self.path, any_errno=False)
            if mapped is not None:
                raise mapped from None


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically.

    See Also
    --------
    - [`write_text`][metaclip2.core.atomic.write_text] : The same for text.
    - [`AtomicFile`][metaclip2.core.atomic.AtomicFile] : For a file written piece by piece.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.atomic import write_bytes
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_bytes(os.path.join(tmp, "ids.bin"), b"ids").read_bytes()
    b'ids'
    """
    with AtomicFile(path) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically.

    See Also
    --------
    - [`write_bytes`][metaclip2.core.atomic.write_bytes] : The same for bytes.
    - [`write_json`][metaclip2.core.atomic.write_json] : For JSON.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.atomic import write_text
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_text(os.path.join(tmp, "README.txt"), "héllo").read_text(encoding="utf-8")
    'héllo'
    """
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as JSON (sorted keys, indent 1, UTF-8 kept, trailing newline), atomically.

    Equal objects give byte-identical files.

    See Also
    --------
    - [`write_text`][metaclip2.core.atomic.write_text] : For other text.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.atomic import write_json
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     print(write_json(os.path.join(tmp, "run.json"), {"seed": 0, "lang": "日本語"}).read_text(encoding="utf-8"))
    {
     "lang": "日本語",
     "seed": 0
    }
    <BLANKLINE>
    """
    return write_text(path, json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=1) + "\n")


def remove_temporaries(directory: str | os.PathLike) -> int:
    """Delete the temporary files (``*.tmp<pid>``) killed writers left in `directory`; returns how many.

    Call only when no writer is running in that directory.

    See Also
    --------
    - [`temporary_name`][metaclip2.core.atomic.temporary_name] : The names it removes.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.atomic import remove_temporaries, temporary_name
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = temporary_name(os.path.join(tmp, "en.tsv")).write_text("left by a killed writer")
    ...     print(remove_temporaries(tmp), os.listdir(tmp))
    1 []
    """
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    n = 0
    for p in directory.iterdir():
        if _TMP.search(p.name) and p.is_file():
            try:
                p.unlink()
            except FileNotFoundError:
                continue
            except OSError as e:
                raise output_error(e, p) from None
            n += 1
    return n
