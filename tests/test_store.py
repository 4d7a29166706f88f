"""MetadataStore: a directory of per-language entry lists with lazily loaded matchers."""

from __future__ import annotations

import warnings

import pytest

from metaclip2.matching.matcher import Matcher
from metaclip2.matching.store import MetadataStore
from metaclip2.matching.text import pad_entry, spacing
from metaclip2.core.entries import MetadataError, entries_digest, write_metadata

LISTS = {
    "en": ["cat", "New York", "of univ", "0"],
    "zh": ["東京", "大学", "0"],
    "other": ["Москва", "#tag"],
}


@pytest.fixture()
def store_dir(tmp_path):
    for lang, entries in LISTS.items():
        write_metadata(tmp_path / f"{lang}.tsv", entries, lang=lang)
    (tmp_path / "en.summary.tsv").write_text("source\tcount\nwordnet\t3\n")
    (tmp_path / "README.txt").write_text("not metadata")
    return tmp_path


def test_languages_entries_digests(store_dir):
    s = MetadataStore(store_dir)
    assert s.languages == ["en", "other", "zh"]  # .summary.tsv and other files ignored
    assert "en" in s and "fr" not in s and "en.summary" not in s
    for lang, entries in LISTS.items():
        assert s.entries(lang) == entries
        assert s.digest(lang) == entries_digest(entries)
    assert s.digests() == {lang: entries_digest(e) for lang, e in sorted(LISTS.items())}


def test_matcher_built_lazily_and_cached(store_dir):
    s = MetadataStore(store_dir)
    m = s.matcher("en")
    assert m is s.matcher("en")
    assert m.digest == s.digest("en")
    text = "A cat in New York, 0."
    assert m.match(text) == [i for i, e in enumerate(LISTS["en"]) if pad_entry(e) in spacing(text)] == [0, 1, 3]
    assert s.matcher("zh").match("我在東京大学 0") == [0, 1, 2]
    assert s.matcher("zh").match("東京0") == [0]  # "0" needs word boundaries


def test_prebuilt_matcher_is_used(store_dir):
    Matcher(LISTS["zh"]).save(store_dir / "zh.matcher")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = MetadataStore(store_dir).matcher("zh")
    assert m.digest == entries_digest(LISTS["zh"])
    assert m.match("東京") == [0]


def test_stale_prebuilt_matcher_is_rebuilt_not_used(store_dir):
    # A matcher built from another list would return ids of that list: it must be ignored.
    Matcher(["大学", "東京", "0"]).save(store_dir / "zh.matcher")
    s = MetadataStore(store_dir)
    with pytest.warns(UserWarning, match="another entry list"):
        m = s.matcher("zh")
    assert m.entries == LISTS["zh"]
    assert m.match("東京") == [0]


def test_unknown_language_and_missing_directory(store_dir, tmp_path):
    s = MetadataStore(store_dir)
    with pytest.raises(KeyError, match="fr"):
        s.entries("fr")
    with pytest.raises(KeyError):
        s.matcher("fr")
    with pytest.raises(FileNotFoundError):
        MetadataStore(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MetadataError):
        MetadataStore(empty)


def test_edited_tsv_is_refused(store_dir):
    path = store_dir / "en.tsv"
    path.write_text(path.read_text().replace("cat\t", "dog\t"))
    with pytest.raises(MetadataError):
        MetadataStore(store_dir).entries("en")


def test_resolve(store_dir):
    s = MetadataStore(store_dir)
    assert s.resolve("en") == "en"
    assert s.resolve("__label__en") == "en"
    assert s.resolve("yue") == "zh"  # grouped under zh
    assert s.resolve("fr") == "other"  # a known language without metadata
    assert s.resolve("xx-unknown") == "other"
    assert s.resolve(None) == "other"
    assert s.resolve("") == "other"
    (store_dir / "other.tsv").unlink()
    s2 = MetadataStore(store_dir)
    assert s2.resolve("fr") is None
    assert s2.resolve("zh") == "zh"
