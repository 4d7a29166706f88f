"""Sub-layer 0 of the pipeline: reading and writing shards. Input shards (JSONL, Parquet,
WebDataset tar; local or fsspec URLs) are read into
[`Image`][metaclip2.pipeline.io.records.Image] records by
[`read_shard`][metaclip2.pipeline.io.readers.read_shard], one module per format; curated subsets are
written by [`writers`][metaclip2.pipeline.io.writers]; stage 1's per-shard index
([`index`][metaclip2.pipeline.io.index]), its spill-to-disk grouping by language
([`partition`][metaclip2.pipeline.io.partition]) and the local copy of remote metadata
([`remote`][metaclip2.pipeline.io.remote]) live here too. Imports nothing else of the pipeline.
"""

from metaclip2.pipeline.io.records import DEFAULT_MAX_CHARS, INVALID_REASONS, Image, InvalidInputError, LAYOUTS, LayoutError, ParquetDependencyError, ReaderSpec, check_lang, check_text
from metaclip2.pipeline.io.inputs import FORMATS, detect_format, open_input
from metaclip2.pipeline.io.readers import read_shard
from metaclip2.pipeline.io.writers import CURATED_COLUMNS, ExtraTypes, JsonlWriter, OUTPUT_FORMATS, ParquetWriter, carried_columns, curated_writer, json_line
from metaclip2.pipeline.io.index import INDEX_SUFFIX, IndexBatch, IndexWriter, append_rows, iter_chunks, iter_index
from metaclip2.pipeline.io.partition import LanguageRuns
from metaclip2.pipeline.io.remote import is_url, local_metadata

__all__ = [
    "DEFAULT_MAX_CHARS",
    "INVALID_REASONS",
    "LAYOUTS",
    "Image",
    "InvalidInputError",
    "LayoutError",
    "ParquetDependencyError",
    "ReaderSpec",
    "check_lang",
    "check_text",
    "FORMATS",
    "detect_format",
    "open_input",
    "read_shard",
    "OUTPUT_FORMATS",
    "CURATED_COLUMNS",
    "ExtraTypes",
    "carried_columns",
    "json_line",
    "JsonlWriter",
    "ParquetWriter",
    "curated_writer",
    "INDEX_SUFFIX",
    "IndexBatch",
    "IndexWriter",
    "iter_index",
    "iter_chunks",
    "append_rows",
    "LanguageRuns",
    "is_url",
    "local_metadata",
]
