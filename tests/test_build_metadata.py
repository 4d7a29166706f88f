"""Merging sources into one language's metadata (SPEC §1): filters, caps, order, determinism, CLI."""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip2.core.charclass import only_punctuation
from metaclip2.metadata.build import SOURCES, build_metadata, clean_source, write_language_metadata
from metaclip2.core.entries import read_metadata

NUMBERS = [str(i) for i in range(100)]


def _build(lang="xx", **kw):
    kw.setdefault("wordnet", None)
    return build_metadata(lang, **kw)


def test_numbers_first_then_sources_in_order():
    r = _build(wordnet=["dog", "cat"], unigrams=["the", "dog"], bigrams=["New York"], titles=Counter({"Paris": 3, "cat": 9}), title_fraction=1.0)
    assert r.entries[:100] == NUMBERS
    assert r.sources[:100] == ["number"] * 100
    assert r.entries[100:] == ["dog", "cat", "the", "New York", "Paris"]
    assert r.sources[100:] == ["wordnet", "wordnet", "unigram", "bigram", "title"]
    assert r.counts() == {"number": 100, "wordnet": 2, "unigram": 1, "bigram": 1, "title": 1}
    assert _build(numbers=False, unigrams=["a"]).entries == ["a"]


def test_each_filter_rule():
    strings = [" dog ", "", "   ", "x" * 257, "y" * 256, " " + "z" * 256 + " ", "!!", "，。「」", "¿?", "a\tb", "a\nb", "a\rb", "C++", "3.5"]
    r = _build(numbers=False, wordnet=strings)
    assert r.entries == ["dog", "y" * 256, "z" * 256, "C++", "3.5"]  # stripped before the length check
    s = r.summary["sources"]["wordnet"]
    assert s["dropped"] == {"empty": 2, "too_long": 1, "punctuation": 3, "control": 3}
    assert s["candidates"] == len(strings) and s["entries"] == 5
    assert r.summary["dropped_by_filter"] == s["dropped"]
    assert _build(numbers=False, wordnet=["abcd", "abcde"], max_length=4).entries == ["abcd"]


def test_first_source_wins_and_duplicates_counted():
    r = _build(wordnet=["42", "dog", "dog"], unigrams=["dog", " cat"], bigrams=["cat", "big dog"], titles=["big dog", "dog ", "Rome"])
    assert r.entries[100:] == ["dog", "cat", "big dog", "Rome"]
    assert r.sources[100:] == ["wordnet", "unigram", "bigram", "title"]
    src = r.summary["sources"]
    assert src["wordnet"]["duplicates"] == 2  # "42" (a number) and the second "dog"
    assert src["unigram"]["duplicates"] == 1
    assert src["bigram"]["duplicates"] == 1
    assert src["title"]["duplicates"] == 2
    assert len(r.entries) == len(set(r.entries))


def test_caps():
    uni = [f"u{i}" for i in range(50)]
    bi = [f"b {i}" for i in range(50)]
    r = _build(numbers=False, unigrams=uni, bigrams=bi, max_unigrams=7, max_bigrams=3)
    assert r.entries == uni[:7] + bi[:3]
    assert r.summary["sources"]["unigram"]["cap_hit"] and r.summary["sources"]["bigram"]["cap_hit"]
    views = Counter({f"t{i}": 1000 - i for i in range(100)})
    r = _build(numbers=False, titles=views)  # 76 % of 100
    assert r.entries == [f"t{i}" for i in range(76)]
    assert r.summary["sources"]["title"]["cap_hit"] is False
    r = _build(numbers=False, titles=views, max_titles=10)
    assert r.entries == [f"t{i}" for i in range(10)] and r.summary["sources"]["title"]["cap_hit"]
    r = _build(numbers=False, titles=views, title_fraction=0.5, max_titles=None)
    assert len(r.entries) == 50
    # Caps count what a source adds: filtered strings and earlier sources' strings are skipped.
    views = Counter({"t0": 9, "!!": 8, "t1": 7, "t2": 1, "t3": 1})
    r = _build(numbers=False, wordnet=["t0"], titles=views, title_fraction=0.5)  # floor(0.5 * 5) = 2
    assert r.entries == ["t0", "t1", "t2"]
    t = r.summary["sources"]["title"]
    assert (t["distinct"], t["cap"], t["entries"], t["duplicates"], t["dropped"]["punctuation"]) == (5, 2, 2, 1, 1)
    # The earlier behaviour, kept as an option: the ranked list is cut first (rounded up).
    r = _build(numbers=False, wordnet=["t0"], titles=views, title_fraction=0.5, cap_mode="candidates")
    assert r.entries == ["t0", "t1"]
    with pytest.raises(ValueError, match="cap_mode"):
        _build(cap_mode="both")


def _reference(sources: list[list[str]], max_length: int = 256) -> list[str]:
    out: list[str] = []
    for src in sources:
        for s in src:
            s = s.strip()
            if not s or len(s) > max_length or "\t" in s or "\n" in s or "\r" in s or only_punctuation(s):
                continue
            if s not in out:
                out.append(s)
    return out


@pytest.mark.filterwarnings("ignore::metaclip2.metadata.build.MetadataWarning")
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.text(alphabet="ab 1!，\t", max_size=5), max_size=12), min_size=3, max_size=3),
    st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=3), st.integers(0, 5), max_size=15),
)
def test_against_plain_reference(lists, views):
    wn, uni, bi = lists
    r = _build(numbers=True, wordnet=wn, unigrams=uni, bigrams=bi, titles=Counter(views), max_length=3)
    ranked = sorted((t for t, v in views.items() if v > 0), key=lambda t: (-views[t], t))
    before = _reference([NUMBERS, wn, uni, bi], max_length=3)
    cap = math.floor(len(ranked) * 0.76 + 1e-9)
    new_titles = [t for t in _reference([ranked], max_length=3) if t not in before][:cap]
    assert r.entries == before + new_titles
    old = _build(numbers=True, wordnet=wn, unigrams=uni, bigrams=bi, titles=Counter(views), max_length=3, cap_mode="candidates")
    assert old.entries == _reference([NUMBERS, wn, uni, bi, ranked[: math.ceil(len(ranked) * 0.76 - 1e-9)]], max_length=3)


def _pageview_file(path: Path) -> Path:
    lines = ["fr Paris 5 0", "fr.m Paris 5 0", "fr.d Paris 99 0", "fr Lyon 3 0", "fr Spécial:X 50 0", "en London 9 0", "fr Nice 0 0"]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def test_pageview_paths_as_input(tmp_path):
    p = _pageview_file(tmp_path / "pageviews-20240501-000000.gz")
    r = _build("fr", numbers=False, pageviews=[p], title_fraction=1.0)
    assert r.entries == ["Paris", "Lyon"]
    assert r.summary["sources"]["title"]["pageview_files"] == 1


def test_deterministic_files(tmp_path):
    rng = random.Random(1)
    items = [(f"title {rng.randrange(40)}", rng.randrange(1, 4)) for _ in range(200)]
    outs = []
    for k in range(2):
        rng.shuffle(items)  # same totals, other insertion order
        views: Counter = Counter()
        for t, v in items:
            views[t] += v
        r = _build(wordnet=["dog", "cat"], unigrams=["x", "y"], titles=views)
        d = tmp_path / f"run{k}"
        tsv, js = write_language_metadata(r, d)
        outs.append((tsv.read_bytes(), js.read_bytes()))
        assert tsv.name == "xx.tsv" and js.name == "xx.summary.json"
    assert outs[0] == outs[1]
    entries, sources = read_metadata(tmp_path / "run0" / "xx.tsv", with_sources=True)
    summary = json.loads(outs[0][1])
    assert summary["entries"] == len(entries) and summary["digest"] == r.digest
    assert set(sources) <= set(SOURCES)
    assert list(json.loads(outs[0][1])) == sorted(summary)  # keys sorted


def test_clean_source_order():
    kept, dropped = clean_source(["b ", " a", "", "b"])
    assert kept == ["b", "a", "b"] and dropped["empty"] == 1


@pytest.mark.slow
def test_real_wordnet_auto(nltk_data):
    from metaclip2.metadata.wordnet import wordnet_entries

    r = build_metadata("he", titles=["שלום"])
    wn = wordnet_entries("he")
    expected_wn = [e for e in dict.fromkeys(s.strip() for s in wn) if e not in NUMBERS and len(e) <= 256 and not only_punctuation(e)]
    assert r.entries[100 : 100 + len(expected_wn)] == expected_wn
    assert r.counts()["wordnet"] == len(expected_wn) > 5000
    assert r.summary["sources"]["wordnet"]["wordnet_language"] == "heb"
    assert build_metadata("de", titles=["Berlin"]).counts()["wordnet"] == 0  # not in the table


# --- CLI end-to-end -------------------------------------------------------------------------


def _parser():
    from metaclip2.cli.metadata import add_subcommands

    p = argparse.ArgumentParser(prog="metaclip2")
    add_subcommands(p.add_subparsers(dest="command", required=True))
    return p


def _run(argv):
    args = _parser().parse_args(argv)
    return args.func(args)


_DUMP = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="he">
  <siteinfo>
    <sitename>ויקיפדיה</sitename>
    <dbname>hewiki</dbname>
    <namespaces>
      <namespace key="0" case="first-letter" />
      <namespace key="6" case="first-letter">קובץ</namespace>
      <namespace key="14" case="first-letter">קטגוריה</namespace>
    </namespaces>
  </siteinfo>
{pages}
</mediawiki>
"""
_PAGE = """  <page>
    <title>{title}</title>
    <ns>0</ns>
    <id>{id}</id>
    <revision>
      <id>{id}</id>
      <text xml:space="preserve">{text}</text>
    </revision>
  </page>"""


def _dump(path: Path) -> Path:
    rng = random.Random(3)
    words = ["שלום", "עולם", "ירושלים", "תל", "אביב", "ספר", "בית", "מים", "אור", "ים"]
    pages = []
    for i in range(20):
        text = " ".join(rng.choice(words) for _ in range(60)) + " תל אביב. תל אביב."
        pages.append(_PAGE.format(title=f"ערך {i}", id=i + 1, text=text))
    path.write_bytes(bz2.compress(_DUMP.format(pages="\n".join(pages)).encode("utf-8")))
    return path


@pytest.mark.slow
def test_cli_end_to_end(nltk_data, tmp_path, capsys):
    pytest.importorskip("metaclip2.metadata.ngrams")
    dump = _dump(tmp_path / "hewiki-20240501-pages-articles.xml.bz2")
    pv = tmp_path / "pageviews-20240501-000000.gz"
    with gzip.open(pv, "wt", encoding="utf-8") as f:
        f.write("he ירושלים 50 0\nhe.m חיפה 7 0\nhe.d ספר 99 0\nhe קובץ:X.jpg 9 0\nen London 3 0\n")

    assert _run(["metadata", "wordnet", "he", "-o", str(tmp_path / "he.wordnet.txt"), "--nltk-data", str(nltk_data)]) == 0
    wn_lines = (tmp_path / "he.wordnet.txt").read_text(encoding="utf-8").splitlines()
    assert len(wn_lines) == 5323

    assert _run(["metadata", "ngrams", str(dump), "--lang", "he", "-o", str(tmp_path / "he.ngrams"), "--workers", "1", "-q"]) == 0
    assert _run(["metadata", "pageviews", str(pv), "--out-dir", str(tmp_path / "views"), "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "views").iterdir()) == ["en.views.tsv", "he.views.tsv"]

    common = ["--min-pmi", "0", "--unigram-fraction", "1", "--title-fraction", "1", "-q"]
    argv = ["metadata", "build", "he", "--ngrams", str(tmp_path / "he.ngrams"), "--views", str(tmp_path / "views" / "he.views.tsv")]
    assert _run([*argv, "--out-dir", str(tmp_path / "b1"), *common]) == 0
    entries, sources = read_metadata(tmp_path / "b1" / "he.tsv", with_sources=True)
    assert entries[:100] == NUMBERS
    assert "ירושלים" in entries and "חיפה" in entries and "עולם" in entries
    assert sources[entries.index("חיפה")] == "title"
    assert "bigram" in sources

    # `all` from the raw inputs gives the same file as the step-by-step build.
    assert _run(["metadata", "all", "he", "--dump", str(dump), "--pageviews", str(pv), "--out-dir", str(tmp_path / "all"),
                 "--lid-dir", str(tmp_path / "lid"), "--workers", "1", *common]) == 0  # fmt: skip
    assert (tmp_path / "all" / "wikipedia" / "he.tsv").read_bytes() == (tmp_path / "b1" / "he.tsv").read_bytes()
    index = json.loads((tmp_path / "lid" / "index.json").read_text())
    assert index["he"]["wikipedia"] == ["he"] and index["he"]["entries"] == len(entries)
    assert _run(["metadata", "lid", str(tmp_path / "all" / "wikipedia"), str(tmp_path / "lid2"), "--no-matchers", "-q"]) == 0
    assert not (tmp_path / "lid2" / "he.matcher").exists() and (tmp_path / "lid" / "he.matcher").exists()
    out = capsys.readouterr().out
    assert "he: " in out


# --- caps count what a source adds (SPEC §1) ----------------------------------------------------


@pytest.mark.slow
def test_english_unigrams_as_the_release(nltk_data, enwiki_dump, tmp_path):
    """WordNet first, then int(0.1 * 39,445) = 3,944 unigrams *added* (the release's English count)."""
    from metaclip2.metadata.ngrams import NgramCounts, write_dump_ngrams

    path = tmp_path / "en.ngrams"
    write_dump_ngrams(enwiki_dump, "en", path)
    r = build_metadata("en", ngrams=path)
    uni = r.summary["sources"]["unigram"]
    assert (uni["distinct"], uni["cap"], uni["entries"]) == (39_445, 3_944, 3_944)
    assert r.counts()["unigram"] == 3_944 and uni["duplicates"] > 5_000  # WordNet already had most frequent words
    assert r.summary["sources"]["bigram"]["entries"] == 0  # no PMI above 30 in 0.5 M tokens
    # the file ranking and the in-memory one agree
    assert build_metadata("en", ngrams=NgramCounts.load(path)).entries == r.entries
    old = build_metadata("en", ngrams=path, cap_mode="candidates")
    assert old.counts()["unigram"] == 1_290  # the earlier behaviour: cut to 3,945 first, then deduplicated
    assert old.entries == r.entries[: len(old.entries) - 1_290] + [e for e, s in zip(old.entries, old.sources) if s == "unigram"]
    top = build_metadata("en", wordnet=None, ngrams=path, bigram_method="corrected", max_bigrams=10, unigram_fraction=0)
    assert top.counts()["bigram"] == 10 and "United States" in top.entries


@pytest.mark.filterwarnings("ignore::metaclip2.metadata.build.MetadataWarning")
@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.sampled_from(list("abcdefgh") + ["!", "0", "7", "ab"]), st.integers(1, 6), min_size=1),
    st.lists(st.sampled_from(list("abcd") + ["x"]), max_size=5),
    st.floats(0, 1),
    st.one_of(st.none(), st.integers(0, 5)),
)
def test_unigram_cap_counts_added_entries(unigrams, wordnet, fraction, upper):
    from metaclip2.metadata.ngrams import NgramCounts

    counts = NgramCounts(Counter(unigrams), Counter(), sum(unigrams.values()))
    r = _build(wordnet=wordnet, ngrams=counts, unigram_fraction=fraction, max_unigrams=upper)
    ranked = sorted(unigrams, key=lambda w: (-unigrams[w], w))
    cap = math.floor(fraction * len(unigrams) + 1e-9)
    cap = cap if upper is None else min(cap, upper)
    earlier = _reference([NUMBERS, wordnet])
    want = [w for w in _reference([ranked]) if w not in earlier][:cap]
    assert [e for e, s in zip(r.entries, r.sources) if s == "unigram"] == want
    info = r.summary["sources"]["unigram"]
    assert info["distinct"] == len(unigrams) and info["cap"] == cap and info["entries"] == len(want)


def test_only_numbers_warns(capsys):
    from metaclip2.metadata.build import MetadataWarning

    with pytest.warns(MetadataWarning, match="de: no entries besides the numbers"):
        r = build_metadata("de", wordnet="auto")
    assert r.summary["warnings"] and "no entries besides the numbers" in r.summary["warnings"][0]
    assert len(build_metadata("xx", wordnet=["dog"]).summary["warnings"]) == 0


def test_cli_only_numbers_warns_on_stderr(tmp_path, capfd):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "metaclip2", "metadata", "build", "de", "--out-dir", str(tmp_path), "-q"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "de: no entries besides the numbers" in proc.stderr
    assert json.loads((tmp_path / "de.summary.json").read_text())["warnings"]


@pytest.mark.slow
def test_cli_ngrams_memory_limit_and_language(enwiki_dump, tmp_path, capsys):
    out1, out2 = tmp_path / "a.ngrams", tmp_path / "b.ngrams"
    assert _run(["metadata", "ngrams", str(enwiki_dump), "--lang", "en", "-o", str(out1), "--workers", "1", "-q"]) == 0
    assert _run(["metadata", "ngrams", str(enwiki_dump), "--lang", "en", "-o", str(out2), "--workers", "2", "--memory-limit", "2MB", "-q"]) == 0
    assert out1.read_bytes() == out2.read_bytes()
    assert "runs" in capsys.readouterr().err
    from metaclip2.metadata.wikitext import DumpLanguageError

    with pytest.raises(DumpLanguageError):
        _run(["metadata", "ngrams", str(enwiki_dump), "--lang", "bg", "-o", str(tmp_path / "bg.ngrams"), "-q"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["metadata", "ngrams", str(enwiki_dump), "--lang", "en", "-o", "x", "--memory-limit", "lots"])
