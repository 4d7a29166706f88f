"""Curate a DataComp-style Parquet pool with Ray Data ``map_batches``.

    python examples/frameworks_ray_data.py METADATA_DIR pool/part-0.parquet pool/part-1.parquet

Gives the same kept set as ``metaclip2 curate`` on the same files. Matching runs on any batches;
the keep decisions run on ``groupby(id)`` groups, so an image's rows are decided together even
when a pool holds several alt-texts per image.
"""

import sys

import ray

from metaclip2.pipeline import BatchCurator
from metaclip2.pipeline.run.guidance import suggest_t_en


def curate_ray(metadata, files, t_en=None):
    cur = BatchCurator(metadata, text_key="text", id_key="uid")
    ds = ray.data.read_parquet(files).map_batches(cur.annotate_batch, batch_format="pandas")
    ds = ds.materialize()
    counts = cur.count(ds.iter_batches(batch_format="pandas"))
    cur.fit(counts, t_en=t_en or suggest_t_en(counts)[0.06])  # a small pool: the t_en of the paper's tail share
    return ds.groupby(cur.id_key).map_groups(lambda images: images[cur.keep_batch(images)], batch_format="pandas")


if __name__ == "__main__":  # Ray's workers import this file again: only the driver curates
    kept = curate_ray(sys.argv[1], sys.argv[2:])
    print(f"{kept.count()} pairs kept; first rows:")
    print(kept.limit(5).to_pandas()[["uid", "text"]])
