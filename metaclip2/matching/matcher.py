"""Multi-pattern matching of alt-texts against one language's metadata ([Matching rules][matching-rules]).

An entry is found by how [`pad_entry`][metaclip2.matching.text.pad_entry] pads it:

* **padded on both sides** (most entries of languages written with spaces): ``" e "``
  occurs in a spaced text exactly when the space-separated tokens of ``e`` are consecutive
  tokens of the text. A single-token entry is one dict lookup per text token; longer ones
  are found by walking a trie over token codes.
* **not padded at its start** (first character CJK-like): a trie over characters, walked
  forward from every position of the text that holds one of its first characters.
* **padded at its start only** (last character CJK-like): a trie over the reversed
  characters, walked backward from every position holding one of their last characters.
* **never matchable**: an entry holding one of ``, . ; : ? ! ` `` next to a character other
  than a space (or two of them one space apart) can never occur in a spaced text (spacing
  always puts a space of their own around those characters). Such entries are reported ([`Matcher.unmatchable`][metaclip2.matching.matcher.Matcher], a log warning) and
  skipped.

Every walk starts at each candidate position and follows the trie as far as the text
allows, so every occurrence, overlapping ones included, is found; numpy runs the walks of
a whole batch level by level. The tries are plain arrays (sorted edge keys, one entry id
per node), which makes matchers small, fast to load, and storable without pickle.

That is the default engine, ``"trie"``. ``Matcher(..., engine="aho-corasick")`` finds the
same entries with pyahocorasick automata instead, the paper's method: single-token entries
padded on both sides in a dict over the text's tokens, the other entries padded at their start
in one automaton, those starting with a CJK-like character in another, which reads only the
runs of a text made of its entries' characters that hold one of their first characters.
Everything else (entry checks, unmatchable entries, padding, spacing, batching, the CSR
result, the file format) is shared by both engines.

File format (``.matcher``, little-endian), version 3, the mapped one (written by default)::

    b"MC2MATCH"  uint32 3  uint32 header_length  header (JSON, UTF-8, starts with {"sha256": "<hex>")
    sections at the offsets the header gives, each starting at a multiple of 64 bytes

The header names the format, the language, the entry list's digest and count, and each
section's dtype, offset and length; ``sha256`` is that of the whole file with its own 64 hex
digits read as zeros. The sections hold what the trie engine walks, ready to use: the entries
(UTF-8, joined by newlines) and their byte offsets, the unmatchable ids, the token vocabulary
(bytes and offsets) with an open-addressing table of its words' 64-bit hashes, the word ->
entry array and the three tries' arrays. [`Matcher.load`][metaclip2.matching.matcher.Matcher.load] maps the file (``mmap``, read
only) and, with the trie engine, uses those arrays in place: nothing is parsed or built, the
entry strings are decoded only when [`Matcher.entries`][metaclip2.matching.matcher.Matcher.entries] is read, and all processes of a
machine share one copy of the pages through the page cache. A text's tokens are found by their
hash, and every hash hit is compared byte for byte with the vocabulary word. The Aho-Corasick
engine is rebuilt from the entries at every load (automata are never stored).

Integrity: a file is opened only if it is a regular file (non-blocking open, then ``fstat``),
and its header, section offsets and lengths are checked against the file's size before
anything is mapped. The whole file is verified once per machine and file version: its
checksum, then its entries decoded and encoded again, which must give the file byte for byte
(so every array, and every index stored in one, is exactly what this code derives from the
entries). A version that passed is recorded by [`metaclip2.core.verified`][metaclip2.core.verified] under its
``(st_dev, st_ino, size, mtime, ctime)`` and checksum, so later loads by any process of the
machine skip the hashing, and a rewritten or touched file is verified again; processes that
open a file not yet verified wait for the one verifying it (``flock``). Nothing in a file is
executed or trusted unchecked. A mapped file must be replaced, never rewritten in place while
in use (metaclip2 always writes a new file and renames it over the old one).

Version 2 (``save(path, version=2)``; still read): the header then holds the payload's size
and sha256, and the payload the entries, their byte lengths, the vocabulary and the token
codes of every entry padded on both sides (int32), each section padded to 8 bytes. Every
load checks the size, the checksum, the digest, every length and every token against the
entries, then builds the chosen engine from them.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import json
import logging
import mmap
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

try:
    import fcntl
except ImportError:  # not on Windows: verifications are then not serialised
    fcntl = None

from metaclip2.core.charclass import is_cjk_like
from metaclip2.core.entries import check_entries, entries_digest
from metaclip2.core.errors import DataError, MatcherFileError, MatcherMismatchError, MetadataError, MissingInputError, ParameterError
from metaclip2.core.regularfile import open_regular_fd
from metaclip2.core.verified import is_verified, mark_verified, verified_key
from metaclip2.matching.text import SPACED_CONTROLS, WRAPPED_PUNCTUATION, spacing
from metaclip2.core.atomic import AtomicFile

__all__ = ["Matcher", "MATCHER_ENGINES", "MatcherMismatchError", "MatcherFileError"]

log = logging.getLogger(__name__)

_FORMAT = "metaclip2-matcher/2"
_OLD_FORMAT = "metaclip2-matcher/1"
_MAGIC = b"MC2MATCH"
_VERSION = 2
_MAX_HEADER = 1 << 20
# (name, dtype) of the payload sections, in file order.
_SECTIONS = (("entries", "u1"), ("lengths", "<u4"), ("words", "u1"), ("tokens", "<i4"))
_MAPPED_FORMAT = "metaclip2-matcher/3"
_MAPPED_VERSION = 3
_ALIGN = 64  # every mapped section starts at a multiple of this (cache lines, any dtype)
_SHA_PREFIX = b'{"sha256": "'  # the header starts so: the checksum sits at a fixed offset
_SHA_AT = 16 + len(_SHA_PREFIX)
_TRIES = ("phrases", "forward", "backward")
# (name, dtype) of the mapped sections, in file order.
_MAPPED_SECTIONS = (
    ("entries", "u1"), ("offsets", "<i8"), ("unmatchable", "<i4"),
    ("words", "u1"), ("word_offsets", "<i8"), ("word_hashes", "<u8"), ("slot_words", "<i4"), ("word_entry", "<i4"),
    *((f"{t}_{part}", dtype) for t in _TRIES for part, dtype in (("keys", "<i8"), ("entry", "<i4"), ("inner", "u1"), ("first", "<i4"))),
)  # fmt: skip
_NUL = "\x00"
_SEP = "\n"  # joins the spaced texts of a batch; no entry holds it, so no walk crosses texts
_SPACE, _NEWLINE = 32, 10
_CHARS = 0x110000  # edge-key radix of the character tries
# Token codes: 0 = a word of no entry, 1 = the batch separator, 2 + i = vocabulary word i.
_UNKNOWN, _SEPCODE, _FIRST_WORD = 0, 1, 2


class _Trie:
    """A trie over integer labels as plain arrays.

    Node 0 is the root; the edge into node ``k + 1`` has key ``keys[k] = parent * radix +
    label`` (keys sorted, so a child is found by binary search); ``entry[node]`` is the id of
    the entry ending there or -1; ``first[label]`` is the root's child (its last cell, -1,
    takes every label past the end).
    """

    __slots__ = ("keys", "entry", "inner", "first", "radix")

    def __init__(self, flat: np.ndarray, lengths: np.ndarray, ids: np.ndarray, radix: int):
        self.radix = radix
        n = len(lengths)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        node = np.zeros(n, dtype=np.int64)
        keys, n_nodes = [], 1
        for depth in range(int(lengths.max()) if n else 0):
            active = np.flatnonzero(lengths > depth)
            k = node[active] * radix + flat[offsets[active] + depth]
            # Parents of this level were numbered after every earlier node, so the keys of
            # all levels concatenate in sorted order and node ids follow key order.
            if depth == 0 and radix <= 4 * len(k) + 1024:
                # Level 1 without sorting: keys are the labels themselves.
                present = np.zeros(radix, dtype=bool)
                present[k] = True
                level = np.flatnonzero(present)
                inverse = (np.cumsum(present) - 1)[k]
            else:
                level, inverse = np.unique(k, return_inverse=True)
            node[active] = n_nodes + inverse.reshape(-1)
            n_nodes += len(level)
            keys.append(level)
        self.keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        self.entry = np.full(n_nodes, -1, dtype=np.int32)
        self.entry[node] = ids
        if np.count_nonzero(self.entry >= 0) != n:
            raise MetadataError("two entries are the same sequence (duplicate entries)")
        self.inner = np.zeros(n_nodes, dtype=bool)  # has children
        self.inner[self.keys // radix] = True
        roots = self.keys[self.keys < radix]  # parent 0
        self.first = np.full(int(roots.max()) + 2 if len(roots) else 1, -1, dtype=np.int32)
        self.first[roots] = np.arange(1, len(roots) + 1, dtype=np.int32)

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.entry.nbytes + self.inner.nbytes + self.first.nbytes

    def walk(self, labels: np.ndarray, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``(start positions, entry ids)`` of every occurrence in `labels`, read forward (step 1) or backward (-1)."""
        first = self.first
        node = np.take(first, labels, mode="clip")
        pos = np.flatnonzero(node >= 0)
        node = node[pos].astype(np.int64)
        found_pos, found_ids = [], []
        depth = 0
        keys, radix, n_labels = self.keys, self.radix, len(labels)
        while True:
            e = self.entry[node]
            hit = e >= 0
            found_pos.append(pos[hit])
            found_ids.append(e[hit])
            go = self.inner[node]
            depth += 1
            q = pos + depth * step
            go &= (q >= 0) & (q < n_labels)
            pos, node, q = pos[go], node[go], q[go]
            if not len(pos):
                break
            k = node * radix + labels[q]
            i = np.searchsorted(keys, k)
            i[i == len(keys)] = 0
            ok = keys[i] == k
            pos, node = pos[ok], i[ok] + 1
        return np.concatenate(found_pos), np.concatenate(found_ids)


class Matcher:
    """Find every metadata entry contained in an alt-text.

    Parameters
    ----------
    entries : sequence of str
        The ordered entry list of one language. Entry ``i`` has id ``i``.
        Entries must be unique, non-empty, and free of tab, newline, carriage
        return and NUL (such an entry could never match, since [`spacing`][metaclip2.matching.text.spacing]
        turns the first three into spaces).
    lang : str, optional
        The list's language, recorded in saved files and checked on load.
    engine : {"trie", "aho-corasick"}
        How entries are searched: ``"trie"`` (default) walks the array tries described in
        the module docstring; ``"aho-corasick"`` runs pyahocorasick automata, the paper's
        method (for exact reproduction or cross-checking; larger and slower to build). Both
        give the same ids for every text.

    Attributes
    ----------
    entries : list of str
    digest : str
        [`entries_digest`][metaclip2.core.entries.entries_digest] of `entries`.
    lang : str or None
    engine : str
    unmatchable : tuple of int
        Ids of the entries that can never match (see the module docstring); they are skipped.

    Raises
    ------
    ParameterError
        `engine` is not one of [`MATCHER_ENGINES`][metaclip2.matching.matcher.MATCHER_ENGINES].
    MetadataError
        An entry is empty, repeated, or holds a tab, newline, carriage return or NUL.

    See Also
    --------
    - [`MetadataStore`][metaclip2.matching.store.MetadataStore] : A metadata directory's matchers, loaded on demand.

    Notes
    -----
    Matching is case-sensitive. Each entry is padded with [`pad_entry`][metaclip2.matching.text.pad_entry] and
    searched in [`spacing`][metaclip2.matching.text.spacing] ``(text)``; overlapping occurrences are all
    found (``"of univ"`` and ``"univ"`` both match ``"of univ of universe"``).

    Examples
    --------
    >>> from metaclip2.matching import Matcher
    >>> m = Matcher(["dog", "red", "New York", "York"], lang="en")
    >>> m.match("a red dog in New York")
    [0, 1, 2, 3]
    >>> m.match("a hotdog")  # entries are padded with spaces: no match inside a word
    []
    >>> offsets, ids = m.match_many(["a dog", "a cat", "York"])
    >>> offsets.tolist(), ids.tolist()
    ([0, 1, 1, 2], [0, 3])
    """

    def __init__(self, entries: Sequence[str], lang: str | None = None, engine: str = "trie"):
        _check_engine(engine)
        entries = list(entries)
        check_entries(entries)
        layout = _Layout(entries)
        bad = np.flatnonzero(layout.forbidden)
        if len(bad):
            raise MetadataError(
                f"{len(bad)} entries hold a tab, newline, carriage return or NUL and could never match "
                f"(e.g. {entries[int(bad[0])]!r}); drop them from the list"
            )
        self._init(entries, entries_digest(entries), lang, layout, engine)
        if self.unmatchable:
            shown = ", ".join(repr(entries[i]) for i in self.unmatchable[:5])
            log.warning(
                "%d of %d entries%s can never match (a , . ; : ? ! or ` not surrounded by spaces of its own, which "
                "spacing always puts around it) and are skipped: %s%s",
                len(self.unmatchable), len(entries), f" of {lang!r}" if lang else "", shown,
                ", ..." if len(self.unmatchable) > 5 else "",
            )  # fmt: skip

    def _init(self, entries: list[str], digest: str, lang: str | None, layout: "_Layout", engine: str,
              words: list[str] | None = None, tokens: np.ndarray | None = None) -> None:  # fmt: skip
        self._entries = entries
        self._n = len(entries)
        self._stream = self._unmatchable_ids = None
        self.digest = digest
        self.lang = lang
        self.engine = engine
        self._unmatchable = tuple(np.flatnonzero(layout.unmatchable).tolist())
        self._engine = _ENGINES[engine](entries, layout, words, tokens)
        self._nbytes = 56 + layout.str_bytes + self._engine.nbytes  # the entry list (list + strs), then the engine

    @property
    def entries(self) -> list[str]:
        """The ordered entry list (decoded from the mapped file on first access)."""
        if self._entries is None:
            self._entries = str(self._stream, "utf-8", "surrogatepass").split(_SEP) if self._n else []
        return self._entries

    @property
    def unmatchable(self) -> tuple[int, ...]:
        """Ids of the entries that can never match (see the module docstring); they are skipped."""
        if self._unmatchable is None:
            self._unmatchable = tuple(self._unmatchable_ids.tolist())
        return self._unmatchable

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"Matcher({self._n} entries, lang={self.lang!r}, engine={self.engine!r}, digest={self.digest[:12]})"

    @property
    def nbytes(self) -> int:
        """Estimated memory held by this matcher, in bytes (entries and the engine's structures).

        The trie engine's is computed from its arrays and a per-item cost of its dict; for a
        mapped file (version 3), it is the size of the mapped arrays (pages shared by every
        process of the machine, resident only as far as they are read). The
        Aho-Corasick engine's is measured while its automata are built: the growth of the
        process's resident memory (free heap pages given back to the OS before and after),
        and at least pyahocorasick's own count of its nodes.
        """
        return self._nbytes

    # -- matching ----------------------------------------------------------------------
    def match(self, text: str) -> list[int]:
        """Sorted unique ids of the entries contained in `text`."""
        if not self._n:
            return []
        return sorted(set(self._engine.keys(spacing(text), 1, self._n).tolist()))

    def match_many(self, texts: Sequence[str], batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """Match a batch of texts at once.

        Parameters
        ----------
        texts : sequence of str
            ``n`` alt-texts.
        batch_size : int
            Texts searched in one pass; bounds the memory used.

        Returns
        -------
        offsets : ndarray of int64, shape (n + 1,)
            ``ids[offsets[k]:offsets[k + 1]]`` are the matches of ``texts[k]``.
        ids : ndarray of int32, shape (offsets[-1],)
            Entry ids, sorted and unique within each text.
        """
        n = len(texts)
        if n == 0 or not self._n:
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
        n_entries = self._n
        keys = self._engine.keys
        joined = _NUL.join(texts)
        if joined.count(_NUL) != n - 1:
            # A text holds NUL itself: search the texts one by one (NUL is then an ordinary character).
            key = np.concatenate([keys(spacing(t), 1, n_entries) + k * n_entries for k, t in enumerate(texts)])
        else:
            # spacing() of every text at once: " a " NUL " b " -> " a \n b ", the spaced texts joined by \n.
            key = keys(spacing(joined).replace(_NUL, " " + _SEP + " "), n, n_entries)
        key.sort()  # (sort + neighbour test: faster than np.unique's hashing here)
        if len(key):
            key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        text_of_hit, ids = np.divmod(key, n_entries)
        return np.bincount(text_of_hit, minlength=n).astype(np.int64), ids

    # -- persistence -----------------------------------------------------------------
    def save(self, path: str | os.PathLike, version: int = 3) -> None:
        """Save the matcher to one data-only file, atomically.

        Parameters
        ----------
        path : path
            The ``.matcher`` file to write.
        version : {3, 2}
            3 (default): the mapped format, whose arrays [`load`][metaclip2.matching.matcher.Matcher.load] uses in place. 2: the
            previous format (entries, vocabulary and token codes; rebuilt on every load), for
            older metaclip2 versions.
        """
        if version not in (2, _MAPPED_VERSION):
            raise ParameterError(f"version must be 2 or {_MAPPED_VERSION}, got {version!r}")
        data = _encode_mapped(self.entries, self.lang, self.digest) if version == _MAPPED_VERSION else None
        if data is None:  # version 2 asked for, or (never seen) two vocabulary words share a 64-bit hash
            data = self._encode_v2()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with AtomicFile(path) as f:
            f.write(data)

    def _encode_v2(self) -> bytes:
        stream = _SEP.join(self.entries).encode("utf-8", "surrogatepass")
        bounds = np.concatenate(([-1], np.flatnonzero(np.frombuffer(stream, dtype=np.uint8) == _NEWLINE), [len(stream)]))
        lengths = (np.diff(bounds) - 1).astype("<u4") if self.entries else np.zeros(0, dtype="<u4")
        # The vocabulary and token codes are not kept in memory: derive them again (deterministic).
        words, tokens = _tokenize(self.entries, _Layout(self.entries))
        data = {"entries": stream, "lengths": lengths.tobytes(), "words": _SEP.join(words).encode("utf-8", "surrogatepass"), "tokens": tokens.astype("<i4").tobytes()}
        sections, chunks = [], []
        for name, dtype in _SECTIONS:
            b = data[name]
            sections.append([name, dtype, len(b) // np.dtype(dtype).itemsize])
            chunks += [b, b"\0" * (-len(b) % 8)]
        payload = b"".join(chunks)
        header = json.dumps(
            {
                "format": _FORMAT, "lang": self.lang, "digest": self.digest, "entries": len(self.entries),
                "words": len(words), "sections": sections,
                "payload_bytes": len(payload), "payload_sha256": hashlib.sha256(payload).hexdigest(),
            }
        ).encode()  # fmt: skip
        header += b" " * (-(len(_MAGIC) + 8 + len(header)) % 8)
        return _MAGIC + _VERSION.to_bytes(4, "little") + len(header).to_bytes(4, "little") + header + payload

    @staticmethod
    def read_digest(path: str | os.PathLike) -> str:
        """The digest of the entry list a saved matcher was built from, without loading it."""
        path = Path(path)
        fd, st = _open_file(path)
        try:
            head = os.pread(fd, 16, 0)
            if head[:8] == _MAGIC and int.from_bytes(head[8:12], "little") == _MAPPED_VERSION:
                return _mapped_header(path, fd, st.st_size, head)["digest"]
            return _parse_header(path, os.pread(fd, 16 + _MAX_HEADER, 0))[0]["digest"]
        finally:
            os.close(fd)

    @classmethod
    def load(
        cls, path: str | os.PathLike, entries: Iterable[str] | None = None, digest: str | None = None, lang: str | None = None,
        engine: str = "trie",
    ) -> "Matcher":
        """Load a matcher saved by [`save`][metaclip2.matching.matcher.Matcher.save], checking everything it holds.

        A file of the mapped format (version 3) is memory-mapped: with the trie engine its
        arrays are used in place (nothing parsed or built; the processes of a machine share one
        copy through the page cache) and the entries are decoded only when
        [`entries`][metaclip2.matching.matcher.Matcher.entries] is read. Its whole content is checked once per machine and file
        version (see the module docstring); later loads only check its header. The
        Aho-Corasick engine is rebuilt from the entries (its automata are never stored). A
        file of version 2 is read, checked and built as before.

        Parameters
        ----------
        entries, digest : optional
            The entry list (or just its digest) the caller will interpret ids
            with. A matcher built from any other list raises
            [`MatcherMismatchError`][metaclip2.core.errors.MatcherMismatchError] instead of returning wrong ids.
        lang : str, optional
            The language the caller expects; a file saved for another one raises
            [`MatcherMismatchError`][metaclip2.core.errors.MatcherMismatchError].
        engine : {"trie", "aho-corasick"}
            The engine to use (see [`Matcher`][metaclip2.matching.matcher.Matcher]).

        Raises
        ------
        ParameterError
            `engine` is not one of [`MATCHER_ENGINES`][metaclip2.matching.matcher.MATCHER_ENGINES].
        MatcherFileError
            The file is not a regular file or not a matcher, is truncated or damaged, fails a
            check against its own entries, or uses the old pickle-based format (which is never loaded).
        MatcherMismatchError
            The file is intact but belongs to another entry list or language.
        """
        _check_engine(engine)
        path = Path(path)
        expected = entries_digest(entries) if entries is not None else digest
        fd, st = _open_file(path)
        try:
            head = os.pread(fd, 16, 0)
            if head[:8] == _MAGIC and int.from_bytes(head[8:12], "little") == _MAPPED_VERSION:
                return cls._load_mapped(path, fd, st, head, expected, lang, engine)
            data = _read_all(fd, st.st_size)
        finally:
            os.close(fd)
        header, start = _parse_header(path, data)
        _check_expected(path, header, expected, lang)
        payload = memoryview(data)[start:]
        if len(payload) != header["payload_bytes"]:
            raise MatcherFileError(f"{path} is truncated or padded: {len(payload):,} payload bytes, its header says {header['payload_bytes']:,}")
        if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
            raise MatcherFileError(f"{path} is damaged: its payload does not match its checksum")
        try:
            m = cls._from_payload(payload, header, engine)
            del data, payload
            _release_free_memory()
            return m
        except MatcherFileError as e:
            raise MatcherFileError(f"{path}: {e}") from None
        except (MetadataError, ValueError, IndexError, UnicodeDecodeError) as e:
            raise MatcherFileError(f"{path} fails the check against its own entries ({e}); rebuild it") from None

    @classmethod
    def _load_mapped(cls, path: Path, fd: int, st: os.stat_result, head: bytes, expected: str | None, lang: str | None,
                     engine: str) -> "Matcher":  # fmt: skip
        header = _mapped_header(path, fd, st.st_size, head)
        _check_expected(path, header, expected, lang)
        try:
            mm = mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise MatcherFileError(f"{path} cannot be mapped ({e})") from None
        key = verified_key(st, header["sha256"])
        if not is_verified(key):
            # One process of the machine verifies; the others wait for it, then find its record.
            locked = _lock(fd)
            try:
                if not is_verified(key):
                    _verify_mapped(path, mm, header)
                    mark_verified(key, path)
            finally:
                if locked:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        arrays = {}
        for name, dtype, offset, count in header["sections"]:
            arrays[name] = np.frombuffer(mm, dtype=dtype, count=count, offset=offset) if count else np.zeros(0, dtype=dtype)
        m = cls.__new__(cls)
        m._n, m._stream = header["entries"], arrays["entries"]
        m._entries = m._unmatchable = None
        m._unmatchable_ids = arrays["unmatchable"]
        m.digest, m.lang, m.engine = header["digest"], header["lang"], engine
        if engine == "trie":
            m._engine = _MappedTrieEngine(arrays, header)
            m._nbytes = m._engine.nbytes
        else:
            entries = m.entries
            layout = _Layout(entries)
            m._engine = _ENGINES[engine](entries, layout, None, None)
            m._nbytes = 56 + layout.str_bytes + m._engine.nbytes
        return m

    @classmethod
    def _from_payload(cls, payload: memoryview, header: dict, engine: str) -> "Matcher":
        arrays, offset = {}, 0
        for name, dtype, count in header["sections"]:
            size = count * np.dtype(dtype).itemsize
            arrays[name] = np.frombuffer(payload, dtype=dtype, count=count, offset=offset)
            offset += size + (-size % 8)
        if offset != len(payload):
            raise MatcherFileError("its sections do not fill its payload")
        n = header["entries"]
        stream, lengths = arrays["entries"], arrays["lengths"].astype(np.int64)
        # The entries joined by \n, and their UTF-8 lengths: the newlines must sit exactly between them.
        if len(lengths) != n or int(lengths.sum()) + max(n - 1, 0) != len(stream) or (n and lengths.min() == 0):
            raise MatcherFileError("its entry lengths do not fit its entries")
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
        # Exactly n - 1 newlines, each where one entry ends: no entry holds one.
        if n and (_count_newlines(stream) != n - 1 or not (stream[starts[1:] - 1] == _NEWLINE).all()):
            raise MatcherFileError("its entry lengths do not fit its entries")
        if _digest_of_joined(stream, starts, lengths) != header["digest"]:
            raise MatcherFileError("its entries do not match its digest")
        entries = str(stream, "utf-8", "surrogatepass").split(_SEP) if n else []
        layout = _Layout(entries, stream, starts, lengths)
        if layout.forbidden.any():
            raise MatcherFileError("an entry holds a tab, carriage return or NUL")
        words_bytes = arrays["words"].tobytes()
        words = words_bytes.decode("utf-8", "surrogatepass").split(_SEP) if header["words"] else []
        if len(words) != header["words"]:
            raise MatcherFileError("its vocabulary does not have the size its header says")
        tokens = arrays["tokens"].astype(np.int64)
        _check_tokens(entries, layout, words, tokens)
        m = cls.__new__(cls)
        m._init(entries, header["digest"], header["lang"], layout, engine, words, tokens)
        return m


class _TrieEngine:
    """The word trie and the two character tries of the module docstring, as plain arrays."""

    def __init__(self, entries: list[str], layout: "_Layout", words: list[str] | None, tokens: np.ndarray | None):
        if words is None:
            words, tokens = _tokenize(entries, layout)
        token_ids = np.flatnonzero(layout.token)
        n_tok = layout.spaces[token_ids] + 1
        single = n_tok == 1
        offsets = np.zeros(len(token_ids) + 1, dtype=np.int64)
        np.cumsum(n_tok, out=offsets[1:])
        # Single-token entries: the word's code gives the entry. Their dict keys are the entry strings themselves.
        single_codes = tokens[offsets[:-1][single]]
        self._word_entry = np.full(len(words) + _FIRST_WORD, -1, dtype=np.int32)
        self._word_entry[single_codes] = token_ids[single]
        if np.count_nonzero(self._word_entry >= 0) != len(single_codes):
            raise MetadataError("two single-word entries have the same word (duplicate entries)")
        if len(single_codes):
            shared = np.array(words, dtype=object)
            shared[single_codes - _FIRST_WORD] = np.array(entries, dtype=object)[token_ids[single]]
            words[:] = shared.tolist()
        self._words = dict(zip(words, range(_FIRST_WORD, len(words) + _FIRST_WORD)))
        if len(self._words) != len(words):
            raise MetadataError("the token vocabulary holds a word twice")
        self._words[_SEP] = _SEPCODE
        multi = ~single
        keep = np.repeat(multi, n_tok)
        self._phrases = _Trie(tokens[keep], n_tok[multi], token_ids[multi], len(words) + _FIRST_WORD) if multi.any() else None
        fwd = np.flatnonzero(layout.forward)
        self._forward = _Trie(*layout.sequences(fwd, reverse=False), fwd, _CHARS) if len(fwd) else None
        bwd = np.flatnonzero(layout.backward)
        self._backward = _Trie(*layout.sequences(bwd, reverse=True), bwd, _CHARS) if len(bwd) else None
        self.nbytes = (
            # The same estimate however the matcher was made: dict (≈50 bytes an item), strs, ints, arrays.
            _dict_bytes(self._words) + _str_bytes_estimate(words, token_ids[single], layout) + 28 * len(words)
            + self._word_entry.nbytes
            + sum(t.nbytes for t in (self._phrases, self._forward, self._backward) if t is not None)
        )  # fmt: skip

    def keys(self, big: str, n_texts: int, n_entries: int) -> np.ndarray:
        """``text index * n_entries + id`` of every occurrence in spaced texts joined by \\n (with repeats)."""
        parts = [np.zeros(0, dtype=np.int64)]
        if self._phrases is not None or self._word_entry.size > _FIRST_WORD:
            parts += _word_keys(big, n_texts, n_entries, self._words, self._word_entry, self._phrases)
        if self._forward is not None or self._backward is not None:
            chars, seps = _char_codes(big, n_texts)
            for trie, step in ((self._forward, 1), (self._backward, -1)):
                if trie is not None:
                    parts.append(_keys_at(seps, *trie.walk(chars, step), n_entries))
        return np.concatenate(parts)


class _AhoCorasickEngine:
    """pyahocorasick automata over the padded entries: the paper's method.

    Single-token entries padded on both sides are a dict over the text's space-separated
    tokens (one lookup per token, like the trie engine's). The other entries go to two
    automata: ``spaced`` holds those padded at the start; ``other`` those whose first
    character is CJK-like. pyahocorasick scans a node's children linearly, so keeping the
    thousands of CJK first characters away from the root of the automaton that reads Latin
    text keeps its root misses cheap. ``other`` reads only the runs of a text made of its
    entries' characters that hold one of their first characters (an occurrence lies inside
    such a run); for Latin text that is little or nothing. Unmatchable entries are left out
    of all three.

    `nbytes` is measured: the growth of the process's resident memory while the
    structures are built (free heap pages given back to the OS before and after, so that
    reused or transient memory does not distort it), and at least pyahocorasick's own count
    of its nodes.
    """

    def __init__(self, entries: list[str], layout: "_Layout", words: list[str] | None, tokens: np.ndarray | None):
        import ahocorasick

        _release_free_memory()
        before = _resident_bytes()
        single = np.flatnonzero(layout.token & (layout.spaces == 0))
        self._words = dict(zip([entries[i] for i in single.tolist()], range(_FIRST_WORD, len(single) + _FIRST_WORD)))
        self._words[_SEP] = _SEPCODE
        self._word_entry = np.concatenate((np.full(_FIRST_WORD, -1), single)).astype(np.int32)
        spaced_ids = np.flatnonzero((layout.token & (layout.spaces > 0)) | layout.backward).tolist()
        self._spaced = _automaton(ahocorasick, layout.padded(spaced_ids), spaced_ids)
        other_ids = np.flatnonzero(layout.forward).tolist()
        self._other, self._alphabet = None, np.zeros(1, dtype=np.uint8)
        if other_ids:
            padded = layout.padded(other_ids)
            # pyahocorasick scans a node's children in insertion order, and every character that
            # no entry starts with scans all the root's (tens of thousands for Chinese). The
            # space, the commonest such character in spaced text, comes first: a placeholder
            # word " \n" that never occurs (searched texts are split at \n) makes it root child 0.
            self._other = _automaton(ahocorasick, [" " + _SEP, *padded], [-1, *other_ids])
            # Code point -> 2: a first character, 1: another character of these entries, 0: none (the last cell, past them all).
            chars = np.unique(np.frombuffer("".join(padded).encode("utf-32-le", "surrogatepass"), dtype=np.uint32))
            self._alphabet = np.zeros(int(chars[-1]) + 2, dtype=np.uint8)
            self._alphabet[chars] = 1
            self._alphabet[np.unique(np.fromiter(map(ord, (p[0] for p in padded)), dtype=np.int64, count=len(padded)))] = 2
        _release_free_memory()
        measured = _resident_bytes() - before if before is not None else 0
        counted = (
            sum(a.get_stats()["total_size"] for a in (self._spaced, self._other) if a is not None)
            + _dict_bytes(self._words) + 28 * len(self._words) + self._word_entry.nbytes + self._alphabet.nbytes
        )  # fmt: skip
        self.nbytes = max(measured, counted)

    def keys(self, big: str, n_texts: int, n_entries: int) -> np.ndarray:
        """``text index * n_entries + id`` of every occurrence in spaced texts joined by \\n (with repeats)."""
        parts = [np.zeros(0, dtype=np.int64)]
        if self._word_entry.size > _FIRST_WORD:
            parts += _word_keys(big, n_texts, n_entries, self._words, self._word_entry, None)
        if self._spaced is None and self._other is None:
            return np.concatenate(parts)
        chars, seps = _char_codes(big, n_texts)
        if self._spaced is not None:
            parts.append(_keys_at(seps, *_hits(self._spaced, big), n_entries))
        if self._other is not None:
            cls = self._alphabet[np.minimum(chars, len(self._alphabet) - 1)]
            first = cls == 2
            if first.any():
                # An occurrence lies inside one run of the entries' characters and starts at one
                # of their first characters: block every character outside such runs and every
                # run without a first character, each blocked stretch shrunk to one separator.
                blocked = cls == 0
                run = np.cumsum(blocked)
                has_first = np.zeros(int(run[-1]) + 1, dtype=bool)
                has_first[run[first]] = True
                blocked |= ~has_first[run]
                sel = ~blocked
                sel[1:] |= blocked[1:] & ~blocked[:-1]
                sel[0] = True
                where = np.flatnonzero(sel)
                kept = chars[where]
                kept[blocked[where]] = _NEWLINE
                ends, ids = _hits(self._other, kept.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass"))
                parts.append(_keys_at(seps, where[ends], ids, n_entries))
        return np.concatenate(parts)


MATCHER_ENGINES = ("trie", "aho-corasick")
"""The names of the matching engines, the default first."""
_ENGINES = {"trie": _TrieEngine, "aho-corasick": _AhoCorasickEngine}


def _check_engine(engine: object) -> None:
    if engine not in _ENGINES:
        raise ParameterError(f"engine must be one of {MATCHER_ENGINES}, got {engine!r}")


def _word_keys(big: str, n_texts: int, n_entries: int, words: dict, word_entry: np.ndarray, phrases: _Trie | None) -> list[np.ndarray]:
    """Keys of the entries found as whole tokens: `words` gives each token's code, `word_entry`
    a code's single-token entry, `phrases` (a trie over codes) the multi-token ones."""
    tokens = big.split(" ")
    codes = np.fromiter(map(words.get, tokens, itertools.repeat(_UNKNOWN)), dtype=np.int64, count=len(tokens))
    return _code_keys(codes, n_texts, n_entries, word_entry, phrases)


def _code_keys(codes: np.ndarray, n_texts: int, n_entries: int, word_entry: np.ndarray, phrases: _Trie | None) -> list[np.ndarray]:
    """`_word_keys` from the token codes."""
    # The first and last pieces lie outside the outer spaces: no occurrence may use them.
    codes[0] = codes[-1] = _UNKNOWN
    text_of = np.cumsum(codes == _SEPCODE) if n_texts > 1 else np.zeros(len(codes), dtype=np.int64)
    e = word_entry[codes]
    hit = np.flatnonzero(e >= 0)
    out = [text_of[hit] * n_entries + e[hit]]
    if phrases is not None:
        pos, ids = phrases.walk(codes)
        out.append(text_of[pos] * n_entries + ids)
    return out


def _char_codes(big: str, n_texts: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Code points of spaced texts joined by \\n, and where each text ends (None for one text)."""
    chars = np.frombuffer(big.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return chars, (np.flatnonzero(chars == _NEWLINE) if n_texts > 1 else None)


def _keys_at(seps: np.ndarray | None, pos: np.ndarray, ids: np.ndarray, n_entries: int) -> np.ndarray:
    """``text index * n_entries + id`` of occurrences at character positions `pos`."""
    return (np.searchsorted(seps, pos) if seps is not None else 0) * n_entries + ids


def _automaton(ahocorasick, words: list[str], values: list[int]):
    """A pyahocorasick automaton of `words` with int `values`, or None without words."""
    if not words:
        return None
    a = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for w, v in zip(words, values):
        a.add_word(w, v)
    a.make_automaton()
    return a


def _hits(automaton, text: str) -> tuple[np.ndarray, np.ndarray]:
    """End positions and values of every occurrence in `text`, whose pieces between \\n (which no
    entry holds) are searched one by one.

    Short pieces keep pyahocorasick's end positions among Python's cached small ints (one long
    text allocates an int for every hit); each piece's hits are followed by an end mark
    ``(-1, 0)``, so that one flat pass over them all gives every hit its piece.
    """
    pieces = text.split(_SEP)
    search, flatten = automaton.iter, itertools.chain.from_iterable
    flat = np.fromiter(flatten(flatten(flatten((search(p), _PIECE_END) for p in pieces))), dtype=np.int64)
    ends, values = flat[0::2], flat[1::2]
    mark = ends < 0
    starts = np.zeros(len(pieces), dtype=np.int64)
    np.cumsum(np.fromiter(map(len, pieces[:-1]), dtype=np.int64, count=len(pieces) - 1) + 1, out=starts[1:])
    hit = ~mark
    return ends[hit] + starts[np.cumsum(mark)[hit]], values[hit]


_PIECE_END = ((-1, 0),)


def _dict_bytes(d: dict) -> int:
    return 64 + 50 * len(d)  # a dict costs about 50 bytes an item


def _resident_bytes() -> int | None:
    """This process's resident memory (Linux), else None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class _Layout:
    """Per-entry facts derived from the UTF-8 bytes of an entry list, vectorized.

    ``raw`` holds ``"\\n".join(entries)`` in UTF-8; ``starts``/``lengths`` locate each entry
    in it (bytes). ``token``/``forward``/``backward``/``unmatchable`` partition the entries
    (see the module docstring); ``spaces`` counts each entry's spaces. Every character that
    matters here is ASCII, and no byte of a longer UTF-8 sequence is ASCII.
    """

    def __init__(self, entries: list[str], raw: np.ndarray | None = None, starts: np.ndarray | None = None, lengths: np.ndarray | None = None):
        self.entries = entries
        n = len(entries)
        if raw is None:
            raw = np.frombuffer(_SEP.join(entries).encode("utf-8", "surrogatepass"), dtype=np.uint8)
            ends = np.flatnonzero(raw == _NEWLINE)
            if len(ends) != max(n - 1, 0):
                raise MetadataError("an entry holds a newline, which could never match; drop it")
            starts = np.concatenate(([0], ends + 1)).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
            lengths = np.diff(np.concatenate((starts, [len(raw) + 1]))) - 1 if n else np.zeros(0, dtype=np.int64)
            if n and lengths.min() < 1:
                raise MetadataError("entries must be non-empty")
        self.starts, self.lengths = starts, lengths
        cls = _BYTE_CLASS[raw]
        self.forbidden = self._flag(np.flatnonzero(cls == _FORBIDDEN), n)
        if not n:
            self.token = self.forward = self.backward = self.unmatchable = self.first_cjk = self.last_cjk = np.zeros(0, dtype=bool)
            self.spaces = np.zeros(0, dtype=np.int64)
            self.str_bytes = 0
            return
        last_start = starts + lengths - 1
        for _ in range(3):  # back to the lead byte of the last character
            last_start -= ((raw[last_start] & 0xC0) == 0x80) & (last_start > starts)
        self.first_cjk = first_cjk = _cjk_like_at(raw, starts)
        self.last_cjk = last_cjk = _cjk_like_at(raw, last_start)
        # A wrapped character always has its own space on each side in a spaced text, so an
        # entry with a wrapped character next to anything but a space (inside the padded entry),
        # or with two wrapped characters one space apart, never occurs; every other entry does
        # (remove those spaces to get a text that matches). Outside the entry no neighbour
        # exists: a wrapped character is CJK-like, so an entry starting or ending with one is
        # not padded on that side.
        w = np.flatnonzero(cls == _WRAPPED)
        left = cls[np.maximum(w - 1, 0)]
        right = cls[np.minimum(w + 1, len(raw) - 1)]
        after_space = cls[np.minimum(w + 2, len(raw) - 1)]
        never = (
            ((w > 0) & (left != _SPACE_CLASS) & (left != _NEWLINE_CLASS))
            | ((w < len(raw) - 1) & (right != _SPACE_CLASS) & (right != _NEWLINE_CLASS))
            # Two wrapped characters one space apart: each brings its own space, so a text has two.
            | ((w < len(raw) - 2) & (right == _SPACE_CLASS) & (after_space == _WRAPPED))
        )
        self.unmatchable = self._flag(w[never], n)
        ok = ~self.unmatchable
        self.token = ok & ~first_cjk & ~last_cjk
        self.forward = ok & first_cjk
        self.backward = ok & ~first_cjk & last_cjk
        space = np.flatnonzero(cls == _SPACE_CLASS)
        self.spaces = np.diff(np.append(np.searchsorted(space, starts), len(space))).astype(np.int64)
        # Estimated CPython str sizes: compact ASCII (one byte a character), else ~two bytes a character.
        chars = np.fromiter(map(len, entries), dtype=np.int64, count=n)
        self.str_bytes = int(np.where(chars == lengths, 49 + chars, 74 + 2 * chars).sum()) + 8 * n

    def _flag(self, positions: np.ndarray, n: int) -> np.ndarray:
        """Entries holding any of the byte `positions`."""
        out = np.zeros(n, dtype=bool)
        out[np.searchsorted(self.starts, positions, "right") - 1] = True
        return out

    def padded(self, ids: Sequence[int]) -> list[str]:
        """The entries `ids` padded as [`pad_entry`][metaclip2.matching.text.pad_entry] pads them."""
        first, last, entries = self.first_cjk, self.last_cjk, self.entries
        return [("" if first[i] else " ") + entries[i] + ("" if last[i] else " ") for i in ids]

    def sequences(self, ids: np.ndarray, reverse: bool) -> tuple[np.ndarray, np.ndarray]:
        """Code points of the padded entries `ids` (each reversed for `reverse`), flat, and their lengths."""
        pick = self.padded(ids.tolist())
        if reverse:
            pick = [p[::-1] for p in pick]
        flat = np.frombuffer("".join(pick).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
        return flat, np.fromiter(map(len, pick), dtype=np.int64, count=len(pick))


_ASCII_CJK_LIKE = np.array([is_cjk_like(chr(c)) for c in range(128)], dtype=bool)


def _cjk_like_at(raw: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Whether the UTF-8 character starting at each of `pos` is CJK-like (a table for ASCII, a lookup per distinct other one)."""
    lead = raw[pos]
    out = _ASCII_CJK_LIKE[np.minimum(lead, 127)]
    wide = np.flatnonzero(lead >= 0x80)
    if len(wide):
        codes = _decode_at(raw, pos[wide])
        distinct, inverse = np.unique(codes, return_inverse=True)
        out[wide] = np.array([is_cjk_like(chr(c)) for c in distinct.tolist()], dtype=bool)[inverse.reshape(-1)]
    return out


def _decode_at(raw: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Code point of the UTF-8 character starting at each of `pos` (surrogates as encoded by surrogatepass)."""
    b = [raw[np.minimum(pos + k, len(raw) - 1)].astype(np.int64) for k in range(4)]
    lead = b[0]
    two = (lead & 0x1F) << 6 | (b[1] & 0x3F)
    three = (lead & 0x0F) << 12 | (b[1] & 0x3F) << 6 | (b[2] & 0x3F)
    four = (lead & 0x07) << 18 | (b[1] & 0x3F) << 12 | (b[2] & 0x3F) << 6 | (b[3] & 0x3F)
    return np.where(lead < 0x80, lead, np.where(lead < 0xE0, two, np.where(lead < 0xF0, three, four)))


# Classes of the bytes of UTF-8 entry lists (non-ASCII bytes are class 0).
_WRAPPED, _SPACE_CLASS, _NEWLINE_CLASS, _FORBIDDEN = 1, 2, 3, 4
_BYTE_CLASS = np.zeros(256, dtype=np.uint8)
_BYTE_CLASS[[ord(c) for c in WRAPPED_PUNCTUATION]] = _WRAPPED
_BYTE_CLASS[_SPACE] = _SPACE_CLASS
_BYTE_CLASS[_NEWLINE] = _NEWLINE_CLASS
_BYTE_CLASS[[ord(c) for c in (*SPACED_CONTROLS, _NUL) if c != _SEP]] = _FORBIDDEN


def _tokenize(entries: list[str], layout: _Layout) -> tuple[list[str], np.ndarray]:
    """Vocabulary (first-seen order) and flat token codes of the entries padded on both sides."""
    token_entries = [entries[i] for i in np.flatnonzero(layout.token).tolist()]
    pieces = " ".join(token_entries).split(" ") if token_entries else []
    vocab = dict.fromkeys(pieces)
    codes = dict(zip(vocab, range(_FIRST_WORD, len(vocab) + _FIRST_WORD)))
    return list(vocab), np.fromiter(map(codes.__getitem__, pieces), dtype=np.int64, count=len(pieces))


def _check_tokens(entries: list[str], layout: _Layout, words: list[str], tokens: np.ndarray, chunk: int = 1 << 16) -> None:
    """Check that `tokens` are exactly the space-separated pieces of the both-side-padded entries."""
    ids = np.flatnonzero(layout.token)
    if len(tokens) != int((layout.spaces[ids] + 1).sum()):
        raise MatcherFileError("its token codes do not fit its entries")
    if not len(tokens):
        return
    if tokens.min() < _FIRST_WORD or tokens.max() >= len(words) + _FIRST_WORD:
        raise MatcherFileError("a token code is out of range")
    # Both sides split on " " into the same number of pieces, so equal joins mean equal pieces
    # (a word holding a space would add a piece). Chunks of entries bound the memory used.
    words_obj = np.array(words, dtype=object)
    offsets = np.concatenate(([0], np.cumsum(np.where(layout.token, layout.spaces + 1, 0))))
    for lo in range(0, len(entries), chunk):
        hi = min(len(entries), lo + chunk)
        a, b = offsets[lo], offsets[hi]
        if a == b:
            continue
        spelled = " ".join(words_obj[tokens[a:b] - _FIRST_WORD].tolist())
        if spelled != " ".join(itertools.compress(entries[lo:hi], layout.token[lo:hi].tolist())):
            raise MatcherFileError("its token codes do not spell its entries")


def _str_bytes_estimate(words: list[str], shared_ids: np.ndarray, layout: _Layout) -> int:
    """Estimated bytes of the vocabulary strings not shared with the entry list."""
    own = len(words) - len(shared_ids)
    if own <= 0:
        return 0
    total_chars = sum(map(len, words))
    shared_chars = int(layout.lengths[shared_ids].sum()) if len(shared_ids) else 0  # bytes: close enough
    return 49 * own + max(total_chars - shared_chars, 0)


def _count_newlines(a: np.ndarray) -> int:
    return memoryview(a).tobytes().count(b"\n") if a.nbytes < (1 << 26) else int(np.count_nonzero(a == _NEWLINE))


def _digest_of_joined(joined: np.ndarray, starts: np.ndarray, lengths: np.ndarray, chunk: int = 1 << 16) -> str:
    """[`entries_digest`][metaclip2.core.entries.entries_digest] of entries given as UTF-8 bytes joined by \\n, chunk by chunk (bounded memory)."""
    h = hashlib.sha256()
    n = len(lengths)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        lo, hi = int(starts[a]), int(starts[b - 1] + lengths[b - 1])
        body = joined[lo:hi]
        # [u64 length][bytes] per entry: each entry's 8-byte length replaces the \n before it.
        size = lengths[a:b]
        out = np.empty(int(size.sum()) + 8 * (b - a), dtype=np.uint8)
        heads = np.zeros(b - a, dtype=np.int64)
        np.cumsum(size[:-1] + 8, out=heads[1:])
        is_head = np.zeros(len(out), dtype=bool)
        for k in range(8):
            is_head[heads + k] = True
        out[is_head] = size.astype("<u8").view(np.uint8)
        out[~is_head] = body[body != _NEWLINE] if b - a > 1 else body
        h.update(out)
    h.update(n.to_bytes(8, "little"))
    return h.hexdigest()


def _release_free_memory() -> None:
    """Give the heap's free pages back to the OS (glibc only; a no-op elsewhere).

    Loading a large list allocates temporaries several times the matcher's size; glibc keeps
    freed heap memory mapped, which would count in the process's RSS until reused.
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


def _parse_header(path: Path, data: bytes) -> tuple[dict, int]:
    """The validated header of a matcher file and the payload's offset."""
    if data[:8] != _MAGIC:
        # The old format: an 8-byte header length, a JSON header, then a pickle. Name it, never unpickle it.
        n = int.from_bytes(data[:8], "little") if len(data) >= 8 else 0
        if 0 < n < _MAX_HEADER and data[8 : 8 + n].lstrip().startswith(b"{") and _OLD_FORMAT.encode() in data[8 : 8 + n]:
            raise MatcherFileError(
                f"{path} uses the old pickle-based matcher format, which is never loaded since it could run code; "
                "rebuild it (`metaclip2 metadata lid`, or let MetadataStore build it from the .tsv)"
            )
        raise MatcherFileError(f"{path} is not a metaclip2 matcher file")
    if len(data) < 16:
        raise MatcherFileError(f"{path} is truncated: its header is incomplete")
    version = int.from_bytes(data[8:12], "little")
    size = int.from_bytes(data[12:16], "little")
    if version != _VERSION:
        raise MatcherFileError(f"{path} has matcher format version {version}; this metaclip2 reads version {_VERSION}; rebuild it")
    if not 0 < size <= _MAX_HEADER or len(data) < 16 + size:
        raise MatcherFileError(f"{path} is truncated or damaged: bad header length {size}")
    try:
        header = json.loads(data[16 : 16 + size])
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MatcherFileError(f"{path} is damaged: its header is not valid JSON") from None
    if not _header_ok(header):
        raise MatcherFileError(f"{path} is damaged: its header lacks or mistypes a field")
    return header, 16 + size


def _header_ok(h) -> bool:
    if not isinstance(h, dict) or h.get("format") != _FORMAT:
        return False
    ints = ("entries", "words", "payload_bytes")
    if not all(isinstance(h.get(k), int) and not isinstance(h.get(k), bool) and h[k] >= 0 for k in ints):
        return False
    if not isinstance(h.get("digest"), str) or not isinstance(h.get("payload_sha256"), str):
        return False
    if "lang" not in h or (h["lang"] is not None and not isinstance(h["lang"], str)):
        return False
    s = h.get("sections")
    if not isinstance(s, list) or len(s) != len(_SECTIONS):
        return False
    for got, (name, dtype) in zip(s, _SECTIONS):
        if not (isinstance(got, list) and len(got) == 3 and got[0] == name and got[1] == dtype):
            return False
        if not isinstance(got[2], int) or isinstance(got[2], bool) or not 0 <= got[2] <= h["payload_bytes"]:
            return False
    return True


# -- the mapped format (version 3) ---------------------------------------------------------------

# Token hashes: h = sum((byte_k + 1) * P**k) mod 2**64 over a token's UTF-8 bytes (k counted from
# the token's start), xor its length; one pass of numpy over a whole batch gives every token's.
_P = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_powers_cache = [np.ones(1, dtype=np.uint64)]


def _powers(n: int) -> np.ndarray:
    """``P**k`` (mod 2**64) for k < n (n is the longest token: the cache stays small)."""
    pw = _powers_cache[0]
    if len(pw) < n:
        pw = np.ones(max(n, 2 * len(pw)), dtype=np.uint64)
        with np.errstate(over="ignore"):
            np.cumprod(np.full(len(pw) - 1, _P), out=pw[1:])
        _powers_cache[0] = pw
    return pw


def _token_hashes(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starts, ends and hashes of the space-separated pieces of UTF-8 bytes `raw` (as ``split(" ")`` gives them)."""
    space = raw == _SPACE
    where = np.flatnonzero(space)
    starts = np.concatenate(([0], where + 1))
    ends = np.append(where, len(raw))
    size = ends - starts
    rel = np.arange(len(raw)) - starts[np.cumsum(space)]  # position in its piece (-1 for a space)
    x = np.zeros(len(raw) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x[:-1] = (raw.astype(np.uint64) + np.uint64(1)) * _powers(int(size.max()) + 1)[np.maximum(rel, 0)]
        x[:-1][space] = 0
        # Each start's segment runs to the next start: the piece, then its space (0). Starts rise strictly.
        h = np.add.reduceat(x, starts) ^ size.astype(np.uint64)
    return starts, ends, h


def _home(h: np.ndarray, bits: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ((h * _MIX) >> np.uint64(64 - bits)).astype(np.int64)


def _word_table(words: list[bytes]) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    """A linear-probing table of the vocabulary: each word's hash, each slot's word id (-1:
    empty), log2 of the number of home slots and the longest probe; None if two words share a hash.

    Words are placed in order of their home slot, each in the first free slot from its home on
    (a running maximum, no wrap-around: the table has ``probe + 1`` slots past the home slots),
    so that the slots between a word's home and its slot are all taken, as a probe needs.
    """
    n = len(words)
    h = _token_hashes(np.frombuffer(b" ".join(words), dtype=np.uint8))[2] if n else np.zeros(0, dtype=np.uint64)
    if len(np.unique(h)) != n:
        return None
    bits = max(1, int(2 * max(n, 1) - 1).bit_length())  # at most half full
    home = _home(h, bits) if n else np.zeros(0, dtype=np.int64)
    order = np.argsort(home, kind="stable")
    rank = np.arange(n)
    slot = rank + np.maximum.accumulate(home[order] - rank) if n else rank
    probe = int((slot - home[order]).max()) if n else 0
    slot_words = np.full((1 << bits) + probe + 1, -1, dtype="<i4")
    slot_words[slot] = order
    return h, slot_words, bits, probe


def _encode_mapped(entries: list[str], lang: str | None, digest: str) -> bytes | None:
    """The bytes of a version-3 file of `entries` (None if two vocabulary words share a hash).

    Deterministic: the same entries and language always give the same bytes, which is how a
    file is verified (decoded, encoded again, compared).
    """
    layout = _Layout(entries)
    if layout.forbidden.any():
        raise MetadataError("an entry holds a tab, carriage return or NUL")
    words, tokens = _tokenize(entries, layout)
    engine = _TrieEngine(entries, layout, list(words), tokens)
    encoded = [w.encode("utf-8", "surrogatepass") for w in words]
    word_offsets = np.zeros(len(words) + 1, dtype="<i8")
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=word_offsets[1:])
    words_raw = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    table = _word_table(encoded)
    if table is None:
        log.warning("two vocabulary words share a 64-bit hash; writing the matcher in format version 2")
        return None
    word_hashes, slot_words, bits, probe = table
    stream = _SEP.join(entries).encode("utf-8", "surrogatepass")
    data = {
        "entries": stream, "offsets": np.append(layout.starts, len(stream) + 1), "unmatchable": np.flatnonzero(layout.unmatchable),
        "words": words_raw, "word_offsets": word_offsets, "word_hashes": word_hashes, "slot_words": slot_words, "word_entry": engine._word_entry,
    }  # fmt: skip
    radix = {}
    for name in _TRIES:
        trie = getattr(engine, f"_{name}")
        radix[name] = trie.radix if trie is not None else 0
        for part in ("keys", "entry", "inner", "first"):
            data[f"{name}_{part}"] = getattr(trie, part) if trie is not None else np.zeros(0)
    blobs = [np.ascontiguousarray(data[name], dtype=dtype).tobytes() if not isinstance(data[name], bytes) else data[name]
             for name, dtype in _MAPPED_SECTIONS]  # fmt: skip
    start = 0
    while True:
        sections, at = [], start
        for (name, dtype), b in zip(_MAPPED_SECTIONS, blobs):
            sections.append([name, dtype, at, len(b) // np.dtype(dtype).itemsize])
            at += len(b) + (-len(b) % _ALIGN)
        header = {
            "sha256": "0" * 64, "format": _MAPPED_FORMAT, "lang": lang, "digest": digest, "entries": len(entries),
            "words": len(words), "table_bits": bits, "probe": probe, "radix": radix, "file_bytes": at, "sections": sections,
        }  # fmt: skip
        raw = json.dumps(header).encode()
        need = 16 + len(raw) + (-(16 + len(raw)) % _ALIGN)
        if need <= start:
            break
        start = need
    raw += b" " * (start - 16 - len(raw))
    out = bytearray(_MAGIC + _MAPPED_VERSION.to_bytes(4, "little") + len(raw).to_bytes(4, "little") + raw)
    for b in blobs:
        out += b + b"\0" * (-len(b) % _ALIGN)
    out[_SHA_AT : _SHA_AT + 64] = hashlib.sha256(out).hexdigest().encode()
    return bytes(out)


def _open_file(path: Path) -> tuple[int, os.stat_result]:
    """``(fd, fstat)`` of a regular file; anything else is a [`MatcherFileError`][metaclip2.core.errors.MatcherFileError] naming it."""
    try:
        return open_regular_fd(path, "build it again from its .tsv (metaclip2 metadata lid)")
    except MissingInputError:
        raise
    except DataError as e:
        raise MatcherFileError(str(e)) from None


def _lock(fd: int) -> bool:
    """Take an exclusive lock on the open file `fd` (False where locks are unavailable: then nothing waits)."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    except OSError:
        return False


def _read_all(fd: int, size: int) -> bytes:
    chunks = []
    while True:
        b = os.read(fd, max(size, 1 << 16))
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def _check_expected(path: Path, header: dict, expected: str | None, lang: str | None) -> None:
    if expected is not None and expected != header["digest"]:
        raise MatcherMismatchError(
            f"{path} was built from another entry list (digest {header['digest'][:12]}, expected {expected[:12]}); "
            "rebuild the matcher from the current metadata"
        )
    if lang is not None and header["lang"] is not None and header["lang"] != lang:
        raise MatcherMismatchError(f"{path} is the matcher of language {header['lang']!r}, not {lang!r}; rebuild it from {lang}.tsv")


def _mapped_header(path: Path, fd: int, size: int, head: bytes) -> dict:
    """The header of a version-3 file, every offset and length checked against the file's `size` (nothing mapped yet)."""
    if len(head) < 16 or size < 16:
        raise MatcherFileError(f"{path} is truncated: its header is incomplete")
    n = int.from_bytes(head[12:16], "little")
    if not len(_SHA_PREFIX) + 64 < n <= _MAX_HEADER or 16 + n > size:
        raise MatcherFileError(f"{path} is truncated or damaged: bad header length {n}")
    raw = os.pread(fd, n, 16)
    if len(raw) != n or not raw.startswith(_SHA_PREFIX):
        raise MatcherFileError(f"{path} is truncated or damaged: its header is incomplete")
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MatcherFileError(f"{path} is damaged: its header is not valid JSON") from None
    problem = _mapped_header_problem(header, 16 + n, size)
    if problem:
        raise MatcherFileError(f"{path} is damaged: {problem}; rebuild it")
    return header


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _mapped_header_problem(h, data_start: int, size: int) -> str | None:
    """What is wrong with a version-3 header (None: nothing); sections must lie in order inside the file."""
    if not isinstance(h, dict) or h.get("format") != _MAPPED_FORMAT:
        return "its header names another format"
    sha = h.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or not isinstance(h.get("digest"), str):
        return "its header lacks or mistypes a checksum"
    if "lang" not in h or (h["lang"] is not None and not isinstance(h["lang"], str)):
        return "its header mistypes the language"
    for k in ("entries", "words", "probe", "file_bytes"):
        if not _is_int(h.get(k)) or h[k] < 0:
            return f"its header lacks or mistypes {k!r}"
    if not _is_int(h.get("table_bits")) or not 1 <= h["table_bits"] <= 40:
        return "its header lacks or mistypes 'table_bits'"
    if h["file_bytes"] != size:
        return f"it has {size:,} bytes, its header says {h['file_bytes']:,} (truncated or padded)"
    radix = h.get("radix")
    if not isinstance(radix, dict) or set(radix) != set(_TRIES) or not all(_is_int(v) and 0 <= v <= _CHARS for v in radix.values()):
        return "its header lacks or mistypes the trie radixes"
    s = h.get("sections")
    if not isinstance(s, list) or len(s) != len(_MAPPED_SECTIONS):
        return "its header does not list the sections of this format"
    at = data_start
    for got, (name, dtype) in zip(s, _MAPPED_SECTIONS):
        if not (isinstance(got, list) and len(got) == 4 and got[0] == name and got[1] == dtype and _is_int(got[2]) and _is_int(got[3])):
            return f"its header lacks or mistypes section {name!r}"
        offset, count = got[2], got[3]
        if offset < at or offset % _ALIGN or count < 0 or offset + count * np.dtype(dtype).itemsize > size:
            return f"section {name!r} lies outside the file or overlaps another"
        at = offset + count * np.dtype(dtype).itemsize
    counts = {name: got[3] for got, (name, _) in zip(s, _MAPPED_SECTIONS)}
    if counts["offsets"] != h["entries"] + 1 or counts["word_offsets"] != h["words"] + 1 or counts["word_hashes"] != h["words"] or counts["slot_words"] != (1 << h["table_bits"]) + h["probe"] + 1:
        return "its section lengths disagree with its header"
    return None


_VERIFICATIONS = [0]  # full checks done by this process (tests read it)


def _verify_mapped(path: Path, mm: mmap.mmap, header: dict) -> None:
    """The once-per-machine check of a version-3 file: its checksum, then its entries decoded and
    encoded again, which must give the file byte for byte (so every array, index and offset in
    it is exactly what this code derives from the entries: nothing unchecked is trusted)."""
    _VERIFICATIONS[0] += 1
    h = hashlib.sha256()
    view = memoryview(mm)
    try:
        h.update(view[:_SHA_AT])
        h.update(b"0" * 64)
        h.update(view[_SHA_AT + 64 :])
        if h.hexdigest() != header["sha256"]:
            raise MatcherFileError(f"{path} is damaged: its content does not match its checksum; rebuild it")
        _, _, offset, count = header["sections"][0]
        n = header["entries"]
        try:
            joined = view[offset : offset + count].tobytes()  # a copy: no buffer of the map outlives this check
            entries = str(joined, "utf-8", "surrogatepass").split(_SEP) if n else []
            if len(entries) != n or (not n and count):
                raise MatcherFileError(f"{path} fails the check against its own entries (their count); rebuild it")
            if len(set(entries)) != n:  # (empty entries are refused by the encoder)
                raise MatcherFileError(f"{path} fails the check against its own entries (an entry is repeated); rebuild it")
            stream = np.frombuffer(joined, dtype=np.uint8)
            lengths = np.fromiter(map(len, joined.split(b"\n")), dtype=np.int64, count=n) if n else np.zeros(0, dtype=np.int64)
            starts = np.zeros(n, dtype=np.int64)
            np.cumsum(lengths[:-1] + 1, out=starts[1:])
            if _digest_of_joined(stream, starts, lengths) != header["digest"]:
                raise MatcherFileError(f"{path} is damaged: its entries do not match its digest; rebuild it")
            again = _encode_mapped(entries, header["lang"], header["digest"])
        except (MetadataError, ValueError, UnicodeDecodeError) as e:
            if isinstance(e, MatcherFileError):
                raise
            raise MatcherFileError(f"{path} fails the check against its own entries ({e}); rebuild it") from None
        if again is None or view != again:
            raise MatcherFileError(f"{path} fails the check against its own entries (its arrays are not those of its entries); rebuild it")
    finally:
        view.release()


class _MappedTrieEngine:
    """The trie engine over a mapped file's arrays, used in place: token codes come from an
    open-addressing table of vocabulary hashes (each hit compared byte for byte with the word),
    the tries are the stored arrays."""

    def __init__(self, a: dict[str, np.ndarray], header: dict):
        self._raw, self._offsets = a["words"], a["word_offsets"]
        self._hashes, self._slot_words = a["word_hashes"], a["slot_words"]
        self._bits, self._probe = header["table_bits"], header["probe"]
        self._word_entry = a["word_entry"]
        for name in _TRIES:
            radix = header["radix"][name]
            trie = None
            if radix:
                trie = _Trie.__new__(_Trie)
                trie.keys, trie.entry, trie.first = a[f"{name}_keys"], a[f"{name}_entry"], a[f"{name}_first"]
                trie.inner, trie.radix = a[f"{name}_inner"].view(bool), radix
            setattr(self, f"_{name}", trie)
        self.nbytes = sum(x.nbytes for x in a.values())

    def codes(self, big: str) -> np.ndarray:
        """The token code of every space-separated piece of `big` (as ``big.split(" ")`` gives them)."""
        raw = np.frombuffer(big.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        starts, ends, h = _token_hashes(raw)
        found = np.full(len(starts), -1, dtype=np.int64)
        if len(self._offsets) > 1:
            home = _home(h, self._bits)
            todo = np.arange(len(h))
            for d in range(self._probe + 1):
                slot = home[todo] + d  # < len(slot_words): it has probe + 1 slots past the home slots
                w = self._slot_words[slot]
                hit = w >= 0
                hit[hit] = self._hashes[w[hit]] == h[todo[hit]]
                found[todo[hit]] = w[hit]
                todo = todo[~hit & (w >= 0)]  # an empty slot ends a probe
                if not len(todo):
                    break
            # A hash hit is a word only if its bytes are the word's.
            cand = np.flatnonzero(found >= 0)
            w = found[cand]
            size = ends[cand] - starts[cand]
            same = size == self._offsets[w + 1] - self._offsets[w]
            found[cand[~same]] = -1
            cand, w, size = cand[same], w[same], size[same]
            total = int(size.sum())
            if total:
                owner = np.repeat(np.arange(len(cand)), size)
                within = np.arange(total) - np.repeat(np.cumsum(size) - size, size)
                differ = raw[starts[cand][owner] + within] != self._raw[self._offsets[w][owner] + within]
                found[cand[np.unique(owner[differ])]] = -1
        codes = np.where(found >= 0, found + _FIRST_WORD, _UNKNOWN)
        codes[(ends - starts == 1) & (raw[np.minimum(starts, max(len(raw) - 1, 0))] == _NEWLINE)] = _SEPCODE
        return codes

    def keys(self, big: str, n_texts: int, n_entries: int) -> np.ndarray:
        """``text index * n_entries + id`` of every occurrence in spaced texts joined by \\n (with repeats)."""
        parts = [np.zeros(0, dtype=np.int64)]
        if self._phrases is not None or self._word_entry.size > _FIRST_WORD:
            parts += _code_keys(self.codes(big), n_texts, n_entries, self._word_entry, self._phrases)
        if self._forward is not None or self._backward is not None:
            chars, seps = _char_codes(big, n_texts)
            for trie, step in ((self._forward, 1), (self._backward, -1)):
                if trie is not None:
                    parts.append(_keys_at(seps, *trie.walk(chars, step), n_entries))
        return np.concatenate(parts)
