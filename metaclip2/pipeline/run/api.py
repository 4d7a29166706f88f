"""Curation of a pool over a run directory: resumable, deterministic, refusing to mix runs.

[`curate`][metaclip2.pipeline.run.api.curate] runs the three stages; [`count`][metaclip2.pipeline.run.api.count], [`compute_thresholds`][metaclip2.pipeline.run.api.compute_thresholds] and
[`sample`][metaclip2.pipeline.run.api.sample] run one each. Every parameter lives in a
[`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig], given whole (``config=``) or as keyword
options; the directory's layout and ``run.json`` are [`RunDir`][metaclip2.pipeline.run.rundir.RunDir]'s.

Every file is written atomically, and a shard whose stats file exists and whose recorded
inputs and outputs verify ([`metaclip2.pipeline.run.verify`][metaclip2.pipeline.run.verify]: sizes and sha256) is skipped, so
a run killed at any point and started again with the same arguments finishes with the same
bytes as an uninterrupted one; a shard whose outputs were lost or altered is redone, with a
warning naming it. Outputs do not depend on the number of workers or the executor.

Every parameter and input is checked before anything is written; a run refuses
([`RunMismatchError`][metaclip2.core.errors.RunMismatchError]) to continue in a directory made with
other metadata, inputs, or parameters, and ([`RunBusyError`][metaclip2.pipeline.run.rundir.RunBusyError])
to share it with another running command ([`lock`][metaclip2.pipeline.run.rundir.RunDir.lock]).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from metaclip2.core.atomic import make_directory, remove_temporaries, write_json
from metaclip2.core.errors import DataError, Metaclip2Error, MissingInputError, ParameterError, RunMismatchError
from metaclip2.curation.threshold import ENGLISH, no_english_message
from metaclip2.execution.executor import Executor, get_executor
from metaclip2.execution.local import preload_in_workers
from metaclip2.pipeline.run import verify
from metaclip2.pipeline.run.config import CurationConfig
from metaclip2.pipeline.run.driver import ShardStage, run_shards
from metaclip2.pipeline.run.fork import fork_run, stage1_dir
from metaclip2.pipeline.io.inputs import detect_format
from metaclip2.pipeline.io.remote import is_url
from metaclip2.pipeline.run.rundir import RunDir
from metaclip2.pipeline.stages.budget import WorkerBudget
from metaclip2.pipeline.stages.cache import cached_store
from metaclip2.pipeline.stages.files import shard_names, stage1_paths, stage3_paths
from metaclip2.pipeline.stages.match import MatchTask, shard_warnings, stage1_summary
from metaclip2.pipeline.stages.pieces import input_size, remove_pieces, shard_pieces
from metaclip2.pipeline.stages.merge import compute_probabilities, merge_counts
from metaclip2.pipeline.stages.sample import SampleTask
from metaclip2.pipeline.stages.split import SPLIT_FILE, split_images
from metaclip2.pipeline.stages.stats import Stage1Stats, Stage3Stats

log = logging.getLogger(__name__)

__all__ = ["CurationResult", "expand_inputs", "curate", "count", "compute_thresholds", "sample"]


@dataclass
class CurationResult:
    """Where a finished run put things.

    Attributes
    ----------
    out : Path
        The run directory.
    probabilities : Path
        ``stage2/probabilities.bin``, for [`OnlineSampler`][metaclip2.curation.sampling.OnlineSampler].
    outputs : list of Path
        The curated subset, one file per input shard, in input order.
    datacard : dict
        The run's datacard (also in ``datacard.json``).

    See Also
    --------
    - [`curate`][metaclip2.pipeline.run.api.curate] : All three stages and the datacard in one call.
    - [`RunDir`][metaclip2.pipeline.run.rundir.RunDir] : The run directory's layout and run.json.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import curate
    >>> result = curate(f"{d}/metadata", f"{d}/pool.jsonl", out=f"{d}/run", t_en=2)
    >>> result.out.name, result.probabilities.name, [p.name for p in result.outputs]
    ('run', 'probabilities.bin', ['pool.jsonl'])
    >>> result.datacard["totals"]["kept"]
    5
    >>> tmp.cleanup()
    """

    out: Path
    probabilities: Path
    outputs: list[Path] = field(default_factory=list)
    datacard: dict = field(default_factory=dict)


def expand_inputs(patterns: Sequence[str | os.PathLike]) -> list[str]:
    """Absolute paths of the files matched by `patterns` (globs, ``**`` allowed), sorted, unique.

    A pattern with a protocol (``s3://``, ``gs://``, ``hf://``, ``memory://``, ``https://``) is
    expanded by fsspec and kept as a URL.

    Raises
    ------
    MissingInputError
        A pattern matches no file.

    See Also
    --------
    - [`curate`][metaclip2.pipeline.run.api.curate] : All three stages and the datacard in one call.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.pipeline import expand_inputs
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> for name in ("b.jsonl", "a.jsonl", "notes.txt"):
    ...     open(os.path.join(d, name), "w").close()
    >>> [os.path.basename(p) for p in expand_inputs([f"{d}/*.jsonl", f"{d}/a.jsonl"])]
    ['a.jsonl', 'b.jsonl']
    >>> expand_inputs(f"{d}/*.parquet")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.MissingInputError: input '.../*.parquet' matches no file
    >>> tmp.cleanup()
    """
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    found: set[str] = set()
    for pattern in patterns:
        pattern = os.fspath(pattern)
        if is_url(pattern):
            found.update(_expand_url(pattern))
            continue
        pattern = pattern.removeprefix("file://")
        hits = [h for h in glob.glob(pattern, recursive=True) if os.path.isfile(h)]
        if not hits and os.path.isfile(pattern):
            hits = [pattern]
        if not hits:
            raise MissingInputError(f"input {pattern!r} matches no file")
        found.update(os.path.abspath(h) for h in hits)
    return sorted(found)


# fsspec filesystems that live in one process's memory: worker processes see them empty
_PER_PROCESS_FILESYSTEMS = ("memory://",)


def _check_inputs(paths: Sequence[str], input_format: str | None, config: CurationConfig | None = None) -> None:
    """Refuse, before anything is written, an input that is no shard of a known format or cannot be read,
    or that worker processes could not see."""
    if config is not None and (config.workers > 1 or config.executor == "ray" or (isinstance(config.executor, Executor) and config.executor.workers > 1)):
        local = [p for p in paths if p.startswith(_PER_PROCESS_FILESYSTEMS)]
        if local:
            raise ParameterError(f"input {local[0]} lives in this process's memory, which worker processes cannot read: "
                                 "use workers=1 (no worker processes), or write the inputs to a shared filesystem or object store")  # fmt: skip
    for path in paths:
        if input_format is None:
            detect_format(path)  # ParameterError naming the file
        if "://" not in path and not os.access(path, os.R_OK):  # a URL is checked when it is read
            raise DataError(f"input {path} cannot be read (permission denied)")


def _local(out: str | os.PathLike) -> str | os.PathLike:
    """`out`, refused if it is a URL: run directories are local (inputs and metadata may be remote)."""
    if is_url(out):
        raise ParameterError(f"--out {os.fspath(out)!r} is a URL: run directories are local paths "
                             "(inputs and metadata may be fsspec URLs; copy the finished run to the object store)")  # fmt: skip
    return os.fspath(out).removeprefix("file://")


def _expand_url(pattern: str) -> list[str]:
    try:
        import fsspec
    except ImportError as err:
        raise MissingInputError(f"input {pattern!r} is a URL: reading it needs fsspec (pip install 'metaclip2[fsspec]')") from err
    fs, _, paths = fsspec.get_fs_token_paths(pattern)
    files = [p for p in paths if fs.isfile(p)] if paths else []
    if not files and not any(c in pattern for c in "*?["):
        files = [p for p in paths]
    if not files:
        raise MissingInputError(f"input {pattern!r} matches no file")
    return [fs.unstrip_protocol(p) for p in files]


# Stage 1's and stage 3's task modules, imported once by the forkserver rather than by every worker.
preload_in_workers("metaclip2.pipeline.stages.match", "metaclip2.pipeline.stages.sample")


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
    log.info(msg)


def _store(metadata, config: CurationConfig):
    # The store stage 1's in-process tasks will ask for: same engine and budget, so one load serves both.
    return cached_store(metadata, config.matcher_engine, matcher_memory=WorkerBudget.of(config).matchers, strict=config.strict)


def _stage1_section(metadata, inputs, config: CurationConfig, run: RunDir) -> tuple[list[str], list[str], dict]:
    """Input paths, shard names and run.json's stage-1 section; everything checked, nothing written."""
    paths = _outside(expand_inputs(inputs), run.path)
    _check_inputs(paths, config.input_format, config)
    store = _store(metadata, config)  # a missing or empty metadata directory is refused here
    section = {
        "metadata": os.fspath(metadata) if "://" in os.fspath(metadata) else str(Path(metadata).resolve()),
        "metadata_digests": store.digests(),
        "inputs": paths,
        "shards": _names(paths, _pattern_root(inputs), run.read().get("stage1"), config.add_inputs),
        **config.section(1),
    }
    return paths, section["shards"], section


def _check_stage1(run: RunDir, section: dict, config: CurationConfig) -> tuple[dict | None, bool]:
    """Check `section` against run.json's stage 1: (the recorded section, whether the run grows by new inputs)."""
    old = run.read().get("stage1")
    paths = section["inputs"]
    grown = old is not None and old.get("inputs") != paths
    if grown and not config.add_inputs and set(old.get("inputs") or ()) < set(paths):
        raise RunMismatchError(f"{run.path} holds a run of {len(old['inputs'])} inputs and {len(paths) - len(old['inputs'])} more are "
                               "given: to grow the run by them (stage 1 of the new shards only, stages 2-3 redone) pass "
                               "--add-inputs (add_inputs=True); else use another output directory")  # fmt: skip
    run.check("stage1", section, ignore=("metadata",) + (("inputs", "shards") if grown and config.add_inputs else ()))
    return old, grown and config.add_inputs


def _pattern_root(patterns: Sequence[str | os.PathLike] | str | os.PathLike) -> str | None:
    """The deepest common folder of the patterns' fixed parts (``pool`` for ``pool/*/*.jsonl``,
    a file's folder for a file): what shards are named relative to, so that a pattern matching
    more folders later names the old shards as before. None for URLs (named as before)."""
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    fixed = []
    for pattern in map(os.fspath, patterns):
        if is_url(pattern):
            return None
        pattern = os.path.abspath(pattern.removeprefix("file://"))
        cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=None)
        fixed.append(os.path.dirname(pattern if cut is None else pattern[:cut]))
    return os.path.commonpath(fixed) if fixed else None


def _names(paths: list[str], root: str | None, old: dict | None, add_inputs: bool) -> list[str]:
    """Shard names of `paths`; the names run.json records for the inputs it records are kept
    (a resumed or grown run never renames a shard), a new input's name never takes an old one."""
    names = shard_names(paths, root=root)
    if not old or not isinstance(old.get("inputs"), list) or not isinstance(old.get("shards"), list):
        return names
    recorded = dict(zip(old["inputs"], old["shards"]))
    if old["inputs"] == paths:
        return list(old["shards"])
    if not add_inputs:
        return names  # the inputs differ: RunDir.check refuses them (naming --add-inputs)
    gone = [p for p in old["inputs"] if p not in set(paths)]
    if gone:
        raise RunMismatchError(f"--add-inputs: the run's input {gone[0]} is no longer among the inputs ({len(gone)} missing): "
                               "a run only grows; give its old inputs too, or start a new output directory")  # fmt: skip
    taken = set(old["shards"])
    out = []
    for p, n in zip(paths, names):
        if p in recorded:
            out.append(recorded[p])
        else:
            if n in taken:
                n = f"{n}-{hashlib.sha1(p.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
            taken.add(n)
            out.append(n)
    return out


def _outside(paths: list[str], out: Path) -> list[str]:
    """`paths` less the files inside the run directory `out`: a run never reads its own outputs
    as input (a recursive glob over a folder that holds the run would match its subset)."""
    root = os.path.realpath(out)
    inside = {p for p in paths if "://" not in p and os.path.realpath(p).startswith(root + os.sep)}
    if inside:
        log.info("%d file(s) inside the run directory %s are not inputs (e.g. %s)", len(inside), out, min(inside))
    kept = [p for p in paths if p not in inside]
    if not kept and inside:
        raise MissingInputError(f"every input matched lies inside the run directory {out}: give the pool's own files")
    return kept


def _finished_stage1(run: RunDir, s1: dict, config: CurationConfig, what: Sequence[str]) -> dict[str, Stage1Stats]:
    """Stats of every stage-1 shard, each verified (input unchanged; the outputs in `what` intact).

    For the stages after stage 1, which cannot redo it: a shard that is not finished raises.
    """
    names = s1["shards"]
    missing = [n for n in names if not stage1_paths(run.stage1, n)["stats"].exists()]
    if missing:
        raise MissingInputError(
            f"stage 1 is unfinished for {len(missing)} of {len(names)} shards (e.g. {missing[0]}): run `metaclip2 count` again"
        )
    checks = verify.verify_many(
        lambda n, p: verify.stage1_shard(run.stage1, n, p, check_outputs=what, metadata_digests=s1["metadata_digests"]),
        list(zip(names, s1["inputs"])), config.workers,
    )  # fmt: skip
    for name, check in zip(names, checks):
        if check.stats is None:
            raise DataError(f"stage 1 of shard {name} cannot be used: {check.problem}; run `metaclip2 count` again, which redoes it")
    return {n: c.stats for n, c in zip(names, checks)}


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
    """Stage 1 over every input shard (skipping verified finished ones): LID, matching, counts.

    Parameters
    ----------
    metadata : path
        Per-LID-language metadata directory.
    inputs : sequence of str
        Input shards or glob patterns (see [`expand_inputs`][metaclip2.pipeline.run.api.expand_inputs]).
    out : path
        The run directory.
    config : CurationConfig, optional
        Run parameters (its stage-1 and execution fields are used).
    shards : sequence of int, optional
        Run only these shards (positions in the sorted input list), e.g. one per job of a
        Slurm array; ``[]`` only records the run's parameters in ``run.json`` (do that once
        before starting the array). Default: every shard.
    **options
        [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig] fields, applied over `config`.

    Returns
    -------
    list of Stage1Stats
        The selected shards' accounting, in input order.

    Raises
    ------
    InputChangedError
        A finished shard's input changed since it was read (see ``redo_changed``).
    RunBusyError
        Another command is running in `out` (an array job, ``shards=[i]``, shares the
        directory with the other jobs of its array only).

    See Also
    --------
    - [`compute_thresholds`][metaclip2.pipeline.run.api.compute_thresholds] : Stage 2 alone: thresholds and entry probabilities.
    - [`sample`][metaclip2.pipeline.run.api.sample] : Stage 3 alone: keep decisions and the curated subset.
    - [`curate`][metaclip2.pipeline.run.api.curate] : All three stages and the datacard in one call.
    - [`Stage1Stats`][metaclip2.pipeline.stages.stats.Stage1Stats] : Stage-1 accounting, returned by count.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import count
    >>> [stats] = count(f"{d}/metadata", [f"{d}/pool.jsonl"], out=f"{d}/run")
    >>> stats.shard, stats.pairs, stats.matched
    ('pool', 6, 6)
    >>> stats.by_lang
    {'de': {'pairs': 2, 'matched': 2}, 'en': {'pairs': 4, 'matched': 4}}
    >>> tmp.cleanup()
    """
    config = CurationConfig.from_options(config, **options)
    return _count(metadata, inputs, out, config, shards, preflight=True)


def _count(metadata, inputs, out, config: CurationConfig, shards: Sequence[int] | None, preflight: bool) -> list[Stage1Stats]:
    run = RunDir(_local(out))
    run.read()  # refuse a file or a foreign directory before anything else
    paths, names, section = _stage1_section(metadata, inputs, config, run)
    todo = _selected(shards, len(paths))
    old, grown = _check_stage1(run, section, config)
    if "source" in run.read():
        stage1_dir(run)  # a fork's stage 1 is another run's: checked against what the fork recorded
    elif preflight and shards is None and config.p is None and "stage1" not in run.read():
        _preflight_english(_store(metadata, config), paths, config, refuse=False)  # warn now, not after stage 1
    options = config.match_options()
    stage = ShardStage(
        "stage 1", "stage 1: match", names,
        check=lambda i: verify.stage1_shard(run.stage1, names[i], paths[i], redo_changed=config.redo_changed,
                                            metadata_digests=section["metadata_digests"]),
        marker=lambda i: stage1_paths(run.stage1, names[i])["stats"],
        task=lambda i: MatchTask(input_path=paths[i], metadata=section["metadata"], out_dir=str(run.stage1), shard=names[i], options=options),
        progress=_stage1_progress,
        size=lambda i: input_size(paths[i]),  # big shards first; read in pieces when they are few
        pieces=lambda i, target: shard_pieces(paths[i], section["metadata"], str(run.stage1), names[i], options, target),
        leftovers=lambda todo: remove_pieces(run.stage1, [names[i] for i in todo]),
    )  # fmt: skip
    with _Executor(config) as ex, run.lock(exclusive=not shards):  # an executor that cannot start refuses before anything is written
        if grown:
            run.check("stage1", section, ignore=("metadata", "inputs", "shards"))  # again, under the lock
            run.update("stage1", {**old, "inputs": section["inputs"], "shards": section["shards"]})
            log.info("stage 1: the run grows by %d inputs to %d", len(paths) - len(old["inputs"]), len(paths))
        run.claim("stage1", section, ignore=("metadata",))
        make_directory(run.stage1)
        stats = run_shards(stage, todo, ex, config.workers)
    for s in stats:  # damage and mostly-invalid shards are named, not left to the stats files
        for line in shard_warnings(s):
            log.warning(line)
    return stats


def compute_thresholds(
    out: str | os.PathLike, config: CurationConfig | None = None, *, source: str | os.PathLike | None = None, **options: Any
) -> dict:
    """Stage 2: merge the shards' counts, derive thresholds and entry probabilities.

    A finished stage 2 is reused only if its outputs verify and it was made from the current
    stage-1 counts; otherwise it is computed again. Its parameters are recorded in
    ``run.json`` only once it succeeded, so a refused attempt (e.g. no English matches and no
    ``p``) can be retried with other parameters.

    Parameters
    ----------
    out : path
        A run directory whose stage 1 is complete; with `source`, a new directory to fork into.
    source : path, optional
        Reuse this run's finished stage 1 by reference ([`fork_run`][metaclip2.pipeline.run.fork.fork_run])
        and make `out` a run of its own for stages 2-3: how to try another ``t_en`` without
        redoing stage 1.
    config : CurationConfig, optional
        Run parameters (its ``t_en``, ``english`` and ``p`` are used).
    **options
        [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig] fields, applied over `config`.

    Returns
    -------
    dict
        ``thresholds.json``: ``{"p", "t_en", "english", "t": {lang: t or None}, "outputs",
        "inputs_sha256"}``.

    See Also
    --------
    - [`count`][metaclip2.pipeline.run.api.count] : Stage 1 alone: matching and counts.
    - [`sample`][metaclip2.pipeline.run.api.sample] : Stage 3 alone: keep decisions and the curated subset.
    - [`sweep`][metaclip2.pipeline.report.sweep.sweep] : Expected kept sizes for candidate thresholds.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import compute_thresholds, count
    >>> _ = count(f"{d}/metadata", [f"{d}/pool.jsonl"], out=f"{d}/run")
    >>> info = compute_thresholds(f"{d}/run", t_en=2)
    >>> info["t"], round(info["p"], 4)
    ({'de': 1, 'en': 2}, 0.1667)
    >>> tmp.cleanup()
    """
    from metaclip2.pipeline.run.guidance import warn_tail_share

    config = CurationConfig.from_options(config, **options)
    if source is not None:  # a fork is a run of its own: its datacard too
        run = fork_run(source, _local(out))
        info = compute_thresholds(out, config)
        _write_datacard(run)
        return info
    run = RunDir(_local(out))
    run.require("stage1", "run stage 1 (`metaclip2 count`) first")
    stage1_dir(run)  # a fork: its source's stage 1 is unchanged since
    section = config.section(2)
    run.check("stage2", section)
    with run.lock(exclusive=True):
        s1 = run.require("stage1", "run stage 1 (`metaclip2 count`) first")
        stats = _finished_stage1(run, s1, config, what=["counts", "images"])
        counts_name = {n: stage1_paths(run.stage1, n)["counts"].name for n in s1["shards"]}
        digest = verify.counts_digest({n: stats[n].outputs[counts_name[n]]["sha256"] for n in s1["shards"]})
        if "stage2" in run.read():
            info, problem = verify.stage2(run.stage2, digest)
            if info is not None:
                problem = _stage2_params_problem(info, section)
            if problem is None:
                _split_images(run, s1, stats, config)
                _note(config, "stage 2: already done (verified), skipped")
                return info
            log.warning("stage 2 is redone: %s", problem)
        make_directory(run.stage2)
        remove_temporaries(run.stage2)
        run.thresholds.unlink(missing_ok=True)  # the "done" marker goes first, comes back last
        _split_images(run, s1, stats, config)
        counts = merge_counts([stage1_paths(run.stage1, n)["counts"] for n in s1["shards"]], run.counts, digests=s1["metadata_digests"])
        if config.p is None and len(counts) and not (ENGLISH in counts and counts[ENGLISH].any()):
            raise DataError(no_english_message())
        try:
            info = compute_probabilities(run.counts, run.stage2, config.threshold_options(), record={"inputs_sha256": digest})
        except DataError as e:  # name what stage 1 saw, not only that nothing matched
            raise DataError(f"{e}; {stage1_summary(sum(stats.values(), Stage1Stats()))}") from None
        run.claim("stage2", section)
    _note(config, f"stage 2: p = {info['p']:.4g}, thresholds of {len(info['t'])} languages")
    if config.p is None:
        warn_tail_share(counts, info["p"], config.t_en, log)
    return info


def _split_images(run: RunDir, s1: dict, stats: dict[str, Stage1Stats], config: CurationConfig) -> dict:
    """``stage2/split.json`` (made now if missing or stale): the images found in more than one
    shard, whose rows ``stage2/split.index.bin`` holds for stage 3 ([`split`][metaclip2.pipeline.stages.split])."""
    digest = verify.split_inputs_digest(run.stage1, s1["shards"], stats)
    info, problem = verify.split_record(run.stage2, digest)
    if info is not None:
        return info
    if problem is not None:
        log.warning("the split-images file is made again: %s", problem)
    info = split_images(run.stage1, s1["shards"], run.stage2, inputs_sha256=digest)
    if info["images"]:
        _note(config, f"stage 2: {info['images']} images have rows in more than one shard; each is decided on all of them")
    return info


def _stage2_params_problem(info: dict, section: dict) -> str | None:
    """How thresholds.json's parameters differ from run.json's stage-2 section, or None."""
    for key in ("t_en", "english") + (("p",) if section.get("p") is not None else ()):
        if info.get(key) != section.get(key):
            return f"thresholds.json was made with {key} = {info.get(key)!r}, the run's is {section.get(key)!r}"
    return None


def _finished_stage2(run: RunDir, s2: dict) -> dict:
    """thresholds.json of a verified stage 2 made with run.json's stage-2 parameters."""
    if not run.thresholds.exists():
        raise MissingInputError(f"{run.path} has no finished stage 2: run `metaclip2 thresholds` first")
    info, problem = verify.stage2(run.stage2)
    if info is None:
        raise DataError(f"stage 2 of {run.path} cannot be used: {problem}; run `metaclip2 thresholds` again, which redoes it")
    # probabilities.bin matched the digest thresholds.json recorded when both were written
    # together, so checking thresholds.json's parameters checks the file's too
    problem = _stage2_params_problem(info, s2)
    if problem is not None:
        raise DataError(f"stage 2 of {run.path} cannot be used: {problem}; run `metaclip2 thresholds` again, which redoes it")
    return info


def sample(
    out: str | os.PathLike,
    config: CurationConfig | None = None,
    *,
    shards: Sequence[int] | None = None,
    source: str | os.PathLike | None = None,
    **options: Any,
) -> list[Stage3Stats]:
    """Stage 3 over every shard (skipping verified finished ones): keep decisions, curated subset.

    Parameters
    ----------
    out : path
        A run directory whose stage 2 is done.
    config : CurationConfig, optional
        Run parameters (its stage-3 and execution fields are used).
    shards : sequence of int, optional
        As in [`count`][metaclip2.pipeline.run.api.count].
    source : path, optional
        Fork `out` from this run's finished stage 1 (as [`compute_thresholds`][metaclip2.pipeline.run.api.compute_thresholds] does) and run
        stage 2 there with `config`'s stage-2 fields when the fork has none yet.
    **options
        [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig] fields, applied over `config`.

    Returns
    -------
    list of Stage3Stats
        The selected shards' accounting, in input order.

    See Also
    --------
    - [`count`][metaclip2.pipeline.run.api.count] : Stage 1 alone: matching and counts.
    - [`compute_thresholds`][metaclip2.pipeline.run.api.compute_thresholds] : Stage 2 alone: thresholds and entry probabilities.
    - [`Stage3Stats`][metaclip2.pipeline.stages.stats.Stage3Stats] : Stage-3 accounting, returned by sample.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import compute_thresholds, count, sample
    >>> _ = count(f"{d}/metadata", [f"{d}/pool.jsonl"], out=f"{d}/run")
    >>> _ = compute_thresholds(f"{d}/run", t_en=2)
    >>> [stats] = sample(f"{d}/run")
    >>> stats.matched, stats.kept, sorted(stats.by_lang.items())
    (6, 5, [('de', {'matched': 2, 'kept': 1}), ('en', {'matched': 4, 'kept': 4})])
    >>> with open(f"{d}/run/subset/pool.jsonl") as f:
    ...     print([json.loads(line)["id"] for line in f])
    ['a', 'b', 'c', 'd', 'e']
    >>> tmp.cleanup()
    """
    config = CurationConfig.from_options(config, **options)
    if source is not None:
        compute_thresholds(out, config, source=source)
    run = RunDir(_local(out))
    config = _inherited_outputs(run, config, options)
    stats = _sample(run, config, shards)
    if shards is None and "source" in run.read():  # a fork is a run of its own: its datacard too
        _write_datacard(run)
    return stats


#: Stage-3 options a fork takes from the run it was forked from, unless given.
_INHERITED = ("output_format", "keys_list")


def _inherited_outputs(run: RunDir, config: CurationConfig, given: Mapping[str, Any]) -> CurationConfig:
    """`config` with the output options of the run `run` was forked from, where `run` has no
    stage 3 yet and they were not `given` (nor changed from their defaults in `config`)."""
    recorded = run.read()
    if "source" not in recorded or "stage3" in recorded:
        return config
    try:
        source3 = RunDir(recorded["source"]["run"]).read().get("stage3", {})
    except Metaclip2Error:  # the source is gone or unreadable: its stage 1 check says so where it matters
        return config
    default = CurationConfig()
    changes = {k: source3[k] for k in _INHERITED
               if k in source3 and k not in given and getattr(config, k) == getattr(default, k)}  # fmt: skip
    return config.replace(**changes) if changes else config


def _write_datacard(run: RunDir) -> dict:
    from metaclip2.pipeline.run.datacard import make_datacard

    card = make_datacard(run.path)
    write_json(run.datacard, card)
    return card


def _sample(run: RunDir, config: CurationConfig, shards: Sequence[int] | None) -> list[Stage3Stats]:
    s1 = run.require("stage1", "run stage 1 (`metaclip2 count`) first")
    stage1_dir(run)  # a fork: its source's stage 1 is unchanged since
    run.require("stage2", "run stage 2 (`metaclip2 thresholds`) first")
    names = s1["shards"]
    todo = _selected(shards, len(names))
    section = config.section(3)
    run.check("stage3", section)
    with run.lock(exclusive=not shards):
        s2 = run.require("stage2", "run stage 2 (`metaclip2 thresholds`) first")
        info = _finished_stage2(run, s2)
        probs_sha = info["outputs"]["probabilities.bin"]["sha256"]
        split, problem = verify.split_record(run.stage2)
        if split is None:
            raise DataError(f"stage 2 of {run.path} has no usable split-images file ({problem or 'missing'}): "
                            "run `metaclip2 thresholds` again, which makes it")  # fmt: skip
        split_sha = split["outputs"][SPLIT_FILE]["sha256"]
        run.claim("stage3", section)
        make_directory(run.stage3)
        if not shards:
            for d in (run.stage3, run.subset, run.keys):
                remove_temporaries(d)
        index_sha: dict[int, str] = {}
        for i in sorted(todo):  # stage-1 stats and input unchanged; the index itself is verified by its task
            check = verify.stage1_shard(run.stage1, names[i], s1["inputs"][i], check_outputs=False)
            if check.stats is None:
                raise DataError(f"stage 1 of shard {names[i]} is {'unfinished' if check.problem is None else 'unusable: ' + check.problem}; "
                                "run `metaclip2 count` again")  # fmt: skip
            index_sha[i] = check.stats.outputs[stage1_paths(run.stage1, names[i])["index"].name]["sha256"]
        options = config.sample_options()
        stage = ShardStage(
            "stage 3", "stage 3: sample", names,
            check=lambda i: verify.stage3_shard(run.stage3, names[i], options.output_format,
                                                {"index": index_sha[i], "probabilities": probs_sha, "split": split_sha}),
            marker=lambda i: stage3_paths(run.stage3, names[i], options.output_format)["stats"],
            task=lambda i: SampleTask(index_path=str(stage1_paths(run.stage1, names[i])["index"]), probabilities=str(run.probabilities),
                                      out_dir=str(run.stage3), shard=names[i], options=options,
                                      index_sha256=index_sha[i], probabilities_sha256=probs_sha,
                                      split=str(run.stage2 / SPLIT_FILE), split_sha256=split_sha),
            progress=_stage3_progress,
            size=lambda i: input_size(str(stage1_paths(run.stage1, names[i])["index"])),
        )  # fmt: skip
        with _Executor(config) as ex:
            return run_shards(stage, todo, ex, config.workers)


def curate(
    metadata: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: CurationConfig | None = None,
    **options: Any,
) -> CurationResult:
    """Curate a pool: stage 1 ([`count`][metaclip2.pipeline.run.api.count]), 2 ([`compute_thresholds`][metaclip2.pipeline.run.api.compute_thresholds]), 3 ([`sample`][metaclip2.pipeline.run.api.sample]), datacard.

    Re-running with the same arguments resumes (verified finished shards are skipped, damaged
    ones redone) and ends with the same bytes as an uninterrupted run; other metadata, inputs
    or parameters raise [`RunMismatchError`][metaclip2.core.errors.RunMismatchError], leaving the
    directory as it was. The directory is locked for the whole run.

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
        [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig] fields (``t_en=``, ``seed=``, ``workers=``, …), applied over
        `config`; all are checked before anything is written.

    Returns
    -------
    CurationResult

    See Also
    --------
    - [`count`][metaclip2.pipeline.run.api.count] : Stage 1 alone: matching and counts.
    - [`compute_thresholds`][metaclip2.pipeline.run.api.compute_thresholds] : Stage 2 alone: thresholds and entry probabilities.
    - [`sample`][metaclip2.pipeline.run.api.sample] : Stage 3 alone: keep decisions and the curated subset.
    - [`CurationResult`][metaclip2.pipeline.run.api.CurationResult] : What curate returns.
    - [`sweep`][metaclip2.pipeline.report.sweep.sweep] : Expected kept sizes for candidate thresholds.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import curate
    >>> result = curate(f"{d}/metadata", f"{d}/pool.jsonl", out=f"{d}/run", t_en=2)
    >>> {lang: (s["matched"], s["kept"], s["t"]) for lang, s in result.datacard["languages"].items()}
    {'de': (2, 1, 1), 'en': (4, 4, 2)}
    >>> with open(result.outputs[0]) as f:
    ...     print(f.readline().strip())
    {"id":"a","ids":[0,2],"keep_probability":1.0,"lang":"en","text":"a red dog","text_index":0}

    Running it again with the same arguments finds every stage done and changes nothing:

    >>> curate(f"{d}/metadata", f"{d}/pool.jsonl", out=f"{d}/run", t_en=2).datacard == result.datacard
    True
    >>> tmp.cleanup()
    """
    from metaclip2.pipeline.run.datacard import make_datacard

    config = CurationConfig.from_options(config, **options)
    run = RunDir(_local(out))
    run.read()
    paths, names, section = _stage1_section(metadata, inputs, config, run)
    _check_stage1(run, section, config)
    run.check("stage2", config.section(2))
    run.check("stage3", config.section(3))
    if config.p is None and "stage2" not in run.read() and "source" not in run.read():
        # Stage 2 derives every threshold from English: find out now, not after stage 1.
        _preflight_english(_store(metadata, config), paths, config, refuse=True)
    with _Executor(config) as ex, run.lock(exclusive=True):
        shared = config.replace(executor=ex)
        _count(metadata, inputs, out, shared, None, preflight=False)  # the preflight above saw the pool
        compute_thresholds(out, shared)
        sample(out, shared)
        card = make_datacard(run.path)
        write_json(run.datacard, card)
    return CurationResult(
        out=run.path,
        probabilities=run.probabilities,
        outputs=[stage3_paths(run.stage3, n, config.output_format)["output"] for n in names],
        datacard=card,
    )


def _preflight_english(store, paths: list[str], config: CurationConfig, refuse: bool) -> None:
    """LID of a sample of the pool: no English means stage 2 will need ``p`` (refuse, or warn)."""
    from metaclip2.pipeline.run.guidance import check_english

    try:
        check_english(store, paths, config)
    except DataError as e:
        if refuse:
            raise
        log.warning("%s", e)


def _stage1_progress(stats: Stage1Stats) -> dict:
    return {"pairs": stats.pairs}


def _stage3_progress(stats: Stage3Stats) -> dict:
    return {"pairs": stats.matched, "kept": stats.kept}
