"""Head/tail thresholds per language and entry probabilities (Algorithm 1, stages 2 and 3)."""

from __future__ import annotations

from typing import Mapping
from metaclip2.core.errors import DataError, ParameterError

import numpy as np

__all__ = ["DEFAULT_T_EN", "ENGLISH", "ENGLISH_MODES", "SortedCounts", "no_english_message", "t_to_p", "p_to_t", "thresholds", "entry_probabilities"]

#: Meta CLIP 2's English threshold on its 5B-pair worldwide pool.
DEFAULT_T_EN = 170_000

#: The language every threshold is derived from.
ENGLISH = "en"

#: ``"keep"``: ``t["en"] = t_en`` (the release); ``"recompute"``: English from its own tail share (the paper).
ENGLISH_MODES = ("keep", "recompute")


def no_english_message(english_code: str = ENGLISH) -> str:
    """What to do when a pool has no English matches (Algorithm 1 derives every threshold from English).

    Examples
    --------
    >>> from metaclip2.curation.threshold import no_english_message
    >>> no_english_message()[:36]
    "no 'en' (English) matches in the poo"
    """
    return (
        f"no {english_code!r} (English) matches in the pool, and Algorithm 1 derives every language's threshold from "
        "English: give the tail share directly with --p (e.g. --p 0.06, the share MetaCLIP's 400M set keeps "
        "whole; in Python: p=0.06)"
    )


def _counts(counts) -> np.ndarray:
    c = np.asarray(counts)
    if c.ndim != 1:
        raise ParameterError(f"counts must be 1-D, got shape {c.shape}")
    if c.size and c.dtype.kind == "f":
        if not np.all(np.isfinite(c)) or np.any(c != np.floor(c)):
            raise ParameterError("counts must be finite whole numbers")
    if c.size and c.min() < 0:
        raise ParameterError("counts must be non-negative")
    return c.astype(np.uint64)


class SortedCounts:
    """One language's entry counts sorted once: the t -> p and p -> t maps of Algorithm 1.

    [`t_to_p`][metaclip2.curation.threshold.SortedCounts.t_to_p], [`p_to_t`][metaclip2.curation.threshold.SortedCounts.p_to_t], [`thresholds`][metaclip2.curation.threshold.thresholds] and the sweep's many thresholds all go
    through these two methods, so every door derives the same thresholds from the same counts.

    Parameters
    ----------
    counts : array_like of int, shape (n_entries,)
        Entry counts of one language (whole, non-negative).

    Attributes
    ----------
    total : int
        The language's match mass, ``sum(counts)``.

    See Also
    --------
    - [`thresholds`][metaclip2.curation.threshold.thresholds] : Every language's threshold from the English one.

    Examples
    --------
    >>> from metaclip2.curation.threshold import SortedCounts
    >>> c = SortedCounts([50, 3, 1, 0, 120, 7])
    >>> c.total, c.t_to_p(40), c.p_to_t(0.06)
    (181, 0.06077348066298342, 7)
    """

    def __init__(self, counts):
        self.sorted = np.sort(_counts(counts))
        self.total = int(self.sorted.sum(dtype=np.uint64))
        self._cum = np.cumsum(self.sorted, dtype=np.uint64) / self.total if self.total else None

    def t_to_p(self, t: float) -> float:
        """``sum(c[c < t]) / sum(c)``: a prefix of the sorted counts."""
        if self.total == 0:
            raise DataError("t_to_p: counts are all zero; there is no match mass")
        k = int(np.searchsorted(self.sorted, t, side="left"))
        return int(self.sorted[:k].sum(dtype=np.uint64)) / self.total

    def p_to_t(self, p: float) -> int:
        """The sorted count whose cumulative share is closest to `p` (first on ties), at least 1."""
        if not 0.0 <= p <= 1.0:
            raise ParameterError(f"p must lie in [0, 1], got {p}")
        if self._cum is None:
            raise DataError("p_to_t: counts are all zero; no threshold can be derived")
        return max(int(self.sorted[int(np.argmin(np.abs(self._cum - p)))]), 1)


def t_to_p(t: float, counts) -> float:
    """Share of the match mass held by tail entries: ``sum(c[c < t]) / sum(c)``.

    Parameters
    ----------
    t : float
        Threshold (a count).
    counts : array_like of int, shape (n_entries,)
        Entry counts of one language.

    Raises
    ------
    ValueError
        If the counts are all zero (there is no mass to share).

    See Also
    --------
    - [`p_to_t`][metaclip2.curation.threshold.p_to_t] : The inverse: the threshold of a tail share.
    - [`thresholds`][metaclip2.curation.threshold.thresholds] : Every language's threshold from the English one.

    Examples
    --------
    Entry counts of a small English pool; entries matched fewer than 40 times are the tail:

    >>> from metaclip2.curation.threshold import t_to_p
    >>> en = [900, 120, 40, 8, 2]
    >>> t_to_p(40, en)
    0.009
    """
    return SortedCounts(counts).t_to_p(t)


def p_to_t(p: float, counts) -> int:
    """Threshold whose tail holds about a share `p` of the match mass.

    Sorts `counts` ascending, takes the cumulative sum divided by the total,
    and returns the sorted count where that fraction is closest to `p` (the
    first such position on ties). A result of 0 (closest fraction on a
    zero count) is raised to 1: a threshold of 0 would make every entry
    probability ``0 / 0``.

    Parameters
    ----------
    p : float
        Target tail share, in [0, 1].
    counts : array_like of int, shape (n_entries,)

    Returns
    -------
    int
        ``t >= 1``.

    Raises
    ------
    ValueError
        If the counts are all zero, or `p` is outside [0, 1].

    See Also
    --------
    - [`t_to_p`][metaclip2.curation.threshold.t_to_p] : The inverse: the tail share of a threshold.
    - [`thresholds`][metaclip2.curation.threshold.thresholds] : Both steps for every language.

    Examples
    --------
    The German threshold whose tail holds the share English has below ``t_en = 40``:

    >>> from metaclip2.curation.threshold import p_to_t, t_to_p
    >>> p = t_to_p(40, [900, 120, 40, 8, 2])
    >>> p_to_t(p, [300, 60, 9, 3])
    3
    >>> p_to_t(0.5, [300, 60, 9, 3])
    60
    """
    return SortedCounts(counts).p_to_t(p)


def thresholds(
    counts_by_lang: Mapping[str, np.ndarray],
    t_en: float = DEFAULT_T_EN,
    english: str = "keep",
    english_code: str = ENGLISH,
    p: float | None = None,
) -> dict[str, int | None]:
    """Per-language thresholds derived from the English one (Algorithm 1, stage 2).

    ``p = t_to_p(t_en, counts["en"])``; then ``t[lang] = p_to_t(p, counts[lang])``.

    Parameters
    ----------
    counts_by_lang : mapping of str to array_like of int or SortedCounts
        Entry counts per language over the whole pool.
    t_en : float
        English threshold (170,000 for Meta CLIP 2's 5B pool).
    english : {"keep", "recompute"}
        ``"keep"`` (the release, default): ``t["en"] = t_en``. ``"recompute"``
        (the paper): ``t["en"] = p_to_t(p, counts["en"])``.
    english_code : str
        Name of the English language in `counts_by_lang`.
    p : float, optional
        Tail share to use instead of deriving it from English counts (needed
        when the pool has no English matches).

    Returns
    -------
    dict of str to int or None
        ``None`` for a language whose counts are all zero: it has no threshold
        and keeps no pair.

    See Also
    --------
    - [`t_to_p`][metaclip2.curation.threshold.t_to_p] : The English tail share (first step).
    - [`p_to_t`][metaclip2.curation.threshold.p_to_t] : Each language's threshold (second step).
    - [`entry_probabilities`][metaclip2.curation.threshold.entry_probabilities] : What a threshold turns counts into.

    Examples
    --------
    >>> from metaclip2.curation.threshold import thresholds
    >>> counts = {"en": [900, 120, 40, 8, 2], "de": [300, 60, 9, 3], "th": [0, 0]}
    >>> thresholds(counts, t_en=40)
    {'de': 3, 'en': 40, 'th': None}

    The paper's variant recomputes English from its own tail share too:

    >>> thresholds(counts, t_en=40, english="recompute")
    {'de': 3, 'en': 8, 'th': None}
    """
    if english not in ENGLISH_MODES:
        raise ParameterError(f"english must be one of {ENGLISH_MODES}, got {english!r}")
    if t_en is None or isinstance(t_en, bool) or not t_en > 0:
        raise ParameterError(f"t_en must be a positive count, got {t_en!r}")
    langs = {lang: c if isinstance(c, SortedCounts) else SortedCounts(c) for lang, c in counts_by_lang.items()}
    if p is None:
        en = langs.get(english_code)
        if en is None or en.total == 0:
            raise DataError(no_english_message(english_code))
        p = en.t_to_p(t_en)
    out: dict[str, int | None] = {}
    for lang in sorted(langs):
        c = langs[lang]
        if c.total == 0:
            out[lang] = None
        elif lang == english_code and english == "keep":
            out[lang] = int(t_en) if float(t_en).is_integer() else t_en
        else:
            out[lang] = c.p_to_t(p)
    return out


def entry_probabilities(counts, t) -> np.ndarray:
    """Probability of keeping a match of each entry: ``t / max(c, t)``.

    The one place entry probabilities are computed: stage 2, the batch API and the sweep
    (which passes a threshold per entry, for entries of many languages at once) call it.

    Parameters
    ----------
    counts : array_like of int, shape (n_entries,)
    t : float, None, or array_like of float, shape (n_entries,)
        The language's threshold (> 0); None (no threshold: all counts zero)
        gives all zeros. An array gives each entry its own threshold, NaN for none.

    Returns
    -------
    ndarray of float64, shape (n_entries,)
        Values in [0, 1]; 1 for tail entries (``c <= t``); never NaN.

    See Also
    --------
    - [`thresholds`][metaclip2.curation.threshold.thresholds] : The per-language thresholds `t`.
    - [`keep_probability`][metaclip2.curation.sampling.keep_probability] : Combines the probabilities of a text's matches.

    Examples
    --------
    Head entries are kept with probability ``t / c``, tail entries always:

    >>> from metaclip2.curation.threshold import entry_probabilities
    >>> entry_probabilities([900, 120, 40, 8, 2], 40)
    array([0.04444444, 0.33333333, 1.        , 1.        , 1.        ])
    >>> entry_probabilities([0, 0], None)
    array([0., 0.])
    >>> entry_probabilities([900, 120, 5], [40, float("nan"), 10])   # a threshold per entry
    array([0.04444444, 0.        , 1.        ])
    """
    c = _counts(counts)
    if t is None:
        return np.zeros(len(c), dtype=np.float64)
    if np.ndim(t) == 0:
        if not t > 0 or not np.isfinite(t):
            raise ParameterError(f"threshold must be a positive finite count, got {t!r}")
        return _probabilities(c.astype(np.float64), float(t))
    t = np.asarray(t, dtype=np.float64)
    if t.shape != c.shape:
        raise ParameterError(f"thresholds per entry must match the counts' shape {c.shape}, got {t.shape}")
    if np.any(~np.isnan(t) & ~((t > 0) & np.isfinite(t))):
        raise ParameterError("thresholds must be positive finite counts (NaN for none)")
    return _probabilities(c.astype(np.float64), t)


def _probabilities(c: np.ndarray, t) -> np.ndarray:
    """``t / max(c, t)`` on checked float64 counts; a NaN threshold (none) gives 0."""
    if np.ndim(t) == 0:
        return t / np.maximum(c, t)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(t / np.maximum(c, t), nan=0.0)
