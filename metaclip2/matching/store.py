"""A directory of per-LID-language metadata, with matchers loaded lazily into a bounded cache."""

from __future__ import annotations

import json
import os
import stat
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

from metaclip2.core.entries import MetadataError, entries_digest, read_metadata
from metaclip2.core.errors import (
    MatcherFileError, MatcherMismatchError, Metaclip2Error, MissingInputError, ParameterError, UnknownLanguageError,
)  # fmt: skip
from metaclip2.core.regularfile import open_regular_fd
from metaclip2.matching.matcher import MATCHER_ENGINES, Matcher

__all__ = ["MetadataStore", "DEFAULT_MATCHER_MEMORY"]

#: Default memory budget of the matchers a store keeps loaded: 1 GiB.
DEFAULT_MATCHER_MEMORY = 1 << 30
_MAX_INDEX = 64 << 20  # a larger index.json is not read (the digests are then hashed from the .tsv)


class MetadataStore:
    """Per-LID-language metadata in one directory, as written by
    [`metaclip2.matching.lid_metadata.build_lid_metadata`][metaclip2.matching.lid_metadata.build_lid_metadata].

    The directory holds ``<lang>.tsv`` entry lists and, optionally, prebuilt
    ``<lang>.matcher`` files. A matcher is loaded on first use and kept in a cache
    bounded by `matcher_memory`; the least recently used matchers are dropped when
    the budget is exceeded. A matcher file that is damaged, truncated, in the old
    pickle-based format, or built from another list or language is never used: the
    matcher is rebuilt in memory from the ``.tsv`` with a warning (or, with `strict`,
    [`MatcherFileError`][metaclip2.core.errors.MatcherFileError] /
    [`MatcherMismatchError`][metaclip2.core.errors.MatcherMismatchError] is raised).

    Parameters
    ----------
    directory : path
        The metadata directory.
    matcher_memory : int
        Budget in bytes for loaded matchers (their [`Matcher.nbytes`][metaclip2.matching.matcher.Matcher.nbytes] estimates),
        1 GiB by default. The cache holds at most one matcher over the budget: a single
        matcher larger than the budget is still loaded, alone.
    strict : bool
        Raise instead of rebuilding when a ``.matcher`` file cannot be used.
    engine : {"trie", "aho-corasick"}
        The [`Matcher`][metaclip2.matching.matcher.Matcher] engine to build from each list or
        file (the same files serve both; the results are the same).

    Raises
    ------
    ParameterError
        A bad `matcher_memory` or `engine`.
    MissingInputError
        `directory` does not exist.
    MetadataError
        `directory` holds no ``<lang>.tsv``.

    See Also
    --------
    - [`Matcher`][metaclip2.matching.matcher.Matcher] : The entries of one language found in a text.
    - [`build_lid_metadata`][metaclip2.matching.lid_metadata.build_lid_metadata] : Writes the directory a store reads.

    Notes
    -----
    A store pickles without its lock and its loaded matchers (they reload lazily), so it
    can be shipped to worker processes (``datasets.map(num_proc=...)``, Ray tasks).

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core import write_metadata
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> _ = write_metadata(f"{d}/en.tsv", ["dog", "cat", "red"], ["wordnet"] * 3, lang="en")
    >>> _ = write_metadata(f"{d}/de.tsv", ["Hund", "Katze"], ["wordnet"] * 2, lang="de")
    >>> from metaclip2.matching import MetadataStore
    >>> store = MetadataStore(d)
    >>> store.languages
    ['de', 'en']
    >>> store.entries("de")
    ['Hund', 'Katze']
    >>> store.matcher("de").match("Katze und Hund")
    [0, 1]
    >>> "fr" in store
    False
    >>> tmp.cleanup()
    """

    def __init__(self, directory: str | os.PathLike, matcher_memory: int = DEFAULT_MATCHER_MEMORY, strict: bool = False,
                 engine: str = "trie"):  # fmt: skip
        if engine not in MATCHER_ENGINES:
            raise ParameterError(f"engine must be one of {MATCHER_ENGINES}, got {engine!r}")
        if isinstance(matcher_memory, bool) or not isinstance(matcher_memory, int) or matcher_memory < 0:
            raise ParameterError(f"matcher_memory must be a number of bytes >= 0, got {matcher_memory!r}")
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise MissingInputError(f"metadata directory {self.directory} does not exist; build it with `metaclip2 metadata lid`")
        self._files = {p.name[: -len(".tsv")]: p for p in sorted(self.directory.glob("*.tsv")) if not p.name.endswith(".summary.tsv")}
        if not self._files:
            raise MetadataError(f"no <lang>.tsv metadata files in {self.directory}")
        self.matcher_memory = matcher_memory
        self.strict = strict
        self.engine = engine
        self._digests: dict[str, str] = {}
        self._index: dict[str, str] | None = None
        self._init_cache()

    def _init_cache(self) -> None:
        self._matchers: OrderedDict[str, Matcher] = OrderedDict()  # least recently used first
        self._cached_bytes = 0
        self._lock = threading.RLock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for k in ("_matchers", "_cached_bytes", "_lock"):
            del state[k]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_cache()

    def __repr__(self) -> str:
        return f"MetadataStore({str(self.directory)!r}, {len(self._files)} languages, engine={self.engine!r})"

    def __contains__(self, lang: object) -> bool:
        return lang in self._files

    @property
    def languages(self) -> list[str]:
        """Sorted names of the languages that have metadata."""
        return sorted(self._files)

    def entries(self, lang: str) -> list[str]:
        """The ordered entry list of `lang` (held by its matcher, which this loads)."""
        return self.matcher(lang).entries

    def digest(self, lang: str) -> str:
        """[`entries_digest`][metaclip2.core.entries.entries_digest] of `lang`'s entry list.

        Taken from the directory's ``index.json`` (written by
        [`build_lid_metadata`][metaclip2.matching.lid_metadata.build_lid_metadata]) when it records one that
        agrees with the digest in the first line of ``<lang>.tsv``; otherwise the ``.tsv`` is
        read and checked. Either way once per language; only the digest is kept.
        """
        if lang not in self._digests:
            path = self._path(lang)
            recorded = self._indexed_digests().get(lang)
            if recorded is None or recorded != _tsv_header_digest(path):
                recorded = entries_digest(read_metadata(path))
            self._digests[lang] = recorded
        return self._digests[lang]

    def _indexed_digests(self) -> dict[str, str]:
        """Per-language digests recorded in ``index.json`` (read once; empty when absent or unreadable)."""
        if self._index is None:
            self._index = {}
            index = None
            try:
                fd, st = open_regular_fd(self.directory / "index.json")  # never blocks on a FIFO
                with open(fd, "rb") as f:
                    if st.st_size <= _MAX_INDEX:
                        index = json.loads(f.read(_MAX_INDEX + 1))
            except (Metaclip2Error, OSError, ValueError, RecursionError):
                index = None
            if isinstance(index, dict):
                self._index = {k: v["digest"] for k, v in index.items() if isinstance(v, dict) and isinstance(v.get("digest"), str)}
        return self._index

    def digests(self) -> dict[str, str]:
        """Digest of every language, by language."""
        return {lang: self.digest(lang) for lang in self.languages}

    def matcher(self, lang: str) -> Matcher:
        """The matcher of `lang`, from the cache or loaded (or built) into it."""
        with self._lock:
            m = self._matchers.get(lang)
            if m is not None:
                self._matchers.move_to_end(lang)
                return m
            m = self._load_matcher(lang)
            self._matchers[lang] = m
            self._cached_bytes += m.nbytes
            # Evict least recently used matchers, never the one just loaded.
            while self._cached_bytes > self.matcher_memory and len(self._matchers) > 1:
                _, old = self._matchers.popitem(last=False)
                self._cached_bytes -= old.nbytes
            return m

    def cache_info(self) -> dict[str, int]:
        """Estimated bytes ([`Matcher.nbytes`][metaclip2.matching.matcher.Matcher.nbytes]) of each loaded matcher, least recently used first."""
        with self._lock:
            return {lang: m.nbytes for lang, m in self._matchers.items()}

    def _load_matcher(self, lang: str) -> Matcher:
        tsv = self._path(lang)
        path = self.directory / f"{lang}.matcher"
        if path.exists() or path.is_symlink():
            rebuild = "delete it, or rebuild it with `metaclip2 metadata lid`"
            try:
                # a directory, pipe or device in its place is refused before it is opened (a pipe would block)
                if not stat.S_ISREG(os.stat(path).st_mode):
                    raise MatcherFileError(f"{path} is not a regular file (a directory, pipe or device): {rebuild}")
                return Matcher.load(path, digest=self.digest(lang), lang=lang, engine=self.engine)
            except (MatcherFileError, MatcherMismatchError, OSError) as e:
                if isinstance(e, OSError) and not isinstance(e, Metaclip2Error):
                    e = MatcherFileError(f"{path} cannot be read ({e.strerror or e}): {rebuild}")
                if self.strict:  # --strict: a matcher file that cannot be used stops the run, naming it
                    raise e from None
                warnings.warn(f"{e}; building the matcher in memory from {tsv.name} instead", stacklevel=3)
        return Matcher(read_metadata(tsv), lang=lang, engine=self.engine)

    def resolve(self, label: str | None) -> str | None:
        """Metadata language for a LID label: itself, its group (``yue`` → ``zh``), else ``other``.

        Returns None when neither the label's language nor ``other`` has metadata.
        """
        if label in self._files:
            return label
        if label:
            from metaclip2.core.languages import lid_to_metadata_language

            mapped = lid_to_metadata_language(label)
            if mapped in self._files:
                return mapped
        return "other" if "other" in self._files else None

    def _path(self, lang: str) -> Path:
        try:
            return self._files[lang]
        except KeyError:
            raise UnknownLanguageError(f"no metadata for language {lang!r} in {self.directory} (has: {', '.join(self.languages[:20])})") from None


def _tsv_header_digest(path: Path) -> str | None:
    """The digest recorded in the first line of a metadata ``.tsv`` (None if it records none)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(4096).decode("utf-8", "replace")
    except OSError:
        return None
    fields = dict(kv.split("=", 1) for kv in first.rstrip("\n").split("\t")[1:] if "=" in kv)
    return fields.get("digest")
