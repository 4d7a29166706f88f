"""Curate a DataComp-style Parquet pool with Hugging Face ``datasets`` (map in several processes, then decide).

    python examples/frameworks_hf_datasets.py METADATA_DIR 'pool/*.parquet'

Gives the same kept set as ``metaclip2 curate --metadata METADATA_DIR --input 'pool/*.parquet'``.
``map`` may cut an image's rows into different batches and processes, so the keep decisions are
made in one pass over the whole annotated dataset (``BatchCurator.decide``), where every image is
whole; annotating, the expensive part, runs in parallel.
"""

import sys

import numpy as np
from datasets import Dataset

from metaclip2.pipeline import BatchCurator
from metaclip2.pipeline.run.guidance import suggest_t_en


def curate_hf(metadata, files, t_en=None, num_proc=2, cache_dir=None):
    cur = BatchCurator(metadata, text_key="text", id_key="uid")
    ds = Dataset.from_parquet(files, cache_dir=cache_dir)
    ds = ds.map(cur.annotate_batch, batched=True, num_proc=num_proc)  # LID, routing, matching
    counts = cur.count(ds.iter(batch_size=10_000))
    # the paper's t_en (170,000) is for billions of pairs: a small pool takes the t_en of its tail share
    cur.fit(counts, t_en=t_en or suggest_t_en(counts)[0.06])  # stage 2: counts -> probabilities
    return ds.select(np.flatnonzero(cur.decide(ds)))  # stage 3: keep decisions, images whole


if __name__ == "__main__":  # worker processes import this file again: only the main process curates
    kept = curate_hf(sys.argv[1], sys.argv[2:])
    print(f"{len(kept)} pairs kept; first: {kept[0] if len(kept) else None}")
