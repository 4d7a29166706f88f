"""Curate a pool of image alt-texts stored as JSONL shards (Algorithm 1, end to end).

    python examples/curate_jsonl.py                                   # a tiny generated pool
    python examples/curate_jsonl.py --metadata metadata/lid --input 'pool/*.jsonl' \
        --out runs/pool --t-en 170000 --workers 8

Each input line is one image: ``{"id": "...", "texts": ["alt-text", {"text": "...", "lang": "de"}]}``
(texts without ``lang`` go through language identification, which needs
``pip install 'metaclip2[lid]'``). Without arguments the script writes a small multilingual
metadata directory and a generated pool (languages given, so no LID model is needed) into a
temporary directory and curates that. Re-running the same command resumes a killed run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from metaclip2.pipeline.report.card import write_report  # noqa: E402
from metaclip2.pipeline.run.api import curate  # noqa: E402
from metaclip2.core.entries import write_metadata  # noqa: E402

TOY_METADATA = {
    "en": ["cat", "dog", "red car", "house", "tree", "sky", "the"],
    "de": ["Hund", "Katze", "Haus", "Baum", "der"],
    "zh": ["猫", "狗", "房子"],
    "other": ["kot", "pies", "dom"],
}
TOY_WORDS = {
    "en": "cat dog red car house tree sky the a big small".split(),
    "de": "Hund Katze Haus Baum der die das".split(),
    "zh": list("猫狗房子大小"),
    "pl": "kot pies dom i".split(),
}


def toy_pool(root: Path, shards: int = 4, images: int = 500) -> tuple[Path, str]:
    """Write toy metadata and JSONL shards under `root`; returns (metadata dir, input glob)."""
    for lang, entries in TOY_METADATA.items():
        write_metadata(root / "metadata" / f"{lang}.tsv", entries, lang=lang)
    rnd = random.Random(0)
    (root / "pool").mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        with open(root / "pool" / f"part-{s:05d}.jsonl", "w", encoding="utf-8") as f:
            for i in range(images):
                texts = []
                for _ in range(rnd.randint(1, 3)):
                    lang = rnd.choice(list(TOY_WORDS))
                    sep = "" if lang == "zh" else " "
                    texts.append({"text": sep.join(rnd.choices(TOY_WORDS[lang], k=rnd.randint(1, 4))), "lang": lang})
                f.write(json.dumps({"id": f"{s}-{i}", "texts": texts}, ensure_ascii=False) + "\n")
    return root / "metadata", str(root / "pool" / "*.jsonl")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metadata", help="per-LID-language metadata directory (default: toy metadata)")
    p.add_argument("--input", nargs="+", help="JSONL shards or globs (default: a generated toy pool)")
    p.add_argument("--out", help="run directory (default: a temporary directory)")
    p.add_argument("--t-en", type=float, default=None, help="English threshold (default 170000; 20 for the toy pool)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--unit", choices=("image", "pair"), default="image")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="metaclip2-curate-"))
    metadata, inputs = args.metadata, args.input
    if metadata is None or inputs is None:
        metadata, pattern = toy_pool(tmp)
        inputs = [pattern]
        print(f"toy metadata and pool (generated sample data) in {tmp}")
    t_en = args.t_en if args.t_en is not None else (20 if args.input is None else 170_000)
    out = Path(args.out) if args.out else tmp / "run"

    result = curate(metadata, inputs, out, t_en=t_en, workers=args.workers, unit=args.unit)
    report = write_report(out)
    t = result.datacard["totals"]
    print(f"{t['pairs']} pairs in, {t['matched']} matched, {t['kept']} kept ({t['kept_images']} images)")
    for lang, d in result.datacard["languages"].items():
        print(f"  {lang:6s} pairs {d['pairs']:6d}  matched {d['matched']:6d}  kept {d['kept']:6d}  t {d['t']}")
    print(f"curated subset: {[str(p) for p in result.outputs]}")
    print(f"datacard: {report['datacard']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
