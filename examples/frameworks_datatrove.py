"""Curate a DataComp-style Parquet pool with datatrove: a counting pipeline, then a filtering one.

    python examples/frameworks_datatrove.py METADATA_DIR POOL_DIR OUT_DIR

Gives the same kept set as ``metaclip2 curate`` on the same files.
"""

import sys

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import JsonlWriter

from metaclip2.pipeline import BatchCurator
from metaclip2.pipeline.batch.datatrove_steps import MetaclipCounter, MetaclipFilter, load_counts


def curate_datatrove(metadata, pool_dir, out_dir, t_en=170_000, tasks=2):
    cur = BatchCurator(metadata)
    read = lambda: ParquetReader(pool_dir, text_key="text", id_key="uid", glob_pattern="*.parquet")  # noqa: E731
    LocalPipelineExecutor([read(), MetaclipCounter(cur, f"{out_dir}/counts")], tasks=tasks, logging_dir=f"{out_dir}/logs1").run()
    cur.fit(load_counts(f"{out_dir}/counts"), t_en=t_en)
    steps = [read(), MetaclipFilter(cur), JsonlWriter(f"{out_dir}/kept", compression=None)]
    LocalPipelineExecutor(steps, tasks=tasks, logging_dir=f"{out_dir}/logs2").run()
    return f"{out_dir}/kept"


if __name__ == "__main__":
    print(curate_datatrove(*sys.argv[1:4]))
