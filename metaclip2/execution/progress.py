"""Progress of a batch of tasks, in tasks and in the units the tasks report (pairs), with a rate.

On a terminal, a tqdm bar; otherwise (a Slurm log, a pipe) a plain ``logging`` line every
`interval` seconds and one at the end, never carriage returns.

Counts come two ways. Each finished task's result reports through a counter function (e.g. a
stage-1 shard's pairs): exact, free. And a task may report pairs *while it runs* with
[`report_pairs`][metaclip2.execution.progress.report_pairs] (the stages do, per chunk of images): in the calling process that reaches
the display directly; in a [`LocalExecutor`][metaclip2.execution.local.LocalExecutor] worker it adds to
a counter in shared memory that the parent polls, so one big shard still shows pairs and
pairs/s. Elsewhere (Ray, your own scheduler) [`report_pairs`][metaclip2.execution.progress.report_pairs] is a no-op.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Callable

__all__ = ["Progress", "report_pairs"]

# This process's sink for report_pairs: None, a Progress (same process), or a shared Value.
_sink: Any = None


def report_pairs(n: int) -> None:
    """Report `n` more pairs processed by the running task (cheap; a no-op when nobody listens).

    See Also
    --------
    - [`Progress`][metaclip2.execution.progress.Progress] : What the reports reach.

    Examples
    --------
    A task reports pairs as it goes; with nobody listening (here) the call costs nothing:

    >>> from metaclip2.execution.progress import report_pairs
    >>> def match_chunks(chunks):
    ...     for chunk in chunks:
    ...         report_pairs(len(chunk))  # after matching the chunk's alt-texts
    ...     return sum(map(len, chunks))
    >>> match_chunks([["a dog", "a cat"], ["a bird"]])
    3
    """
    sink = _sink
    if sink is None or not n:
        return
    if isinstance(sink, Progress):
        sink.live(n)
    else:
        with sink.get_lock():
            sink.value += int(n)


def set_sink(sink: Any) -> Any:
    """Make `sink` (a [`Progress`][metaclip2.execution.progress.Progress], a ``multiprocessing.Value('q')`` or None) receive
    [`report_pairs`][metaclip2.execution.progress.report_pairs] in this process; returns the previous one."""
    global _sink
    old, _sink = _sink, sink
    return old

log = logging.getLogger(__name__)


def _rate(n: float, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "-"


class Progress:
    """Tasks done, counters summed over their results, and rates.

    Parameters
    ----------
    desc : str
        Label (``"stage 1: match"``).
    total : int
        Tasks to run.
    enabled : bool
        False: nothing is shown (counts are still kept).
    interval : float, optional
        Seconds between plain lines when stderr is not a terminal; default: the environment's
        ``METACLIP2_PROGRESS_INTERVAL``, else 30.
    tty : bool, optional
        Force the terminal (bar) or plain-line mode; default: ``sys.stderr.isatty()``.

    See Also
    --------
    - [`report_pairs`][metaclip2.execution.progress.report_pairs] : Pairs reported by running tasks.

    Examples
    --------
    >>> from metaclip2.execution.progress import Progress
    >>> progress = Progress("stage 1: match", total=2, tty=False, interval=3600)
    >>> progress.update(pairs=1200)
    >>> progress.update(pairs=800)
    >>> progress.line()
    'stage 1: match: 2/2 shards, 2,000 pairs (... pairs/s), ... s'
    >>> progress.close()
    """

    def __init__(self, desc: str, total: int, enabled: bool = True, interval: float | None = None, tty: bool | None = None):
        if interval is None:
            try:
                interval = float(os.environ.get("METACLIP2_PROGRESS_INTERVAL", 30))
            except ValueError:
                interval = 30.0
        self.desc, self.total, self.enabled, self.interval = desc, int(total), enabled, float(interval)
        self.done = 0
        self.counts: dict[str, float] = {}
        self.live_pairs = 0  # reported while tasks run; includes finished tasks' pairs
        self.start = self._last = time.monotonic()
        self._bar = None
        tty = sys.stderr.isatty() if tty is None else tty
        if enabled and tty and total:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="shard", file=sys.stderr)

    def update(self, n: int = 1, **counts: float) -> None:
        """`n` more tasks finished, reporting `counts` (e.g. ``pairs=1234``)."""
        self.done += n
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + v
        self._show(n)

    def live(self, pairs: int) -> None:
        """`pairs` more processed by running tasks (see [`report_pairs`][metaclip2.execution.progress.report_pairs])."""
        self.live_pairs += pairs
        self._show(0)

    def set_live(self, pairs: int) -> None:
        """The running tasks' pairs so far, as a total (a shared counter polled by the parent)."""
        if pairs != self.live_pairs:
            self.live_pairs = pairs
            self._show(0)

    def _counts(self) -> dict[str, float]:
        out = dict(self.counts)
        out["pairs"] = max(out.get("pairs", 0), self.live_pairs)
        return {k: v for k, v in out.items() if v or k != "pairs" or "pairs" in self.counts}

    def _show(self, n: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self._bar is not None:
            elapsed = now - self.start
            self._bar.set_postfix_str(", ".join(f"{v:,.0f} {k} ({_rate(v, elapsed)} {k}/s)" for k, v in self._counts().items()), refresh=False)
            if n:
                self._bar.update(n)
            elif now - self._last >= 0.5:
                self._last = now
                self._bar.refresh()
        elif now - self._last >= self.interval and self.done < self.total:
            self._line()

    def line(self) -> str:
        """The progress as one plain line."""
        elapsed = time.monotonic() - self.start
        parts = [f"{self.desc}: {self.done}/{self.total} shards"]
        parts += [f"{v:,.0f} {k} ({_rate(v, elapsed)} {k}/s)" for k, v in self._counts().items()]
        return ", ".join(parts) + f", {elapsed:,.1f} s"

    def _line(self) -> None:
        self._last = time.monotonic()
        log.info("%s", self.line())

    def close(self) -> None:
        """Close the bar, or write the final plain line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            if self.enabled:
                log.debug("%s", self.line())
        elif self.enabled and self.total:
            self._line()


def counter_of(fn: Callable[[Any], dict] | None, result: Any) -> dict:
    """``fn(result)``, or nothing when there is no counter or it cannot read the result."""
    if fn is None:
        return {}
    try:
        return dict(fn(result))
    except Exception:  # a progress counter must never fail a run
        return {}
