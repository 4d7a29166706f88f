"""Layer 4: Algorithm 1 itself — entry counts, thresholds, entry probabilities, sampling.

Every door of the package (stage 3, the batch API, the online sampler, the sweep) computes
Algorithm 1 through these modules alone: thresholds through
[`SortedCounts`][metaclip2.curation.threshold.SortedCounts], entry probabilities through
[`entry_probabilities`][metaclip2.curation.threshold.entry_probabilities], keep probabilities through one kernel
([`keep_probabilities`][metaclip2.curation.sampling.keep_probabilities]), the per-image choice through
[`keep_decisions`][metaclip2.curation.sampling.keep_decisions], expectations through
[`SweepData`][metaclip2.curation.expectation.SweepData].
"""

from metaclip2.curation.counts import CountsWriter, EntryCounts, count_entries, merge_count_files
from metaclip2.curation.threshold import (
    DEFAULT_T_EN,
    ENGLISH,
    ENGLISH_MODES,
    SortedCounts,
    entry_probabilities,
    no_english_message,
    p_to_t,
    t_to_p,
    thresholds,
)
from metaclip2.curation.sampling import (
    UNITS,
    EntryProbabilities,
    OnlineSampler,
    keep_decisions,
    keep_probabilities,
    keep_probability,
    select_texts,
    uniform,
)
from metaclip2.curation.expectation import Folder, SweepData

__all__ = [
    "EntryCounts", "count_entries", "CountsWriter", "merge_count_files",
    "DEFAULT_T_EN", "ENGLISH", "ENGLISH_MODES", "SortedCounts", "entry_probabilities", "no_english_message", "p_to_t", "t_to_p", "thresholds",
    "UNITS", "EntryProbabilities", "OnlineSampler", "keep_decisions", "keep_probabilities", "keep_probability", "select_texts", "uniform",
    "Folder", "SweepData",
]  # fmt: skip
