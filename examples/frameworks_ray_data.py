"""Curate a DataComp-style Parquet pool with Ray Data ``map_batches``.

    python examples/frameworks_ray_data.py METADATA_DIR pool/part-0.parquet pool/part-1.parquet

Gives the same kept set as ``metaclip2 curate`` on the same files.
"""

import sys

import ray

from metaclip2.pipeline import BatchCurator


def curate_ray(metadata, files, t_en=170_000):
    cur = BatchCurator(metadata, text_key="text", id_key="uid")
    ds = ray.data.read_parquet(files).map_batches(cur.annotate_batch, batch_format="pandas")
    ds = ds.materialize()
    cur.fit(cur.count(ds.iter_batches(batch_format="pandas")), t_en=t_en)
    return ds.map_batches(lambda b: b[cur.keep_batch(b)], batch_format="pandas")


if __name__ == "__main__":
    print(curate_ray(sys.argv[1], sys.argv[2:]).take_all())
