"""Per-Wikipedia metadata -> per-LID-language metadata and saved matchers."""

from __future__ import annotations

import json

import pytest

from metaclip2.core.languages import lid_language_groups, wikipedia_to_lid_language
from metaclip2.metadata.build import build_metadata, write_language_metadata
from metaclip2.core.entries import read_metadata
from metaclip2.matching.lid_metadata import build_lid_metadata, group_wikipedia_codes, merge_metadata

WIKI = {
    # Variants listed out of merge order on purpose: zh must come first.
    "zh_yue": {"wordnet": ["香港", "中文"], "titles": ["粵語"]},
    "zh": {"wordnet": ["中文", "北京"], "titles": ["上海"]},
    "zh_classical": {"wordnet": ["論語", "北京"]},
    "en": {"wordnet": ["dog", "New York"], "titles": ["London"]},
    "simple": {"wordnet": ["dog", "easy"]},
    "ab": {"wordnet": ["Аҧсны"]},
    "ace": {"wordnet": ["Acèh", "Аҧсны"]},
}


def _wiki_dir(root):
    d = root / "wikipedia"
    for code, src in WIKI.items():
        r = build_metadata(code, wordnet=src["wordnet"], titles=src.get("titles"), numbers=code == "en")
        write_language_metadata(r, d)
    return d


def test_merge_metadata_first_wins():
    e, s = merge_metadata([("a", ["x", "y"], ["wordnet", "title"]), ("b", ["y", "z"], ["unigram", "title"])])
    assert e == ["x", "y", "z"] and s == ["a:wordnet", "a:title", "b:title"]


def test_grouping():
    assert wikipedia_to_lid_language("zh_yue") == "zh" and wikipedia_to_lid_language("ab") == "other"
    groups = group_wikipedia_codes(WIKI)
    assert list(groups) == sorted(groups)
    order = lid_language_groups()["zh"]
    assert groups["zh"] == [c for c in order if c in WIKI] and groups["zh"][0] == "zh"
    assert groups["en"] == ["en", "simple"]
    assert groups["other"] == ["ab", "ace"]
    with pytest.raises(KeyError, match="unknown='other'"):
        group_wikipedia_codes(["en", "notalanguage"])
    with pytest.warns(UserWarning):
        assert group_wikipedia_codes(["en", "notalanguage"], unknown="other")["other"] == ["notalanguage"]


def test_build_lid_metadata(tmp_path):
    from metaclip2.matching.matcher import Matcher

    wiki = _wiki_dir(tmp_path)
    out = tmp_path / "lid"
    index = build_lid_metadata(wiki, out, matchers=True, progress=False)
    assert set(index) == {"zh", "en", "other"}
    assert json.loads((out / "index.json").read_text(encoding="utf-8")) == index

    zh, zh_src = read_metadata(out / "zh.tsv", with_sources=True)
    # zh first, then the variants in lid_language_groups order; first code to add a string wins.
    ref, ref_src = [], []
    for code in [c for c in lid_language_groups()["zh"] if c in WIKI]:
        e, s = read_metadata(wiki / f"{code}.tsv", with_sources=True)
        for x, y in zip(e, s):
            if x not in ref:
                ref.append(x)
                ref_src.append(f"{code}:{y}")
    assert zh == ref and zh_src == ref_src
    assert zh[:3] == ["中文", "北京", "上海"]
    assert zh_src[zh.index("粵語")] == "zh_yue:title"
    assert zh_src[zh.index("論語")] == "zh_classical:wordnet"
    assert index["zh"]["wikipedia"] == [c for c in lid_language_groups()["zh"] if c in WIKI]
    assert index["zh"]["wikipedia"][0] == "zh" and set(index["zh"]["wikipedia"]) == {"zh", "zh_yue", "zh_classical"}

    en = read_metadata(out / "en.tsv")
    assert en[:100] == [str(i) for i in range(100)] and "easy" in en and en.count("dog") == 1
    other, other_src = read_metadata(out / "other.tsv", with_sources=True)
    assert other == ["Аҧсны", "Acèh"] and other_src == ["ab:wordnet", "ace:wordnet"]
    assert index["other"]["wikipedia"] == ["ab", "ace"]

    # Saved matchers load and match.
    for lid in index:
        entries = read_metadata(out / f"{lid}.tsv")
        assert index[lid]["entries"] == len(entries)
        m = Matcher.load(out / index[lid]["matcher"], entries=entries)
        assert m.digest == index[lid]["digest"]
    m = Matcher.load(out / "zh.matcher", entries=zh)
    assert sorted(m.match("我在香港学中文")) == sorted([zh.index("香港"), zh.index("中文")])
    en_m = Matcher.load(out / "en.matcher", entries=en)
    assert en_m.match("a dog in New York") == sorted(en_m.match("a dog in New York"))
    assert {en[i] for i in en_m.match("a dog in New York")} == {"dog", "New York"}
    assert en_m.match("hotdog") == []


def test_deterministic(tmp_path):
    wiki = _wiki_dir(tmp_path)
    build_lid_metadata(wiki, tmp_path / "a", matchers=False, progress=False)
    build_lid_metadata(wiki, tmp_path / "b", matchers=False, progress=False)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["en.tsv", "index.json", "other.tsv", "zh.tsv"]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    with pytest.raises(ValueError):
        build_lid_metadata(wiki, wiki, progress=False)


def test_metadata_store_reads_output(tmp_path):
    store_mod = pytest.importorskip("metaclip2.matching.store", reason="MetadataStore not written yet")
    wiki = _wiki_dir(tmp_path)
    build_lid_metadata(wiki, tmp_path / "lid", progress=False)
    store = store_mod.MetadataStore(tmp_path / "lid")
    zh = read_metadata(tmp_path / "lid" / "zh.tsv")
    m = store.matcher("zh") if hasattr(store, "matcher") else store["zh"]
    assert {zh[i] for i in m.match("香港")} == {"香港"}
