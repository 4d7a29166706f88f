"""Stage 1 of a big shard in pieces: the same files, byte for byte, as one whole-shard task."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from pathlib import Path

import pytest

import metaclip2.pipeline.stages.pieces as pieces
from metaclip2.execution import LocalExecutor
from metaclip2.pipeline.run.api import curate
from metaclip2.pipeline.run.driver import ShardStage, run_shards
from metaclip2.pipeline.run.verify import ShardCheck
from metaclip2.pipeline.stages.files import stage1_paths
from metaclip2.pipeline.stages.match import match_shard
from metaclip2.pipeline.stages.options import MatchOptions

from fixtures import make_metadata, tree

META = {"en": ["dog", "cat", "red", "sofa", "tree"], "de": ["Hund", "Katze", "ein"]}
WORDS = ["dog", "cat", "red", "sofa", "Hund", "Katze", "ein", "und", "tree", "blue", "house", "black"]
KW = dict(t_en=2, progress=False)
WHOLE = "is read whole"  # what the merge logs when it falls back to the whole shard


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))


def write_jsonl(path: Path, n: int = 400, seed: int = 0, repeat: bool = False, long_at: int | None = None) -> Path:
    """Flat multi-row images, image-form records, text_index given (and duplicated), invalid and
    blank lines, a BOM; with `repeat` ids that come back further down; with `long_at` a line
    past the reader's cap (over 1 MiB) there."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = rng.random()
        iid = f"img{i}"
        if repeat and i > 10 and r < 0.1:
            iid = f"img{rng.randint(0, i - 2)}"
        if r < 0.45:
            for _ in range(rng.randint(1, 3)):  # one image, its alt-texts on consecutive rows
                rec = {"id": iid, "text": _text(rng), "url": f"http://x/{i}"}
                lang = rng.choice(["en", "en", "de", "fr", None])
                if lang:
                    rec["lang"] = lang
                out.append(json.dumps(rec, ensure_ascii=False))
        elif r < 0.65:
            texts = [_text(rng), {"text": _text(rng), "lang": "de"}, ""][: rng.randint(1, 3)]
            out.append(json.dumps({"id": iid, "texts": texts, "lang": "en"}))
        elif r < 0.75:
            for j in rng.sample(range(4), 2):
                out.append(json.dumps({"id": iid, "text": _text(rng), "text_index": j, "lang": "en"}))
            if rng.random() < 0.3:
                out.append(json.dumps({"id": iid, "text": _text(rng), "text_index": j, "lang": "en"}))  # duplicate_index
        elif r < 0.8:
            out.append(rng.choice(["not json", "", "   ", "[1, 2]", json.dumps({"text": "no id"}), json.dumps({"id": iid, "text": ""}),
                                   json.dumps({"id": iid, "text": "x" * 100, "lang": "en"})]))  # fmt: skip
        else:
            out.append(json.dumps({"id": iid, "text": _text(rng), "lang": "en"}))
        if long_at is not None and i == long_at:
            out.append(json.dumps({"id": "long", "text": "y" * (1 << 20)}))
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(out) + "\n").encode("utf-8"))
    return path


def write_parquet(path: Path, n: int = 300, seed: int = 0, group: int = 37) -> Path:
    """A flat Parquet file (id, text, lang, url) of several row groups; images span groups."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        for _ in range(rng.randint(1, 3)):
            rows.append({"id": f"p{i}", "text": _text(rng) if rng.random() > 0.05 else "", "lang": rng.choice(["en", "de", "fr"]),
                         "url": f"http://x/{i}"})  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=group)
    return path


def _outputs(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def _in_pieces(path: Path, meta: Path, out: Path, options: MatchOptions, target: int, monkeypatch, by_last_piece: bool = True) -> int:
    """Stage 1 of `path` as piece tasks and a merge task (in this process); the number of pieces.

    `by_last_piece`: the last piece merges (as in a run); else the merge task does."""
    monkeypatch.setattr(pieces, "_PIECE_BYTES", 1)
    planned = pieces.shard_pieces(str(path), str(meta), str(out), "pool", options, target)
    assert planned is not None
    tasks, merge = planned
    for _, task in reversed(tasks):  # any order
        (task if by_last_piece else dataclasses.replace(task, n_pieces=0))()
    # merged by the last piece, or not yet
    assert stage1_paths(out, "pool")["stats"].exists() == by_last_piece != pieces.piece_dir(out, "pool").exists()
    merge()
    return len(tasks)


@pytest.mark.parametrize("by_last_piece", [True, False], ids=["merged-by-last-piece", "merged-by-merge-task"])
@pytest.mark.parametrize("repeat", [False, True], ids=["images-consecutive", "ids-repeated"])
def test_jsonl_pieces_write_the_whole_shard_bytes(tmp_path, monkeypatch, caplog, repeat, by_last_piece):
    meta = make_metadata(tmp_path / "meta", META)
    path = write_jsonl(tmp_path / "pool.jsonl", repeat=repeat, long_at=200)
    options = MatchOptions(max_chars=64)
    whole = match_shard(path, meta, tmp_path / "whole", "pool", options)
    with caplog.at_level(logging.DEBUG, logger="metaclip2.pipeline.stages.pieces"):
        n = _in_pieces(path, meta, tmp_path / "pieces", options, 3000, monkeypatch, by_last_piece)
    assert n > 5
    assert whole.invalid_examples and whole.invalid.get("too_long") and whole.invalid.get("duplicate_index")
    assert _outputs(tmp_path / "pieces") == _outputs(tmp_path / "whole")  # no .pieces/ left either
    # consecutive rows of an image are never cut; an id further down makes the merge read the shard whole
    assert (WHOLE in caplog.text) == repeat


def test_a_piece_read_with_other_keys_makes_the_merge_read_the_shard_whole(tmp_path, monkeypatch, caplog):
    # datacomp records (uid + text), every other one without its text: the whole shard reads
    # those with the layout of its first record (missing_text); a piece that starts with one
    # reads it before it knows the layout (missing_id), so its merge reads the shard whole
    meta = make_metadata(tmp_path / "meta", META)
    rng = random.Random(5)
    lines = [json.dumps({"uid": f"u{i}", "text": _text(rng)} if i % 2 == 0 else {"uid": f"u{i}", "caption": _text(rng)}) for i in range(300)]
    path = tmp_path / "pool.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = MatchOptions()
    whole = match_shard(path, meta, tmp_path / "whole", "pool", options)
    with caplog.at_level(logging.DEBUG, logger="metaclip2.pipeline.stages.pieces"):
        _in_pieces(path, meta, tmp_path / "pieces", options, 1000, monkeypatch)
    assert whole.layout["layout"] == "datacomp" and whole.invalid == {"missing_text": 150}
    assert "does not start with a record of layout datacomp" in caplog.text
    assert _outputs(tmp_path / "pieces") == _outputs(tmp_path / "whole")


def test_jsonl_cuts_start_lines_and_keep_images_whole(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "pool.jsonl", long_at=100)
    data = path.read_bytes()
    monkeypatch.setattr(pieces, "_PIECE_BYTES", 1)
    cut = pieces.plan_pieces(str(path), MatchOptions(max_chars=64), 2000)
    ranges = [r for r, _ in cut]
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    for _, stop in ranges[:-1]:
        assert data[stop - 1 : stop] == b"\n"  # a piece starts a line
        before = json.loads(data[:stop].rsplit(b"\n", 2)[-2])
        after = json.loads(data[stop:].split(b"\n", 1)[0])
        assert before.get("id") != after.get("id")
    assert any(stop - start > 1 << 20 for start, stop in ranges)  # the long line stays in the piece it starts in


def test_parquet_pieces_write_the_whole_shard_bytes(tmp_path, monkeypatch, caplog):
    meta = make_metadata(tmp_path / "meta", META)
    path = write_parquet(tmp_path / "pool.parquet")
    options = MatchOptions()
    whole = match_shard(path, meta, tmp_path / "whole", "pool", options)
    with caplog.at_level(logging.DEBUG, logger="metaclip2.pipeline.stages.pieces"):
        n = _in_pieces(path, meta, tmp_path / "pieces", options, path.stat().st_size // 6, monkeypatch)
    assert n >= 3 and whole.invalid_examples
    assert WHOLE not in caplog.text
    assert _outputs(tmp_path / "pieces") == _outputs(tmp_path / "whole")


def test_small_or_compressed_shards_are_read_whole(tmp_path):
    path = write_jsonl(tmp_path / "pool.jsonl", n=50)
    assert pieces.plan_pieces(str(path), MatchOptions(), 100) is None  # below the minimum piece size
    assert pieces.plan_pieces(str(path), MatchOptions(strict=True), 100) is None


def _pool(tmp_path: Path) -> tuple[Path, list[str]]:
    meta = make_metadata(tmp_path / "meta", META)
    pool = tmp_path / "pool"
    pool.mkdir()
    write_jsonl(pool / "big.jsonl", n=600, seed=1)
    write_jsonl(pool / "small.jsonl", n=60, seed=2)
    write_parquet(pool / "mid.parquet", n=200, seed=3)
    return meta, [str(pool / "*.jsonl"), str(pool / "*.parquet")]


def _curate_tree(meta, inputs, tmp_path: Path, out: Path, **kw) -> dict[str, bytes]:
    curate(meta, inputs, out, **KW, **kw)
    got = tree(out, skip={"metaclip2.log"})
    out.rename(tmp_path / f"done-{len(list(tmp_path.glob('done-*')))}")  # the next run takes the same path (stats hold it)
    return got


def test_curate_with_pieces_equals_one_worker(tmp_path, monkeypatch, caplog):
    meta, inputs = _pool(tmp_path)
    out = tmp_path / "run"
    one = _curate_tree(meta, inputs, tmp_path, out, workers=1)
    monkeypatch.setattr(pieces, "_PIECE_BYTES", 1)
    with caplog.at_level(logging.INFO, logger="metaclip2.pipeline.run.driver"):
        two = _curate_tree(meta, inputs, tmp_path, out, workers=2)
    assert "read in pieces" in caplog.text
    assert not [name for name in two if pieces.PIECES_DIR in name]
    assert two == one


def test_a_stopped_run_redoes_its_pieces(tmp_path, monkeypatch):
    meta, inputs = _pool(tmp_path)
    out = tmp_path / "run"
    one = _curate_tree(meta, inputs, tmp_path, out, workers=1)
    monkeypatch.setattr(pieces, "_PIECE_BYTES", 1)
    curate(meta, inputs, out, workers=2, **KW)
    # a run stopped after some pieces of "big" were read, before its merge; another left a done
    # shard's pieces behind (stopped between its stats file and their removal)
    stage1 = out / "stage1"
    stage1_paths(stage1, "big")["stats"].unlink()
    half = pieces.piece_dir(stage1, "big")
    half.mkdir(parents=True)
    (half / "0.index.bin").write_bytes(b"cut")
    (half / "1.piece.json").write_text("{}")
    stale = pieces.piece_dir(stage1, "small")
    stale.mkdir(parents=True)
    (stale / "0.stats.json").write_text("{}")
    again = _curate_tree(meta, inputs, tmp_path, out, workers=2)
    assert again == one


def test_tasks_go_biggest_first_and_results_in_input_order(tmp_path):
    ran: list[int] = []

    def task(i):
        def run():
            ran.append(i)
            return i * 10
        return run

    stage = ShardStage("stage 0", "x", ["a", "b", "c", "d"], check=lambda i: ShardCheck(), marker=None, task=task,
                       progress=lambda s: {}, size=lambda i: [5, 50, 1, 20][i])  # fmt: skip
    with LocalExecutor(workers=1, progress=False) as ex:
        assert run_shards(stage, [0, 1, 2, 3], ex) == [0, 10, 20, 30]
    assert ran == [1, 3, 0, 2]


@pytest.mark.slow
def test_ray_runs_pieces_like_one_worker(tmp_path, monkeypatch, caplog):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'metaclip2[ray]')")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    meta, inputs = _pool(tmp_path)
    out = tmp_path / "run"
    one = _curate_tree(meta, inputs, tmp_path, out, workers=1)
    monkeypatch.setattr(pieces, "_PIECE_BYTES", 1)
    with caplog.at_level(logging.INFO, logger="metaclip2.pipeline.run.driver"):
        ray = _curate_tree(meta, inputs, tmp_path, out, workers=2, executor="ray")
    assert "read in pieces" in caplog.text
    assert ray == one


class _TwoWorkers:
    """An in-process executor that says it has two workers (what the piece plan looks at)."""

    workers = 2

    def run(self, tasks, desc=None):
        return [task() for task in tasks]


@pytest.mark.parametrize("sizes, split", [
    ([10, 10, 10, 10], False),  # even on two workers: pieces would only cost
    ([50, 50, 50, 50, 50, 50, 50, 50], False),
    ([10, 10, 20, 60], True),  # the big shard alone outlasts the rest
    ([30, 30, 30], True),  # three on two workers
    ([100], True),
])
def test_pieces_only_when_the_shards_cannot_keep_the_workers_even(sizes, split):
    asked: list = []

    def cut(i, target):
        asked.append(i)
        return None  # read whole: this test is about the plan's choice only

    stage = ShardStage("stage 0", "x", [str(i) for i in range(len(sizes))], check=lambda i: ShardCheck(), marker=None,
                       task=lambda i: (lambda: i), progress=lambda s: {}, size=lambda i: sizes[i], pieces=cut)  # fmt: skip
    assert run_shards(stage, list(range(len(sizes))), _TwoWorkers()) == list(range(len(sizes)))
    assert bool(asked) is split
