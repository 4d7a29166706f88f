"""Entry counts: how many pairs of each language matched each entry (Algorithm 1, stage 1)."""

from __future__ import annotations

import os
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from metaclip2.core.arrayfile import load_arrays, save_arrays
from metaclip2.core.errors import DataError, MatcherMismatchError, ParameterError

__all__ = ["count_entries", "EntryCounts"]

_FORMAT = "metaclip2-counts/1"


def count_entries(n_entries: int, offsets: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Entry counts of a batch of matched texts.

    Parameters
    ----------
    n_entries : int
        Length of the language's entry list.
    offsets : ndarray of int, shape (n + 1,)
        CSR offsets: the ids of text ``k`` are ``ids[offsets[k]:offsets[k + 1]]``.
    ids : ndarray of int, shape (offsets[-1],)
        Matched entry ids, unique within each text (as :meth:`Matcher.match_many` returns them).

    Returns
    -------
    ndarray of uint64, shape (n_entries,)
        ``c[i]`` = number of texts that matched entry ``i``.
    """
    ids = np.asarray(ids)
    offsets = np.asarray(offsets)
    if len(offsets) == 0 or offsets[-1] != len(ids):
        raise ParameterError(f"offsets end at {offsets[-1] if len(offsets) else None}, but there are {len(ids)} ids")
    if len(ids) and (ids.min() < 0 or ids.max() >= n_entries):
        raise ParameterError(f"entry ids must lie in [0, {n_entries}); got {ids.min()}..{ids.max()}")
    return np.bincount(ids.astype(np.intp, copy=False), minlength=n_entries).astype(np.uint64)


class EntryCounts(Mapping[str, np.ndarray]):
    """Per-language entry counts, each tied to the digest of the entry list it indexes.

    A mapping ``lang -> ndarray of uint64, shape (n_entries,)``. Partial counts
    from different shards merge by sum (:meth:`merge`, ``+``); counts of the
    same language built from different entry lists refuse to merge.

    Examples
    --------
    >>> c = EntryCounts()
    >>> c.register("en", digest="d" * 64, n_entries=3)
    >>> c.add("en", [0, 2, 2])          # one pair: entry 2 counts once
    >>> c["en"].tolist()
    [1, 0, 1]
    """

    def __init__(self) -> None:
        self._counts: dict[str, np.ndarray] = {}
        self._digests: dict[str, str] = {}

    # -- mapping -------------------------------------------------------------------------
    def __getitem__(self, lang: str) -> np.ndarray:
        return self._counts[lang]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._counts))

    def __len__(self) -> int:
        return len(self._counts)

    def __repr__(self) -> str:
        return f"EntryCounts({', '.join(f'{k}: {int(v.sum())} matches' for k, v in sorted(self._counts.items()))})"

    def digest(self, lang: str) -> str:
        """Digest of the entry list that `lang`'s counts index."""
        return self._digests[lang]

    @property
    def digests(self) -> dict[str, str]:
        return dict(sorted(self._digests.items()))

    # -- building -------------------------------------------------------------------------
    def register(self, lang: str, digest: str, n_entries: int) -> None:
        """Start counting `lang` (zeros), or check that it already counts the same list."""
        if lang in self._counts:
            if self._digests[lang] != digest or len(self._counts[lang]) != n_entries:
                raise MatcherMismatchError(
                    f"counts for {lang!r} index another entry list (digest {self._digests[lang][:12]}, "
                    f"{len(self._counts[lang])} entries) than the one given ({digest[:12]}, {n_entries} entries)"
                )
            return
        self._counts[lang] = np.zeros(n_entries, dtype=np.uint64)
        self._digests[lang] = digest

    def add(self, lang: str, ids: Iterable[int]) -> None:
        """Count one pair of `lang` that matched `ids` (duplicates count once)."""
        c = self._counts[lang]
        u = np.unique(np.fromiter(ids, dtype=np.int64))
        if len(u) and (u[0] < 0 or u[-1] >= len(c)):
            raise ParameterError(f"entry ids must lie in [0, {len(c)}) for {lang!r}")
        c[u] += np.uint64(1)

    def add_matches(self, lang: str, offsets: np.ndarray, ids: np.ndarray) -> None:
        """Count a batch of pairs of `lang` in CSR form (see :func:`count_entries`)."""
        c = self._counts[lang]
        c += count_entries(len(c), offsets, ids)

    # -- merging --------------------------------------------------------------------------
    def merge(self, other: "EntryCounts") -> "EntryCounts":
        """Add `other`'s counts into these, in place; returns self.

        All languages are checked before any is added, so a refused merge changes nothing.
        """
        for lang in other:
            if lang in self._counts:
                self.register(lang, other.digest(lang), len(other[lang]))
        for lang in other:
            self.register(lang, other.digest(lang), len(other[lang]))
            self._counts[lang] += other[lang]
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
        """Raise :class:`MatcherMismatchError` if any language counts another entry list than `digests` says."""
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
        save_arrays(path, {"format": _FORMAT, "digests": self.digests}, {lang: self._counts[lang] for lang in self})

    @classmethod
    def load(cls, path: str | os.PathLike, digests: Mapping[str, str] | None = None) -> "EntryCounts":
        """Read counts saved by :meth:`save`; with `digests`, check they index those entry lists."""
        header, arrays = load_arrays(path)
        if header.get("format") != _FORMAT:
            raise DataError(f"{path} is not a metaclip2 counts file")
        c = cls()
        for lang, a in arrays.items():
            c._counts[lang] = a.astype(np.uint64, copy=False)
            c._digests[lang] = header["digests"][lang]
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
            c._counts[lang] = a.astype(np.uint64)
            c._digests[lang] = digests[lang]
        return c
