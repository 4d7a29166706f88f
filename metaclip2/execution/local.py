"""Worker processes on this machine: the package's one way to start them.

Workers are started with ``forkserver`` (``spawn`` where it is missing): ``fork`` is unsafe once
the parent has threads (tqdm's monitor, BLAS pools), and a worker must never inherit a
half-held lock. Heavy state (matchers, probabilities) is loaded and cached inside each
worker process, never shipped per task.

Workers exit when the process that started them dies, even by ``SIGKILL`` (which runs no
cleanup): each holds the reading end of a pipe whose only writer is the driver, and exits
when it reads end-of-file ([`exit_with_driver`][metaclip2.execution.local.exit_with_driver]). Watching the parent process would not
do: a forkserver worker's parent is the forkserver, which itself waits for its workers.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Sequence

from metaclip2.execution.collection import fewer_collections, set_task_thresholds
from metaclip2.execution.executor import Executor
from metaclip2.execution.progress import Progress, counter_of, set_sink
from metaclip2.core.errors import ParameterError

__all__ = ["LocalExecutor", "exit_with_driver", "preload_in_workers"]

_PRELOAD: list[str] = []


def preload_in_workers(*modules: str) -> list[str]:
    """Name modules that worker processes started from now on have imported before their first task.

    The forkserver imports them once and every worker forks from it, so a worker neither
    spends CPU importing them (~0.2 s for the curation stages and numpy; with N workers that
    is N times what one in-process worker pays) nor holds its own copy of their memory. Names
    only, so that no layer below the caller's is imported here; a module that fails to import
    is skipped by the forkserver (the task imports it then, as without preloading).

    Returns
    -------
    list of str
        Every module named so far.

    Examples
    --------
    >>> from metaclip2.execution.local import preload_in_workers
    >>> "json" in preload_in_workers("json")
    True
    """
    for m in modules:
        if m not in _PRELOAD:
            _PRELOAD.append(m)
    return list(_PRELOAD)


def _mp_context():
    # fork is unsafe once threads exist (tqdm's monitor, BLAS pools); forkserver forks
    # workers from a clean process, spawn is the portable fallback.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods and sys.platform != "darwin" else "spawn")


def exit_with_driver(alive) -> None:
    """Pool initializer: exit this worker as soon as the driver that holds `alive`'s other end is gone.

    Parameters
    ----------
    alive : multiprocessing.connection.Connection
        The reading end of a one-way pipe; the driver never writes, so reading returns only
        at end-of-file, when the driver has exited or been killed. The worker then ends at
        once (``os._exit``: it holds nothing that needs cleaning; its temporary files are
        removed when the run is resumed).

    Examples
    --------
    The initializer of a process pool whose workers must not outlive the driver:

    >>> import multiprocessing
    >>> from concurrent.futures import ProcessPoolExecutor
    >>> from metaclip2.execution.local import exit_with_driver
    >>> ctx = multiprocessing.get_context("spawn")
    >>> alive, keep = ctx.Pipe(duplex=False)  # the driver holds `keep` and never writes
    >>> with ProcessPoolExecutor(1, mp_context=ctx, initializer=exit_with_driver, initargs=(alive,)) as pool:
    ...     pool.submit(pow, 2, 10).result()
    1024
    >>> alive.close(); keep.close()
    """

    def watch() -> None:
        try:
            alive.recv_bytes()
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="metaclip2-exit-with-driver", daemon=True).start()


def _init_worker(alive, pairs) -> None:
    """Pool initializer: [`exit_with_driver`][metaclip2.execution.local.exit_with_driver], [`report_pairs`][metaclip2.execution.progress.report_pairs] into the shared `pairs`,
    and the task thresholds of the garbage collector for the worker's life ([`metaclip2.execution.collection`][metaclip2.execution.collection])."""
    exit_with_driver(alive)
    set_sink(pairs)
    set_task_thresholds()


class LocalExecutor(Executor):
    """Map a function over keyword-argument dicts in worker processes of this machine.

    Parameters
    ----------
    workers : int
        Processes. 1 runs every task in the calling process (no pool, easiest to debug).
    progress : bool
        Show progress per [`map`][metaclip2.execution.local.LocalExecutor.map] call ([`Progress`][metaclip2.execution.progress.Progress]:
        a bar on a terminal, plain log lines otherwise).
    desc : str, optional
        Bar label; default: the function's name.

    Notes
    -----
    The worker pool is created on the first [`map`][metaclip2.execution.local.LocalExecutor.map] and reused by later ones (so a
    worker keeps its loaded matchers between stages); [`close`][metaclip2.execution.local.LocalExecutor.close] (or the ``with`` block)
    shuts it down.

    See Also
    --------
    - [`get_executor`][metaclip2.execution.executor.get_executor] : An executor by name, as the CLI picks one.
    - [`RayExecutor`][metaclip2.execution.ray_executor.RayExecutor] : The same interface on a Ray cluster.

    Examples
    --------
    >>> import functools
    >>> from metaclip2.execution import LocalExecutor
    >>> with LocalExecutor(workers=1) as ex:
    ...     ex.map(pow, [{"base": 2, "exp": 10}, {"base": 3, "exp": 2}])
    [1024, 9]

    [`run`][metaclip2.execution.executor.Executor.run] takes tasks that carry their own arguments:

    >>> with LocalExecutor(workers=1) as ex:
    ...     ex.run([functools.partial(pow, 2, 10), functools.partial(divmod, 7, 2)])
    [1024, (3, 1)]
    """

    name = "local"

    def __init__(self, workers: int = 1, progress: bool = False, desc: str | None = None):
        if int(workers) < 1:
            raise ParameterError(f"workers must be at least 1, got {workers}")
        self.workers = int(workers)
        self.progress = progress
        self.desc = desc
        self._pool: ProcessPoolExecutor | None = None
        self._alive = None  # (reader, writer) of the pipe whose end-of-file stops the workers
        self._starting: threading.Thread | None = None  # start(wait=False) at work
        self._start_error: BaseException | None = None

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers})"

    def start(self, wait: bool = True) -> "LocalExecutor":
        """Start the worker processes now rather than at the first [`map`][metaclip2.execution.local.LocalExecutor.map].

        With ``wait=False`` they start in a background thread and this returns at once, so the
        caller's own work (reading a sample of the inputs, checking them) overlaps with the
        workers' start (``forkserver`` imports the preloaded modules first: a few tenths of a
        second); the first ``map`` or ``submit`` waits for them. Nothing to do with one worker.

        Returns
        -------
        LocalExecutor
            This executor.

        Examples
        --------
        >>> import os
        >>> from metaclip2.execution import LocalExecutor
        >>> with LocalExecutor(workers=2).start(wait=False) as ex:
        ...     pids = ex.map(os.getpid, [{}, {}])
        >>> os.getpid() in pids
        False
        """
        if self.workers == 1 or self._pool is not None or self._starting is not None:
            return self
        if wait:
            self._start()
            return self

        def start() -> None:
            try:
                self._start()
            except BaseException as e:  # raised by the next map or submit
                self._start_error = e

        self._starting = threading.Thread(target=start, name="metaclip2-start-workers", daemon=True)
        self._starting.start()
        return self

    def _start(self) -> None:
        ctx = _mp_context()
        if _PRELOAD and ctx.get_start_method() == "forkserver":
            # (takes effect when this process starts its forkserver, i.e. with its first pool)
            ctx.set_forkserver_preload(["__main__", *_PRELOAD])
        self._alive = ctx.Pipe(duplex=False)
        self._pairs = ctx.Value("q", 0)  # workers' report_pairs add here; polled below
        pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker, initargs=(self._alive[0], self._pairs))
        try:  # a task per worker starts the processes (the first one waits for the forkserver's preload)
            for f in [pool.submit(os.getpid) for _ in range(self.workers)]:
                f.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        self._pool = pool

    def _started(self) -> ProcessPoolExecutor:
        """The worker pool, started now or by [`start`][metaclip2.execution.local.LocalExecutor.start] (waited for)."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
            if self._start_error is not None:
                error, self._start_error = self._start_error, None
                raise error
        if self._pool is None:
            self._start()
        return self._pool

    def submit(self, fn: Callable[..., Any], /, **kwargs: Any) -> Future:
        """``fn(**kwargs)`` in a worker process, returning at once; with one worker, here and now.

        For work the caller overlaps with its own (e.g. drawing plots while it writes a report).
        `fn` and the arguments must be picklable, as for [`map`][metaclip2.execution.local.LocalExecutor.map].

        Returns
        -------
        concurrent.futures.Future
            Its ``result()`` is ``fn``'s, or raises what ``fn`` raised.

        Examples
        --------
        >>> from metaclip2.execution import LocalExecutor
        >>> with LocalExecutor(workers=2) as ex:
        ...     future = ex.submit(pow, base=2, exp=10)
        ...     future.result()
        1024
        """
        if self.workers == 1:
            future: Future = Future()
            try:
                with fewer_collections():
                    future.set_result(fn(**kwargs))
            except BaseException as e:
                future.set_exception(e)
            return future
        return self._started().submit(fn, **kwargs)

    def map(self, fn: Callable[..., Any], list_of_kwargs: Sequence[dict[str, Any]]) -> list[Any]:
        """``[fn(**kw) for kw in list_of_kwargs]``, computed by the workers.

        Returns
        -------
        list
            Results in the order of `list_of_kwargs`. The first failing task's exception is
            re-raised (tasks not yet started are cancelled).
        """
        list_of_kwargs = list(list_of_kwargs)
        bar = Progress(self.desc or getattr(fn, "__name__", "tasks"), len(list_of_kwargs), enabled=self.progress)
        try:
            if self.workers == 1 or len(list_of_kwargs) <= 1:
                results = []
                old = set_sink(bar)  # tasks' report_pairs reach the display directly
                try:
                    for kw in list_of_kwargs:
                        with fewer_collections():  # the caller's thresholds back between tasks
                            results.append(fn(**kw))
                        bar.update(1, **counter_of(self.counter, results[-1]))
                finally:
                    set_sink(old)
                return results
            pool = self._started()
            with self._pairs.get_lock():
                self._pairs.value = 0
            futures = [pool.submit(fn, **kw) for kw in list_of_kwargs]
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, timeout=1.0, return_when=FIRST_EXCEPTION)
                    bar.set_live(self._pairs.value)
                    for f in done:
                        bar.update(1, **counter_of(self.counter, f.result()))  # re-raises the first error
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
            return [f.result() for f in futures]
        finally:
            bar.close()

    def close(self) -> None:
        """Shut the worker pool down."""
        if self._starting is not None:  # a start under way: let it finish, then shut it down
            self._starting.join()
            self._starting = self._start_error = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._alive is not None:
            for end in self._alive:
                end.close()
            self._alive = None
