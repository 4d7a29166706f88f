"""Wikipedia titles ranked by page views ([Titles from page views][titles-from-page-views]).

Input: Wikimedia's hourly ``pageviews-YYYYMMDD-HH0000.gz`` files, one line per page::

    domain_code page_title count_views total_response_size

``domain_code`` is ``<lang>`` for desktop Wikipedia and ``<lang>.m`` for mobile Wikipedia;
other projects carry a suffix (``en.d`` Wiktionary, ``en.b`` Wikibooks, ``en.m.d`` mobile
Wiktionary, ``commons.m``, ``www.wd`` …) and are not Wikipedia, so they are excluded
(the authors' release folds them in by mistake). Language codes are returned as in dump
names: ``zh-yue`` (domain) becomes ``zh_yue`` (``zh_yuewiki-…``).
"""

from __future__ import annotations

import gzip
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from metaclip2.core.errors import ParameterError

__all__ = [
    "PageviewStats",
    "domain_language",
    "read_pageviews",
    "pageview_titles",
    "title_entries",
    "DEFAULT_TITLE_FRACTION",
    "DEFAULT_MAX_TITLES",
]

#: Share of distinct titles kept (see the algorithm guide, "Sources and constants").
DEFAULT_TITLE_FRACTION = 0.76
#: Cap on titles per language: the size of the English title set (see the algorithm guide, "Sources and constants").
DEFAULT_MAX_TITLES = 61_235


@dataclass
class PageviewStats:
    """Line counts of a page-view read: kept, excluded per rule, malformed.

    See Also
    --------
    - [`read_pageviews`][metaclip2.metadata.pageviews.read_pageviews] : Fills it.

    Examples
    --------
    >>> from importlib.resources import files
    >>> demo = files("metaclip2") / "data" / "demo"
    >>> paths = sorted(str(p) for p in (demo / "pageviews").iterdir())  # two hourly files
    >>> from metaclip2.metadata.pageviews import PageviewStats, read_pageviews
    >>> stats = PageviewStats()
    >>> _ = read_pageviews(paths, progress=False, stats=stats)
    >>> stats
    PageviewStats(files=2, lines=2492, kept=2370, other_project=18, namespace=36, zero_views=68, malformed=0, malformed_examples=[])
    """

    files: int = 0
    lines: int = 0
    kept: int = 0
    other_project: int = 0
    namespace: int = 0
    zero_views: int = 0
    malformed: int = 0
    malformed_examples: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "malformed_examples"}


def domain_language(domain_code: str) -> str | None:
    """Language of a Wikipedia domain code, or None when the code is another project.

    ``"en"`` and ``"en.m"`` -> ``"en"``; ``"zh-yue.m"`` -> ``"zh_yue"``;
    ``"en.d"``, ``"en.m.d"``, ``"commons.m"``-style codes with a project suffix -> None.

    Examples
    --------
    >>> from metaclip2.metadata.pageviews import domain_language
    >>> [domain_language(d) for d in ("en", "en.m", "zh-yue.m", "en.d", "commons.m")]
    ['en', 'en', 'zh_yue', None, None]
    """
    lang, dot, rest = domain_code.partition(".")
    if dot and rest != "m":
        return None
    if not lang or lang in ("www", "commons", "meta", "species", "incubator", "wikidata"):
        return None
    return lang.replace("-", "_")


def _open(path: Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if path.suffix == ".bz2":
        import bz2

        return bz2.open(path, "rb")
    return open(path, "rb")


def read_pageviews(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    languages: Iterable[str] | None = None,
    progress: bool = True,
    stats: PageviewStats | None = None,
) -> dict[str, Counter]:
    """Sum page views per (language, title) over page-view files, streaming.

    Parameters
    ----------
    paths : path or iterable of paths
        ``pageviews-*.gz`` files (gzip, bz2 or plain text; UTF-8, undecodable bytes replaced).
    languages : iterable of str, optional
        Keep only these languages (dump-style codes, e.g. ``"en"``, ``"zh_yue"``); all if None.
    progress : bool
        Show a tqdm bar over files on stderr.
    stats : PageviewStats, optional
        Filled with line counts (kept, excluded per rule, malformed).

    Returns
    -------
    dict of str -> collections.Counter
        Language -> title -> total views (int). Mobile ``xx.m`` counts as ``xx``; titles
        with ``:`` and zero-view lines are dropped; ``_`` in titles becomes a space.

    See Also
    --------
    - [`title_entries`][metaclip2.metadata.pageviews.title_entries] : Ranks one language's titles.
    - [`PageviewStats`][metaclip2.metadata.pageviews.PageviewStats] : What was kept and excluded.

    Examples
    --------
    >>> from importlib.resources import files
    >>> demo = files("metaclip2") / "data" / "demo"
    >>> paths = sorted(str(p) for p in (demo / "pageviews").iterdir())  # two hourly files
    >>> from metaclip2.metadata import read_pageviews
    >>> views = read_pageviews(paths, languages=["fr", "ja"], progress=False)
    >>> sorted(views), views["fr"].most_common(3)
    (['fr', 'ja'], [('Chat', 529), ('Chien', 290), ('Oiseau', 255)])
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    wanted = None if languages is None else {l.replace("-", "_") for l in languages}
    stats = stats if stats is not None else PageviewStats()
    out: dict[str, Counter] = {}
    lang_of: dict[bytes, str | None] = {}
    from tqdm.auto import tqdm

    for path in tqdm(paths, desc="page views", unit="file", disable=not progress):
        stats.files += 1
        with _open(path) as f:
            for raw in f:
                stats.lines += 1
                parts = raw.split(b" ")
                if len(parts) != 4 or not parts[1]:
                    stats.malformed += 1
                    if len(stats.malformed_examples) < 5:
                        stats.malformed_examples.append(raw[:200])
                    continue
                dom = parts[0]
                lang = lang_of.get(dom, "?")
                if lang == "?":
                    lang = lang_of[dom] = domain_language(dom.decode("ascii", "replace"))
                if lang is None:
                    stats.other_project += 1
                    continue
                if wanted is not None and lang not in wanted:
                    continue
                try:
                    views = int(parts[2])
                except ValueError:
                    views = -1
                if views < 0:
                    stats.malformed += 1
                    if len(stats.malformed_examples) < 5:
                        stats.malformed_examples.append(raw[:200])
                    continue
                if views == 0:
                    stats.zero_views += 1
                    continue
                title = parts[1].decode("utf-8", "replace")
                if ":" in title:
                    stats.namespace += 1
                    continue
                title = title.replace("_", " ")
                c = out.get(lang)
                if c is None:
                    c = out[lang] = Counter()
                c[title] += views
                stats.kept += 1
    return out


def pageview_titles(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    languages: Iterable[str] | None = None,
    progress: bool = True,
) -> dict[str, Counter]:
    """Per-language title view totals over page-view files; see [`read_pageviews`][metaclip2.metadata.pageviews.read_pageviews].

    See Also
    --------
    - [`read_pageviews`][metaclip2.metadata.pageviews.read_pageviews] : The same, with line counts.

    Examples
    --------
    >>> from importlib.resources import files
    >>> demo = files("metaclip2") / "data" / "demo"
    >>> paths = sorted(str(p) for p in (demo / "pageviews").iterdir())  # two hourly files
    >>> from metaclip2.metadata import pageview_titles
    >>> sorted(pageview_titles(paths, progress=False))
    ['ar', 'de', 'en', 'es', 'fr', 'ja', 'ru', 'th', 'zh']
    """
    return read_pageviews(paths, languages=languages, progress=progress)


def title_entries(
    view_counts: Counter | dict[str, int],
    top_fraction: float = DEFAULT_TITLE_FRACTION,
    max_entries: int | None = DEFAULT_MAX_TITLES,
) -> list[str]:
    """Titles ranked by views, descending, capped ([Titles from page views][titles-from-page-views], [Caps][caps]).

    Parameters
    ----------
    view_counts : mapping of str -> int
        Title -> total views of one language (titles already cleaned).
    top_fraction : float
        Keep the top ``ceil(top_fraction * n)`` of the ``n`` titles with positive views
        (rounded up, as the unigram source does).
    max_entries : int or None
        Keep at most this many (None: no cap).

    Returns
    -------
    list of str
        Titles, most viewed first; ties broken by the title's code points, so the order is
        independent of input order.

    See Also
    --------
    - [`read_pageviews`][metaclip2.metadata.pageviews.read_pageviews] : The view counts.
    - [`build_metadata`][metaclip2.metadata.build.build_metadata] : Ranks titles this way (``titles=``, ``pageviews=``).

    Examples
    --------
    >>> from metaclip2.metadata import title_entries
    >>> title_entries({"Tokyo": 120, "Paris": 300, "Lima": 0, "Oslo": 120})
    ['Paris', 'Oslo', 'Tokyo']
    >>> title_entries({"Tokyo": 120, "Paris": 300, "Oslo": 120}, max_entries=1)
    ['Paris']
    """
    if not 0.0 <= top_fraction <= 1.0:
        raise ParameterError(f"top_fraction must be within [0, 1], got {top_fraction}")
    items = [(t, v) for t, v in view_counts.items() if v > 0]
    n = math.ceil(len(items) * top_fraction - 1e-9)  # 0.07 * 100 must give 7, not 8
    if max_entries is not None:
        n = min(n, max_entries)
    items.sort(key=lambda tv: (-tv[1], tv[0]))
    return [t for t, _ in items[:n]]
