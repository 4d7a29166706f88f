"""Entry lists: digests, duplicate checks and the on-disk metadata format.

An entry's id is its position in its list, so anything that stores ids (a
matcher, counts, probabilities) also stores [`entries_digest`][metaclip2.core.entries.entries_digest] of the list
and refuses to be paired with another list.

File format (``<lang>.tsv``, UTF-8, human-readable)::

    # metaclip2 metadata	lang=en	entries=3	digest=<sha256 hex>
    entry	source
    0	number
    dog	wordnet
    New York	bigram

Entries never contain a tab, newline or carriage return (such an entry could
never match: matching turns those characters into spaces), so one line holds
one entry and its source.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence
from metaclip2.core.errors import MetadataError
from metaclip2.core.atomic import AtomicFile
from metaclip2.core.regularfile import open_regular

__all__ = [
    "MetadataError",
    "entries_digest",
    "find_duplicates",
    "check_entries",
    "write_metadata",
    "read_metadata",
]

_FORBIDDEN = ("\t", "\n", "\r")
_MAGIC = "# metaclip2 metadata"


def entries_digest(entries: Iterable[str]) -> str:
    """SHA-256 hex digest of an ordered entry list.

    Each entry is hashed length-prefixed, so no two different lists (including
    lists that differ only in order or in where a string is split) share a
    digest.

    See Also
    --------
    - [`write_metadata`][metaclip2.core.entries.write_metadata] : Stores the digest in the file's header.

    Examples
    --------
    >>> from metaclip2.core import entries_digest
    >>> entries_digest(["dog", "New York"])
    '7f7a3207adad3a5cb6bebf5b9acb3f2a08668cb49c9d574eaba984fc56957c33'
    >>> entries_digest(["New York", "dog"]) == entries_digest(["dog", "New York"])
    False
    """
    h = hashlib.sha256()
    n = 0
    for e in entries:
        b = e.encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
        n += 1
    h.update(n.to_bytes(8, "little"))
    return h.hexdigest()


def find_duplicates(entries: Iterable[str]) -> list[str]:
    """Strings that occur more than once in `entries`, in first-seen order.

    Examples
    --------
    >>> from metaclip2.core.entries import find_duplicates
    >>> find_duplicates(["dog", "cat", "dog", "sun", "cat"])
    ['dog', 'cat']
    """
    counts = Counter(entries)
    return [e for e, c in counts.items() if c > 1]


def check_entries(entries: Sequence[str]) -> None:
    """Raise [`MetadataError`][metaclip2.core.errors.MetadataError] unless `entries` is a list of unique, non-empty strings.

    See Also
    --------
    - [`find_duplicates`][metaclip2.core.entries.find_duplicates] : The duplicates themselves.

    Examples
    --------
    >>> from metaclip2.core import check_entries
    >>> check_entries(["dog", "New York"])
    >>> check_entries(["dog", "cat", "dog"])
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.MetadataError: 1 entries occur more than once ('dog'); entry ids must be unique: ...
    """
    bad = [(i, e) for i, e in enumerate(entries) if not isinstance(e, str) or not e]
    if bad:
        shown = ", ".join(f"#{i}: {e!r}" for i, e in bad[:5])
        raise MetadataError(f"entries must be non-empty strings; {len(bad)} are not ({shown}{', ...' if len(bad) > 5 else ''})")
    dups = find_duplicates(entries)
    if dups:
        shown = ", ".join(repr(d) for d in dups[:10])
        raise MetadataError(
            f"{len(dups)} entries occur more than once ({shown}{', ...' if len(dups) > 10 else ''}); "
            "entry ids must be unique: deduplicate the list, keeping the first occurrence"
        )


def write_metadata(path: str | os.PathLike, entries: Sequence[str], sources: Sequence[str] | None = None, lang: str = "") -> str:
    """Write an entry list (and each entry's source) as a ``.tsv`` metadata file, atomically.

    Returns the list's digest.

    See Also
    --------
    - [`read_metadata`][metaclip2.core.entries.read_metadata] : Reads the file back.
    - [`entries_digest`][metaclip2.core.entries.entries_digest] : The digest returned.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core import read_metadata, write_metadata
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "en.tsv")
    ...     digest = write_metadata(path, ["dog", "New York"], ["wordnet", "bigram"], lang="en")
    ...     print(open(path, encoding="utf-8").read())
    # metaclip2 metadata	lang=en	entries=2	digest=7f7a3207adad3a5cb6bebf5b9acb3f2a08668cb49c9d574eaba984fc56957c33
    entry	source
    dog	wordnet
    New York	bigram
    """
    check_entries(entries)
    if sources is None:
        sources = [""] * len(entries)
    if len(sources) != len(entries):
        raise MetadataError(f"{len(sources)} sources for {len(entries)} entries")
    for e in entries:
        if any(c in e for c in _FORBIDDEN):
            raise MetadataError(f"entry {e!r} holds a tab, newline or carriage return and could never match; drop it")
    digest = entries_digest(entries)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path, "w") as f:
        f.write(f"{_MAGIC}\tlang={lang}\tentries={len(entries)}\tdigest={digest}\n")
        f.write("entry\tsource\n")
        for e, s in zip(entries, sources):
            f.write(f"{e}\t{s}\n")
    return digest


def read_metadata(path: str | os.PathLike, with_sources: bool = False):
    """Read a metadata ``.tsv`` file written by [`write_metadata`][metaclip2.core.entries.write_metadata].

    Returns the entry list, or ``(entries, sources)`` when `with_sources` is true.
    The digest in the header is checked against the entries read.

    See Also
    --------
    - [`write_metadata`][metaclip2.core.entries.write_metadata] : Writes such a file.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core import read_metadata, write_metadata
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "en.tsv")
    ...     _ = write_metadata(path, ["dog", "New York"], ["wordnet", "bigram"], lang="en")
    ...     print(read_metadata(path))
    ...     print(read_metadata(path, with_sources=True))
    ['dog', 'New York']
    (['dog', 'New York'], ['wordnet', 'bigram'])
    """
    path = Path(path)
    entries: list[str] = []
    sources: list[str] = []
    # a regular file only: a pipe or device named <lang>.tsv would block or never end
    with io.TextIOWrapper(open_regular(path, "rebuild it with `metaclip2 metadata`"), encoding="utf-8", newline="\n") as f:
        try:
            header = f.readline().rstrip("\n")
            if not header.startswith(_MAGIC):
                raise MetadataError(f"{path}: not a metaclip2 metadata file (first line {header[:60]!r})")
            fields = dict(kv.split("=", 1) for kv in header.split("\t")[1:] if "=" in kv)
            f.readline()  # column names
            for line in f:
                e, _, s = line.rstrip("\n").partition("\t")
                entries.append(e)
                sources.append(s)
        except UnicodeDecodeError as e:
            raise MetadataError(f"{path}: not UTF-8 ({e.reason}); the file is damaged: rebuild it with `metaclip2 metadata`") from None
    if "digest" in fields and fields["digest"] != entries_digest(entries):
        raise MetadataError(f"{path}: entries do not match the digest in its header; the file was edited or truncated")
    return (entries, sources) if with_sources else entries
