"""Layer 1: where tasks run — worker processes of this machine or a Ray cluster, one interface.

[`metaclip2.metadata`][metaclip2.metadata] (n-gram counting of dumps) and [`metaclip2.pipeline`][metaclip2.pipeline] (the
curation stages) both run their work through an [`Executor`][metaclip2.execution.executor.Executor]; Ray is imported only when
the Ray executor is asked for.
"""

from metaclip2.execution.executor import EXECUTORS, Executor, get_executor
from metaclip2.execution.local import LocalExecutor

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "get_executor", "RayExecutor"]


def __getattr__(name):  # Ray stays unimported until asked for
    if name == "RayExecutor":
        from metaclip2.execution.ray_executor import RayExecutor

        return RayExecutor
    raise AttributeError(name)
