"""The binary stage-1 index: round trip against plain rows, whole-image batches, damage, stage-3 keep probabilities."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip2.core.errors import DataError
from metaclip2.curation.sampling import EntryProbabilities, keep_probability
from metaclip2.pipeline.io.index import IndexBatch, IndexWriter, append_rows, iter_chunks, iter_index

LANGS = ["en", "de", "zh", "other", "ß-lang", "日本"]


@st.composite
def index_rows(draw):
    """Rows in input order: images with non-decreasing ordinals, ascending alt-text indices."""
    rows = []
    n = draw(st.integers(0, 2**40))
    for _ in range(draw(st.integers(0, 25))):
        n += draw(st.integers(1, 2**33 if draw(st.booleans()) else 3))
        image_id = draw(st.text(max_size=12))
        extra = draw(st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=3)))
        ks = sorted(draw(st.sets(st.integers(0, 70000 if draw(st.booleans()) else 5), min_size=1, max_size=4)))
        for k in ks:
            ids = sorted(draw(st.sets(st.integers(0, 2**31 - 1 if draw(st.booleans()) else 300), max_size=6)))
            rows.append((n, image_id, k, draw(st.sampled_from(LANGS)), ids, draw(st.text(max_size=40)), extra or None))
    return rows


def _plain(rows):
    return [(int(n), i, int(k), lang, [int(x) for x in ids], text, extra) for n, i, k, lang, ids, text, extra in rows]


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(rows=index_rows(), chunk_rows=st.integers(1, 12), batch_rows=st.integers(1, 20))
def test_round_trip_equals_the_rows_written(tmp_path_factory, rows, chunk_rows, batch_rows):
    path = tmp_path_factory.mktemp("idx") / "s.index.bin"
    with IndexWriter(path, chunk_rows=chunk_rows) as w:
        for row in rows:
            w.write(*row)
    assert w.rows == len(rows)
    batches = list(iter_index(path, batch_rows=batch_rows))
    got = [row for b in batches for row in b.rows()]
    assert _plain(got) == _plain(rows)
    # whole images per batch; arrays agree with the lists
    for b in batches:
        assert len(b.lang) == len(b.id) == len(b.text) == len(b.extra) == len(b.k) == len(b)
        assert b.offsets[0] == 0 and b.offsets[-1] == len(b.ids)
        assert [b.languages[c] for c in b.lang_code] == b.lang
    for before, after in zip(batches, batches[1:]):
        assert before.n[-1] != after.n[0]
    # deterministic bytes
    again = path.with_name("again.index.bin")
    with IndexWriter(again, chunk_rows=chunk_rows) as w:
        for row in rows:
            w.write(*row)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.slow
@settings(max_examples=50, deadline=None)
@given(rows=index_rows(), chunk_rows=st.integers(1, 7))
def test_scratch_runs_round_trip(tmp_path_factory, rows, chunk_rows):
    """append_rows (temporary runs of stage 1) may cut images; iter_chunks gives the rows back."""
    path = tmp_path_factory.mktemp("run") / "run.tmp1"
    half = len(rows) // 2
    append_rows(path, rows[:half], chunk_rows)
    append_rows(path, rows[half:], chunk_rows)
    assert _plain([row for c in iter_chunks(path) for row in c.rows()]) == _plain(rows)


def test_smaller_than_jsonl_and_empty(tmp_path):
    rnd = random.Random(0)
    rows = []
    for n in range(2000):
        for k in range(rnd.randint(1, 3)):
            rows.append((n, f"image-{n:08d}", k, rnd.choice(LANGS), sorted(rnd.sample(range(50000), 3)), " ".join("word" for _ in range(6)), None))
    path = tmp_path / "a.index.bin"
    with IndexWriter(path) as w:
        for row in rows:
            w.write(*row)
    as_json = sum(len(json.dumps({"n": r[0], "id": r[1], "k": r[2], "lang": r[3], "ids": r[4], "text": r[5]})) + 1 for r in rows)
    assert path.stat().st_size < 0.6 * as_json
    with IndexWriter(tmp_path / "empty.index.bin"):
        pass
    assert list(iter_index(tmp_path / "empty.index.bin")) == []


def test_damage_is_detected(tmp_path):
    path = tmp_path / "a.index.bin"
    with IndexWriter(path, chunk_rows=2) as w:
        for n in range(6):
            w.write(n, f"i{n}", 0, "en", [n, n + 1], f"text {n}", {"url": "u"})
    data = path.read_bytes()
    for name, bad in [("flip", data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]), ("truncated", data[:-3]),
                      ("magic", b"X" + data[1:]), ("jsonl", b'{"n": 0}\n')]:  # fmt: skip
        p = tmp_path / f"{name}.index.bin"
        p.write_bytes(bad)
        with pytest.raises(DataError, match=str(p.name)):
            list(iter_index(p))


def _reference_keep_probability(q, ids):
    """Algorithm 1's definition, written plainly: p += q_i (1 - p) over the ids in ascending order."""
    p = 0.0
    for i in sorted(set(ids)):
        p += float(q[i]) * (1.0 - p)
    return p


def batch_keep_probabilities(batch, probs):
    return probs.row_probabilities(batch.lang, batch.offsets, batch.ids)


def test_batch_keep_probabilities_equal_the_scalar_definition():
    rnd = random.Random(1)
    sizes = {"en": 50, "de": 7, "zh": 300}
    q = {lang: np.array([rnd.choice([1.0, rnd.random(), 1e-9]) for _ in range(n)]) for lang, n in sizes.items()}
    probs = EntryProbabilities(q, {lang: 1 for lang in q}, {lang: "d" * 64 for lang in q})
    for _ in range(20):
        rows = []
        for n in range(rnd.randint(0, 40)):
            lang = rnd.choice(list(sizes))
            rows.append((lang, sorted(rnd.sample(range(sizes[lang]), rnd.randint(1, 6)))))
        lengths = [len(ids) for _, ids in rows]
        offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        batch = IndexBatch(n=np.arange(len(rows)), k=np.zeros(len(rows), dtype=np.int32), lang=[lang for lang, _ in rows],
                           offsets=offsets, ids=np.array([i for _, ids in rows for i in ids], dtype=np.int32),
                           id=[str(i) for i in range(len(rows))], text=[""] * len(rows), extra=[None] * len(rows))  # fmt: skip
        got = batch_keep_probabilities(batch, probs).tolist()
        assert got == [_reference_keep_probability(q[lang], ids) for lang, ids in rows]  # the same bits
        assert got == [keep_probability(q[lang], ids) for lang, ids in rows]
    bad = IndexBatch(n=np.arange(2), k=np.zeros(2, dtype=np.int32), lang=["en", "xx"], offsets=np.array([0, 1, 2]),
                     ids=np.array([0, 0], dtype=np.int32), id=["a", "b"], text=["", ""], extra=[None, None])  # fmt: skip
    with pytest.raises(DataError, match="xx"):
        batch_keep_probabilities(bad, probs)
    bad.lang[1] = "de"
    bad.ids[1] = 7
    with pytest.raises(DataError, match="exceed"):
        batch_keep_probabilities(bad, probs)
