"""Build the metadata of every language of a downloaded tree, then merge it per LID language.

Input: a tree laid out like the dump site (see [`metaclip2.metadata.download`][metaclip2.metadata.download])::

    <tree>/<code>wiki/<date>/<code>wiki-<date>-pages-articles.xml.bz2   (or pages-articlesN.xml-p…bz2 parts)
    <tree>/other/pageviews/**/pageviews-*.gz

Output (`out_dir`)::

    views/<pageviews-…>/<lang>.tsv     page views of one hourly file, split by language (views<TAB>title)
    ngrams/<lang>.ngrams               n-gram counts of the language's dump (+ <lang>.ngrams.json: its inputs)
    wikipedia/<lang>.tsv, .summary.json  per-Wikipedia metadata (numbers, WordNet/OMW, n-grams, titles)
    state/<lang>.json                  written last: inputs and digest of a finished language
    lid/<lidlang>.tsv, .matcher, index.json   per-LID-language metadata and matchers (what curation reads)
    summary.json                       entries per source per language

Every step is resumable: a page-view file whose split is done, n-gram counts whose inputs are
unchanged, and a language whose ``state`` file matches its inputs and whose metadata file
verifies against the recorded digest are not computed again. Languages run as tasks of an
executor (``map(fn, list_of_kwargs)``: local processes or Ray); dumps larger than
``split_bytes`` are counted first, one at a time, with the executor working on batches of
their articles instead.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from metaclip2.core.errors import MissingInputError, ParameterError
from metaclip2.core.atomic import AtomicFile, write_text

__all__ = [
    "MISSING_SEGMENTER_POLICIES",
    "LanguageSources",
    "WorldwideReport",
    "find_sources",
    "split_pageviews",
    "build_language",
    "build_all",
]

#: What [`build_all`][metaclip2.pipeline.builds.worldwide.build_all] does with a no-space language whose segmenter is not installed:
#: ``"error"`` (stop before building anything), ``"skip"`` (leave the language out),
#: ``"no-ngrams"`` (build it from numbers, WordNet and titles only).
MISSING_SEGMENTER_POLICIES = ("error", "skip", "no-ngrams")
_FORMAT = 1
_TABLE_SOURCES = ("number", "wordnet", "unigram", "bigram", "title")


@dataclass
class LanguageSources:
    """Input files of one language: its dump (one file or ordered parts) of one date."""

    lang: str
    date: str
    dumps: list[Path]

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.dumps)


def _code_of(wiki_dir: str) -> str | None:
    from metaclip2.core.languages import WIKIPEDIA_ALIASES, WIKIPEDIA_LANGUAGES

    if not wiki_dir.endswith("wiki"):
        return None
    code = wiki_dir[: -len("wiki")].replace("-", "_")
    code = WIKIPEDIA_ALIASES.get(code, code)
    return code if code in WIKIPEDIA_LANGUAGES else None


def _part_number(p: Path) -> int:
    # <wiki>-<date>-pages-articles12.xml-p…bz2 -> 12
    stem = p.name.split("-pages-articles", 1)[1]
    digits = stem.split(".xml", 1)[0]
    return int(digits) if digits.isdigit() else 0


def _dump_files(date_dir: Path, wiki: str, date: str) -> list[Path]:
    whole = date_dir / f"{wiki}-{date}-pages-articles.xml.bz2"
    if whole.is_file():
        return [whole]
    parts = [p for p in date_dir.glob(f"{wiki}-{date}-pages-articles[0-9]*.xml-p*.bz2") if p.is_file()]
    return sorted(parts, key=_part_number)


def find_sources(tree: str | os.PathLike, date: str | None = None) -> tuple[dict[str, LanguageSources], list[Path]]:
    """Dumps per Wikipedia code and the page-view files found under `tree`.

    Parameters
    ----------
    tree : path
        Root of a downloaded (or mirrored) tree.
    date : str, optional
        Dump date ``YYYYMMDD`` to use; default: per language, the latest date that has a dump.

    Returns
    -------
    (dict of str -> LanguageSources, list of Path)
        Languages sorted by code; page-view files sorted by name. Directories that are not
        a known Wikipedia (``commonswiki``, ``wikidatawiki`` …) and ``.part`` files are ignored.
    """
    tree = Path(tree)
    if not tree.is_dir():
        raise MissingInputError(f"{tree} is not a directory; download sources with `metaclip2 metadata download`")
    found: dict[str, LanguageSources] = {}
    for wiki_dir in sorted(p for p in tree.iterdir() if p.is_dir()):
        code = _code_of(wiki_dir.name)
        if code is None:
            continue
        dates = [date] if date else sorted((d.name for d in wiki_dir.iterdir() if d.is_dir() and d.name.isdigit()), reverse=True)
        for d in dates:
            files = _dump_files(wiki_dir / d, wiki_dir.name, d)
            if files:
                found[code] = LanguageSources(code, d, files)
                break
    pv_root = tree / "other" / "pageviews"
    pageviews = sorted((p for p in pv_root.rglob("pageviews-*.gz") if p.is_file()), key=lambda p: p.name) if pv_root.is_dir() else []
    return dict(sorted(found.items())), pageviews


# ---------------------------------------------------------------------------------------------
# Small on-disk records


def _write_json(path: Path, value) -> None:
    write_text(path, json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _files_key(paths: Iterable[Path]) -> list[list]:
    return [[p.name, p.stat().st_size] for p in paths]


# ---------------------------------------------------------------------------------------------
# Page views: each hourly file is read once, for every language


def split_pageviews(path: str, out_dir: str) -> dict:
    """Sum one page-view file per (language, title) and write ``<out_dir>/<lang>.tsv`` per language.

    Lines are ``views<TAB>title``, most viewed first. ``done.json`` is written last (source
    name and size, languages, line statistics); a directory whose ``done.json`` matches the
    source is left as it is. Peak memory: the distinct titles of one hourly file.

    Returns
    -------
    dict
        The content of ``done.json``.
    """
    from metaclip2.metadata.pageviews import PageviewStats, read_pageviews

    src, out = Path(path), Path(out_dir)
    key = [src.name, src.stat().st_size]
    done = _read_json(out / "done.json")
    if done is not None and done.get("source") == key:
        return done
    stats = PageviewStats()
    views = read_pageviews([src], progress=False, stats=stats)
    out.mkdir(parents=True, exist_ok=True)
    for lang, counts in views.items():
        if "/" in lang or lang.startswith("."):
            continue  # a malformed domain code; not a language
        with AtomicFile(out / f"{lang}.tsv", "w") as f:
            for title, v in sorted(counts.items(), key=lambda tv: (-tv[1], tv[0])):
                f.write(f"{v}\t{title}\n")
    done = {"source": key, "languages": sorted(views), "stats": stats.as_dict()}
    _write_json(out / "done.json", done)
    return done


def _language_views(view_dirs: list[str], lang: str) -> Counter:
    total: Counter = Counter()
    for d in view_dirs:
        p = Path(d) / f"{lang}.tsv"
        if not p.exists():
            continue
        with open(p, encoding="utf-8", newline="\n") as f:
            for line in f:
                v, _, title = line.rstrip("\n").partition("\t")
                total[title] += int(v)
    return total


# ---------------------------------------------------------------------------------------------
# One language


def _ngrams_ready(path: Path, dumps_key) -> bool:
    meta = _read_json(path.with_name(path.name + ".json"))
    return path.exists() and meta is not None and meta.get("dumps") == dumps_key


def _count_to_file(lang: str, dumps: list[str], path: Path, executor=None, progress: bool = False):
    """Count the dump (parts summed in order), save the counts atomically with their inputs; return them."""
    from metaclip2.metadata.ngrams import count_dump_ngrams

    total = None
    for d in dumps:
        part = count_dump_ngrams(d, lang, workers=1, progress=progress, executor=executor)
        total = part if total is None else total.merge(part)
    total.save(path)  # NgramCounts.save writes atomically
    _write_json(path.with_name(path.name + ".json"), {"dumps": _files_key(Path(d) for d in dumps), "lang": lang})
    return total


def _state_ok(out: Path, lang: str, fingerprint: dict) -> dict | None:
    from metaclip2.core.entries import MetadataError, read_metadata

    state = _read_json(out / "state" / f"{lang}.json")
    if state is None or state.get("fingerprint") != fingerprint:
        return None
    if "WordNet data absent" in _row(state)["flags"]:
        return None  # the data may have been installed since: try again (the counts are reused)
    tsv = out / "wikipedia" / f"{lang}.tsv"
    if not (out / "wikipedia" / f"{lang}.summary.json").exists():
        return None
    try:
        from metaclip2.core.entries import entries_digest

        if entries_digest(read_metadata(tsv)) != state.get("digest"):
            return None
    except (OSError, MetadataError):
        return None
    return state


def build_language(
    lang: str,
    dumps: list[str],
    view_dirs: list[str] | None,
    out_dir: str,
    build_kwargs: dict,
    fingerprint: dict,
) -> dict:
    """Build one language into ``<out_dir>/wikipedia`` (an executor task; arguments are plain data).

    Parameters
    ----------
    lang : str
        Wikipedia code.
    dumps : list of str
        Its dump (or ordered parts); empty: no n-gram sources.
    view_dirs : list of str or None
        Directories written by [`split_pageviews`][metaclip2.pipeline.builds.worldwide.split_pageviews]; None: no title source.
    out_dir : str
        The [`build_all`][metaclip2.pipeline.builds.worldwide.build_all] output root.
    build_kwargs : dict
        Keyword arguments of [`metaclip2.metadata.build.build_metadata`][metaclip2.metadata.build.build_metadata] (caps, WordNet).
    fingerprint : dict
        Inputs and parameters; stored in ``state/<lang>.json`` and compared on the next run.

    Returns
    -------
    dict
        The state record: ``fingerprint``, ``digest``, ``entries``, ``entries_per_source``,
        ``wordnet_entries_expected``, ``reused`` (True when nothing had to be rebuilt).
    """
    from metaclip2.metadata.build import build_metadata, write_language_metadata

    out = Path(out_dir)
    state = _state_ok(out, lang, fingerprint)
    if state is not None:
        return {**state, "reused": True}
    ngrams = None
    if dumps:
        ngrams = out / "ngrams" / f"{lang}.ngrams"
        if not _ngrams_ready(ngrams, _files_key(Path(d) for d in dumps)):
            ngrams = _count_to_file(lang, dumps, ngrams)
    titles = _language_views(view_dirs, lang) if view_dirs is not None else None
    result = build_metadata(lang, ngrams=ngrams, titles=titles, progress=False, **build_kwargs)
    write_language_metadata(result, out / "wikipedia")
    state = {
        "lang": lang,
        "fingerprint": fingerprint,
        "digest": result.digest,
        "entries": len(result.entries),
        "entries_per_source": result.counts(),
        "wordnet_used": bool(result.summary["sources"]["wordnet"].get("used")),
    }
    _write_json(out / "state" / f"{lang}.json", state)
    return {**state, "reused": False}


# ---------------------------------------------------------------------------------------------
# Every language


@dataclass
class WorldwideReport:
    """What [`build_all`][metaclip2.pipeline.builds.worldwide.build_all] did.

    Attributes
    ----------
    out_dir : Path
    rows : list of dict
        One per language, sorted by code: ``lang``, ``lid`` (LID language it is merged into),
        ``entries_per_source``, ``entries``, ``status`` (``built``, ``reused`` or
        ``skipped``) and ``flags`` (e.g. ``only numbers``).
    lid_index : dict
        ``lid/index.json``: per LID language, entries, digest, Wikipedias merged, matcher.
    """

    out_dir: Path
    rows: list[dict] = field(default_factory=list)
    lid_index: dict = field(default_factory=dict)

    def table(self) -> str:
        """The summary as an aligned text table (entries per source per language, flags)."""
        head = ["lang", "lid", *_TABLE_SOURCES, "total", "status", "flags"]
        lines = [head]
        for r in self.rows:
            eps = r.get("entries_per_source") or {}
            lines.append([r["lang"], r["lid"], *(str(eps.get(s, 0)) if eps else "-" for s in _TABLE_SOURCES),
                          str(r.get("entries", 0)) if eps else "-", r["status"], "; ".join(r["flags"])])  # fmt: skip
        built = [r for r in self.rows if r["status"] != "skipped"]
        lines.append(["all", f"{len(self.lid_index)} LID", *(str(sum((r.get("entries_per_source") or {}).get(s, 0) for r in built)) for s in _TABLE_SOURCES),
                      str(sum(r.get("entries", 0) for r in built)), f"{len(built)} langs", ""])  # fmt: skip
        widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
        right = set(range(2, 2 + len(_TABLE_SOURCES) + 1))
        return "\n".join(
            "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in lines
        )


def _resolve_executor(executor, workers: int, ray_address: str | None, progress: bool):
    if executor is None or isinstance(executor, str):
        from metaclip2.execution import get_executor

        return get_executor(executor or "local", workers=workers, ray_address=ray_address, progress=progress), True
    return executor, False


def _check_segmenters(langs: list[str]) -> dict[str, str]:
    from metaclip2.metadata.tokenizer import SegmenterUnavailable, is_no_space_language, segmenter

    missing = {}
    for lang in langs:
        if is_no_space_language(lang):
            try:
                segmenter(lang)
            except SegmenterUnavailable as e:
                missing[lang] = str(e)
    return missing


def build_all(
    tree: str | os.PathLike,
    out_dir: str | os.PathLike,
    languages: str | Iterable[str] = "all",
    *,
    date: str | None = None,
    pageviews: bool = True,
    executor: Any = None,
    workers: int = 1,
    ray_address: str | None = None,
    split_bytes: int = 256 << 20,
    missing_segmenter: str = "error",
    lid: bool = True,
    matchers: bool = True,
    progress: bool = True,
    **build_kwargs,
) -> WorldwideReport:
    """Build every language found in `tree` (or those named), then merge them per LID language.

    Parameters
    ----------
    tree : path
        Downloaded tree (see [`find_sources`][metaclip2.pipeline.builds.worldwide.find_sources]).
    out_dir : path
        Output root (see the module docstring); re-running resumes.
    languages : ``"all"``, ``"en,de"`` or list of str
        ``"all"``: every language with a dump in `tree`. Named languages must have one.
    date : str, optional
        Dump date to use (default: each language's latest).
    pageviews : bool
        Use the tree's page-view files for the title source.
    executor : None, ``"local"``, ``"ray"`` or executor object
        Runs the per-language builds (and page-view splits); an object is used as given and
        not closed. None/``"local"``: `workers` local processes.
    workers : int
        Local processes, or CPUs of a local Ray instance.
    ray_address : str, optional
        Ray cluster to join (``executor="ray"``).
    split_bytes : int
        Dumps at least this large are counted before the per-language tasks, one at a time,
        with the executor's workers on batches of articles (one task per language would
        leave the largest dumps on one core).
    missing_segmenter : {"error", "skip", "no-ngrams"}
        See [`MISSING_SEGMENTER_POLICIES`][metaclip2.pipeline.builds.worldwide.MISSING_SEGMENTER_POLICIES].
    lid : bool
        Merge into ``<out_dir>/lid`` (with `matchers`, also save one matcher per LID language).
    progress : bool
        Progress bars (stderr).
    **build_kwargs
        Passed to [`metaclip2.metadata.build.build_metadata`][metaclip2.metadata.build.build_metadata] (``wordnet``, caps …).

    Returns
    -------
    WorldwideReport

    Raises
    ------
    FileNotFoundError
        `tree` is missing, holds no dump, or a named language has no dump in it.
    metaclip2.metadata.tokenizer.SegmenterUnavailable
        ``missing_segmenter="error"`` and a no-space language's segmenter is missing (all
        such languages and their packages are named).
    """
    from metaclip2.core.languages import wikipedia_to_lid_language
    from metaclip2.metadata.download import resolve_languages
    from metaclip2.metadata.tokenizer import SegmenterUnavailable

    if missing_segmenter not in MISSING_SEGMENTER_POLICIES:
        raise ParameterError(f"missing_segmenter must be one of {MISSING_SEGMENTER_POLICIES}, got {missing_segmenter!r}")
    bad = set(build_kwargs) - _BUILD_KEYS
    if bad:
        raise TypeError(f"unknown build_metadata arguments: {sorted(bad)}")
    if int(split_bytes) < 0:
        raise ParameterError(f"split_bytes must be >= 0, got {split_bytes}")
    found, pv_files = find_sources(tree, date)
    if isinstance(languages, str) and languages.strip() == "all":
        langs = list(found)
        if not langs:
            raise MissingInputError(f"no <code>wiki/<date>/<code>wiki-<date>-pages-articles*.xml.bz2 dump under {tree}")
    else:
        langs = resolve_languages(languages)
        absent = [c for c in langs if c not in found]
        if absent:
            raise MissingInputError(
                f"no pages-articles dump under {tree} for: {', '.join(absent)}; "
                f"download them with `metaclip2 metadata download --languages {','.join(absent)}`"
            )
    out = Path(out_dir)
    if Path(tree).resolve() == out.resolve():
        raise ParameterError("out_dir must differ from the source tree")

    missing = _check_segmenters(langs)
    if missing and missing_segmenter == "error":
        raise SegmenterUnavailable(
            "no word segmenter for " + "; ".join(f"{l}: {m}" for l, m in missing.items())
            + ". Install it, or pass --missing-segmenter skip (leave them out) or no-ngrams (numbers, WordNet and titles only)"
        )
    skipped = set(missing) if missing_segmenter == "skip" else set()
    no_ngrams = set(missing) if missing_segmenter == "no-ngrams" else set()
    todo = [l for l in langs if l not in skipped]

    ex, own = _resolve_executor(executor, workers, ray_address, progress)
    try:
        view_dirs = None
        if pageviews and pv_files:
            view_dirs = [str(out / "views" / p.name[: -len(".gz")]) for p in pv_files]
            ex.map(split_pageviews, [{"path": str(p), "out_dir": d} for p, d in zip(pv_files, view_dirs)])
        pv_key = _files_key(pv_files) if view_dirs is not None else None

        kwargs_list = []
        for lang in todo:
            dumps = [] if lang in no_ngrams else [str(p) for p in found[lang].dumps]
            fingerprint = {"format": _FORMAT, "dumps": _files_key(Path(d) for d in dumps), "pageviews": pv_key, "build": build_kwargs}
            kwargs_list.append(dict(lang=lang, dumps=dumps, view_dirs=view_dirs, out_dir=str(out), build_kwargs=build_kwargs, fingerprint=fingerprint))
        # Largest first: the longest tasks start early. Big dumps are counted here, split over workers.
        kwargs_list.sort(key=lambda kw: (-found[kw["lang"]].size, kw["lang"]))
        for kw in kwargs_list:
            if kw["dumps"] and found[kw["lang"]].size >= split_bytes and _state_ok(out, kw["lang"], kw["fingerprint"]) is None:
                path = out / "ngrams" / f"{kw['lang']}.ngrams"
                if not _ngrams_ready(path, kw["fingerprint"]["dumps"]):
                    _count_to_file(kw["lang"], kw["dumps"], path, executor=ex, progress=progress)
        states = dict(zip((kw["lang"] for kw in kwargs_list), ex.map(build_language, kwargs_list)))
    finally:
        if own:
            ex.close()

    report = WorldwideReport(out_dir=out)
    for lang in langs:
        if lang in skipped:
            report.rows.append({"lang": lang, "lid": wikipedia_to_lid_language(lang), "status": "skipped",
                                "entries_per_source": None, "entries": 0, "flags": ["skipped: no segmenter"]})  # fmt: skip
        else:
            report.rows.append({**_row(states[lang]), "status": "reused" if states[lang]["reused"] else "built"})
    if lid and any(r["status"] != "skipped" for r in report.rows):
        from metaclip2.matching.lid_metadata import build_lid_metadata

        report.lid_index = build_lid_metadata(out / "wikipedia", out / "lid", matchers=matchers, progress=progress)
    # Every language built into out_dir so far (also by earlier runs over other languages).
    every = [_row(st) for p in sorted((out / "state").glob("*.json")) if (st := _read_json(p)) and (out / "wikipedia" / f"{st['lang']}.tsv").exists()]
    _write_json(out / "summary.json", {"languages": every, "lid": report.lid_index})
    if progress:
        print(f"metadata of {len(todo)} languages in {out / 'wikipedia'}; LID metadata in {out / 'lid'}", file=sys.stderr)
    return report


def _row(state: dict) -> dict:
    """A summary row from a language's state record; flags come from its inputs and counts."""
    from metaclip2.core.languages import wikipedia_to_lid_language
    from metaclip2.metadata.wordnet import WORDNET_LANGUAGES

    lang, eps = state["lang"], state["entries_per_source"]
    flags = []
    if state["entries"] == 0:
        flags.append("EMPTY")
    elif state["entries"] == eps.get("number", 0):
        flags.append("ONLY NUMBERS")
    if not state["fingerprint"]["dumps"]:
        flags.append("no n-grams: no segmenter")
    if state.get("wordnet_used") and lang in WORDNET_LANGUAGES and not eps.get("wordnet"):
        flags.append("WordNet data absent")
    if state["fingerprint"]["pageviews"] is None:
        flags.append("no page views")
    return {"lang": lang, "lid": wikipedia_to_lid_language(lang), "entries_per_source": eps, "entries": state["entries"], "flags": flags}


def _build_keys() -> frozenset:
    import inspect

    from metaclip2.metadata.build import build_metadata

    params = inspect.signature(build_metadata).parameters
    return frozenset(params) - {"lang", "ngrams", "unigrams", "bigrams", "titles", "pageviews", "progress"}


_BUILD_KEYS = _build_keys()
