"""Executors: run a module-level function over many keyword-argument dicts.

The interface is one method, ``map(fn, list_of_kwargs) -> list`` (results in input order,
the first task error re-raised). :class:`LocalExecutor` uses worker processes on this
machine; the Ray executor (:mod:`metaclip2.curation.ray_executor`) runs the same calls as
Ray tasks. Functions must be importable by name and take picklable arguments (paths,
numbers, strings); heavy state (matchers, probabilities) is loaded and cached inside the
worker process (see :func:`metaclip2.curation.stages.cached_store`), never shipped per task.
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from typing import Any, Callable, Sequence

__all__ = ["EXECUTORS", "LocalExecutor", "get_executor"]

EXECUTORS = ("local", "ray")


def _mp_context():
    # fork is unsafe once threads exist (tqdm's monitor, BLAS pools); forkserver forks
    # workers from a clean process, spawn is the portable fallback.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods and sys.platform != "darwin" else "spawn")


class LocalExecutor:
    """Map a function over keyword-argument dicts in worker processes of this machine.

    Parameters
    ----------
    workers : int
        Processes. 1 runs every task in the calling process (no pool, easiest to debug).
    progress : bool
        Show a tqdm bar (stderr) per :meth:`map` call.
    desc : str, optional
        Bar label; default: the function's name.

    Notes
    -----
    The worker pool is created on the first :meth:`map` and reused by later ones (so a
    worker keeps its loaded matchers between stages); :meth:`close` (or the ``with`` block)
    shuts it down.
    """

    name = "local"

    def __init__(self, workers: int = 1, progress: bool = False, desc: str | None = None):
        if int(workers) < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = int(workers)
        self.progress = progress
        self.desc = desc
        self._pool: ProcessPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers})"

    def map(self, fn: Callable[..., Any], list_of_kwargs: Sequence[dict[str, Any]]) -> list[Any]:
        """``[fn(**kw) for kw in list_of_kwargs]``, computed by the workers.

        Returns
        -------
        list
            Results in the order of `list_of_kwargs`. The first failing task's exception is
            re-raised (tasks not yet started are cancelled).
        """
        list_of_kwargs = list(list_of_kwargs)
        bar = None
        if self.progress and list_of_kwargs:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(list_of_kwargs), desc=self.desc or getattr(fn, "__name__", "tasks"), unit="task", file=sys.stderr)
        try:
            if self.workers == 1 or len(list_of_kwargs) <= 1:
                results = []
                for kw in list_of_kwargs:
                    results.append(fn(**kw))
                    if bar is not None:
                        bar.update(1)
                return results
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=_mp_context())
            futures = [self._pool.submit(fn, **kw) for kw in list_of_kwargs]
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for f in done:
                        f.result()  # re-raise the first error
                    if bar is not None:
                        bar.update(len(done))
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
            return [f.result() for f in futures]
        finally:
            if bar is not None:
                bar.close()

    def close(self) -> None:
        """Shut the worker pool down."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def get_executor(name: str = "local", workers: int = 1, ray_address: str | None = None, progress: bool = False):
    """An executor by name.

    Parameters
    ----------
    name : {"local", "ray"}
    workers : int
        Local: processes. Ray: CPUs of the local Ray instance started when `ray_address`
        is None (ignored when connecting to a cluster).
    ray_address : str, optional
        ``"auto"`` or ``HOST:PORT`` of a running Ray cluster.
    progress : bool

    Raises
    ------
    ImportError
        ``name="ray"`` without Ray installed; the message names ``pip install 'metaclip2[ray]'``.
    """
    if name == "local":
        if ray_address is not None:
            raise ValueError("--ray-address needs --executor ray")
        return LocalExecutor(workers, progress=progress)
    if name == "ray":
        from metaclip2.curation.ray_executor import RayExecutor

        return RayExecutor(address=ray_address, num_cpus=workers if ray_address is None else None, progress=progress)
    raise ValueError(f"executor must be one of {EXECUTORS}, got {name!r}")
