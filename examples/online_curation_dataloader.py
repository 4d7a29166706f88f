"""Online curation: redraw Algorithm 1's stage 3 every epoch inside a data loader.

The Meta CLIP 2 models were trained this way: matching (stage 1) and the entry
probabilities (stage 2) are computed once, and each time a shard is read the loader decides
again, per image, which alt-text (if any) to train on. Decisions are a pure function of
(seed, image id, alt-text index, epoch), so they need no state, agree across workers, and
epoch 0 equals the offline curated subset of ``metaclip2 curate``.

    python examples/online_curation_dataloader.py                     # toy pool, 3 epochs
    python examples/online_curation_dataloader.py --run runs/pool --epochs 2

No torch needed; `curated_pairs` is a plain generator that an ``IterableDataset`` can wrap.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metaclip2.curation.sampling import OnlineSampler  # noqa: E402


def matched_images(index_path: Path) -> Iterator[tuple[str, dict[int, dict]]]:
    """(image id, {alt-text index: index row}) of a stage-1 ``<shard>.index.jsonl``, in order."""
    current, rows = None, {}
    with open(index_path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if current is not None and r["n"] != current:
                yield rows[next(iter(rows))]["id"], rows
                rows = {}
            current = r["n"]
            rows[r["k"]] = r
    if rows:
        yield rows[next(iter(rows))]["id"], rows


def curated_pairs(shards: list[Path], sampler: OnlineSampler, epoch: int) -> Iterator[dict]:
    """The pairs kept in `epoch`: ``{"id", "text_index", "text", "lang"}``.

    In a real loader each record would also carry its image bytes; here the stage-1 index
    stands in for the shard, since it already holds every matched alt-text's language and ids.
    """
    for shard in shards:
        for image_id, rows in matched_images(shard):
            n = max(rows) + 1
            texts = [(rows[k]["lang"], rows[k]["ids"]) if k in rows else ("", []) for k in range(n)]
            for k in sampler(image_id, texts, epoch):
                yield {"id": image_id, "text_index": k, "text": rows[k]["text"], "lang": rows[k]["lang"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a finished curation run directory (default: curate a toy pool first)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=None, help="default: the run's seed")
    args = p.parse_args()

    if args.run is None:
        from curate_jsonl import toy_pool  # the sibling example

        from metaclip2.pipeline.run.api import curate

        tmp = Path(tempfile.mkdtemp(prefix="metaclip2-online-"))
        metadata, pattern = toy_pool(tmp)
        run = curate(metadata, [pattern], tmp / "run", t_en=20, progress=False).out
        print(f"toy pool curated into {run}")
    else:
        run = Path(args.run)
    settings = json.loads((run / "run.json").read_text())
    seed = settings["stage3"]["seed"] if args.seed is None else args.seed
    unit = settings["stage3"]["unit"]
    sampler = OnlineSampler(run / "stage2" / "probabilities.bin", seed=seed, unit=unit)
    shards = [run / "stage1" / f"{name}.index.jsonl" for name in settings["stage1"]["shards"]]

    epochs = []
    for epoch in range(args.epochs):
        kept = list(curated_pairs(shards, sampler, epoch))
        epochs.append({(r["id"], r["text_index"]) for r in kept})
        langs = Counter(r["lang"] for r in kept)
        print(f"epoch {epoch}: {len(kept)} pairs  " + "  ".join(f"{k} {v}" for k, v in sorted(langs.items())))
    if len(epochs) > 1:
        overlap = len(epochs[0] & epochs[1]) / max(len(epochs[0]), 1)
        print(f"epochs 0 and 1 share {overlap:.0%} of their pairs (a new draw each epoch)")
    if seed == settings["stage3"]["seed"] and settings["stage3"]["output_format"] == "jsonl":
        offline = {
            (r["id"], r["text_index"])
            for name in settings["stage1"]["shards"]
            for r in map(json.loads, open(run / "subset" / f"{name}.jsonl", encoding="utf-8"))
        }
        print(f"epoch 0 equals the offline curated subset: {epochs[0] == offline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
