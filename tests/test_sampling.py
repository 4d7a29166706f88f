"""Balanced sampling (Algorithm 1, stage 3): statistics, reproducibility, online = offline."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip2.curation.counts import EntryCounts
from metaclip2.curation.sampling import (
    UNITS,
    EntryProbabilities,
    OnlineSampler,
    keep_probabilities,
    keep_probability,
    select_texts,
    uniform,
)
from metaclip2.curation.threshold import entry_probabilities, p_to_t, t_to_p
from metaclip2.core.errors import MatcherMismatchError
from metaclip2.matching.matcher import Matcher
from metaclip2.core.entries import entries_digest

SIGMAS = 5


def within(observed, n, p):
    """Binomial(n, p) tolerance of SIGMAS standard deviations (exact when p is 0 or 1)."""
    return abs(observed - n * p) <= SIGMAS * math.sqrt(n * p * (1 - p)) + 1e-9


# --- uniform -----------------------------------------------------------------------------------


def test_uniform_deterministic_and_keyed():
    u = uniform(1, "img", 2, 3)
    assert 0.0 <= u < 1.0 and u == uniform(1, "img", 2, 3) == uniform(1, "img", 2, 3, "keep")
    others = [
        uniform(2, "img", 2, 3),
        uniform(1, "img2", 2, 3),
        uniform(1, "img", 1, 3),
        uniform(1, "img", 2, 4),
        uniform(1, "img", 2, 3, "pick"),
        uniform(1, "img", -1, 3),
    ]
    assert len(set(others + [u])) == len(others) + 1


def test_uniform_is_uniform():
    n, bins = 40_000, 20
    u = np.array([uniform(0, f"image-{k}", k % 3, 0) for k in range(n)])
    assert u.min() >= 0 and u.max() < 1
    hist = np.bincount((u * bins).astype(int), minlength=bins)
    chi2 = float(((hist - n / bins) ** 2 / (n / bins)).sum())
    assert chi2 < (bins - 1) + SIGMAS * math.sqrt(2 * (bins - 1))
    assert abs(u.mean() - 0.5) < SIGMAS * math.sqrt(1 / 12 / n)


# --- keep probability ----------------------------------------------------------------------------


def test_keep_probability_by_hand():
    q = np.array([0.5, 0.5, 0.2, 1.0, 0.0])
    assert keep_probability(q, [0, 1]) == 0.75  # 1 - 0.5 * 0.5
    assert keep_probability(q, [1, 0, 0]) == 0.75  # each entry once
    assert keep_probability(q, [2]) == 0.2  # a single entry: exactly its q (p += q * (1 - p) from p = 0)
    assert keep_probability(q, [2]) == pytest.approx(0.2, abs=1e-16)
    assert keep_probability(q, [0, 2]) == 0.5 + 0.2 * (1 - 0.5)  # = 1 - 0.5 * 0.8
    assert keep_probability(q, [4, 3]) == 1.0
    assert keep_probability(q, [4]) == 0.0
    assert keep_probability(q, []) == 0.0  # a pair that matches nothing is never kept
    offsets = np.array([0, 2, 2, 3, 5])
    ids = np.array([0, 1, 2, 0, 2], dtype=np.int32)
    assert keep_probabilities(q, offsets, ids).tolist() == [0.75, 0.0, 0.2, 0.5 + 0.2 * (1 - 0.5)]
    assert keep_probabilities(q, np.array([0]), np.array([], dtype=np.int32)).shape == (0,)


q_value = st.one_of(st.just(0.0), st.just(1.0), st.floats(0, 1), st.floats(0, 1e-300))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 25).flatmap(lambda n: st.tuples(
    st.lists(q_value, min_size=n, max_size=n),
    st.lists(st.lists(st.integers(0, n - 1), unique=True).map(sorted), max_size=12),
)))  # fmt: skip
def test_keep_probability_equals_keep_probabilities_bit_for_bit(case):
    q, matches = case
    q = np.array(q, dtype=np.float64)
    offsets = np.zeros(len(matches) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(m) for m in matches])
    ids = np.array([i for m in matches for i in m], dtype=np.int32)
    batch = keep_probabilities(q, offsets, ids)
    assert batch.dtype == np.float64 and batch.shape == (len(matches),)
    for k, m in enumerate(matches):
        scalar = keep_probability(q, m)
        assert np.float64(scalar).tobytes() == batch[k].tobytes()
        assert keep_probability(q, m[::-1] + m) == scalar  # order and repeats do not matter
        assert scalar == pytest.approx(1 - math.prod(1 - q[i] for i in m), abs=1e-12)
        assert 0.0 <= scalar <= 1.0


# --- statistics: pair unit --------------------------------------------------------------------------


def test_kept_share_of_each_entry_is_min_1_t_over_count():
    rng = np.random.default_rng(0)
    n_entries, n_pairs = 300, 200_000
    weights = 1.0 / np.arange(1, n_entries + 1) ** 1.1  # Zipf-like
    entry_of_pair = rng.choice(n_entries, size=n_pairs, p=weights / weights.sum())
    counts = np.bincount(entry_of_pair, minlength=n_entries).astype(np.uint64)
    t = p_to_t(0.3, counts)
    assert 1 < t < counts.max() and (counts > t).sum() >= 20  # enough head entries to test
    q = entry_probabilities(counts, t)
    # Single-entry pairs, each decided on its own.
    kept = np.array([bool(select_texts(f"img{k}", [q[e]], seed=11, unit="pair")) for k, e in enumerate(entry_of_pair)])
    kept_per_entry = np.bincount(entry_of_pair[kept], minlength=n_entries)
    chi2, df = 0.0, 0
    for i in range(n_entries):
        n, p = int(counts[i]), min(1.0, t / counts[i]) if counts[i] else 1.0
        assert within(kept_per_entry[i], n, p), (i, n, p, kept_per_entry[i])
        if counts[i] <= t:
            assert kept_per_entry[i] == counts[i]  # tail entries are kept whole
        else:
            chi2 += (kept_per_entry[i] - n * p) ** 2 / (n * p * (1 - p))
            df += 1
    # No systematic bias across head entries either.
    assert chi2 < df + SIGMAS * math.sqrt(2 * df)
    # Each head entry keeps about t matches.
    head = counts > t
    assert abs(kept_per_entry[head].mean() - t) < 0.1 * t


def test_multi_entry_pairs_keep_rate():
    q = np.array([0.5, 0.2, 0.1, 1.0, 0.0])
    combos = [[0], [0, 1], [1, 2], [0, 1, 2], [2, 4], [3, 4], [4]]
    n = 20_000
    for j, ids in enumerate(combos):
        p = keep_probability(q, ids)
        kept = sum(bool(select_texts(f"c{j}-{k}", [p], seed=5, unit="pair")) for k in range(n))
        assert within(kept, n, p), (ids, p, kept)
    assert keep_probability(q, [3, 4]) == 1.0 and keep_probability(q, [4]) == 0.0


# --- statistics: image unit ---------------------------------------------------------------------------


def test_image_unit_picks_uniformly_among_matched_alt_texts():
    n = 30_000
    picks = np.zeros(4, dtype=int)
    for k in range(n):
        kept = select_texts(f"im{k}", [1.0, 0.0, 1.0, 1.0], seed=1, epoch=0)
        assert len(kept) == 1  # p = 1: always exactly one
        picks[kept[0]] += 1
    assert picks[1] == 0  # never a text that matched nothing
    expected = n / 3
    chi2 = float(sum((picks[i] - expected) ** 2 / expected for i in (0, 2, 3)))
    assert chi2 < 2 + SIGMAS * 2  # df = 2


def test_image_unit_applies_pair_probability_to_the_pick():
    # Pick each of two alt-texts with 1/2, then keep with 0.2 or 0.8: P(0) = .1, P(1) = .4, none .5.
    n = 30_000
    outcome = {(): 0, (0,): 0, (1,): 0}
    for k in range(n):
        outcome[tuple(select_texts(f"x{k}", [0.2, 0.8], seed=2))] += 1
    assert within(outcome[(0,)], n, 0.1) and within(outcome[(1,)], n, 0.4) and within(outcome[()], n, 0.5)
    # Pair unit on the same inputs can keep both.
    both = sum(select_texts(f"x{k}", [0.2, 0.8], seed=2, unit="pair") == [0, 1] for k in range(n))
    assert within(both, n, 0.16)


def test_select_texts_edge_cases():
    assert select_texts("a", []) == [] and select_texts("a", [], unit="pair") == []
    assert select_texts("a", [0.0, 0.0]) == [] and select_texts("a", [0.0, 0.0], unit="pair") == []
    assert select_texts("a", [0.0, 1.0]) == [1]
    assert select_texts("a", [1.0, 1.0, 1.0], unit="pair") == [0, 1, 2]
    assert UNITS == ("image", "pair")
    with pytest.raises(ValueError):
        select_texts("a", [1.0], unit="images")
    with pytest.raises(ValueError):
        OnlineSampler(EntryProbabilities({}, {}, {}), unit="sample")


# --- reproducibility ----------------------------------------------------------------------------------


def _world(seed=0, n_images=1500):
    """Images with 1-4 alt-texts in three languages, matched for real, and the resulting probabilities."""
    rng = random.Random(seed)
    entries = {
        "en": [f"w{i}" for i in range(60)] + ["New York", "of univ"],
        "zh": [f"漢{chr(0x4E00 + i)}" for i in range(30)],
        "th": ["กข", "คง"],
    }
    matchers = {lang: Matcher(e) for lang, e in entries.items()}
    zipf = [1 / (i + 1) for i in range(60)]

    def text(lang):
        if lang == "en":
            return " ".join(f"w{i}" for i in rng.choices(range(60), weights=zipf, k=rng.randint(0, 3))) + rng.choice(["", " New York"])
        if lang == "zh":
            return "".join(rng.choice(entries["zh"]) for _ in range(rng.randint(0, 2)))
        return rng.choice(["กข", "no thai match", ""])

    images = []
    for k in range(n_images):
        alts = []
        for _ in range(rng.randint(1, 4)):
            lang = rng.choice(["en", "en", "zh", "th", "xx"])  # xx: no metadata
            ids = matchers[lang].match(text(lang)) if lang in matchers else []
            alts.append((lang, ids))
        images.append((f"img-{k:05d}", alts))
    counts = EntryCounts()
    for lang, e in entries.items():
        counts.register(lang, entries_digest(e), len(e))
    counts.register("th", entries_digest(entries["th"]), 2)
    for _, alts in images:
        for lang, ids in alts:
            if lang in counts and lang != "th":  # th stays all-zero: no threshold, keeps nothing
                counts.add(lang, ids)
    probs = EntryProbabilities.from_counts(counts, t_en=40)
    return images, probs, entries


def _offline(images, probs, seed, epoch, unit):
    """Stage 3 from the plain functions, per language in CSR batches."""
    rows = [(img, k, lang, ids) for img, alts in images for k, (lang, ids) in enumerate(alts)]
    p = {}
    for lang in {r[2] for r in rows}:
        mine = [r for r in rows if r[2] == lang]
        offsets = np.zeros(len(mine) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(r[3]) for r in mine])
        ids = np.array([i for r in mine for i in r[3]], dtype=np.int64)
        pk = keep_probabilities(probs.q[lang], offsets, ids) if lang in probs.q else np.zeros(len(mine))
        p.update({(r[0], r[1]): float(v) for r, v in zip(mine, pk)})
    return {img: select_texts(img, [p[(img, k)] for k in range(len(alts))], seed, epoch, unit) for img, alts in images}


@pytest.mark.parametrize("unit", UNITS)
def test_online_sampler_equals_offline_and_is_order_free(tmp_path, unit):
    images, probs, _ = _world()
    path = tmp_path / "probabilities.bin"
    probs.save(path)
    for epoch in (0, 3):
        offline = _offline(images, probs, seed=9, epoch=epoch, unit=unit)
        assert sum(map(len, offline.values())) > 100
        sampler = OnlineSampler(path, seed=9, unit=unit)
        online = {img: sampler(img, alts, epoch) for img, alts in images}
        assert online == offline
        # Dict-shaped alt-texts, another sampler, shuffled order: same decisions.
        shuffled = images[:]
        random.Random(epoch).shuffle(shuffled)
        sampler2 = OnlineSampler(probs, seed=9, unit=unit)
        as_dicts = {img: sampler2(img, [{"lang": l, "ids": np.array(i, dtype=np.int32)} for l, i in alts], epoch) for img, alts in shuffled}
        assert as_dicts == offline
        # Offline in other batches (halves, in reverse order) agrees too.
        half = len(images) // 2
        assert {**_offline(images[half:], probs, 9, epoch, unit), **_offline(images[:half], probs, 9, epoch, unit)} == offline
        if unit == "pair":
            singles = {img: [k for k, (l, i) in enumerate(alts) if sampler.keep(img, k, l, i, epoch)] for img, alts in shuffled}
            assert singles == offline
        else:
            assert all(len(v) <= 1 for v in offline.values())


def test_never_kept_without_match_or_threshold():
    images, probs, _ = _world(1, 800)
    assert probs.t["th"] is None and not probs.q["th"].any()
    sampler = OnlineSampler(probs, seed=0, unit="pair")
    for img, alts in images:
        for k in sampler(img, alts, 0):
            lang, ids = alts[k]
            assert ids and lang not in ("xx", "th")
    assert sampler.probabilities_of([("xx", [1, 2]), ("th", [0]), ("en", [])]) == [0.0, 0.0, 0.0]
    assert not sampler.keep("a", 0, "en", [], 0)


def test_epochs_and_seeds_redraw_at_the_right_rate():
    n = 20_000
    decide = lambda seed, epoch: np.array([bool(select_texts(f"p{k}", [0.5], seed, epoch, "pair")) for k in range(n)])  # noqa: E731
    e0, e1, s1 = decide(0, 0), decide(0, 1), decide(1, 0)
    assert np.array_equal(e0, decide(0, 0))
    for d in (e0, e1, s1):
        assert within(d.sum(), n, 0.5)
    # Independent redraws with p = 1/2 disagree half the time.
    assert within((e0 != e1).sum(), n, 0.5) and within((e0 != s1).sum(), n, 0.5)
    # Probability 1 and 0 do not depend on the epoch; the image unit's pick does.
    assert all(select_texts(f"p{k}", [1.0], 0, 7, "pair") == [0] for k in range(100))
    picks = [select_texts(f"p{k}", [1.0, 1.0], 0, 0) != select_texts(f"p{k}", [1.0, 1.0], 0, 1) for k in range(n)]
    assert within(sum(picks), n, 0.5)


# --- EntryProbabilities ------------------------------------------------------------------------------


def test_from_counts_by_hand():
    # en = [0, 1, 1, 2, 5, 10, 20, 61] (total 100); t_en = 6 -> p = 9/100 = 0.09.
    # fr sorted [0, 3, 3, 3, 91] -> cum [0, .03, .06, .09, 1] -> t = 3.
    counts = EntryCounts.from_arrays(
        {"en": [0, 1, 1, 2, 5, 10, 20, 61], "fr": [3, 91, 0, 3, 3], "zz": [0, 0]},
        {"en": "a" * 64, "fr": "b" * 64, "zz": "c" * 64},
    )
    probs = EntryProbabilities.from_counts(counts, t_en=6)
    assert probs.t == {"en": 6, "fr": 3, "zz": None}
    assert probs.params == {"t_en": 6, "english": "keep", "p": 0.09}
    assert probs.q["en"].tolist() == [1, 1, 1, 1, 1, 0.6, 0.3, 6 / 61]
    assert probs.q["fr"].tolist() == [1, 3 / 91, 1, 1, 1]
    assert probs.q["zz"].tolist() == [0, 0]
    rec = EntryProbabilities.from_counts(counts, t_en=6, english="recompute")
    assert rec.t["en"] == 5 and rec.q["en"][-1] == 5 / 61
    assert EntryProbabilities.from_counts(counts, t_en=6, p=0.04).t == {"en": 6, "fr": 3, "zz": None}
    no_en = EntryCounts.from_arrays({"fr": [3, 91, 0, 3, 3]}, {"fr": "b" * 64})
    with pytest.raises(ValueError, match="p="):
        EntryProbabilities.from_counts(no_en, t_en=6)
    assert EntryProbabilities.from_counts(no_en, p=0.09).t == {"fr": 3}
    assert probs.params["p"] == t_to_p(6, counts["en"])


def test_entry_probabilities_save_load_round_trip(tmp_path):
    _, probs, entries = _world(2, 600)
    probs.params["p"] = 1 / 3
    probs.t["en"] = 40.5  # a non-integer threshold survives too
    path = tmp_path / "p.bin"
    probs.save(path)
    loaded = EntryProbabilities.load(path)
    assert loaded.t == probs.t and loaded.digests == probs.digests and loaded.params == probs.params
    assert sorted(loaded.q) == sorted(probs.q)
    for lang in probs.q:
        assert loaded.q[lang].dtype == np.float64
        assert loaded.q[lang].tobytes() == probs.q[lang].tobytes()
    again = tmp_path / "again.bin"
    loaded.save(again)
    assert again.read_bytes() == path.read_bytes()
    loaded.check_digests({lang: entries_digest(e) for lang, e in entries.items()})
    with pytest.raises(MatcherMismatchError, match="zh"):
        loaded.check_digests({"zh": entries_digest(entries["zh"][::-1])})
    counts_file = tmp_path / "counts.bin"
    EntryCounts.from_arrays({"en": [1]}, {"en": "a" * 64}).save(counts_file)
    with pytest.raises(ValueError):
        EntryProbabilities.load(counts_file)


def test_ids_from_another_list_are_a_clear_error():
    q = np.array([0.5, 1.0, 0.25])
    with pytest.raises(ValueError, match="outside this language's 3 entries"):
        keep_probability(q, [1, 7])
    with pytest.raises(ValueError, match="another metadata list"):
        keep_probability(q, [-1])


def test_accumulate_gives_the_bits_of_the_plain_loop():
    """The kernel's shortcut for the first id of every row (p = q) changes no bit: rows with and
    without ids, zeros (also negative), ones, NaN, float32 input."""
    from metaclip2.curation.sampling import _accumulate, _accumulation_plan

    def plain(qi, offsets):
        p = np.zeros(len(offsets) - 1, dtype=np.float64)
        for r in range(len(offsets) - 1):
            for j in range(offsets[r], offsets[r + 1]):
                p[r] += qi[j] * (1.0 - p[r])
        return p

    rng = np.random.default_rng(7)
    for min_ids in (1, 0):  # every row with an id (the shortcut), or some without
        lengths = rng.integers(min_ids, 5, 300)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        qi = rng.random(int(offsets[-1]))
        qi[rng.integers(0, len(qi), 20)] = 0.0
        qi[rng.integers(0, len(qi), 20)] = -0.0
        qi[rng.integers(0, len(qi), 20)] = 1.0
        qi[rng.integers(0, len(qi), 5)] = np.nan
        for q in (qi, qi.astype(np.float32)):
            want = plain(q, offsets)
            for got in (_accumulate(q, offsets), _accumulate(q, offsets, _accumulation_plan(offsets))):
                assert got.dtype == np.float64
                assert np.array_equal(got.view(np.int64), want.view(np.int64))
