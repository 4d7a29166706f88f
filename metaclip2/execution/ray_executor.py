"""Run per-shard steps as Ray tasks, on one machine or a cluster (the ``ray`` extra).

`RayExecutor` has the interface of `metaclip2.execution.local.LocalExecutor`:
``map(fn, list_of_kwargs)`` returns ``[fn(**kw) for kw in list_of_kwargs]``, computed as Ray
tasks, in input order. The curation stages and the n-gram counting of a dump only use that
method, so their outputs are the same bytes whichever executor runs them.

What is shipped where:

* ``fn`` must be a module-level function (pickled by reference; ``metaclip2`` must be
  installed on every node, same version as the driver).
* An argument value shared by several tasks (the *same object* in several kwargs dicts, e.g.
  entry probabilities or a rendering context) is put in the object store once per ``map``
  call and fetched once per node, not serialized into every task.
* Metadata (matchers) is passed as a directory path; the stage functions cache the loaded
  `MetadataStore` per worker process, and Ray reuses worker processes across tasks, so each
  worker loads a language's matcher at most once. The directory must be readable at the same
  path on every node (shared filesystem).

A task lost with its worker process or node (the node died, was preempted, its raylet
crashed, the worker was killed for memory) is run again by Ray, up to ``max_retries`` times,
on whatever node is left: the per-shard tasks write atomically and always the same bytes, so
a second run of one is harmless. A task that *raised* is not retried (its error is the
input's or the code's, and would repeat). When the retries are used up, `map` raises
`TaskLostError`, one line that says to run the same command again (a curation's run
directory keeps every finished shard).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence
from metaclip2.core.errors import Metaclip2Error, MissingExtraError, ParameterError
from metaclip2.execution.executor import Executor

__all__ = ["RayExecutor", "RayNotInstalledError", "TaskLostError", "import_ray"]

RAY_EXTRA_HINT = "pip install 'metaclip2[ray]'"

# Values cheaper to send inline than through the object store.
_INLINE_TYPES = (str, bytes, int, float, bool, type(None), os.PathLike)


class RayNotInstalledError(MissingExtraError):
    """``--executor ray`` was asked for but Ray is not importable."""


class TaskLostError(Metaclip2Error, RuntimeError):
    """A Ray task was lost with its worker or node more often than ``max_retries`` allows.

    The message is one line naming the task (its shard, for the curation stages), the Ray error
    and what to do: run the same command again, which reuses every finished shard.

    Examples
    --------
    >>> from metaclip2.execution.ray_executor import TaskLostError
    >>> from metaclip2.core.errors import Metaclip2Error
    >>> issubclass(TaskLostError, Metaclip2Error)
    True
    """


def _lost_errors(ray) -> tuple[type[BaseException], ...]:
    """Ray's errors for a task that did not fail but was lost (its worker or node is gone)."""
    ex = ray.exceptions
    names = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError", "OutOfMemoryError")
    return tuple(getattr(ex, n) for n in names if hasattr(ex, n))


def _lost_message(desc: str, kwargs: dict[str, Any], i: int, n: int, error: BaseException, max_retries: int) -> str:
    """The one line of `TaskLostError`: which task, the Ray error, and to run the command again."""
    shard = getattr(kwargs.get("task"), "shard", None)  # the pipeline's MatchTask / SampleTask
    what = f"the Ray task of shard {shard}" if shard is not None else f"Ray task {i + 1} of {n}"
    # Only the curation stages keep finished shards; other maps (n-gram counting) start over.
    again = "run the same command again to resume (finished shards are verified and reused)" if shard is not None else "run the same command again"
    return (f"{desc}: {what} was lost with its worker or node ({type(error).__name__}) and Ray's retries "
            f"(max_retries={max_retries}) are used up: {again}")  # fmt: skip


def import_ray():
    """Import and return the ``ray`` module, or raise `RayNotInstalledError` naming the extra.

    Examples
    --------
    >>> from metaclip2.execution.ray_executor import import_ray
    >>> import_ray().__name__
    'ray'
    """
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is installed in the test environment
        raise RayNotInstalledError(
            f"the Ray executor needs Ray, which is not installed: {RAY_EXTRA_HINT} ({e})"
        ) from e
    return ray


def _call(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    # Runs in a Ray worker. Shared values arrive as ObjectRefs nested in a dict (Ray only
    # resolves top-level task arguments), so fetch them here.
    import ray

    refs = {k: v for k, v in kwargs.items() if isinstance(v, ray.ObjectRef)}
    if refs:
        values = ray.get(list(refs.values()))
        kwargs = {**kwargs, **dict(zip(refs, values))}
    from metaclip2.execution.collection import fewer_collections

    with fewer_collections():  # a Ray worker runs other tasks too: its thresholds come back after this one
        return fn(**kwargs)


class RayExecutor(Executor):
    """Map a function over keyword-argument dicts as Ray tasks, results in input order.

    Parameters
    ----------
    address : str, optional
        ``None``: use the Ray runtime already initialised in this process, else start a
        local one (shut down again by `close`). ``"auto"``: connect to the cluster whose
        head runs on this machine (``ray start --head``) or named by ``RAY_ADDRESS``.
        ``"HOST:PORT"`` (GCS address of the head, default port 6379) or ``"ray://HOST:10001"``
        (Ray Client): connect to that cluster. Connecting never shuts the cluster down;
        `close` only disconnects this driver.
    num_cpus : int, optional
        CPUs of the local instance started when ``address`` is None (default: all cores).
        Ignored when connecting to a cluster.
    cpus_per_task : float
        Ray CPU resource requested by each task (1: one task per core).
    max_in_flight : int, optional
        Tasks submitted at a time (bounds driver and object-store memory when mapping over
        many shards); default: no bound.
    runtime_env : dict, optional
        Passed to ``ray.init`` (e.g. ``{"env_vars": {...}}``).
    progress : bool
        Show a tqdm bar counting finished tasks.
    init_kwargs : dict, optional
        More keyword arguments for ``ray.init`` (e.g. ``{"_temp_dir": ...}``).
    desc : str, optional
        Progress bar label (the runner sets it per stage); default: the function's name.
    max_retries : int
        Re-runs of a task whose worker process or node died (not of a task that raised);
        when they are used up, `map` raises `TaskLostError`.

    Notes
    -----
    The executor connects lazily, on the first `map` (or `start`). Use it as a context
    manager, or call `close`, to release a runtime it started.

    See Also
    --------
    - [`LocalExecutor`][metaclip2.execution.local.LocalExecutor] : The same interface with local processes.
    - [`get_executor`][metaclip2.execution.executor.get_executor] : An executor by name.

    Examples
    --------
    Creating the executor starts nothing; the first [`map`][metaclip2.execution.ray_executor.RayExecutor.map] starts (or connects to) Ray:

    >>> from metaclip2.execution import RayExecutor
    >>> ex = RayExecutor(num_cpus=2, max_in_flight=64)
    >>> ex
    RayExecutor(address=None, num_cpus=2)
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        cpus_per_task: float = 1,
        max_in_flight: int | None = None,
        runtime_env: dict | None = None,
        progress: bool = False,
        init_kwargs: dict | None = None,
        desc: str | None = None,
        max_retries: int = 3,
    ):
        import_ray()  # fail early, with the extra's name, not at the first map
        self.address = address
        self.num_cpus = num_cpus
        self.cpus_per_task = cpus_per_task
        self.max_in_flight = max_in_flight
        self.runtime_env = runtime_env
        self.progress = progress
        self.init_kwargs = dict(init_kwargs or {})
        self.desc = desc
        if int(max_retries) < 0:
            raise ParameterError(f"max_retries must be 0 or more, got {max_retries}")
        self.max_retries = int(max_retries)
        self._owns_runtime = False
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "RayExecutor":
        """Connect to (or start) the Ray runtime; idempotent."""
        if self._started:
            return self
        ray = import_ray()
        if ray.is_initialized():
            # Someone else (the caller, a test fixture) owns the runtime: use it, leave it up.
            self._owns_runtime = False
        else:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
            if self.runtime_env is not None:
                kwargs["runtime_env"] = self.runtime_env
            kwargs.update(self.init_kwargs)
            if self.address is None:
                if self.num_cpus is not None:
                    kwargs["num_cpus"] = self.num_cpus
                ray.init(**kwargs)
            else:
                kwargs.pop("include_dashboard", None)  # only meaningful when starting a cluster
                ray.init(address=self.address, **kwargs)
            # ray.shutdown() after connecting to a cluster only disconnects this driver.
            self._owns_runtime = True
        self._started = True
        return self

    def close(self) -> None:
        """Shut down the runtime if `start` initialised it (disconnect from a cluster)."""
        if self._started and self._owns_runtime:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        self._started = False
        self._owns_runtime = False

    def __enter__(self) -> "RayExecutor":
        return self.start()

    @property
    def workers(self) -> int:
        """Tasks that can run at once on the cluster (its CPUs / ``cpus_per_task``)."""
        self.start()
        cpus = import_ray().cluster_resources().get("CPU", 1)
        per_task = self.cpus_per_task or 1
        return max(1, int(cpus // per_task))

    # -- work --------------------------------------------------------------------------------

    def map(self, fn: Callable[..., Any], list_of_kwargs: Sequence[dict[str, Any]]) -> list[Any]:
        """``[fn(**kw) for kw in list_of_kwargs]``, run as Ray tasks.

        Parameters
        ----------
        fn : callable
            A module-level function (importable on the workers).
        list_of_kwargs : sequence of dict
            One dict of keyword arguments per task.

        Returns
        -------
        list
            The results, in the order of ``list_of_kwargs``. The first task that raises
            re-raises here (the remaining tasks are cancelled).

        Raises
        ------
        TaskLostError
            A task was lost with its worker or node ``max_retries + 1`` times.
        """
        list_of_kwargs = list(list_of_kwargs)
        if not list_of_kwargs:
            return []
        self.start()
        ray = import_ray()
        # A task lost with its worker or node is retried: the stage functions write
        # atomically and always the same bytes, so running one twice is harmless. A task
        # that raised is not (retry_exceptions=False): its error would only repeat.
        remote = ray.remote(num_cpus=self.cpus_per_task, max_retries=self.max_retries, retry_exceptions=False)(_call)
        lost = _lost_errors(ray)
        shared = _shared_values(ray, list_of_kwargs)
        fn_ref = ray.put(fn)

        def submit(kw: dict[str, Any]):
            kw = {k: shared.get(id(v), v) for k, v in kw.items()}
            return remote.remote(fn_ref, kw)

        from metaclip2.execution.progress import Progress, counter_of

        bar = Progress(self.desc or getattr(fn, "__name__", "tasks"), len(list_of_kwargs), enabled=self.progress)
        results: list[Any] = [None] * len(list_of_kwargs)
        index: dict[Any, int] = {}
        pending = []
        nxt = 0
        limit = self.max_in_flight or len(list_of_kwargs)
        try:
            while nxt < len(list_of_kwargs) or pending:
                while nxt < len(list_of_kwargs) and len(pending) < limit:
                    ref = submit(list_of_kwargs[nxt])
                    index[ref] = nxt
                    pending.append(ref)
                    nxt += 1
                done, pending = ray.wait(pending, num_returns=1)
                if pending:  # collect whatever else is ready without blocking: O(n) rounds, not O(n^2)
                    more, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
                    done += more
                for ref in done:
                    i = index.pop(ref)
                    try:
                        results[i] = ray.get(ref)  # raises the task's error
                    except lost as e:
                        desc = self.desc or getattr(fn, "__name__", "tasks")
                        raise TaskLostError(_lost_message(desc, list_of_kwargs[i], i, len(list_of_kwargs), e, self.max_retries)) from e
                    bar.update(1, **counter_of(self.counter, results[i]))
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise
        finally:
            bar.close()
        return results

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus!r})"


def _shared_values(ray, list_of_kwargs: Sequence[dict[str, Any]]) -> dict[int, Any]:
    """``id(value) -> ObjectRef`` for non-trivial values that appear in more than one task."""
    seen: dict[int, Any] = {}
    repeated: dict[int, Any] = {}
    for kw in list_of_kwargs:
        for v in kw.values():
            if isinstance(v, _INLINE_TYPES):
                continue
            if id(v) in seen:
                repeated[id(v)] = v
            else:
                seen[id(v)] = v
    return {i: ray.put(v) for i, v in repeated.items()}
