"""Merge the four sources into one language's metadata ([1. Metadata][1-metadata]).

Order: the strings ``"0"`` … ``"99"``, then WordNet, Wikipedia unigrams, Wikipedia bigrams,
Wikipedia titles. Every string is stripped and dropped if it is empty, longer than
``max_length`` characters, made only of punctuation, or holds a tab/newline/CR; the first
source to add a string wins.

Caps count what a source adds ([Caps][caps], as the authors' release does): a ranked source's cap
is ``min(upper_bound, floor(fraction × distinct))`` (bigrams: ``min(upper_bound, bigrams above
the threshold)``), and the source walks its ranked list, skipping filtered strings and strings
an earlier source added, until it has added that many. ``cap_mode="candidates"`` keeps the
earlier behaviour (cut the ranked list first). Every step is order-deterministic, so two
builds from the same inputs give byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from metaclip2.core.charclass import only_punctuation
from metaclip2.core.entries import entries_digest, write_metadata
from metaclip2.metadata.pageviews import DEFAULT_MAX_TITLES, DEFAULT_TITLE_FRACTION, read_pageviews
from metaclip2.core.errors import ParameterError
from metaclip2.core.atomic import write_text

__all__ = [
    "SOURCES",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_UNIGRAM_FRACTION",
    "DEFAULT_MAX_UNIGRAMS",
    "DEFAULT_MIN_PMI",
    "DEFAULT_MAX_BIGRAMS",
    "CAP_MODES",
    "MetadataBuild",
    "MetadataWarning",
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

#: How a source's cap counts: strings added after the filters and the dedupe (default), or
#: ranked candidates before them (the earlier behaviour).
CAP_MODES = ("added", "candidates")

_DROP_REASONS = ("empty", "too_long", "punctuation", "control")
_CONTROLS = ("\t", "\n", "\r")

PathLike = str | os.PathLike


class MetadataWarning(UserWarning):
    """A language's metadata came out degenerate (e.g. nothing besides the numbers)."""


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
        ``sources[i]`` is the source (one of [`SOURCES`][metaclip2.metadata.build.SOURCES]) that added ``entries[i]``.
    summary : dict
        JSON-ready: entries and candidates per source, strings dropped per filter rule,
        duplicates of earlier sources, caps and parameters used, digest.

    See Also
    --------
    - [`build_metadata`][metaclip2.metadata.build.build_metadata] : Builds one.
    - [`write_language_metadata`][metaclip2.metadata.build.write_language_metadata] : Writes it.

    Examples
    --------
    >>> from metaclip2.metadata import build_metadata
    >>> built = build_metadata("en", wordnet=["dog", "cat"], unigrams=["dog", "park"], numbers=False)
    >>> built.entries, built.sources
    (['dog', 'cat', 'park'], ['wordnet', 'wordnet', 'unigram'])
    >>> built.summary["sources"]["unigram"]["duplicates"]  # "dog" was already there
    1
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
    """Apply the [Filters on every source][filters-on-every-source] to one source's strings.

    Strips each string, then drops it when empty, longer than `max_length` characters,
    made only of punctuation (and white space), or holding a tab, newline or carriage
    return. Order is kept; duplicates are not removed here.

    Returns
    -------
    (list of str, dict of str -> int)
        The kept strings and the number dropped per rule
        (``empty``, ``too_long``, ``punctuation``, ``control``).

    See Also
    --------
    - [`build_metadata`][metaclip2.metadata.build.build_metadata] : Applies it to every source.

    Examples
    --------
    >>> from metaclip2.metadata.build import clean_source
    >>> clean_source(["  dog ", "", "!!", "New\\tYork", "x" * 300, "cat"])
    (['dog', 'cat'], {'empty': 1, 'too_long': 1, 'punctuation': 1, 'control': 1})
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


def _drop_reason(s: str, max_length: int) -> str | None:
    """The filter rule dropping an already stripped string, or None to keep it."""
    if not s:
        return "empty"
    if len(s) > max_length:
        return "too_long"
    if any(c in s for c in _CONTROLS):
        return "control"
    if only_punctuation(s):
        return "punctuation"
    return None


def _fraction_cap(fraction: float, distinct: int, upper: int | None) -> int:
    """``min(upper, floor(fraction * distinct))``; the epsilon keeps 0.29 * 100 at 29."""
    if not 0.0 <= fraction <= 1.0:
        raise ParameterError(f"fraction must be within [0, 1], got {fraction}")
    cap = math.floor(fraction * distinct + 1e-9)
    return cap if upper is None else min(cap, upper)


class _Ranked:
    """A source's ranked candidates: ``top(k) -> (number ranked, best k strings)`` and its cap rule."""

    def __init__(self, top: Callable[[int], tuple[int, list[str]]], cap: Callable[[int], int], info: dict):
        self.top, self.cap, self.info = top, cap, info


def _list_source(values: Sequence[str], upper: int | None, info: dict) -> _Ranked:
    values = list(values)
    info["given"] = True
    return _Ranked(lambda k: (len(values), values[:k]), lambda n: n if upper is None else min(n, upper), info)


def _mapping_source(views: Mapping[str, int], fraction: float, upper: int | None, info: dict) -> _Ranked:
    ranked = [t for t, _ in sorted(((t, v) for t, v in views.items() if v > 0), key=lambda tv: (-tv[1], tv[0]))]
    return _Ranked(lambda k: (len(ranked), ranked[:k]), lambda n: _fraction_cap(fraction, n, upper), info)


def _ngram_sources(counts, lang: str, unigram_fraction, max_unigrams, method, min_pmi, max_bigrams, joiner, uni_info, bi_info):
    """Ranked unigram and bigram sources from an `NgramCounts` or an `NgramFile`."""
    from metaclip2.metadata.ngrams import NgramCounts, NgramFile, score_bigrams, top_ranked
    from metaclip2.metadata.tokenizer import is_no_space_language, normalize_lang

    if joiner is None:
        joiner = "" if is_no_space_language(normalize_lang(lang)) else " "
    threshold = min_pmi if method == "pmi" else 0.0
    uni_info["tokens"] = int(counts.n_tokens)
    if isinstance(counts, NgramCounts):
        words = [w for w, _ in sorted(((w, c) for w, c in counts.unigrams.items() if c >= 1), key=lambda wc: (-wc[1], wc[0]))]
        uni_top = lambda k: (len(words), words[:k])  # noqa: E731
        scored = score_bigrams(counts, method)
        pairs = [f"{a}{joiner}{b}" for (a, b), sc in scored if sc > threshold]
        bi_top = lambda k: (len(pairs), pairs[:k])  # noqa: E731
        bi_info["distinct"] = len(counts.bigrams)
    else:
        assert isinstance(counts, NgramFile)

        def uni_top(k: int):
            return top_ranked(counts.unigram_chunks(), k, float("-inf"))

        def bi_top(k: int):
            total = 0

            def chunks():
                nonlocal total
                for scores, pairs in counts.bigram_chunks(method):
                    total += len(pairs)
                    yield scores, pairs

            n, best = top_ranked(chunks(), k, threshold)
            bi_info["distinct"] = total
            return n, [f"{a}{joiner}{b}" for a, b in best]

    uni = _Ranked(uni_top, lambda n: _fraction_cap(unigram_fraction, n, max_unigrams), uni_info)
    bi = _Ranked(bi_top, lambda n: n if max_bigrams is None else min(n, max_bigrams), bi_info)
    return uni, bi


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


def _title_source(lang: str, titles, pageviews, fraction: float, max_titles: int | None, progress: bool) -> _Ranked | None:
    if titles is not None and pageviews is not None:
        raise ParameterError("give titles or pageviews, not both")
    if isinstance(titles, (str, os.PathLike)):
        titles, pageviews = None, titles
    if titles is None and pageviews is None:
        return None
    info: dict = {"used": True, "top_fraction": fraction, "max_entries": max_titles}
    if pageviews is not None:
        paths = [pageviews] if isinstance(pageviews, (str, os.PathLike)) else list(pageviews)
        titles = read_pageviews(paths, languages=[lang], progress=progress).get(lang.replace("-", "_"), Counter())
        info["pageview_files"] = len(paths)
    if isinstance(titles, Mapping):
        return _mapping_source(titles, fraction, max_titles, info)
    info["top_fraction"] = None  # an already ranked selection: only the hard cap applies
    return _list_source(titles, max_titles, info)


def _add_ranked(src: _Ranked, cap_mode: str, seen: set, entries: list, sources: list, name: str, max_length: int) -> None:
    """Add a ranked source's strings after the filters and the dedupe; fill ``src.info``."""
    info = src.info
    given = bool(info.get("given"))
    dropped = dict.fromkeys(_DROP_REASONS, 0)
    added = duplicates = read = taken = 0
    own: set[str] = set()
    k = 1024 + len(seen) + (info.get("max_entries") or 0)
    ranked_n, ranked = src.top(k)
    if cap_mode == "added" or given or name == "bigram":
        cap = src.cap(ranked_n)
    else:  # the earlier behaviour rounded fractions up
        cap = _ceil_cap(src, ranked_n)
    while True:
        for s in ranked[read:]:
            if taken >= cap:
                break
            read += 1
            if cap_mode == "candidates":
                if name == "bigram" and not given:
                    if s in own:
                        continue  # the earlier code deduplicated joined bigrams before capping
                    own.add(s)
                taken += 1
            s = s.strip()
            reason = _drop_reason(s, max_length)
            if reason is not None:
                dropped[reason] += 1
            elif s in seen:
                duplicates += 1
            else:
                seen.add(s)
                entries.append(s)
                sources.append(name)
                added += 1
                if cap_mode == "added":
                    taken = added
        if taken >= cap or len(ranked) < k:
            break
        k *= 4
        ranked_n, ranked = src.top(k)
    upper = info.get("max_entries")
    if name == "bigram" and not given:
        info["above_threshold"] = ranked_n
    else:
        info["distinct"] = ranked_n
    info.update(
        cap=cap,
        cap_mode=cap_mode,
        cap_hit=upper is not None and cap == upper,
        candidates=read,
        dropped=dropped,
        duplicates=duplicates,
        entries=added,
    )


def _ceil_cap(src: _Ranked, n: int) -> int:
    fraction = src.info.get("top_fraction")
    upper = src.info.get("max_entries")
    cap = math.ceil(fraction * n - 1e-9)
    return cap if upper is None else min(cap, upper)


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
    cap_mode: str = "added",
    progress: bool = False,
) -> MetadataBuild:
    """Build one language's metadata from its sources ([1. Metadata][1-metadata]).

    Parameters
    ----------
    lang : str
        Wikipedia code (``"en"``, ``"zh_yue"`` …).
    wordnet : ``"auto"``, bool, None or sequence of str
        ``"auto"``: the language's WordNet/OMW lemmas if it is in
        [`WORDNET_LANGUAGES`][metaclip2.metadata.wordnet.WORDNET_LANGUAGES], else none. ``True``: look it
        up (an error if nltk has no such language code). ``None``/``False``: no WordNet.
        A sequence: these strings, as given.
    ngrams : NgramCounts, NgramFile, path or None
        Wikipedia n-gram counts (an object, or a file written by ``write_dump_ngrams`` /
        ``NgramCounts.save``, ranked from the file in bounded memory); the unigram and
        bigram sources are ranked from it.
    unigrams, bigrams : sequence of str, optional
        Already ranked selections, used instead of `ngrams` for that source (only the
        ``max_*`` cap applies).
    titles : mapping, sequence or None
        Title -> views mapping (ranked here, e.g. one language of
        [`read_pageviews`][metaclip2.metadata.pageviews.read_pageviews]), or an already ranked title
        list (only `max_titles` applies).
    pageviews : path or sequence of paths, optional
        Page-view files, read for `lang` and then ranked (instead of `titles`).
    numbers : bool
        Start with ``"0"`` … ``"99"``.
    head_word_only : bool
        English WordNet as in MetaCLIP 1 (each synset's first lemma only).
    unigram_fraction, max_unigrams : float, int or None
        Unigram cap ``min(max_unigrams, floor(unigram_fraction * distinct unigrams))``
        (None: no upper bound).
    bigram_method, min_pmi, max_bigrams, bigram_joiner :
        Bigram ranking (``"pmi"`` or ``"corrected"``), PMI threshold (log2), cap
        ``min(max_bigrams, bigrams above the threshold)``, and the string joining the two
        words (None: a space, or nothing for languages written without spaces).
    title_fraction, max_titles : float, int or None
        Title cap ``min(max_titles, floor(title_fraction * titles with views))``.
    max_length : int
        Drop strings longer than this many characters.
    cap_mode : {"added", "candidates"}
        ``"added"`` (the release; [Caps][caps]): a source adds strings from its ranked list,
        skipping filtered strings and strings of earlier sources, until it has *added* its
        cap. ``"candidates"``: the earlier behaviour of this library, which cut the ranked
        list to the cap (fractions rounded up) before filtering and deduplicating, so a
        source added fewer entries than its cap.
    progress : bool
        Progress bars (stderr) while reading WordNet and page-view files.

    Returns
    -------
    MetadataBuild
        Its summary records per source the raw distinct count, the cap and the entries
        added, and a ``warnings`` list (also issued as `MetadataWarning`, shown on stderr)
        when the language got nothing besides the numbers.

    See Also
    --------
    - [`write_language_metadata`][metaclip2.metadata.build.write_language_metadata] : Writes the result.
    - [`write_dump_ngrams`][metaclip2.metadata.ngrams.write_dump_ngrams] : The n-gram counts of a Wikipedia dump.
    - [`read_pageviews`][metaclip2.metadata.pageviews.read_pageviews] : The page views behind the titles.
    - [`build_lid_metadata`][metaclip2.matching.lid_metadata.build_lid_metadata] : Merges languages for matching.

    Examples
    --------
    From sources at hand: earlier sources win, so each string is kept once, by the first:

    >>> from metaclip2.metadata import build_metadata
    >>> built = build_metadata(
    ...     "en",
    ...     wordnet=["dog", "cat", "New York"],
    ...     unigrams=["dog", "park", "the"],
    ...     bigrams=["New York", "dog park"],
    ...     titles={"Dog": 717, "Cat": 298, "New York City": 120},
    ...     numbers=False,
    ... )
    >>> list(zip(built.entries, built.sources))  # doctest: +NORMALIZE_WHITESPACE
    [('dog', 'wordnet'), ('cat', 'wordnet'), ('New York', 'wordnet'), ('park', 'unigram'), ('the', 'unigram'),
     ('dog park', 'bigram'), ('Dog', 'title'), ('Cat', 'title')]

    French from the bundled sample sources (a WordNet list and two page-view files):

    >>> from importlib.resources import files
    >>> demo = files("metaclip2") / "data" / "demo"
    >>> wordnet = (demo / "wordnet" / "fr.txt").read_text(encoding="utf-8").splitlines()
    >>> pageviews = sorted(str(p) for p in (demo / "pageviews").iterdir())
    >>> built = build_metadata("fr", wordnet=wordnet, pageviews=pageviews)
    >>> built.summary["entries_per_source"]
    {'number': 100, 'wordnet': 60, 'unigram': 0, 'bigram': 0, 'title': 53}
    >>> built.entries[100:103], built.entries[-2:]
    (['chien', 'chat', 'oiseau'], ['Pain', 'Football'])
    """
    if cap_mode not in CAP_MODES:
        raise ParameterError(f"cap_mode must be one of {CAP_MODES}, got {cap_mode!r}")
    if bigram_method not in ("pmi", "corrected"):
        raise ParameterError(f"bigram_method must be 'pmi' or 'corrected', not {bigram_method!r}")
    for name, fr in (("unigram_fraction", unigram_fraction), ("title_fraction", title_fraction)):
        if not 0.0 <= fr <= 1.0:
            raise ParameterError(f"{name} must be within [0, 1], got {fr}")
    summary_sources: dict[str, dict] = {}
    entries: list[str] = []
    sources: list[str] = []
    seen: set[str] = set()

    def add_all(name: str, strings: list[str], info: dict) -> None:
        kept, dropped = clean_source(strings, max_length=max_length)
        added = duplicates = 0
        for s in kept:
            if s in seen:
                duplicates += 1
                continue
            seen.add(s)
            entries.append(s)
            sources.append(name)
            added += 1
        info.update(candidates=len(strings), dropped=dropped, duplicates=duplicates, entries=added)
        summary_sources[name] = info

    add_all("number", [str(i) for i in range(100)] if numbers else [], {"used": bool(numbers)})
    wn_list, wn_info = _resolve_wordnet(lang, wordnet, head_word_only, progress)
    add_all("wordnet", wn_list, wn_info)

    counts = _load_ngrams(ngrams)
    uni_info: dict = {"used": unigrams is not None or counts is not None, "top_fraction": unigram_fraction, "max_entries": max_unigrams}
    bi_info: dict = {"used": bigrams is not None or counts is not None, "method": bigram_method, "min_pmi": min_pmi, "max_entries": max_bigrams}
    uni_src = bi_src = None
    if counts is not None:
        uni_src, bi_src = _ngram_sources(counts, lang, unigram_fraction, max_unigrams, bigram_method, min_pmi, max_bigrams, bigram_joiner, uni_info, bi_info)
    if unigrams is not None:
        uni_info["top_fraction"] = None
        uni_src = _list_source(unigrams, max_unigrams, uni_info)
    if bigrams is not None:
        bi_info.update(method=None, min_pmi=None)
        bi_src = _list_source(bigrams, max_bigrams, bi_info)
    title_src = _title_source(lang, titles, pageviews, title_fraction, max_titles, progress)
    for name, src, info in (("unigram", uni_src, uni_info), ("bigram", bi_src, bi_info), ("title", title_src, {"used": False})):
        if src is None:
            add_all(name, [], info)
        else:
            _add_ranked(src, cap_mode, seen, entries, sources, name, max_length)
            summary_sources[name] = src.info

    summary = {
        "lang": lang,
        "entries": len(entries),
        "digest": entries_digest(entries),
        "entries_per_source": {name: summary_sources[name]["entries"] for name in SOURCES},
        "candidates_per_source": {name: summary_sources[name]["candidates"] for name in SOURCES},
        "dropped_by_filter": {r: sum(summary_sources[n]["dropped"][r] for n in SOURCES) for r in _DROP_REASONS},
        "sources": summary_sources,
        "max_length": max_length,
        "cap_mode": cap_mode,
        "warnings": [],
    }
    if all(summary_sources[n]["entries"] == 0 for n in SOURCES if n != "number"):
        msg = f"{lang}: no entries besides the numbers 0..99 (no WordNet for this language and no dump, titles or lists given?)"
        summary["warnings"].append(msg)
        warnings.warn(msg, MetadataWarning, stacklevel=2)
    return MetadataBuild(lang=lang, entries=entries, sources=sources, summary=summary)


def _load_ngrams(ngrams):
    if ngrams is None or not isinstance(ngrams, (str, os.PathLike)):
        return ngrams
    from metaclip2.metadata.ngrams import NgramFile

    return NgramFile(ngrams)


def write_language_metadata(result: MetadataBuild, out_dir: PathLike) -> tuple[Path, Path]:
    """Write ``<lang>.tsv`` (entries and their sources) and ``<lang>.summary.json`` into `out_dir`.

    Both files depend only on `result`, so equal builds give byte-identical files.

    Returns
    -------
    (Path, Path)
        The metadata file and the summary file.

    See Also
    --------
    - [`read_metadata`][metaclip2.core.entries.read_metadata] : Reads the ``.tsv`` back.
    - [`build_lid_metadata`][metaclip2.matching.lid_metadata.build_lid_metadata] : Merges such files per LID language.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.metadata import build_metadata, write_language_metadata
    >>> built = build_metadata("en", wordnet=["dog", "cat"], bigrams=["New York"], numbers=False)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     tsv, summary = write_language_metadata(built, tmp)
    ...     print(tsv.name, summary.name)
    ...     print(tsv.read_text(encoding="utf-8"))
    en.tsv en.summary.json
    # metaclip2 metadata	lang=en	entries=3	digest=...
    entry	source
    dog	wordnet
    cat	wordnet
    New York	bigram
    <BLANKLINE>
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tsv = out / f"{result.lang}.tsv"
    write_metadata(tsv, result.entries, result.sources, lang=result.lang)
    js = out / f"{result.lang}.summary.json"
    write_text(js, json.dumps(result.summary, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    return tsv, js
