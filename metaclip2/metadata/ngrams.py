"""Wikipedia unigram/bigram counts and the rankers that turn them into metadata (SPEC §1, 2–3).

Counts are plain sums, so a dump can be split over workers or machines and the parts merged
with ``+`` in any order. Rankers:

* `unigram_entries`: top ``top_fraction`` of the distinct unigrams by frequency, capped;
* `bigram_entries` with ``method="pmi"``: log2 PMI exactly as NLTK's
  ``BigramAssocMeasures.pmi`` with ``N`` = number of unigram tokens, kept if ``PMI > min_pmi``
  (30), best first, capped;
* ``method="corrected"`` (the NeurIPS score): ``(c(w1 w2) + 1) ** 0.7 * (PMI - PMI30)`` with
  ``PMI30`` the 30th percentile (linear interpolation, ``numpy.percentile``) of the PMIs of all
  bigrams considered (those with ``count >= min_count``); kept if ``Score > min_score`` (0, i.e.
  ``PMI > PMI30``); ``min_pmi`` does not apply.

Ties are broken by the strings (code-point order), so every ranking is deterministic.
"""

from __future__ import annotations

import gzip
import io
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from metaclip2.metadata.tokenizer import is_no_space_language, normalize_lang, tokenize
from metaclip2.core.errors import DataError, ParameterError

__all__ = [
    "NgramCounts",
    "count_ngrams",
    "count_dump_ngrams",
    "unigram_entries",
    "score_bigrams",
    "bigram_entries",
    "UNIGRAM_CAP",
    "BIGRAM_CAP",
    "MIN_PMI",
]

UNIGRAM_CAP = 251_465
BIGRAM_CAP = 100_646
MIN_PMI = 30.0
_FORMAT = "metaclip2-ngrams\t1"


@dataclass
class NgramCounts:
    """Unigram and bigram counts of a body of text.

    Attributes
    ----------
    unigrams : Counter[str]
        Token → occurrences.
    bigrams : Counter[tuple[str, str]]
        (w1, w2) → occurrences of w1 immediately followed by w2 within one chain.
    n_tokens : int
        Total unigram tokens (``N`` of PMI); equals ``sum(unigrams.values())``.
    """

    unigrams: Counter = field(default_factory=Counter)
    bigrams: Counter = field(default_factory=Counter)
    n_tokens: int = 0

    def add_chains(self, chains: Iterable[list[str]]) -> None:
        """Count the tokens and in-chain adjacent pairs of ``chains`` (see `tokenize`)."""
        uni = self.unigrams
        bi = self.bigrams
        for chain in chains:
            uni.update(chain)
            self.n_tokens += len(chain)
            if len(chain) > 1:
                bi.update(zip(chain, chain[1:]))

    def merge(self, other: "NgramCounts") -> "NgramCounts":
        """Add ``other`` into ``self`` (in place) and return ``self``."""
        self.unigrams.update(other.unigrams)
        self.bigrams.update(other.bigrams)
        self.n_tokens += other.n_tokens
        return self

    def __add__(self, other: "NgramCounts") -> "NgramCounts":
        out = NgramCounts(Counter(self.unigrams), Counter(self.bigrams), self.n_tokens)
        return out.merge(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NgramCounts):
            return NotImplemented
        # Counter equality ignores zero counts; n_tokens must match too.
        return self.n_tokens == other.n_tokens and +self.unigrams == +other.unigrams and +self.bigrams == +other.bigrams

    def save(self, path: str | os.PathLike) -> None:
        """Write a gzip TSV: header, then ``U\\tword\\tcount`` and ``B\\tw1\\tw2\\tcount`` rows,
        each sorted by string. Equal counts give byte-identical files (gzip mtime is 0)."""
        buf = io.StringIO()
        buf.write(f"{_FORMAT}\tn_tokens={self.n_tokens}\n")
        for w in sorted(self.unigrams):
            c = self.unigrams[w]
            if c:
                _check_token(w)
                buf.write(f"U\t{w}\t{c}\n")
        for (a, b) in sorted(self.bigrams):
            c = self.bigrams[a, b]
            if c:
                _check_token(a)
                _check_token(b)
                buf.write(f"B\t{a}\t{b}\t{c}\n")
        data = buf.getvalue().encode("utf-8")
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            gz.write(data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NgramCounts":
        """Read a file written by `save`."""
        out = cls()
        with gzip.open(path, "rt", encoding="utf-8", newline="\n") as f:
            header = f.readline().rstrip("\n").split("\t")
            if "\t".join(header[:2]) != _FORMAT or not header[2].startswith("n_tokens="):
                raise DataError(f"{os.fspath(path)}: not a metaclip2 n-gram count file")
            out.n_tokens = int(header[2][len("n_tokens=") :])
            uni, bi = out.unigrams, out.bigrams
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if parts[0] == "U":
                    uni[parts[1]] = int(parts[2])
                elif parts[0] == "B":
                    bi[parts[1], parts[2]] = int(parts[3])
                else:
                    raise DataError(f"{os.fspath(path)}: bad row {line[:80]!r}")
        return out


def _check_token(w: str) -> None:
    if not w or "\t" in w or "\n" in w:
        raise ParameterError(f"token {w!r} cannot be stored (empty, or holds a tab/newline)")


def count_ngrams(texts: Iterable[str], lang: str) -> NgramCounts:
    """Count unigrams and bigrams of ``texts`` tokenised with `tokenize` for ``lang``."""
    counts = NgramCounts()
    for text in texts:
        counts.add_chains(tokenize(text, lang))
    return counts


class _CountBatch:
    """Picklable worker step: plain texts → counts."""

    def __init__(self, lang: str):
        self.lang = lang

    def __call__(self, texts: list[str]) -> NgramCounts:
        return count_ngrams(texts, self.lang)


def count_dump_ngrams(
    path: str | os.PathLike,
    lang: str,
    processes: int = 1,
    progress: bool = False,
    batch_size: int = 64,
    executor=None,
) -> NgramCounts:
    """Count n-grams of every article of a Wikipedia dump.

    Parameters
    ----------
    path : str or path-like
        ``<lang>wiki-*-pages-articles*.xml[.bz2]``.
    lang : str
        Wikipedia language code, selects the tokeniser.
    processes : int
        Worker processes (wikitext rendering, tokenising and counting run in the workers);
        the result does not depend on it.
    progress : bool
        Show a progress bar over the dump's bytes.
    batch_size : int
        Articles per worker task.
    executor : object, optional
        Runs the per-batch rendering and counting instead of local processes, e.g.
        ``RayExecutor("auto")`` to count on a Ray cluster; batch counts are summed on the
        caller. The result does not depend on it.
    """
    from metaclip2.metadata.tokenizer import _spaced_regexes
    from metaclip2.metadata.wikitext import map_article_batches

    _spaced_regexes()  # build once before forking workers
    total = NgramCounts()
    for part in map_article_batches(
        path, _CountBatch(lang), processes, batch_size, progress, desc=f"{lang} n-grams", executor=executor
    ):
        total.merge(part)  # type: ignore[arg-type]
    return total


def unigram_entries(
    counts: NgramCounts, top_fraction: float = 0.10, max_entries: int | None = UNIGRAM_CAP, min_count: int = 1
) -> list[str]:
    """The most frequent unigrams (SPEC §1, source 2).

    Parameters
    ----------
    counts : NgramCounts
    top_fraction : float
        Keep ``ceil(top_fraction * D)`` unigrams, ``D`` = distinct unigrams with
        ``count >= min_count``.
    max_entries : int or None
        Cap (the English unigram set's size by default); None for no cap.
    min_count : int
        Ignore unigrams seen fewer times.

    Returns
    -------
    list of str
        Most frequent first; equal counts in code-point order.
    """
    items = [(w, c) for w, c in counts.unigrams.items() if c >= min_count]
    k = math.ceil(top_fraction * len(items))
    if max_entries is not None:
        k = min(k, max_entries)
    items.sort(key=lambda wc: (-wc[1], wc[0]))
    return [w for w, _ in items[:k]]


def score_bigrams(counts: NgramCounts, method: str = "pmi", min_count: int = 1) -> list[tuple[tuple[str, str], float]]:
    """Score every bigram with ``count >= min_count``.

    Parameters
    ----------
    counts : NgramCounts
    method : {"pmi", "corrected"}
        ``"pmi"``: ``log2(c12 * N) - log2(c1 * c2)`` (NLTK's formula, float64).
        ``"corrected"``: ``(c12 + 1) ** 0.7 * (PMI - PMI30)``, ``PMI30`` the 30th percentile of
        these bigrams' PMIs.
    min_count : int
        Ignore rarer bigrams (they do not enter ``PMI30`` either).

    Returns
    -------
    list of ((w1, w2), score)
        Best first; equal scores in code-point order of (w1, w2).
    """
    import numpy as np

    if method not in ("pmi", "corrected"):
        raise ParameterError(f"method must be 'pmi' or 'corrected', not {method!r}")
    pairs = [(ab, c) for ab, c in counts.bigrams.items() if c >= min_count]
    if not pairs:
        return []
    uni = counts.unigrams
    c12 = np.fromiter((c for _, c in pairs), dtype=np.float64, count=len(pairs))
    c1 = np.fromiter((uni[a] for (a, _), _ in pairs), dtype=np.float64, count=len(pairs))
    c2 = np.fromiter((uni[b] for (_, b), _ in pairs), dtype=np.float64, count=len(pairs))
    pmi = np.log2(c12 * float(counts.n_tokens)) - np.log2(c1 * c2)
    if method == "pmi":
        score = pmi
    else:
        pmi30 = float(np.percentile(pmi, 30))
        score = (c12 + 1.0) ** 0.7 * (pmi - pmi30)
    out = [(ab, float(s)) for (ab, _), s in zip(pairs, score.tolist())]
    out.sort(key=lambda x: (-x[1], x[0]))
    return out


def bigram_entries(
    counts: NgramCounts,
    lang: str,
    method: str = "pmi",
    min_pmi: float = MIN_PMI,
    max_entries: int | None = BIGRAM_CAP,
    joiner: str | None = None,
    min_count: int = 1,
    min_score: float = 0.0,
) -> list[str]:
    """The best-scoring bigrams as metadata strings (SPEC §1, source 3).

    Parameters
    ----------
    counts : NgramCounts
    lang : str
        Selects the joiner when ``joiner`` is None: ``""`` for languages written without
        spaces, ``" "`` otherwise.
    method : {"pmi", "corrected"}
        See `score_bigrams`.
    min_pmi : float
        ``method="pmi"``: keep ``PMI > min_pmi`` (30 in the paper).
    max_entries : int or None
        Cap (the English bigram set's size by default); None for no cap.
    joiner : str, optional
    min_count : int
        Ignore bigrams seen fewer times (the paper applies none).
    min_score : float
        ``method="corrected"``: keep ``Score > min_score`` (0: PMI above the 30th percentile).

    Returns
    -------
    list of str
        ``w1 + joiner + w2``, best first, each string once (for no-space languages two
        different pairs can join to the same string; the better-ranked one counts).
    """
    if joiner is None:
        joiner = "" if is_no_space_language(normalize_lang(lang)) else " "
    threshold = min_pmi if method == "pmi" else min_score
    out: list[str] = []
    seen: set[str] = set()
    for (a, b), s in score_bigrams(counts, method, min_count):
        if not s > threshold:
            break
        entry = f"{a}{joiner}{b}"
        if entry in seen:
            continue
        seen.add(entry)
        out.append(entry)
        if max_entries is not None and len(out) >= max_entries:
            break
    return out
