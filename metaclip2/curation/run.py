"""Curation of a pool over a run directory: resumable, deterministic, refusing to mix runs.

:func:`curate` runs the three stages; :func:`count`, :func:`compute_thresholds` and
:func:`sample` run one each. The run directory (``OUT``) holds::

    run.json                          parameters and metadata digests, one section per stage
    stage1/<shard>.index.jsonl        matched pairs: n, id, k, lang, ids, text
    stage1/<shard>.counts.bin         the shard's EntryCounts
    stage1/<shard>.stats.json         the shard's accounting — written last, the "done" marker
    stage2/counts.bin                 merged EntryCounts
    stage2/probabilities.bin          EntryProbabilities (what an OnlineSampler loads)
    stage2/thresholds.json            {"p", "t_en", "english", "t"} — written last
    stage3/<shard>.jsonl|.parquet     the curated subset
    stage3/<shard>.stats.json         the shard's sampling accounting — written last
    datacard.json                     see metaclip2.curation.datacard

Every file is written atomically, and a shard whose stats file exists is skipped, so a run
killed at any point and started again with the same arguments finishes with the same bytes
as an uninterrupted one. Outputs do not depend on the number of workers or the executor.
A run refuses (:class:`RunMismatchError`) to continue in a directory made with other
metadata, inputs, or parameters.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from metaclip2.curation.readers import DEFAULT_MAX_CHARS
from metaclip2.curation.sampling import UNITS
from metaclip2.curation.stages import (
    compute_probabilities,
    match_shard,
    merge_counts,
    sample_shard,
    shard_names,
    stage1_paths,
    stage3_paths,
)
from metaclip2.curation.threshold import DEFAULT_T_EN
from metaclip2.curation.writers import OUTPUT_FORMATS, remove_temporaries, write_json

__all__ = ["RunMismatchError", "CurationResult", "expand_inputs", "curate", "count", "compute_thresholds", "sample"]

_RUN_FORMAT = "metaclip2-run/1"


class RunMismatchError(ValueError):
    """The run directory holds outputs made with other metadata, inputs or parameters."""


@dataclass
class CurationResult:
    """Where a finished run put things.

    Attributes
    ----------
    out : Path
        The run directory.
    probabilities : Path
        ``stage2/probabilities.bin``, for :class:`~metaclip2.curation.sampling.OnlineSampler`.
    outputs : list of Path
        The curated subset, one file per input shard, in input order.
    datacard : dict
        The run's datacard (also in ``datacard.json``).
    """

    out: Path
    probabilities: Path
    outputs: list[Path] = field(default_factory=list)
    datacard: dict = field(default_factory=dict)


def expand_inputs(patterns: Sequence[str | os.PathLike]) -> list[str]:
    """Absolute paths of the files matched by `patterns` (globs, ``**`` allowed), sorted, unique.

    Raises
    ------
    FileNotFoundError
        A pattern matches no file.
    """
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    found: set[str] = set()
    for pattern in patterns:
        pattern = os.fspath(pattern)
        hits = [h for h in glob.glob(pattern, recursive=True) if os.path.isfile(h)]
        if not hits and os.path.isfile(pattern):
            hits = [pattern]
        if not hits:
            raise FileNotFoundError(f"input {pattern!r} matches no file")
        found.update(os.path.abspath(h) for h in hits)
    return sorted(found)


# -- run.json ----------------------------------------------------------------------------------


def _read_run(out: Path) -> dict:
    path = out / "run.json"
    if path.exists():
        run = json.loads(path.read_text(encoding="utf-8"))
        if run.get("format") != _RUN_FORMAT:
            raise RunMismatchError(f"{path} is not a metaclip2 run file")
        return run
    if out.exists() and any(out.iterdir()):
        raise RunMismatchError(f"{out} is not empty and holds no run.json: choose a new or empty --out directory")
    return {"format": _RUN_FORMAT}


def _claim(out: Path, section: str, values: dict, ignore: Sequence[str] = ()) -> dict:
    """Record `values` as run.json's `section`, or check they equal what is recorded there."""
    run = _read_run(out)
    old = run.get(section)
    if old is None:
        run[section] = values
        write_json(out / "run.json", run)
        return run
    diffs = [
        f"{k}: {_show(old.get(k))} in run.json, {_show(values.get(k))} now"
        for k in sorted(set(old) | set(values))
        if k not in ignore and old.get(k) != values.get(k)
    ]
    if diffs:
        raise RunMismatchError(
            f"{out} holds a run made with other {section} settings ({'; '.join(diffs)}); "
            "outputs of different runs cannot be mixed: use another --out directory (or delete this one)"
        )
    return run


def _show(v: Any) -> str:
    s = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return s if len(s) <= 80 else s[:77] + "..."


def _require(run: dict, section: str, out: Path, hint: str) -> dict:
    if section not in run:
        raise FileNotFoundError(f"{out} has no {section} yet: {hint}")
    return run[section]


# -- executors ---------------------------------------------------------------------------------


def _executor(executor, workers: int, ray_address: str | None, progress: bool):
    """(executor, owned) from a name or an executor object."""
    if isinstance(executor, str):
        from metaclip2.curation.executors import get_executor

        return get_executor(executor, workers, ray_address, progress), True
    return executor, False


def _map(ex, fn, tasks: list[dict], desc: str) -> list:
    if hasattr(ex, "desc"):
        ex.desc = desc
    return ex.map(fn, tasks)


def _selected(shards: Sequence[int] | None, n: int) -> set[int]:
    """Shard positions to run: all, or the given ones (an array job's index; [] only records run.json)."""
    if shards is None:
        return set(range(n))
    bad = [i for i in shards if not 0 <= int(i) < n]
    if bad:
        raise ValueError(f"shard index {bad[0]} is out of range: the run has {n} shards (0..{n - 1})")
    return {int(i) for i in shards}


def _note(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr)


# -- stages ------------------------------------------------------------------------------------


def count(
    metadata: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    strict: bool = False,
    max_chars: int = DEFAULT_MAX_CHARS,
    input_format: str | None = None,
    min_confidence: float | None = None,
    lid_model: str | None = None,
    workers: int = 1,
    executor: Any = "local",
    ray_address: str | None = None,
    progress: bool = True,
    shards: Sequence[int] | None = None,
) -> list[dict]:
    """Stage 1 over every input shard (skipping finished ones): LID, matching, counts.

    Parameters
    ----------
    metadata : path
        Per-LID-language metadata directory.
    inputs : sequence of str
        Input shards or glob patterns (see :func:`expand_inputs`).
    out : path
        The run directory.
    strict : bool
        Stop at the first bad input (:class:`~metaclip2.curation.readers.InvalidInputError`).
    max_chars : int
        Alt-texts longer than this are invalid.
    input_format : {"jsonl", "parquet", "tar"}, optional
        Default: from each file name.
    min_confidence, lid_model
        Language identification settings (see :func:`~metaclip2.curation.stages.match_shard`).
    workers : int
    executor : {"local", "ray"} or executor object
    ray_address : str, optional
    progress : bool
        Progress bars and notes on stderr.
    shards : sequence of int, optional
        Run only these shards (positions in the sorted input list), e.g. one per job of a
        Slurm array; ``[]`` only records the run's parameters in ``run.json`` (do that once
        before starting the array). Default: every shard.

    Returns
    -------
    list of dict
        Stage-1 stats of every shard, in input order.
    """
    from metaclip2.curation.stages import cached_store

    out = Path(out).resolve()  # tasks may run on other nodes or in other working directories
    paths = expand_inputs(inputs)
    names = shard_names(paths)
    store = cached_store(metadata)
    section = {
        "metadata": str(Path(metadata).resolve()),
        "metadata_digests": store.digests(),
        "inputs": paths,
        "shards": names,
        "max_chars": int(max_chars),
        "input_format": input_format,
        "min_confidence": min_confidence,
        "lid_model": None if lid_model is None else str(lid_model),
    }
    _claim(out, "stage1", section, ignore=("metadata",))
    stage_dir = out / "stage1"
    stage_dir.mkdir(parents=True, exist_ok=True)
    todo = _selected(shards, len(paths))
    if shards is None:
        remove_temporaries(stage_dir)  # only when no other job may be writing here
    tasks = [
        dict(
            input_path=p,
            metadata=section["metadata"],
            out_dir=str(stage_dir),
            shard=n,
            input_format=input_format,
            max_chars=int(max_chars),
            strict=strict,
            min_confidence=min_confidence,
            lid_model=section["lid_model"],
        )
        for i, (p, n) in enumerate(zip(paths, names))
        if i in todo and not stage1_paths(stage_dir, n)["stats"].exists()
    ]
    if len(tasks) < len(todo):
        _note(progress, f"stage 1: {len(todo) - len(tasks)} of {len(todo)} shards already done, skipped")
    ex, owned = _executor(executor, workers, ray_address, progress)
    try:
        _map(ex, match_shard, tasks, "stage 1: match")
    finally:
        if owned:
            ex.close()
    return [_load(stage1_paths(stage_dir, n)["stats"]) for i, n in enumerate(names) if i in todo]


def compute_thresholds(
    out: str | os.PathLike,
    *,
    t_en: float = DEFAULT_T_EN,
    english: str = "keep",
    p: float | None = None,
    progress: bool = True,
) -> dict:
    """Stage 2: merge the shards' counts, derive thresholds and entry probabilities.

    Parameters
    ----------
    out : path
        A run directory whose stage 1 is complete.
    t_en : float
        English threshold.
    english : {"keep", "recompute"}
    p : float, optional
        Tail share to use instead of deriving it from English counts.

    Returns
    -------
    dict
        ``thresholds.json``: ``{"p", "t_en", "english", "t": {lang: t or None}}``.
    """
    out = Path(out).resolve()  # tasks may run on other nodes or in other working directories
    if english not in ("keep", "recompute"):
        raise ValueError(f"english must be 'keep' or 'recompute', got {english!r}")
    if isinstance(t_en, float) and t_en.is_integer():
        t_en = int(t_en)  # 8.0 and 8 are the same run
    run = _read_run(out)
    s1 = _require(run, "stage1", out, "run stage 1 (`metaclip2 count`) first")
    stage1 = out / "stage1"
    missing = [n for n in s1["shards"] if not stage1_paths(stage1, n)["stats"].exists()]
    if missing:
        raise FileNotFoundError(
            f"stage 1 is unfinished for {len(missing)} of {len(s1['shards'])} shards (e.g. {missing[0]}): run `metaclip2 count` again"
        )
    _claim(out, "stage2", {"t_en": t_en, "english": english, "p": p})
    stage2 = out / "stage2"
    done = stage2 / "thresholds.json"
    if done.exists():
        _note(progress, "stage 2: already done, skipped")
        return _load(done)
    stage2.mkdir(parents=True, exist_ok=True)
    remove_temporaries(stage2)
    merge_counts([stage1_paths(stage1, n)["counts"] for n in s1["shards"]], stage2 / "counts.bin", digests=s1["metadata_digests"])
    info = compute_probabilities(stage2 / "counts.bin", stage2, t_en=t_en, english=english, p=p)
    _note(progress, f"stage 2: p = {info['p']:.4g}, thresholds of {len(info['t'])} languages")
    return info


def sample(
    out: str | os.PathLike,
    *,
    seed: int = 0,
    unit: str = "image",
    format: str = "jsonl",
    workers: int = 1,
    executor: Any = "local",
    ray_address: str | None = None,
    progress: bool = True,
    shards: Sequence[int] | None = None,
) -> list[dict]:
    """Stage 3 over every shard (skipping finished ones): keep decisions, curated subset.

    Parameters
    ----------
    out : path
        A run directory whose stage 2 is done.
    seed : int
    unit : {"image", "pair"}
    format : {"jsonl", "parquet"}
    workers, executor, ray_address, progress, shards
        As in :func:`count`.

    Returns
    -------
    list of dict
        Stage-3 stats of every shard, in input order.
    """
    out = Path(out).resolve()  # tasks may run on other nodes or in other working directories
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if format not in OUTPUT_FORMATS:
        raise ValueError(f"format must be one of {OUTPUT_FORMATS}, got {format!r}")
    run = _read_run(out)
    s1 = _require(run, "stage1", out, "run stage 1 (`metaclip2 count`) first")
    _require(run, "stage2", out, "run stage 2 (`metaclip2 thresholds`) first")
    probabilities = out / "stage2" / "probabilities.bin"
    if not (out / "stage2" / "thresholds.json").exists():
        raise FileNotFoundError(f"{out} has no finished stage 2: run `metaclip2 thresholds` first")
    _claim(out, "stage3", {"seed": int(seed), "unit": unit, "format": format})
    stage1, stage3 = out / "stage1", out / "stage3"
    stage3.mkdir(parents=True, exist_ok=True)
    names = s1["shards"]
    todo = _selected(shards, len(names))
    if shards is None:
        remove_temporaries(stage3)  # only when no other job may be writing here
    tasks = [
        dict(
            index_path=str(stage1_paths(stage1, n)["index"]),
            probabilities=str(probabilities),
            out_dir=str(stage3),
            shard=n,
            seed=int(seed),
            unit=unit,
            format=format,
        )
        for i, n in enumerate(names)
        if i in todo and not stage3_paths(stage3, n, format)["stats"].exists()
    ]
    if len(tasks) < len(todo):
        _note(progress, f"stage 3: {len(todo) - len(tasks)} of {len(todo)} shards already done, skipped")
    ex, owned = _executor(executor, workers, ray_address, progress)
    try:
        _map(ex, sample_shard, tasks, "stage 3: sample")
    finally:
        if owned:
            ex.close()
    return [_load(stage3_paths(stage3, n, format)["stats"]) for i, n in enumerate(names) if i in todo]


def curate(
    metadata: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    t_en: float = DEFAULT_T_EN,
    seed: int = 0,
    unit: str = "image",
    english: str = "keep",
    p: float | None = None,
    format: str = "jsonl",
    strict: bool = False,
    max_chars: int = DEFAULT_MAX_CHARS,
    input_format: str | None = None,
    min_confidence: float | None = None,
    lid_model: str | None = None,
    workers: int = 1,
    executor: Any = "local",
    ray_address: str | None = None,
    progress: bool = True,
) -> CurationResult:
    """Curate a pool: stage 1 (:func:`count`), 2 (:func:`compute_thresholds`), 3 (:func:`sample`), datacard.

    Re-running with the same arguments resumes (finished shards are skipped) and ends with
    the same bytes as an uninterrupted run; other metadata, inputs or parameters raise
    :class:`RunMismatchError`. See the stage functions for the parameters.

    Returns
    -------
    CurationResult
    """
    from metaclip2.curation.datacard import make_datacard

    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if format not in OUTPUT_FORMATS:
        raise ValueError(f"format must be one of {OUTPUT_FORMATS}, got {format!r}")
    if english not in ("keep", "recompute"):
        raise ValueError(f"english must be 'keep' or 'recompute', got {english!r}")
    if format == "parquet":
        from metaclip2.curation.readers import import_pyarrow

        import_pyarrow()  # fail before stage 1, not after it
    out = Path(out).resolve()  # tasks may run on other nodes or in other working directories
    ex, owned = _executor(executor, workers, ray_address, progress)
    try:
        count(metadata, inputs, out, strict=strict, max_chars=max_chars, input_format=input_format,
              min_confidence=min_confidence, lid_model=lid_model, executor=ex, progress=progress)  # fmt: skip
        compute_thresholds(out, t_en=t_en, english=english, p=p, progress=progress)
        sample(out, seed=seed, unit=unit, format=format, executor=ex, progress=progress)
    finally:
        if owned:
            ex.close()
    card = make_datacard(out)
    write_json(out / "datacard.json", card)
    names = _read_run(out)["stage1"]["shards"]
    return CurationResult(
        out=out,
        probabilities=out / "stage2" / "probabilities.bin",
        outputs=[stage3_paths(out / "stage3", n, format)["output"] for n in names],
        datacard=card,
    )


def _load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
