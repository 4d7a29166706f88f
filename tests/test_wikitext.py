"""Wikipedia dump reading and wikitext → text, on the real shared dumps and generated ones."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import pytest

from metaclip2.metadata.wikitext import (
    DumpFormatError,
    DumpLanguageError,
    DumpPart,
    SiteInfo,
    check_dump_language,
    dump_language,
    iter_article_texts,
    iter_articles,
    iter_part_articles,
    iter_pages,
    read_siteinfo,
    split_dump,
    wikitext_to_text,
)

from fixtures import multistream

LEFTOVER_MARKUP = ["thumb|", "[[File:", "[[Image:", "[[Category:", "{{", "}}", "<ref", "</ref", "|-", "{|", "[[", "]]", "<!--"]


@pytest.fixture(scope="module")
def en_texts(enwiki_dump: Path) -> list[str]:
    return list(iter_article_texts(enwiki_dump))


@pytest.mark.slow
def test_english_dump_counts_match_readme(enwiki_dump: Path) -> None:
    pages = list(iter_pages(enwiki_dump))
    assert len(pages) == 206
    assert sum(p.ns == 0 and not p.redirect for p in pages) == 106
    assert sum(p.ns == 0 and p.redirect for p in pages) == 99
    assert [(p.ns, p.redirect) for p in pages if p.ns != 0] == [(4, True)]
    assert pages[0].title == "AccessibleComputing" and pages[0].redirect
    titles = [p.title for p in iter_articles(enwiki_dump)]
    assert titles[:8] == ["Anarchism", "Autism", "Albedo", "A", "Alabama", "Achilles", "Abraham Lincoln", "Aristotle"]


def test_english_siteinfo(enwiki_dump: Path) -> None:
    info = read_siteinfo(enwiki_dump)
    assert info.dbname == "enwiki" and info.lang == "en"
    assert info.namespaces[6][0] == "File" and "Image" in info.namespaces[6]
    assert info.namespaces[14][0] == "Category"


def test_english_text_is_clean(en_texts: list[str]) -> None:
    assert len(en_texts) == 106
    joined = "\n".join(en_texts)
    for markup in LEFTOVER_MARKUP:
        assert markup not in joined, markup
    assert joined.count("|") < 5  # a few literal pipes in quoted prose
    first = en_texts[0]
    assert first.startswith("Anarchism is a political philosophy that advocates self-governed societies")
    assert "Etymology and terminology" in first  # heading text kept
    assert "'''" not in joined and "''" not in joined  # bold/italic markup gone, text kept
    assert 2_000_000 < len(joined) < 4_000_000


@pytest.mark.slow
def test_processes_do_not_change_output(enwiki_dump: Path, en_texts: list[str]) -> None:
    assert list(iter_article_texts(enwiki_dump, workers=2, batch_size=7)) == en_texts


def test_no_siteinfo_dump_uses_default_namespaces(shared_data: Path) -> None:
    path = shared_data / "wikipedia" / "enwiki-table-markup.xml.bz2"
    info = read_siteinfo(path)
    assert info.dbname is None and "File" in info.namespaces[6]
    texts = list(iter_article_texts(path))
    assert len(texts) == 5
    joined = "\n".join(texts)
    for markup in ["{|", "|-", "|}", "{{", "[[", "colspan"]:
        assert markup not in joined, markup
    assert texts[0].startswith("The constructive vote of no confidence")


def test_utf16_dump_is_decoded(shared_data: Path) -> None:
    path = shared_data / "wikipedia" / "bgwiki-latest-pages-articles-shortened.xml.bz2"
    info = read_siteinfo(path)
    assert info.dbname == "bgwiki" and info.namespaces[6][0] == "Файл"
    pages = list(iter_pages(path))
    assert [(p.title, p.ns) for p in pages][0] == ("Григориански календар", 0)
    assert [p.ns for p in pages] == [0, 4, 4]
    (text,) = list(iter_article_texts(path))
    assert text.startswith("Григорианският календар")
    assert "[[" not in text and "{{" not in text


def _dump(pages: list[tuple[str, int, str, bool]], siteinfo: str) -> str:
    from xml.sax.saxutils import escape

    body = []
    for title, ns, text, redirect in pages:
        red = f'    <redirect title="{escape(title)}" />\n' if redirect else ""
        body.append(
            f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{ns}</ns>\n    <id>1</id>\n{red}"
            f"    <revision>\n      <id>2</id>\n      <model>wikitext</model>\n"
            f'      <text xml:space="preserve">{escape(text)}</text>\n    </revision>\n  </page>\n'
        )
    return (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="ru">\n'
        + siteinfo
        + "".join(body)
        + "</mediawiki>\n"
    )


RU_SITEINFO = """  <siteinfo>
    <sitename>Википедия</sitename>
    <dbname>ruwiki</dbname>
    <namespaces>
      <namespace key="-2" case="first-letter">Медиа</namespace>
      <namespace key="0" case="first-letter" />
      <namespace key="6" case="first-letter">Файл</namespace>
      <namespace key="10" case="first-letter">Шаблон</namespace>
      <namespace key="14" case="first-letter">Категория</namespace>
    </namespaces>
  </siteinfo>
"""

RU_TEXT = (
    "'''Москва''' — [[столица|столица России]]<ref>Источник &amp; сноска</ref>.\n"
    "[[Файл:Kremlin.jpg|мини|справа|Подпись с [[Кремль|Кремлём]]\nна двух строках]]\n"
    "[[файл:x.png|thumb]] [[Изображение:y.png]] [[Image:z.png|thumb|zz]] [[Медиа:a.ogg]]\n"
    "{{Шаблон|a={{вложенный}}}}Текст <!-- комментарий --> после.\n"
    "== Раздел ==\n"
    "{| class=\"wikitable\"\n|-\n| ячейка || ещё\n|}\n"
    "[http://example.org Метка] и <gallery>\nA.jpg|подпись\n</gallery>конец.\n"
    "[[Категория:Столицы]] [[Category:Capitals]] [[en:Moscow]]"
)


def test_localized_namespaces_from_siteinfo(tmp_path: Path) -> None:
    xml = _dump(
        [
            ("Москва", 0, RU_TEXT, False),
            ("Мск", 0, "#ПЕРЕНАПРАВЛЕНИЕ [[Москва]]", True),
            ("Файл:Kremlin.jpg", 6, "описание", False),
        ],
        RU_SITEINFO,
    )
    path = tmp_path / "ruwiki-test-pages-articles.xml.bz2"
    path.write_bytes(bz2.compress(xml.encode("utf-8")))
    info = read_siteinfo(path)
    assert info.dbname == "ruwiki" and info.lang == "ru"
    assert info.namespaces[6] == ("Файл", "File", "Image")
    (text,) = list(iter_article_texts(path))
    assert text.splitlines() == ["Москва — столица России.", "Текст после.", "Раздел", "Метка и", "конец."]
    # Without the siteinfo "Категория:" is an ordinary link prefix and the category leaks in
    # (file links are still caught by their media file extension).
    assert "Категория:Столицы" in wikitext_to_text(RU_TEXT)
    assert "Подпись" not in wikitext_to_text(RU_TEXT)
    assert wikitext_to_text(RU_TEXT, {6: ["Файл"], 14: ["Категория"], -2: ["Медиа"]}) == text
    assert wikitext_to_text("[[Медиа:a]]x[[Файл:b|c]][[категория:d]]", info) == "x"


def test_plain_gzip_and_multistream(tmp_path: Path) -> None:
    pages = [(f"T{i}", 0, f"Article ''number'' [[n|{i}]].", False) for i in range(5)]
    xml = _dump(pages, RU_SITEINFO)
    plain = tmp_path / "a.xml"
    plain.write_text(xml, encoding="utf-8")
    gz = tmp_path / "a.xml.gz"
    gz.write_bytes(gzip.compress(xml.encode()))
    # multistream: several concatenated bz2 streams, split at a page boundary
    cut = xml.index("  <page>", xml.index("<title>T2"))
    multi = tmp_path / "a-multistream.xml.bz2"
    multi.write_bytes(bz2.compress(xml[:cut].encode()) + bz2.compress(xml[cut:].encode()))
    expect = [f"Article number {i}." for i in range(5)]
    for path in (plain, gz, multi):
        assert list(iter_article_texts(path)) == expect, path


def test_not_a_dump_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "x.xml"
    path.write_text("hello world\n")
    with pytest.raises(DumpFormatError):
        list(iter_pages(path))


@pytest.mark.parametrize(
    "src, expect",
    [
        ("[[a|b]] [[c]]s", "b cs"),
        ("''it'' '''bold''' [http://x.org label] http://bare.org", "it bold label"),
        ("x<ref name=a/>y<ref>r {{t}}</ref>z", "xyz"),
        ("a &amp; &#65; &nbsp;b", "a & A b"),
        ("{{a|{{b}}|c}}d{{{1|e}}}", "d"),
        ("<math>x^2</math>y <span style='c'>s</span>", "y s"),
        ("[[:Category:Foo]] [[de:Foo]] [[wikt:word|word]]", "Category:Foo word"),
        ("__NOTOC__\n== H ==\ntext", "H\ntext"),
        ("Albedo ({{IPAc-en|a}}; {{lang|la|x}}) is", "Albedo is"),
        ("the ''Iliad'''s hero", "the Iliad's hero"),
        ("[[Bild:x.JPG|mini|caption]] [[Fichier:y.svg]]z", "z"),
    ],
)
def test_wikitext_rules(src: str, expect: str) -> None:
    assert wikitext_to_text(src) == expect


# --- parts of a dump read by workers on their own -------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("layout", [{"pages_per_stream": 7}, {"cut_bytes": 100_003}])
def test_parts_read_every_article_once(enwiki_dump: Path, tmp_path: Path, layout: dict) -> None:
    ms = multistream(enwiki_dump, tmp_path / "ms.xml.bz2", **layout)
    whole = list(iter_articles(ms))
    assert [p.title for p in whole] == [p.title for p in iter_articles(enwiki_dump)]
    for n in (1, 2, 5, 16):
        parts = split_dump(ms, n, min_part_bytes=1000)
        assert len(parts) == n
        got = [page for part in parts for page in iter_part_articles(part)]
        assert got == whole, n
    # a single-stream file: everything is read by the first range
    parts = split_dump(enwiki_dump, 4, min_part_bytes=1000)
    counts = [sum(1 for _ in iter_part_articles(p)) for p in parts]
    assert counts == [len(whole), 0, 0, 0]
    assert split_dump(enwiki_dump, 4) == [DumpPart(str(enwiki_dump))]  # smaller than a part


def test_parts_of_plain_and_utf16_files(shared_data: Path, tmp_path: Path) -> None:
    bg = shared_data / "wikipedia" / "bgwiki-latest-pages-articles-shortened.xml.bz2"  # UTF-16 inside
    assert split_dump(bg, 8, min_part_bytes=1000) == [DumpPart(str(bg))]
    plain = tmp_path / "x.xml"
    plain.write_bytes(bz2.decompress(bg.read_bytes()))
    assert split_dump(plain, 8, min_part_bytes=10) == [DumpPart(str(plain))]
    assert [p.title for p in iter_part_articles(DumpPart(str(plain)))] == [p.title for p in iter_articles(bg)]


def test_truncated_multistream_is_an_error(enwiki_dump: Path, tmp_path: Path) -> None:
    ms = multistream(enwiki_dump, tmp_path / "ms.xml.bz2")
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(ms.read_bytes()[: ms.stat().st_size // 2])
    with pytest.raises(DumpFormatError, match="cut short"):
        for part in split_dump(cut, 2, min_part_bytes=1000):
            list(iter_part_articles(part))


def test_dump_language(enwiki_dump: Path, shared_data: Path, tmp_path: Path) -> None:
    assert dump_language(read_siteinfo(enwiki_dump)) == "en"
    assert dump_language(SiteInfo(dbname="zh_yuewiki", lang="yue")) == "zh_yue"
    assert dump_language(SiteInfo(lang="be-tarask")) == "be_tarask"
    assert dump_language(SiteInfo(lang="yue")) == "zh_yue"
    assert dump_language(SiteInfo()) is None
    assert check_dump_language(enwiki_dump, "en").dbname == "enwiki"
    with pytest.raises(DumpLanguageError, match="'en' Wikipedia dump.*--force-language"):
        check_dump_language(enwiki_dump, "bg")
    assert check_dump_language(enwiki_dump, "bg", force=True).dbname == "enwiki"
    assert check_dump_language(shared_data / "wikipedia" / "enwiki-table-markup.xml.bz2", "en").dbname is None  # xml:lang only
    bare = tmp_path / "bare.xml"
    bare.write_text("<mediawiki>\n  <page>\n    <title>A</title>\n    <ns>0</ns>\n    <text>x</text>\n  </page>\n</mediawiki>\n")
    assert check_dump_language(bare, "bg").lang is None  # nothing to check against
