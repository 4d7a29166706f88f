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


# --- bounded matcher cache ------------------------------------------------------------------------


def _many_languages(tmp_path, n=8):
    lists = {}
    for k in range(n):
        # Lists of very different sizes, so the budget holds a varying number of matchers.
        lists[f"l{k}"] = [f"w{k}x{i}" for i in range(1 + 40 * k * k)] + [f"w{k} {i}" for i in range(5 * k)]
        write_metadata(tmp_path / f"l{k}.tsv", lists[f"l{k}"], lang=f"l{k}")
    return lists


def _reference_lru(accesses, sizes, budget):
    """Plain LRU over a list: evict the oldest while over budget, never the newest."""
    cache: list[str] = []
    for lang in accesses:
        if lang in cache:
            cache.remove(lang)
        cache.append(lang)
        while sum(sizes[x] for x in cache) > budget and len(cache) > 1:
            cache.pop(0)
    return cache


def test_cache_eviction_matches_a_plain_lru(tmp_path):
    import random

    lists = _many_languages(tmp_path)
    sizes = {lang: Matcher(e).nbytes for lang, e in lists.items()}
    assert all(MetadataStore(tmp_path).matcher(lang).nbytes == sizes[lang] for lang in lists)
    rng = random.Random(0)
    for budget in (0, min(sizes.values()), sorted(sizes.values())[3] * 2, sum(sizes.values()) // 2, sum(sizes.values())):
        store = MetadataStore(tmp_path, matcher_memory=budget)
        accesses = [rng.choice(sorted(lists)) for _ in range(60)]
        for step, lang in enumerate(accesses):
            m = store.matcher(lang)
            assert m.entries == lists[lang] and store.entries(lang) == lists[lang]
            expected = _reference_lru(accesses[: step + 1], sizes, budget)
            assert list(store.cache_info()) == expected
            assert store.cache_info() == {x: sizes[x] for x in expected}
            held = sum(store.cache_info().values())
            assert held <= budget or len(expected) == 1  # at most one matcher over the budget


def test_matcher_larger_than_budget_is_loaded_alone(tmp_path):
    lists = _many_languages(tmp_path, 3)
    store = MetadataStore(tmp_path, matcher_memory=1)
    for lang in lists:
        assert store.matcher(lang).entries == lists[lang]
        assert list(store.cache_info()) == [lang]
    with pytest.raises(ValueError, match="matcher_memory"):
        MetadataStore(tmp_path, matcher_memory=-1)


def test_store_pickles_without_lock_or_matchers(store_dir):
    import pickle
    import threading

    s = MetadataStore(store_dir, matcher_memory=12345, strict=True)
    s.matcher("en")
    s.digest("zh")
    blob = pickle.dumps(s)
    assert b"threading" not in blob and b"Matcher" not in blob
    t = pickle.loads(blob)
    assert t.cache_info() == {} and t.matcher_memory == 12345 and t.strict
    assert t.matcher("en").match("A cat in New York") == s.matcher("en").match("A cat in New York")
    assert t.digests() == s.digests()
    # A copy has a working lock of its own.
    t = pickle.loads(pickle.dumps(MetadataStore(store_dir)))
    threads = [threading.Thread(target=t.matcher, args=(lang,)) for lang in ("en", "zh", "other") * 3]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert set(t.cache_info()) == {"en", "zh", "other"}
