"""Content fingerprints of files: what a run records about each file it writes or reads.

A stage records ``{"bytes", "sha256"}`` of every output file ([`file_digest`][metaclip2.core.fingerprint.file_digest]) in the
shard's stats, written last, and ``{"bytes", "mtime_ns", "sha256"}`` of every input
([`input_fingerprint`][metaclip2.core.fingerprint.input_fingerprint]). Before a later run reuses an output it streams the file again and
compares ([`file_problem`][metaclip2.core.fingerprint.file_problem]): a missing, truncated or altered file is named, never used.
Hashes are streamed in 1 MiB blocks, so memory does not depend on file size; hashlib
releases the GIL on such blocks, so threads hash files in parallel.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any, Mapping

from metaclip2.core.errors import DataError, MissingInputError
from metaclip2.core.httpstream import is_http, open_http_stream
from metaclip2.core.regularfile import open_regular

__all__ = ["file_digest", "input_fingerprint", "input_stat", "file_problem", "input_change", "is_url"]

_BLOCK = 1 << 20


def is_url(path: str | os.PathLike) -> bool:
    """Whether `path` names an fsspec location (has a protocol other than ``file://``).

    Examples
    --------
    >>> from metaclip2.core.fingerprint import is_url
    >>> [is_url(p) for p in ("s3://bucket/part-0.parquet", "https://host/a.jsonl", "file:///data/a.jsonl", "pool/a.jsonl")]
    [True, True, False, False]
    """
    p = os.fspath(path)
    return "://" in p and not p.startswith("file://")


class _Stat:
    """``st_size`` and ``st_mtime_ns`` of a local file, or of an fsspec URL (mtime 0 if the store has none)."""

    def __init__(self, path):
        if not is_url(path):
            st = os.stat(path)
            self.st_size, self.st_mtime_ns = st.st_size, st.st_mtime_ns
            return
        import fsspec

        fs, p = fsspec.core.url_to_fs(os.fspath(path))
        try:
            info = fs.info(p)
        except FileNotFoundError:
            raise
        except OSError as e:
            raise OSError(f"{path}: {e}") from e
        self.st_size = int(info.get("size") or 0)
        mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created") or 0
        if hasattr(mtime, "timestamp"):
            mtime = mtime.timestamp()
        self.st_mtime_ns = int(float(mtime) * 1e9) if mtime else 0


def input_stat(path: str | os.PathLike) -> _Stat:
    """Size and modification time (``st_size``, ``st_mtime_ns``) of an input: a local path or an fsspec URL.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.fingerprint import input_stat
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "shard-0.jsonl")
    ...     _ = open(path, "wb").write(b"hello")
    ...     st = input_stat(path)
    ...     st.st_size, st.st_mtime_ns == os.stat(path).st_mtime_ns
    (5, True)
    """
    return _Stat(path)


def _open(path):
    if not is_url(path):
        # a pipe or device in place of a file would block or never end: refused at once
        return open_regular(path, "put the file it should be in its place")
    if is_http(path):  # one GET from the start: servers without Range serve it too
        return open_http_stream(os.fspath(path))
    import fsspec

    return fsspec.open(os.fspath(path), "rb").open()


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
    DataError
        It is a directory, pipe or device, not a regular file.

    See Also
    --------
    - [`file_problem`][metaclip2.core.fingerprint.file_problem] : Checks a file against such a record.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.fingerprint import file_digest
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "en.tsv")
    ...     _ = open(path, "wb").write(b"hello")
    ...     file_digest(path)
    {'bytes': 5, 'sha256': '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'}
    """
    with _open(path) as f:  # a local file, or an fsspec URL (inputs may be remote)
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

    See Also
    --------
    - [`input_change`][metaclip2.core.fingerprint.input_change] : Compares an input with its fingerprint.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.fingerprint import input_fingerprint
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "shard-0.jsonl")
    ...     _ = open(path, "wb").write(b"hello")
    ...     fp = input_fingerprint(path)
    >>> sorted(fp), fp["bytes"]
    (['bytes', 'mtime_ns', 'sha256'], 5)
    """
    try:
        st = _Stat(path)
        digest = file_digest(path)["sha256"]
        after = _Stat(path)
    except FileNotFoundError:
        raise MissingInputError(f"input {path} does not exist") from None
    except DataError:
        raise
    except OSError as e:
        raise DataError(f"input {path} cannot be read ({e.strerror or e})") from None
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        raise DataError(f"input {path} changed while it was being read: run again once it is complete")
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}


def file_problem(path: str | os.PathLike, recorded: Mapping[str, Any]) -> str | None:
    """Why `path` is not the file `recorded` (``{"bytes", "sha256"}``) describes, or None.

    The size is compared first (a truncated or extended file costs one ``stat``); only a file
    of the recorded size is hashed.

    See Also
    --------
    - [`file_digest`][metaclip2.core.fingerprint.file_digest] : The record it checks against.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.fingerprint import file_digest, file_problem
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "counts.bin")
    ...     _ = open(path, "wb").write(b"hello")
    ...     recorded = file_digest(path)
    ...     print(file_problem(path, recorded))
    ...     _ = open(path, "ab").write(b"more")
    ...     print(file_problem(path, recorded))
    None
    counts.bin has 9 bytes, 5 were written
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"{path.name} is missing"
    except OSError as e:
        return f"{path.name} cannot be read ({e.strerror or e})"
    if not stat.S_ISREG(st.st_mode):
        return f"{path.name} is not a regular file (a directory, pipe or device)"
    if st.st_size != recorded.get("bytes"):
        return f"{path.name} has {st.st_size} bytes, {recorded.get('bytes')} were written"
    try:
        digest = file_digest(path)["sha256"]
    except DataError as e:  # swapped for a pipe or device since the stat
        return str(e)
    except OSError as e:
        return f"{path.name} cannot be read ({e.strerror or e})"
    if digest != recorded.get("sha256"):
        return f"{path.name} has other content than was written (sha256 {digest[:12]}, {str(recorded.get('sha256'))[:12]} recorded)"
    return None


def input_change(path: str | os.PathLike, recorded: Mapping[str, Any]) -> str | None:
    """How input `path` differs from its `recorded` [`input_fingerprint`][metaclip2.core.fingerprint.input_fingerprint], or None if it does not.

    Size and modification time equal to the record mean unchanged (no read); otherwise the
    content is hashed, and an equal hash (a file touched or copied back) is unchanged too.

    See Also
    --------
    - [`input_fingerprint`][metaclip2.core.fingerprint.input_fingerprint] : The record it compares with.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core.fingerprint import input_change, input_fingerprint
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "shard-0.jsonl")
    ...     _ = open(path, "wb").write(b"hello")
    ...     recorded = input_fingerprint(path)
    ...     print(input_change(path, recorded))
    ...     _ = open(path, "ab").write(b"more")
    ...     print(input_change(path, recorded))
    None
    5 bytes when read, 9 now
    """
    try:
        st = _Stat(path)
    except FileNotFoundError:
        return "the file is gone"
    if st.st_size == recorded.get("bytes") and st.st_mtime_ns == recorded.get("mtime_ns") and st.st_mtime_ns:
        return None  # (a URL whose store reports no modification time is always hashed)
    if file_digest(path)["sha256"] == recorded.get("sha256"):
        return None
    if st.st_size != recorded.get("bytes"):
        return f"{recorded.get('bytes')} bytes when read, {st.st_size} now"
    return "same size, other content"
