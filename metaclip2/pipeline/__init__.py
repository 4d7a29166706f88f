"""Layer 5: the curation pipeline over a pool — readers, per-shard stages, the run directory,
the datacard, plots and the demo. Every stage runs on one shard without the runner, for any
scheduler ([`match_shard`][metaclip2.pipeline.stages.match.match_shard], [`merge_counts`][metaclip2.pipeline.stages.merge.merge_counts], [`compute_probabilities`][metaclip2.pipeline.stages.merge.compute_probabilities],
[`sample_shard`][metaclip2.pipeline.stages.sample.sample_shard]). Data frameworks use the batch API over plain columns instead
([`annotate`][metaclip2.pipeline.batch.annotate.annotate], [`count_matches`][metaclip2.pipeline.batch.annotate.count_matches], [`keep_mask`][metaclip2.pipeline.batch.annotate.keep_mask], [`BatchCurator`][metaclip2.pipeline.batch.annotate.BatchCurator]).

The modules live in sub-packages by job, each importing only from the ones before it:
[`io`][metaclip2.pipeline.io] (reading and writing shards), [`stages`][metaclip2.pipeline.stages]
(per-shard stages), [`run`][metaclip2.pipeline.run] (a run directory and the run functions),
[`report`][metaclip2.pipeline.report] (reading finished runs), [`batch`][metaclip2.pipeline.batch]
(curation inside other frameworks) and [`builds`][metaclip2.pipeline.builds] (the demo and the
worldwide build)."""

from metaclip2.pipeline.run.config import CurationConfig
from metaclip2.pipeline.io.readers import read_shard
from metaclip2.pipeline.io.records import Image, InvalidInputError, LayoutError, ReaderSpec
from metaclip2.pipeline.batch.annotate import Annotation, BatchCurator, MetadataHandle, annotate, count_matches, keep_mask
from metaclip2.pipeline.stages.files import shard_names
from metaclip2.pipeline.stages.match import MatchTask, match_shard
from metaclip2.pipeline.stages.merge import compute_probabilities, merge_counts
from metaclip2.pipeline.stages.sample import SampleTask, sample_shard
from metaclip2.pipeline.stages.stats import Stage1Stats, Stage3Stats
from metaclip2.pipeline.run.rundir import RunBusyError, RunDir
from metaclip2.pipeline.run.verify import InputChangedError
from metaclip2.pipeline.run.api import CurationResult, compute_thresholds, count, curate, expand_inputs, sample
from metaclip2.pipeline.report.card import write_html_report, write_report
from metaclip2.pipeline.run.datacard import make_datacard
from metaclip2.pipeline.builds.demo import run_demo
from metaclip2.pipeline.run.fork import fork_run
from metaclip2.pipeline.report.sweep import SweepTable, load_sweep_data, sweep, target_size

__all__ = [
    "CurationConfig", "Image", "InvalidInputError", "LayoutError", "ReaderSpec", "read_shard",
    "Annotation", "BatchCurator", "MetadataHandle", "annotate", "count_matches", "keep_mask",
    "MatchTask", "SampleTask", "compute_probabilities", "match_shard", "merge_counts", "sample_shard", "shard_names",
    "Stage1Stats", "Stage3Stats", "RunDir", "RunBusyError", "InputChangedError",
    "CurationResult", "compute_thresholds", "count", "curate", "expand_inputs", "sample",
    "make_datacard", "write_report", "write_html_report", "run_demo",
    "fork_run", "SweepTable", "load_sweep_data", "sweep", "target_size",
]  # fmt: skip
