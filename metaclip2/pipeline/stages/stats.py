"""Per-shard accounting of the curation stages, as values that add up.

Every input pair ends in exactly one bucket of stage 1 (``invalid``, ``no_metadata``,
``unmatched``, ``matched``), and every matched pair in one of stage 3 (``kept``,
``not_kept``). A shard's stats are written to its ``stats.json`` (last, as its "done"
marker); the run's totals, and so the datacard, are their sum (``sum(stats, Stage1Stats())``).

A shard's stats also record what it was made from and what it wrote (``fingerprint``,
``sources``, ``outputs``: sizes and sha256 digests), so that a later run verifies them before
it reuses the shard ([`metaclip2.pipeline.run.verify`][metaclip2.pipeline.run.verify]); these describe one shard and are None
in a sum.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from metaclip2.core.errors import DataError
from metaclip2.core.jsonfile import seal, unseal

__all__ = ["MAX_EXAMPLES", "Stage1Stats", "Stage3Stats"]

#: Invalid inputs listed with their line per shard (all are counted).
MAX_EXAMPLES = 20

# Fields that describe one shard: a sum of several keeps them only where all agree.
_PER_SHARD = ("input", "shard", "index", "seed", "unit", "fingerprint", "sources", "outputs", "layout")


# Field kinds, for the checks of a stats file read back.
_COUNTERS = ("pairs", "images", "no_metadata", "unmatched", "matched", "kept", "not_kept", "kept_images")
_COUNTER_MAPS = ("invalid", "no_metadata_labels", "unknown_lang_codes", "lid_changes")
_LISTS = ("invalid_examples", "damaged")
_MAPS = ("fingerprint", "outputs", "sources", "layout")


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _sums(by_lang: dict, key: str) -> int:
    return sum(row[key] for row in by_lang.values())


def _add_counters(a: dict, b: dict) -> dict:
    """Key-wise sum of two (possibly nested) counters, keys sorted."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in a.items()}
    for k, v in b.items():
        if isinstance(v, dict):
            out[k] = _add_counters(out.get(k, {}), v)
        else:
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


class _Stats:
    """Shared behaviour: field-wise ``+``, JSON round trip with a format tag."""

    FORMAT: ClassVar[str]

    def __add__(self, other):
        if not isinstance(other, type(self)):
            return NotImplemented
        merged = {}
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name in _PER_SHARD:
                merged[f.name] = a if a == b else None  # a sum names no single shard
            elif isinstance(a, dict):
                merged[f.name] = _add_counters(a, b)
            elif isinstance(a, list):
                merged[f.name] = (a + b)[:MAX_EXAMPLES]
            else:
                merged[f.name] = a + b
        return type(self)(**merged)

    def __radd__(self, other):  # sum() starts from 0
        return self if other == 0 else NotImplemented

    def to_json(self) -> dict[str, Any]:
        """The ``stats.json`` content: a format tag, every field (counters key-sorted) and its seal.

        The seal ([`seal`][metaclip2.core.jsonfile.seal]) lets `from_json` refuse a file
        edited after it was written.
        """
        d = {"format": self.FORMAT}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = _add_counters(v, {}) if isinstance(v, dict) else v
        return seal(d)

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str = "stats") -> "_Stats":
        """Inverse of `to_json`; `source` names the file in errors.

        Raises
        ------
        DataError
            Not such a stats file, a seal that does not match (the file was edited or
            damaged), a field of the wrong type, or counts that do not add up.
        """
        redo = "delete it and run the stage again"
        if not isinstance(d, dict) or d.get("format") != cls.FORMAT:
            raise DataError(f"{source} is not a {cls.FORMAT} file: {redo}")
        d = unseal(d, source, redo)
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            stats = cls(**{k: v for k, v in d.items() if k in names})
        except TypeError as e:
            raise DataError(f"{source} is damaged ({e}): {redo}") from None
        problem = stats._problem()
        if problem is not None:
            raise DataError(f"{source} is damaged ({problem}): {redo}")
        return stats

    def _problem(self) -> str | None:
        """The first field of the wrong type or count that does not add up, or None."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in _COUNTERS and not _is_count(v):
                return f"{f.name} is {v!r}, not a count"
            if f.name in _COUNTER_MAPS and not (isinstance(v, dict) and all(_is_count(n) for n in v.values())):
                return f"{f.name} is not a mapping of counts"
            if f.name in _LISTS and not (isinstance(v, list) and all(isinstance(x, dict) for x in v)):
                return f"{f.name} is not a list of records"
            if f.name in _MAPS and not (v is None or isinstance(v, dict)):
                return f"{f.name} is not a mapping"
            if f.name == "outputs" and v and not all(isinstance(x, dict) for x in v.values()):
                return "outputs is not a mapping of file digests"
        if not isinstance(self.by_lang, dict):
            return "by_lang is not a mapping"
        for lang, row in self.by_lang.items():
            if not (isinstance(row, dict) and set(row) == set(self._BY_LANG) and all(_is_count(n) for n in row.values())):
                return f"by_lang[{lang!r}] is not {{{', '.join(self._BY_LANG)}}} counts"
            part, whole = self._BY_LANG
            if row[part] > row[whole]:
                return f"language {lang!r} has {part} {row[part]} > {whole} {row[whole]}"
        return None


@dataclass
class Stage1Stats(_Stats):
    """Stage-1 accounting of a shard (or, summed, of a run).

    ``pairs = sum(invalid.values()) + no_metadata + unmatched + matched``.

    Attributes
    ----------
    input, shard : str or None
        The input file and the shard's name (None in a sum of several shards).
    pairs, images : int
        Alt-texts read, and images with an id.
    invalid : dict
        Invalid pairs by reason; ``invalid_examples`` lists the first [`MAX_EXAMPLES`][metaclip2.pipeline.stages.stats.MAX_EXAMPLES]
        with ``line`` and ``reason``.
    no_metadata : int
        Pairs whose language has no metadata (and no ``other`` list exists), by LID label in
        ``no_metadata_labels``.
    unmatched, matched : int
        Pairs with metadata that matched no entry / at least one.
    by_lang : dict
        Per metadata language: ``pairs``, ``matched``.
    fingerprint : dict
        The input file as stage 1 read it: ``bytes``, ``mtime_ns``, ``sha256``.
    outputs : dict
        Per output file name (index, counts): ``bytes``, ``sha256``, taken after it was written.
    layout : dict or None
        How the shard was read: ``layout``, ``id_key``, ``text_keys``, ``lang_key``, ``fields``
        (of its first record), ``expected`` (None in a sum of shards read differently).
    damaged : list of dict
        Damaged stretches of the container: ``where`` (``offset N`` or ``row group G``),
        ``error``, ``lost`` (records lost, None if unknown). Their pairs are also counted in
        ``invalid["damaged"]``.
    unknown_lang_codes : dict
        Given language codes that name no known language, by code (their pairs go to
        ``other``, or have no metadata).
    lid_changes : dict
        LID labels the script-consistency step replaced, by ``"from->to"`` (e.g. ``"ja->zh"``).

    See Also
    --------
    - [`count`][metaclip2.pipeline.run.api.count] : Stage 1 alone: matching and counts.
    - [`Stage3Stats`][metaclip2.pipeline.stages.stats.Stage3Stats] : Stage-3 accounting, returned by sample.

    Examples
    --------
    >>> from metaclip2.pipeline import Stage1Stats
    >>> a = Stage1Stats(shard="s0", pairs=4, images=3, invalid={"empty": 1}, matched=2, unmatched=1,
    ...                 by_lang={"en": {"pairs": 3, "matched": 2}})
    >>> b = Stage1Stats(shard="s1", pairs=2, images=2, matched=1, no_metadata=1,
    ...                 by_lang={"en": {"pairs": 1, "matched": 1}})
    >>> total = sum([a, b])
    >>> total.shard, total.pairs, total.matched, total.n_invalid
    (None, 6, 3, 1)
    >>> total.by_lang
    {'en': {'matched': 3, 'pairs': 4}}
    """

    FORMAT: ClassVar[str] = "metaclip2-stage1-stats/1"

    input: str | None = None
    shard: str | None = None
    pairs: int = 0
    images: int = 0
    invalid: dict = field(default_factory=dict)
    invalid_examples: list = field(default_factory=list)
    no_metadata: int = 0
    no_metadata_labels: dict = field(default_factory=dict)
    unmatched: int = 0
    matched: int = 0
    by_lang: dict = field(default_factory=dict)
    fingerprint: dict | None = field(default_factory=dict)
    outputs: dict | None = field(default_factory=dict)
    layout: dict | None = None
    damaged: list = field(default_factory=list)
    unknown_lang_codes: dict = field(default_factory=dict)
    lid_changes: dict = field(default_factory=dict)

    _BY_LANG: ClassVar[tuple] = ("matched", "pairs")  # (part, whole) of each language's counts

    @property
    def n_invalid(self) -> int:
        """Invalid pairs, all reasons."""
        return sum(self.invalid.values())

    def _problem(self) -> str | None:
        problem = super()._problem()
        if problem is not None:
            return problem
        if self.pairs != self.n_invalid + self.no_metadata + self.unmatched + self.matched:
            return (f"pairs {self.pairs} != invalid {self.n_invalid} + no_metadata {self.no_metadata} "
                    f"+ unmatched {self.unmatched} + matched {self.matched}")  # fmt: skip
        if _sums(self.by_lang, "pairs") != self.unmatched + self.matched:
            return f"the languages' pairs sum to {_sums(self.by_lang, 'pairs')}, not unmatched + matched = {self.unmatched + self.matched}"
        if _sums(self.by_lang, "matched") != self.matched:
            return f"the languages' matched pairs sum to {_sums(self.by_lang, 'matched')}, not matched = {self.matched}"
        if sum(self.no_metadata_labels.values()) != self.no_metadata:
            return f"no_metadata_labels sum to {sum(self.no_metadata_labels.values())}, not no_metadata = {self.no_metadata}"
        return None


@dataclass
class Stage3Stats(_Stats):
    """Stage-3 accounting of a shard (or, summed, of a run).

    ``not_kept = matched - kept``.

    Attributes
    ----------
    index, shard : str or None
        The stage-1 index file name and the shard's name (None in a sum).
    seed : int or None
    unit : str or None
    images : int
        Images with a matched alt-text.
    matched, kept, not_kept, kept_images : int
    by_lang : dict
        Per metadata language: ``matched``, ``kept``.
    sources : dict
        sha256 of what the shard was sampled from: ``index`` (the stage-1 index) and
        ``probabilities`` (``probabilities.bin``).
    outputs : dict
        Per output file name (the curated subset): ``bytes``, ``sha256``.

    See Also
    --------
    - [`sample`][metaclip2.pipeline.run.api.sample] : Stage 3 alone: keep decisions and the curated subset.
    - [`Stage1Stats`][metaclip2.pipeline.stages.stats.Stage1Stats] : Stage-1 accounting, returned by count.

    Examples
    --------
    >>> from metaclip2.pipeline import Stage3Stats
    >>> a = Stage3Stats(shard="s0", seed=0, unit="image", images=3, matched=4, kept=2, not_kept=2, kept_images=2,
    ...                 by_lang={"en": {"matched": 4, "kept": 2}})
    >>> b = Stage3Stats(shard="s1", seed=0, unit="image", images=1, matched=1, kept=1, kept_images=1,
    ...                 by_lang={"de": {"matched": 1, "kept": 1}})
    >>> total = a + b
    >>> total.shard, total.seed, total.kept, total.not_kept
    (None, 0, 3, 2)
    >>> total.by_lang
    {'de': {'kept': 1, 'matched': 1}, 'en': {'matched': 4, 'kept': 2}}
    """

    FORMAT: ClassVar[str] = "metaclip2-stage3-stats/1"

    index: str | None = None
    shard: str | None = None
    seed: int | None = None
    unit: str | None = None
    images: int = 0
    matched: int = 0
    kept: int = 0
    not_kept: int = 0
    kept_images: int = 0
    by_lang: dict = field(default_factory=dict)
    sources: dict | None = field(default_factory=dict)
    outputs: dict | None = field(default_factory=dict)

    _BY_LANG: ClassVar[tuple] = ("kept", "matched")

    def _problem(self) -> str | None:
        problem = super()._problem()
        if problem is not None:
            return problem
        if self.not_kept != self.matched - self.kept:
            return f"not_kept {self.not_kept} != matched {self.matched} - kept {self.kept}"
        for key in ("matched", "kept"):
            if _sums(self.by_lang, key) != getattr(self, key):
                return f"the languages' {key} pairs sum to {_sums(self.by_lang, key)}, not {key} = {getattr(self, key)}"
        if not self.kept_images <= min(self.images, self.kept) or self.images > self.matched:
            return f"images {self.images}, kept_images {self.kept_images} do not fit matched {self.matched}, kept {self.kept}"
        return None
