"""metaclip2: worldwide metadata-based curation of image-text pairs (Meta CLIP 2).

The pipeline in layers, each a subpackage that imports only from the ones above it here:

* [`metaclip2.core`][metaclip2.core] — entry lists and digests, language tables, errors, atomic files;
* [`metaclip2.execution`][metaclip2.execution] — where tasks run: local worker processes or Ray;
* [`metaclip2.metadata`][metaclip2.metadata] — per-language entry lists from WordNet/OMW, Wikipedia unigrams,
  PMI bigrams and page-view titles;
* [`metaclip2.matching`][metaclip2.matching] — language identification, per-LID-language metadata and
  Aho-Corasick substring matching of alt-texts against their language's entries;
* [`metaclip2.curation`][metaclip2.curation] — Algorithm 1: entry counts, thresholds, balanced sampling;
* [`metaclip2.pipeline`][metaclip2.pipeline] — readers, per-shard stages, resumable runs, datacard, demo;
* [`metaclip2.cli`][metaclip2.cli] — the ``metaclip2`` command.

This top level holds what a notebook needs; everything else is in its subpackage.
"""

from metaclip2.core.errors import Metaclip2Error
from metaclip2.core.entries import read_metadata, write_metadata
from metaclip2.metadata import (
    build_metadata,
    count_dump_ngrams,
    read_pageviews,
    tokenize,
    wordnet_entries,
    write_language_metadata,
)
from metaclip2.matching import (
    Matcher,
    MetadataStore,
    build_lid_metadata,
    detect_languages,
    resolve_languages,
    spacing,
)
from metaclip2.curation import (
    EntryCounts,
    EntryProbabilities,
    OnlineSampler,
    entry_probabilities,
    keep_decisions,
    keep_probabilities,
    keep_probability,
    p_to_t,
    t_to_p,
    thresholds,
)
from metaclip2.metadata.importing import import_metadata
from metaclip2.pipeline import CurationConfig, CurationResult, curate, read_shard, run_demo, write_report
from metaclip2.pipeline.batch.annotate import BatchCurator, annotate
from metaclip2.pipeline.report.sweep import sweep, target_size

__version__ = "0.1.0"
__all__ = [
    "Metaclip2Error", "read_metadata", "write_metadata",
    "build_metadata", "count_dump_ngrams", "read_pageviews", "tokenize", "wordnet_entries", "write_language_metadata",
    "Matcher", "MetadataStore", "build_lid_metadata", "detect_languages", "resolve_languages", "spacing",
    "EntryCounts", "EntryProbabilities", "OnlineSampler", "entry_probabilities", "keep_decisions", "keep_probabilities",
    "keep_probability", "p_to_t", "t_to_p", "thresholds",
    "CurationConfig", "CurationResult", "curate", "read_shard", "run_demo", "write_report",
    "import_metadata", "annotate", "BatchCurator", "sweep", "target_size",
]  # fmt: skip
