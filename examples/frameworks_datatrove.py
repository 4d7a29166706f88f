"""Curate a DataComp-style Parquet pool with datatrove: a counting pipeline, then a filtering one.

    python examples/frameworks_datatrove.py METADATA_DIR POOL_DIR OUT_DIR

Gives the same kept set as ``metaclip2 curate`` on the same files. ``MetaclipFilter`` decides the
consecutive documents of one id together, so a pair-per-line pool (several alt-texts per image,
one after the other) is decided image by image.
"""

import sys

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import JsonlWriter

from metaclip2.pipeline import BatchCurator
from metaclip2.pipeline.batch.datatrove_steps import MetaclipCounter, MetaclipFilter, load_counts
from metaclip2.pipeline.run.guidance import suggest_t_en


def curate_datatrove(metadata, pool_dir, out_dir, t_en=None, tasks=2):
    cur = BatchCurator(metadata)
    read = lambda: ParquetReader(pool_dir, text_key="text", id_key="uid", glob_pattern="*.parquet")  # noqa: E731
    LocalPipelineExecutor([read(), MetaclipCounter(cur, f"{out_dir}/counts")], tasks=tasks, logging_dir=f"{out_dir}/logs1").run()
    counts = load_counts(f"{out_dir}/counts")
    cur.fit(counts, t_en=t_en or suggest_t_en(counts)[0.06])  # a small pool: the t_en of the paper's tail share
    steps = [read(), MetaclipFilter(cur), JsonlWriter(f"{out_dir}/kept", compression=None)]
    LocalPipelineExecutor(steps, tasks=tasks, logging_dir=f"{out_dir}/logs2").run()
    return f"{out_dir}/kept"


if __name__ == "__main__":  # datatrove's worker processes import this file again
    print(curate_datatrove(*sys.argv[1:4]))
