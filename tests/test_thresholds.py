"""t_to_p, p_to_t, thresholds and entry probabilities (Algorithm 1, stages 2-3), by hand and by property."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip2.curation.threshold import DEFAULT_T_EN, entry_probabilities, p_to_t, t_to_p, thresholds

# Hand example: counts already sorted, total 100 so every fraction is a round percentage.
#   c      = [0,    1,    1,    2,    5,    10,   20,   61]
#   cumsum = [0,    1,    2,    4,    9,    19,   39,   100]
#   cum/100= [0.00, 0.01, 0.02, 0.04, 0.09, 0.19, 0.39, 1.00]
C = [0, 1, 1, 2, 5, 10, 20, 61]


@pytest.mark.parametrize(
    "t, p",
    [
        (0, 0.0),  # nothing is < 0
        (1, 0.0),  # only the 0 count is < 1
        (2, 0.02),  # 0 + 1 + 1
        (5, 0.04),  # 0 + 1 + 1 + 2: the count equal to t is excluded (strict <)
        (6, 0.09),  # ... + 5
        (10.5, 0.19),  # ... + 10
        (61, 0.39),  # everything but 61
        (62, 1.0),
        (10**9, 1.0),
    ],
)
def test_t_to_p_by_hand(t, p):
    assert t_to_p(t, C) == p
    assert t_to_p(t, C[::-1]) == p  # order does not matter


@pytest.mark.parametrize(
    "p, t",
    [
        (0.04, 2),  # cum 0.04 at sorted index 3, count 2
        (0.09, 5),  # exactly at index 4
        (0.10, 5),  # |0.09-0.10| = 0.01 < |0.19-0.10| = 0.09
        (0.15, 10),  # |0.19-0.15| = 0.04 < |0.09-0.15| = 0.06
        (0.30, 20),  # |0.39-0.30| = 0.09 < |0.19-0.30| = 0.11
        (0.5, 20),  # |0.39-0.5| = 0.11 < |1-0.5| = 0.5
        (0.9, 61),
        (1.0, 61),
        (0.005, 1),  # closest is cum 0.00 at count 0 (|0.005| = |0.01-0.005|: first wins) -> 0 -> raised to 1
        (0.0, 1),  # lands on the zero count: a threshold of 0 is raised to 1
    ],
)
def test_p_to_t_by_hand(p, t):
    assert p_to_t(p, C) == t
    assert p_to_t(p, [61, 0, 20, 1, 10, 2, 5, 1]) == t  # unsorted input gives the same


def test_asymmetry_strict_less_vs_inclusive_cumsum():
    # t = 5 -> p = (0+1+1+2)/100 = 0.04 (5 itself excluded) -> closest cum is 0.04 at count 2, not 5.
    assert p_to_t(t_to_p(5, C), C) == 2
    # And back: t_to_p(2) = (0+1+1)/100 = 0.02, not 0.04.
    assert t_to_p(p_to_t(0.04, C), C) == 0.02


def test_ties():
    # c = [1, 3, 4], total 8: cum = [1/8, 4/8, 8/8]. p = 5/16 sits exactly halfway between
    # 1/8 and 1/2 (both 3/16 away, exact in binary): the first position wins -> count 1.
    assert p_to_t(5 / 16, [4, 1, 3]) == 1
    assert p_to_t(5 / 16 + 1e-9, [4, 1, 3]) == 3
    # Equal counts: c = [2, 2, 2, 2], cum = [.25, .5, .75, 1].
    assert p_to_t(0.3, [2, 2, 2, 2]) == 2
    # t equal to a count excludes it: t_to_p(2, [2, 2, 4]) = 0, t_to_p(3, .) = 4/8.
    assert t_to_p(2, [2, 2, 4]) == 0.0
    assert t_to_p(3, [2, 2, 4]) == 0.5


def test_all_zero_counts_have_no_threshold():
    for zeros in ([0, 0, 0], [], np.zeros(5, dtype=np.uint64)):
        with pytest.raises(ValueError, match="zero"):
            t_to_p(10, zeros)
        with pytest.raises(ValueError, match="zero"):
            p_to_t(0.5, zeros)
        assert entry_probabilities(zeros, None).tolist() == [0.0] * len(zeros)


def test_computed_zero_threshold_is_raised_to_one():
    # c sorted = [0, 0, 0, 0, 1000]: cum = [0, 0, 0, 0, 1]; p = 0.06 is closest to 0 -> count 0 -> 1.
    assert p_to_t(0.06, [0, 1000, 0, 0, 0]) == 1
    t = thresholds({"en": C, "xx": [0, 1000, 0, 0, 0]}, t_en=6)["xx"]
    assert t == 1
    q = entry_probabilities([0, 1000, 0, 0, 0], t)
    assert q.tolist() == [1.0, 1 / 1000, 1.0, 1.0, 1.0]
    assert not np.isnan(q).any()


def test_bad_arguments():
    with pytest.raises(ValueError):
        p_to_t(-0.1, C)
    with pytest.raises(ValueError):
        p_to_t(1.5, C)
    with pytest.raises(ValueError):
        t_to_p(5, [1, -2])
    with pytest.raises(ValueError):
        t_to_p(5, [[1, 2]])
    with pytest.raises(ValueError):
        t_to_p(5, [1.5, 2])
    with pytest.raises(ValueError):
        t_to_p(5, [np.nan, 2])
    for t in (0, -1, np.nan, np.inf):
        with pytest.raises(ValueError):
            entry_probabilities(C, t)


# --- thresholds() ----------------------------------------------------------------------------

# en = C (total 100); fr sorted = [0, 3, 3, 3, 91], cumsum/100 = [0, .03, .06, .09, 1].
FR = [3, 91, 0, 3, 3]


def test_thresholds_keep_and_recompute_by_hand():
    counts = {"en": np.array(C, dtype=np.uint64), "fr": FR, "zz": [0, 0, 0]}
    # t_en = 6 -> p = t_to_p(6, en) = (0+1+1+2+5)/100 = 0.09.
    # fr: closest cum to 0.09 is 0.09 at count 3. en recomputed: 0.09 at count 5. zz: no threshold.
    assert thresholds(counts, t_en=6) == {"en": 6, "fr": 3, "zz": None}
    assert thresholds(counts, t_en=6, english="keep") == {"en": 6, "fr": 3, "zz": None}
    assert thresholds(counts, t_en=6, english="recompute") == {"en": 5, "fr": 3, "zz": None}
    t = thresholds(counts, t_en=6.0)
    assert t["en"] == 6 and type(t["en"]) is int
    assert thresholds(counts, t_en=6.5)["en"] == 6.5
    # t_en = 3 -> p = (0+1+1+2)/100 = 0.04 -> fr: |0.03-0.04| < |0.06-0.04| -> count 3; en recomputed: count 2.
    assert thresholds(counts, t_en=3, english="recompute") == {"en": 2, "fr": 3, "zz": None}
    # A different English name.
    assert thresholds({"eng": C, "fr": FR}, t_en=6, english_code="eng") == {"eng": 6, "fr": 3}


def test_thresholds_default_t_en():
    assert DEFAULT_T_EN == 170_000
    en = [100, 200_000, 1_000_000]  # p = 100 / 1,200,100
    t = thresholds({"en": en, "fr": [5, 10]})
    assert t["en"] == 170_000
    assert t["fr"] == 5  # p ~ 0.00008: closest cum (1/3) is at count 5


def test_missing_english_needs_p():
    with pytest.raises(ValueError, match="p="):
        thresholds({"fr": FR}, t_en=6)
    with pytest.raises(ValueError, match="p="):
        thresholds({"en": [0, 0], "fr": FR}, t_en=6)
    # With p given there is nothing to derive from English.
    assert thresholds({"fr": FR}, p=0.09) == {"fr": 3}
    assert thresholds({"en": [0, 0], "fr": FR}, p=0.09) == {"en": None, "fr": 3}
    assert thresholds({"en": C, "fr": FR}, p=0.04, english="recompute") == {"en": 2, "fr": 3}


def test_thresholds_bad_arguments():
    with pytest.raises(ValueError):
        thresholds({"en": C}, english="paper")
    for t_en in (0, -5, None):
        with pytest.raises(ValueError):
            thresholds({"en": C}, t_en=t_en)


def test_entry_probabilities_by_hand():
    # t = 5: tail entries (c <= 5) get 1, head entries t / c.
    q = entry_probabilities([0, 1, 5, 10, 20, 6], 5)
    assert q.dtype == np.float64
    assert q.tolist() == [1.0, 1.0, 1.0, 0.5, 0.25, 5 / 6]
    assert entry_probabilities([0, 7], None).tolist() == [0.0, 0.0]
    assert entry_probabilities([], 5).shape == (0,)


# --- properties --------------------------------------------------------------------------------

counts_st = st.lists(st.one_of(st.just(0), st.integers(0, 20), st.integers(0, 10**12)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["en", "fr", "zh", "th", "xx"]), counts_st, min_size=1),
    st.floats(0.5, 1e13),
    st.sampled_from(["keep", "recompute"]),
    st.one_of(st.none(), st.floats(0, 1)),
)
def test_no_nan_ever(counts_by_lang, t_en, english, p):
    has_en = any(counts_by_lang.get("en", []))
    if p is None and not has_en:
        with pytest.raises(ValueError):
            thresholds(counts_by_lang, t_en=t_en, english=english, p=p)
        return
    t = thresholds(counts_by_lang, t_en=t_en, english=english, p=p)
    assert sorted(t) == sorted(counts_by_lang)
    for lang, c in counts_by_lang.items():
        c = np.array(c, dtype=np.uint64)
        q = entry_probabilities(c, t[lang])
        assert q.shape == c.shape and q.dtype == np.float64
        assert np.all(np.isfinite(q)) and np.all((q >= 0) & (q <= 1))
        if t[lang] is None:
            assert not c.any() and not q.any()
            continue
        if lang == "en" and english == "keep":
            assert t[lang] == t_en
        else:
            assert t[lang] >= 1
            assert t[lang] in set(c.tolist()) | {1}  # a sorted count (or the guard's 1)
        tl = float(t[lang])
        assert np.all(q[c <= tl] == 1.0)
        head = c > tl
        assert np.allclose(q[head], tl / c[head].astype(np.float64), rtol=1e-15)


@settings(max_examples=300, deadline=None)
@given(counts_st.filter(any), st.floats(0, 1), st.floats(0, 1e13))
def test_t_to_p_p_to_t_properties(c, p, t):
    pp = t_to_p(t, c)
    assert 0.0 <= pp <= 1.0
    # The plain-loop definition.
    total = sum(c)
    assert pp == pytest.approx(sum(x for x in c if x < t) / total, rel=1e-12, abs=0)
    tt = p_to_t(p, c)
    assert tt >= 1 and (tt in c or tt == 1)
    # Plain-loop p_to_t: first sorted position whose cumulative share is closest to p.
    s = sorted(c)
    cum, best, best_d = 0, None, None
    for x in s:
        cum += x
        d = abs(cum / total - p)
        if best_d is None or d < best_d:
            best, best_d = x, d
    assert tt == max(best, 1)
