"""Metadata changed while stage 1 ran: the shards made with it are named, and one command redoes them."""

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
