"""Per-language cost of `metaclip2 metadata all --languages`: time, peak RSS and disk per dump MB.

Measures, on the real (small) English dump in ../shared/data/wikipedia, the n-gram count of the
dump, the build of the language's metadata and the LID merge with matchers, and prints rates
(compressed dump MB per second, output bytes per dump byte; MB = 2^20 bytes) to extrapolate to real dump sizes.

    PYTHONPATH=. python benchmarks/bench_worldwide.py [--processes 1]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DUMP = ROOT.parent / "shared" / "data" / "wikipedia" / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def _du(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", default=str(DUMP))
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--pageview-lines", type=int, default=1_000_000)
    args = ap.parse_args()
    dump = Path(args.dump)
    if not dump.exists():
        print(f"needs {dump} (../shared/data beside the project root)", file=sys.stderr)
        return 2
    from metaclip2.execution.local import LocalExecutor
    from metaclip2.pipeline.builds.worldwide import build_all

    with tempfile.TemporaryDirectory() as d:
        tree = Path(d) / "tree" / "enwiki" / "20240501"
        tree.mkdir(parents=True)
        shutil.copy(dump, tree / "enwiki-20240501-pages-articles.xml.bz2")
        out = Path(d) / "out"
        t0 = time.perf_counter()
        with LocalExecutor(args.processes) as ex:
            report = build_all(Path(d) / "tree", out, "en", wordnet=None, executor=ex, split_bytes=0, progress=False)
        t1 = time.perf_counter()
        mb = dump.stat().st_size / 2**20
        print(report.table())
        print(f"dump {mb:.2f} MB bz2; all --languages en (no WordNet, no page views), {args.processes} process(es): {t1 - t0:.1f} s "
              f"= {mb / (t1 - t0):.3f} MB/s of bz2 dump")
        for sub in ("ngrams", "wikipedia", "lid"):
            print(f"  {sub}/: {_du(out / sub) / 2**20:.2f} MB = {_du(out / sub) / dump.stat().st_size:.2f} x the dump")
        print(f"peak RSS (this process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

        # Page views: one synthetic hourly file (real ones hold several million lines).
        import gzip
        import random

        from metaclip2.pipeline.builds.worldwide import split_pageviews

        rnd = random.Random(0)
        langs = ["en", "en.m", "de", "de.m", "fr", "ja", "zh", "es", "ru", "en.d", "commons.m"]
        pv = Path(d) / "pageviews-20240401-100000.gz"
        n = args.pageview_lines
        with gzip.open(pv, "wt", encoding="utf-8") as f:
            for i in range(n):
                f.write(f"{rnd.choice(langs)} Title_{rnd.randrange(n // 2)} {rnd.randint(1, 50)} 0\n")
        t0 = time.perf_counter()
        split_pageviews(str(pv), str(Path(d) / "views"))
        t1 = time.perf_counter()
        print(f"split_pageviews: {n} lines ({pv.stat().st_size / 2**20:.1f} MB gz) in {t1 - t0:.1f} s = {n / (t1 - t0) / 1e6:.2f} M lines/s; "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
