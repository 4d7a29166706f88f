"""Stages 1-3 of Algorithm 1: entry counts, thresholds, balanced sampling (SPEC §3),
and the pipeline that runs them over a pool: per-shard stage functions, executors,
a resumable runner, the datacard, plots and the demo."""

from metaclip2.curation.counts import EntryCounts, count_entries
from metaclip2.curation.threshold import DEFAULT_T_EN, entry_probabilities, p_to_t, t_to_p, thresholds
from metaclip2.curation.sampling import (
    UNITS,
    EntryProbabilities,
    OnlineSampler,
    keep_probabilities,
    keep_probability,
    select_texts,
    uniform,
)
from metaclip2.curation.readers import InvalidInputError, read_shard
from metaclip2.curation.stages import compute_probabilities, match_shard, merge_counts, sample_shard
from metaclip2.curation.executors import LocalExecutor, get_executor
from metaclip2.curation.run import CurationResult, RunMismatchError, curate
from metaclip2.curation.datacard import make_datacard, write_report
from metaclip2.curation.plots import write_plots
from metaclip2.curation.demo import run_demo

__all__ = [
    "EntryCounts", "count_entries",
    "DEFAULT_T_EN", "entry_probabilities", "p_to_t", "t_to_p", "thresholds",
    "UNITS", "EntryProbabilities", "OnlineSampler", "keep_probabilities", "keep_probability", "select_texts", "uniform",
    "InvalidInputError", "read_shard",
    "compute_probabilities", "match_shard", "merge_counts", "sample_shard",
    "LocalExecutor", "get_executor",
    "CurationResult", "RunMismatchError", "curate",
    "make_datacard", "write_report", "write_plots", "run_demo",
]  # fmt: skip
