"""`build_all` / `metaclip2 metadata all --languages` over a fake downloaded tree, ending in `curate`."""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import random
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from metaclip2.core.entries import read_metadata
from metaclip2.pipeline.builds.worldwide import build_all, find_sources

DATE = "20240501"
SITE = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="{lang}">
  <siteinfo>
    <sitename>Wikipedia</sitename>
    <dbname>{lang}wiki</dbname>
    <namespaces>
      <namespace key="0" case="first-letter" />
    </namespaces>
  </siteinfo>
{pages}
</mediawiki>
"""
PAGE = """  <page>
    <title>{title}</title>
    <ns>0</ns>
    <id>{id}</id>{redirect}
    <revision>
      <id>{id}</id>
      <text xml:space="preserve">{text}</text>
    </revision>
  </page>"""

WORDS = {
    "en": "the red car big dog small cat New York house tree river city".split(),
    "de": "der Hund die Katze das Haus ein großer Baum am Fluss Berlin".split(),
    "zh": "我们 北京 大学 学生 喜欢 中国 历史 文化 城市 河流 猫 狗".split(),
    "zh_yue": "我哋 香港 大學 鍾意 食嘢 城市 貓 狗 今日 天氣".split(),
    "bo": "བོད ཡིག ལྷ ས".split(),
    "ja": "東京 大学 学生 日本 歴史 文化 猫 犬 川 町".split(),
}
# Titles per language in the page-view files (zh-yue: the domain form of zh_yue).
VIEWS = [
    "en Berlin 40 0", "en.m Berlin 5 0", "en New_York 12 0", "en Talk:Foo 9 0", "en.d dog 99 0",
    "de Hund 9 0", "de.m Katze 3 0", "de Berliner_Mauer 2 0",
    "zh 北京大学 20 0", "zh.m 长城 8 0", "zh-yue 香港 11 0", "commons.m File:X.jpg 3 0",
]  # fmt: skip


def _dump(path: Path, lang: str, n_pages: int, seed: int, redirects_only: bool = False) -> None:
    rnd = random.Random(seed)
    pages = []
    for i in range(n_pages):
        if redirects_only:
            pages.append(PAGE.format(title=f"R{i}", id=i + 1, redirect='\n    <redirect title="X" />', text="#REDIRECT [[X]]"))
            continue
        words = WORDS[lang]
        sep = "" if lang in ("zh", "zh_yue", "bo", "ja") else " "
        stop = "。" if sep == "" else ". "
        sentences = [sep.join(rnd.choice(words) for _ in range(rnd.randint(3, 9))) for _ in range(8)]
        pages.append(PAGE.format(title=f"{lang} {i}", id=i + 1, redirect="", text=escape(stop.join(sentences))))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bz2.compress(SITE.format(lang=lang, pages="\n".join(pages)).encode("utf-8")))


def make_tree(root: Path, langs=("en", "de", "zh", "zh_yue", "ab")) -> Path:
    for k, lang in enumerate(langs):
        wiki = f"{lang}wiki"
        _dump(root / wiki / DATE / f"{wiki}-{DATE}-pages-articles.xml.bz2", lang, 12, k, redirects_only=lang == "ab")
    # An older date of en (ignored: the latest wins), a non-Wikipedia db and a .part file (ignored).
    if "en" in langs:
        _dump(root / "enwiki" / "20240401" / f"enwiki-20240401-pages-articles.xml.bz2", "en", 2, 99)
    _dump(root / "commonswiki" / DATE / f"commonswiki-{DATE}-pages-articles.xml.bz2", "en", 2, 98)
    (root / "dewiki" / "20240601").mkdir(parents=True)
    (root / "dewiki" / "20240601" / f"dewiki-20240601-pages-articles.xml.bz2.part").write_bytes(b"partial")
    for hour, lines in (("20240401-100000", VIEWS), ("20240417-230000", VIEWS[:3] + ["zh 长城 30 0"])):
        p = root / "other" / "pageviews" / "2024" / "2024-04" / f"pageviews-{hour}.gz"
        p.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(p, "wt", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return root


# The fake dumps are tiny: with the paper's PMI > 30 no bigram could pass.
CAPS = dict(min_pmi=0.0, unigram_fraction=1.0, title_fraction=1.0)


def _files(d: Path) -> dict[str, bytes]:
    # Matcher files are left out: a saved automaton is not byte-stable between two builds of the
    # same list (its entry digest, checked on load, is, and lives in index.json).
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.suffix != ".matcher"}


def test_find_sources(tmp_path):
    tree = make_tree(tmp_path / "tree")
    found, pv = find_sources(tree)
    assert list(found) == ["ab", "de", "en", "zh", "zh_yue"]
    assert found["en"].date == DATE and [p.name for p in found["en"].dumps] == [f"enwiki-{DATE}-pages-articles.xml.bz2"]
    assert [p.name for p in pv] == ["pageviews-20240401-100000.gz", "pageviews-20240417-230000.gz"]
    assert find_sources(tree, date="20240401")[0].keys() == {"en"}
    # Split dumps (big wikis before recombination) are read in part order.
    parts = tmp_path / "p" / "frwiki" / DATE
    for n in (10, 2, 1):
        _dump(parts / f"frwiki-{DATE}-pages-articles{n}.xml-p{n}p{n + 1}.bz2", "de", 1, n)
    assert [_p.name.split("articles")[1][:2] for _p in find_sources(tmp_path / "p")[0]["fr"].dumps] == ["1.", "2.", "10"]


def test_build_all_end_to_end_resume_and_curate(tmp_path):
    tree = make_tree(tmp_path / "tree")
    out = tmp_path / "out"
    report = build_all(tree, out, "all", wordnet=None, progress=False, **CAPS)
    rows = {r["lang"]: r for r in report.rows}
    assert list(rows) == ["ab", "de", "en", "zh", "zh_yue"]
    assert {r["status"] for r in report.rows} == {"built"}
    assert rows["ab"]["flags"] == ["ONLY NUMBERS"] and rows["ab"]["lid"] == "other"
    assert rows["zh_yue"]["lid"] == "zh"
    for lang in ("de", "en", "zh", "zh_yue"):
        eps = rows[lang]["entries_per_source"]
        assert eps["number"] == 100 and eps["unigram"] > 5 and eps["bigram"] > 5 and eps["wordnet"] == 0
        assert eps["title"] >= 1 or lang == "zh_yue"  # its one title, 香港, is a unigram already
        assert not rows[lang]["flags"]
    # Page views: mobile folded in, other projects and namespaces out, summed over both hours.
    en, en_src = read_metadata(out / "wikipedia" / "en.tsv", with_sources=True)
    titles = [e for e, s in zip(en, en_src) if s == "title"]
    assert titles == ["Berlin", "New York"]  # 45 and 24 views; "Talk:Foo" and Wiktionary's "dog" left out
    zh = dict(zip(*read_metadata(out / "wikipedia" / "zh.tsv", with_sources=True)))
    assert zh["长城"] == "title" and zh["北京"] == "unigram"
    assert zh["北京大学"] == "unigram"  # jieba keeps it one word, so the title is a duplicate
    zh_bigrams = [e for e, src in zh.items() if src == "bigram"]
    assert zh_bigrams and not any(" " in e for e in zh_bigrams)  # joined without a space
    assert {"我哋", "香港"} <= set(read_metadata(out / "wikipedia" / "zh_yue.tsv"))
    index = json.loads((out / "lid" / "index.json").read_text())
    assert index["zh"]["wikipedia"] == ["zh", "zh_yue"] and index["other"]["wikipedia"] == ["ab"]
    assert sorted(index) == ["de", "en", "other", "zh"] == sorted(report.lid_index)
    assert all((out / "lid" / f"{k}.matcher").exists() for k in index)
    table = report.table()
    assert "ONLY NUMBERS" in table and table.splitlines()[0].split()[:7] == ["lang", "lid", "number", "wordnet", "unigram", "bigram", "title"]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["lang"] for r in summary["languages"]] == list(rows)

    # Re-run: every language is verified and reused, no file is rewritten.
    before = _files(out)
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "wikipedia").iterdir()}
    again = build_all(tree, out, "all", wordnet=None, progress=False, **CAPS)
    assert {r["status"] for r in again.rows} == {"reused"}
    assert {p: p.stat().st_mtime_ns for p in (out / "wikipedia").iterdir()} == mtimes
    assert _files(out) == before
    # A truncated metadata file fails verification and only that language is rebuilt (its counts reused).
    ngram_mtime = (out / "ngrams" / "de.ngrams").stat().st_mtime_ns
    tsv = out / "wikipedia" / "de.tsv"
    tsv.write_bytes(tsv.read_bytes()[:-20])
    third = build_all(tree, out, "de,en", wordnet=None, progress=False, **CAPS)
    assert {r["lang"]: r["status"] for r in third.rows} == {"de": "built", "en": "reused"}
    assert (out / "ngrams" / "de.ngrams").stat().st_mtime_ns == ngram_mtime
    assert _files(out) == before
    # Other caps: rebuilt.
    fourth = build_all(tree, out, "en", wordnet=None, progress=False, **{**CAPS, "max_titles": 1})
    assert fourth.rows[0]["status"] == "built"

    # The LID directory is what curation reads.
    from metaclip2.pipeline.run.api import curate

    texts = [("the red car", "en"), ("a big dog near the river", "en"), ("der Hund im Haus", "de"),
             ("北京大学的学生", "zh"), ("香港天氣", "zh"), ("42", "ab"), ("hello", "xx")]  # fmt: skip
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"id": f"i{i}", "texts": [{"text": t, "lang": l}]}, ensure_ascii=False) + "\n"
                            for i, (t, l) in enumerate(texts)), encoding="utf-8")  # fmt: skip
    res = curate(out / "lid", [str(pool)], tmp_path / "run", t_en=1000, progress=False)
    t = res.datacard["totals"]
    assert t["pairs"] == len(texts) and t["matched"] >= 6 and t["kept"] == t["matched"]


def test_same_bytes_whatever_the_workers(tmp_path):
    from metaclip2.execution.local import LocalExecutor

    tree = make_tree(tmp_path / "tree", langs=("de", "zh"))
    build_all(tree, tmp_path / "a", "all", wordnet=None, progress=False, **CAPS)
    with LocalExecutor(workers=2) as ex:
        # split_bytes=0: every dump is counted batch-parallel on the executor instead of as one task.
        build_all(tree, tmp_path / "b", "all", wordnet=None, executor=ex, split_bytes=0, progress=False, **CAPS)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys() and a == b


def test_missing_segmenter_policies_and_errors(tmp_path):
    from metaclip2.metadata.tokenizer import SegmenterUnavailable, segmenter

    try:
        segmenter("bo")
        pytest.skip("botok is installed here: no language without a segmenter to test with")
    except SegmenterUnavailable:
        pass
    tree = make_tree(tmp_path / "tree", langs=("de", "bo"))
    with pytest.raises(SegmenterUnavailable, match="botok"):
        build_all(tree, tmp_path / "o1", "all", wordnet=None, progress=False, **CAPS)
    assert not (tmp_path / "o1").exists()  # nothing written before the check
    r = build_all(tree, tmp_path / "o2", "all", wordnet=None, missing_segmenter="skip", progress=False, **CAPS)
    assert {x["lang"]: x["status"] for x in r.rows} == {"bo": "skipped", "de": "built"}
    assert not (tmp_path / "o2" / "wikipedia" / "bo.tsv").exists()
    r = build_all(tree, tmp_path / "o3", "all", wordnet=None, missing_segmenter="no-ngrams", progress=False, **CAPS)
    bo = {x["lang"]: x for x in r.rows}["bo"]
    assert bo["flags"] == ["ONLY NUMBERS", "no n-grams: no segmenter"]
    with pytest.raises(FileNotFoundError, match="fr"):
        build_all(tree, tmp_path / "o4", "de,fr", progress=False)
    with pytest.raises(ValueError, match="xx_nope"):
        build_all(tree, tmp_path / "o4", "xx_nope", progress=False)
    with pytest.raises(TypeError, match="max_unigram"):
        build_all(tree, tmp_path / "o4", "de", max_unigram=3, progress=False)
    assert not (tmp_path / "o4").exists()


@pytest.mark.slow
def test_wordnet_where_available(nltk_data, tmp_path):
    import nltk

    tree = make_tree(tmp_path / "tree", langs=("de", "ja", "zh"))
    with pytest.warns(UserWarning, match="jpn"):
        r = build_all(tree, tmp_path / "o", "all", progress=False, **CAPS)
    rows = {x["lang"]: x for x in r.rows}
    assert rows["zh"]["entries_per_source"]["wordnet"] > 10_000  # OMW cmn through nltk
    assert rows["de"]["entries_per_source"]["wordnet"] == 0 and not rows["de"]["flags"]  # no OMW wordnet for de
    if "jpn" in nltk.corpus.wordnet.langs():
        return
    # The shared OMW data lacks jpn: flagged, and tried again on the next run (its counts reused).
    assert rows["ja"]["flags"] == ["WordNet data absent"]
    with pytest.warns(UserWarning, match="jpn"):
        again = build_all(tree, tmp_path / "o", "all", progress=False, **CAPS)
    assert {x["lang"]: x["status"] for x in again.rows} == {"de": "reused", "ja": "built", "zh": "reused"}


def test_cli(tmp_path, capsys):
    from metaclip2.cli.metadata import add_subcommands

    parser = argparse.ArgumentParser(prog="metaclip2")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    tree = make_tree(tmp_path / "tree", langs=("en", "de", "zh", "ab"))
    argv = ["metadata", "all", "--languages", "all", "--tree", str(tree), "--out-dir", str(tmp_path / "out"), "--processes", "1",
            "--no-wordnet", "--min-pmi", "0", "--unigram-fraction", "1", "--title-fraction", "1", "-q"]  # fmt: skip
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    print(out)
    assert "ONLY NUMBERS" in out and "LID metadata" in out
    assert (tmp_path / "out" / "lid" / "index.json").exists()
    from metaclip2.core.errors import ParameterError

    with pytest.raises(ParameterError, match="not both"):  # a usage error: `metaclip2` exits 2
        args = parser.parse_args(["metadata", "all", "en", "--languages", "de", "--out-dir", str(tmp_path / "x")])
        args.func(args)
