"""N-gram counting of a Wikipedia dump: local processes vs the Ray executor, in one run.

Usage::

    python benchmarks/bench_ray_ngrams.py [DUMP.xml.bz2] [--cpus 2] [--batch-size 64]

Defaults to the shared English sample (../shared/data/wikipedia). Baseline: one process in
this interpreter. Then ``--cpus`` local processes, then a local Ray instance with ``--cpus``
CPUs (started, and its workers warmed up by a first count, before timing). Prints MB of
compressed dump per second, ratios against the baseline, and whether every counts file is
byte-identical to the baseline's. (Curation stages on Ray: ``benchmarks/bench_curate.py --ray``.)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metaclip2.execution.ray_executor import RayExecutor  # noqa: E402
from metaclip2.metadata.ngrams import count_dump_ngrams  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "wikipedia" / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dump", nargs="?", default=str(DEFAULT))
    p.add_argument("--lang", default="en")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    mb = os.path.getsize(args.dump) / 2**20

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ray-ngrams-") as tmp:

        def timed(label, **kw):
            t0 = time.perf_counter()
            counts = count_dump_ngrams(args.dump, args.lang, batch_size=args.batch_size, **kw)
            dt = time.perf_counter() - t0
            path = Path(tmp) / f"{len(rows)}.ngrams"
            counts.save(path)
            rows.append((label, dt, path.read_bytes()))

        timed("local, 1 process", workers=1)
        timed(f"local, {args.cpus} processes", workers=args.cpus)
        with RayExecutor(num_cpus=args.cpus, init_kwargs={"log_to_driver": False}) as ex:
            count_dump_ngrams(args.dump, args.lang, batch_size=args.batch_size, executor=ex)  # warm-up
            timed(f"ray, {args.cpus} CPUs", executor=ex)

    base = rows[0][1]
    print(f"dump: {args.dump} ({mb:.2f} MB compressed), batch size {args.batch_size}")
    print(f"{'executor':20s} {'seconds':>8s} {'MB/s':>7s} {'speed-up':>9s}  same bytes")
    for label, dt, data in rows:
        print(f"{label:20s} {dt:8.2f} {mb / dt:7.3f} {base / dt:9.2f}  {data == rows[0][2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
