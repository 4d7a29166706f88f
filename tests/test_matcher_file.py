"""The data-only .matcher format, version 2 (still read; version 3, the mapped one, is tested in
test_matcher_mapped.py): nothing in a file is executed, and nothing unchecked is trusted;
plus unmatchable entries (reported, skipped, and truly never matching)."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import random
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaclip2.core.errors import MatcherFileError, MatcherMismatchError
from metaclip2.matching.matcher import MATCHER_ENGINES, Matcher
from metaclip2.matching.store import MetadataStore
from metaclip2.matching.text import WRAPPED_PUNCTUATION, pad_entry, spacing
from metaclip2.core.entries import MetadataError, entries_digest, write_metadata

EN = ["cat", "New York", "of univ", "univ", "0", "(planet)", "Mercury (planet)", "'tween", "U.S", "a . b", "tower 東京", "東京"]
ZH = ["東京", "大学", "0", "北京大学", "京"]
TEXTS = ["A cat in New York, 0.", "of univ of universe", "Mercury (planet) 'tween a.b", "我在東京大学 tower 東京x", "北京大学", ""]


def ref(entries, text):
    spaced = spacing(text)
    return [i for i, e in enumerate(entries) if pad_entry(e) in spaced]


def _write(tmp_path, name, entries, lang):
    path = tmp_path / name
    Matcher(entries, lang=lang).save(path, version=2)
    return path


def _sections(data: bytes):
    size = int.from_bytes(data[12:16], "little")
    header = json.loads(data[16 : 16 + size])
    out, offset, start = {}, 0, 16 + size
    for name, dtype, count in header["sections"]:
        n = count * np.dtype(dtype).itemsize
        out[name] = data[start + offset : start + offset + n]
        offset += n + (-n % 8)
    return header, out


def _craft(header: dict, sections: dict) -> bytes:
    """A well-formed file around arbitrary sections, with a correct checksum: what an attacker can make."""
    chunks, specs = [], []
    for name, dtype, _ in header["sections"]:
        b = sections[name]
        specs.append([name, dtype, len(b) // np.dtype(dtype).itemsize])
        chunks += [b, b"\0" * (-len(b) % 8)]
    payload = b"".join(chunks)
    h = dict(header, sections=specs, payload_bytes=len(payload), payload_sha256=hashlib.sha256(payload).hexdigest())
    raw = json.dumps(h).encode()
    raw += b" " * (-(16 + len(raw)) % 8)
    return b"MC2MATCH" + (2).to_bytes(4, "little") + len(raw).to_bytes(4, "little") + raw + payload


def _same_matches(m, entries):
    return m.entries == entries and [m.match(t) for t in TEXTS] == [ref(entries, t) for t in TEXTS]


# --- format ----------------------------------------------------------------------------------------


def test_round_trip_is_deterministic_and_records_language(tmp_path):
    a = _write(tmp_path, "a.matcher", EN, "en")
    b = _write(tmp_path, "b.matcher", EN, "en")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes()[:8] == b"MC2MATCH"
    m = Matcher.load(a, entries=EN, lang="en")
    assert m.lang == "en" and m.digest == entries_digest(EN) and _same_matches(m, EN)
    with pytest.raises(MatcherMismatchError, match="'en', not 'zh'"):
        Matcher.load(a, lang="zh")


def test_payload_is_plain_data(tmp_path):
    data = _write(tmp_path, "en.matcher", EN, "en").read_bytes()
    # No pickle opcodes stream anywhere: the payload is entries, lengths, words and int32 codes.
    header, sections = _sections(data)
    assert set(sections) == {"entries", "lengths", "words", "tokens"}
    assert sections["words"].decode("utf-8").split("\n")[:3] == ["cat", "New", "York"]
    assert b"\x80\x05" not in data[:2] and b"builtins" not in data


def test_old_pickle_format_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "ran"))

    header = json.dumps({"format": "metaclip2-matcher/1", "digest": entries_digest(EN), "entries": len(EN)}).encode()
    old = len(header).to_bytes(8, "little") + header + pickle.dumps((EN, Payload()), protocol=5)
    path = tmp_path / "en.matcher"
    path.write_bytes(old)
    with pytest.raises(MatcherFileError, match="old pickle-based"):
        Matcher.load(path)
    with pytest.raises(MatcherFileError):
        Matcher.read_digest(path)
    write_metadata(tmp_path / "en.tsv", EN, lang="en")
    with pytest.warns(UserWarning, match="old pickle-based"):
        m = MetadataStore(tmp_path).matcher("en")
    assert _same_matches(m, EN)
    with pytest.raises(MatcherFileError):
        MetadataStore(tmp_path, strict=True).matcher("en")
    assert not marker.exists()
    # The same pickle under a new-format header is not a matcher either.
    path.write_bytes(b"MC2MATCH" + old)
    with pytest.raises(MatcherFileError):
        Matcher.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("entries, lang", [(EN, "en"), (ZH, "zh")])
def test_every_truncation_is_detected(tmp_path, entries, lang):
    data = _write(tmp_path, "m.matcher", entries, lang).read_bytes()
    cut = tmp_path / "cut.matcher"
    for n in sorted({*range(0, 40), *range(0, len(data), 7), len(data) - 1}):
        cut.write_bytes(data[:n])
        with pytest.raises(MatcherFileError):
            Matcher.load(cut)


@pytest.mark.parametrize("entries, lang", [(EN, "en"), (ZH, "zh")])
def test_bit_flips_are_detected_or_harmless(tmp_path, entries, lang):
    path = _write(tmp_path, "m.matcher", entries, lang)
    data = path.read_bytes()
    rng = random.Random(0)
    positions = sorted({*range(0, 16), *(rng.randrange(len(data)) for _ in range(400))})
    detected = 0
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(bad))
        try:
            m = Matcher.load(path, digest=entries_digest(entries), lang=lang)
        except (MatcherFileError, MatcherMismatchError):
            detected += 1
            continue
        assert _same_matches(m, entries), f"flip at byte {pos} changed the matcher"
    assert detected > len(positions) * 0.9


def test_foreign_and_crafted_sections_are_refused(tmp_path):
    en = _sections(_write(tmp_path, "en.matcher", EN, "en").read_bytes())
    zh = _sections(_write(tmp_path, "zh.matcher", ZH, "zh").read_bytes())
    header, sec = en
    crafted = tmp_path / "x.matcher"
    cases = {
        # en's header and entries with zh's vocabulary and token codes.
        "foreign tokens": {**sec, "words": zh[1]["words"], "tokens": zh[1]["tokens"]},
        # The same vocabulary with two token codes swapped: wrong ids if trusted.
        "swapped tokens": {**sec, "tokens": np.frombuffer(sec["tokens"], "<i4")[[1, 0, *range(2, len(sec["tokens"]) // 4)]].tobytes()},
        # A word changed in the vocabulary.
        "edited word": {**sec, "words": sec["words"].replace(b"cat", b"cot")},
        # Entries of another list under this list's digest.
        "foreign entries": {**sec, "entries": zh[1]["entries"], "lengths": zh[1]["lengths"]},
        # Length fields that disagree with the lengths section.
        "bad lengths": {**sec, "lengths": (np.frombuffer(sec["lengths"], "<u4").astype(np.int64) + np.array([1, -1] + [0] * (len(EN) - 2))).astype("<u4").tobytes()},
        # Token codes out of range.
        "huge code": {**sec, "tokens": np.full(len(sec["tokens"]) // 4, 2**30, "<i4").tobytes()},
    }
    for name, sections in cases.items():
        crafted.write_bytes(_craft(header, sections))
        with pytest.raises(MatcherFileError):
            Matcher.load(crafted)
        with pytest.raises(MatcherFileError):
            Matcher.load(crafted, digest=entries_digest(EN), lang="en")
    # zh's whole file under en's name: a foreign list.
    crafted.write_bytes((tmp_path / "zh.matcher").read_bytes())
    with pytest.raises(MatcherMismatchError):
        Matcher.load(crafted, digest=entries_digest(EN))
    # A header announcing absurd sizes fails cleanly, without allocating them.
    for field, value in (("entries", 10**15), ("words", 10**12), ("payload_bytes", 10**15)):
        crafted.write_bytes(_craft(header, sec).replace(f'"{field}": '.encode(), f'"{field}": {value}0'.encode(), 1))
        with pytest.raises(MatcherFileError):
            Matcher.load(crafted)


def test_junk_header_values_are_refused(tmp_path):
    header, sec = _sections(_write(tmp_path, "en.matcher", EN, "en").read_bytes())
    path = tmp_path / "j.matcher"
    for change in ({"format": "metaclip2-matcher/9"}, {"entries": -1}, {"entries": True}, {"lang": 5}, {"digest": None}, {"sections": []}):
        data = _craft(dict(header, **change), sec)
        path.write_bytes(data)
        with pytest.raises(MatcherFileError):
            Matcher.load(path)
    path.write_bytes(b"MC2MATCH" + (9).to_bytes(4, "little") + b"\0" * 8)
    with pytest.raises(MatcherFileError, match="version 9"):
        Matcher.load(path)
    path.write_bytes(b"MC2MATCH" + (2).to_bytes(4, "little") + (2**31).to_bytes(4, "little"))
    with pytest.raises(MatcherFileError):
        Matcher.load(path)
    assert issubclass(MatcherFileError, MetadataError)


def test_store_rebuilds_a_damaged_file_and_strict_refuses(tmp_path):
    for lang, entries in (("en", EN), ("zh", ZH)):
        write_metadata(tmp_path / f"{lang}.tsv", entries, lang=lang)
    Matcher(EN, lang="en").save(tmp_path / "en.matcher")
    data = (tmp_path / "en.matcher").read_bytes()
    (tmp_path / "en.matcher").write_bytes(data[: len(data) // 2])
    # zh.matcher holds en's matcher: a foreign file.
    (tmp_path / "zh.matcher").write_bytes(data)
    store = MetadataStore(tmp_path)
    with pytest.warns(UserWarning, match="truncated"):
        assert _same_matches(store.matcher("en"), EN)
    with pytest.warns(UserWarning, match="another entry list"):
        assert _same_matches(store.matcher("zh"), ZH)
    strict = MetadataStore(tmp_path, strict=True)
    with pytest.raises(MatcherFileError, match="truncated"):
        strict.matcher("en")
    with pytest.raises(MatcherMismatchError):
        strict.matcher("zh")
    # Another language's file with the right list (same entries saved under another language).
    Matcher(ZH, lang="ja").save(tmp_path / "zh.matcher")
    with pytest.raises(MatcherMismatchError, match="'ja', not 'zh'"):
        MetadataStore(tmp_path, strict=True).matcher("zh")


def test_no_pickle_in_the_matching_code():
    root = Path(__file__).resolve().parent.parent / "metaclip2"
    for path in root.rglob("*.py"):
        code = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+(pickle|marshal|dill|cloudpickle)\b", code, re.M), path
        assert not re.search(r"\b(pickle|marshal|dill|cloudpickle)\.loads?\(", code), path


# --- unmatchable entries -----------------------------------------------------------------------------


def witness(entry: str) -> str:
    """A text that contains `entry` when anything can: spacing adds the spaces around wrapped marks."""
    return re.sub(" ?([" + re.escape("".join(WRAPPED_PUNCTUATION)) + "]) ?", r"\1", pad_entry(entry))


@pytest.mark.parametrize("engine", MATCHER_ENGINES)
def test_unmatchable_entries_reported_and_skipped(caplog, engine):
    entries = ["cat", ".22 caliber", "U.S", "St. Louis", "a . b", ".", "Inc.", "x,y", "東京。", "ok!", "! ok", "what ?"]
    with caplog.at_level(logging.WARNING, logger="metaclip2.matching.matcher"):
        m = Matcher(entries, lang="en", engine=engine)
    assert [entries[i] for i in m.unmatchable] == [".22 caliber", "U.S", "St. Louis", "Inc.", "x,y", "ok!"]
    assert "6 of 12 entries of 'en' can never match" in caplog.text and "'.22 caliber'" in caplog.text
    for i, e in enumerate(entries):
        hit = i in ref(entries, witness(e))
        assert hit == (i not in m.unmatchable), e
        assert (i in m.match(witness(e))) == hit


entry_piece = st.sampled_from(["a", "bc", "東", "ก", " ", "(", ")", "'", *WRAPPED_PUNCTUATION])


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(entry_piece, min_size=1, max_size=5).map("".join), min_size=1, max_size=10, unique=True))
@pytest.mark.parametrize("engine", MATCHER_ENGINES)
def test_skipped_entries_are_exactly_those_that_never_match(engine, entries):
    m = Matcher(entries, engine=engine)
    texts = [witness(e) for e in entries] + [" ".join(entries), "".join(entries)]
    for i, e in enumerate(entries):
        assert (i in ref(entries, witness(e))) == (i not in m.unmatchable), e
    assert [m.match(t) for t in texts] == [ref(entries, t) for t in texts]


def test_nbytes_estimate_is_close_to_what_is_allocated():
    import tracemalloc

    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 9))) for _ in range(30000)]
    entries = list(dict.fromkeys(words[:8000] + [f"{a} {b}" for a, b in zip(words[8000:], words[9000:])]))
    tracemalloc.start()
    m = Matcher(entries)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert 0.5 * held < m.nbytes < 2 * held


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("engine", MATCHER_ENGINES)
@pytest.mark.parametrize("entries", [[], ["a"], ["東"], ["a b"], [" "], ["x", "(y)"], ["U.S"], ["\ud800x", "é è"]])
def test_small_lists_round_trip(tmp_path, entries, engine, version):
    path = tmp_path / "s.matcher"
    m = Matcher(entries, engine=engine)
    m.save(path, version=version)
    loaded = Matcher.load(path, entries=entries, engine=engine)
    texts = ["a b 東 x (y)  U.S \ud800x é è", "", " "]
    assert loaded.entries == entries and loaded.digest == entries_digest(entries)
    a, b = loaded.match_many(texts), m.match_many(texts)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert [loaded.match(t) for t in texts] == [ref(entries, t) for t in texts]
    if engine == "trie" and version == 2:  # computed, not measured: the same however the matcher was made
        assert Matcher(loaded.entries).nbytes == loaded.nbytes
    elif engine == "trie":  # the mapped arrays, shared through the page cache
        assert 0 < loaded.nbytes <= path.stat().st_size
