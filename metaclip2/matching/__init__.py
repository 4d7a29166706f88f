"""Stage 1: language identification and Aho-Corasick matching (SPEC §2)."""

from metaclip2.matching.text import pad_entry, spacing
from metaclip2.matching.matcher import Matcher, MatcherFileError, MatcherMismatchError
from metaclip2.matching.store import MetadataStore
from metaclip2.matching.languages import (
    LID176_LABELS,
    OTHER,
    WIKIPEDIA_LANGUAGES,
    lid_language_groups,
    lid_to_metadata_language,
    wikipedia_to_lid_language,
)
from metaclip2.matching.lid import (
    Detector,
    FastTextDetector,
    LIDDependencyError,
    detect_language,
    detect_languages,
    detect_languages_with_scores,
    resolve_languages,
)

__all__ = [
    "pad_entry", "spacing", "Matcher", "MatcherFileError", "MatcherMismatchError", "MetadataStore",
    "LID176_LABELS", "OTHER", "WIKIPEDIA_LANGUAGES", "lid_language_groups", "lid_to_metadata_language",
    "wikipedia_to_lid_language",
    "Detector", "FastTextDetector", "LIDDependencyError", "detect_language", "detect_languages",
    "detect_languages_with_scores", "resolve_languages",
]  # fmt: skip
