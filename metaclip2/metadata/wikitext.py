"""Plain article text from a MediaWiki ``pages-articles`` XML dump ([Wikipedia text and tokenising][wikipedia-text-and-tokenising]).

The dump (``<lang>wiki-<date>-pages-articles*.xml.bz2``; plain ``.xml``, ``.gz`` and bz2
multistream work too) is streamed page by page with a line scanner — MediaWiki writes one
element per line, so this is several times faster than ``xml.etree.iterparse`` and never
holds more than one page in memory. Only main-namespace (``ns 0``) articles that are not
redirects are kept.

Wikitext is turned into plain text with mwparserfromhell: templates, ``<ref>``s, tables,
galleries, comments, math and file/image/media/category links are dropped; wikilinks keep
their label, external links their label, bold/italic/headings their text. File and category
namespaces are localized (``Файл:``, ``ファイル:``), so their names are read from the dump's
own ``<siteinfo><namespaces>`` and joined with the canonical English names that MediaWiki
accepts on every wiki.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import html
import io
import itertools
import os
from pathlib import Path
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Callable, Iterable, Iterator
from metaclip2.core.errors import DataError

__all__ = [
    "Page",
    "SiteInfo",
    "DumpFormatError",
    "DumpLanguageError",
    "read_siteinfo",
    "dump_language",
    "check_dump_language",
    "iter_pages",
    "write_example_dump",
    "iter_articles",
    "wikitext_to_text",
    "iter_article_texts",
    "map_article_batches",
    "DumpPart",
    "split_dump",
    "iter_part_articles",
    "DEFAULT_NAMESPACES",
]


class DumpFormatError(DataError):
    """The file is not a MediaWiki XML export this reader understands."""


class DumpLanguageError(DataError):
    """The dump's ``<siteinfo>`` names another language than the one asked for."""


@dataclass(frozen=True)
class Page:
    """One ``<page>`` of a dump.

    Attributes
    ----------
    title : str
        Page title, namespace prefix included (``"Wikipedia:About"``).
    ns : int
        Namespace number (0 = articles).
    text : str
        Wikitext of the (latest) revision, XML entities decoded.
    redirect : bool
        Whether the page is a redirect (``<redirect>`` element present).

    See Also
    --------
    - [`iter_pages`][metaclip2.metadata.wikitext.iter_pages] : Yields them from a dump.

    Examples
    --------
    >>> from metaclip2.metadata.wikitext import Page
    >>> Page(title="Dog", ns=0, text="The '''dog''' is a mammal.", redirect=False)
    Page(title='Dog', ns=0, text="The '''dog''' is a mammal.", redirect=False)
    """

    title: str
    ns: int
    text: str
    redirect: bool


#: MediaWiki's canonical namespace names (key → name), valid on every wiki.
DEFAULT_NAMESPACES: dict[int, tuple[str, ...]] = {
    -2: ("Media",),
    -1: ("Special",),
    1: ("Talk",),
    2: ("User",),
    3: ("User talk",),
    4: ("Project",),
    5: ("Project talk",),
    6: ("File", "Image"),
    7: ("File talk", "Image talk"),
    8: ("MediaWiki",),
    9: ("MediaWiki talk",),
    10: ("Template",),
    11: ("Template talk",),
    12: ("Help",),
    13: ("Help talk",),
    14: ("Category",),
    15: ("Category talk",),
}

# Links into these namespaces render as images / category tags / media, not as text.
_DROP_LINK_NS = (-2, 6, 14)


@dataclass(frozen=True)
class SiteInfo:
    """What the dump's ``<siteinfo>`` says (defaults when the block is absent).

    Attributes
    ----------
    dbname : str or None
        E.g. ``"enwiki"``.
    lang : str or None
        The ``xml:lang`` attribute of ``<mediawiki>``.
    namespaces : dict[int, tuple[str, ...]]
        Namespace key → names (localized name first, then canonical names and aliases).

    See Also
    --------
    - [`read_siteinfo`][metaclip2.metadata.wikitext.read_siteinfo] : Reads it from a dump.
    - [`dump_language`][metaclip2.metadata.wikitext.dump_language] : The language it names.

    Examples
    --------
    >>> from metaclip2.metadata.wikitext import SiteInfo, dump_language
    >>> info = SiteInfo(dbname="zh_yuewiki", lang="yue", namespaces={14: ("分類", "Category")})
    >>> dump_language(info), info.namespaces[14]
    ('zh_yue', ('分類', 'Category'))
    """

    dbname: str | None = None
    lang: str | None = None
    namespaces: dict[int, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_NAMESPACES))

    def drop_link_prefixes(self) -> frozenset[str]:
        """Case-folded namespace names whose links are dropped (media, file, category)."""
        names = set()
        for key in _DROP_LINK_NS:
            names.update(self.namespaces.get(key, ()))
            names.update(DEFAULT_NAMESPACES[key])
        return frozenset(_fold_ns(n) for n in names)


def _fold_ns(name: str) -> str:
    # MediaWiki namespace names are case-insensitive and treat "_" as " ".
    return " ".join(name.replace("_", " ").split()).casefold()


# ---------------------------------------------------------------------------------------------
# Reading the dump


def _open_binary(path: str | os.PathLike) -> tuple[IO[bytes], IO[bytes]]:
    """Return (decompressed stream, raw file); raw.tell() measures progress in file bytes."""
    raw = open(path, "rb")
    magic = raw.read(3)
    raw.seek(0)
    if magic == b"BZh":
        return bz2.BZ2File(raw), raw  # BZ2File reads multistream files transparently
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw), raw
    return raw, raw


def _open_text(path: str | os.PathLike) -> tuple[IO[str], IO[bytes]]:
    stream, raw = _open_binary(path)
    if not hasattr(stream, "peek"):
        stream = io.BufferedReader(stream)  # type: ignore[arg-type]
    head = stream.peek(4)[:4]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"  # seen in test fixtures, not in real dumps
    elif head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head[:2] in (b"<\x00", b"\x00<"):
        encoding = "utf-16-le" if head[0:1] == b"<" else "utf-16-be"
    else:
        encoding = "utf-8"
    text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")
    return text, raw


_TAG_VALUE_RE = re.compile(r"<(\w+)(?:\s[^>]*)?>(.*)</\1>")
_NS_RE = re.compile(r'<namespace\s+key="(-?\d+)"[^>]*?(?:/>|>(.*?)</namespace>)')
_ALIAS_RE = re.compile(r'<alias\s+key="(-?\d+)"[^>]*?>(.*?)</alias>')


def _unescape(s: str) -> str:
    # XML escapes only; html.unescape would also eat "&nbsp;"-like text written literally.
    if "&" not in s:
        return s
    return html.unescape(s) if "&#" in s else s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'").replace("&amp;", "&")


def _check_start(first: str, path: str | os.PathLike) -> None:
    if "<mediawiki" not in first and "<page" not in first and "<?xml" not in first:
        raise DumpFormatError(f"{os.fspath(path)}: not a MediaWiki XML export (starts with {first[:60]!r})")


def read_siteinfo(path: str | os.PathLike) -> SiteInfo:
    """Read the ``<siteinfo>`` block at the top of a dump.

    Parameters
    ----------
    path : str or path-like
        Dump file (``.xml``, ``.xml.bz2``, ``.xml.gz``).

    Returns
    -------
    SiteInfo
        With localized namespace names plus canonical names; defaults when the dump has no
        ``<siteinfo>`` (e.g. a hand-made export of a few pages).

    See Also
    --------
    - [`dump_language`][metaclip2.metadata.wikitext.dump_language] : The Wikipedia code the site info names.
    - [`check_dump_language`][metaclip2.metadata.wikitext.check_dump_language] : Checks it against the language asked for.

    Examples
    --------
    A hand-made export of three pages (an article, a redirect, a category):

    >>> import os, tempfile
    >>> from metaclip2.metadata.wikitext import write_example_dump
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dump = write_example_dump(tmp.name)  # three pages: an article, a redirect, a category
    >>> from metaclip2.metadata.wikitext import read_siteinfo
    >>> info = read_siteinfo(dump)
    >>> info.dbname, info.lang, info.namespaces[14]
    ('enwiki', 'en', ('Category',))
    >>> tmp.cleanup()
    """
    text, raw = _open_text(path)
    with raw, text:
        return _read_siteinfo_lines(text, path)[0]


def _read_siteinfo_lines(lines: IO[str], path: str | os.PathLike) -> tuple[SiteInfo, str | None]:
    """Consume lines up to the first ``<page>``; return the site info and that line."""
    dbname = lang = None
    namespaces: dict[int, list[str]] = {}
    seen_siteinfo = False
    first = True
    for line in lines:
        if first:
            _check_start(line.lstrip(), path)
            first = False
        s = line.strip()
        if s.startswith("<page>") or s.startswith("<page "):
            break
        if s.startswith("<mediawiki"):
            m = re.search(r'xml:lang="([^"]*)"', s)
            lang = m.group(1) if m else None
        elif s.startswith("<siteinfo"):
            seen_siteinfo = True
        elif s.startswith("<dbname>"):
            m = _TAG_VALUE_RE.match(s)
            dbname = _unescape(m.group(2)) if m else None
        elif s.startswith("<namespace "):
            m = _NS_RE.match(s)
            if m and m.group(2):
                namespaces.setdefault(int(m.group(1)), []).append(_unescape(m.group(2)))
        elif s.startswith("<alias "):
            m = _ALIAS_RE.match(s)
            if m and m.group(2):
                namespaces.setdefault(int(m.group(1)), []).append(_unescape(m.group(2)))
    else:
        line = None
        s = ""
    ns: dict[int, tuple[str, ...]] = {}
    for key in sorted(set(namespaces) | set(DEFAULT_NAMESPACES)):
        names = list(namespaces.get(key, []))
        for canon in DEFAULT_NAMESPACES.get(key, ()):
            if canon not in names:
                names.append(canon)
        ns[key] = tuple(names)
    info = SiteInfo(dbname=dbname, lang=lang, namespaces=ns if seen_siteinfo else dict(DEFAULT_NAMESPACES))
    return info, (line if s.startswith("<page") else None)


# xml:lang values of wikis whose code differs (used only when a dump has no <dbname>).
_XML_LANG_TO_WIKI = {
    "gsw": "als", "yue": "zh_yue", "lzh": "zh_classical", "nan": "zh_min_nan", "be-tarask": "be_tarask",
    "nds-nl": "nds_nl", "rup": "roa_rup", "sgs": "bat_smg", "nb": "no", "vro": "fiu_vro",
    "cbk-zam": "cbk_zam", "jv-x-bms": "map_bms",
}


def dump_language(info: SiteInfo) -> str | None:
    """Wikipedia code of a dump from its ``<siteinfo>`` (``enwiki`` -> ``en``), or None.

    ``<dbname>`` is used when present (it names the wiki exactly: ``simplewiki``,
    ``zh_yuewiki``); otherwise the ``xml:lang`` attribute.

    See Also
    --------
    - [`check_dump_language`][metaclip2.metadata.wikitext.check_dump_language] : Compares it with the language asked for.

    Examples
    --------
    >>> from metaclip2.metadata.wikitext import SiteInfo, dump_language
    >>> dump_language(SiteInfo(dbname="simplewiki", lang="en")), dump_language(SiteInfo(lang="de"))
    ('simple', 'de')
    >>> print(dump_language(SiteInfo()))
    None
    """
    if info.dbname and info.dbname.endswith("wiki"):
        return info.dbname[: -len("wiki")].lower()
    if info.lang:
        lang = info.lang.lower()
        return _XML_LANG_TO_WIKI.get(lang, lang.replace("-", "_"))
    return None


def check_dump_language(path: str | os.PathLike, lang: str, force: bool = False) -> SiteInfo:
    """Read a dump's site info and check that it is a `lang` Wikipedia.

    Parameters
    ----------
    path : path
    lang : str
        Wikipedia code asked for (``-`` and ``_`` are the same).
    force : bool
        Accept a dump of another language.

    Returns
    -------
    SiteInfo

    Raises
    ------
    DumpLanguageError
        The site info names another language and `force` is false. A dump without site
        info (a hand-made export) passes.

    See Also
    --------
    - [`read_siteinfo`][metaclip2.metadata.wikitext.read_siteinfo] : Reads the site info only.

    Examples
    --------
    A hand-made export of three pages (an article, a redirect, a category):

    >>> import os, tempfile
    >>> from metaclip2.metadata.wikitext import write_example_dump
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dump = write_example_dump(tmp.name)  # three pages: an article, a redirect, a category
    >>> from metaclip2.metadata.wikitext import check_dump_language
    >>> check_dump_language(dump, "en").dbname
    'enwiki'
    >>> check_dump_language(dump, "de")
    Traceback (most recent call last):
    ...
    metaclip2.metadata.wikitext.DumpLanguageError: ... is a 'en' Wikipedia dump (...), not 'de': ...
    >>> check_dump_language(dump, "de", force=True).dbname
    'enwiki'
    >>> tmp.cleanup()
    """
    info = read_siteinfo(path)
    found = dump_language(info)
    want = lang.strip().lower().replace("-", "_")
    if found is not None and found != want and not force:
        raise DumpLanguageError(
            f"{os.fspath(path)} is a {found!r} Wikipedia dump (siteinfo: dbname={info.dbname!r}, xml:lang={info.lang!r}), "
            f"not {lang!r}: give the right --lang, or --force-language to count it anyway"
        )
    return info


def _scan_pages(lines: Iterator[str]) -> Iterator[Page]:
    """Yield pages from lines that follow the first ``<page>`` line."""
    title = ""
    ns = 0
    redirect = False
    text = ""
    for line in lines:
        s = line.lstrip()
        if s.startswith("<text"):
            # First line of the wikitext; it runs until </text>, possibly many lines later.
            gt = s.find(">")
            if s[gt - 1] == "/":  # <text ... />: empty
                text = ""
                continue
            body = s[gt + 1 :]
            end = body.find("</text>")
            if end >= 0:
                text = _unescape(body[:end])
                continue
            parts = [body]
            for more in lines:
                end = more.find("</text>")
                if end >= 0:
                    parts.append(more[:end])
                    break
                parts.append(more)
            else:
                raise DumpFormatError("unterminated <text> element (truncated dump?)")
            text = _unescape("".join(parts))
        elif s.startswith("<title>"):
            title = _unescape(s[7 : s.rfind("</title>")])
        elif s.startswith("<ns>"):
            ns = int(s[4 : s.find("</ns>")])
        elif s.startswith("<redirect"):
            redirect = True
        elif s.startswith("</page>"):
            yield Page(title=title, ns=ns, text=text, redirect=redirect)
            title, ns, redirect, text = "", 0, False, ""
        elif s.startswith("<page"):
            title, ns, redirect, text = "", 0, False, ""


#: A hand-made three-page export (an article, a redirect, a category) for examples and tests.
EXAMPLE_DUMP = "\n".join([
    '<mediawiki xml:lang="en">', "<siteinfo>", "<dbname>enwiki</dbname>", "</siteinfo>",
    "<page>", "<title>Dog</title>", "<ns>0</ns>",
    "<text>The '\'\'dog\'\'' is a [[mammal|domestic mammal]].{{Infobox dog}} A dog lives in New York.</text>", "</page>",
    "<page>", "<title>Hound</title>", "<ns>0</ns>", '<redirect title="Dog" />', "<text>#REDIRECT [[Dog]]</text>", "</page>",
    "<page>", "<title>Category:Dogs</title>", "<ns>14</ns>", "<text>Dogs.</text>", "</page>",
    "</mediawiki>",
])  # fmt: skip


def write_example_dump(directory: str | os.PathLike) -> Path:
    """Write [`EXAMPLE_DUMP`][metaclip2.metadata.wikitext.EXAMPLE_DUMP] as ``enwiki-20240501-pages-articles.xml`` in `directory`; returns its path.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.metadata.wikitext import iter_pages, write_example_dump
    >>> with tempfile.TemporaryDirectory() as d:
    ...     [(p.title, p.ns, p.redirect) for p in iter_pages(write_example_dump(d))]
    [('Dog', 0, False), ('Hound', 0, True), ('Category:Dogs', 14, False)]
    """
    path = Path(directory) / "enwiki-20240501-pages-articles.xml"
    path.write_text(EXAMPLE_DUMP, encoding="utf-8")
    return path



def iter_pages(path: str | os.PathLike, progress: Callable[[int], None] | None = None) -> Iterator[Page]:
    """Stream every page of a dump, one at a time.

    Parameters
    ----------
    path : str or path-like
        Dump file (``.xml``, ``.xml.bz2`` including multistream, ``.xml.gz``; UTF-8, or
        UTF-16 with a byte-order mark).
    progress : callable, optional
        Called with the number of *file* (compressed) bytes read so far, once per page.

    Yields
    ------
    Page
        All namespaces, redirects included (see `iter_articles` for the filtered stream).

    See Also
    --------
    - [`iter_articles`][metaclip2.metadata.wikitext.iter_articles] : The articles only.

    Examples
    --------
    A hand-made export of three pages (an article, a redirect, a category):

    >>> import os, tempfile
    >>> from metaclip2.metadata.wikitext import write_example_dump
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dump = write_example_dump(tmp.name)  # three pages: an article, a redirect, a category
    >>> from metaclip2.metadata.wikitext import iter_pages
    >>> [(p.title, p.ns, p.redirect) for p in iter_pages(dump)]
    [('Dog', 0, False), ('Hound', 0, True), ('Category:Dogs', 14, False)]
    >>> tmp.cleanup()
    """
    text, raw = _open_text(path)
    with raw, text:
        _, first = _read_siteinfo_lines(text, path)
        if first is None:
            return
        for page in _scan_pages(iter(text)):
            if progress is not None:
                progress(raw.tell())
            yield page


def iter_articles(path: str | os.PathLike, progress: Callable[[int], None] | None = None) -> Iterator[Page]:
    """`iter_pages` restricted to main-namespace (ns 0) pages that are not redirects.

    See Also
    --------
    - [`iter_pages`][metaclip2.metadata.wikitext.iter_pages] : Every page.
    - [`iter_article_texts`][metaclip2.metadata.wikitext.iter_article_texts] : The articles rendered as plain text.

    Examples
    --------
    A hand-made export of three pages (an article, a redirect, a category):

    >>> import os, tempfile
    >>> from metaclip2.metadata.wikitext import write_example_dump
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dump = write_example_dump(tmp.name)  # three pages: an article, a redirect, a category
    >>> from metaclip2.metadata.wikitext import iter_articles
    >>> [p.title for p in iter_articles(dump)]
    ['Dog']
    >>> tmp.cleanup()
    """
    for page in iter_pages(path, progress):
        if page.ns == 0 and not page.redirect and not _is_redirect_text(page.text):
            yield page


_REDIRECT_TEXT_RE = re.compile(r"\s*#\s*(?:REDIRECT|WEITERLEITUNG|REDIRECCIÓN|REDIRECTION|ПЕРЕНАПРАВЛЕНИЕ|перенаправление|転送|重定向)\b", re.I)


def _is_redirect_text(text: str) -> bool:
    # Old exports lack <redirect>; the body then starts with the (localized) magic word.
    return text[:1] in ("#", " ") and _REDIRECT_TEXT_RE.match(text) is not None


# ---------------------------------------------------------------------------------------------
# Splitting a dump into parts that workers read on their own

_BZ2_STREAM_RE = re.compile(rb"BZh[1-9]\x31\x41\x59\x26\x53\x59")  # stream header + first block magic
_SCAN = 1 << 20


@dataclass(frozen=True)
class DumpPart:
    """A share of a dump that one worker reads: a whole file, or a byte range of a bz2 file.

    Attributes
    ----------
    path : str
    start, end : int
        Byte range; ``end`` is None for the whole file. A range owns the bz2 streams that
        *start* inside it (and finishes a page that runs past its end).

    See Also
    --------
    - [`split_dump`][metaclip2.metadata.wikitext.split_dump] : Splits a dump into parts.

    Examples
    --------
    A hand-made export of three pages (an article, a redirect, a category):

    >>> import os, tempfile
    >>> from metaclip2.metadata.wikitext import write_example_dump
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dump = write_example_dump(tmp.name)  # three pages: an article, a redirect, a category
    >>> from metaclip2.metadata.wikitext import DumpPart, iter_part_articles
    >>> [p.title for p in iter_part_articles(DumpPart(dump))]  # the whole file
    ['Dog']
    >>> tmp.cleanup()
    """

    path: str
    start: int = 0
    end: int | None = None


def split_dump(path: str | os.PathLike, parts: int, min_part_bytes: int = 1 << 22) -> list[DumpPart]:
    """Split a dump into about `parts` byte ranges that workers decompress and parse alone.

    Only bz2 files holding UTF-8 can be split: ranges are cut at bz2 stream starts, so the
    split helps with multistream dumps (``…-pages-articles-multistream.xml.bz2``: about 100
    pages per stream); a single-stream file ends up wholly in its first range. Other files
    are one part. The union of the parts' articles is the file's articles, each once, in
    the same order.

    Parameters
    ----------
    path : path
    parts : int
        Wanted number of parts (at least 1).
    min_part_bytes : int
        Ranges are not made smaller than this.

    See Also
    --------
    - [`iter_part_articles`][metaclip2.metadata.wikitext.iter_part_articles] : Reads one part.
    - [`write_dump_ngrams`][metaclip2.metadata.ngrams.write_dump_ngrams] : Counts the parts in parallel.

    Examples
    --------
    A hand-made export of three pages (an article, a redirect, a category):

    >>> import os, tempfile
    >>> from metaclip2.metadata.wikitext import write_example_dump
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dump = write_example_dump(tmp.name)  # three pages: an article, a redirect, a category
    >>> from metaclip2.metadata.wikitext import split_dump
    >>> parts = split_dump(dump, parts=4)  # plain XML cannot be split: one part
    >>> len(parts), parts[0].start, parts[0].end
    (1, 0, None)
    >>> tmp.cleanup()
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as raw:
        magic = raw.read(3)
    if parts <= 1 or magic != b"BZh" or size <= min_part_bytes or _dump_encoding(path) != "utf-8":
        return [DumpPart(path)]
    n = max(1, min(parts, size // min_part_bytes))
    bounds = [size * i // n for i in range(n + 1)]
    return [DumpPart(path, bounds[i], bounds[i + 1]) for i in range(n)]


def _dump_encoding(path: str | os.PathLike) -> str:
    text, raw = _open_text(path)
    with raw, text:
        return text.encoding


def _find_stream(raw: IO[bytes], start: int, end: int) -> int | None:
    """Offset of the first bz2 stream starting in ``[start, end)``, or None."""
    pos = start
    while pos < end:
        raw.seek(pos)
        block = raw.read(min(_SCAN, end - pos) + 9)  # + 9: a header straddling the block edge
        m = _BZ2_STREAM_RE.search(block)
        if m is not None and pos + m.start() < end:
            return pos + m.start()
        if len(block) < 10:
            return None
        pos += _SCAN
    return None


def _iter_part_lines(part: DumpPart) -> Iterator[str]:
    """Lines of the bz2 streams that start in ``part``'s byte range.

    Who owns a line cut by a stream boundary, or a page cut by the range end: the part
    before the boundary reads on into the next stream until it has finished the line that
    starts there and, if that leaves it inside a page, up to that page's ``</page>``; the
    part after it drops its first line (and, in `iter_part_articles`, everything up to its
    first ``<page>``). So every line and page is read by exactly one part, whether or not
    streams end on page boundaries.
    """
    with open(part.path, "rb") as raw:
        end = part.end if part.end is not None else os.path.getsize(part.path)
        off = _find_stream(raw, part.start, end) if part.start > 0 else 0
        if off is None:
            return
        raw.seek(off)
        pos = off
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        dec: bz2.BZ2Decompressor | None = None
        pending = ""
        skip_first = at_cut = off > 0
        in_page = False
        overflow = False  # reading a stream that belongs to the next part
        data = b""
        while True:
            if not data:
                data = raw.read(_SCAN)
                pos += len(data)
                if not data:
                    if dec is not None:
                        raise DumpFormatError(f"{part.path}: bz2 stream cut short at byte {pos} (truncated dump?)")
                    break
            if dec is None:
                dec = bz2.BZ2Decompressor()
            try:
                out = dec.decompress(data)
            except OSError as e:
                raise DumpFormatError(f"{part.path}: bad bz2 data in the stream before byte {pos}: {e}") from e
            data = b""
            if out and at_cut:
                # A stream may start inside a multi-byte character; that line is dropped anyway.
                out = out.lstrip(bytes(range(0x80, 0xC0)))
                at_cut = not out
            if out:
                lines = (pending + decoder.decode(out)).split("\n")
                pending = lines.pop()
                for line in lines:
                    if skip_first:
                        skip_first = False
                        continue
                    s = line.lstrip()
                    if s.startswith("<page"):
                        in_page = True
                    elif s.startswith("</page>"):
                        in_page = False
                        if overflow:
                            yield line + "\n"
                            return
                    yield line + "\n"
                    if overflow and not in_page:
                        return
            if dec.eof:
                data = dec.unused_data
                dec = None
                if pos - len(data) >= end:
                    overflow = True
        tail = pending + decoder.decode(b"", final=True)
        if tail and not skip_first:
            yield tail


def iter_part_articles(part: DumpPart, progress: Callable[[int], None] | None = None) -> Iterator[Page]:
    """The articles (ns 0, not redirects) of one part of a dump (see `split_dump`).

    See Also
    --------
    - [`split_dump`][metaclip2.metadata.wikitext.split_dump] : The parts.

    Examples
    --------
    A hand-made export of three pages (an article, a redirect, a category):

    >>> import os, tempfile
    >>> from metaclip2.metadata.wikitext import write_example_dump
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dump = write_example_dump(tmp.name)  # three pages: an article, a redirect, a category
    >>> from metaclip2.metadata.wikitext import iter_part_articles, split_dump
    >>> [p.title for part in split_dump(dump, parts=2) for p in iter_part_articles(part)]
    ['Dog']
    >>> tmp.cleanup()
    """
    if part.end is None:
        yield from iter_articles(part.path, progress)
        return
    lines = itertools.dropwhile(lambda ln: not ln.lstrip().startswith("<page"), _iter_part_lines(part))
    for page in _scan_pages(lines):
        if page.ns == 0 and not page.redirect and not _is_redirect_text(page.text):
            yield page


# ---------------------------------------------------------------------------------------------
# Wikitext → text

# Extension/HTML tags whose whole content is not running prose.
_DROP_TAGS = frozenset(
    """ref references gallery table tr td th caption math chem ce score syntaxhighlight source
    timeline imagemap graph mapframe maplink templatedata templatestyles hiero inputbox
    categorytree noinclude includeonly pre code section indicator charinsert rss
    dynamicpagelist""".split()
)
_BREAK_TAGS = frozenset("br p div li dt dd hr blockquote ul ol dl center".split())
_MAGIC_RE = re.compile(r"__[A-Z]{3,}__")
_LANGLINK_RE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]+)*$|simple$|zh-[a-z]+$|[a-z]{2,3}_[a-z_]+$")
_SPACES_RE = re.compile(r"[ \t\u00a0]+")
# What a dropped template leaves behind: "Albedo ({{IPAc-en|...}}) or" becomes "Albedo () or".
_EMPTY_PARENS_RE = re.compile(r"[ \t]*\((?:[\s,;:、，；]*)\)")
_BLANKS_RE = re.compile(r"\n\s*\n\s*")
# Comments and refs are dropped before parsing: cheaper than building nodes for them, and
# a stray "<!--" inside a ref cannot swallow the rest of the page.
_PRECLEAN_RE = re.compile(r"<!--.*?(?:-->|\Z)|<ref(?:\s[^>/]*)?/>|<ref(?:\s[^>]*)?>.*?</ref\s*>", re.S | re.I)


@dataclass(frozen=True)
class _Context:
    drop_prefixes: frozenset[str]
    drop_link_re: re.Pattern  # start of a [[File:/[[Category:-like link, localized names included


_BRACES_RE = re.compile(r"\{\{|\}\}")


def _drop_templates(text: str) -> str:
    """Remove ``{{…}}`` templates (and ``{{{…}}}`` parameters), nested ones included.

    Templates are dropped anyway; cutting them out before parsing saves mwparserfromhell
    most of its work (infoboxes are a large share of the wikitext).
    """
    if "{{" not in text:
        return text
    out = []
    depth = 0
    pos = 0
    start = 0
    for m in _BRACES_RE.finditer(text):
        if m.group() == "{{":
            if depth == 0:
                start = m.start()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                out.append(text[pos:start])
                pos = m.end()
                if text.startswith("{{{", start) and text.startswith("}", pos):
                    pos += 1  # {{{parameter}}}
    out.append(text[pos:])  # an unclosed "{{" renders literally in MediaWiki: keep the tail
    return "".join(out)


_MEDIA_EXT = "jpe?g|png|gif|svg|tiff?|webp|xcf|ogg|oga|ogv|webm|mp3|wav|flac|mid|opus|pdf|djvu|stl"
_MEDIA_TITLE_RE = re.compile(r"[^:]{1,40}:.*\.(?:%s)$" % _MEDIA_EXT, re.I)
_APOSTROPHES_RE = re.compile(r"'{2,}")


def _apostrophes(m: re.Match) -> str:
    # Bold/italic markers the parser left unpaired: two quotes open italics, a third is a literal apostrophe.
    return "'" if len(m.group()) in (3, 4) else ""


_TABLE_LINE_RE = re.compile(r"^[ \t:]*(\{\||\|\})", re.M)


def _drop_tables(text: str) -> str:
    """Remove ``{| … |}`` tables, nested ones included.

    mwparserfromhell leaves a table it cannot fully parse as raw text, so tables are cut out
    with a line-anchored depth counter first (MediaWiki only opens/closes them at line start).
    """
    if "{|" not in text:
        return text
    out = []
    depth = 0
    pos = 0
    for m in _TABLE_LINE_RE.finditer(text):
        if m.group(1) == "{|":
            if depth == 0:
                out.append(text[pos : m.start()])
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                pos = m.end()
                out.append("\n")
    if depth == 0:
        out.append(text[pos:])
    return "".join(out)


def _drop_links(text: str, start_re: re.Pattern) -> str:
    """Remove ``[[File:…]]``-style links with balanced brackets (captions may hold links and newlines)."""
    out = []
    pos = 0
    for m in start_re.finditer(text):
        if m.start() < pos:
            continue
        depth = 0
        i = m.start()
        n = len(text)
        end = -1
        while i < n - 1:
            two = text[i : i + 2]
            if two == "[[":
                depth += 1
                i += 2
            elif two == "]]":
                depth -= 1
                i += 2
                if depth == 0:
                    end = i
                    break
            else:
                i += 1
        if end < 0:
            continue  # unbalanced: leave it to the parser
        out.append(text[pos : m.start()])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _context(namespaces: SiteInfo | dict[int, Iterable[str]] | None) -> _Context:
    if namespaces is None:
        info = SiteInfo()
    elif isinstance(namespaces, SiteInfo):
        info = namespaces
    else:
        info = SiteInfo(namespaces={int(k): tuple(v) for k, v in namespaces.items()})
    prefixes = info.drop_link_prefixes()
    alts = "|".join(sorted((re.escape(p).replace("\\ ", "[ _]+") for p in prefixes), key=len, reverse=True))
    # A link to a media file name also catches namespace aliases that siteinfo does not list
    # (e.g. Russian "Изображение:").
    media = r"[^\[\]|:\n]{1,40}:[^\[\]|\n]*\.(?:%s)[ \t]*(?:\||\]\])" % _MEDIA_EXT
    return _Context(prefixes, re.compile(r"\[\[[ \t]*(?:(?:%s)[ \t]*:|%s)" % (alts, media), re.I))


def wikitext_to_text(wikitext: str, namespaces: SiteInfo | dict[int, Iterable[str]] | None = None) -> str:
    """Render wikitext as plain prose.

    Parameters
    ----------
    wikitext : str
        Page source.
    namespaces : SiteInfo or dict[int, iterable of str], optional
        Site namespaces (from `read_siteinfo`); the localized names of namespaces -2
        (media), 6 (file) and 14 (category) are added to the canonical English ones.

    Returns
    -------
    str
        Paragraphs separated by newlines, no markup: templates, references, tables,
        galleries, comments, math, file/image/media/category links and interlanguage
        links removed; link labels, bold/italic text and heading text kept.

    See Also
    --------
    - [`iter_article_texts`][metaclip2.metadata.wikitext.iter_article_texts] : Renders every article of a dump.

    Examples
    --------
    >>> from metaclip2.metadata.wikitext import wikitext_to_text
    >>> wikitext_to_text("'''Paris''' is the [[capital city|capital]] of [[France]].<ref>INSEE</ref> [[Category:Capitals]]")
    'Paris is the capital of France.'
    >>> print(wikitext_to_text("== History ==\\nFounded {{circa|250 BC}} on the Seine. [[File:Paris.jpg|thumb|The Seine]]"))
    History
    Founded  on the Seine.
    """
    return _render(wikitext, _context(namespaces))


def _render(wikitext: str, ctx: _Context) -> str:
    src = _PRECLEAN_RE.sub("", wikitext)
    src = _drop_templates(src)
    src = _drop_tables(src)
    src = _drop_links(src, ctx.drop_link_re)
    text = _render_tokens(_tokenizer().tokenize(src, 0, False), ctx)
    text = _MAGIC_RE.sub("", text)
    if "''" in text:
        text = _APOSTROPHES_RE.sub(_apostrophes, text)
    text = _EMPTY_PARENS_RE.sub("", text)
    text = _SPACES_RE.sub(" ", text)
    lines = [ln.strip() for ln in text.split("\n")]
    return "\n".join(ln for ln in lines if ln)


@lru_cache(maxsize=1)
def _tokenizer():
    """mwparserfromhell's (C) tokenizer.

    Its token stream is rendered directly: building the node tree (``mwparserfromhell.parse``)
    costs about five times the tokenizing and is not needed to print text.
    """
    from mwparserfromhell.parser import Parser

    return Parser()._tokenizer


@lru_cache(maxsize=1)
def _token_kinds() -> dict[type, str]:
    from mwparserfromhell.parser import tokens as T

    names = """Text TemplateOpen TemplateClose ArgumentOpen ArgumentClose WikilinkOpen
    WikilinkSeparator WikilinkClose ExternalLinkOpen ExternalLinkSeparator ExternalLinkClose
    HTMLEntityStart HTMLEntityEnd HTMLEntityNumeric HTMLEntityHex HeadingStart HeadingEnd
    CommentStart CommentEnd TagOpenOpen TagAttrStart TagCloseOpen TagCloseSelfclose
    TagOpenClose TagCloseClose""".split()
    return {getattr(T, n): n for n in names}


class _Frame:
    """An open construct in the token stream; ``parts`` collects what renders inside it."""

    __slots__ = ("kind", "parts", "head", "phase", "markup")

    def __init__(self, kind: str, markup: str | None = None):
        self.kind = kind
        self.parts: list[str] = []
        self.head: list[str] | None = None  # link title / external URL / tag name
        self.phase = 0
        self.markup = markup


def _render_tokens(tokens, ctx: _Context) -> str:  # noqa: C901 - one branch per token kind
    kinds = _token_kinds()
    root = _Frame("root")
    stack = [root]
    top = root
    for tok in tokens:
        k = kinds.get(type(tok))
        if k == "Text":
            top.parts.append(tok.text)
        elif k in ("TemplateOpen", "ArgumentOpen", "CommentStart"):
            top = _Frame("drop")
            stack.append(top)
        elif k in ("TemplateClose", "ArgumentClose", "CommentEnd"):
            if top.kind == "drop":
                stack.pop()
                top = stack[-1]
        elif k == "WikilinkOpen" or k == "ExternalLinkOpen":
            top = _Frame("link" if k == "WikilinkOpen" else "ext")
            stack.append(top)
        elif k == "WikilinkSeparator" or k == "ExternalLinkSeparator":
            if top.head is None:
                top.head, top.parts = top.parts, []
        elif k == "WikilinkClose" or k == "ExternalLinkClose":
            frame = stack.pop()
            top = stack[-1]
            if frame.kind == "link":
                top.parts.append(_link_text(frame, ctx))
            elif frame.head is not None:  # [url label] → label; bare URLs are dropped
                top.parts.extend(frame.parts)
        elif k == "HTMLEntityStart":
            top = _Frame("entity")
            stack.append(top)
        elif k == "HTMLEntityNumeric" or k == "HTMLEntityHex":
            top.parts.append("#" if k == "HTMLEntityNumeric" else "x")
        elif k == "HTMLEntityEnd":
            frame = stack.pop()
            top = stack[-1]
            top.parts.append(html.unescape("&" + "".join(frame.parts) + ";"))
        elif k == "HeadingStart":
            top = _Frame("heading")
            stack.append(top)
        elif k == "HeadingEnd":
            frame = stack.pop()
            top = stack[-1]
            top.parts.append("\n")
            top.parts.extend(frame.parts)
            top.parts.append("\n")
        elif k == "TagOpenOpen":
            top = _Frame("tag", getattr(tok, "wiki_markup", None))
            stack.append(top)
        elif k == "TagAttrStart":
            if top.phase == 0:
                top.head, top.parts = top.parts, []
                top.phase = 1  # attributes: collected, then thrown away
            else:
                top.parts = []
        elif k == "TagCloseOpen":
            if top.phase == 0:
                top.head = top.parts
            top.parts = []
            top.phase = 2  # body
        elif k == "TagOpenClose":
            top.phase = 3  # closing tag name follows
            top.head, body = top.head, top.parts
            top.parts = []
            top.markup = (top.markup, body)  # type: ignore[assignment]
        elif k == "TagCloseSelfclose" or k == "TagCloseClose":
            frame = stack.pop()
            top = stack[-1]
            head = frame.head if frame.head is not None else frame.parts
            name = "".join(head).strip().lower()
            if k == "TagCloseSelfclose":
                markup = frame.markup
                if name in _BREAK_TAGS or (markup is not None and markup in "*#;:----"):
                    top.parts.append("\n")
                continue
            markup, body = frame.markup if isinstance(frame.markup, tuple) else (frame.markup, frame.parts)
            if name in _DROP_TAGS:
                top.parts.append("\n")
            elif name in _BREAK_TAGS:
                top.parts.append("\n")
                top.parts.extend(body)
                top.parts.append("\n")
            else:
                top.parts.extend(body)
    # Constructs left open at the end (malformed input): flush what they rendered.
    while len(stack) > 1:
        frame = stack.pop()
        if frame.kind not in ("drop", "tag"):
            stack[-1].parts.extend(frame.head or ())
            stack[-1].parts.extend(frame.parts)
    return "".join(root.parts)


def _link_text(frame: _Frame, ctx: _Context) -> str:
    title = "".join(frame.head if frame.head is not None else frame.parts)
    stripped = title.strip()
    leading_colon = stripped.startswith(":")
    if leading_colon:
        stripped = stripped[1:].lstrip()
    colon = stripped.find(":")
    if colon > 0 and not leading_colon:
        if _fold_ns(stripped[:colon]) in ctx.drop_prefixes or _MEDIA_TITLE_RE.match(stripped):
            return ""  # image, media or category tag
        if frame.head is None and _LANGLINK_RE.match(stripped[:colon].strip()):
            return ""  # interlanguage link: rendered in the sidebar, not in the text
    if frame.head is not None:
        return "".join(frame.parts)
    return stripped  # [[Foo#Bar]] renders "Foo#Bar"


# ---------------------------------------------------------------------------------------------
# Parallel extraction

def _batched_wikitext(path: str | os.PathLike, batch_size: int, progress: Callable[[int], None] | None) -> Iterator[list[str]]:
    batch: list[str] = []
    for page in iter_articles(path, progress):
        batch.append(page.text)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _progress_bar(path: str | os.PathLike, enabled: bool, desc: str):
    """A tqdm bar over the dump's file bytes, and the callback that feeds it."""
    if not enabled:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(total=os.path.getsize(path), unit="B", unit_scale=True, desc=desc)

    def update(pos: int) -> None:
        bar.update(pos - bar.n)

    return bar, update


def map_article_batches(
    path: str | os.PathLike,
    func: Callable[[list[str]], object],
    workers: int = 1,
    batch_size: int = 64,
    progress: bool = False,
    desc: str | None = None,
    executor=None,
) -> Iterator[object]:
    """Apply ``func`` to batches of rendered article texts, in dump order.

    ``func`` receives a list of plain texts (see `wikitext_to_text`) and must be picklable
    (a module-level function) when ``workers > 1`` or an executor is given. Results come
    back in dump order whatever the number of workers or the executor.

    ``executor`` (e.g. `metaclip2.execution.ray_executor.RayExecutor`): any object with
    ``map(fn, list_of_kwargs) -> results in order``; rendering and ``func`` then run as its
    tasks, a window of ``4 * executor.workers`` batches at a time (bounded memory), and
    ``workers`` is ignored. Without one, ``workers > 1`` uses a
    `~metaclip2.execution.local.LocalExecutor` of that many workers.

    The parent reads and scans the dump here; `split_dump` and `iter_part_articles` let
    workers read their own parts instead (see `metaclip2.metadata.ngrams.write_dump_ngrams`).

    See Also
    --------
    - [`iter_article_texts`][metaclip2.metadata.wikitext.iter_article_texts] : The texts themselves.

    Examples
    --------
    A hand-made export of three pages (an article, a redirect, a category):

    >>> import os, tempfile
    >>> from metaclip2.metadata.wikitext import write_example_dump
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dump = write_example_dump(tmp.name)  # three pages: an article, a redirect, a category
    >>> from metaclip2.metadata.wikitext import map_article_batches
    >>> list(map_article_batches(dump, len))  # articles per batch
    [1]
    >>> tmp.cleanup()
    """
    ctx = _context(read_siteinfo(path))
    bar, update = _progress_bar(path, progress, desc or os.path.basename(os.fspath(path)))
    batches = _batched_wikitext(path, batch_size, update)
    own = None
    if executor is None and workers > 1:
        # One way to start worker processes: the package's executor (imported here, as
        # execution sits below metadata only after the restructure).
        from metaclip2.execution.local import LocalExecutor

        executor = own = LocalExecutor(workers)
    try:
        if executor is None:
            for batch in batches:
                yield func([_render(w, ctx) for w in batch])
            return
        window = 4 * max(1, int(getattr(executor, "workers", 1) or 1))
        while True:
            chunk = list(itertools.islice(batches, window))
            if not chunk:
                return
            # func and ctx are the same objects in every task: an executor may ship them once.
            yield from executor.map(_render_apply, [{"func": func, "ctx": ctx, "batch": b} for b in chunk])
    finally:
        if own is not None:
            own.close()
        if bar is not None:
            bar.close()


def _render_apply(func: Callable[[list[str]], object], ctx: _Context, batch: list[str]) -> object:
    """Executor task: render one batch of wikitext and apply ``func``."""
    return func([_render(w, ctx) for w in batch])


def _identity(texts: list[str]) -> list[str]:
    return texts


def iter_article_texts(
    path: str | os.PathLike, workers: int = 1, progress: bool = False, batch_size: int = 64
) -> Iterator[str]:
    """Plain text of every article (ns 0, not a redirect) of a dump, in dump order.

    Parameters
    ----------
    path : str or path-like
        Dump file.
    workers : int
        Worker processes rendering wikitext; 1 renders inline. The output is identical
        for any value.
    progress : bool
        Show a tqdm bar over the dump's (compressed) bytes.
    batch_size : int
        Articles sent to a worker at a time.

    Yields
    ------
    str
        One article's text (may be empty, e.g. for a page made only of templates).

    See Also
    --------
    - [`wikitext_to_text`][metaclip2.metadata.wikitext.wikitext_to_text] : Renders one article.
    - [`count_dump_ngrams`][metaclip2.metadata.ngrams.count_dump_ngrams] : Counts the n-grams of these texts.

    Examples
    --------
    A hand-made export of three pages (an article, a redirect, a category):

    >>> import os, tempfile
    >>> from metaclip2.metadata.wikitext import write_example_dump
    >>> tmp = tempfile.TemporaryDirectory()
    >>> dump = write_example_dump(tmp.name)  # three pages: an article, a redirect, a category
    >>> from metaclip2.metadata.wikitext import iter_article_texts
    >>> list(iter_article_texts(dump))
    ['The dog is a domestic mammal. A dog lives in New York.']
    >>> tmp.cleanup()
    """
    for texts in map_article_batches(path, _identity, workers, batch_size, progress):
        yield from texts  # type: ignore[misc]
