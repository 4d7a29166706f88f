"""Layer 2: per-language metadata builders (WordNet/OMW, Wikipedia n-grams and titles, merged).

The per-LID-language merge that turns these into matchable metadata lives one layer up,
in [`metaclip2.matching.lid_metadata`][metaclip2.matching.lid_metadata].
"""

from metaclip2.metadata.wordnet import WORDNET_LANGUAGES, WordNetDataError, wordnet_entries
from metaclip2.metadata.wikitext import DumpFormatError, iter_article_texts, iter_pages, read_siteinfo, wikitext_to_text
from metaclip2.metadata.tokenizer import NO_SPACE_LANGUAGES, SegmenterUnavailable, segmenter, tokenize
from metaclip2.metadata.ngrams import (
    NgramCounts,
    NgramFile,
    bigram_entries,
    count_dump_ngrams,
    count_ngrams,
    score_bigrams,
    unigram_entries,
    write_dump_ngrams,
)
from metaclip2.metadata.pageviews import pageview_titles, read_pageviews, title_entries
from metaclip2.metadata.build import MetadataBuild, build_metadata, clean_source, write_language_metadata

__all__ = [
    "WORDNET_LANGUAGES", "WordNetDataError", "wordnet_entries",
    "DumpFormatError", "iter_article_texts", "iter_pages", "read_siteinfo", "wikitext_to_text",
    "NO_SPACE_LANGUAGES", "SegmenterUnavailable", "segmenter", "tokenize",
    "NgramCounts", "NgramFile", "bigram_entries", "count_dump_ngrams", "count_ngrams", "score_bigrams", "unigram_entries",
    "write_dump_ngrams",
    "pageview_titles", "read_pageviews", "title_entries",
    "MetadataBuild", "build_metadata", "clean_source", "write_language_metadata",
]  # fmt: skip
