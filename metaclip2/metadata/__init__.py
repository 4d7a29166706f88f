"""Stage 0: per-language metadata (SPEC §1) — WordNet, Wikipedia n-grams and titles, merged."""

from metaclip2.metadata.entries import MetadataError, check_entries, entries_digest, read_metadata, write_metadata
from metaclip2.metadata.wordnet import WORDNET_LANGUAGES, WordNetDataError, wordnet_entries
from metaclip2.metadata.wikitext import DumpFormatError, iter_article_texts, iter_pages, read_siteinfo, wikitext_to_text
from metaclip2.metadata.tokenizer import NO_SPACE_LANGUAGES, SegmenterUnavailable, segmenter, tokenize
from metaclip2.metadata.ngrams import NgramCounts, bigram_entries, count_dump_ngrams, count_ngrams, score_bigrams, unigram_entries
from metaclip2.metadata.pageviews import pageview_titles, read_pageviews, title_entries
from metaclip2.metadata.build import MetadataBuild, build_metadata, clean_source, write_language_metadata
from metaclip2.metadata.lid_merge import build_lid_metadata

__all__ = [
    "MetadataError", "check_entries", "entries_digest", "read_metadata", "write_metadata",
    "WORDNET_LANGUAGES", "WordNetDataError", "wordnet_entries",
    "DumpFormatError", "iter_article_texts", "iter_pages", "read_siteinfo", "wikitext_to_text",
    "NO_SPACE_LANGUAGES", "SegmenterUnavailable", "segmenter", "tokenize",
    "NgramCounts", "bigram_entries", "count_dump_ngrams", "count_ngrams", "score_bigrams", "unigram_entries",
    "pageview_titles", "read_pageviews", "title_entries",
    "MetadataBuild", "build_metadata", "clean_source", "write_language_metadata",
    "build_lid_metadata",
]  # fmt: skip
