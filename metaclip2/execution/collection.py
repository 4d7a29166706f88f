"""Fewer garbage collections while tasks run.

A stage task holds many small long-lived objects (rows buffered per shard, per language),
and Python's cyclic collector, started every 700 net allocations by default, scans them again
and again: with a first-generation threshold of 100,000 stage 1 does about 10 % more pairs
per CPU second. The tasks make almost no reference cycles, so memory does not grow by it.

Executors run their tasks under [`fewer_collections`][metaclip2.execution.collection.fewer_collections]:
in the calling process (one local worker, a Ray worker) only for the task's length, the caller's
thresholds restored after it (a notebook's session is left as it was); worker processes of
a [`LocalExecutor`][metaclip2.execution.local.LocalExecutor], which run nothing else, keep it for their life.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator

__all__ = ["TASK_GC_THRESHOLD", "fewer_collections", "set_task_thresholds"]

#: First-generation threshold (net allocations between collections) while a task runs.
TASK_GC_THRESHOLD = 100_000


def set_task_thresholds(gen0: int = TASK_GC_THRESHOLD) -> tuple[int, int, int]:
    """Raise the collector's first-generation threshold to `gen0` (never lower it); the later
    generations' thresholds are left as they are.

    Returns
    -------
    tuple of int
        The thresholds before (what ``gc.set_threshold(*old)`` restores).

    Examples
    --------
    >>> import gc
    >>> from metaclip2.execution.collection import set_task_thresholds
    >>> old = set_task_thresholds(50_000)
    >>> gc.get_threshold()[0] >= 50_000
    True
    >>> gc.set_threshold(*old)
    """
    old = gc.get_threshold()
    gc.set_threshold(max(int(gen0), old[0]), *old[1:])
    return old


@contextlib.contextmanager
def fewer_collections(gen0: int = TASK_GC_THRESHOLD) -> Iterator[None]:
    """The block runs with the first-generation threshold raised to `gen0`; the caller's
    thresholds are restored after it, also when it raises.

    Examples
    --------
    >>> import gc
    >>> from metaclip2.execution.collection import fewer_collections
    >>> before = gc.get_threshold()
    >>> with fewer_collections(100_000):
    ...     gc.get_threshold()[0] >= 100_000
    True
    >>> gc.get_threshold() == before
    True
    """
    old = set_task_thresholds(gen0)
    try:
        yield
    finally:
        gc.set_threshold(*old)
