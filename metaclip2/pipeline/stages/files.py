"""The files a stage writes for one shard, and the shard names they are named by.

Output files of a shard named ``S`` (see [`shard_names`][metaclip2.pipeline.stages.files.shard_names]):

* stage 1: ``S.index.bin`` ([`metaclip2.pipeline.io.index`][metaclip2.pipeline.io.index]: one row per *matched* pair:
  ``n`` image ordinal in the shard, ``id``, ``k`` alt-text index, ``lang`` metadata language,
  ``ids`` matched entry ids, ``text``), ``S.counts.bin`` (sparse [`EntryCounts`][metaclip2.curation.counts.EntryCounts]),
  ``S.images.bin`` (the shard's image ids, hashed: [`metaclip2.pipeline.stages.split`][metaclip2.pipeline.stages.split]),
  ``S.examples.json`` (a bounded sample of alt-texts for the report,
  [`metaclip2.pipeline.stages.examples`][metaclip2.pipeline.stages.examples]), ``S.stats.json`` (written last);
* stage 3: ``subset/S.jsonl`` or ``subset/S.parquet`` ([`CURATED_COLUMNS`][metaclip2.pipeline.io.writers.CURATED_COLUMNS]),
  ``keys/S.keys.txt`` (optional), ``stage3/S.examples.json``, ``stage3/S.stats.json`` (written last).

Each stats file also records the size and sha256 of the shard's outputs (and of what it was
made from), so that a resumed run verifies them before reuse ([`metaclip2.pipeline.run.verify`][metaclip2.pipeline.run.verify]).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path, PurePosixPath
from typing import Sequence

from metaclip2.pipeline.io.index import INDEX_SUFFIX

__all__ = ["shard_names", "stage1_paths", "stage3_paths"]

#: A run's directory of curated data files (only those: what readers are pointed at), and of kept-key lists.
SUBSET_DIR, KEYS_DIR = "subset", "keys"


def _safe(s: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._")
    return s or "shard"


def _strip_ext(name: str) -> str:
    for ext in (".jsonl.gz", ".json.gz", ".ndjson.gz", ".tar.gz", ".jsonl", ".json", ".ndjson", ".parquet", ".pq", ".tar", ".tgz"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def shard_names(paths: Sequence[str | os.PathLike], root: str | os.PathLike | None = None) -> list[str]:
    """Stable, unique, filesystem-safe names for input shards.

    A shard is named by its path relative to `root` (a run passes the deepest common folder
    of its input patterns' fixed parts: ``pool/`` for ``pool/*/*.jsonl``, so a shard keeps its
    name when the pattern later matches more folders), else to the inputs' deepest common
    directory, extension dropped, ``/`` written ``__`` (``data/en/part-0.jsonl`` among
    ``data/*/…`` → ``en__part-0``). Names that would collide after sanitising get an 8-hex
    suffix from the full path.

    See Also
    --------
    - [`stage1_paths`][metaclip2.pipeline.stages.files.stage1_paths] : The files stage 1 writes for a name.
    - [`stage3_paths`][metaclip2.pipeline.stages.files.stage3_paths] : The files stage 3 writes for a name.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.files import shard_names
    >>> shard_names(["data/en/part-0.jsonl", "data/de/part-0.jsonl", "data/de/part-1.parquet"])
    ['en__part-0', 'de__part-0', 'de__part-1']

    Relative to a given root, the name does not depend on the other inputs:

    >>> shard_names(["pool/2024-01/part-0.jsonl"], root="pool")
    ['2024-01__part-0']

    The same name twice once extensions are dropped: each gets a suffix from its path.

    >>> shard_names(["data/x.jsonl", "data/x.parquet"])
    ['x-...', 'x-...']
    """
    # URLs (fsspec inputs) are named like paths, by what follows their protocol
    resolved = [Path(p).resolve() if "://" not in str(p) else PurePosixPath("/" + str(p).split("://", 1)[1]) for p in paths]
    if not resolved:
        return []
    common = os.path.commonpath([str(p.parent) for p in resolved])
    if root is not None and "://" not in os.fspath(root):  # (a root above a symlink's target: the common part of both)
        common = os.path.commonpath([str(Path(root).resolve()), common])
    raw = [_safe(_strip_ext(os.path.relpath(str(p), common)).replace(os.sep, "__")) for p in resolved]
    seen: dict[str, int] = {}
    for r in raw:
        seen[r] = seen.get(r, 0) + 1
    return [
        r if seen[r] == 1 else f"{r}-{hashlib.sha1(str(p).encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
        for r, p in zip(raw, resolved if all("://" not in str(p) for p in paths) else [os.fspath(p) for p in paths])
    ]


def stage1_paths(out_dir: str | os.PathLike, shard: str) -> dict[str, Path]:
    """``index``, ``counts``, ``images``, ``examples`` and ``stats`` paths of a shard's stage-1 outputs in `out_dir`.

    See Also
    --------
    - [`match_shard`][metaclip2.pipeline.stages.match.match_shard] : Stage 1, which writes these files.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.files import stage1_paths
    >>> {key: path.name for key, path in stage1_paths("run/stage1", "en__part-0").items()}
    {'index': 'en__part-0.index.bin', 'counts': 'en__part-0.counts.bin', 'images': 'en__part-0.images.bin', 'examples': 'en__part-0.examples.json', 'stats': 'en__part-0.stats.json'}
    """
    d = Path(out_dir)
    return {"index": d / f"{shard}{INDEX_SUFFIX}", "counts": d / f"{shard}.counts.bin", "images": d / f"{shard}.images.bin",
            "examples": d / f"{shard}.examples.json", "stats": d / f"{shard}.stats.json"}  # fmt: skip


def stage3_paths(out_dir: str | os.PathLike, shard: str, output_format: str = "jsonl") -> dict[str, Path]:
    """``output``, ``keys`` (kept image ids, optional), ``examples`` and ``stats`` paths of a shard's stage-3 outputs.

    `out_dir` is a run's ``stage3`` directory, which holds the stats and the report's examples;
    the curated data files go to its sibling ``subset/`` (a directory of data files only, what
    readers are pointed at) and the kept-key lists to ``keys/``.

    See Also
    --------
    - [`sample_shard`][metaclip2.pipeline.stages.sample.sample_shard] : Stage 3, which writes these files.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.files import stage3_paths
    >>> {key: path.as_posix() for key, path in stage3_paths("run/stage3", "en__part-0", "parquet").items()}
    {'output': 'run/subset/en__part-0.parquet', 'keys': 'run/keys/en__part-0.keys.txt', 'examples': 'run/stage3/en__part-0.examples.json', 'stats': 'run/stage3/en__part-0.stats.json'}
    """
    d = Path(out_dir)
    return {"output": d.parent / SUBSET_DIR / f"{shard}.{output_format}", "keys": d.parent / KEYS_DIR / f"{shard}.keys.txt",
            "examples": d / f"{shard}.examples.json", "stats": d / f"{shard}.stats.json"}  # fmt: skip


def stage3_output_name(path: Path) -> str:
    """Name a stage-3 output is recorded under in its stats (relative to the run directory)."""
    return f"{path.parent.name}/{path.name}"
