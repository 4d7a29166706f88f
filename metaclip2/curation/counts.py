"""Entry counts: how many pairs of each language matched each entry (Algorithm 1, stage 1).

Counts are kept and stored *sparse* (the entries with a non-zero count, per language), so a
shard's counts cost memory and bytes in proportion to its matches, not to the metadata; a
language is made dense only when that is smaller, or when a caller asks for its array.

File format (``metaclip2-counts/2``, deterministic bytes, no pickle)::

    MAGIC  block*  footer-JSON  footer_len:u64  END

A block is one language, either ``sparse`` (``ids: u32[nnz]`` ascending, then
``counts: u64[nnz]``) or ``dense`` (``counts: u64[n_entries]``), whichever is smaller. The
footer lists, per language, its entry-list ``digest``, ``n_entries``, ``layout``, ``nnz``,
byte ``offset`` and ``crc32``. A file is written language by language
([`CountsWriter`][metaclip2.curation.counts.CountsWriter]) and read language by language ([`EntryCounts.load`][metaclip2.curation.counts.EntryCounts.load] reads only
the footer), so merging shards ([`merge_count_files`][metaclip2.curation.counts.merge_count_files]) holds one language at a time.
Files of the first format (``metaclip2-counts/1``, dense arrays) are still read.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from metaclip2.core.arrayfile import load_arrays
from metaclip2.core.atomic import AtomicFile
from metaclip2.core.errors import DataError, MatcherMismatchError, ParameterError
from metaclip2.core.jsonfile import parse_json
from metaclip2.core.regularfile import open_regular

__all__ = ["count_entries", "EntryCounts", "CountsWriter", "merge_count_files"]

_FORMAT = "metaclip2-counts/2"
_FORMAT_V1 = "metaclip2-counts/1"
_MAGIC = b"MC2COUNTS/2\n"
_END = b"MC2COUNTS-END\n"
_V1_MAGIC = b"MC2ARR0"  # an array file (metaclip2.core.arrayfile, any version): the dense format 1


def count_entries(n_entries: int, offsets: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Entry counts of a batch of matched texts.

    Parameters
    ----------
    n_entries : int
        Length of the language's entry list.
    offsets : ndarray of int, shape (n + 1,)
        CSR offsets: the ids of text ``k`` are ``ids[offsets[k]:offsets[k + 1]]``.
    ids : ndarray of int, shape (offsets[-1],)
        Matched entry ids, unique within each text (as [`Matcher.match_many`][metaclip2.matching.matcher.Matcher.match_many] returns them).

    Returns
    -------
    ndarray of uint64, shape (n_entries,)
        ``c[i]`` = number of texts that matched entry ``i``.

    Raises
    ------
    ParameterError
        `offsets` do not end at ``len(ids)``, or an id lies outside ``[0, n_entries)``.

    See Also
    --------
    - [`EntryCounts`][metaclip2.curation.counts.EntryCounts] : Counts per language, kept sparse and merged across shards.
    - [`match_many`][metaclip2.matching.matcher.Matcher.match_many] : Where the CSR offsets and ids come from.

    Examples
    --------
    Three alt-texts over the entries ``dog``, ``cat``, ``red``, ``sofa``: the first matched
    ``dog`` and ``sofa``, the second nothing, the third ``sofa``:

    >>> import numpy as np
    >>> from metaclip2.curation.counts import count_entries
    >>> offsets = np.array([0, 2, 2, 3])
    >>> ids = np.array([0, 3, 3])
    >>> count_entries(4, offsets, ids).tolist()
    [1, 0, 0, 2]
    """
    ids = np.asarray(ids)
    offsets = np.asarray(offsets)
    if len(offsets) == 0 or offsets[-1] != len(ids):
        raise ParameterError(f"offsets end at {offsets[-1] if len(offsets) else None}, but there are {len(ids)} ids")
    if len(ids) and (ids.min() < 0 or ids.max() >= n_entries):
        raise ParameterError(f"entry ids must lie in [0, {n_entries}); got {ids.min()}..{ids.max()}")
    return np.bincount(ids.astype(np.intp, copy=False), minlength=n_entries).astype(np.uint64)


def _unique_counts(ids: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum `counts` by id: ascending unique ids and their totals (exact in uint64)."""
    if not len(ids):
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint64)
    order = np.argsort(ids, kind="stable")
    s_ids, s_c = ids[order], counts[order]
    starts = np.flatnonzero(np.r_[True, s_ids[1:] != s_ids[:-1]])
    return s_ids[starts].astype(np.uint32), np.add.reduceat(s_c.astype(np.uint64), starts)


def _dense_is_smaller(nnz: int, n_entries: int) -> bool:
    return 8 * n_entries <= 12 * nnz


class EntryCounts(Mapping[str, np.ndarray]):
    """Per-language entry counts, each tied to the digest of the entry list it indexes.

    A mapping ``lang -> ndarray of uint64, shape (n_entries,)``. Partial counts
    from different shards merge by sum ([`merge`][metaclip2.curation.counts.EntryCounts.merge], ``+``); counts of the
    same language built from different entry lists refuse to merge.

    Counts are held sparse (non-zero entries) until a language becomes denser than that
    pays for; counts loaded from a file stay on disk until a language is asked for, and
    ``counts[lang]`` then builds a dense array (a fresh one unless the language is held
    dense). [`sparse`][metaclip2.curation.counts.EntryCounts.sparse] gives the non-zero entries without a dense array.

    Examples
    --------
    >>> c = EntryCounts()
    >>> c.register("en", digest="d" * 64, n_entries=3)
    >>> c.add("en", [0, 2, 2])          # one pair: entry 2 counts once
    >>> c["en"].tolist()
    [1, 0, 1]
    """

    def __init__(self) -> None:
        # lang -> ("sparse", ids u32, counts u64) | ("dense", counts u64) | ("file", path, spec)
        self._data: dict[str, tuple] = {}
        self._n: dict[str, int] = {}
        self._digests: dict[str, str] = {}

    # -- mapping -------------------------------------------------------------------------
    def __getitem__(self, lang: str) -> np.ndarray:
        rep = self._data[lang]
        if rep[0] == "dense":
            return rep[1]
        ids, c = self.sparse(lang)
        dense = np.zeros(self._n[lang], dtype=np.uint64)
        dense[ids] = c
        return dense

    def __contains__(self, lang: object) -> bool:
        return lang in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"EntryCounts({', '.join(f'{k}: {int(self.sparse(k)[1].sum())} matches' for k in self)})"

    def digest(self, lang: str) -> str:
        """Digest of the entry list that `lang`'s counts index."""
        return self._digests[lang]

    @property
    def digests(self) -> dict[str, str]:
        return dict(sorted(self._digests.items()))

    def n_entries(self, lang: str) -> int:
        """Length of `lang`'s entry list."""
        return self._n[lang]

    def sparse(self, lang: str) -> tuple[np.ndarray, np.ndarray]:
        """The non-zero counts of `lang`: ``(ids, counts)``, ids ascending (uint32), counts uint64."""
        rep = self._data[lang]
        if rep[0] == "sparse":
            return rep[1], rep[2]
        if rep[0] == "dense":
            ids = np.flatnonzero(rep[1])
            return ids.astype(np.uint32), rep[1][ids]
        return _read_block(rep[1], lang, rep[2])

    # -- building -------------------------------------------------------------------------
    def register(self, lang: str, digest: str, n_entries: int) -> None:
        """Start counting `lang` (zeros), or check that it already counts the same list."""
        if lang in self._data:
            if self._digests[lang] != digest or self._n[lang] != n_entries:
                raise MatcherMismatchError(
                    f"counts for {lang!r} index another entry list (digest {self._digests[lang][:12]}, "
                    f"{self._n[lang]} entries) than the one given ({digest[:12]}, {n_entries} entries)"
                )
            return
        if not 0 <= int(n_entries) < 1 << 32:
            raise ParameterError(f"n_entries of {lang!r} must lie in [0, 2**32), got {n_entries}")
        self._data[lang] = ("sparse", np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint64))
        self._n[lang] = int(n_entries)
        self._digests[lang] = digest

    def add(self, lang: str, ids: Iterable[int]) -> None:
        """Count one pair of `lang` that matched `ids` (duplicates count once)."""
        u = np.unique(np.fromiter(ids, dtype=np.int64))
        n = self._n[lang]
        if len(u) and (u[0] < 0 or u[-1] >= n):
            raise ParameterError(f"entry ids must lie in [0, {n}) for {lang!r}")
        self._add_sparse(lang, u, np.ones(len(u), dtype=np.uint64))

    def add_matches(self, lang: str, offsets: np.ndarray, ids: np.ndarray) -> None:
        """Count a batch of pairs of `lang` in CSR form (see [`count_entries`][metaclip2.curation.counts.count_entries])."""
        ids = np.asarray(ids)
        offsets = np.asarray(offsets)
        n = self._n[lang]
        if len(offsets) == 0 or offsets[-1] != len(ids):
            raise ParameterError(f"offsets end at {offsets[-1] if len(offsets) else None}, but there are {len(ids)} ids")
        if len(ids) and (ids.min() < 0 or ids.max() >= n):
            raise ParameterError(f"entry ids must lie in [0, {n}); got {ids.min()}..{ids.max()}")
        u, c = np.unique(ids, return_counts=True)
        self._add_sparse(lang, u, c.astype(np.uint64))

    def _add_sparse(self, lang: str, ids: np.ndarray, counts: np.ndarray) -> None:
        """Add counts of unique ascending `ids` (already range-checked)."""
        if not len(ids):
            return
        rep = self._data[lang]
        if rep[0] == "file":
            rep = self._data[lang] = ("sparse", *self.sparse(lang))
        if rep[0] == "dense":
            rep[1][ids] += counts
            return
        new_ids, new_c = _unique_counts(np.concatenate([rep[1].astype(np.int64), ids.astype(np.int64)]), np.concatenate([rep[2], counts]))
        if _dense_is_smaller(len(new_ids), self._n[lang]):
            dense = np.zeros(self._n[lang], dtype=np.uint64)
            dense[new_ids] = new_c
            self._data[lang] = ("dense", dense)
        else:
            self._data[lang] = ("sparse", new_ids, new_c)

    # -- merging --------------------------------------------------------------------------
    def merge(self, other: "EntryCounts") -> "EntryCounts":
        """Add `other`'s counts into these, in place; returns self.

        All languages are checked before any is added, so a refused merge changes nothing.
        """
        for lang in other:
            if lang in self._data:
                self.register(lang, other.digest(lang), other.n_entries(lang))
        for lang in other:
            self.register(lang, other.digest(lang), other.n_entries(lang))
            self._add_sparse(lang, *other.sparse(lang))
        return self

    def __add__(self, other: "EntryCounts") -> "EntryCounts":
        return EntryCounts.sum([self, other])

    @classmethod
    def sum(cls, parts: Iterable["EntryCounts"]) -> "EntryCounts":
        """Sum of partial counts (e.g. one per shard), in any order."""
        total = cls()
        for p in parts:
            total.merge(p)
        return total

    def check_digests(self, digests: Mapping[str, str]) -> None:
        """Raise [`MatcherMismatchError`][metaclip2.core.errors.MatcherMismatchError] if any language counts another entry list than `digests` says."""
        bad = [lang for lang in self if lang in digests and digests[lang] != self._digests[lang]]
        missing = [lang for lang in self if lang not in digests]
        if bad or missing:
            raise MatcherMismatchError(
                "counts were made with other metadata: "
                + ", ".join([f"{lang} (other entry list)" for lang in bad] + [f"{lang} (no such language)" for lang in missing])
            )

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the counts and digests to `path` (deterministic bytes, atomic)."""
        with CountsWriter(path) as w:
            for lang in self:
                w.add(lang, self._digests[lang], self._n[lang], *self.sparse(lang))

    @classmethod
    def load(cls, path: str | os.PathLike, digests: Mapping[str, str] | None = None) -> "EntryCounts":
        """Counts saved by [`save`][metaclip2.curation.counts.EntryCounts.save]; with `digests`, check they index those entry lists.

        Only the file's table of contents is read now; each language is read when used.
        """
        path = Path(path)
        redo = "delete it and run its stage again"
        with open_regular(path, redo) as f:
            magic = f.read(len(_MAGIC))
            if magic.startswith(_V1_MAGIC):
                return cls._load_v1(path, digests)
            if magic != _MAGIC:
                raise DataError(f"{path} is not a metaclip2 counts file")
            f.seek(0, os.SEEK_END)
            size = f.tell()
            tail = len(_END) + 8
            if size < len(_MAGIC) + tail:
                raise DataError(f"{path} is truncated: {redo}")
            f.seek(size - tail)
            t = f.read(tail)
            if t[8:] != _END:
                raise DataError(f"{path} is truncated or damaged (no end mark): {redo}")
            footer_len = int.from_bytes(t[:8], "little")
            if footer_len > size - len(_MAGIC) - tail:
                raise DataError(f"{path} is damaged (footer length): {redo}")
            f.seek(size - tail - footer_len)
            footer = parse_json(f.read(footer_len), f"{path} (footer)", redo)
        if not isinstance(footer, dict) or footer.get("format") != _FORMAT:
            raise DataError(f"{path} is not a metaclip2 counts file")
        languages = footer.get("languages")
        if not isinstance(languages, dict):
            raise DataError(f"{path} is damaged (its footer lists no languages): {redo}")
        blocks_end = size - tail - footer_len
        c = cls()
        for lang in sorted(languages):
            spec = languages[lang]
            problem = _spec_problem(spec, len(_MAGIC), blocks_end)
            if problem is not None:
                raise DataError(f"{path} is damaged (language {lang!r}: {problem}): {redo}")
            c._data[lang] = ("file", str(path), spec)
            c._n[lang] = spec["n_entries"]
            c._digests[lang] = spec["digest"]
        if digests is not None:
            c.check_digests(digests)
        return c

    @classmethod
    def _load_v1(cls, path: Path, digests: Mapping[str, str] | None) -> "EntryCounts":
        header, arrays = load_arrays(path)
        if header.get("format") != _FORMAT_V1:
            raise DataError(f"{path} is not a metaclip2 counts file")
        c = cls.from_arrays(arrays, header["digests"])
        if digests is not None:
            c.check_digests(digests)
        return c

    @classmethod
    def from_arrays(cls, counts: Mapping[str, Sequence[int]], digests: Mapping[str, str]) -> "EntryCounts":
        """Counts from plain arrays (e.g. computed elsewhere) and their entry-list digests."""
        c = cls()
        for lang in sorted(counts):
            a = np.asarray(counts[lang])
            if a.ndim != 1 or (a.size and a.min() < 0):
                raise DataError(f"counts of {lang!r} must be a 1-D array of non-negative integers")
            c.register(lang, digests[lang], len(a))
            c._data[lang] = ("dense", a.astype(np.uint64))
        return c


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _block_size(spec: Mapping) -> int:
    return 12 * spec["nnz"] if spec["layout"] == "sparse" else 8 * spec["n_entries"]


def _spec_problem(spec, start: int, end: int) -> str | None:
    """What is wrong with a language's entry in a counts file's footer (types, ranges, where its block lies), or None."""
    if not isinstance(spec, dict) or not isinstance(spec.get("digest"), str) or spec.get("layout") not in ("sparse", "dense"):
        return "not a block description"
    if not all(_is_int(spec.get(k)) for k in ("n_entries", "nnz", "offset", "crc32")):
        return "a count or offset that is not a non-negative integer"
    if spec["n_entries"] >= 1 << 32 or spec["nnz"] > spec["n_entries"]:
        return f"{spec['nnz']} non-zero counts of {spec['n_entries']} entries"
    if spec["offset"] < start or spec["offset"] + _block_size(spec) > end:
        return "its block lies outside the file"
    return None


def _read_block(path: str, lang: str, spec: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """A language's block of a counts file as ``(ids, counts)``, checked against its crc32."""
    nnz, n = int(spec["nnz"]), int(spec["n_entries"])
    size = _block_size(spec)
    with open_regular(path, "delete it and run its stage again") as f:
        f.seek(int(spec["offset"]))
        buf = f.read(size)
    if len(buf) != size:
        raise DataError(f"{path} is truncated (language {lang!r}): delete it and run its stage again")
    if zlib.crc32(buf) != spec["crc32"]:
        raise DataError(f"{path} is damaged (checksum of language {lang!r}): delete it and run its stage again")
    if spec["layout"] == "sparse":
        ids = np.frombuffer(buf, "<u4", nnz, 0).astype(np.uint32)
        if nnz and (int(ids[-1]) >= n or np.any(np.diff(ids.astype(np.int64)) <= 0)):
            raise DataError(f"{path} is damaged (entry ids of language {lang!r} out of order or range): delete it and run its stage again")
        return ids, np.frombuffer(buf, "<u8", nnz, 4 * nnz).astype(np.uint64)
    dense = np.frombuffer(buf, "<u8", n).astype(np.uint64)
    ids = np.flatnonzero(dense)
    return ids.astype(np.uint32), dense[ids]


class CountsWriter:
    """Writes a counts file language by language (languages in sorted order), atomically.

    Each language is stored sparse or dense, whichever is smaller; bytes depend only on the
    counts. Use as a context manager: the file appears when the block ends without error.

    Examples
    --------
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/counts.bin"
    >>> with CountsWriter(path) as w:      # 2 non-zero counts of 1,000: stored sparse
    ...     w.add("en", "d" * 64, 1000, np.array([3, 7]), np.array([2, 1]))
    >>> c = EntryCounts.load(path)
    >>> c.n_entries("en"), c.sparse("en")[0].tolist(), c.sparse("en")[1].tolist()
    (1000, [3, 7], [2, 1])
    """

    def __init__(self, path: str | os.PathLike):
        self._file = AtomicFile(path)
        self._file.write(_MAGIC)
        self._pos = len(_MAGIC)
        self._langs: dict[str, dict] = {}

    def add(self, lang: str, digest: str, n_entries: int, ids: np.ndarray, counts: np.ndarray) -> None:
        """Write `lang`'s non-zero counts (`ids` ascending and unique, `counts` > 0)."""
        if self._langs and lang <= max(self._langs):
            raise ParameterError(f"languages must be added in sorted order, got {lang!r} after {max(self._langs)!r}")
        nnz = len(ids)
        if _dense_is_smaller(nnz, n_entries):
            dense = np.zeros(n_entries, dtype="<u8")
            dense[ids] = counts
            buf, layout = dense.tobytes(), "dense"
        else:
            buf = np.asarray(ids, dtype="<u4").tobytes() + np.asarray(counts, dtype="<u8").tobytes()
            layout = "sparse"
        self._langs[lang] = {"digest": digest, "n_entries": int(n_entries), "layout": layout, "nnz": int(nnz),
                             "offset": self._pos, "crc32": zlib.crc32(buf)}  # fmt: skip
        self._file.write(buf)
        self._pos += len(buf)

    def add_dense(self, lang: str, digest: str, counts: np.ndarray) -> None:
        """Write `lang`'s counts given as a dense array."""
        ids = np.flatnonzero(counts)
        self.add(lang, digest, len(counts), ids, counts[ids])

    def __enter__(self) -> "CountsWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._file.abort()
            return
        footer = json.dumps({"format": _FORMAT, "languages": self._langs}, sort_keys=True, separators=(",", ":")).encode()
        self._file.write(footer + len(footer).to_bytes(8, "little") + _END)
        self._file.commit()


def merge_count_files(
    paths: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
    digests: Mapping[str, str] | None = None,
) -> None:
    """Sum counts files into `out_path`, one language at a time.

    Memory: one dense array of the largest language, plus each file's table of contents.

    Parameters
    ----------
    paths : sequence of path
        Counts files (e.g. one per shard).
    out_path : path
        The merged counts file.
    digests : mapping, optional
        Entry-list digests by language; counts of other entry lists are refused.

    Raises
    ------
    MatcherMismatchError
        Two files count the same language over different entry lists, or one disagrees with
        `digests`.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> for i, ids in enumerate([[0, 2], [2]]):     # two shards' counts
    ...     c = EntryCounts()
    ...     c.register("en", "d" * 64, 3)
    ...     c.add("en", ids)
    ...     c.save(f"{d}/{i}.counts.bin")
    >>> merge_count_files([f"{d}/0.counts.bin", f"{d}/1.counts.bin"], f"{d}/merged.bin")
    >>> EntryCounts.load(f"{d}/merged.bin")["en"].tolist()
    [1, 0, 2]
    """
    parts = [EntryCounts.load(p, digests=digests) for p in paths]
    first: dict[str, tuple[str, int, int]] = {}
    for i, part in enumerate(parts):
        for lang in part:
            key = (part.digest(lang), part.n_entries(lang))
            seen = first.setdefault(lang, (*key, i))
            if seen[:2] != key:
                raise MatcherMismatchError(
                    f"{paths[i]} counts {lang!r} over another entry list ({key[0][:12]}, {key[1]} entries) "
                    f"than {paths[seen[2]]} ({seen[0][:12]}, {seen[1]} entries)"
                )
    with CountsWriter(out_path) as w:
        for lang in sorted(first):
            digest, n, _ = first[lang]
            total = np.zeros(n, dtype=np.uint64)
            for part in parts:
                if lang in part:
                    ids, c = part.sparse(lang)
                    total[ids] += c  # ids are unique within a file
            w.add_dense(lang, digest, total)
            del total
