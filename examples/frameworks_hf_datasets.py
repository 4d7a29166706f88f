"""Curate a DataComp-style Parquet pool with Hugging Face ``datasets`` (map + filter, several processes).

    python examples/frameworks_hf_datasets.py METADATA_DIR 'pool/*.parquet'

Gives the same kept set as ``metaclip2 curate --metadata METADATA_DIR --input 'pool/*.parquet'``.
"""

import sys

from datasets import Dataset

from metaclip2.pipeline import BatchCurator


def curate_hf(metadata, files, t_en=170_000, num_proc=2, cache_dir=None):
    cur = BatchCurator(metadata, text_key="text", id_key="uid")
    ds = Dataset.from_parquet(files, cache_dir=cache_dir)
    ds = ds.map(cur.annotate_batch, batched=True, num_proc=num_proc)  # LID, routing, matching
    cur.fit(cur.count(ds.iter(batch_size=10_000)), t_en=t_en)  # stage 2: counts -> probabilities
    return ds.filter(cur.keep_batch, batched=True, num_proc=num_proc)  # stage 3: keep decisions


if __name__ == "__main__":
    print(curate_hf(sys.argv[1], sys.argv[2:]))
