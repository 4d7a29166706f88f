"""Forks: a new run directory that reuses another run's stage 1 by reference.

Stage 1 is the expensive stage; stages 2 and 3 are cheap. To try another ``t_en`` (or seed,
unit) on a finished stage 1, [`fork_run`][metaclip2.pipeline.run.fork.fork_run] makes a new run directory whose ``stage1`` is a
symbolic link to the source's, with the source's ``stage1`` section of ``run.json`` copied and
a ``source`` record: the source run's path, the SHA-256 of each shard's ``stats.json`` and the
sizes of its index and counts files. Every later use ([`stage1_dir`][metaclip2.pipeline.run.fork.stage1_dir]) checks the record, so
a fork never silently reads a stage 1 that was redone or damaged since. The fork then behaves
as a normal run for stages 2-3 and its datacard.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from metaclip2.core.atomic import write_json
from metaclip2.core.jsonfile import seal
from metaclip2.core.errors import MissingInputError, RunMismatchError

__all__ = ["fork_run", "stage1_dir", "is_fork"]

log = logging.getLogger(__name__)

_SOURCE_FORMAT = "metaclip2-fork/1"


def _record(run, section: dict[str, Any]) -> dict[str, Any]:
    """What a fork records of `run`'s stage-1 files (cheap to re-check: no index is hashed)."""
    from metaclip2.pipeline.stages.files import stage1_paths

    files = {}
    for name in section["shards"]:
        paths = stage1_paths(run.stage1, name)
        if not paths["stats"].exists():
            raise MissingInputError(f"{run.path} has no finished stage 1 (shard {name} is missing): finish it with `metaclip2 count` before forking")
        files[name] = {
            "stats_sha256": hashlib.sha256(paths["stats"].read_bytes()).hexdigest(),
            "index_bytes": paths["index"].stat().st_size if paths["index"].exists() else None,
            "counts_bytes": paths["counts"].stat().st_size if paths["counts"].exists() else None,
        }
    return files


def is_fork(run) -> bool:
    """Whether `run` (a [`RunDir`][metaclip2.pipeline.run.rundir.RunDir]) reuses another run's stage 1.

    See Also
    --------
    - [`fork_run`][metaclip2.pipeline.run.fork.fork_run] : Makes a fork.
    - [`stage1_dir`][metaclip2.pipeline.run.fork.stage1_dir] : The stage-1 files a run (or fork) uses.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import RunDir, count, fork_run
    >>> from metaclip2.pipeline.run.fork import is_fork
    >>> _ = count(f"{d}/metadata", [f"{d}/pool.jsonl"], out=f"{d}/run")
    >>> fork = fork_run(f"{d}/run", f"{d}/run-t3")
    >>> is_fork(fork), is_fork(RunDir(f"{d}/run"))
    (True, False)
    >>> tmp.cleanup()
    """
    return "source" in run.read()


def fork_run(source: str | os.PathLike, out: str | os.PathLike):
    """Make `out` a run that reuses `source`'s finished stage 1 (or check that it already does).

    Parameters
    ----------
    source : path
        A run directory with a finished stage 1 (itself possibly a fork: the link then points
        at the original stage 1).
    out : path
        A new or empty directory, or an earlier fork of the same source.

    Returns
    -------
    RunDir
        The fork.

    Raises
    ------
    MissingInputError
        `source` has no finished stage 1.
    RunMismatchError
        `out` is another run, or a fork of another source, or `source` is `out`.

    See Also
    --------
    - [`RunDir`][metaclip2.pipeline.run.rundir.RunDir] : The run directory's layout and run.json.
    - [`compute_thresholds`][metaclip2.pipeline.run.api.compute_thresholds] : Stage 2 alone: thresholds and entry probabilities.
    - [`sweep`][metaclip2.pipeline.report.sweep.sweep] : Expected kept sizes for candidate thresholds.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import compute_thresholds, curate, fork_run, sample
    >>> _ = curate(f"{d}/metadata", f"{d}/pool.jsonl", out=f"{d}/run", t_en=2)
    >>> fork = fork_run(f"{d}/run", f"{d}/run-t1")
    >>> compute_thresholds(fork.path, t_en=1)["t"]
    {'de': 1, 'en': 1}
    >>> sum(sample(fork.path)).kept  # the source run kept 5
    4
    >>> tmp.cleanup()
    """
    from metaclip2.pipeline.run.rundir import RunDir

    src, dst = RunDir(source), RunDir(out)
    if src.path == dst.path:
        raise RunMismatchError(f"--out {dst.path} is the run itself: give a new directory to fork into")
    s1 = src.require("stage1", "run stage 1 (`metaclip2 count`) on it first")
    stage1 = stage1_dir(src)  # the original stage 1, checked, even when the source is a fork
    origin = src.read().get("source", {}).get("run", str(src.path))
    files = _record(src, s1)
    existing = dst.read()
    if "source" in existing:
        if existing["source"]["run"] != origin or existing.get("stage1") != s1:
            raise RunMismatchError(f"{dst.path} is a fork of {existing['source']['run']}, not of {origin}: use another --out")
        stage1_dir(dst)
        return dst
    if "stage1" in existing:
        raise RunMismatchError(f"{dst.path} is a run of its own (it has a stage 1): fork into a new or empty directory")
    dst.path.mkdir(parents=True, exist_ok=True)
    run = {**existing, "stage1": s1, "source": {"format": _SOURCE_FORMAT, "run": origin, "stage1": str(stage1.resolve()), "files": files}}
    if dst.stage1.is_symlink():
        dst.stage1.unlink()  # left by a fork killed before run.json was written
    os.symlink(stage1.resolve(), dst.stage1, target_is_directory=True)
    write_json(dst.run_json, seal(run))
    log.info("forked %s from %s: stage 1 (%d shards) reused by reference", dst.path, origin, len(s1["shards"]))
    return dst


def stage1_dir(run) -> Path:
    """`run`'s stage-1 directory; for a fork, checked against what was recorded when it was made.

    Raises
    ------
    RunMismatchError
        The source's stage-1 files changed (redone, damaged, deleted) since the fork was made.

    See Also
    --------
    - [`fork_run`][metaclip2.pipeline.run.fork.fork_run] : Makes a fork.
    - [`is_fork`][metaclip2.pipeline.run.fork.is_fork] : Whether a run is one.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import RunDir, count, fork_run
    >>> from metaclip2.pipeline.run.fork import stage1_dir
    >>> _ = count(f"{d}/metadata", [f"{d}/pool.jsonl"], out=f"{d}/run")
    >>> fork = fork_run(f"{d}/run", f"{d}/run-t3")
    >>> stage1_dir(fork).resolve() == stage1_dir(RunDir(f"{d}/run")).resolve()     # the source's files
    True

    Once the source's stage 1 is redone differently, the fork refuses to use it:

    >>> with open(f"{d}/pool.jsonl", "a") as f:
    ...     print(json.dumps({"id": "g", "text": "a red cat", "lang": "en"}), file=f)
    >>> _ = count(f"{d}/metadata", [f"{d}/pool.jsonl"], out=f"{d}/run", redo_changed=True)
    >>> stage1_dir(fork)
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.RunMismatchError: the stage 1 of ... changed since ... was forked from it (shard pool): ...
    >>> tmp.cleanup()
    """
    record = run.read().get("source")
    if record is None:
        return run.stage1
    target = Path(record["stage1"])
    if not target.is_dir():
        raise RunMismatchError(f"{run.path} reuses the stage 1 of {record['run']}, which is gone ({target}): fork again from a run that has it")
    if run.stage1.resolve() != target.resolve():
        raise RunMismatchError(f"{run.stage1} no longer links to the stage 1 it was forked from ({target})")
    from metaclip2.pipeline.stages.files import stage1_paths

    for name, want in record["files"].items():
        paths = stage1_paths(target, name)
        try:
            have = {
                "stats_sha256": hashlib.sha256(paths["stats"].read_bytes()).hexdigest(),
                "index_bytes": paths["index"].stat().st_size if paths["index"].exists() else None,
                "counts_bytes": paths["counts"].stat().st_size if paths["counts"].exists() else None,
            }
        except FileNotFoundError:
            have = None
        if have != want:
            raise RunMismatchError(
                f"the stage 1 of {record['run']} changed since {run.path} was forked from it (shard {name}): "
                "its outputs would mix two stage-1 runs; fork again into a new directory"
            )
    return run.stage1
