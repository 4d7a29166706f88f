"""Entry counts (Algorithm 1, stage 1): plain-loop reference, merging, persistence."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip2.curation.counts import EntryCounts, count_entries
from metaclip2.core.errors import MatcherMismatchError
from metaclip2.matching.matcher import Matcher
from metaclip2.core.entries import entries_digest


def loop_counts(n_entries, matches):
    """Plain loop: each pair adds at most 1 per entry."""
    c = [0] * n_entries
    for ids in matches:
        for i in set(ids):
            c[i] += 1
    return c


def to_csr(matches):
    offsets = np.zeros(len(matches) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(m) for m in matches])
    ids = np.array([i for m in matches for i in m], dtype=np.int32)
    return offsets, ids


csr_st = st.integers(1, 30).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.lists(st.integers(0, n - 1), unique=True).map(sorted), max_size=40))
)


@settings(max_examples=200, deadline=None)
@given(csr_st)
def test_count_entries_equals_loop(case):
    n, matches = case
    c = count_entries(n, *to_csr(matches))
    assert c.dtype == np.uint64 and c.shape == (n,)
    assert c.tolist() == loop_counts(n, matches)


@settings(max_examples=100, deadline=None)
@given(csr_st)
def test_add_and_add_matches_equal_loop(case):
    n, matches = case
    a, b = EntryCounts(), EntryCounts()
    for c in (a, b):
        c.register("xx", "d" * 64, n)
    for m in matches:
        a.add("xx", m + m[:1])  # a repeated id in one pair still counts once
    b.add_matches("xx", *to_csr(matches))
    assert a["xx"].dtype == np.uint64
    assert a["xx"].tolist() == b["xx"].tolist() == loop_counts(n, matches)


def test_counts_of_real_matches():
    rng = random.Random(3)
    entries = ["cat", "dog", "New York", "東京", "大学", "of", "of univ", "univ", "(x)"]
    words = entries + ["a", "the", "universe", "東", "x"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 6))) for _ in range(500)]
    m = Matcher(entries)
    per_text = [m.match(t) for t in texts]
    assert count_entries(len(entries), *m.match_many(texts, batch_size=64)).tolist() == loop_counts(len(entries), per_text)
    # The plain definition, straight from SPEC §3: pairs whose text contains the entry.
    from metaclip2.matching.text import pad_entry, spacing

    assert loop_counts(len(entries), per_text) == [sum(pad_entry(e) in spacing(t) for t in texts) for e in entries]


def test_example_and_bad_ids():
    c = EntryCounts()
    c.register("en", digest="d" * 64, n_entries=3)
    c.add("en", [0, 2, 2])
    assert c["en"].tolist() == [1, 0, 1]
    with pytest.raises(ValueError):
        c.add("en", [3])
    with pytest.raises(ValueError):
        c.add("en", [-1])
    with pytest.raises(ValueError):
        count_entries(3, np.array([0, 1]), np.array([3]))
    assert c["en"].tolist() == [1, 0, 1]  # a refused pair changed nothing


def _shards(seed, n_shards):
    """Random pairs over two languages, split into shards; also the counts of everything at once."""
    rng = random.Random(seed)
    sizes = {"en": 50, "zh": 20}
    digests = {lang: entries_digest([f"{lang}{i}" for i in range(n)]) for lang, n in sizes.items()}
    pairs = [(rng.choice(["en", "en", "zh"]), rng.sample(range(sizes["zh"]), rng.randint(0, 4))) for _ in range(2000)]
    total = {lang: loop_counts(n, [ids for l, ids in pairs if l == lang]) for lang, n in sizes.items()}
    shards = []
    cuts = sorted(rng.sample(range(1, len(pairs)), n_shards - 1))
    for a, b in zip([0] + cuts, cuts + [len(pairs)]):
        s = EntryCounts()
        for lang, ids in pairs[a:b]:
            s.register(lang, digests[lang], sizes[lang])
            s.add(lang, ids)
        shards.append(s)
    return shards, total, digests


def test_merge_by_sum_in_any_order(tmp_path):
    shards, total, digests = _shards(0, 7)
    files = []
    for k, order in enumerate([list(range(7)), list(range(6, -1, -1)), [3, 0, 6, 1, 5, 2, 4]]):
        merged = EntryCounts.sum(shards[i] for i in order)
        assert {lang: merged[lang].tolist() for lang in merged} == total
        assert merged.digests == digests
        path = tmp_path / f"counts{k}.bin"
        merged.save(path)
        files.append(path.read_bytes())
    assert files[0] == files[1] == files[2]
    # In place, and with +, which leaves its operands alone.
    before = shards[0]["en"].copy()
    plus = shards[0] + shards[1]
    assert np.array_equal(shards[0]["en"], before)
    assert plus["en"].tolist() == (shards[0]["en"] + shards[1]["en"]).tolist()
    acc = EntryCounts()
    for s in shards:
        assert acc.merge(s) is acc
    assert {lang: acc[lang].tolist() for lang in acc} == total


def test_merge_refuses_other_entry_list():
    a, b = EntryCounts(), EntryCounts()
    a.register("en", entries_digest(["x", "y"]), 2)
    b.register("en", entries_digest(["y", "x"]), 2)
    with pytest.raises(MatcherMismatchError):
        a.merge(b)
    c = EntryCounts()
    c.register("en", entries_digest(["x", "y"]), 3)
    with pytest.raises(MatcherMismatchError):
        a + c
    with pytest.raises(MatcherMismatchError):
        a.register("en", "e" * 64, 2)
    a.register("en", entries_digest(["x", "y"]), 2)  # the same list again is fine


def test_save_load_round_trip(tmp_path):
    shards, total, digests = _shards(1, 3)
    c = EntryCounts.sum(shards)
    # beyond float64 precision: must survive exactly
    c.merge(EntryCounts.from_arrays({"big": np.array([2**64 - 1, 2**53 + 1], dtype=np.uint64)}, {"big": "b" * 64}))
    path = tmp_path / "c.bin"
    c.save(path)
    loaded = EntryCounts.load(path)
    assert list(loaded) == list(c) == ["big", "en", "zh"]
    for lang in c:
        assert loaded[lang].dtype == np.uint64
        assert np.array_equal(loaded[lang], c[lang])
        assert loaded.digest(lang) == c.digest(lang)
    assert loaded["big"].tolist() == [2**64 - 1, 2**53 + 1]
    path2 = tmp_path / "again.bin"
    loaded.save(path2)
    assert path2.read_bytes() == path.read_bytes()
    assert not list(tmp_path.glob("*.tmp*"))


def test_load_checks_digests(tmp_path):
    shards, total, digests = _shards(2, 2)
    path = tmp_path / "c.bin"
    EntryCounts.sum(shards).save(path)
    EntryCounts.load(path, digests=digests)
    with pytest.raises(MatcherMismatchError, match="zh"):
        EntryCounts.load(path, digests={**digests, "zh": entries_digest(["other"])})
    with pytest.raises(MatcherMismatchError, match="en"):
        EntryCounts.load(path, digests={"zh": digests["zh"]})
    c = EntryCounts.load(path)
    with pytest.raises(MatcherMismatchError):
        c.check_digests({"en": digests["en"], "zh": "0" * 64})


def test_load_refuses_other_files(tmp_path):
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"hello world, not counts")
    with pytest.raises(ValueError):
        EntryCounts.load(bad)
    from metaclip2.core.arrayfile import save_arrays

    save_arrays(tmp_path / "p.bin", {"format": "something-else"}, {"en": np.zeros(2)})
    with pytest.raises(ValueError):
        EntryCounts.load(tmp_path / "p.bin")
    good = tmp_path / "good.bin"
    EntryCounts.from_arrays({"en": [1, 2, 3]}, {"en": "d" * 64}).save(good)
    (tmp_path / "trunc.bin").write_bytes(good.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        EntryCounts.load(tmp_path / "trunc.bin")


def test_from_arrays():
    c = EntryCounts.from_arrays({"zh": [0, 5], "en": np.array([1, 2, 3], dtype=np.int32)}, {"en": "a" * 64, "zh": "b" * 64})
    assert list(c) == ["en", "zh"] and c["en"].dtype == np.uint64 and c["en"].tolist() == [1, 2, 3]
    assert c.digest("zh") == "b" * 64
    with pytest.raises(ValueError):
        EntryCounts.from_arrays({"en": [1, -1]}, {"en": "a" * 64})
    with pytest.raises(ValueError):
        EntryCounts.from_arrays({"en": [[1, 2]]}, {"en": "a" * 64})


# -- sparse storage and the streaming merge ------------------------------------------------------

from metaclip2.curation.counts import CountsWriter, merge_count_files  # noqa: E402


@st.composite
def shard_batches(draw):
    """Per shard, batches of matches of random languages (sizes up to a few hundred entries)."""
    sizes = draw(st.dictionaries(st.sampled_from(["en", "de", "zh", "th", "other"]), st.integers(1, 400), min_size=1))
    shards = []
    for _ in range(draw(st.integers(1, 5))):
        batches = []
        for _ in range(draw(st.integers(0, 4))):
            lang = draw(st.sampled_from(sorted(sizes)))
            n = sizes[lang]
            matches = draw(st.lists(st.lists(st.integers(0, n - 1), max_size=5, unique=True), max_size=30))
            batches.append((lang, matches))
        shards.append(batches)
    return sizes, shards


@settings(max_examples=80, deadline=None)
@given(case=shard_batches())
def test_sparse_counts_and_streaming_merge_equal_dense_reference(tmp_path_factory, case):
    sizes, shards = case
    d = tmp_path_factory.mktemp("counts")
    digests = {lang: entries_digest([f"{lang}{i}" for i in range(n)]) for lang, n in sizes.items()}
    reference = {lang: np.zeros(n, dtype=np.uint64) for lang, n in sizes.items()}
    paths, parts = [], []
    for s, batches in enumerate(shards):
        c = EntryCounts()
        dense = {}
        for lang, matches in batches:
            c.register(lang, digests[lang], sizes[lang])
            c.add_matches(lang, *to_csr(matches))
            dense.setdefault(lang, np.zeros(sizes[lang], dtype=np.uint64))
            dense[lang] += np.array(loop_counts(sizes[lang], matches), dtype=np.uint64)
        assert sorted(c) == sorted(dense)
        for lang in c:
            assert c[lang].dtype == np.uint64 and c[lang].tolist() == dense[lang].tolist()
            ids, counts = c.sparse(lang)
            assert ids.tolist() == np.flatnonzero(dense[lang]).tolist() and counts.tolist() == dense[lang][ids].tolist()
            reference[lang] += dense[lang]
        path = d / f"s{s}.counts.bin"
        c.save(path)
        # a file costs at most 12 bytes per non-zero count (or 8 per entry when that is smaller), plus its table
        nnz = sum(len(c.sparse(lang)[0]) for lang in c)
        assert path.stat().st_size <= 12 * nnz + 200 * len(c) + 100
        loaded = EntryCounts.load(path, digests=digests)
        assert {lang: loaded[lang].tolist() for lang in loaded} == {lang: c[lang].tolist() for lang in c}
        paths.append(path)
        parts.append(c)
    merge_count_files(paths, d / "merged.bin", digests=digests)
    merged = EntryCounts.load(d / "merged.bin")
    expected = {lang: reference[lang].tolist() for lang in reference if lang in merged}
    assert {lang: merged[lang].tolist() for lang in merged} == expected
    assert sorted(merged) == sorted({lang for batches in shards for lang, _ in batches})
    EntryCounts.sum(parts).save(d / "in-memory.bin")
    assert (d / "in-memory.bin").read_bytes() == (d / "merged.bin").read_bytes()


def test_merge_memory_is_bounded_by_the_largest_language(tmp_path):
    """Many shards of disjoint languages: the merge holds one language at a time, not their sum."""
    import tracemalloc

    n, n_langs = 200_000, 40
    rnd = np.random.default_rng(0)
    paths = []
    for i in range(n_langs):
        lang = f"l{i:02d}"
        c = EntryCounts()
        c.register(lang, "d" * 64, n)
        ids = rnd.choice(n, size=500, replace=False).astype(np.int64)
        c.add_matches(lang, np.array([0, len(ids)]), ids)
        c.save(tmp_path / f"{lang}.counts.bin")
        paths.append(tmp_path / f"{lang}.counts.bin")
    tracemalloc.start()
    merge_count_files(paths, tmp_path / "merged.bin")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    largest, total = 8 * n, 8 * n * n_langs  # dense bytes of one language, of all of them
    assert peak < 3 * largest + 2_000_000 < total / 5
    merged = EntryCounts.load(tmp_path / "merged.bin")
    assert len(merged) == n_langs and all(int(merged[lang].sum()) == 500 for lang in merged)


def test_merge_refuses_other_lists_and_reads_the_old_format(tmp_path):
    from metaclip2.core.arrayfile import save_arrays

    a, b = EntryCounts(), EntryCounts()
    a.register("en", "a" * 64, 3)
    b.register("en", "b" * 64, 3)
    a.save(tmp_path / "a.bin")
    b.save(tmp_path / "b.bin")
    with pytest.raises(MatcherMismatchError, match="b.bin"):
        merge_count_files([tmp_path / "a.bin", tmp_path / "b.bin"], tmp_path / "m.bin")
    assert not (tmp_path / "m.bin").exists()
    save_arrays(tmp_path / "v1.bin", {"format": "metaclip2-counts/1", "digests": {"en": "a" * 64}}, {"en": np.array([0, 4, 1], dtype=np.uint64)})
    old = EntryCounts.load(tmp_path / "v1.bin", digests={"en": "a" * 64})
    assert old["en"].tolist() == [0, 4, 1]
    with pytest.raises(ValueError, match="sorted order"):
        with CountsWriter(tmp_path / "w.bin") as w:
            w.add("zh", "a" * 64, 1, np.array([0]), np.array([1]))
            w.add("en", "a" * 64, 1, np.array([0]), np.array([1]))
    # damage in a language's block is caught when it is read
    c = EntryCounts.from_arrays({"en": [5, 0, 0, 0, 0, 0, 0, 9]}, {"en": "a" * 64})
    c.save(tmp_path / "c.bin")
    data = bytearray((tmp_path / "c.bin").read_bytes())
    data[14] ^= 1
    (tmp_path / "bad.bin").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        EntryCounts.load(tmp_path / "bad.bin")["en"]
