"""What a run checks before it reuses a finished stage: the outputs are the bytes that were
written, and the inputs are the files they were made from.

A finished shard's stats (written last) record its input's fingerprint and, for each output
file, the size and sha256 taken right after the file was committed. Before a run skips a
shard as done it re-verifies ([`stage1_shard`][metaclip2.pipeline.run.verify.stage1_shard], [`stage3_shard`][metaclip2.pipeline.run.verify.stage3_shard], [`stage2`][metaclip2.pipeline.run.verify.stage2]):

* an output missing, cut, extended or altered -> the shard is redone (with a warning naming
  it and the file);
* a damaged stats file (unreadable, its seal broken by an edit, counts that do not add up)
  -> the shard is redone (with a warning);
* the input changed since stage 1 read it (size or mtime differ *and* the content hash
  differs) -> [`InputChangedError`][metaclip2.pipeline.run.verify.InputChangedError], or the shard is redone with ``redo_changed``;
* stage 2 and 3 also record the digests of what they consumed (the shards' counts; the
  index and ``probabilities.bin``), so a redone stage 1 makes the later stages redo too;
  ``thresholds.json`` must agree with the header of ``probabilities.bin`` it was written with.

Every check streams the files' bytes (sha256): nothing is trusted on names or timestamps,
which a copy, a restore or bit rot can leave unchanged. Verification of many shards runs on
threads (hashlib releases the GIL), see [`verify_many`][metaclip2.pipeline.run.verify.verify_many].
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from metaclip2.core.arrayfile import load_header
from metaclip2.core.errors import DataError, Metaclip2Error
from metaclip2.core.jsonfile import unseal
from metaclip2.core.fingerprint import file_problem, input_change
from metaclip2.pipeline.run.rundir import load_json
from metaclip2.pipeline.stages.files import stage1_paths, stage3_paths
from metaclip2.pipeline.stages.stats import Stage1Stats, Stage3Stats

__all__ = [
    "InputChangedError", "ShardCheck", "outputs_problem", "stage1_shard", "stage3_shard", "stage2", "thresholds_problem",
    "split_record", "counts_digest", "verify_many",
]  # fmt: skip

T = TypeVar("T")

_OLD = "it records no checksums (made by an older metaclip2)"


class InputChangedError(DataError):
    """An input shard changed after stage 1 read it; its outputs no longer describe it."""


@dataclass
class ShardCheck:
    """Outcome of verifying one finished shard.

    Attributes
    ----------
    stats : Stage1Stats or Stage3Stats or None
        The shard's stats when it is done and intact; None when it must be (re)done.
    problem : str or None
        Why a shard that looked done is redone (None: not started, or intact).
    """

    stats: Any = None
    problem: str | None = None


def outputs_problem(directory: str | os.PathLike, recorded: Mapping[str, Mapping] | None) -> str | None:
    """The first difference between the files in `directory` and their `recorded` size and sha256."""
    if not recorded:
        return _OLD
    for name in sorted(recorded):
        problem = file_problem(Path(directory) / name, recorded[name])
        if problem is not None:
            return problem
    return None


def _load(cls, path: Path) -> tuple[Any, str | None]:
    try:
        return cls.from_json(load_json(path), source=str(path)), None
    except DataError as e:
        return None, f"its stats file is damaged ({e})"


def stage1_shard(stage1_dir: str | os.PathLike, shard: str, input_path: str, *, redo_changed: bool = False,
                 check_outputs: bool | Sequence[str] = True, metadata_digests: Mapping[str, str] | None = None) -> ShardCheck:  # fmt: skip
    """Verify a shard's finished stage 1 against its input and its outputs.

    Parameters
    ----------
    stage1_dir : path
    shard : str
    input_path : str
        The input file now (run.json's).
    redo_changed : bool
        A changed input makes the shard "not done" instead of raising.
    check_outputs : bool or sequence of str
        Verify every output (True), none (False), or those of these keys of
        [`stage1_paths`][metaclip2.pipeline.stages.files.stage1_paths] (e.g. ``["counts"]``).
    metadata_digests : mapping of str to str, optional
        The run's metadata (run.json's ``metadata_digests``): a shard whose counts index another
        entry list of some language (the metadata changed while stage 1 ran, even if it was
        restored since) was made with other metadata.

    Raises
    ------
    InputChangedError
        The input, or the metadata the shard was made with, changed and `redo_changed` is False.
    """
    paths = stage1_paths(stage1_dir, shard)
    if not paths["stats"].exists():
        return ShardCheck()
    stats, problem = _load(Stage1Stats, paths["stats"])
    if stats is None:
        return ShardCheck(problem=problem)
    if not stats.fingerprint or not stats.outputs or paths["images"].name not in stats.outputs:
        return ShardCheck(problem=_OLD)
    change = input_change(input_path, stats.fingerprint)
    if change is not None:
        if not redo_changed:
            raise InputChangedError(
                f"input {input_path} (shard {shard}) changed since stage 1 read it ({change}): its outputs no longer "
                "describe it; run `metaclip2 curate` or `count` again with --redo-changed (redo_changed=True) to redo "
                "it and the stages after it, or put the original file back"
            )
        return ShardCheck(problem=f"its input changed since stage 1 read it ({change})")
    if check_outputs is True:
        recorded = stats.outputs
    else:
        names = {paths[k].name for k in (check_outputs or ())}
        recorded = {n: v for n, v in stats.outputs.items() if n in names}
    if recorded:
        problem = outputs_problem(stage1_dir, recorded)
        if problem is not None:
            return ShardCheck(problem=problem)
    if metadata_digests is not None:
        problem = _metadata_problem(paths["counts"], metadata_digests)
        if problem is not None and not redo_changed:
            raise InputChangedError(
                f"shard {shard} was {problem}: run `metaclip2 curate` or `count` again with --redo-changed "
                "(redo_changed=True), which redoes every shard made with other metadata and the stages after them"
            )
        if problem is not None:
            return ShardCheck(problem=problem)
    return ShardCheck(stats=stats)


def _metadata_problem(counts_path: Path, digests: Mapping[str, str]) -> str | None:
    """How a shard's counts disagree with the run's metadata, or None (reads the file's table of contents only)."""
    from metaclip2.curation.counts import EntryCounts

    made = EntryCounts.load(counts_path).digests
    changed = sorted(lang for lang, d in made.items() if digests.get(lang) != d)
    if not changed:
        return None
    return f"made with other metadata than the run's ({', '.join(changed[:5])}{' …' if len(changed) > 5 else ''} changed while stage 1 ran)"


def stage3_shard(stage3_dir: str | os.PathLike, shard: str, output_format: str, sources: Mapping[str, str]) -> ShardCheck:
    """Verify a shard's finished stage 3: made from `sources` (sha256 of ``index``,
    ``probabilities`` and ``split``), and its outputs intact."""
    paths = stage3_paths(stage3_dir, shard, output_format)
    if not paths["stats"].exists():
        return ShardCheck()
    stats, problem = _load(Stage3Stats, paths["stats"])
    if stats is None:
        return ShardCheck(problem=problem)
    if not stats.sources or not stats.outputs:
        return ShardCheck(problem=_OLD)
    for key in sorted(sources):
        if stats.sources.get(key) != sources[key]:
            what = {"index": "stage-1 index", "split": "split-images file"}.get(key, "probabilities.bin")
            return ShardCheck(problem=f"it was sampled from another {what} than the run's current one")
    problem = outputs_problem(stage3_dir, stats.outputs)
    if problem is not None:
        return ShardCheck(problem=problem)
    return ShardCheck(stats=stats)


def counts_digest(shard_counts: Mapping[str, str]) -> str:
    """One sha256 over the shards' counts digests (``{shard: sha256}``): what stage 2 was made from."""
    h = hashlib.sha256()
    for shard in sorted(shard_counts):
        h.update(f"{shard}\t{shard_counts[shard]}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def stage2(stage2_dir: str | os.PathLike, inputs_sha256: str | None = None) -> tuple[dict | None, str | None]:
    """Verify a finished stage 2: ``(thresholds.json content, None)`` when intact, else ``(None, why)``.

    With `inputs_sha256` ([`counts_digest`][metaclip2.pipeline.run.verify.counts_digest] of the current stage-1 counts), stage 2 must
    also have been made from those counts.
    """
    path = Path(stage2_dir) / "thresholds.json"
    if not path.exists():
        return None, None
    try:
        # sealed once stage 2 writes the seal; an unsealed file is still checked against probabilities.bin below
        info = unseal(load_json(path), str(path))
    except DataError as e:
        return None, f"thresholds.json is damaged ({e})"
    if not info.get("outputs") or not isinstance(info["outputs"], dict):
        return None, _OLD
    if inputs_sha256 is not None and info.get("inputs_sha256") != inputs_sha256:
        return None, "the stage-1 counts changed since it was computed"
    problem = outputs_problem(stage2_dir, info["outputs"])
    if problem is None:
        problem = thresholds_problem(info, Path(stage2_dir) / "probabilities.bin")
    if problem is not None:
        return None, problem
    return info, None


def thresholds_problem(info: Mapping[str, Any], probabilities: str | os.PathLike) -> str | None:
    """How the thresholds in `info` (thresholds.json) differ from those `probabilities` was made with, or None.

    ``probabilities.bin`` carries its own checksum, so its header is what stage 3 samples with;
    thresholds.json must agree with it (``t``, ``p``, ``t_en``, ``english``).
    """
    try:
        header = load_header(probabilities)
    except DataError as e:
        return f"probabilities.bin cannot be used ({e})"
    params = header.get("params") if isinstance(header, dict) else None
    if not isinstance(params, dict) or not isinstance(header.get("t"), dict):
        return f"{probabilities} is not a metaclip2 probabilities file"
    made = {"t": header["t"], **{k: params.get(k) for k in ("p", "t_en", "english")}}
    for key in sorted(made):
        if info.get(key) != made[key]:
            return f"thresholds.json says {key} = {info.get(key)!r}, but probabilities.bin was made with {made[key]!r}"
    return None


def split_inputs_digest(stage1_dir: str | os.PathLike, names: Sequence[str], stats: Mapping[str, Stage1Stats]) -> str:
    """What stage 2's split-images file is made from, from the shards' recorded index and images digests."""
    from metaclip2.pipeline.stages.split import split_inputs_digest as digest

    shas = {}
    for n in names:
        p = stage1_paths(stage1_dir, n)
        shas[n] = (stats[n].outputs[p["index"].name]["sha256"], stats[n].outputs[p["images"].name]["sha256"])
    return digest(shas)


def split_record(stage2_dir: str | os.PathLike, inputs_sha256: str | None = None) -> tuple[dict | None, str | None]:
    """Verify stage 2's split-images file: ``(split.json content, None)`` when intact (and, with
    `inputs_sha256`, made from those stage-1 files), else ``(None, why or None when absent)``."""
    from metaclip2.pipeline.stages.split import SPLIT_FILE, SPLIT_RECORD

    path = Path(stage2_dir) / SPLIT_RECORD
    if not path.exists():
        return None, None
    try:
        info = load_json(path)
    except DataError as e:
        return None, f"{SPLIT_RECORD} is damaged ({e})"
    if not isinstance(info, dict) or SPLIT_FILE not in (info.get("outputs") or {}):
        return None, _OLD
    if inputs_sha256 is not None and info.get("inputs_sha256") != inputs_sha256:
        return None, "the stage-1 files changed since it was made"
    problem = outputs_problem(stage2_dir, info["outputs"])
    if problem is not None:
        return None, problem
    return info, None


def verify_many(fn: Callable[..., T], calls: Sequence[tuple], workers: int = 1) -> list[T]:
    """``[fn(*args) for args in calls]`` on up to `workers` threads (hashing releases the GIL).

    The first error of ours is raised (e.g. [`InputChangedError`][metaclip2.pipeline.run.verify.InputChangedError]), in call order.
    """
    if workers <= 1 or len(calls) <= 1:
        return [fn(*args) for args in calls]
    with ThreadPoolExecutor(max_workers=min(workers, len(calls))) as pool:
        futures = [pool.submit(fn, *args) for args in calls]
        results = []
        for f in futures:
            try:
                results.append(f.result())
            except Metaclip2Error:
                for g in futures:
                    g.cancel()
                raise
        return results
