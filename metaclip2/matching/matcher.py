"""Aho-Corasick matching of alt-texts against one language's metadata (SPEC §2)."""

from __future__ import annotations

import itertools
import json
import os
import pickle
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from metaclip2.matching.text import SPACED_CONTROLS, pad_entry, spacing
from metaclip2.core.entries import MetadataError, check_entries, entries_digest
from metaclip2.core.errors import MatcherMismatchError

__all__ = ["Matcher", "MatcherMismatchError"]

_FORMAT = "metaclip2-matcher/1"
# Joins spaced texts in a batch. No padded entry may contain it, so no match crosses two texts.
_SEP = "\n"
_NUL = "\x00"
# Value of "\n\x00", which puts the separator first among the root's children. It never
# matches: no text reaching an automaton holds "\n" followed by NUL.
_DUMMY = -1


class Matcher:
    """Find every metadata entry contained in an alt-text.

    Parameters
    ----------
    entries : sequence of str
        The ordered entry list of one language. Entry ``i`` has id ``i``.
        Entries must be unique, non-empty, and free of tab, newline, carriage
        return and NUL (such an entry could never match, since :func:`spacing`
        turns the first three into spaces).

    Notes
    -----
    Matching is case-sensitive. Each entry is padded with :func:`pad_entry` and
    searched in :func:`spacing` ``(text)``; overlapping occurrences are all
    found (``"of univ"`` and ``"univ"`` both match ``"of univ of universe"``).
    """

    def __init__(self, entries: Sequence[str]):
        entries = list(entries)
        check_entries(entries)
        bad = [e for e in entries if any(c in e for c in (*SPACED_CONTROLS, _NUL))]
        if bad:
            raise MetadataError(
                f"{len(bad)} entries hold a tab, newline, carriage return or NUL and could never match "
                f"(e.g. {bad[0]!r}); drop them from the list"
            )
        self._init(entries, _build_automata(entries), entries_digest(entries))

    def _init(self, entries: list[str], automata, digest: str) -> None:
        self.entries = entries
        self.digest = digest
        # An entry padded on both sides and holding no space matches exactly when it is one of
        # the text's space-separated tokens: a dict finds those at a fraction of the cost of an
        # automaton hit. The rest go to two automata: pyahocorasick scans a node's children
        # linearly, so keeping the thousands of CJK first characters away from the root of the
        # automaton that reads Latin text keeps its root misses cheap (see _build_automata).
        self._tokens, self._spaced, self._other, self._other_first, self._other_alphabet = automata

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Matcher({len(self.entries)} entries, digest={self.digest[:12]})"

    def match(self, text: str) -> list[int]:
        """Sorted unique ids of the entries contained in `text`."""
        spaced = spacing(text)
        tokens = self._tokens
        ids = {tokens[t] for t in spaced.split(" ") if t in tokens}
        if self._spaced is not None:
            ids.update(i for _, i in self._spaced.iter(spaced))
        if self._other is not None and not self._other_first.isdisjoint(text):
            ids.update(i for _, i in self._other.iter(spaced))
        return sorted(ids)

    def match_many(self, texts: Sequence[str], batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """Match a batch of texts at once.

        Parameters
        ----------
        texts : sequence of str
            ``n`` alt-texts.
        batch_size : int
            Texts searched in one automaton pass; bounds the memory used.

        Returns
        -------
        offsets : ndarray of int64, shape (n + 1,)
            ``ids[offsets[k]:offsets[k + 1]]`` are the matches of ``texts[k]``.
        ids : ndarray of int32, shape (offsets[-1],)
            Entry ids, sorted and unique within each text.
        """
        n = len(texts)
        if n == 0 or not self.entries:
            return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int32)
        counts, id_parts = [], []
        for start in range(0, n, batch_size):
            c, ids = self._match_batch(texts[start : start + batch_size])
            counts.append(c)
            id_parts.append(ids)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.concatenate(counts), out=offsets[1:])
        return offsets, np.concatenate(id_parts).astype(np.int32, copy=False)

    def _match_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        n = len(texts)
        joined = _NUL.join(texts)
        if joined.count(_NUL) != n - 1:
            # A text holds NUL itself: fall back to one search per text, which keeps its exact semantics.
            per_text = [self.match(t) for t in texts]
            return np.array([len(m) for m in per_text], dtype=np.int64), np.fromiter(
                itertools.chain.from_iterable(per_text), dtype=np.int64
            )
        # spacing() of every text at once; each NUL becomes "  \n  ", the " " + ... + " " of two neighbours.
        big = spacing(joined).replace(_NUL, " " + _SEP + " ")
        codes = np.frombuffer(big.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        n_entries = len(self.entries)
        keys = [self._token_keys(big, n_entries)]
        if self._spaced is not None or self._other is not None:
            seps = np.flatnonzero(codes == ord(_SEP))  # text k ends at seps[k]
        if self._spaced is not None:
            hits = _hits(self._spaced, big)
            keys.append(np.searchsorted(seps, hits[0::2]) * n_entries + hits[1::2])
        if self._other is not None:
            # alphabet ends with a 0 that every code point past its end is clipped to.
            cls = self._other_alphabet[np.minimum(codes, len(self._other_alphabet) - 1)]
            if (cls == 2).any():
                # Only characters some entry holds can be part of a match: every run of other
                # characters (separators included) shrinks to one separator, which no entry holds,
                # so the matches are the same and the automaton reads far less.
                blocked = cls == 0
                sel = ~blocked
                sel[1:] |= blocked[1:] & ~blocked[:-1]
                sel[0] = True
                where = np.flatnonzero(sel)
                kept = codes[where]
                kept[blocked[where]] = ord(_SEP)
                hits = _hits(self._other, kept.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass"))
                keys.append(np.searchsorted(seps, where[hits[0::2]]) * n_entries + hits[1::2])
        key = np.concatenate(keys)
        key.sort()
        if len(key):
            key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        text_of_hit, ids = np.divmod(key, n_entries)
        return np.bincount(text_of_hit, minlength=n).astype(np.int64), ids

    def _token_keys(self, big: str, n_entries: int) -> np.ndarray:
        """``text index * n_entries + id`` of every whole-token match in a joined batch."""
        tokens = big.split(" ")
        # The separator is a token of its own (" \n "); it maps to -2, a miss to -1.
        lookup = self._tokens.get
        values = np.fromiter(map(lookup, tokens, itertools.repeat(-1)), dtype=np.int64, count=len(tokens))
        is_sep = values == -2
        text_of_token = np.cumsum(is_sep)
        found = values >= 0
        return text_of_token[found] * n_entries + values[found]

    # -- persistence -----------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Save the automaton, the entries and their digest to one file, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"format": _FORMAT, "digest": self.digest, "entries": len(self.entries)}).encode()
        payload = pickle.dumps((self.entries, (self._tokens, self._spaced, self._other, self._other_first, self._other_alphabet)), protocol=5)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(len(header).to_bytes(8, "little"))
            f.write(header)
            f.write(payload)
        os.replace(tmp, path)

    @staticmethod
    def read_digest(path: str | os.PathLike) -> str:
        """The digest of the entry list a saved matcher was built from, without loading it."""
        return _read_header(Path(path))[0]["digest"]

    @classmethod
    def load(cls, path: str | os.PathLike, entries: Iterable[str] | None = None, digest: str | None = None) -> "Matcher":
        """Load a matcher saved by :meth:`save`.

        Parameters
        ----------
        entries, digest : optional
            The entry list (or just its digest) the caller will interpret ids
            with. A matcher built from any other list raises
            :class:`MatcherMismatchError` instead of returning wrong ids.
        """
        path = Path(path)
        header, f = _read_header(path, keep_open=True)
        with f:
            saved_entries, automata = pickle.loads(f.read())
        expected = entries_digest(entries) if entries is not None else digest
        if expected is not None and expected != header["digest"]:
            raise MatcherMismatchError(
                f"{path} was built from another entry list (digest {header['digest'][:12]}, expected {expected[:12]}); "
                "rebuild the matcher from the current metadata"
            )
        if entries_digest(saved_entries) != header["digest"]:
            raise MatcherMismatchError(f"{path} is corrupt: its entries do not match its digest")
        m = cls.__new__(cls)
        m._init(saved_entries, automata, header["digest"])
        return m


def _hits(automaton, text: str) -> np.ndarray:
    """Flat ``[end, id, end, id, ...]`` of every occurrence, without a Python-level loop."""
    return np.fromiter(itertools.chain.from_iterable(automaton.iter(text)), dtype=np.int64)


def _build_automata(entries: list[str]):
    """Split the entries between a token dict and two automata.

    Returns ``(tokens, spaced, other, other_first, other_alphabet)``: `tokens`
    maps each entry padded on both sides and free of spaces to its id (and the
    batch separator to -2); `spaced` holds the other entries padded with a
    leading space, `other` the rest (either automaton is None when empty);
    `other_first` is the set of first characters of the `other` entries;
    `other_alphabet` is a uint8 table over code points, 2 for such a first
    character, 1 for any other character of those entries, 0 otherwise (its
    last cell, past every such character, is 0).
    """
    import ahocorasick

    padded = [pad_entry(e) for e in entries]
    whole = [len(p) == len(e) + 2 and " " not in e for e, p in zip(entries, padded)]
    tokens = {e: i for i, (e, w) in enumerate(zip(entries, whole)) if w}
    tokens[_SEP] = -2
    spaced_ids = [i for i, p in enumerate(padded) if p[0] == " " and not whole[i]]
    other_ids = [i for i, p in enumerate(padded) if p[0] != " "]
    spaced = other = None
    if spaced_ids:
        spaced = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for i in spaced_ids:
            spaced.add_word(padded[i], i)
        spaced.make_automaton()
    first: set[str] = set()
    alphabet = np.zeros(0, dtype=np.uint8)
    if other_ids:
        other = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        # Root child 0 is the separator, that masked-out text becomes (see _match_batch);
        # then the most common first characters, so a scan of the root stops early.
        other.add_word(_SEP + _NUL, _DUMMY)
        freq = Counter(padded[i][0] for i in other_ids)
        for i in sorted(other_ids, key=lambda i: (-freq[padded[i][0]], i)):
            other.add_word(padded[i], i)
        other.make_automaton()
        first = set(freq)
        chars = {c for i in other_ids for c in padded[i]}
        alphabet = np.zeros(max(map(ord, chars)) + 2, dtype=np.uint8)
        alphabet[[ord(c) for c in chars]] = 1
        alphabet[[ord(c) for c in first]] = 2
    return tokens, spaced, other, frozenset(first), alphabet


def _read_header(path: Path, keep_open: bool = False):
    f = open(path, "rb")
    try:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n)) if 0 < n < 1 << 20 else None
    except (ValueError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        f.close()
        raise MetadataError(f"{path} is not a metaclip2 matcher file")
    if keep_open:
        return header, f
    f.close()
    return header, None
