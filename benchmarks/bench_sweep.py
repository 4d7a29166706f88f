"""Sweep speed: 20 t_en values over a generated N-pair run, against re-reading the index per t_en.

A run directory is generated directly in stage-1 form (index, counts and stats per shard, through
the library's IndexWriter and EntryCounts): 9 languages, Zipf-distributed entry matches, images
with 1-3 matched alt-texts of 1-3 entries. Then:

* sweep: :func:`load_sweep_data` once (the index is read once), then 20 x :meth:`SweepData.expect`;
* baseline: what a sweep without precomputation does per t_en: stage 2 in memory, then every index
  batch through stage 3's keep probabilities (``EntryProbabilities.row_probabilities``), timed on
  one t_en and multiplied by 20.

Usage::

    PYTHONPATH=. python benchmarks/bench_sweep.py --pairs 10000000 --dir /tmp/bench-sweep
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import time
from pathlib import Path

import numpy as np

from metaclip2.core.atomic import write_json
from metaclip2.core.jsonfile import seal
from metaclip2.curation.counts import EntryCounts
from metaclip2.curation.sampling import EntryProbabilities
from metaclip2.pipeline.run.config import CurationConfig
from metaclip2.pipeline.io.index import IndexWriter, iter_index
from metaclip2.pipeline.run.rundir import RUN_FORMAT
from metaclip2.pipeline.stages.files import stage1_paths
from metaclip2.pipeline.stages.stats import Stage1Stats
from metaclip2.pipeline.report.sweep import load_sweep_data

LANGS = {"en": (0.45, 500_000), "de": (0.1, 200_000), "fr": (0.09, 200_000), "es": (0.09, 200_000), "zh": (0.08, 200_000),
         "ja": (0.06, 150_000), "ru": (0.05, 150_000), "ar": (0.04, 100_000), "th": (0.04, 50_000)}  # fmt: skip


def generate(out: Path, pairs: int, shards: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    names = [f"shard-{i:03d}" for i in range(shards)]
    digests = {lang: hashlib.sha256(lang.encode()).hexdigest() for lang in LANGS}
    langs = list(LANGS)
    share = np.array([LANGS[l][0] for l in langs])
    share /= share.sum()
    (out / "stage1").mkdir(parents=True, exist_ok=True)
    per = pairs // shards
    image = 0
    for name in names:
        paths = stage1_paths(out / "stage1", name)
        counts = {lang: np.zeros(LANGS[lang][1], dtype=np.uint64) for lang in langs}
        stats = Stage1Stats(input=name, shard=name)
        texts_per_image = rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1], size=per)
        row_lang = rng.choice(len(langs), p=share, size=per)
        n_ids = rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1], size=per)
        with IndexWriter(paths["index"]) as w:
            r = 0
            n = 0
            while r < per:
                for k in range(min(int(texts_per_image[n]), per - r)):
                    lang = langs[row_lang[r]]
                    size = LANGS[lang][1]
                    ids = np.unique(np.minimum(rng.zipf(1.15, size=int(n_ids[r])) - 1, size - 1))
                    counts[lang][ids] += np.uint64(1)
                    w.write(n, f"img-{image}", k, lang, ids.tolist(), "")
                    row = stats.by_lang.setdefault(lang, {"pairs": 0, "matched": 0})
                    row["pairs"] += 1
                    row["matched"] += 1
                    r += 1
                n += 1
                image += 1
        stats.pairs = stats.matched = per
        stats.images = n
        EntryCounts.from_arrays(counts, digests).save(paths["counts"])
        write_json(paths["stats"], stats.to_json())
    write_json(out / "run.json", seal({"format": RUN_FORMAT, "stage1": {"metadata": "(generated)", "metadata_digests": digests,
               "inputs": names, "shards": names, **CurationConfig().section(1)}}))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10_000_000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--dir", default="/tmp/bench-sweep")
    ap.add_argument("--baseline-shards", type=int, default=None, help="time the baseline on this many shards and scale up")
    args = ap.parse_args()
    out = Path(args.dir)
    if not (out / "run.json").exists():
        t = time.perf_counter()
        generate(out, args.pairs, args.shards)
        print(f"generated {args.pairs:,} pairs in {args.shards} shards: {time.perf_counter() - t:.1f} s")
    t_values = np.unique(np.geomspace(10, 200_000, 20).astype(int)).tolist()

    t = time.perf_counter()
    n_rows = sum(len(b) for name in json.loads((out / "run.json").read_text())["stage1"]["shards"][:1]
                 for b in iter_index(stage1_paths(out / "stage1", name)["index"], batch_rows=65536))  # fmt: skip
    read_one = time.perf_counter() - t
    t = time.perf_counter()
    data = load_sweep_data(out)
    load = time.perf_counter() - t
    print(f"iter_index alone, first shard: {n_rows:,} rows in {read_one:.1f} s")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    rows = [data.expect(x) for x in t_values]
    sweep_s = time.perf_counter() - t
    t = time.perf_counter()
    rows_pair = [data.expect(x, unit="pair") for x in t_values]
    sweep_pair_s = time.perf_counter() - t
    print(f"sweep data: {data.pairs:,} matched pairs, {data.images:,} images; read once in {load:.1f} s; peak RSS {rss:,.0f} MB")
    print(f"{len(t_values)} t_en, unit=image: {sweep_s:.2f} s ({sweep_s / len(t_values) * 1000:.0f} ms each); unit=pair: {sweep_pair_s:.2f} s")

    # baseline: one t_en the direct way, x 20
    counts = data.counts
    t = time.perf_counter()
    probs = EntryProbabilities.from_counts(counts, t_en=t_values[10])
    total = 0.0

    all_names = json.loads((out / "run.json").read_text())["stage1"]["shards"]
    names = all_names[: args.baseline_shards or len(all_names)]
    for name in names:
        for b in iter_index(stage1_paths(out / "stage1", name)["index"], batch_rows=65536):
            p = probs.row_probabilities(b.languages, b.offsets, b.ids, codes=b.lang_code)
            starts = b.image_starts()
            total += float(np.add.reduceat(p, starts).sum() / 1) if len(p) else 0.0  # (not the image rule; timing only)
    base = (time.perf_counter() - t) * len(all_names) / len(names)
    if len(names) < len(all_names):
        print(f"(baseline timed on {len(names)} of {len(all_names)} shards, scaled up)")
    print(f"baseline (re-read the index per t_en): {base:.1f} s per t_en, {base * len(t_values):.0f} s for {len(t_values)}")
    print(f"ratio baseline / sweep for {len(t_values)} t_en: {base * len(t_values) / sweep_s:,.0f}x (excluding the one read); "
          f"{base * len(t_values) / (sweep_s + load):,.1f}x including it")  # fmt: skip
    for r in rows[::4]:
        print(f"  t_en {r['t_en']:>7}: p {r['p']:.4f}, kept {r['pairs']:,.0f} ± {r['pairs_std']:,.0f} (image unit); "
              f"pair unit {rows_pair[rows.index(r)]['pairs']:,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
