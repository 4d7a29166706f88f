"""The one driver loop of the per-shard stages: plan, verify, redo, execute.

Stage 1 and stage 3 of a run are both a [`ShardStage`][metaclip2.pipeline.run.driver.ShardStage]: a list of shards, how to verify a
finished shard, its "done" marker, and the task that makes it. [`run_shards`][metaclip2.pipeline.run.driver.run_shards] verifies the
selected shards (in threads; hashing releases the GIL), drops the markers of those that no
longer verify (with a warning naming each), plans tasks for the rest and runs them on an
executor, then returns every selected shard's stats in input order.

[`ShardStage.plan`][metaclip2.pipeline.run.driver.ShardStage.plan] makes one task per shard; a stage may group several shards into one
task (for instance to route stage-1 work by language), as long as the task returns one stats
object per shard it made, in the order it was given them.

Tasks are submitted biggest input first (a stage's ``size``), so that a big shard does not
start last and hold the run alone. A stage with ``pieces`` may have a big shard read as several
piece tasks when the shards cannot keep the workers evenly busy (placed biggest first, one
worker would run more than 10% longer than an even split); those run with the other
tasks, then one merge task per split shard makes its outputs, or returns those its pieces
already merged (two waves of the executor).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from metaclip2.execution.executor import Executor, counting
from metaclip2.pipeline.run import verify

__all__ = ["ShardStage", "run_shards"]

log = logging.getLogger(__name__)

_MAX_REDO_WARNINGS = 20  # one line per redone shard up to this many, then one summary line


@dataclass
class ShardStage:
    """A per-shard stage as the driver runs it.

    Parameters
    ----------
    name : str
        ``"stage 1"``: how messages name it.
    desc : str
        The progress bar's label.
    shards : sequence of str
        Shard names, in input order; positions index this list.
    check : callable
        ``check(i)`` -> [`ShardCheck`][metaclip2.pipeline.run.verify.ShardCheck] of shard `i`'s finished outputs.
    marker : callable
        ``marker(i)`` -> the path whose presence says shard `i` is done (removed before a redo).
    task : callable
        ``task(i)`` -> a picklable callable that makes shard `i` and returns its stats.
    progress : callable
        ``progress(stats)`` -> the counters a finished task adds to the progress bar.
    size : callable, optional
        ``size(i)`` -> shard `i`'s input bytes: tasks are submitted largest first.
    pieces : callable, optional
        ``pieces(i, target)`` -> ``([(bytes, piece task)], merge task)`` to read shard `i` in
        pieces of about `target` bytes, or None to read it whole. The piece tasks' results
        count in the progress; the merge task returns the shard's stats.
    leftovers : callable, optional
        ``leftovers(positions)`` removes what an earlier, stopped run of those shards left
        besides their outputs (pieces), before anything is planned.

    Examples
    --------
    >>> from metaclip2.execution import LocalExecutor
    >>> from metaclip2.pipeline.run.driver import ShardStage, run_shards
    >>> from metaclip2.pipeline.run.verify import ShardCheck
    >>> stage = ShardStage("stage 0", "squares", ["a", "b", "c"], check=lambda i: ShardCheck(stats=10 if i == 1 else None),
    ...                    marker=None, task=lambda i: (lambda: i * i), progress=lambda s: {})
    >>> with LocalExecutor(workers=1, progress=False) as ex:
    ...     run_shards(stage, [0, 1, 2], ex)     # shard 1 is done already: its stats are reused
    [0, 10, 4]
    """

    name: str
    desc: str
    shards: Sequence[str]
    check: Callable[[int], Any]
    marker: Callable[[int], Path] | None
    task: Callable[[int], Callable[[], Any]]
    progress: Callable[[Any], dict]
    size: Callable[[int], int] | None = None
    pieces: Callable[[int, int], Any] | None = None
    leftovers: Callable[[Sequence[int]], None] | None = None

    def plan(self, todo: Sequence[int]) -> list[tuple[list[int], Callable[[], Any]]]:
        """Tasks for the shards in `todo`: ``[(positions, task)]``, here one task per shard."""
        return [([i], self.task(i)) for i in todo]


def run_shards(stage: ShardStage, todo: Sequence[int], executor: Executor, workers: int = 1) -> list[Any]:
    """Verify, redo and run the shards `todo` of `stage`; their stats in input order.

    Parameters
    ----------
    stage : ShardStage
    todo : sequence of int
        Positions of the shards to run (an array job's own, or all).
    executor : Executor
    workers : int
        Threads that verify finished shards.

    Returns
    -------
    list
        One stats object per shard of `todo`, sorted by position.

    See Also
    --------
    - [`ShardStage`][metaclip2.pipeline.run.driver.ShardStage] : What a stage gives the driver.

    Examples
    --------
    A shard whose outputs no longer verify is redone (its marker dropped first), with a warning:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from metaclip2.execution import LocalExecutor
    >>> from metaclip2.pipeline.run.driver import ShardStage, run_shards
    >>> from metaclip2.pipeline.run.verify import ShardCheck
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "b.done").write_text("x")
    1
    >>> stage = ShardStage("stage 0", "squares", ["a", "b"], check=lambda i: ShardCheck(problem="its output is cut" if i else None),
    ...                    marker=lambda i: d / f"{'ab'[i]}.done", task=lambda i: (lambda: i * i), progress=lambda s: {})
    >>> with LocalExecutor(workers=1, progress=False) as ex:
    ...     run_shards(stage, [1, 0], ex)
    [0, 1]
    >>> (d / "b.done").exists()
    False
    """
    order = sorted(todo)
    checks = verify.verify_many(lambda i: stage.check(i), [(i,) for i in order], workers)
    done = {i: c.stats for i, c in zip(order, checks) if c.stats is not None}
    redo = [(i, c.problem) for i, c in zip(order, checks) if c.stats is None and c.problem is not None]
    for k, (i, problem) in enumerate(redo):
        if k < _MAX_REDO_WARNINGS:
            log.warning("%s: shard %s is redone: %s", stage.name, stage.shards[i], problem)
        if stage.marker is not None:
            stage.marker(i).unlink(missing_ok=True)  # the "done" marker goes first, comes back last
    if len(redo) > _MAX_REDO_WARNINGS:
        log.warning("%s: %d more shards are redone (outputs missing or changed)", stage.name, len(redo) - _MAX_REDO_WARNINGS)
    if done:
        log.info("%s: %d of %d shards already done (verified), skipped", stage.name, len(done), len(order))
    if stage.leftovers is not None:
        stage.leftovers(order)
    plan = stage.plan([i for i in order if i not in done])
    results = dict(done)
    for (positions, _), out in zip(plan, _execute(stage, plan, executor)):
        if len(positions) == 1 and not isinstance(out, list):
            out = [out]
        results.update(zip(positions, out))
    return [results[i] for i in order]


# a run whose shards, biggest first, would keep one worker busy this much longer than an even
# split has its big shards read in pieces (pieces cost a little CPU: worth it only then)
_IMBALANCE = 1.1
_PIECES_PER_WORKER = 4  # the pieces' size: the run's input over this many per worker


def _makespan(sizes: Sequence[int], workers: int) -> int:
    """The busiest worker's load when `sizes` go, biggest first, to the least loaded worker."""
    loads = [0] * workers
    for size in sorted(sizes, reverse=True):
        loads[loads.index(min(loads))] += size
    return max(loads, default=0)


def _execute(stage: ShardStage, plan: list, executor: Executor) -> list:
    """The outcomes of `plan`'s tasks, in plan order: largest first, big shards in pieces."""
    sizes = [sum(stage.size(i) for i in positions) for positions, _ in plan] if stage.size is not None else [0] * len(plan)
    workers = max(int(getattr(executor, "workers", 1) or 1), 1) if stage.pieces is not None and plan else 1
    split: dict[int, tuple] = {}  # plan entry -> ([(bytes, piece task)], merge task)
    if stage.pieces is not None and workers > 1 and _makespan(sizes, workers) > _IMBALANCE * sum(sizes) / workers:
        target = sum(sizes) // (_PIECES_PER_WORKER * workers)
        for e, (positions, _) in enumerate(plan):
            if len(positions) == 1 and (cut := stage.pieces(positions[0], target)) is not None:
                split[e] = cut
    wave = [(size, e, task) for e, ((_, task), size) in enumerate(zip(plan, sizes)) if e not in split]
    wave += [(size, e, task) for e, (pieces, _) in split.items() for size, task in pieces]
    wave.sort(key=lambda w: -w[0])  # stable: equal sizes keep input order
    with counting(executor, stage.progress):  # also for executors whose run() takes no counter
        first = executor.run([task for _, _, task in wave], desc=stage.desc)
    outcomes: dict[int, Any] = {e: out for (_, e, _), out in zip(wave, first) if e not in split}
    if split:
        merges = sorted(split, key=lambda e: -sizes[e])
        log.info("%s: %d big shards read in pieces, merging them", stage.name, len(merges))
        with counting(executor, lambda _: {}):  # their pairs were counted with the pieces
            outcomes.update(zip(merges, executor.run([split[e][1] for e in merges], desc=f"{stage.desc} (merge pieces)")))
    return [outcomes[e] for e in range(len(plan))]
