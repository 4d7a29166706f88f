"""A growing pool: a run over last month's shards grown by this month's (``add_inputs``) reuses the
old shards' stage 1, matches the new ones only, redoes stages 2-3 and ends with a fresh run's bytes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from metaclip2.core.entries import write_metadata
from metaclip2.core.errors import RunMismatchError
from metaclip2.pipeline import count, curate
from metaclip2.pipeline.stages.files import shard_names

WORDS = {"en": "cat dog red car house tree sky big small".split(), "de": "Hund Katze Haus Baum klein".split()}


def _metadata(d: Path) -> Path:
    for lang, words in WORDS.items():
        write_metadata(d / "meta" / f"{lang}.tsv", words + [f"{a} {b}" for a, b in zip(words, words[1:])], lang=lang)
    return d / "meta"


def _shard(path: Path, seed: int, n: int = 120) -> None:
    rnd = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            texts = []
            for _ in range(rnd.randint(1, 3)):
                lang = rnd.choice(["en", "en", "de"])
                texts.append({"text": " ".join(rnd.choices(WORDS[lang] + ["zzq"], k=rnd.randint(1, 5))), "lang": lang})
            f.write(json.dumps({"id": f"{path.stem}-{seed}-{i}", "texts": texts}) + "\n")


def _outputs(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name not in ("run.json", "run.lock", "metaclip2.log")}  # fmt: skip


def test_a_grown_run_equals_a_fresh_run_and_old_shards_are_not_matched_again(tmp_path):
    meta = _metadata(tmp_path)
    pool = tmp_path / "pool"
    _shard(pool / "2024-01" / "part-0.jsonl", 1)
    _shard(pool / "2024-01" / "part-1.jsonl", 2)
    pattern = str(pool / "*" / "*.jsonl")
    grown = tmp_path / "grown"
    first = curate(meta, [pattern], out=grown, t_en=20, progress=False)
    assert [p.name for p in first.outputs] == ["2024-01__part-0.jsonl", "2024-01__part-1.jsonl"]  # named from pool/, not 2024-01/
    old_stats = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (grown / "stage1").glob("*.stats.json")}

    _shard(pool / "2024-02" / "part-0.jsonl", 3)  # next month: same file name in a new folder
    _shard(pool / "2024-02" / "part-1.jsonl", 4)
    with pytest.raises(RunMismatchError, match="--add-inputs"):
        curate(meta, [pattern], out=grown, t_en=20, progress=False)
    result = curate(meta, [pattern], out=grown, t_en=20, progress=False, add_inputs=True)
    assert [p.name for p in result.outputs] == ["2024-01__part-0.jsonl", "2024-01__part-1.jsonl",
                                                "2024-02__part-0.jsonl", "2024-02__part-1.jsonl"]  # fmt: skip
    for name, (mtime, data) in old_stats.items():  # the old shards' stage 1 was verified and reused, not redone
        p = grown / "stage1" / name
        assert (p.stat().st_mtime_ns, p.read_bytes()) == (mtime, data)
    assert len(list((grown / "stage1").glob("*.stats.json"))) == 4

    fresh = tmp_path / "fresh"
    curate(meta, [pattern], out=fresh, t_en=20, progress=False)
    assert _outputs(grown) == _outputs(fresh)
    assert json.loads((grown / "run.json").read_text())["stage1"]["shards"] == json.loads((fresh / "run.json").read_text())["stage1"]["shards"]
    assert result.datacard["totals"]["kept"] > first.datacard["totals"]["kept"]


def test_adding_inputs_keeps_recorded_names_and_never_drops_inputs(tmp_path):
    meta = _metadata(tmp_path)
    _shard(tmp_path / "a" / "x.jsonl", 1)
    _shard(tmp_path / "b" / "x.jsonl", 2)
    run = tmp_path / "run"
    count(meta, [str(tmp_path / "a" / "x.jsonl")], run, progress=False)
    assert [p.name for p in (run / "stage1").glob("*.stats.json")] == ["x.stats.json"]
    # a second folder moves the common folder up: the old shard keeps its recorded name, the new one
    # (also "x" by itself) gets a suffix rather than taking it
    stats = count(meta, [str(tmp_path / "a" / "x.jsonl"), str(tmp_path / "b" / "x.jsonl")], run, progress=False, add_inputs=True)
    assert [s.shard for s in stats] == ["x", "b__x"]
    assert json.loads((run / "run.json").read_text())["stage1"]["shards"] == ["x", "b__x"]
    with pytest.raises(RunMismatchError, match="no longer among the inputs"):
        count(meta, [str(tmp_path / "b" / "x.jsonl")], run, progress=False, add_inputs=True)


def test_shard_names_relative_to_a_root_do_not_depend_on_other_inputs():
    one = shard_names(["/p/2024-01/a.jsonl"], root="/p")
    two = shard_names(["/p/2024-01/a.jsonl", "/p/2024-02/b.jsonl"], root="/p")
    assert one == ["2024-01__a"] and two[0] == one[0]
    assert shard_names(["/p/2024-01/a.jsonl"]) == ["a"]  # without a root: the common folder, as before
