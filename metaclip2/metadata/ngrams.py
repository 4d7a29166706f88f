"""Wikipedia unigram/bigram counts and the rankers that turn them into metadata ([Sources and constants][sources-and-constants], [Bigram scores][bigram-scores]).

Counts are plain sums, so a dump can be split over workers or machines and the parts merged
in any order. Two ways to count:

* `write_dump_ngrams` (dumps of any size): workers read, render, tokenise and count their own
  parts of the dump in bounded memory (`metaclip2.metadata.ngram_runs`) and the caller merges
  their sorted runs into a counts file, streamed; `NgramFile` ranks from that file without
  holding the bigrams as Python objects.
* `NgramCounts` / `count_ngrams` (small texts, tests): Python ``Counter``s in memory; `save`
  writes the same file format, byte for byte.

Rankers:

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
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from metaclip2.metadata.ngram_runs import COUNTS_FORMAT, CountsWriter, RunCounter, check_token, merge_runs, parse_memory
from metaclip2.metadata.tokenizer import is_no_space_language, normalize_lang, tokenize
from metaclip2.core.errors import DataError, ParameterError

__all__ = [
    "NgramCounts",
    "NgramFile",
    "count_ngrams",
    "count_dump_ngrams",
    "write_dump_ngrams",
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
_FORMAT = COUNTS_FORMAT


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

    See Also
    --------
    - [`count_ngrams`][metaclip2.metadata.ngrams.count_ngrams] : Counts texts.
    - [`NgramFile`][metaclip2.metadata.ngrams.NgramFile] : Ranks from a saved file in bounded memory.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.metadata.ngrams import NgramCounts, count_ngrams
    >>> texts = ["A dog runs in New York.", "The dog and the cat live in New York.", "New York has a dog park."]
    >>> counts = count_ngrams(texts, "en")
    >>> counts.n_tokens, counts.unigrams["dog"], counts.bigrams[("New", "York")]
    (21, 3, 3)
    >>> counts + count_ngrams(["A cat."], "en") == count_ngrams(texts + ["A cat."], "en")
    True
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     counts.save(os.path.join(tmp, "en.ngrams"))
    ...     NgramCounts.load(os.path.join(tmp, "en.ngrams")) == counts
    True
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
        each sorted by string. Equal counts give byte-identical files (gzip mtime is 0), the
        same bytes as `write_dump_ngrams` writes for the same counts."""
        words = sorted(w for w, c in self.unigrams.items() if c)
        pairs = sorted(ab for ab, c in self.bigrams.items() if c)
        for w in words:
            _check_token(w)
        for a, b in pairs:
            _check_token(a)
            _check_token(b)
        out = CountsWriter(path)
        try:
            out.write(f"{_FORMAT}\tn_tokens={self.n_tokens}\n")
            uni, bi = self.unigrams, self.bigrams
            for i in range(0, len(words), 65536):
                out.write("".join(f"U\t{w}\t{uni[w]}\n" for w in words[i : i + 65536]))
            for i in range(0, len(pairs), 65536):
                out.write("".join(f"B\t{a}\t{b}\t{bi[a, b]}\n" for a, b in pairs[i : i + 65536]))
        except BaseException:
            out.abort()
            raise
        out.close()

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


_check_token = check_token


def count_ngrams(texts: Iterable[str], lang: str) -> NgramCounts:
    """Count unigrams and bigrams of ``texts`` tokenised with `tokenize` for ``lang``.

    See Also
    --------
    - [`tokenize`][metaclip2.metadata.tokenizer.tokenize] : How each text is split.
    - [`count_dump_ngrams`][metaclip2.metadata.ngrams.count_dump_ngrams] : The same over a Wikipedia dump.

    Examples
    --------
    >>> from metaclip2.metadata.ngrams import count_ngrams
    >>> texts = ["A dog runs in New York.", "The dog and the cat live in New York.", "New York has a dog park."]
    >>> counts = count_ngrams(texts, "en")
    >>> counts.unigrams.most_common(3), counts.bigrams[("New", "York")]
    ([('dog', 3), ('New', 3), ('York', 3)], 3)
    """
    counts = NgramCounts()
    for text in texts:
        counts.add_chains(tokenize(text, lang))
    return counts


def _count_part(path: str, start: int, end: int | None, lang: str, ctx, run_dir: str, prefix: str, memory_limit: int | None) -> dict:
    """Executor task: read, render, tokenise and count one part of a dump into sorted runs."""
    from metaclip2.metadata.wikitext import DumpPart, _render, iter_part_articles

    counter = RunCounter(run_dir, prefix, memory_limit)
    articles = 0
    for page in iter_part_articles(DumpPart(path, start, end)):
        counter.add_chains(tokenize(_render(page.text, ctx), lang))
        articles += 1
    runs = counter.close()
    return {"runs": runs, "n_tokens": counter.n_tokens, "articles": articles, "peak_bytes": counter.peak_bytes}


def write_dump_ngrams(
    dumps,
    lang: str,
    out: str | os.PathLike,
    *,
    workers: int = 1,
    executor=None,
    memory_limit: int | str | None = None,
    tmp_dir: str | os.PathLike | None = None,
    force_language: bool = False,
    progress: bool = False,
    parts_per_worker: int = 4,
    min_part_bytes: int = 1 << 22,
) -> dict:
    """Count the n-grams of a Wikipedia dump into a counts file, in bounded memory.

    Workers decompress, parse, render, tokenise and count their own part of the input (byte
    ranges of multistream bz2 dumps, or whole files when a dump comes split into several
    ``…-pages-articlesN.xml-p…bz2`` files) and spill sorted runs to a temporary directory;
    the caller merges the runs k-way into `out` (streamed). The file is byte-identical
    whatever `workers`, `executor`, `memory_limit` and `parts_per_worker`.

    Parameters
    ----------
    dumps : path or sequence of paths
        ``<lang>wiki-*-pages-articles*.xml[.bz2]`` (all parts of one language's dump).
    lang : str
        Wikipedia code of the dump; selects the tokenizer and must agree with the dump's
        ``<siteinfo>`` (see `force_language`).
    out : path
        Counts file to write (read it with `NgramFile` or `NgramCounts.load`).
    workers : int
        Worker processes of the default `~metaclip2.execution.local.LocalExecutor`
        (1: everything in this process).
    executor : object, optional
        Anything with ``map(fn, list_of_kwargs) -> list`` and ``workers`` (a
        ``LocalExecutor``, a ``RayExecutor``); `workers` is then ignored. Tasks write
        their runs into `tmp_dir`, which must be visible to every worker.
    memory_limit : int or str, optional
        Budget for each worker's counting tables and for the merge (``"128MB"``, ``"2GiB"``
        or bytes; binary units: MB = 2^20, GB = 2^30 bytes); a worker spills a sorted run when
        it is reached. None: one run per part.
    tmp_dir : path, optional
        Where runs go (default: beside `out`); removed afterwards.
    force_language : bool
        Count a dump whose ``<siteinfo>`` names another language than `lang`.
    progress : bool
        A progress bar over the parts.
    parts_per_worker : int
        Parts per worker for splittable (multistream) dumps, for load balance.
    min_part_bytes : int
        Smallest byte range given to one task (see `split_dump`).

    Returns
    -------
    dict
        ``n_tokens``, ``unigrams``, ``bigrams`` (distinct), ``articles``, ``parts``,
        ``runs``, ``worker_peak_bytes`` (largest counting-table estimate of a worker),
        ``count_seconds`` and ``merge_seconds`` (wall clock of the two phases).

    Raises
    ------
    DumpLanguageError
        The dump's language is not `lang` (and `force_language` is false).
    ValueError
        Bad `workers` or `memory_limit`.

    See Also
    --------
    - [`NgramFile`][metaclip2.metadata.ngrams.NgramFile] : Ranks from the file written.
    - [`count_dump_ngrams`][metaclip2.metadata.ngrams.count_dump_ngrams] : The in-memory version for small dumps.

    Examples
    --------
    A hand-made export of two articles:

    >>> import os, tempfile
    >>> lines = [
    ...     '<mediawiki xml:lang="en">', "<siteinfo>", "<dbname>enwiki</dbname>", "</siteinfo>",
    ...     "<page>", "<title>Dog</title>", "<ns>0</ns>",
    ...     "<text>The '''dog''' is a [[mammal|domestic mammal]]. A dog lives in New York.</text>", "</page>",
    ...     "<page>", "<title>New York</title>", "<ns>0</ns>",
    ...     "<text>'''New York''' is a city.<ref>Census</ref> New York has a dog park.</text>", "</page>",
    ...     "</mediawiki>",
    ... ]
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dump = os.path.join(tmp.name, "enwiki-20240501-pages-articles.xml")
    >>> _ = open(dump, "w", encoding="utf-8").write("\\n".join(lines))
    >>> from metaclip2.metadata import NgramCounts, write_dump_ngrams
    >>> out = os.path.join(tmp.name, "en.ngrams")
    >>> report = write_dump_ngrams(dump, "en", out, memory_limit="64MB")
    >>> report["articles"], report["n_tokens"], report["bigrams"]
    (2, 23, 16)
    >>> NgramCounts.load(out).bigrams[("New", "York")]
    3
    >>> tmp.cleanup()
    """
    import shutil
    import tempfile
    import time

    from metaclip2.metadata.wikitext import _context, check_dump_language, split_dump

    paths = [os.fspath(dumps)] if isinstance(dumps, (str, os.PathLike)) else [os.fspath(d) for d in dumps]
    if not paths:
        raise ParameterError("no dump given")
    if int(workers) < 1:
        raise ParameterError(f"workers must be at least 1, got {workers}")
    limit = parse_memory(memory_limit)
    contexts = {p: _context(check_dump_language(p, lang, force=force_language)) for p in paths}
    own = None
    if executor is None:
        from metaclip2.execution.local import LocalExecutor

        executor = own = LocalExecutor(int(workers), progress=progress, desc=f"{lang} n-grams")
    workers = max(1, int(getattr(executor, "workers", 1) or 1))
    per_file = max(1, -(-workers * max(1, parts_per_worker) // len(paths)))
    parts = [part for p in paths for part in split_dump(p, per_file, min_part_bytes=min_part_bytes)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.runs-", dir=tmp_dir if tmp_dir is not None else out.parent))
    try:
        tasks = [
            dict(path=part.path, start=part.start, end=part.end, lang=lang, ctx=contexts[part.path], run_dir=str(tmp), prefix=f"part{i:05d}", memory_limit=limit)
            for i, part in enumerate(parts)
        ]
        t0 = time.perf_counter()
        results = executor.map(_count_part, tasks)
        t1 = time.perf_counter()
        runs = [r for res in results for r in res["runs"]]
        n_tokens = sum(res["n_tokens"] for res in results)
        stats = merge_runs(runs, out, n_tokens, tmp / "merge", memory_limit=limit)
        t2 = time.perf_counter()
    finally:
        if own is not None:
            own.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "n_tokens": n_tokens,
        **stats,
        "articles": sum(res["articles"] for res in results),
        "parts": len(parts),
        "runs": len(runs),
        "worker_peak_bytes": max((res["peak_bytes"] for res in results), default=0),
        "count_seconds": round(t1 - t0, 3),
        "merge_seconds": round(t2 - t1, 3),
    }


def count_dump_ngrams(
    path: str | os.PathLike,
    lang: str,
    workers: int = 1,
    progress: bool = False,
    batch_size: int = 64,
    executor=None,
    memory_limit: int | str | None = None,
    force_language: bool = False,
) -> NgramCounts:
    """Count n-grams of every article of a Wikipedia dump, as an in-memory `NgramCounts`.

    For small dumps and tests: this runs `write_dump_ngrams` into a temporary file and
    loads it, so the result holds every bigram as Python objects. Large dumps: use
    `write_dump_ngrams` and rank from the file with `NgramFile`.

    Parameters
    ----------
    path : str or path-like
        ``<lang>wiki-*-pages-articles*.xml[.bz2]``.
    lang : str
        Wikipedia language code, selects the tokeniser.
    workers, executor, memory_limit, force_language, progress :
        As in `write_dump_ngrams`; the result does not depend on them.
    batch_size : int
        Ignored (work is split by dump parts); kept for callers of the earlier version.

    See Also
    --------
    - [`write_dump_ngrams`][metaclip2.metadata.ngrams.write_dump_ngrams] : The bounded-memory version for large dumps.
    - [`count_ngrams`][metaclip2.metadata.ngrams.count_ngrams] : The same for texts at hand.

    Examples
    --------
    A hand-made export of two articles:

    >>> import os, tempfile
    >>> lines = [
    ...     '<mediawiki xml:lang="en">', "<siteinfo>", "<dbname>enwiki</dbname>", "</siteinfo>",
    ...     "<page>", "<title>Dog</title>", "<ns>0</ns>",
    ...     "<text>The '''dog''' is a [[mammal|domestic mammal]]. A dog lives in New York.</text>", "</page>",
    ...     "<page>", "<title>New York</title>", "<ns>0</ns>",
    ...     "<text>'''New York''' is a city.<ref>Census</ref> New York has a dog park.</text>", "</page>",
    ...     "</mediawiki>",
    ... ]
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dump = os.path.join(tmp.name, "enwiki-20240501-pages-articles.xml")
    >>> _ = open(dump, "w", encoding="utf-8").write("\\n".join(lines))
    >>> from metaclip2.metadata import count_dump_ngrams
    >>> counts = count_dump_ngrams(dump, "en")
    >>> counts.unigrams.most_common(2), counts.bigrams[("New", "York")]
    ([('New', 3), ('York', 3)], 3)
    >>> tmp.cleanup()
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="metaclip2-ngrams-") as tmp:
        out = Path(tmp) / "counts.ngrams"
        write_dump_ngrams(
            path, lang, out, workers=workers, executor=executor, memory_limit=memory_limit, force_language=force_language, progress=progress
        )
        return NgramCounts.load(out)


def unigram_entries(
    counts: NgramCounts, top_fraction: float = 0.10, max_entries: int | None = UNIGRAM_CAP, min_count: int = 1
) -> list[str]:
    """The most frequent unigrams ([Caps][caps]).

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

    See Also
    --------
    - [`bigram_entries`][metaclip2.metadata.ngrams.bigram_entries] : The bigram source.
    - [`build_metadata`][metaclip2.metadata.build.build_metadata] : Merges the sources.

    Examples
    --------
    >>> from metaclip2.metadata.ngrams import count_ngrams, unigram_entries
    >>> texts = ["A dog runs in New York.", "The dog and the cat live in New York.", "New York has a dog park."]
    >>> unigram_entries(count_ngrams(texts, "en"), top_fraction=0.2)
    ['New', 'York', 'dog']
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

    See Also
    --------
    - [`bigram_entries`][metaclip2.metadata.ngrams.bigram_entries] : The selection made from these scores.

    Examples
    --------
    >>> from metaclip2.metadata.ngrams import count_ngrams, score_bigrams
    >>> texts = ["A dog runs in New York.", "The dog and the cat live in New York.", "New York has a dog park."]
    >>> [(pair, round(pmi, 2)) for pair, pmi in score_bigrams(count_ngrams(texts, "en"), min_count=2)]
    [(('New', 'York'), 2.81), (('in', 'New'), 2.81)]
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
    """The best-scoring bigrams as metadata strings ([Bigram scores][bigram-scores]).

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

    See Also
    --------
    - [`score_bigrams`][metaclip2.metadata.ngrams.score_bigrams] : The scores they are ranked by.
    - [`unigram_entries`][metaclip2.metadata.ngrams.unigram_entries] : The unigram source.

    Examples
    --------
    On a corpus this small, PMI is far below the paper's 30; a lower threshold shows the ranking:

    >>> from metaclip2.metadata.ngrams import bigram_entries, count_ngrams
    >>> texts = ["A dog runs in New York.", "The dog and the cat live in New York.", "New York has a dog park."]
    >>> bigram_entries(count_ngrams(texts, "en"), "en", min_pmi=2, min_count=2)
    ['New York', 'in New']
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


# ---------------------------------------------------------------------------------------------
# Ranking from a counts file, without holding every bigram as Python objects

_CHUNK = 1 << 18


class NgramFile:
    """Rankings read from a counts file (`write_dump_ngrams`, `NgramCounts.save`), streamed.

    Unigram counts are held as numpy arrays indexed by a per-process string hash (about
    24 bytes per distinct unigram); bigrams are read in chunks and only the current best
    candidates are kept as strings. ``method="corrected"`` also holds one float64 PMI per
    bigram for a moment (its 30th percentile), and reads the bigrams twice.

    Parameters
    ----------
    path : path

    Raises
    ------
    ValueError
        Not a counts file.

    See Also
    --------
    - [`write_dump_ngrams`][metaclip2.metadata.ngrams.write_dump_ngrams] : Writes such a file from a dump.
    - [`build_metadata`][metaclip2.metadata.build.build_metadata] : Ranks unigrams and bigrams from it.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.metadata import NgramFile, build_metadata, count_ngrams
    >>> texts = ["A dog runs in New York.", "The dog and the cat live in New York.", "New York has a dog park."]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "en.ngrams")
    ...     count_ngrams(texts, "en").save(path)
    ...     built = build_metadata("en", wordnet=None, ngrams=NgramFile(path), numbers=False,
    ...                            unigram_fraction=0.2, min_pmi=3, max_bigrams=3)
    >>> list(zip(built.entries, built.sources))
    [('New', 'unigram'), ('York', 'unigram'), ('and the', 'bigram'), ('cat live', 'bigram'), ('has a', 'bigram')]
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        with gzip.open(self.path, "rt", encoding="utf-8", newline="\n") as f:
            header = f.readline().rstrip("\n").split("\t")
        if "\t".join(header[:2]) != _FORMAT or len(header) < 3 or not header[2].startswith("n_tokens="):
            raise DataError(f"{self.path}: not a metaclip2 n-gram count file")
        self.n_tokens = int(header[2][len("n_tokens=") :])
        self._index: tuple | None = None

    def _rows(self, kind: str) -> Iterator[list[list[str]]]:
        """Chunks of split rows of one section (``"U"`` or ``"B"``)."""
        tag = kind + "\t"
        with gzip.open(self.path, "rt", encoding="utf-8", newline="\n") as f:
            f.readline()
            chunk: list[list[str]] = []
            for line in f:
                if not line.startswith(tag):
                    if kind == "U":
                        break  # U rows come first
                    continue
                chunk.append(line[2:-1].split("\t"))
                if len(chunk) >= _CHUNK:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

    def _unigram_index(self):
        """(sorted hashes, counts in that order) or a dict when two strings share a hash."""
        import numpy as np

        if self._index is None:
            hashes, counts = [], []
            for rows in self._rows("U"):
                hashes.append(np.fromiter((hash(r[0]) for r in rows), dtype=np.int64, count=len(rows)))
                counts.append(np.fromiter((int(r[1]) for r in rows), dtype=np.int64, count=len(rows)))
            h = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.int64)
            c = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
            order = np.argsort(h, kind="stable")
            h, c = h[order], c[order]
            if h.size > 1 and bool((h[1:] == h[:-1]).any()):
                # A 64-bit collision (about 1e-5 at 2e7 words): fall back to exact strings.
                self._index = ("dict", {r[0]: int(r[1]) for rows in self._rows("U") for r in rows})
            else:
                self._index = ("hash", h, c)
        return self._index

    def _lookup(self, words: list[str]):
        import numpy as np

        index = self._unigram_index()
        if index[0] == "dict":
            return np.fromiter((index[1][w] for w in words), dtype=np.float64, count=len(words))
        _, h, c = index
        q = np.fromiter((hash(w) for w in words), dtype=np.int64, count=len(words))
        return c[np.searchsorted(h, q)].astype(np.float64)

    def unigram_chunks(self, min_count: int = 1) -> Iterator[tuple["np.ndarray", list]]:  # noqa: F821
        """(scores, words) per chunk in file order; score = count, -inf below `min_count`."""
        import numpy as np

        for rows in self._rows("U"):
            c = np.fromiter((int(r[1]) for r in rows), dtype=np.float64, count=len(rows))
            c[c < min_count] = -np.inf
            yield c, [r[0] for r in rows]

    def bigram_chunks(self, method: str = "pmi", min_count: int = 1) -> Iterator[tuple["np.ndarray", list]]:  # noqa: F821
        """(scores, (w1, w2) pairs) per chunk in file order, as `score_bigrams` scores them
        (-inf below `min_count`)."""
        import numpy as np

        if method not in ("pmi", "corrected"):
            raise ParameterError(f"method must be 'pmi' or 'corrected', not {method!r}")
        n = float(self.n_tokens)

        def pmis():
            for rows in self._rows("B"):
                c12 = np.fromiter((int(r[2]) for r in rows), dtype=np.float64, count=len(rows))
                c1 = self._lookup([r[0] for r in rows])
                c2 = self._lookup([r[1] for r in rows])
                yield rows, c12, np.log2(c12 * n) - np.log2(c1 * c2)

        pmi30 = 0.0
        if method == "corrected":
            import tempfile

            # Spooled through a file so the PMIs are held once (8 B per bigram), and
            # partitioned in place.
            with tempfile.TemporaryFile() as spool:
                for _, c12, p in pmis():
                    p[c12 >= min_count].tofile(spool)
                spool.seek(0)
                allp = np.fromfile(spool, dtype=np.float64)
            if allp.size == 0:
                return
            pmi30 = float(np.percentile(allp, 30, overwrite_input=True))
            del allp
        for rows, c12, pmi in pmis():
            score = pmi if method == "pmi" else (c12 + 1.0) ** 0.7 * (pmi - pmi30)
            score[c12 < min_count] = -np.inf
            yield score, [(r[0], r[1]) for r in rows]


def top_ranked(chunks: Iterable[tuple], k: int, threshold: float) -> tuple[int, list]:
    """The `k` best items with ``score > threshold``, best first, ties in input order.

    Parameters
    ----------
    chunks : iterable of (float array, list)
        Scores and their items, in a fixed order (e.g. a counts file's string order).
    k : int
    threshold : float

    Returns
    -------
    (int, list)
        Number of items above the threshold (all of them, not only `k`), and the best `k`.
        Only about ``2 k`` items are held at a time.
    """
    import numpy as np

    above = 0
    best_s = np.zeros(0)
    best_r = np.zeros(0, dtype=np.int64)
    items: dict[int, object] = {}
    base = 0
    for scores, objs in chunks:
        m = scores > threshold
        above += int(m.sum())
        if best_s.size >= k and k > 0:
            m &= scores > best_s[-1]  # ties with the k-th lose: they come later in input order
        elif k <= 0:
            m[:] = False
        idx = np.flatnonzero(m)
        if idx.size:
            for i in idx.tolist():
                items[base + i] = objs[i]
            s = np.concatenate([best_s, scores[idx]])
            r = np.concatenate([best_r, idx + base])
            order = np.lexsort((r, -s))[:k]
            best_s, best_r = s[order], r[order]
            if len(items) > 2 * k + _CHUNK:
                items = {i: items[i] for i in best_r.tolist()}
        base += len(objs)
    return above, [items[i] for i in best_r.tolist()]
