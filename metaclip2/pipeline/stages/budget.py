"""How a worker's memory budget (``memory_per_worker``) is split among what stage 1 holds.

A stage-1 worker holds, besides the interpreter and its imports (a fixed reserve): the LID
model (the size of its file), the rows it buffers while it groups a shard's pairs by language
(two [`LanguageRuns`][metaclip2.pipeline.io.partition.LanguageRuns], spilled to temporary files beyond
their share) and the matchers it keeps loaded (the metadata store's cache). Mapped matchers
(``.matcher`` format 3) are pages of the machine's page cache shared by every worker; the cache
counts them at their mapped size all the same, which bounds the private part (the decoded
entries, the Aho-Corasick automata) from above. Outputs never depend on the budget.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from metaclip2.core.errors import Metaclip2Error

__all__ = ["WorkerBudget", "DEFAULT_MEMORY_PER_WORKER"]

#: Default memory budget of a worker process: 1 GiB.
DEFAULT_MEMORY_PER_WORKER = 1 << 30
_BASE = 96 << 20  # interpreter, numpy, the readers, a match batch: measured ~60-90 MB private per worker
_MIN_ROWS = 256 << 10  # each row buffer keeps at least this much (a tiny budget spills early, never fails)
_MAX_ROWS = 512 << 20  # more buffered rows buy little: one spill of a large shard costs a sequential write


@dataclass(frozen=True)
class WorkerBudget:
    """The shares of one worker's memory budget.

    Parameters
    ----------
    total : int
        The whole budget, bytes.
    lid : int
        Reserved for the LID model (its file size).
    rows : int
        Buffered rows of each of stage 1's two language groupings (pending and matched pairs).
    matchers : int
        The metadata store's matcher cache (``matcher_memory``).

    Examples
    --------
    >>> from metaclip2.pipeline.stages.budget import WorkerBudget
    >>> b = WorkerBudget.split(1 << 30, lid_bytes=1 << 20)
    >>> b.rows >> 20, b.matchers >> 20, (2 * b.rows + b.matchers + b.lid) >> 20
    (115, 695, 928)
    >>> WorkerBudget.split(1 << 20).rows       # below the fixed reserve: rows spill early
    262144
    """

    total: int
    lid: int
    rows: int
    matchers: int

    @classmethod
    def split(cls, total: int, lid_bytes: int = 0, matcher_memory: int | None = None) -> "WorkerBudget":
        """Split `total` bytes: a fixed reserve and the LID model first, then a quarter of the
        rest to buffered rows (half each to the two groupings), the remainder to matchers.

        `matcher_memory`, when given, is the matchers' share as it is (an explicit cache size
        wins over the split); the rows keep their share.
        """
        rest = max(0, int(total) - _BASE - int(lid_bytes))
        rows = min(_MAX_ROWS, max(_MIN_ROWS, rest // 8))
        matchers = max(0, rest - 2 * rows) if matcher_memory is None else int(matcher_memory)
        return cls(total=int(total), lid=int(lid_bytes), rows=rows, matchers=matchers)

    @classmethod
    def of(cls, options) -> "WorkerBudget":
        """The budget of stage-1 options ([`MatchOptions`][metaclip2.pipeline.stages.options.MatchOptions])."""
        return cls.split(options.memory_per_worker, _lid_bytes(options.lid_model), options.matcher_memory)


_lid_sizes: dict = {}


def _lid_bytes(lid_model: str | None) -> int:
    """Bytes of the LID model file (the bundled lid.176.ftz when `lid_model` is None; 0 if absent)."""
    if lid_model not in _lid_sizes:
        try:
            if lid_model is None:
                from metaclip2.matching.lid import bundled_model_path

                path = bundled_model_path()
            else:
                path = lid_model
            _lid_sizes[lid_model] = os.path.getsize(path)
        except (Metaclip2Error, OSError):  # no LID extra installed (nothing of it is loaded either), or no file
            _lid_sizes[lid_model] = 0
    return _lid_sizes[lid_model]
