"""Layer 5: the curation pipeline over a pool — readers, per-shard stages, the run directory,
the datacard, plots and the demo. Every stage runs on one shard without the runner, for any
scheduler (:func:`match_shard`, :func:`merge_counts`, :func:`compute_probabilities`,
:func:`sample_shard`). Data frameworks use the batch API over plain columns instead
(:func:`annotate`, :func:`count_matches`, :func:`keep_mask`, :class:`BatchCurator`)."""

from metaclip2.pipeline.config import CurationConfig
from metaclip2.pipeline.readers import Image, InvalidInputError, LayoutError, ReaderSpec, read_shard
from metaclip2.pipeline.annotate import Annotation, BatchCurator, MetadataHandle, annotate, count_matches, keep_mask
from metaclip2.pipeline.stages import MatchTask, SampleTask, compute_probabilities, match_shard, merge_counts, sample_shard, shard_names
from metaclip2.pipeline.stats import Stage1Stats, Stage3Stats
from metaclip2.pipeline.rundir import RunBusyError, RunDir
from metaclip2.pipeline.verify import InputChangedError
from metaclip2.pipeline.run import CurationResult, compute_thresholds, count, curate, expand_inputs, sample
from metaclip2.pipeline.datacard import make_datacard, write_report
from metaclip2.pipeline.demo import run_demo
from metaclip2.pipeline.fork import fork_run
from metaclip2.pipeline.sweep import SweepTable, load_sweep_data, sweep, target_size

__all__ = [
    "CurationConfig", "Image", "InvalidInputError", "LayoutError", "ReaderSpec", "read_shard",
    "Annotation", "BatchCurator", "MetadataHandle", "annotate", "count_matches", "keep_mask",
    "MatchTask", "SampleTask", "compute_probabilities", "match_shard", "merge_counts", "sample_shard", "shard_names",
    "Stage1Stats", "Stage3Stats", "RunDir", "RunBusyError", "InputChangedError",
    "CurationResult", "compute_thresholds", "count", "curate", "expand_inputs", "sample",
    "make_datacard", "write_report", "run_demo",
    "fork_run", "SweepTable", "load_sweep_data", "sweep", "target_size",
]  # fmt: skip
