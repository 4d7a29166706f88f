"""Matcher against brute-force references (SPEC §2), batch form, persistence, errors."""

from __future__ import annotations

import random
import string
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaclip2.core.errors import MatcherMismatchError
from metaclip2.matching.matcher import MATCHER_ENGINES, Matcher
from metaclip2.matching.text import pad_entry, spacing
from metaclip2.core.entries import MetadataError, entries_digest

# Every test runs with each engine: they must give the same results for every input.
pytestmark = pytest.mark.parametrize("engine", MATCHER_ENGINES)


# --- references ---------------------------------------------------------------------------


def ref_lib(entries, text):
    """The definition, with the library's own spacing and padding."""
    spaced = spacing(text)
    return [i for i, e in enumerate(entries) if pad_entry(e) in spaced]


_SPEC_BLOCKS = ((0x0E00, 0x0FFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x3000, 0x30FF), (0x3400, 0x9FFF), (0xFF00, 0xFFEF), (0x20000, 0x2A6DF))


def _spec_cjk_like(ch):
    cp = ord(ch)
    return (
        any(lo <= cp <= hi for lo, hi in _SPEC_BLOCKS)
        or ch in string.punctuation
        or ch in "，。、；：？！“”‘’（）【】《》〈〉「」『』～—¿"
        or unicodedata.category(ch).startswith("P")
    )


def ref_spec(entries, text):
    """Written from the SPEC text alone: spaced text, padded entries, every start position tried."""
    spaced = " " + "".join(f" {c} " if c in ",.;:?!`" else " " if c in "\t\n\r" else c for c in text) + " "
    out = []
    for i, e in enumerate(entries):
        p = ("" if _spec_cjk_like(e[0]) else " ") + e + ("" if _spec_cjk_like(e[-1]) else " ")
        if any(spaced[k : k + len(p)] == p for k in range(len(spaced) - len(p) + 1)):
            out.append(i)
    return out


def check_csr(offsets, ids, n):
    assert isinstance(offsets, np.ndarray) and isinstance(ids, np.ndarray)
    assert offsets.dtype == np.int64 and offsets.shape == (n + 1,)
    assert ids.dtype == np.int32 and ids.ndim == 1
    assert offsets[0] == 0 and offsets[-1] == len(ids)
    assert np.all(np.diff(offsets) >= 0)
    for k in range(n):
        seg = ids[offsets[k] : offsets[k + 1]]
        assert np.all(np.diff(seg) > 0), "ids must be sorted and unique within a text"
    return [ids[offsets[k] : offsets[k + 1]].tolist() for k in range(n)]


# --- generated inputs ---------------------------------------------------------------------

# Words, scripts and marks; entries share padding ("of", "of univ", ...) and characters
# both inside and outside the CJK-like class.
WORDS = ["of", "univ", "universe", "Of", "UNIV", "a", "cat", "東京", "大学", "東", "กข", "ข", "한국", "𠀀", "ア", "ສະ", "ខ្មែ", "1", "42"]
MARKS = list(",.;:?!`()'#-") + ["，", "。", "「", "」", "¿"]
SPACES = [" ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\u3000", "\xa0"]
TEXT_ONLY = ["\x00", "\ud800", "\x0b", "\u2028"]

text_piece = st.sampled_from(WORDS + MARKS + SPACES + TEXT_ONLY)
texts_st = st.lists(st.lists(text_piece, max_size=12).map("".join), max_size=10)
entry_piece = st.sampled_from(WORDS + MARKS + [" ", "  "])
entry_st = st.lists(entry_piece, min_size=1, max_size=4).map("".join)


def _clean(s):
    return "".join(c for c in s if c not in "\t\n\r\x00")


@st.composite
def cases(draw):
    texts = draw(texts_st)
    entries = draw(st.lists(entry_st, max_size=12))
    # Slices of the texts make matches frequent, including partial words.
    for _ in range(draw(st.integers(0, 10))):
        if not texts:
            break
        t = texts[draw(st.integers(0, len(texts) - 1))]
        a = draw(st.integers(0, len(t)))
        b = draw(st.integers(a, len(t)))
        entries.append(_clean(t[a:b]))
    entries = list(dict.fromkeys(e for e in entries if e))
    draw(st.randoms()).shuffle(entries)
    return entries, texts


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(1, 4))
def test_match_and_match_many_agree_with_references(engine, case, batch_size):
    entries, texts = case
    m = Matcher(entries, engine=engine)
    expected = [ref_lib(entries, t) for t in texts]
    assert expected == [ref_spec(entries, t) for t in texts]
    assert [m.match(t) for t in texts] == expected
    assert check_csr(*m.match_many(texts, batch_size=batch_size), len(texts)) == expected
    assert check_csr(*m.match_many(texts), len(texts)) == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=6), max_size=8), st.lists(st.text(max_size=25), max_size=6))
def test_any_unicode_agrees_with_reference(engine, entries, texts):
    entries = list(dict.fromkeys(e for e in map(_clean, entries) if e))
    entries += [s for s in dict.fromkeys(_clean(t[1:4]) for t in texts) if s and s not in entries]
    m = Matcher(entries, engine=engine)
    expected = [ref_lib(entries, t) for t in texts]
    assert [m.match(t) for t in texts] == expected
    assert check_csr(*m.match_many(texts, batch_size=2), len(texts)) == expected


def _random_corpus(seed, n_entries, n_texts):
    rng = random.Random(seed)
    latin = ["".join(rng.choice("abcdeo") for _ in range(rng.randint(1, 4))) for _ in range(150)]
    cjk = ["".join(rng.choice("東京大学中国日本人ア") for _ in range(rng.randint(1, 3))) for _ in range(80)]
    thai = ["".join(rng.choice("กขคง") for _ in range(rng.randint(1, 3))) for _ in range(30)]
    vocab = latin + cjk + thai + ["한국", "𠀀", "Москва"]
    seps = [" "] * 8 + [", ", ". ", "; ", "(", ")", "'", "#", "-", "，", "\t", "\n", "  ", "!", "?"]

    def text():
        return "".join(rng.choice(vocab) + rng.choice(seps + [""]) for _ in range(rng.randint(0, 10)))

    entries = set()
    while len(entries) < n_entries:
        kind = rng.random()
        if kind < 0.4:
            e = rng.choice(vocab)
        elif kind < 0.7:
            e = rng.choice(vocab) + rng.choice([" ", "", "-", "  "]) + rng.choice(vocab)
        elif kind < 0.85:
            e = rng.choice(["(", "#", "「", ""]) + rng.choice(vocab) + rng.choice([")", ".", "」", "'", ""])
        else:
            t = _clean(text())
            a = rng.randint(0, len(t))
            e = t[a : a + rng.randint(1, 6)]
        if e:
            entries.add(e)
    entries = sorted(entries)
    rng.shuffle(entries)
    return entries, [text() for _ in range(n_texts)]


def test_random_corpus_many_entries_and_batches(engine):
    entries, texts = _random_corpus(0, 700, 1500)
    texts[10] = "x\x00y 東京"  # one batch takes the NUL fallback, the others do not
    m = Matcher(entries, engine=engine)
    expected = [ref_lib(entries, t) for t in texts]
    assert sum(map(len, expected)) > 3000  # the corpus really exercises matching
    assert [m.match(t) for t in texts] == expected
    for batch_size in (97, 8192):
        assert check_csr(*m.match_many(texts, batch_size=batch_size), len(texts)) == expected


# --- hand-written cases ---------------------------------------------------------------------


def test_shared_padding_of_univ_of_universe(engine):
    entries = ["of", "of univ", "univ", "of universe", "universe", "univ of", "niv", "of univ of universe", "verse"]
    m = Matcher(entries, engine=engine)
    assert m.match("of univ of universe") == [0, 1, 2, 3, 4, 5, 7]
    assert m.match("universe of") == [0, 4]
    assert m.match("university") == []


@pytest.mark.parametrize(
    "entry, text, hit",
    [
        ("cat", "a cat.", True),
        ("cat", "cat", True),
        ("cat", "category", False),
        ("cat", "bobcat", False),
        ("cat", "cat's", False),  # ' is not wrapped
        ("cat", "(cat)", False),
        ("cat", "cat,dog", True),
        ("cat", "cat`s", True),
        ("cat", "a\tcat\n", True),
        ("cat", "Cat", False),  # case-sensitive
        ("Cat", "cat", False),
        ("cat", "a\u3000cat", False),  # ideographic space is not a word boundary
        ("cat", "a\xa0cat", False),
        ("(cat)", "x(cat)y", True),  # punctuation edges need no boundary
        ("#tag", "a#tag b", True),
        ("#tag", "a #tags", False),
        ("東京", "我在東京大学", True),
        ("東京 tower", "東京 towers", False),
        ("東京 tower", "x東京 tower.", True),
        ("東京 tower", "東京\ttower", True),
        ("tower 東京", "tower 東京x", True),
        ("tower 東京", "Xtower 東京", False),
        ("กข", "คกขค", True),
        ("한국", "한국어", False),  # Hangul keeps word boundaries
        ("한국", "in 한국.", True),
        ("New York", "New  York", False),  # internal spaces are literal
        ("New  York", "New  York", True),
        (" x", "a  x", True),  # a leading space asks for two spaces
        (" x", "a x", False),
        ("x ", "x  a", True),
        ("U.S", "U.S", False),  # "." is spaced out in texts, so such an entry never matches
        ("𠀀字", "𠀀𠀀字", True),
    ],
)
def test_boundary_cases(engine, entry, text, hit):
    m = Matcher(["filler", entry], engine=engine)
    assert m.match(text) == ([1] if hit else [])
    offsets, ids = m.match_many([text, "filler", text], batch_size=2)
    assert check_csr(offsets, ids, 3) == [[1] if hit else [], [0], [1] if hit else []]


def test_overlapping_and_repeated_occurrences_count_once(engine):
    m = Matcher(["ab", "aba", "東京", "京"], engine=engine)
    assert m.match("ab ab ab aba aba") == [0, 1]
    assert m.match("東京東京東京") == [2, 3]
    offsets, ids = m.match_many(["東京東京東京"])
    assert offsets.tolist() == [0, 2] and ids.tolist() == [2, 3]


def test_nul_and_surrogates_in_texts(engine):
    m = Matcher(["a", "東京", "b c"], engine=engine)
    texts = ["a \x00東京", "\x00", "b c", "\ud800 a", "", "東京\udfff"]
    expected = [ref_lib(m.entries, t) for t in texts]
    assert expected == [[0, 1], [], [2], [0], [], [1]]
    assert check_csr(*m.match_many(texts), len(texts)) == expected
    assert check_csr(*m.match_many(texts[2:]), len(texts) - 2) == expected[2:]


def test_empty_inputs(engine):
    m = Matcher(["a"], engine=engine)
    offsets, ids = m.match_many([])
    assert offsets.dtype == np.int64 and offsets.tolist() == [0]
    assert ids.dtype == np.int32 and len(ids) == 0
    assert check_csr(*m.match_many(["", "", "a"]), 3) == [[], [], [0]]
    empty = Matcher([], engine=engine)
    assert len(empty) == 0 and empty.match("anything") == []
    assert check_csr(*empty.match_many(["x", ""]), 2) == [[], []]


def test_only_token_or_only_automaton_entries(engine):
    for entries in (["cat", "dog"], ["New York"], ["東京"], ["(x)"]):
        m = Matcher(entries, engine=engine)
        texts = ["cat dog New York 東京 (x)", "nothing", ""]
        assert check_csr(*m.match_many(texts), 3) == [ref_lib(entries, t) for t in texts]


def test_entries_are_kept_in_order_with_ids(engine):
    entries = ["b", "a", "東京"]
    m = Matcher(entries, engine=engine)
    assert m.entries == entries and len(m) == 3
    assert m.digest == entries_digest(entries)
    assert m.match("a b 東京") == [0, 1, 2]


# --- errors ---------------------------------------------------------------------------------


def test_duplicates_are_named(engine):
    with pytest.raises(MetadataError) as e:
        Matcher(["apple", "pear", "apple", "東京", "fig", "東京"], engine=engine)
    msg = str(e.value)
    assert "'apple'" in msg and "'東京'" in msg and "'pear'" not in msg and "'fig'" not in msg


def test_case_variants_are_not_duplicates(engine):
    m = Matcher(["Apple", "apple", "APPLE"], engine=engine)
    assert m.match("apple APPLE") == [1, 2]


@pytest.mark.parametrize("bad", ["", "a\tb", "a\nb", "a\rb", "a\x00b"])
def test_unusable_entries_rejected(engine, bad):
    with pytest.raises(MetadataError):
        Matcher(["ok", bad], engine=engine)


# --- persistence ----------------------------------------------------------------------------


def test_save_load_round_trip(engine, tmp_path):
    entries, texts = _random_corpus(1, 300, 400)
    m = Matcher(entries, engine=engine)
    path = tmp_path / "sub" / "en.matcher"
    m.save(path)
    assert Matcher.read_digest(path) == m.digest
    for loaded in (Matcher.load(path, engine=engine), Matcher.load(path, entries=entries, engine=engine), Matcher.load(path, digest=m.digest, engine=engine)):
        assert loaded.entries == entries and loaded.digest == m.digest
        assert [loaded.match(t) for t in texts] == [m.match(t) for t in texts]
        a, b = loaded.match_many(texts, batch_size=50), m.match_many(texts)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not list(tmp_path.glob("sub/*.tmp*"))


def test_load_refuses_other_entry_list(engine, tmp_path):
    entries = ["a", "b", "c"]
    path = tmp_path / "m.matcher"
    Matcher(entries, engine=engine).save(path)
    for other in (["a", "b"], ["b", "a", "c"], ["a", "b", "c", "d"], ["a", "b", "C"]):
        with pytest.raises(MatcherMismatchError):
            Matcher.load(path, entries=other, engine=engine)
    with pytest.raises(MatcherMismatchError):
        Matcher.load(path, digest=entries_digest(["x"]))
    assert issubclass(MatcherMismatchError, MetadataError)


def test_load_refuses_non_matcher_file(engine, tmp_path):
    path = tmp_path / "junk.matcher"
    path.write_bytes(b"not a matcher at all")
    with pytest.raises(MetadataError):
        Matcher.load(path, engine=engine)
    (tmp_path / "empty.matcher").write_bytes(b"")
    with pytest.raises(MetadataError):
        Matcher.load(tmp_path / "empty.matcher", engine=engine)
