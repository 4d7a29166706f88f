"""Every public function and class has a numpy-style ``Examples`` section that runs.

"Public" is what the ``__all__`` of :mod:`metaclip2` and of each subpackage lists (exception
classes, constants and type aliases aside). The examples themselves run as doctests with the
suite (``--doctest-modules`` in pyproject); this test checks that each name *has* some: an
``Examples`` heading and at least one example, not under ``+SKIP``, whose output is checked.
A new public name without one fails here.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re

import pytest

SUBPACKAGES = ("core", "execution", "metadata", "matching", "curation", "pipeline", "cli")

# Names whose examples are shown but cannot run in the suite, with the reason.
NOT_RUN = {
    "metaclip2.metadata.wordnet.wordnet_entries": "needs nltk's WordNet/OMW corpora (a download) and parses them for seconds",
}

# Modules whose own ``__all__`` is fully covered too (not only what their subpackage exports).
DOCUMENTED_MODULES = (
    *(f"metaclip2.core.{m.name}" for m in pkgutil.iter_modules(importlib.import_module("metaclip2.core").__path__)),
    *(f"metaclip2.metadata.{m.name}" for m in pkgutil.iter_modules(importlib.import_module("metaclip2.metadata").__path__)),
    "metaclip2.execution.executor",
    "metaclip2.execution.local",
    "metaclip2.execution.progress",
    "metaclip2.execution.ray_executor",
    "metaclip2.curation.counts",
    "metaclip2.curation.threshold",
    "metaclip2.curation.sampling",
    "metaclip2.curation.expectation",
    "metaclip2.matching.text",
    "metaclip2.matching.lid",
    "metaclip2.matching.scripts",
    "metaclip2.matching.lid_metadata",
    "metaclip2.matching.matcher",
    "metaclip2.matching.store",
    "metaclip2.pipeline.io.records",
    "metaclip2.pipeline.io.inputs",
    "metaclip2.pipeline.io.readers",
    "metaclip2.pipeline.io.index",
    "metaclip2.pipeline.stages.options",
    "metaclip2.pipeline.stages.budget",
    "metaclip2.pipeline.stages.files",
    "metaclip2.pipeline.stages.cache",
    "metaclip2.pipeline.stages.match",
    "metaclip2.pipeline.stages.merge",
    "metaclip2.pipeline.stages.sample",
    "metaclip2.pipeline.stages.split",
    "metaclip2.pipeline.stages.stats",
    "metaclip2.pipeline.run.config",
    "metaclip2.pipeline.run.rundir",
    "metaclip2.pipeline.run.driver",
    "metaclip2.pipeline.run.api",
    "metaclip2.pipeline.run.fork",
    "metaclip2.pipeline.run.datacard",
    "metaclip2.pipeline.report.sweep",
    "metaclip2.pipeline.report.card",
    "metaclip2.pipeline.batch.annotate",
    "metaclip2.pipeline.builds.demo",
    "metaclip2.cli.main",
)

_SECTION = re.compile(r"^[ \t]*Examples\n[ \t]*-{8,}[ \t]*$", re.M)


def _public(module_name: str) -> dict[str, object]:
    """qualified name -> object, for the functions and classes (not exceptions) of `__all__`."""
    module = importlib.import_module(module_name)
    out = {}
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        if inspect.isclass(obj):
            if issubclass(obj, BaseException):
                continue
        elif not inspect.isroutine(inspect.unwrap(obj)):
            continue  # constants, type aliases
        out[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return out


def _exported() -> dict[str, object]:
    out = {}
    for module_name in ("metaclip2", *(f"metaclip2.{p}" for p in SUBPACKAGES)):
        out.update(_public(module_name))
    return out


def _problem(obj) -> str | None:
    """Why `obj`'s docstring lacks runnable Examples, or None."""
    doc = inspect.getdoc(obj) or ""
    if not _SECTION.search(doc):
        return "no 'Examples' section"
    checked = [e for e in doctest.DocTestParser().get_examples(doc) if e.want and not e.options.get(doctest.SKIP)]
    if not checked:
        return "no example that runs and checks its output (all are +SKIP or print nothing)"
    return None


EXPORTED = _exported()


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_exported_name_has_runnable_examples(name: str) -> None:
    obj = EXPORTED[name]
    if name in NOT_RUN:
        assert _SECTION.search(inspect.getdoc(obj) or ""), f"{name}: no 'Examples' section"
        return
    problem = _problem(obj)
    assert problem is None, f"{name}: {problem}"


@pytest.mark.parametrize("module_name", DOCUMENTED_MODULES)
def test_documented_module_has_runnable_examples(module_name: str) -> None:
    bad = {name: _problem(obj) for name, obj in _public(module_name).items() if name not in NOT_RUN}
    bad = {name: why for name, why in bad.items() if why}
    assert not bad, f"{module_name}: {bad}"


def test_not_run_names_have_their_reason() -> None:
    for name, reason in NOT_RUN.items():
        assert name in EXPORTED and reason
        assert _problem(EXPORTED[name]) is not None, f"{name} has runnable examples now: remove it from NOT_RUN"
