"""Curation of a pool over a run directory: resumable, deterministic, refusing to mix runs.

:func:`curate` runs the three stages; :func:`count`, :func:`compute_thresholds` and
:func:`sample` run one each. Every parameter lives in a
:class:`~metaclip2.pipeline.config.CurationConfig`, given whole (``config=``) or as keyword
options; the directory's layout and ``run.json`` are :class:`~metaclip2.pipeline.rundir.RunDir`'s.

Every file is written atomically, and a shard whose stats file exists is skipped, so a run
killed at any point and started again with the same arguments finishes with the same bytes
as an uninterrupted one. Outputs do not depend on the number of workers or the executor.
A run refuses (:class:`~metaclip2.core.errors.RunMismatchError`) to continue in a directory
made with other metadata, inputs, or parameters.
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from metaclip2.core.atomic import remove_temporaries, write_json
from metaclip2.core.errors import MissingInputError, ParameterError
from metaclip2.execution.executor import Executor, get_executor
from metaclip2.pipeline.config import CurationConfig
from metaclip2.pipeline.rundir import RunDir, load_json
from metaclip2.pipeline.stages import (
    MatchTask,
    SampleTask,
    cached_store,
    compute_probabilities,
    merge_counts,
    shard_names,
    stage1_paths,
    stage3_paths,
)
from metaclip2.pipeline.stats import Stage1Stats, Stage3Stats

__all__ = ["CurationResult", "expand_inputs", "curate", "count", "compute_thresholds", "sample"]


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
    MissingInputError
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
            raise MissingInputError(f"input {pattern!r} matches no file")
        found.update(os.path.abspath(h) for h in hits)
    return sorted(found)


class _Executor:
    """The config's executor for the length of a ``with`` block; closed only if made here."""

    def __init__(self, config: CurationConfig):
        self.config = config
        self.owned = not isinstance(config.executor, Executor)

    def __enter__(self) -> Executor:
        c = self.config
        self.ex = get_executor(c.executor, c.workers, c.ray_address, c.progress) if self.owned else c.executor
        return self.ex

    def __exit__(self, *exc) -> None:
        if self.owned:
            self.ex.close()


def _selected(shards: Sequence[int] | None, n: int) -> set[int]:
    """Shard positions to run: all, or the given ones (an array job's index; [] only records run.json)."""
    if shards is None:
        return set(range(n))
    bad = [i for i in shards if not 0 <= int(i) < n]
    if bad:
        raise ParameterError(f"shard index {bad[0]} is out of range: the run has {n} shards (0..{n - 1})")
    return {int(i) for i in shards}


def _note(config: CurationConfig, msg: str) -> None:
    if config.progress:
        print(msg, file=sys.stderr)


# -- stages ------------------------------------------------------------------------------------


def count(
    metadata: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: CurationConfig | None = None,
    *,
    shards: Sequence[int] | None = None,
    **options: Any,
) -> list[Stage1Stats]:
    """Stage 1 over every input shard (skipping finished ones): LID, matching, counts.

    Parameters
    ----------
    metadata : path
        Per-LID-language metadata directory.
    inputs : sequence of str
        Input shards or glob patterns (see :func:`expand_inputs`).
    out : path
        The run directory.
    config : CurationConfig, optional
        Run parameters (its stage-1 and execution fields are used).
    shards : sequence of int, optional
        Run only these shards (positions in the sorted input list), e.g. one per job of a
        Slurm array; ``[]`` only records the run's parameters in ``run.json`` (do that once
        before starting the array). Default: every shard.
    **options
        :class:`CurationConfig` fields, applied over `config`.

    Returns
    -------
    list of Stage1Stats
        The selected shards' accounting, in input order.
    """
    config = CurationConfig.from_options(config, **options)
    with _Executor(config) as ex:  # an executor that cannot start refuses before anything is written
        run = RunDir(out)
        run.read()  # refuse a file or a foreign directory before anything else
        paths = expand_inputs(inputs)
        names = shard_names(paths)
        todo = _selected(shards, len(paths))
        store = cached_store(metadata)
        section = {
            "metadata": str(Path(metadata).resolve()),
            "metadata_digests": store.digests(),
            "inputs": paths,
            "shards": names,
            **config.section(1),
        }
        run.claim("stage1", section, ignore=("metadata",))
        run.stage1.mkdir(parents=True, exist_ok=True)
        if shards is None:
            remove_temporaries(run.stage1)  # only when no other job may be writing here
        tasks = [
            MatchTask(input_path=p, metadata=section["metadata"], out_dir=str(run.stage1), shard=n,
                      input_format=config.input_format, max_chars=config.max_chars, strict=config.strict,
                      min_confidence=config.min_confidence, lid_model=config.lid_model)  # fmt: skip
            for i, (p, n) in enumerate(zip(paths, names))
            if i in todo and not stage1_paths(run.stage1, n)["stats"].exists()
        ]
        if len(tasks) < len(todo):
            _note(config, f"stage 1: {len(todo) - len(tasks)} of {len(todo)} shards already done, skipped")
        ex.run(tasks, desc="stage 1: match")
    return [_stats(Stage1Stats, stage1_paths(run.stage1, n)["stats"]) for i, n in enumerate(names) if i in todo]


def compute_thresholds(out: str | os.PathLike, config: CurationConfig | None = None, **options: Any) -> dict:
    """Stage 2: merge the shards' counts, derive thresholds and entry probabilities.

    Parameters
    ----------
    out : path
        A run directory whose stage 1 is complete.
    config : CurationConfig, optional
        Run parameters (its ``t_en``, ``english`` and ``p`` are used).
    **options
        :class:`CurationConfig` fields, applied over `config`.

    Returns
    -------
    dict
        ``thresholds.json``: ``{"p", "t_en", "english", "t": {lang: t or None}}``.
    """
    config = CurationConfig.from_options(config, **options)
    run = RunDir(out)
    s1 = run.require("stage1", "run stage 1 (`metaclip2 count`) first")
    missing = [n for n in s1["shards"] if not stage1_paths(run.stage1, n)["stats"].exists()]
    if missing:
        raise MissingInputError(
            f"stage 1 is unfinished for {len(missing)} of {len(s1['shards'])} shards (e.g. {missing[0]}): run `metaclip2 count` again"
        )
    run.claim("stage2", config.section(2))
    if run.thresholds.exists():
        _note(config, "stage 2: already done, skipped")
        return load_json(run.thresholds)
    run.stage2.mkdir(parents=True, exist_ok=True)
    remove_temporaries(run.stage2)
    merge_counts([stage1_paths(run.stage1, n)["counts"] for n in s1["shards"]], run.counts, digests=s1["metadata_digests"])
    info = compute_probabilities(run.counts, run.stage2, t_en=config.t_en, english=config.english, p=config.p)
    _note(config, f"stage 2: p = {info['p']:.4g}, thresholds of {len(info['t'])} languages")
    return info


def sample(
    out: str | os.PathLike,
    config: CurationConfig | None = None,
    *,
    shards: Sequence[int] | None = None,
    **options: Any,
) -> list[Stage3Stats]:
    """Stage 3 over every shard (skipping finished ones): keep decisions, curated subset.

    Parameters
    ----------
    out : path
        A run directory whose stage 2 is done.
    config : CurationConfig, optional
        Run parameters (its stage-3 and execution fields are used).
    shards : sequence of int, optional
        As in :func:`count`.
    **options
        :class:`CurationConfig` fields, applied over `config`.

    Returns
    -------
    list of Stage3Stats
        The selected shards' accounting, in input order.
    """
    config = CurationConfig.from_options(config, **options)
    run = RunDir(out)
    s1 = run.require("stage1", "run stage 1 (`metaclip2 count`) first")
    run.require("stage2", "run stage 2 (`metaclip2 thresholds`) first")
    if not run.thresholds.exists():
        raise MissingInputError(f"{run.path} has no finished stage 2: run `metaclip2 thresholds` first")
    names = s1["shards"]
    todo = _selected(shards, len(names))
    run.claim("stage3", config.section(3))
    run.stage3.mkdir(parents=True, exist_ok=True)
    if shards is None:
        remove_temporaries(run.stage3)  # only when no other job may be writing here
    tasks = [
        SampleTask(index_path=str(stage1_paths(run.stage1, n)["index"]), probabilities=str(run.probabilities),
                   out_dir=str(run.stage3), shard=n, seed=config.seed, unit=config.unit,
                   output_format=config.output_format)  # fmt: skip
        for i, n in enumerate(names)
        if i in todo and not stage3_paths(run.stage3, n, config.output_format)["stats"].exists()
    ]
    if len(tasks) < len(todo):
        _note(config, f"stage 3: {len(todo) - len(tasks)} of {len(todo)} shards already done, skipped")
    with _Executor(config) as ex:
        ex.run(tasks, desc="stage 3: sample")
    return [_stats(Stage3Stats, stage3_paths(run.stage3, n, config.output_format)["stats"]) for i, n in enumerate(names) if i in todo]


def curate(
    metadata: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: CurationConfig | None = None,
    **options: Any,
) -> CurationResult:
    """Curate a pool: stage 1 (:func:`count`), 2 (:func:`compute_thresholds`), 3 (:func:`sample`), datacard.

    Re-running with the same arguments resumes (finished shards are skipped) and ends with
    the same bytes as an uninterrupted run; other metadata, inputs or parameters raise
    :class:`~metaclip2.core.errors.RunMismatchError`.

    Parameters
    ----------
    metadata : path
        Per-LID-language metadata directory (``metaclip2 metadata lid`` builds one).
    inputs : sequence of str
        Input shards or glob patterns.
    out : path
        The run directory (new, empty, or one made by the same command).
    config : CurationConfig, optional
        Every run parameter; default: all defaults.
    **options
        :class:`CurationConfig` fields (``t_en=``, ``seed=``, ``workers=``, …), applied over
        `config`; all are checked before anything is written.

    Returns
    -------
    CurationResult
    """
    from metaclip2.pipeline.datacard import make_datacard

    config = CurationConfig.from_options(config, **options)
    with _Executor(config) as ex:
        shared = config.replace(executor=ex)
        count(metadata, inputs, out, shared)
        compute_thresholds(out, shared)
        sample(out, shared)
    run = RunDir(out)
    card = make_datacard(run.path)
    write_json(run.datacard, card)
    names = run.read()["stage1"]["shards"]
    return CurationResult(
        out=run.path,
        probabilities=run.probabilities,
        outputs=[stage3_paths(run.stage3, n, config.output_format)["output"] for n in names],
        datacard=card,
    )


def _stats(cls, path: Path):
    return cls.from_json(load_json(path), source=str(path))
