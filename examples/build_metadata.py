"""Build English metadata from a Wikipedia dump and WordNet, and print entry counts per source.

    python examples/build_metadata.py                       # the shared test data, if present
    python examples/build_metadata.py --dump enwiki-20240501-pages-articles.xml.bz2 \
        --pageviews pageviews-2024*.gz --nltk-data ~/nltk_data --out metadata/wikipedia

Defaults point at ../shared/data (beside the repository root) when it exists. With a small
dump no bigram reaches the paper's PMI > 30 (PMI is at most log2 N for N tokens), so try
``--min-pmi 10`` or ``--bigram-method corrected`` to see bigrams on it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from metaclip2.metadata.build import SOURCES, build_metadata, write_language_metadata  # noqa: E402
from metaclip2.metadata.ngrams import count_dump_ngrams  # noqa: E402


def _default(path: Path) -> str | None:
    return str(path) if path.exists() else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dump", default=_default(SHARED / "wikipedia" / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"))
    p.add_argument("--nltk-data", default=_default(SHARED / "nltk_data"))
    p.add_argument("--pageviews", nargs="*", default=[], help="pageviews-YYYYMMDD-HH0000.gz files (optional)")
    p.add_argument("--out", dest="out_dir", default=str(ROOT / "build" / "metadata" / "wikipedia"))
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--head-word-only", action="store_true", help="MetaCLIP 1's WordNet (synset head words)")
    p.add_argument("--bigram-method", choices=("pmi", "corrected"), default="pmi")
    p.add_argument("--min-pmi", type=float, default=30.0)
    args = p.parse_args()
    if not args.dump:
        p.error("--dump is required (no shared test data found beside the repository)")
    if args.nltk_data:
        import nltk

        os.environ["NLTK_DATA"] = args.nltk_data
        nltk.data.path.insert(0, args.nltk_data)

    t0 = time.perf_counter()
    counts = count_dump_ngrams(args.dump, "en", workers=args.workers, progress=True)
    print(f"n-grams: {len(counts.unigrams):,} distinct unigrams, {len(counts.bigrams):,} distinct bigrams, "
          f"{counts.n_tokens:,} tokens ({time.perf_counter() - t0:.1f} s)")  # fmt: skip
    result = build_metadata(
        "en",
        ngrams=counts,
        pageviews=args.pageviews or None,
        head_word_only=args.head_word_only,
        bigram_method=args.bigram_method,
        min_pmi=args.min_pmi,
        progress=True,
    )
    tsv, summary = write_language_metadata(result, args.out_dir)
    s = result.summary
    print(f"{'source':<8} {'candidates':>10} {'entries':>8}")
    for name in SOURCES:
        print(f"{name:<8} {s['candidates_per_source'][name]:>10,} {s['entries_per_source'][name]:>8,}")
    print(f"{'total':<8} {'':>10} {len(result.entries):>8,}   dropped by filter: {s['dropped_by_filter']}")
    print(f"wrote {tsv} and {summary} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
