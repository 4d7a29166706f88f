"""Layer 4: Algorithm 1 itself — entry counts, thresholds, entry probabilities, sampling."""

from metaclip2.curation.counts import CountsWriter, EntryCounts, count_entries, merge_count_files
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

__all__ = [
    "EntryCounts", "count_entries", "CountsWriter", "merge_count_files",
    "DEFAULT_T_EN", "entry_probabilities", "p_to_t", "t_to_p", "thresholds",
    "UNITS", "EntryProbabilities", "OnlineSampler", "keep_probabilities", "keep_probability", "select_texts", "uniform",
]  # fmt: skip
