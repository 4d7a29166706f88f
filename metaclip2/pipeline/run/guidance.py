"""Guidance on choosing t_en: the paper's tail share, warnings when a threshold does not fit the pool."""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np

from metaclip2.core.errors import DataError
from metaclip2.curation.threshold import ENGLISH, no_english_message, p_to_t, t_to_p
from metaclip2.pipeline.stages.options import MatchOptions

__all__ = ["PAPER_TAIL_SHARES", "suggest_t_en", "warn_tail_share", "sample_languages", "check_english"]

log = logging.getLogger(__name__)

#: The tail share of MetaCLIP's 400M set at t = 20k: about 5.5-6 % of the match mass.
PAPER_TAIL_SHARES = (0.055, 0.06)


def suggest_t_en(counts, shares: Sequence[float] = PAPER_TAIL_SHARES, english_code: str = ENGLISH) -> dict[float, int]:
    """The t_en giving each tail share in `shares` (``p_to_t`` of the English counts).

    Parameters
    ----------
    counts : EntryCounts, mapping of str to array, or SweepData
    shares : sequence of float

    Returns
    -------
    dict of float to int
        Empty when there are no English matches.
    """
    counts = getattr(counts, "counts", counts)  # a SweepData holds its counts
    en = counts.get(english_code) if hasattr(counts, "get") else None
    if en is None or not np.asarray(en).any():
        return {}
    return {s: p_to_t(s, en) for s in shares}


def _en(counts):
    return getattr(counts, "counts", counts)[ENGLISH]


def warn_tail_share(counts, p: float, t_en: float, logger: logging.Logger | None = None) -> str | None:
    """Log a warning when the tail share `p` is ≥ 0.99 or ≤ 0.01 (t_en does not fit the pool's size).

    Returns the message (None when `p` is in range).
    """
    if p is None or 0.01 < p < 0.99:
        return None
    sug = suggest_t_en(counts)
    what = ("nearly every match is in the tail, so almost nothing is balanced" if p >= 0.99
            else "nearly every match is in the head, so almost everything is sub-sampled")  # fmt: skip
    msg = f"t_en = {t_en:g} gives a tail share p = {p:.4f}: {what}; t_en scales with the pool's size"
    if sug:
        reached = {t: t_to_p(t, _en(counts)) for t in sorted(set(sug.values()))}
        shown = ", ".join(f"t_en = {t:,} (p = {q:.3f})" for t, q in reached.items())
        if any(0.02 <= q <= 0.2 for q in reached.values()):
            msg += "; the paper's tail share (p ~ 0.055-0.06) is reached at " + shown
        else:  # a small pool: its English counts are too few and too even for any t_en to get there
            msg += f"; no t_en reaches the paper's tail share (p ~ 0.055-0.06) on this pool (the closest: {shown}): it is too small for Algorithm 1 to balance much"
    msg += "; preview with `metaclip2 sweep RUN --t-en ...` (docs/choosing_t_en.md)"
    (logger or log).warning(msg)
    return msg


def sample_languages(metadata, inputs, options: MatchOptions | None = None, *, max_texts: int = 4000, max_shards: int = 8) -> dict[str, int]:
    """Metadata languages of a sample of the pool's alt-texts: the first ones of a few shards.

    Reads at most `max_texts` valid alt-texts, spread over up to `max_shards` shards taken
    evenly from the sorted input list (a pool sharded by language is still seen whole), and
    runs language identification on those without a given language. Cheap next to stage 1.

    Parameters
    ----------
    metadata : path or MetadataStore
    inputs : sequence of path
        The input shards (already expanded).
    options : MatchOptions or CurationConfig, optional
        Stage 1's options: the same reading and language identification as stage 1.

    Returns
    -------
    dict of str to int
        Alt-texts per metadata language (``None`` keys counted under ``""``: no metadata).
    """
    from metaclip2.pipeline.io.readers import read_shard
    from metaclip2.pipeline.stages.cache import cached_store

    options = MatchOptions.of(options)
    store = cached_store(metadata) if isinstance(metadata, (str, os.PathLike)) else metadata
    inputs = list(inputs)
    if not inputs:
        return {}
    step = max(1, len(inputs) // max_shards)
    chosen = inputs[::step][:max_shards]
    per_shard = max(1, max_texts // len(chosen))
    texts, given = [], []
    for path in chosen:
        n = 0
        for image in read_shard(path, input_format=options.input_format, max_chars=options.max_chars, spec=options.reader_spec()):
            for text, lang, bad in zip(image.texts, image.langs, image.invalid):
                if bad is None:
                    texts.append(text)
                    given.append(lang)
                    n += 1
            if n >= per_shard:
                break
    if not texts:
        return {}
    labels = options.identify(texts, given)
    out: dict[str, int] = {}
    for label in labels:
        lang = store.resolve(label) or ""
        out[lang] = out.get(lang, 0) + 1
    return dict(sorted(out.items()))


def check_english(metadata, inputs, options: MatchOptions | None = None, english_code: str = ENGLISH) -> dict[str, int]:
    """Refuse, before stage 1, a pool that shows no English in a sample and has no ``p`` given.

    Parameters
    ----------
    metadata, inputs, options
        As in [`sample_languages`][metaclip2.pipeline.run.guidance.sample_languages].

    Returns
    -------
    dict
        The sample's languages (see [`sample_languages`][metaclip2.pipeline.run.guidance.sample_languages]).

    Raises
    ------
    DataError
        The metadata has no English, or no sampled alt-text is English; the message names ``--p``.
    """
    from metaclip2.pipeline.stages.cache import cached_store

    store = cached_store(metadata) if isinstance(metadata, (str, os.PathLike)) else metadata
    if english_code not in store.languages:
        raise DataError(f"the metadata has no {english_code!r} list, so no pair can match English; " + no_english_message())
    seen = sample_languages(store, inputs, options)
    n = sum(seen.values())
    if n and not seen.get(english_code):
        raise DataError(
            f"none of {n:,} alt-texts sampled from the first lines of the input shards is English "
            f"(languages seen: {', '.join(f'{k or chr(45)} {v}' for k, v in seen.items())}); " + no_english_message()
            + "; or, if English comes later in the pool, run `metaclip2 count` and then `metaclip2 thresholds`"
        )
    log.debug("language sample of the pool: %s", seen)
    return seen
