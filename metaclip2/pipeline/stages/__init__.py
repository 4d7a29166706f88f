"""Sub-layer 1 of the pipeline: the curation stages as plain per-shard functions (Algorithm 1).
Each takes only paths, numbers and strings, writes its outputs atomically and returns a small
JSON-able result, so any scheduler can run it on one shard: stage 1
[`match_shard`][metaclip2.pipeline.stages.match.match_shard], stage 2
[`merge_counts`][metaclip2.pipeline.stages.merge.merge_counts] and
[`compute_probabilities`][metaclip2.pipeline.stages.merge.compute_probabilities] (and
[`split_images`][metaclip2.pipeline.stages.split.split_images], the images with rows in several
shards), stage 3
[`sample_shard`][metaclip2.pipeline.stages.sample.sample_shard]; the file names they write
([`files`][metaclip2.pipeline.stages.files]), their per-process caches
([`cache`][metaclip2.pipeline.stages.cache]) and their accounting
([`stats`][metaclip2.pipeline.stages.stats]). Imports only [`metaclip2.pipeline.io`][metaclip2.pipeline.io] of the
pipeline.
"""

from metaclip2.pipeline.stages.files import shard_names, stage1_paths, stage3_paths
from metaclip2.pipeline.stages.cache import cached_probabilities, cached_store, clear
from metaclip2.pipeline.stages.match import MatchTask, match_shard, shard_warnings, stage1_summary
from metaclip2.pipeline.stages.merge import compute_probabilities, merge_counts
from metaclip2.pipeline.stages.sample import SampleTask, sample_shard
from metaclip2.pipeline.stages.split import split_images
from metaclip2.pipeline.stages.stats import MAX_EXAMPLES, Stage1Stats, Stage3Stats

__all__ = [
    "shard_names",
    "stage1_paths",
    "stage3_paths",
    "cached_store",
    "cached_probabilities",
    "clear",
    "match_shard",
    "MatchTask",
    "shard_warnings",
    "stage1_summary",
    "merge_counts",
    "compute_probabilities",
    "split_images",
    "sample_shard",
    "SampleTask",
    "MAX_EXAMPLES",
    "Stage1Stats",
    "Stage3Stats",
]
