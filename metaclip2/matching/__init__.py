"""Layer 3: language identification, per-LID-language metadata, and Aho-Corasick matching."""

from metaclip2.matching.text import pad_entry, spacing
from metaclip2.matching.matcher import Matcher
from metaclip2.matching.store import MetadataStore
from metaclip2.matching.lid import (
    Detector,
    FastTextDetector,
    LIDDependencyError,
    detect_language,
    detect_languages,
    detect_languages_with_scores,
    resolve_languages,
    script_check,
)
from metaclip2.matching.lid_metadata import build_lid_metadata

__all__ = [
    "pad_entry", "spacing", "Matcher", "MetadataStore",
    "Detector", "FastTextDetector", "LIDDependencyError", "detect_language", "detect_languages",
    "detect_languages_with_scores", "resolve_languages", "script_check",
    "build_lid_metadata",
]  # fmt: skip
