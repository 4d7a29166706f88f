"""Sub-layer 2 of the pipeline: a run directory and the public run functions.
[`curate`][metaclip2.pipeline.run.api.curate] (and [`count`][metaclip2.pipeline.run.api.count],
[`compute_thresholds`][metaclip2.pipeline.run.api.compute_thresholds],
[`sample`][metaclip2.pipeline.run.api.sample]) run the stages over a pool in a resumable run
directory ([`rundir`][metaclip2.pipeline.run.rundir]) whose shards are verified before reuse
([`verify`][metaclip2.pipeline.run.verify]), configured by
[`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig], forked for another threshold
([`fork`][metaclip2.pipeline.run.fork]), guided by warnings about thresholds
([`guidance`][metaclip2.pipeline.run.guidance]) and summed up in a datacard
([`datacard`][metaclip2.pipeline.run.datacard]). Imports only the io and stages sub-layers of the
pipeline.
"""

from metaclip2.pipeline.run.config import CurationConfig, ENGLISH_MODES, add_config_arguments, config_from_arguments
from metaclip2.pipeline.run.rundir import LOCK_NAME, RUN_FORMAT, RUN_LOG, RunBusyError, RunDir, load_json
from metaclip2.pipeline.run.verify import InputChangedError, ShardCheck, counts_digest, outputs_problem, stage1_shard, stage2, stage3_shard, verify_many
from metaclip2.pipeline.run.fork import fork_run, is_fork, stage1_dir
from metaclip2.pipeline.run.guidance import PAPER_TAIL_SHARES, check_english, sample_languages, suggest_t_en, warn_tail_share
from metaclip2.pipeline.run.datacard import make_datacard
from metaclip2.pipeline.run.api import CurationResult, compute_thresholds, count, curate, expand_inputs, sample

__all__ = [
    "ENGLISH_MODES",
    "CurationConfig",
    "add_config_arguments",
    "config_from_arguments",
    "RunDir",
    "RunBusyError",
    "RUN_FORMAT",
    "LOCK_NAME",
    "RUN_LOG",
    "load_json",
    "InputChangedError",
    "ShardCheck",
    "outputs_problem",
    "stage1_shard",
    "stage3_shard",
    "stage2",
    "counts_digest",
    "verify_many",
    "fork_run",
    "stage1_dir",
    "is_fork",
    "PAPER_TAIL_SHARES",
    "suggest_t_en",
    "warn_tail_share",
    "sample_languages",
    "check_english",
    "make_datacard",
    "CurationResult",
    "expand_inputs",
    "curate",
    "count",
    "compute_thresholds",
    "sample",
]
