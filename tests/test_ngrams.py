"""N-gram counting, merging, storage and the unigram/bigram rankers (SPEC §1)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip2.metadata.ngrams import (
    NgramCounts,
    bigram_entries,
    count_dump_ngrams,
    count_ngrams,
    score_bigrams,
    unigram_entries,
)
from metaclip2.metadata.tokenizer import tokenize

from fixtures import multistream

TEXTS = [
    "New York is a city. New York City is in New York State, United States.",
    "The United States of America; the New World.\nYork is in England",
    "a b c a b c a b d",
]


def reference_counts(texts: list[str], lang: str = "en") -> tuple[Counter, Counter, int]:
    uni, bi, n = Counter(), Counter(), 0
    for text in texts:
        for chain in tokenize(text, lang):
            for i, w in enumerate(chain):
                uni[w] += 1
                n += 1
                if i + 1 < len(chain):
                    bi[(w, chain[i + 1])] += 1
    return uni, bi, n


def test_counts_match_plain_loop() -> None:
    counts = count_ngrams(TEXTS, "en")
    uni, bi, n = reference_counts(TEXTS)
    assert counts.unigrams == uni and counts.bigrams == bi and counts.n_tokens == n
    assert counts.n_tokens == sum(counts.unigrams.values())
    assert counts.bigrams[("New", "York")] == 3
    assert ("City", "is") in counts.bigrams and ("city", "New") not in counts.bigrams  # "." breaks
    assert ("World", "York") not in counts.bigrams  # line break breaks


def test_pmi_matches_nltk_and_hand_formula() -> None:
    from nltk.collocations import BigramAssocMeasures, BigramCollocationFinder

    counts = count_ngrams(TEXTS, "en")
    chains = [c for t in TEXTS for c in tokenize(t, "en")]
    finder = BigramCollocationFinder.from_documents(chains)
    nltk_scores = dict(finder.score_ngrams(BigramAssocMeasures.pmi))
    ours = dict(score_bigrams(counts, "pmi"))
    assert set(ours) == set(nltk_scores)
    for bg, s in ours.items():
        assert s == pytest.approx(nltk_scores[bg], abs=1e-12)
        (a, b), n = bg, counts.n_tokens
        assert s == pytest.approx(math.log2(counts.bigrams[bg] * n / (counts.unigrams[a] * counts.unigrams[b])), abs=1e-12)
    ranked = score_bigrams(counts, "pmi")
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_corrected_score_by_hand() -> None:
    counts = count_ngrams(TEXTS, "en")
    n = counts.n_tokens
    pmis = {bg: math.log2(c * n / (counts.unigrams[bg[0]] * counts.unigrams[bg[1]])) for bg, c in counts.bigrams.items()}
    values = sorted(pmis.values())
    # 30th percentile, linear interpolation between closest ranks
    pos = 0.3 * (len(values) - 1)
    lo = math.floor(pos)
    pmi30 = values[lo] + (values[min(lo + 1, len(values) - 1)] - values[lo]) * (pos - lo)
    expect = {bg: (counts.bigrams[bg] + 1) ** 0.7 * (p - pmi30) for bg, p in pmis.items()}
    ours = dict(score_bigrams(counts, "corrected"))
    assert ours.keys() == expect.keys()
    for bg in ours:
        assert ours[bg] == pytest.approx(expect[bg], rel=1e-9, abs=1e-9)
    entries = bigram_entries(counts, "en", method="corrected", max_entries=None)
    best = sorted((bg for bg in expect if expect[bg] > 0), key=lambda bg: (-expect[bg], bg))
    assert entries == [f"{a} {b}" for a, b in best]
    assert "United States" in entries[:3]


def test_bigram_threshold_cap_and_joiner() -> None:
    counts = count_ngrams(TEXTS, "en")
    ranked = score_bigrams(counts, "pmi")
    mid = ranked[len(ranked) // 2][1]
    got = bigram_entries(counts, "en", min_pmi=mid, max_entries=None)
    assert got == [f"{a} {b}" for (a, b), s in ranked if s > mid]
    assert bigram_entries(counts, "en", min_pmi=mid, max_entries=3) == got[:3]
    assert bigram_entries(counts, "en") == []  # PMI > 30 needs N > 2**30 tokens
    assert bigram_entries(counts, "en", min_pmi=-100, min_count=2, max_entries=None) == sorted(
        {f"{a} {b}" for (a, b), c in counts.bigrams.items() if c >= 2},
        key=lambda e: (-dict(score_bigrams(counts, min_count=2))[tuple(e.split())], e),
    )
    zh = NgramCounts()
    zh.add_chains([["北京", "大学"], ["北", "京大学"], ["北京", "大学"]])
    assert bigram_entries(zh, "zh", min_pmi=-100) == ["北京大学"]  # joined without space, deduplicated
    assert bigram_entries(zh, "zh", min_pmi=-100, joiner="_") == ["北_京大学", "北京_大学"]  # rarer pair: higher PMI


def test_unigram_entries() -> None:
    counts = NgramCounts()
    counts.add_chains([list("aaaabbbccd") + [f"w{i}" for i in range(16)]])
    # 20 distinct unigrams: top 10 % = 2
    assert unigram_entries(counts) == ["a", "b"]
    assert unigram_entries(counts, top_fraction=0.2) == ["a", "b", "c", "d"]
    assert unigram_entries(counts, top_fraction=1.0)[4:7] == ["w0", "w1", "w10"]  # ties by string
    assert unigram_entries(counts, top_fraction=1.0, max_entries=3) == ["a", "b", "c"]
    assert unigram_entries(counts, top_fraction=1.0, min_count=2) == ["a", "b", "c"]


WORDS = st.sampled_from(["a", "b", "c", "dd", "é", "New", "York", "东京"])
CHAINS = st.lists(st.lists(WORDS, max_size=6), max_size=6)


@settings(max_examples=100, deadline=None)
@given(CHAINS, CHAINS)
def test_merge_is_counting_the_concatenation(x, y) -> None:
    a, b, both = NgramCounts(), NgramCounts(), NgramCounts()
    a.add_chains(x)
    b.add_chains(y)
    both.add_chains(x + y)
    assert a + b == both and b + a == both
    a.merge(b)
    assert a == both


def test_save_load_roundtrip_is_byte_identical(tmp_path: Path) -> None:
    counts = count_ngrams(TEXTS, "en")
    p1, p2, p3 = tmp_path / "a.tsv.gz", tmp_path / "b.tsv.gz", tmp_path / "c.tsv.gz"
    counts.save(p1)
    loaded = NgramCounts.load(p1)
    assert loaded == counts
    loaded.save(p2)
    # built in another order: same bytes
    other = count_ngrams(TEXTS[::-1], "en")
    other.save(p3)
    assert p1.read_bytes() == p2.read_bytes() == p3.read_bytes()
    with pytest.raises(ValueError):
        bad = NgramCounts()
        bad.add_chains([["a\tb"]])
        bad.save(tmp_path / "bad.tsv.gz")


def _head_of_dump(src: Path, dst: Path, n_pages: int) -> Path:
    """Copy the first ``n_pages`` pages of a dump (a real, smaller dump)."""
    import bz2

    out, pages = [], 0
    with bz2.open(src, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(line)
            if line.strip() == "</page>":
                pages += 1
                if pages == n_pages:
                    break
    out.append("</mediawiki>\n")
    dst.write_bytes(bz2.compress("".join(out).encode("utf-8")))
    return dst


def test_dump_counts_do_not_depend_on_processes(enwiki_dump: Path, tmp_path: Path) -> None:
    small = _head_of_dump(enwiki_dump, tmp_path / "small.xml.bz2", 40)
    one = count_dump_ngrams(small, "en")
    two = count_dump_ngrams(small, "en", workers=2, batch_size=3)
    assert one == two and one.n_tokens > 10_000
    one.save(tmp_path / "1.gz")
    two.save(tmp_path / "2.gz")
    assert (tmp_path / "1.gz").read_bytes() == (tmp_path / "2.gz").read_bytes()


@pytest.mark.slow
def test_english_dump(enwiki_dump: Path) -> None:
    counts = count_dump_ngrams(enwiki_dump, "en")
    assert counts.n_tokens > 400_000 and counts.unigrams["the"] > 20_000
    uni = unigram_entries(counts)
    assert len(uni) == math.ceil(0.1 * len(counts.unigrams))
    assert uni[:3] == ["the", "of", "and"]
    assert counts.unigrams["thumb"] < 5 and counts.unigrams["ref"] < 5
    assert bigram_entries(counts, "en") == []  # no PMI above 30 in 0.5 M tokens
    top = bigram_entries(counts, "en", method="corrected", max_entries=10)
    assert "United States" in top and "New York" in top


# --- bounded-memory counting: runs, merge, file rankings --------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(CHAINS, min_size=1, max_size=4), st.lists(st.integers(0, 40), max_size=5), st.data())
def test_spilled_runs_merge_to_the_counter_file(workers, spill_at, data) -> None:
    """Any split over counters and any spill points give the bytes `NgramCounts.save` writes."""
    import tempfile

    from metaclip2.metadata.ngram_runs import RunCounter, merge_runs

    with tempfile.TemporaryDirectory() as tmp:
        ref = NgramCounts()
        runs, n = [], 0
        for w, chains in enumerate(workers):
            counter = RunCounter(tmp, f"w{w}")
            for i, chain in enumerate(chains):
                counter.add_chains([chain])
                ref.add_chains([chain])
                if i in spill_at or data.draw(st.booleans()):
                    counter.spill()
            runs += counter.close()
            n += counter.n_tokens
        assert n == ref.n_tokens
        merge_runs(runs, Path(tmp) / "merged.gz", n, Path(tmp) / "work", memory_limit=data.draw(st.sampled_from([None, 1 << 20])))
        ref.save(Path(tmp) / "ref.gz")
        assert (Path(tmp) / "merged.gz").read_bytes() == (Path(tmp) / "ref.gz").read_bytes()


def test_run_counter_respects_its_budget(tmp_path: Path) -> None:
    from metaclip2.metadata.ngram_runs import RunCounter

    rng = __import__("random").Random(0)
    words = [f"w{i}" for i in range(30_000)]
    counter = RunCounter(tmp_path, "x", memory_limit=4 << 20)
    for _ in range(40):
        counter.add_chains([[rng.choice(words) for _ in range(1000)] for _ in range(20)])
    runs = counter.close()
    assert len(runs) > 1 and counter.peak_bytes < 4 << 20
    assert counter.n_tokens == 40 * 20 * 1000


def test_parse_memory() -> None:
    from metaclip2.metadata.ngram_runs import parse_memory

    assert parse_memory("128MB") == parse_memory("128MiB") == parse_memory("128m") == 128 << 20
    assert parse_memory("1.5GB") == int(1.5 * (1 << 30))
    assert parse_memory(None) is None and parse_memory("none") is None
    for bad in ("lots", "12XB", "100kB"):
        with pytest.raises(ValueError, match="memory limit"):
            parse_memory(bad)


@pytest.mark.slow
def test_dump_file_same_bytes_for_any_limit_and_workers(enwiki_dump: Path, tmp_path: Path) -> None:
    from metaclip2.metadata.ngrams import write_dump_ngrams

    ms = multistream(enwiki_dump, tmp_path / "ms.xml.bz2", n_pages=1000, pages_per_stream=5)  # every page
    base = write_dump_ngrams(ms, "en", tmp_path / "a.ngrams")
    assert base["parts"] == 1 and base["runs"] == 1
    split = write_dump_ngrams(ms, "en", tmp_path / "b.ngrams", workers=2, memory_limit="1MB", min_part_bytes=200_000, parts_per_worker=3)
    assert split["parts"] == 6 and split["runs"] > 2 * split["parts"]  # spilled
    assert split["worker_peak_bytes"] < 1 << 20
    assert (tmp_path / "a.ngrams").read_bytes() == (tmp_path / "b.ngrams").read_bytes()
    assert base["bigrams"] == split["bigrams"] and base["n_tokens"] == split["n_tokens"] > 400_000
    # the same counts through the in-memory counter
    texts = [t for t in __import__("metaclip2.metadata.wikitext", fromlist=["x"]).iter_article_texts(ms)]
    count_ngrams(texts, "en").save(tmp_path / "c.ngrams")
    assert (tmp_path / "c.ngrams").read_bytes() == (tmp_path / "a.ngrams").read_bytes()
    assert not list(tmp_path.glob(".*runs*"))  # temporary runs removed


def test_dump_language_must_match(enwiki_dump: Path, tmp_path: Path) -> None:
    from metaclip2.metadata.ngrams import write_dump_ngrams
    from metaclip2.metadata.wikitext import DumpLanguageError

    small = multistream(enwiki_dump, tmp_path / "ms.xml.bz2", n_pages=3, pages_per_stream=5)
    with pytest.raises(DumpLanguageError, match="--force-language"):
        write_dump_ngrams(small, "bg", tmp_path / "bg.ngrams")
    assert not (tmp_path / "bg.ngrams").exists()
    assert write_dump_ngrams(small, "bg", tmp_path / "bg.ngrams", force_language=True)["n_tokens"] > 0
    with pytest.raises(ValueError, match="memory limit"):
        write_dump_ngrams(small, "en", tmp_path / "x.ngrams", memory_limit="a lot")


def _reference_top(scored: list[tuple[float, object]], k: int, threshold: float) -> tuple[int, list]:
    above = [(s, i, o) for i, (s, o) in enumerate(scored) if s > threshold]
    above.sort(key=lambda t: (-t[0], t[1]))
    return len(above), [o for _, _, o in above[:k]]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=60), st.integers(0, 12), st.integers(1, 9), st.sampled_from([-1.0, 2.0]))
def test_top_ranked_against_sort(values, k, chunk, threshold) -> None:
    import numpy as np

    from metaclip2.metadata.ngrams import top_ranked

    scored = [(float(v), f"x{i}") for i, v in enumerate(values)]
    chunks = [(np.array([s for s, _ in scored[i : i + chunk]], dtype=float), [o for _, o in scored[i : i + chunk]]) for i in range(0, len(scored), chunk)]
    assert top_ranked(chunks, k, threshold) == _reference_top(scored, k, threshold)


@pytest.mark.parametrize("method", ["pmi", "corrected"])
def test_file_rankings_equal_in_memory_rankings(tmp_path: Path, method: str) -> None:
    from metaclip2.metadata.ngrams import NgramFile, top_ranked

    counts = count_ngrams(TEXTS * 3 + ["a b a b a b c c c d"], "en")
    counts.save(tmp_path / "c.ngrams")
    f = NgramFile(tmp_path / "c.ngrams")
    assert f.n_tokens == counts.n_tokens
    n, uni = top_ranked(f.unigram_chunks(), 10**6, float("-inf"))
    assert n == len(counts.unigrams) and uni == unigram_entries(counts, top_fraction=1.0, max_entries=None)
    ranked = score_bigrams(counts, method)
    n, best = top_ranked(f.bigram_chunks(method), 10**6, float("-inf"))
    assert best == [ab for ab, _ in ranked] and n == len(counts.bigrams)
    scores = dict(ranked)
    for s, pairs in f.bigram_chunks(method):
        assert s.tolist() == [scores[p] for p in pairs]  # same float64 arithmetic: equal, not close


@pytest.mark.slow
def test_ray_workers_read_their_own_parts(enwiki_dump: Path, tmp_path: Path) -> None:
    """Byte ranges of a multistream dump counted as Ray tasks give the local file's bytes."""
    pytest.importorskip("ray")
    from metaclip2.execution.ray_executor import RayExecutor
    from metaclip2.metadata.ngrams import write_dump_ngrams

    ms = multistream(enwiki_dump, tmp_path / "ms.xml.bz2", n_pages=1000, pages_per_stream=5)
    write_dump_ngrams(ms, "en", tmp_path / "local.ngrams")
    with RayExecutor(num_cpus=2) as ex:
        stats = write_dump_ngrams(ms, "en", tmp_path / "ray.ngrams", executor=ex, memory_limit="2MB", min_part_bytes=300_000)
    assert stats["parts"] > 1 and stats["runs"] > stats["parts"]
    assert (tmp_path / "ray.ngrams").read_bytes() == (tmp_path / "local.ngrams").read_bytes()
