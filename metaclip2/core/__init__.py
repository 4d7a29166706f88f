"""Layer 0: what every stage shares — entry lists and their digests, language tables,
character classes, the error root, atomic writes and the array file format."""

from metaclip2.core.errors import (
    DataError,
    MatcherMismatchError,
    Metaclip2Error,
    MetadataError,
    MissingExtraError,
    MissingInputError,
    ParameterError,
    RunMismatchError,
    UnknownLanguageError,
)
from metaclip2.core.errors import OutputError
from metaclip2.core.entries import check_entries, entries_digest, read_metadata, write_metadata
from metaclip2.core.languages import (
    LID176_LABELS,
    OTHER,
    WIKIPEDIA_LANGUAGES,
    lid_language_groups,
    lid_to_metadata_language,
    normalize_language_code,
    wikipedia_to_lid_language,
)

__all__ = [
    "Metaclip2Error", "MissingExtraError", "ParameterError", "DataError", "MissingInputError",
    "UnknownLanguageError", "MetadataError", "MatcherMismatchError", "RunMismatchError", "OutputError",
    "check_entries", "entries_digest", "read_metadata", "write_metadata",
    "LID176_LABELS", "OTHER", "WIKIPEDIA_LANGUAGES", "lid_language_groups", "lid_to_metadata_language", "normalize_language_code",
    "wikipedia_to_lid_language",
]  # fmt: skip
