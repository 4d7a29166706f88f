"""Curation throughput: pairs/s of stage 1 (LID + matching + counts) and stage 3 (sampling +
writing), with 1 and 2 local worker processes (and Ray with --ray).

Run:  python benchmarks/bench_curate.py [--shards 8] [--images 10000] [--lid]

The pool is generated: per language a synthetic vocabulary (entries = its first words and
word pairs), alt-texts of 1-8 words drawn from it, 1-3 alt-texts per image, languages given
(no LID) unless --lid drops them for half the texts (then the bundled lid.176 runs on those;
the generated words are not real language, so most land in ``other``). Each configuration
runs in a fresh run directory; the worker pool is started before timing. Baseline: the
1-worker local executor in this process; ratios are against it. Outputs of all
configurations are checked to be byte-identical.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metaclip2.execution import get_executor  # noqa: E402
from metaclip2.pipeline.run.api import compute_thresholds, count, sample  # noqa: E402
from metaclip2.core.entries import write_metadata  # noqa: E402

LANGS = {"en": 20000, "de": 8000, "zh": 5000, "other": 3000}


def make_pool(root: Path, shards: int, images: int, lid: bool, seed: int = 0) -> tuple[Path, str, int]:
    rnd = random.Random(seed)
    vocab = {}
    for lang, n in LANGS.items():
        if lang == "zh":
            words = list({"".join(chr(0x4E00 + rnd.randrange(3000)) for _ in range(rnd.randint(1, 3))) for _ in range(n)})
        else:
            letters = "abcdefghijklmnopqrstuvwxyz" + ("äöüß" if lang == "de" else "")
            words = list({"".join(rnd.choices(letters, k=rnd.randint(3, 9))) for _ in range(n)})
        words.sort()
        entries = words[: n // 2] + [f"{a} {b}" for a, b in zip(words[: n // 4], words[n // 4 : n // 2])]
        write_metadata(root / "meta" / f"{lang}.tsv", sorted(set(entries)), lang=lang)
        vocab[lang] = words
    (root / "pool").mkdir()
    n_pairs = 0
    for s in range(shards):
        with open(root / "pool" / f"part-{s:04d}.jsonl", "w", encoding="utf-8") as f:
            for i in range(images):
                texts = []
                for _ in range(rnd.randint(1, 3)):
                    lang = rnd.choice(list(LANGS))
                    sep = "" if lang == "zh" else " "
                    text = sep.join(rnd.choices(vocab[lang], k=rnd.randint(1, 8)))
                    texts.append({"text": text} if lid and rnd.random() < 0.5 else {"text": text, "lang": lang})
                n_pairs += len(texts)
                f.write(json.dumps({"id": f"{s}-{i}", "texts": texts}, ensure_ascii=False) + "\n")
    return root / "meta", str(root / "pool" / "*.jsonl"), n_pairs


def outputs(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != "run.json"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--images", type=int, default=10000, help="images per shard")
    p.add_argument("--lid", action="store_true", help="half of the texts without a language (LID runs)")
    p.add_argument("--ray", action="store_true", help="also the Ray executor (2 CPUs, local instance)")
    args = p.parse_args()

    configs = [("local, 1 worker", lambda: get_executor("local", 1)), ("local, 2 workers", lambda: get_executor("local", 2))]
    if args.ray:  # hook: the Ray executor implements the same map interface
        configs.append(("ray, 2 CPUs", lambda: get_executor("ray", 2)))

    with tempfile.TemporaryDirectory(prefix="bench-curate-") as tmp:
        tmp = Path(tmp)
        meta, pattern, n_pairs = make_pool(tmp, args.shards, args.images, args.lid)
        print(f"pool: {args.shards} shards, {args.shards * args.images} images, {n_pairs} pairs; "
              f"metadata {sum(LANGS.values())} words -> {sum(1 for _ in meta.glob('*.tsv'))} languages; lid={args.lid}")  # fmt: skip
        results, reference = [], None
        for label, make in configs:
            run = tmp / f"run-{len(results)}"
            ex = make()
            try:
                ex.map(os.getpid, [{}] * 2)  # start the workers before timing
                t0 = time.perf_counter()
                count(meta, [pattern], run, executor=ex, progress=False)
                t1 = time.perf_counter()
                compute_thresholds(run, t_en=50, progress=False)
                t2 = time.perf_counter()
                sample(run, executor=ex, progress=False)
                t3 = time.perf_counter()
            finally:
                ex.close()
            out = outputs(run)
            same = reference is None or out == reference
            reference = reference or out
            results.append((label, n_pairs / (t1 - t0), n_pairs / (t3 - t2), t2 - t1, same))
        base1, base3 = results[0][1], results[0][2]
        print(f"{'executor':18s} {'stage 1 pairs/s':>16s} {'ratio':>6s} {'stage 3 pairs/s':>16s} {'ratio':>6s} {'stage 2 s':>9s}  same bytes")
        for label, s1, s3, s2, same in results:
            print(f"{label:18s} {s1:16,.0f} {s1 / base1:6.2f} {s3:16,.0f} {s3 / base3:6.2f} {s2:9.3f}  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
