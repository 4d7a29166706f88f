"""Atomic file writes: every file the package writes appears whole or not at all.

A file is written under a temporary name beside its target (``<name>.tmp<pid>``, so two
processes never share one), flushed and fsynced, then renamed into place with
:func:`os.replace`. A killed writer leaves only its temporary file, which
:func:`remove_temporaries` deletes when the directory is next resumed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import IO, Any

__all__ = ["AtomicFile", "write_bytes", "write_text", "write_json", "remove_temporaries", "temporary_name"]

_TMP = re.compile(r"\.tmp\d+$")


def temporary_name(path: str | os.PathLike) -> Path:
    """The temporary path this process writes `path` under."""
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
    """

    def __init__(self, path: str | os.PathLike, mode: str = "wb"):
        if mode not in ("wb", "w"):
            raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temporary_name(self.path)
        if mode == "w":
            self._f: IO = open(self.tmp, "w", encoding="utf-8", newline="\n")
        else:
            self._f = open(self.tmp, "wb")

    @property
    def stream(self) -> IO:
        """The open temporary file, for writers that want a file object."""
        return self._f

    def write(self, data) -> int:
        return self._f.write(data)

    def commit(self) -> Path:
        """Flush, fsync and rename into place; returns the target path."""
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; the target is left as it was."""
        self._f.close()
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    with AtomicFile(path) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as JSON (sorted keys, indent 1, UTF-8 kept, trailing newline), atomically.

    Equal objects give byte-identical files.
    """
    return write_text(path, json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=1) + "\n")


def remove_temporaries(directory: str | os.PathLike) -> int:
    """Delete the temporary files (``*.tmp<pid>``) killed writers left in `directory`; returns how many.

    Call only when no writer is running in that directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    n = 0
    for p in directory.iterdir():
        if _TMP.search(p.name) and p.is_file():
            p.unlink()
            n += 1
    return n
