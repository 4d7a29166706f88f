"""Merge the four sources into one language's metadata (SPEC §1).

Order: the strings ``"0"`` … ``"99"``, then WordNet, Wikipedia unigrams, Wikipedia bigrams,
Wikipedia titles. Each source is first ranked and capped on its own (the paper's caps are
the defaults), then every string is stripped and dropped if it is empty, longer than
``max_length`` characters, made only of punctuation, or holds a tab/newline/CR; the first
source to add a string wins. Every step is order-deterministic, so two builds from the same
inputs give byte-identical files.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from metaclip2.core.charclass import only_punctuation
from metaclip2.core.entries import entries_digest, write_metadata
from metaclip2.metadata.pageviews import DEFAULT_MAX_TITLES, DEFAULT_TITLE_FRACTION, read_pageviews, title_entries
from metaclip2.core.errors import ParameterError
from metaclip2.core.atomic import write_text

__all__ = [
    "SOURCES",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_UNIGRAM_FRACTION",
    "DEFAULT_MAX_UNIGRAMS",
    "DEFAULT_MIN_PMI",
    "DEFAULT_MAX_BIGRAMS",
    "MetadataBuild",
    "clean_source",
    "build_metadata",
    "write_language_metadata",
]

#: Source names, in merge order, as recorded in the ``source`` column of ``<lang>.tsv``.
SOURCES = ("number", "wordnet", "unigram", "bigram", "title")
#: Longest entry kept, in characters (code points).
DEFAULT_MAX_LENGTH = 256
DEFAULT_UNIGRAM_FRACTION = 0.10
DEFAULT_MAX_UNIGRAMS = 251_465
DEFAULT_MIN_PMI = 30.0
DEFAULT_MAX_BIGRAMS = 100_646

_DROP_REASONS = ("empty", "too_long", "punctuation", "control")
_CONTROLS = ("\t", "\n", "\r")

PathLike = str | os.PathLike


@dataclass
class MetadataBuild:
    """One language's merged metadata.

    Attributes
    ----------
    lang : str
        Wikipedia code.
    entries : list of str
        Ordered, unique entries; entry ``i`` has id ``i``.
    sources : list of str
        ``sources[i]`` is the source (one of :data:`SOURCES`) that added ``entries[i]``.
    summary : dict
        JSON-ready: entries and candidates per source, strings dropped per filter rule,
        duplicates of earlier sources, caps and parameters used, digest.
    """

    lang: str
    entries: list[str]
    sources: list[str]
    summary: dict = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return entries_digest(self.entries)

    def counts(self) -> dict[str, int]:
        """Entries per source, in merge order."""
        c = Counter(self.sources)
        return {s: c.get(s, 0) for s in SOURCES}


def clean_source(strings: Iterable[str], max_length: int = DEFAULT_MAX_LENGTH) -> tuple[list[str], dict[str, int]]:
    """Apply the every-source filters of SPEC §1 to one source's strings.

    Strips each string, then drops it when empty, longer than `max_length` characters,
    made only of punctuation (and white space), or holding a tab, newline or carriage
    return. Order is kept; duplicates are not removed here.

    Returns
    -------
    (list of str, dict of str -> int)
        The kept strings and the number dropped per rule
        (``empty``, ``too_long``, ``punctuation``, ``control``).
    """
    dropped = dict.fromkeys(_DROP_REASONS, 0)
    kept: list[str] = []
    for s in strings:
        s = s.strip()
        if not s:
            dropped["empty"] += 1
        elif len(s) > max_length:
            dropped["too_long"] += 1
        elif any(c in s for c in _CONTROLS):
            dropped["control"] += 1
        elif only_punctuation(s):
            dropped["punctuation"] += 1
        else:
            kept.append(s)
    return kept, dropped


def _load_ngrams(ngrams):
    if ngrams is None or not isinstance(ngrams, (str, os.PathLike)):
        return ngrams
    from metaclip2.metadata.ngrams import NgramCounts

    return NgramCounts.load(ngrams)


def _resolve_wordnet(lang: str, wordnet, head_word_only: bool, progress: bool) -> tuple[list[str], dict]:
    from metaclip2.metadata.wordnet import WORDNET_LANGUAGES, wordnet_entries

    if wordnet is None or wordnet is False:
        return [], {"used": False}
    if wordnet == "auto" or wordnet is True:
        if lang not in WORDNET_LANGUAGES and wordnet == "auto":
            return [], {"used": False, "reason": f"{lang!r} has no WordNet in the paper's table"}
        return wordnet_entries(lang, head_word_only=head_word_only, progress=progress), {
            "used": True,
            "wordnet_language": WORDNET_LANGUAGES.get(lang, lang),
            "head_word_only": bool(head_word_only),
        }
    return list(wordnet), {"used": True, "given": True}


def _resolve_titles(lang: str, titles, pageviews, fraction: float, max_titles: int | None, progress: bool) -> tuple[list[str], dict]:
    if titles is not None and pageviews is not None:
        raise ParameterError("give titles or pageviews, not both")
    if isinstance(titles, (str, os.PathLike)):
        titles, pageviews = None, titles
    if titles is None and pageviews is None:
        return [], {"used": False}
    info: dict = {"used": True, "top_fraction": fraction, "max_entries": max_titles}
    if pageviews is not None:
        paths = [pageviews] if isinstance(pageviews, (str, os.PathLike)) else list(pageviews)
        titles = read_pageviews(paths, languages=[lang], progress=progress).get(lang.replace("-", "_"), Counter())
        info["pageview_files"] = len(paths)
    if isinstance(titles, Mapping):
        info["distinct"] = sum(1 for v in titles.values() if v > 0)
        out = title_entries(titles, top_fraction=fraction, max_entries=max_titles)
        info["cap_hit"] = max_titles is not None and len(out) == max_titles and info["distinct"] * fraction > max_titles
        return out, info
    out = list(titles)  # an already ranked selection: only the hard cap applies
    info.update(given=True, top_fraction=None)
    if max_titles is not None and len(out) > max_titles:
        out = out[:max_titles]
        info["cap_hit"] = True
    return out, info


def _given_list(values, cap: int | None, info: dict) -> list[str]:
    out = list(values)
    info["given"] = True
    if cap is not None and len(out) > cap:
        out = out[:cap]
        info["cap_hit"] = True
    return out


def build_metadata(
    lang: str,
    *,
    wordnet="auto",
    ngrams=None,
    unigrams: Sequence[str] | None = None,
    bigrams: Sequence[str] | None = None,
    titles=None,
    pageviews=None,
    numbers: bool = True,
    head_word_only: bool = False,
    unigram_fraction: float = DEFAULT_UNIGRAM_FRACTION,
    max_unigrams: int | None = DEFAULT_MAX_UNIGRAMS,
    bigram_method: str = "pmi",
    min_pmi: float = DEFAULT_MIN_PMI,
    max_bigrams: int | None = DEFAULT_MAX_BIGRAMS,
    bigram_joiner: str | None = None,
    title_fraction: float = DEFAULT_TITLE_FRACTION,
    max_titles: int | None = DEFAULT_MAX_TITLES,
    max_length: int = DEFAULT_MAX_LENGTH,
    progress: bool = False,
) -> MetadataBuild:
    """Build one language's metadata from its sources (SPEC §1).

    Parameters
    ----------
    lang : str
        Wikipedia code (``"en"``, ``"zh_yue"`` …).
    wordnet : ``"auto"``, bool, None or sequence of str
        ``"auto"``: the language's WordNet/OMW lemmas if it is in
        :data:`~metaclip2.metadata.wordnet.WORDNET_LANGUAGES`, else none. ``True``: look it
        up (an error if nltk has no such language code). ``None``/``False``: no WordNet.
        A sequence: these strings, as given.
    ngrams : NgramCounts, path or None
        Wikipedia n-gram counts (an object or a file saved by ``NgramCounts.save``); the
        unigram and bigram sources are ranked and capped from it.
    unigrams, bigrams : sequence of str, optional
        Already ranked selections, used instead of `ngrams` for that source (only the
        ``max_*`` cap applies).
    titles : mapping, sequence or None
        Title -> views mapping (ranked and capped here, e.g. one language of
        :func:`~metaclip2.metadata.pageviews.read_pageviews`), or an already ranked title
        list (only `max_titles` applies).
    pageviews : path or sequence of paths, optional
        Page-view files, read for `lang` and then ranked and capped (instead of `titles`).
    numbers : bool
        Start with ``"0"`` … ``"99"``.
    head_word_only : bool
        English WordNet as in MetaCLIP 1 (each synset's first lemma only).
    unigram_fraction, max_unigrams : float, int or None
        Keep the top `unigram_fraction` of distinct unigrams by frequency, at most
        `max_unigrams` (None: no cap).
    bigram_method, min_pmi, max_bigrams, bigram_joiner :
        Bigram ranking (``"pmi"`` or ``"corrected"``), PMI threshold (log2), cap, and the
        string joining the two words (None: a space, or nothing for languages written
        without spaces).
    title_fraction, max_titles : float, int or None
        Keep the top `title_fraction` of titles by views, at most `max_titles`.
    max_length : int
        Drop strings longer than this many characters.
    progress : bool
        Progress bars (stderr) while reading WordNet and page-view files.

    Returns
    -------
    MetadataBuild
    """
    summary_sources: dict[str, dict] = {}
    candidates: dict[str, list[str]] = {}

    numbers_info: dict = {"used": bool(numbers)}
    candidates["number"] = [str(i) for i in range(100)] if numbers else []
    summary_sources["number"] = numbers_info

    wn_list, wn_info = _resolve_wordnet(lang, wordnet, head_word_only, progress)
    candidates["wordnet"], summary_sources["wordnet"] = wn_list, wn_info

    counts = _load_ngrams(ngrams)
    uni_info: dict = {"used": unigrams is not None or counts is not None, "top_fraction": unigram_fraction, "max_entries": max_unigrams}
    if unigrams is not None:
        uni = _given_list(unigrams, max_unigrams, uni_info)
        uni_info["top_fraction"] = None
    elif counts is not None:
        from metaclip2.metadata.ngrams import unigram_entries

        uni = unigram_entries(counts, top_fraction=unigram_fraction, max_entries=max_unigrams)
        uni_info["distinct"] = len(counts.unigrams)
        uni_info["tokens"] = int(counts.n_tokens)
        uni_info["cap_hit"] = max_unigrams is not None and len(uni) >= max_unigrams
    else:
        uni = []
    candidates["unigram"], summary_sources["unigram"] = uni, uni_info

    bi_info: dict = {
        "used": bigrams is not None or counts is not None,
        "method": bigram_method,
        "min_pmi": min_pmi,
        "max_entries": max_bigrams,
    }
    if bigrams is not None:
        bi = _given_list(bigrams, max_bigrams, bi_info)
        bi_info.update(method=None, min_pmi=None)
    elif counts is not None:
        from metaclip2.metadata.ngrams import bigram_entries

        bi = bigram_entries(counts, lang, method=bigram_method, min_pmi=min_pmi, max_entries=max_bigrams, joiner=bigram_joiner)
        bi_info["distinct"] = len(counts.bigrams)
        bi_info["cap_hit"] = max_bigrams is not None and len(bi) >= max_bigrams
    else:
        bi = []
    candidates["bigram"], summary_sources["bigram"] = bi, bi_info

    candidates["title"], summary_sources["title"] = _resolve_titles(lang, titles, pageviews, title_fraction, max_titles, progress)

    entries: list[str] = []
    sources: list[str] = []
    seen: set[str] = set()
    for name in SOURCES:
        cand = candidates[name]
        kept, dropped = clean_source(cand, max_length=max_length)
        added = duplicates = 0
        for s in kept:
            if s in seen:
                duplicates += 1
                continue
            seen.add(s)
            entries.append(s)
            sources.append(name)
            added += 1
        info = summary_sources[name]
        info.update(candidates=len(cand), dropped=dropped, duplicates=duplicates, entries=added)

    summary = {
        "lang": lang,
        "entries": len(entries),
        "digest": entries_digest(entries),
        "entries_per_source": {name: summary_sources[name]["entries"] for name in SOURCES},
        "candidates_per_source": {name: summary_sources[name]["candidates"] for name in SOURCES},
        "dropped_by_filter": {r: sum(summary_sources[n]["dropped"][r] for n in SOURCES) for r in _DROP_REASONS},
        "sources": summary_sources,
        "max_length": max_length,
    }
    return MetadataBuild(lang=lang, entries=entries, sources=sources, summary=summary)


def write_language_metadata(result: MetadataBuild, out_dir: PathLike) -> tuple[Path, Path]:
    """Write ``<lang>.tsv`` (entries and their sources) and ``<lang>.summary.json`` into `out_dir`.

    Both files depend only on `result`, so equal builds give byte-identical files.

    Returns
    -------
    (Path, Path)
        The metadata file and the summary file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tsv = out / f"{result.lang}.tsv"
    write_metadata(tsv, result.entries, result.sources, lang=result.lang)
    js = out / f"{result.lang}.summary.json"
    write_text(js, json.dumps(result.summary, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    return tsv, js
