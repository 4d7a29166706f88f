"""Per-Wikipedia-language metadata -> per-LID-language metadata and matchers ([From Wikipedia languages to LID languages][from-wikipedia-languages-to-lid-languages]).

Matching uses one entry list per language of the LID model. A LID language gets the union of
the metadata of every Wikipedia code mapped to it (``zh`` <- zh, zh_yue, zh_classical,
zh_min_nan …), merged in the order of
[`metaclip2.core.languages.lid_language_groups`][metaclip2.core.languages.lid_language_groups] (primary code first; the first code
to add a string wins). Wikipedia codes that map to no LID language go into ``other``.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from metaclip2.core.entries import read_metadata, write_metadata
from metaclip2.core.errors import MissingInputError, ParameterError, UnknownLanguageError
from metaclip2.core.atomic import write_text

__all__ = ["OTHER", "group_wikipedia_codes", "merge_metadata", "build_lid_metadata"]

#: LID language of alt-texts whose LID label has no metadata, and of unmapped Wikipedia codes.
OTHER = "other"


def group_wikipedia_codes(codes, unknown: str = "error") -> dict[str, list[str]]:
    """Group Wikipedia codes by LID language, each group in merge order.

    Codes listed in [`lid_language_groups`][metaclip2.core.languages.lid_language_groups] keep that order (primary first); any
    other code of a group follows in sorted order. `unknown` says what to do with a code
    that is not a known Wikipedia: ``"error"`` (raise KeyError) or ``"other"`` (put it in
    ``other``, with a warning).

    Returns
    -------
    dict of str -> list of str
        LID language -> Wikipedia codes, LID languages sorted.

    See Also
    --------
    - [`lid_language_groups`][metaclip2.core.languages.lid_language_groups] : The groups of every known Wikipedia.
    - [`build_lid_metadata`][metaclip2.matching.lid_metadata.build_lid_metadata] : Merges the files of each group.

    Examples
    --------
    >>> from metaclip2.matching.lid_metadata import group_wikipedia_codes
    >>> group_wikipedia_codes(["zh_yue", "simple", "en", "zh", "de"])
    {'de': ['de'], 'en': ['en', 'simple'], 'zh': ['zh', 'zh_yue']}
    """
    from metaclip2.core.languages import lid_language_groups, wikipedia_to_lid_language

    if unknown not in ("error", "other"):
        raise ParameterError(f"unknown must be 'error' or 'other', got {unknown!r}")
    groups: dict[str, set[str]] = {}
    for code in codes:
        try:
            lid = wikipedia_to_lid_language(code) or OTHER
        except KeyError as e:
            if unknown == "error":
                raise UnknownLanguageError(f"{e.args[0]}; pass unknown='other' to merge it into {OTHER!r}") from None
            warnings.warn(f"{code!r} is not a known Wikipedia code; merged into {OTHER!r}", stacklevel=2)
            lid = OTHER
        groups.setdefault(lid, set()).add(code)
    order = lid_language_groups()
    out: dict[str, list[str]] = {}
    for lid in sorted(groups):
        present = groups[lid]
        ranked = [c for c in order.get(lid, ()) if c in present]
        ranked += sorted(present - set(ranked))
        out[lid] = ranked
    return out


def merge_metadata(parts: list[tuple[str, list[str], list[str]]]) -> tuple[list[str], list[str]]:
    """Merge ``(code, entries, sources)`` lists in the given order, first occurrence wins.

    Returns ``(entries, sources)`` where each source reads ``"<code>:<source>"``.

    See Also
    --------
    - [`build_lid_metadata`][metaclip2.matching.lid_metadata.build_lid_metadata] : Merges whole directories this way.

    Examples
    --------
    >>> from metaclip2.matching.lid_metadata import merge_metadata
    >>> merge_metadata([
    ...     ("en", ["dog", "New York"], ["wordnet", "bigram"]),
    ...     ("simple", ["dog", "cat"], ["wordnet", "unigram"]),
    ... ])
    (['dog', 'New York', 'cat'], ['en:wordnet', 'en:bigram', 'simple:unigram'])
    """
    seen: set[str] = set()
    entries: list[str] = []
    sources: list[str] = []
    for code, ents, srcs in parts:
        for e, s in zip(ents, srcs):
            if e in seen:
                continue
            seen.add(e)
            entries.append(e)
            sources.append(f"{code}:{s}" if s else code)
    return entries, sources


def build_lid_metadata(
    wiki_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    matchers: bool = True,
    progress: bool = True,
    unknown: str = "error",
) -> dict[str, dict]:
    """Merge every ``<wikicode>.tsv`` of `wiki_dir` into ``<lidlang>.tsv`` files in `out_dir`.

    Parameters
    ----------
    wiki_dir : path
        Directory of per-Wikipedia-language metadata (``en.tsv``, ``zh_yue.tsv`` …), as
        written by [`metaclip2.metadata.build.write_language_metadata`][metaclip2.metadata.build.write_language_metadata].
    out_dir : path
        Receives ``<lidlang>.tsv`` (source column ``<wikicode>:<source>``), with `matchers`
        also ``<lidlang>.matcher`` (a saved [`metaclip2.matching.matcher.Matcher`][metaclip2.matching.matcher.Matcher]), and
        ``index.json``.
    matchers : bool
        Build and save one Aho-Corasick matcher per LID language.
    progress : bool
        tqdm bar over LID languages on stderr.
    unknown : ``"error"`` or ``"other"``
        What to do with a file whose code is not a known Wikipedia (see
        [`group_wikipedia_codes`][metaclip2.matching.lid_metadata.group_wikipedia_codes]).

    Returns
    -------
    dict of str -> dict
        The content of ``index.json``: per LID language, ``entries`` (count), ``digest``,
        ``wikipedia`` (codes merged, in merge order) and ``matcher`` (file name or None).

    See Also
    --------
    - [`write_language_metadata`][metaclip2.metadata.build.write_language_metadata] : Writes the per-Wikipedia files it reads.
    - [`group_wikipedia_codes`][metaclip2.matching.lid_metadata.group_wikipedia_codes] : Which files are merged together.
    - [`merge_metadata`][metaclip2.matching.lid_metadata.merge_metadata] : How they are merged.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core import read_metadata, write_metadata
    >>> from metaclip2.matching.lid_metadata import build_lid_metadata
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     wiki, lid = os.path.join(tmp, "wiki"), os.path.join(tmp, "lid")
    ...     _ = write_metadata(os.path.join(wiki, "en.tsv"), ["dog", "New York"], ["wordnet", "bigram"], lang="en")
    ...     _ = write_metadata(os.path.join(wiki, "simple.tsv"), ["dog", "cat"], ["wordnet", "unigram"], lang="simple")
    ...     _ = write_metadata(os.path.join(wiki, "zh_yue.tsv"), ["狗"], ["wordnet"], lang="zh_yue")
    ...     index = build_lid_metadata(wiki, lid, progress=False)
    ...     print(sorted(os.listdir(lid)))
    ...     print(read_metadata(os.path.join(lid, "en.tsv"), with_sources=True))
    ['en.matcher', 'en.tsv', 'index.json', 'zh.matcher', 'zh.tsv']
    (['dog', 'New York', 'cat'], ['en:wordnet', 'en:bigram', 'simple:unigram'])
    >>> index["en"]["entries"], index["en"]["wikipedia"], index["zh"]["wikipedia"]
    (3, ['en', 'simple'], ['zh_yue'])
    """
    from tqdm.auto import tqdm

    wiki_dir, out_dir = Path(wiki_dir), Path(out_dir)
    files = {p.name[: -len(".tsv")]: p for p in sorted(wiki_dir.glob("*.tsv"))}
    if not files:
        raise MissingInputError(f"no <wikicode>.tsv metadata files in {wiki_dir}")
    if wiki_dir.resolve() == out_dir.resolve():
        raise ParameterError("out_dir must differ from wiki_dir: LID files (zh.tsv, other.tsv) would overwrite Wikipedia ones")
    groups = group_wikipedia_codes(files, unknown=unknown)
    out_dir.mkdir(parents=True, exist_ok=True)
    index: dict[str, dict] = {}
    for lid, codes in tqdm(groups.items(), desc="LID metadata", unit="lang", disable=not progress):
        parts = [(code, *read_metadata(files[code], with_sources=True)) for code in codes]
        entries, sources = merge_metadata(parts)
        matcher_name = None
        if not entries:
            # An empty list cannot be matched; record the language without files.
            index[lid] = {"entries": 0, "digest": None, "wikipedia": codes, "matcher": None}
            continue
        digest = write_metadata(out_dir / f"{lid}.tsv", entries, sources, lang=lid)
        if matchers:
            from metaclip2.matching.matcher import Matcher

            matcher_name = f"{lid}.matcher"
            Matcher(entries, lang=lid).save(out_dir / matcher_name)
        index[lid] = {"entries": len(entries), "digest": digest, "wikipedia": codes, "matcher": matcher_name}
    write_text(out_dir / "index.json", json.dumps(index, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
    return index
