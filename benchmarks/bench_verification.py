"""What verifying a run costs: the share of a full curation's wall time spent hashing inputs
and outputs (sha256, streamed), and what a resume of a finished run costs.

Run:  python benchmarks/bench_verification.py [--images 3000] [--shards 4] [--repeat 3] [--workers 1]

The pool and metadata are the ``metaclip2 demo`` ones (bundled sample sources, generated pool;
``--images``/``--shards`` scale the pool). Every sha256 the run computes goes through
:func:`metaclip2.core.fingerprint.file_digest`, which is wrapped with a timer here (so with
``--workers 1`` everything is timed in this process). Per repetition, in a fresh directory:

* full run: ``curate`` from scratch (stage 1-3 and the datacard); ``hash`` = seconds inside
  ``file_digest`` (fingerprints of the inputs, digests of every output after it is written,
  verification of stage-1 counts before stage 2 and of the index and probabilities before
  stage 3); the baseline is the same run without that time;
* resume: ``curate`` again over the finished run (every shard verified, nothing redone).

Medians over the repetitions are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metaclip2.core import fingerprint  # noqa: E402
from metaclip2.pipeline.builds import demo  # noqa: E402
from metaclip2.pipeline.stages import cache, match, merge, sample  # noqa: E402
from metaclip2.pipeline.run.api import curate  # noqa: E402

_spent = [0.0]


def _timed(fn):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _spent[0] += time.perf_counter() - t

    return wrapper


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=demo.N_IMAGES, help="images in the pool (demo: %(default)s)")
    p.add_argument("--shards", type=int, default=demo.N_SHARDS)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workers", type=int, default=1, help="only with 1 is the hashing of workers timed")
    args = p.parse_args()

    fingerprint.file_digest = _timed(fingerprint.file_digest)  # input_fingerprint, file_problem
    for stage in (cache, match, merge, sample):  # outputs after writing (imported by name)
        stage.file_digest = _timed(stage.file_digest)

    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        tmp = Path(tmp)
        meta = demo.build_demo_metadata(tmp / "metadata", progress=False)
        pool = demo.make_sample_pool(tmp / "pool", n_images=args.images, n_shards=args.shards, with_lid=demo.lid_available())
        in_bytes = sum(Path(x).stat().st_size for x in pool)
        kw = dict(t_en=demo.DEMO_T_EN, workers=args.workers, progress=False)
        curate(meta, [str(x) for x in pool], tmp / "warm", **kw)  # load LID model and matchers once
        rows = []
        for r in range(args.repeat):
            out = tmp / f"run-{r}"
            _spent[0] = 0.0
            t0 = time.perf_counter()
            curate(meta, [str(x) for x in pool], out, **kw)
            full, full_hash = time.perf_counter() - t0, _spent[0]
            _spent[0] = 0.0
            t0 = time.perf_counter()
            curate(meta, [str(x) for x in pool], out, **kw)
            resume, resume_hash = time.perf_counter() - t0, _spent[0]
            rows.append((full, full_hash, resume, resume_hash))
        run_bytes = sum(f.stat().st_size for f in (tmp / "run-0").rglob("*") if f.is_file())
    full, full_hash, resume, resume_hash = (statistics.median(c) for c in zip(*rows))
    print(f"pool: {args.images} images in {args.shards} shards, {in_bytes / 1e3:.0f} kB in, run directory {run_bytes / 1e3:.0f} kB; "
          f"workers={args.workers}, lid={demo.lid_available()}, median of {args.repeat}")  # fmt: skip
    print(f"full run            {full:8.3f} s   of which sha256 {full_hash:7.4f} s = {100 * full_hash / full:5.2f} %")
    print(f"baseline (no hash)  {full - full_hash:8.3f} s   ratio full/baseline = {full / (full - full_hash):.4f}")
    print(f"resume of finished  {resume:8.3f} s   of which sha256 {resume_hash:7.4f} s; resume/full = {100 * resume / full:5.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
