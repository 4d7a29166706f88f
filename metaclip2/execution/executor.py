"""The executor interface: run one function over many tasks, results in input order.

An executor has one method that matters, ``map(fn, list_of_kwargs) -> list``: it returns
``[fn(**kw) for kw in list_of_kwargs]``, computed wherever the executor runs things (worker
processes of this machine, [`LocalExecutor`][metaclip2.execution.local.LocalExecutor]; Ray tasks,
[`RayExecutor`][metaclip2.execution.ray_executor.RayExecutor]), in input order, the first task error
re-raised. ``fn`` must be importable by name and its arguments picklable. Typed tasks (callable
objects such as the pipeline's per-shard tasks) run with [`Executor.run`][metaclip2.execution.executor.Executor.run].

The pipeline and the n-gram counting of dumps use only this interface, so their outputs are
the same bytes whichever executor runs them; a scheduler of your own only has to provide
``map``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

from metaclip2.core.errors import ParameterError

__all__ = ["EXECUTORS", "Executor", "counting", "get_executor"]

EXECUTORS = ("local", "ray")


def _run_task(task: Callable[[], Any]) -> Any:
    return task()


class Executor(ABC):
    """Base of the executors; subclasses implement [`map`][metaclip2.execution.executor.Executor.map] (and [`close`][metaclip2.execution.executor.Executor.close] if they own resources).

    Attributes
    ----------
    workers : int
        How many tasks can run at once.
    desc : str or None
        Label of the progress bar of the next [`map`][metaclip2.execution.executor.Executor.map].

    See Also
    --------
    - [`LocalExecutor`][metaclip2.execution.local.LocalExecutor] : Worker processes of this machine.
    - [`RayExecutor`][metaclip2.execution.ray_executor.RayExecutor] : Tasks on a Ray cluster.
    - [`get_executor`][metaclip2.execution.executor.get_executor] : One of them by name.

    Examples
    --------
    A subclass needs only [`map`][metaclip2.execution.executor.Executor.map]; [`run`][metaclip2.execution.executor.Executor.run] and the ``with`` block come with the base:

    >>> from metaclip2.execution import Executor
    >>> class InProcess(Executor):
    ...     def map(self, fn, list_of_kwargs):
    ...         return [fn(**kw) for kw in list_of_kwargs]
    >>> with InProcess() as ex:
    ...     ex.map(pow, [{"base": 2, "exp": 10}, {"base": 3, "exp": 2}])
    [1024, 9]
    """

    workers: int = 1
    desc: str | None = None
    #: ``result -> {"pairs": n, ...}``, summed into the progress display (see [`run`][metaclip2.execution.executor.Executor.run], [`counting`][metaclip2.execution.executor.counting]).
    counter: Callable[[Any], dict] | None = None

    @abstractmethod
    def map(self, fn: Callable[..., Any], list_of_kwargs: Sequence[dict[str, Any]]) -> list[Any]:
        """``[fn(**kw) for kw in list_of_kwargs]``, computed by the executor, in input order."""

    def run(self, tasks: Sequence[Callable[[], Any]], desc: str | None = None,
            counter: Callable[[Any], dict] | None = None) -> list[Any]:  # fmt: skip
        """``[task() for task in tasks]``, computed by the executor, in input order.

        Each task is a picklable callable object that carries its own parameters. `counter`
        maps a finished task's result to counts shown with the progress (``{"pairs": n}``).
        """
        if desc is not None:
            self.desc = desc
        if counter is None:
            return self.map(_run_task, [{"task": t} for t in tasks])
        old, self.counter = self.counter, counter
        try:
            return self.map(_run_task, [{"task": t} for t in tasks])
        finally:
            self.counter = old

    def close(self) -> None:
        """Release workers the executor started (a no-op by default)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class counting:
    """``with counting(executor, counter): executor.run(...)`` — `counter` on for the block.

    The same as ``run(..., counter=counter)``, for executors whose ``run`` predates it.

    See Also
    --------
    - [`Executor`][metaclip2.execution.executor.Executor] : Its ``run(..., counter=)`` does the same.

    Examples
    --------
    >>> from metaclip2.execution import LocalExecutor
    >>> from metaclip2.execution.executor import counting
    >>> ex = LocalExecutor(workers=1)
    >>> with counting(ex, lambda result: {"pairs": result}):
    ...     ex.map(pow, [{"base": 2, "exp": 10}])
    [1024]
    >>> print(ex.counter)  # restored after the block
    None
    """

    def __init__(self, executor: "Executor", counter: Callable[[Any], dict] | None):
        self.executor, self.counter = executor, counter

    def __enter__(self) -> "Executor":
        self.old = getattr(self.executor, "counter", None)
        self.executor.counter = self.counter
        return self.executor

    def __exit__(self, *exc) -> None:
        self.executor.counter = self.old


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

    See Also
    --------
    - [`LocalExecutor`][metaclip2.execution.local.LocalExecutor] : What ``name="local"`` returns.
    - [`RayExecutor`][metaclip2.execution.ray_executor.RayExecutor] : What ``name="ray"`` returns.

    Examples
    --------
    >>> from metaclip2.execution import get_executor
    >>> with get_executor("local", workers=1) as ex:
    ...     print(ex, ex.map(pow, [{"base": 2, "exp": 10}]))
    LocalExecutor(workers=1) [1024]
    >>> get_executor("dask")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.ParameterError: executor must be one of ('local', 'ray'), got 'dask'
    """
    if name == "local":
        if ray_address is not None:
            raise ParameterError("--ray-address needs --executor ray")
        from metaclip2.execution.local import LocalExecutor

        return LocalExecutor(workers, progress=progress)
    if name == "ray":
        from metaclip2.execution.ray_executor import RayExecutor

        return RayExecutor(address=ray_address, num_cpus=workers if ray_address is None else None, progress=progress)
    raise ParameterError(f"executor must be one of {EXECUTORS}, got {name!r}")
