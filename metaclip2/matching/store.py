"""A directory of per-LID-language metadata, with matchers loaded lazily."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from metaclip2.matching.matcher import Matcher
from metaclip2.core.entries import MetadataError, entries_digest, read_metadata
from metaclip2.core.errors import MatcherMismatchError, MissingInputError, UnknownLanguageError

__all__ = ["MetadataStore"]


class MetadataStore:
    """Per-LID-language metadata in one directory, as written by
    :func:`metaclip2.matching.lid_metadata.build_lid_metadata`.

    The directory holds ``<lang>.tsv`` entry lists and, optionally, prebuilt
    ``<lang>.matcher`` files. Entry lists and matchers are read on first use and
    kept; a matcher file built from another list is ignored and rebuilt in
    memory (with a warning), never used with the wrong ids.

    Parameters
    ----------
    directory : path
        The metadata directory.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise MissingInputError(f"metadata directory {self.directory} does not exist; build it with `metaclip2 metadata lid`")
        self._files = {p.name[: -len(".tsv")]: p for p in sorted(self.directory.glob("*.tsv")) if not p.name.endswith(".summary.tsv")}
        if not self._files:
            raise MetadataError(f"no <lang>.tsv metadata files in {self.directory}")
        self._entries: dict[str, list[str]] = {}
        self._digests: dict[str, str] = {}
        self._matchers: dict[str, Matcher] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MetadataStore({str(self.directory)!r}, {len(self._files)} languages)"

    def __contains__(self, lang: object) -> bool:
        return lang in self._files

    @property
    def languages(self) -> list[str]:
        """Sorted names of the languages that have metadata."""
        return sorted(self._files)

    def entries(self, lang: str) -> list[str]:
        """The ordered entry list of `lang`."""
        if lang not in self._entries:
            self._entries[lang] = read_metadata(self._path(lang))
        return self._entries[lang]

    def digest(self, lang: str) -> str:
        """:func:`~metaclip2.core.entries.entries_digest` of `lang`'s entry list."""
        if lang not in self._digests:
            self._digests[lang] = entries_digest(self.entries(lang))
        return self._digests[lang]

    def digests(self) -> dict[str, str]:
        """Digest of every language, by language."""
        return {lang: self.digest(lang) for lang in self.languages}

    def matcher(self, lang: str) -> Matcher:
        """The matcher of `lang`, loaded (or built) once and then cached."""
        m = self._matchers.get(lang)
        if m is not None:
            return m
        with self._lock:
            if lang not in self._matchers:
                self._matchers[lang] = self._load_matcher(lang)
            return self._matchers[lang]

    def _load_matcher(self, lang: str) -> Matcher:
        entries = self.entries(lang)
        path = self.directory / f"{lang}.matcher"
        if path.exists():
            try:
                return Matcher.load(path, digest=self.digest(lang))
            except MatcherMismatchError as e:
                import warnings

                warnings.warn(f"{e}; building it in memory from {lang}.tsv instead", stacklevel=3)
        return Matcher(entries)

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
