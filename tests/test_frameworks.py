"""The batch API (annotate, count_matches, keep_mask, BatchCurator) and the four framework
integrations in examples/, each giving the same kept set as ``metaclip2 curate``."""

from __future__ import annotations

import glob
import importlib.util
import json
import pickle
import random
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

from metaclip2.curation.counts import EntryCounts
from metaclip2.curation.sampling import EntryProbabilities, OnlineSampler
from metaclip2.pipeline import BatchCurator, MetadataHandle, annotate, count_matches, keep_mask
from metaclip2.pipeline.run.api import curate

from fixtures import make_metadata
from test_real_pools import datacomp_parquet, flat_rows, img2dataset_tar

pq = pytest.importorskip("pyarrow.parquet")
ROOT = Path(__file__).resolve().parent.parent
T_EN = 8


def _example(name: str, framework: str):
    pytest.importorskip(framework, reason=f"{framework} is not installed (pip install 'metaclip2[frameworks]')")
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    d = tmp_path_factory.mktemp("fw")
    meta = make_metadata(d / "meta")
    (d / "pq").mkdir()
    (d / "tar").mkdir()
    rows = [flat_rows(s, 150, f"s{s}-") for s in range(2)]
    for s, r in enumerate(rows):
        for x in r:
            x.pop("lang")  # LID decides, as for a real pool
        datacomp_parquet(d / "pq" / f"part-{s}.parquet", r)
        img2dataset_tar(d / "tar" / f"{s:05d}.tar", r, start=s * 10_000)
    ref_pq = curate(meta, [str(d / "pq" / "*.parquet")], d / "run-pq", t_en=T_EN, progress=False, keys_list=True)
    ref_tar = curate(meta, [str(d / "tar" / "*.tar")], d / "run-tar", t_en=T_EN, progress=False, keys_list=True)

    def kept(res):
        return sorted(k for p in sorted((res.out / "keys").glob("*.keys.txt")) for k in p.read_text().split())

    assert kept(ref_pq) and kept(ref_tar)
    return {"dir": d, "meta": meta, "rows": rows, "kept_pq": kept(ref_pq), "kept_tar": kept(ref_tar),
            "run_pq": ref_pq, "files": sorted(glob.glob(str(d / "pq" / "*.parquet")))}  # fmt: skip


def test_batch_api_equals_the_offline_run(pool):
    texts = [r["text"] for rows in pool["rows"] for r in rows] + ["", None, "x" * 5000]
    ids = [r["id"] for rows in pool["rows"] for r in rows] + ["e1", "e2", "e3"]
    handle = MetadataHandle(pool["meta"])
    a = annotate(texts, metadata=pickle.loads(pickle.dumps(handle)))
    assert a.langs[-3:] == [None, None, None] and len(a.offsets) == len(texts) + 1
    # the counts reducer: halves add up to the whole, and to the offline run's counts
    half = len(texts) // 2
    parts = [count_matches(a.langs[:half], a.ids_lists()[:half], metadata=handle),
             count_matches(a.langs[half:], a.ids_lists()[half:], metadata=handle)]  # fmt: skip
    total = parts[0] + parts[1]
    offline = EntryCounts.load(pool["run_pq"].out / "stage2" / "counts.bin")
    assert sorted(total) == sorted(offline)
    for lang in offline:
        assert np.array_equal(total[lang], offline[lang])
    whole = count_matches(a.langs, a.ids, offsets=a.offsets, metadata=handle)
    assert all(np.array_equal(whole[lang], offline[lang]) for lang in offline)
    probs = EntryProbabilities.from_counts(total, t_en=T_EN)
    keep = keep_mask(probs, ids, a.langs, a.ids, offsets=a.offsets, seed=0)
    assert sorted(i for i, k in zip(ids, keep) if k) == pool["kept_pq"]
    # the online sampler agrees in later epochs too, for both units
    sampler = {u: OnlineSampler(probs, seed=5, unit=u) for u in ("image", "pair")}
    lists = a.ids_lists()
    for unit in ("image", "pair"):
        got = keep_mask(probs, ids, a.langs, lists, seed=5, epoch=3, unit=unit)
        want = [bool(sampler[unit](i, [(lang, l)] if lang else [("none", [])], epoch=3)) for i, lang, l in zip(ids, a.langs, lists)]
        assert got.tolist() == want


def test_image_unit_with_several_texts_per_image(pool):
    rnd = random.Random(0)
    probs = EntryProbabilities.from_counts(EntryCounts.load(pool["run_pq"].out / "stage2" / "counts.bin"), t_en=T_EN)
    ids, langs, lists, ks = [], [], [], []
    for i in range(300):
        for k in range(rnd.randint(1, 3)):
            ids.append(f"im{i}")
            ks.append(k)
            langs.append(rnd.choice(["en", "de", None]))
            lists.append(sorted(rnd.sample(range(3), rnd.randint(0, 2))) if langs[-1] else [])
    order = list(range(len(ids)))
    rnd.shuffle(order)  # rows of an image need not be adjacent
    got = keep_mask(probs, [ids[j] for j in order], [langs[j] for j in order], [lists[j] for j in order],
                    text_indices=[ks[j] for j in order], seed=2)  # fmt: skip
    sampler = OnlineSampler(probs, seed=2)
    want = {}
    for i in dict.fromkeys(ids):
        rows = [j for j in range(len(ids)) if ids[j] == i]
        kept = sampler(i, [(langs[j] or "none", lists[j]) for j in rows])
        for j in rows:
            want[j] = ks[j] in kept
    assert got.tolist() == [want[j] for j in order]


def test_curator_pickles_small(pool):
    cur = BatchCurator(pool["meta"])
    cur.annotate(["the cat"])  # opens the store in this process
    assert len(pickle.dumps(cur)) < 2000


def test_hf_datasets_map_filter(pool, tmp_path):
    mod = _example("frameworks_hf_datasets", "datasets")
    for num_proc in (1, 2):
        kept = mod.curate_hf(pool["meta"], pool["files"], t_en=T_EN, num_proc=num_proc, cache_dir=str(tmp_path / f"c{num_proc}"))
        assert sorted(kept["uid"]) == pool["kept_pq"]
        assert "url" in kept.column_names


@pytest.mark.slow
def test_ray_data_map_batches(pool):
    mod = _example("frameworks_ray_data", "ray")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        kept = mod.curate_ray(pool["meta"], pool["files"], t_en=T_EN).to_pandas()
    finally:
        ray.shutdown()
    assert sorted(kept["uid"]) == pool["kept_pq"]


def test_datatrove_pipeline(pool, tmp_path):
    mod = _example("frameworks_datatrove", "datatrove")
    out = mod.curate_datatrove(pool["meta"], str(pool["dir"] / "pq"), str(tmp_path / "dt"), t_en=T_EN, tasks=2)
    ids = [json.loads(line)["id"] for p in sorted(Path(out).glob("*.jsonl")) for line in p.read_text().splitlines()]
    assert sorted(ids) == pool["kept_pq"]


def test_webdataset_online_filter(pool):
    mod = _example("frameworks_webdataset", "webdataset")
    urls = [str(p) for p in sorted((pool["dir"] / "tar").glob("*.tar"))]
    kept = [s["__key__"] for s in mod.curate_wds(pool["meta"], urls, t_en=T_EN)]
    assert sorted(kept) == pool["kept_tar"]
    later = [s["__key__"] for s in mod.curate_wds(pool["meta"], urls, t_en=T_EN, epoch=1)]
    assert sorted(later) != sorted(kept)  # redrawn each epoch


def test_curator_with_a_probabilities_path_pickles_the_path(pool):
    path = pool["run_pq"].probabilities
    cur = BatchCurator(pool["meta"], probabilities=path, id_key="uid")
    blob = pickle.dumps(cur)
    assert len(blob) < 2000 and str(path).encode() in blob
    again = pickle.loads(blob)
    rows = [r for rows in pool["rows"] for r in rows]
    a = again.annotate([r["text"] for r in rows])
    keep = again.keep([r["id"] for r in rows], a.langs, a.ids_lists())
    assert sorted(r["id"] for r, k in zip(rows, keep) if k) == pool["kept_pq"]


def test_columns_as_numpy_and_arrow(pool):
    pa = pytest.importorskip("pyarrow")
    rows = [r for rows in pool["rows"] for r in rows]
    texts, ids = [r["text"] for r in rows], [r["id"] for r in rows]
    ref = annotate(texts, metadata=pool["meta"])
    for column in (np.array(texts, dtype=object), pa.array(texts), pa.chunked_array([texts[:100], texts[100:]])):
        a = annotate(column, metadata=pool["meta"])
        assert a.langs == ref.langs and np.array_equal(a.offsets, ref.offsets) and np.array_equal(a.ids, ref.ids)
    arrow_ids = pa.array(ref.ids_lists(), type=pa.list_(pa.int32()))
    counts = count_matches(pa.array(ref.langs, type=pa.string()), arrow_ids, metadata=pool["meta"])
    offline = EntryCounts.load(pool["run_pq"].out / "stage2" / "counts.bin")
    assert all(np.array_equal(counts[lang], offline[lang]) for lang in offline)
    probs = EntryProbabilities.from_counts(counts, t_en=T_EN)
    keep = keep_mask(probs, pa.array(ids), np.array(ref.langs, dtype=object), arrow_ids.slice(0))
    assert sorted(i for i, k in zip(ids, keep) if k) == pool["kept_pq"]
    tail = keep_mask(probs, ids[150:], ref.langs[150:], arrow_ids.slice(150))  # a sliced Arrow list column
    assert tail.tolist() == keep[150:].tolist()
