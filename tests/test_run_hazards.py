"""Runs that meet a changing world: metadata changed while stage 1 ran, a run directory inside its
pool, image ids that hold line breaks."""

from __future__ import annotations

import pytest

from metaclip2.pipeline import compute_thresholds, count, curate
from metaclip2.pipeline.run.verify import InputChangedError
from metaclip2.pipeline.stages.match import match_shard

from fixtures import META, make_images, make_metadata, tree, write_jsonl


@pytest.fixture()
def pool(tmp_path):
    (tmp_path / "pool").mkdir()
    for s in range(3):
        write_jsonl(tmp_path / "pool" / f"part-{s}.jsonl", make_images(s, 40, f"s{s}-"))
    return tmp_path


def test_shards_made_with_other_metadata_are_named_and_redone(pool):
    meta = make_metadata(pool / "meta")
    inputs = [str(pool / "pool" / "*.jsonl")]
    count(meta, inputs, pool / "run", progress=False)
    # a worker read a rewritten en.tsv for part-1 (then the file was restored, as here)
    other = make_metadata(pool / "other", {**META, "en": META["en"] + ["sky blue"]})
    match_shard(pool / "pool" / "part-1.jsonl", other, pool / "run" / "stage1", "part-1")
    with pytest.raises(InputChangedError, match=r"shard part-1 was made with other metadata .*\ben\b.*--redo-changed"):
        compute_thresholds(pool / "run", t_en=3, progress=False)
    with pytest.raises(InputChangedError, match="part-1"):
        count(meta, inputs, pool / "run", progress=False)  # refused again, never silently mixed
    count(meta, inputs, pool / "run", progress=False, redo_changed=True)  # the one command
    res = curate(meta, inputs, pool / "run", t_en=3, progress=False)
    fresh = curate(meta, inputs, pool / "fresh", t_en=3, progress=False)
    skip = {"run.json", "datacard.json", "metaclip2.log"}
    assert tree(res.out, skip) == tree(fresh.out, skip)


def test_a_run_directory_is_never_its_own_input(pool):
    meta = make_metadata(pool / "meta")
    # the run lives inside the folder a recursive glob reads: its subset must not come back as input
    inputs = [str(pool / "**" / "*.jsonl")]
    first = curate(meta, inputs, pool / "pool" / "run", t_en=3, progress=False)
    again = curate(meta, inputs, pool / "pool" / "run", t_en=3, progress=False)  # resumes: the same inputs
    assert again.datacard == first.datacard
    assert len(first.outputs) == 3 and all("run" not in p.name for p in first.outputs)


def test_keys_list_has_one_line_per_kept_image_even_for_ids_with_line_breaks(tmp_path):
    import json

    meta = make_metadata(tmp_path / "meta")
    images = [{"id": f"img\n{i}" if i % 3 == 0 else (f'"q{i}' if i % 3 == 1 else f"plain{i}"), "texts": [{"text": "the red car", "lang": "en"}]}
              for i in range(10)]  # fmt: skip
    write_jsonl(tmp_path / "pool.jsonl", images)
    res = curate(meta, [str(tmp_path / "pool.jsonl")], tmp_path / "run", t_en=100, progress=False, keys_list=True)
    lines = (tmp_path / "run" / "stage3" / "pool.keys.txt").read_text().splitlines()
    assert len(lines) == res.datacard["totals"]["kept_images"] == 10  # t_en above every count: all kept
    decoded = [json.loads(x) if x.startswith('"') else x for x in lines]
    assert sorted(decoded) == sorted(im["id"] for im in images)


@pytest.mark.parametrize("damage", ["another shard's index", "index cut short"])
def test_sweep_refuses_a_stage1_index_that_is_not_the_one_recorded(pool, damage):
    from metaclip2.core.errors import DataError
    from metaclip2.pipeline import load_sweep_data

    meta = make_metadata(pool / "meta")
    count(meta, [str(pool / "pool" / "*.jsonl")], pool / "run", progress=False)
    s1 = pool / "run" / "stage1"
    good = load_sweep_data(pool / "run").expect(t_en=3)
    target = s1 / "part-1.index.bin"
    if damage == "another shard's index":
        target.write_bytes((s1 / "part-0.index.bin").read_bytes())
    else:
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])  # the recorded size and sha256 catch a cut anywhere
    with pytest.raises(DataError, match="part-1"):
        load_sweep_data(pool / "run")
    count(meta, [str(pool / "pool" / "*.jsonl")], pool / "run", progress=False)  # redoes part-1
    assert load_sweep_data(pool / "run").expect(t_en=3) == good
