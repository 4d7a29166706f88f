"""Reader throughput per layout: records/s of :func:`read_shard` against a bare parse of the same file.

Run:  python benchmarks/bench_readers.py [--records 200000]

Generated files, one per layout: metaclip2 JSONL (flat), DataComp-style Parquet (uid, url,
text, sizes, scores; one row group per 65,536 rows), img2dataset tar (key.jpg, key.txt,
key.json), the same tar without the .txt members (tar-json), the JSONL gzipped. Baselines, in
this process: ``json.loads`` per line; Parquet ``iter_batches().to_pylist()`` of all columns;
``tarfile`` iterating members and reading the text ones; the same JSONL loop over
``gzip.open``. The ratio is reader time / baseline time
(what layout detection, validation, carried fields and damage accounting cost). Peak RSS is
printed after each format. With ``--reference``, also the ratio of the readers' slow reference
paths (every Parquet row through the per-record checks, every JSONL line through the digit-run
test and tar's records through the record generator), which give the same images.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import resource
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metaclip2.pipeline.io.readers import read_shard  # noqa: E402

WORDS = "cat dog red car house tree sky the a big small on Hund Katze Haus".split()


def make(root: Path, n: int) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(1 + i % 8)) for i in range(n)]
    jsonl = root / "flat.jsonl"
    jsonl.write_text("".join(json.dumps({"id": f"i{i}", "text": t, "url": f"https://x/{i}.jpg"}) + "\n" for i, t in enumerate(texts)))
    gz = root / "flat.jsonl.gz"
    gz.write_bytes(gzip.compress(jsonl.read_bytes(), mtime=0))
    parquet = root / "datacomp.parquet"
    pq.write_table(pa.table({"uid": [f"{i:032x}" for i in range(n)], "url": [f"https://x/{i}.jpg" for i in range(n)], "text": texts,
                             "original_width": list(range(n)), "clip_b32_similarity_score": [0.3] * n}), parquet, row_group_size=65536)  # fmt: skip
    tar_path = root / "img2dataset.tar"
    with tarfile.open(tar_path, "w") as tar:
        for i, t in enumerate(texts[: n // 4]):
            key = f"{i:09d}"
            for ext, data in (("jpg", b"\xff" * 64), ("txt", t.encode()), ("json", json.dumps({"key": key, "caption": t, "url": f"https://x/{i}", "status": "success"}).encode())):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    tar_json = root / "img2dataset-json.tar"  # the other sample layout: key.jpg + key.json (caption inside)
    with tarfile.open(tar_json, "w") as tar:
        for i, t in enumerate(texts[: n // 4]):
            key = f"{i:09d}"
            for ext, data in (("jpg", b"\xff" * 64), ("json", json.dumps({"key": key, "caption": t, "url": f"https://x/{i}", "status": "success"}).encode())):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return {"jsonl": jsonl, "jsonl.gz": gz, "parquet": parquet, "tar": tar_path, "tar-json": tar_json}


def baseline(kind: str, path: Path) -> int:
    n = 0
    if kind.startswith("jsonl"):
        with (gzip.open if kind.endswith("gz") else open)(path, "rb") as f:
            for line in f:
                json.loads(line)
                n += 1
    elif kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
            n += len(batch.to_pylist())
    else:
        with tarfile.open(path, "r|") as tar:
            for m in tar:
                if m.name.endswith((".txt", ".json")):
                    tar.extractfile(m).read()
                    n += m.name.endswith(".txt" if kind == "tar" else ".json")
    return n


def reference(path: Path) -> int:
    """Pairs read by the readers' reference paths (the same images, slower)."""
    from metaclip2.pipeline.io import parquet, records

    parquet._COLUMNWISE = records._FAST = False
    try:
        return sum(len(im.texts) for im in read_shard(path))
    finally:
        parquet._COLUMNWISE = records._FAST = True


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--reference", action="store_true", help="also time the readers' reference paths")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        files = make(Path(d), args.records)
        ref = f" {'ref ratio':>9}" if args.reference else ""
        print(f"{'layout':<10} {'records':>8} {'baseline/s':>12} {'reader/s':>12} {'ratio':>6} {'peak RSS MiB':>13}{ref}")
        for kind, path in files.items():
            tb, n = timed(lambda: baseline(kind, path))
            tr, m = timed(lambda: sum(len(im.texts) for im in read_shard(path)))
            assert m == n, (kind, m, n)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            if args.reference:
                t0, _ = timed(lambda: reference(path))
                ref = f" {t0 / tb:>9.2f}"
            print(f"{kind:<10} {n:>8} {n / tb:>12,.0f} {n / tr:>12,.0f} {tr / tb:>6.2f} {rss:>13.0f}{ref}")


if __name__ == "__main__":
    main()
