"""What an image is: all rows with one id, wherever they stand (issue 20).

The same multi-caption pool, written pair per row, is curated (a) in one shard in order, (b)
with its rows shuffled, (c) cut into three shards mid-image, (d) with ids repeated
non-consecutively in one shard, (e) with a ``text_index`` column and shuffled rows: the kept
``(id, text_index)`` pairs depend on the image ids, alt-text indices and matches only, and equal
a plain reference that groups rows by id and calls ``select_texts`` per image.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from fixtures import make_images, make_metadata
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip2.curation.sampling import EntryProbabilities, select_texts
from metaclip2.pipeline import curate, load_sweep_data, read_shard, sweep
from metaclip2.pipeline.io.index import iter_index
from metaclip2.pipeline.io.records import INVALID_REASONS

T_EN = 3


def _pairs(n: int = 160, seed: int = 5) -> list[dict]:
    """The pool as flat rows in image order, each image 1..4 alt-texts."""
    rows = []
    for im in make_images(seed, n, "img-"):
        for t in im["texts"]:
            rows.append({"id": im["id"], "text": t["text"], "lang": t["lang"]})
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _interleave(rows: list[dict], seed: int) -> list[dict]:
    """Rows shuffled, then each id's rows put back in their order into the places the id got:
    ids repeat non-consecutively, each image's alt-texts keep their order (so their indices)."""
    rnd = random.Random(seed)
    order = list(range(len(rows)))
    rnd.shuffle(order)
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        by_id.setdefault(r["id"], []).append(r)
    nxt = {i: iter(v) for i, v in by_id.items()}
    return [next(nxt[rows[j]["id"]]) for j in order]


def _numbered(rows: list[dict]) -> list[dict]:
    """Rows with their positional alt-text index as a ``text_index`` column."""
    seen: dict[str, int] = {}
    out = []
    for r in rows:
        k = seen.get(r["id"], 0)
        seen[r["id"]] = k + 1
        out.append({**r, "text_index": k})
    return out


def _cuts(rows: list[dict]) -> list[int]:
    """Three cut points of `rows` (in image order), each inside an image of several rows."""
    cuts = []
    for target in (len(rows) // 3, 2 * len(rows) // 3):
        j = target
        while not (rows[j]["id"] == rows[j - 1]["id"]):
            j += 1
        cuts.append(j)
    return cuts


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    meta = make_metadata(d / "metadata")
    a = _pairs()
    b = random.Random(1).sample(a, len(a))
    c1, c2 = _cuts(a)
    assert a[c1 - 1]["id"] == a[c1]["id"] and a[c2 - 1]["id"] == a[c2]["id"]  # mid-image
    d_rows = _interleave(a, 2)
    assert any(d_rows[j]["id"] == d_rows[j + 2]["id"] != d_rows[j + 1]["id"] for j in range(len(d_rows) - 2))
    e = random.Random(3).sample(_numbered(b), len(b))
    files = {
        "a": [_write(d / "a.jsonl", a)],
        "b": [_write(d / "b.jsonl", b)],
        "c": [_write(d / f"c{i}.jsonl", part) for i, part in enumerate((a[:c1], a[c1:c2], a[c2:]))],
        "d": [_write(d / "d.jsonl", d_rows)],
        "e": [_write(d / "e.jsonl", e)],
    }
    return {"dir": d, "metadata": meta, "files": files}


def _kept(run: Path) -> list[tuple[str, int]]:
    out = []
    for f in sorted((run / "stage3").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            out.append((r["id"], r["text_index"]))
    return sorted(out)


def _reference(run: Path, files: list[Path], seed: int, unit: str) -> list[tuple[str, int]]:
    """Kept pairs the slow way: every row's (id, index) from the records themselves (positions
    counted per id over the files in order, or the text_index column), the probability from the
    one-shard matches, then select_texts per image."""
    probs = EntryProbabilities.load(run / "stage2" / "probabilities.bin")
    match = {}  # (id, text) -> probability, from stage 1's index of the run
    for f in sorted((run / "stage1").glob("*.index.bin")):
        for batch in iter_index(f):
            for _, i, _, lang, ids, text, _ in batch.rows():
                match[(i, text)] = probs.keep_probability(lang, ids.tolist())
    images: dict[str, dict[int, float]] = {}
    seen: dict[str, int] = {}
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            k = r.get("text_index", seen.get(r["id"], 0))
            seen[r["id"]] = max(seen.get(r["id"], 0), k + 1)
            images.setdefault(r["id"], {})[k] = match.get((r["id"], r["text"]), 0.0)
    kept = []
    for i, ps in images.items():
        dense = [ps.get(k, 0.0) for k in range(max(ps) + 1)]
        kept += [(i, k) for k in select_texts(i, dense, seed=seed, unit=unit)]
    return sorted(kept)


@pytest.mark.slow
@pytest.mark.parametrize("unit", ["image", "pair"])
def test_kept_pairs_depend_on_ids_and_indices_only(pools, tmp_path, unit):
    kept, runs = {}, {}
    for name, files in pools["files"].items():
        for workers in (1, 2) if name == "c" else (1,):
            run = tmp_path / f"{name}-{workers}"
            curate(pools["metadata"], [str(f) for f in files], out=run, t_en=T_EN, seed=7, unit=unit, workers=workers)
            kept[name, workers] = _kept(run)
            runs[name] = run
    a = kept["a", 1]
    assert 0 < len(a) < len(_pairs())  # some images dropped, some kept
    assert kept["c", 1] == a and kept["c", 2] == a and kept["d", 1] == a
    assert kept["e", 1] == kept["b", 1] != a  # other indices, other draws
    assert a == _reference(runs["a"], pools["files"]["a"], 7, unit)
    assert kept["c", 1] == _reference(runs["c"], pools["files"]["c"], 7, unit)
    assert kept["b", 1] == _reference(runs["b"], pools["files"]["b"], 7, unit)
    if unit == "image":  # at most one alt-text per image
        ids = [i for i, _ in a]
        assert len(ids) == len(set(ids))
    # stage-3 accounting: images = distinct ids with a matched row, whichever way the pool is cut
    for name in ("a", "c", "d"):
        stats = [json.loads(p.read_text()) for p in sorted((runs[name] / "stage3").glob("*.stats.json"))]
        assert sum(s["images"] for s in stats) == sum(json.loads(p.read_text())["images"] for p in (runs["a"] / "stage3").glob("*.stats.json"))
        assert sum(s["kept_images"] for s in stats) == len({i for i, _ in a})


@pytest.mark.slow
def test_split_images_are_found_and_swept_whole(pools, tmp_path):
    run = tmp_path / "c"
    files = pools["files"]["c"]
    curate(pools["metadata"], [str(f) for f in files], out=run, t_en=T_EN, seed=0, keys_list=True)
    split = json.loads((run / "stage2" / "split.json").read_text())
    assert split["images"] == 2  # the two images the cuts went through
    data = load_sweep_data(run)
    matched_ids = set()
    for f in sorted((run / "stage1").glob("*.index.bin")):
        for batch in iter_index(f):
            matched_ids.update(batch.id)
    assert data.images == len(matched_ids)
    one = tmp_path / "a"
    curate(pools["metadata"], [str(f) for f in pools["files"]["a"]], out=one, t_en=T_EN, seed=0)
    assert load_sweep_data(one).images == data.images
    # keys list: one line per kept image over the run
    keys = [line for p in sorted((run / "stage3").glob("*.keys.txt")) for line in p.read_text().splitlines()]
    assert sorted(keys) == sorted({i for i, _ in _kept(run)})
    # the expectation against kept sizes over seeds
    row = sweep(data, [T_EN]).rows[0]
    actual = []
    for seed in range(6):
        out = tmp_path / f"s{seed}"
        from metaclip2.pipeline import sample

        sample(out, source=run, seed=seed, t_en=T_EN)
        actual.append(len(_kept(out)))
    assert abs(np.mean(actual) - row["images"]) <= 3 * row["images_std"] / np.sqrt(len(actual)) + 1e-9


def test_duplicate_index_is_invalid(tmp_path):
    assert "duplicate_index" in INVALID_REASONS and "bad_index" in INVALID_REASONS
    path = _write(tmp_path / "dup.jsonl", [
        {"id": "x", "text": "a dog", "lang": "en", "text_index": 0},
        {"id": "y", "text": "a cat", "lang": "en"},
        {"id": "x", "text": "a red car", "lang": "en", "text_index": 0},  # (x, 0) again
        {"id": "x", "text": "the sky", "lang": "en", "text_index": "1"},  # not a whole number
        {"id": "y", "text": "a tree", "lang": "en"},  # continues y: index 1
    ])  # fmt: skip
    slots = [(im.id, k, bad) for im in read_shard(path) for k, bad in zip(im.indices, im.invalid)]
    assert ("x", 0, None) in slots and ("x", 0, "duplicate_index") in slots
    assert ("y", 0, None) in slots and ("y", 1, None) in slots
    assert sum(bad == "bad_index" for _, _, bad in slots) == 1
    meta = make_metadata(tmp_path / "metadata")
    curate(meta, [str(path)], out=tmp_path / "run", t_en=100)
    stats = json.loads((tmp_path / "run" / "stage1" / "dup.stats.json").read_text())
    assert stats["invalid"] == {"duplicate_index": 1, "bad_index": 1}
    kept = _kept(tmp_path / "run")
    assert kept == [("x", 0), ("y", 0)] or kept == [("x", 0), ("y", 1)]  # one per image; never two rows with one key


@pytest.mark.slow
def test_hash_collisions_never_merge_images(pools, tmp_path, monkeypatch):
    """With every id hashed into 4 values, all images look split: each is still decided on its own
    rows (grouped by the id string), so the kept pairs are those of the one-shard run."""
    from metaclip2.pipeline.stages import split

    rows = [json.loads(line) for line in pools["files"]["e"][0].read_text(encoding="utf-8").splitlines()]
    files = [_write(tmp_path / f"e{i}.jsonl", rows[i::3]) for i in range(3)]  # text_index given: no offsets
    one = tmp_path / "one"
    curate(pools["metadata"], [str(pools["files"]["e"][0])], out=one, t_en=T_EN, seed=7)
    monkeypatch.setattr(split, "id_hash", lambda image_id: len(image_id) % 4)
    cut = tmp_path / "cut"
    curate(pools["metadata"], [str(f) for f in files], out=cut, t_en=T_EN, seed=7, workers=1)
    info = json.loads((cut / "stage2" / "split.json").read_text())
    assert info["images"] > 100  # nearly every id is a candidate now
    assert _kept(cut) == _kept(one)
    stats = [json.loads(p.read_text()) for p in sorted((cut / "stage3").glob("*.stats.json"))]
    assert sum(s["kept_images"] for s in stats) == len(_kept(one))


def test_an_index_in_two_shards_is_kept_once_at_most(tmp_path):
    meta = make_metadata(tmp_path / "metadata")
    s0 = _write(tmp_path / "s0.jsonl", [{"id": "x", "text": "a dog", "lang": "en", "text_index": 0}])
    s1 = _write(tmp_path / "s1.jsonl", [{"id": "x", "text": "a cat", "lang": "en", "text_index": 0},
                                        {"id": "x", "text": "a red car", "lang": "en"}])  # fmt: skip
    run = tmp_path / "run"
    curate(meta, [str(s0), str(s1)], out=run, t_en=100, unit="pair")
    texts = [json.loads(line)["text"] for p in sorted((run / "stage3").glob("*.jsonl")) for line in p.read_text().splitlines()]
    assert "a cat" not in texts and "a dog" in texts and "a red car" in texts  # the later (x, 0) is never kept
    stats = [json.loads(p.read_text()) for p in sorted((run / "stage3").glob("*.stats.json"))]
    assert [s["images"] for s in stats] == [1, 0] and [s["kept_images"] for s in stats] == [1, 0]


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=30), cuts=st.lists(st.integers(0, 30), max_size=3),
       matched=st.lists(st.booleans(), min_size=30, max_size=30))  # fmt: skip
def test_indices_continue_across_shards_as_in_the_whole_pool(tmp_path_factory, ids, cuts, matched):
    """Per-shard numbering plus stage 2's offsets give every matched row the index it has in the
    pool read as one shard, however the pool is cut (unmatched rows count as slots too)."""
    from metaclip2.pipeline.io.index import IndexWriter
    from metaclip2.pipeline.io.records import Image, Numbering
    from metaclip2.pipeline.stages.split import MATCHED, NUMBERED, find_split_images, write_images

    d = tmp_path_factory.mktemp("cut")
    whole: dict[str, int] = {}
    expected = []
    for r, i in enumerate(ids):
        if matched[r]:
            expected.append((i, whole.get(i, 0)))
        whole[i] = whole.get(i, 0) + 1
    bounds = sorted({0, len(ids), *(min(c, len(ids)) for c in cuts)})
    names, local = [], {}
    for s, (a, b) in enumerate(zip(bounds, bounds[1:])):
        names.append(f"s{s}")
        numbering, hits = Numbering(), set()
        with IndexWriter(d / f"s{s}.index.bin") as w:
            for r in range(a, b):
                image = Image(ids[r])
                image.add("t", "en", None, r, index=None)
                numbering.apply(image)
                if matched[r]:
                    w.write(r, ids[r], image.indices[0], "en", [0], "t")
                    local[(f"s{s}", ids[r], image.indices[0])] = r
                    hits.add(ids[r])
        write_images(d / f"s{s}.images.bin", [(i, n, (MATCHED if i in hits else 0) | NUMBERED) for i, n, _ in numbering.ids()])
    rows = find_split_images([d / f"{n}.index.bin" for n in names], [d / f"{n}.images.bin" for n in names], names)
    split = {(extra["shard"], i, extra["k"]): k for _, i, k, _, _, _, extra in rows}
    assert not any(extra.get("duplicate") for *_, extra in rows)
    got = sorted((i, split.get((sh, i, k), k)) for sh, i, k in local)
    assert got == sorted(expected)
