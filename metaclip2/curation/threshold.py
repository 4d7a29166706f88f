"""Head/tail thresholds per language and entry probabilities (Algorithm 1, stages 2 and 3)."""

from __future__ import annotations

from typing import Mapping
from metaclip2.core.errors import DataError, ParameterError

import numpy as np

__all__ = ["DEFAULT_T_EN", "t_to_p", "p_to_t", "thresholds", "entry_probabilities"]

#: Meta CLIP 2's English threshold on its 5B-pair worldwide pool.
DEFAULT_T_EN = 170_000


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
    c = _counts(counts)
    total = int(c.sum(dtype=np.uint64))
    if total == 0:
        raise DataError("t_to_p: counts are all zero; there is no match mass")
    return int(c[c < t].sum(dtype=np.uint64)) / total


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
    if not 0.0 <= p <= 1.0:
        raise ParameterError(f"p must lie in [0, 1], got {p}")
    c = np.sort(_counts(counts))
    total = int(c.sum(dtype=np.uint64))
    if total == 0:
        raise DataError("p_to_t: counts are all zero; no threshold can be derived")
    cum = np.cumsum(c, dtype=np.uint64) / total
    return max(int(c[int(np.argmin(np.abs(cum - p)))]), 1)


def thresholds(
    counts_by_lang: Mapping[str, np.ndarray],
    t_en: float = DEFAULT_T_EN,
    english: str = "keep",
    english_code: str = "en",
    p: float | None = None,
) -> dict[str, int | None]:
    """Per-language thresholds derived from the English one (Algorithm 1, stage 2).

    ``p = t_to_p(t_en, counts["en"])``; then ``t[lang] = p_to_t(p, counts[lang])``.

    Parameters
    ----------
    counts_by_lang : mapping of str to array_like of int
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
    if english not in ("keep", "recompute"):
        raise ParameterError(f"english must be 'keep' or 'recompute', got {english!r}")
    if t_en is None or not t_en > 0:
        raise ParameterError(f"t_en must be a positive count, got {t_en!r}")
    if p is None:
        en = counts_by_lang.get(english_code)
        if en is None or not np.asarray(en).any():
            raise DataError(
                f"no {english_code!r} matches in the counts: Algorithm 1 derives every threshold from English; "
                "pass p= (the tail share, e.g. 0.06) to set it directly"
            )
        p = t_to_p(t_en, en)
    out: dict[str, int | None] = {}
    for lang in sorted(counts_by_lang):
        c = counts_by_lang[lang]
        if not np.asarray(c).any():
            out[lang] = None
        elif lang == english_code and english == "keep":
            out[lang] = int(t_en) if float(t_en).is_integer() else t_en
        else:
            out[lang] = p_to_t(p, c)
    return out


def entry_probabilities(counts, t: float | None) -> np.ndarray:
    """Probability of keeping a match of each entry: ``t / max(c, t)``.

    Parameters
    ----------
    counts : array_like of int, shape (n_entries,)
    t : float or None
        The language's threshold (> 0); None (no threshold: all counts zero)
        gives all zeros.

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
    """
    c = _counts(counts)
    if t is None:
        return np.zeros(len(c), dtype=np.float64)
    if not t > 0 or not np.isfinite(t):
        raise ParameterError(f"threshold must be a positive finite count, got {t!r}")
    return t / np.maximum(c.astype(np.float64), float(t))
