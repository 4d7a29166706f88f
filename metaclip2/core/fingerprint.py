"""Content fingerprints of files: what a run records about each file it writes or reads.

A stage records ``{"bytes", "sha256"}`` of every output file (:func:`file_digest`) in the
shard's stats, written last, and ``{"bytes", "mtime_ns", "sha256"}`` of every input
(:func:`input_fingerprint`). Before a later run reuses an output it streams the file again and
compares (:func:`file_problem`): a missing, truncated or altered file is named, never used.
Hashes are streamed in 1 MiB blocks, so memory does not depend on file size; hashlib
releases the GIL on such blocks, so threads hash files in parallel.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

from metaclip2.core.errors import DataError, MissingInputError

__all__ = ["file_digest", "input_fingerprint", "file_problem", "input_change"]

_BLOCK = 1 << 20


def _sha256(f) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    while True:
        block = f.read(_BLOCK)
        if not block:
            return n, h.hexdigest()
        h.update(block)
        n += len(block)


def file_digest(path: str | os.PathLike) -> dict[str, Any]:
    """``{"bytes": size, "sha256": hex digest}`` of a file's content (streamed).

    Raises
    ------
    OSError
        The file cannot be read.
    """
    with open(path, "rb", buffering=0) as f:
        n, digest = _sha256(f)
    return {"bytes": n, "sha256": digest}


def input_fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """``{"bytes", "mtime_ns", "sha256"}`` of an input file (one extra read of it).

    Raises
    ------
    MissingInputError
        The file does not exist.
    DataError
        It cannot be read, or it changed while it was hashed.
    """
    try:
        st = os.stat(path)
        digest = file_digest(path)["sha256"]
        after = os.stat(path)
    except FileNotFoundError:
        raise MissingInputError(f"input {path} does not exist") from None
    except OSError as e:
        raise DataError(f"input {path} cannot be read ({e.strerror or e})") from None
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        raise DataError(f"input {path} changed while it was being read: run again once it is complete")
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}


def file_problem(path: str | os.PathLike, recorded: Mapping[str, Any]) -> str | None:
    """Why `path` is not the file `recorded` (``{"bytes", "sha256"}``) describes, or None.

    The size is compared first (a truncated or extended file costs one ``stat``); only a file
    of the recorded size is hashed.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"{path.name} is missing"
    except OSError as e:
        return f"{path.name} cannot be read ({e.strerror or e})"
    if size != recorded.get("bytes"):
        return f"{path.name} has {size} bytes, {recorded.get('bytes')} were written"
    try:
        digest = file_digest(path)["sha256"]
    except OSError as e:
        return f"{path.name} cannot be read ({e.strerror or e})"
    if digest != recorded.get("sha256"):
        return f"{path.name} has other content than was written (sha256 {digest[:12]}, {str(recorded.get('sha256'))[:12]} recorded)"
    return None


def input_change(path: str | os.PathLike, recorded: Mapping[str, Any]) -> str | None:
    """How input `path` differs from its `recorded` :func:`input_fingerprint`, or None if it does not.

    Size and modification time equal to the record mean unchanged (no read); otherwise the
    content is hashed, and an equal hash (a file touched or copied back) is unchanged too.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "the file is gone"
    if st.st_size == recorded.get("bytes") and st.st_mtime_ns == recorded.get("mtime_ns"):
        return None
    if file_digest(path)["sha256"] == recorded.get("sha256"):
        return None
    if st.st_size != recorded.get("bytes"):
        return f"{recorded.get('bytes')} bytes when read, {st.st_size} now"
    return "same size, other content"
