"""Every public function and class has a numpy-style ``Examples`` section that runs.

"Public" is what the ``__all__`` of :mod:`metaclip2` and of each subpackage lists (exception
classes, constants and type aliases aside). The examples themselves run as doctests with the
suite (``--doctest-modules`` in pyproject); this test checks that each name *has* some: an
``Examples`` heading and at least one example, not under ``+SKIP``, whose output is checked.

``PENDING`` lists the names not done yet. It may only shrink: a name documented since fails
:func:`test_pending_names_are_still_pending` until it is removed from the list.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re

import pytest

SUBPACKAGES = ("core", "execution", "metadata", "matching", "curation", "pipeline", "cli")

# Names whose Examples are not written yet (their modules were being changed when the others
# were done). Remove a name once its docstring has runnable Examples.
PENDING = frozenset(
    {
        "metaclip2.curation.counts.count_entries",
        "metaclip2.pipeline.stages.MatchTask",
        "metaclip2.pipeline.stages.SampleTask",
        "metaclip2.pipeline.stages.compute_probabilities",
        "metaclip2.pipeline.stages.match_shard",
        "metaclip2.pipeline.stages.merge_counts",
        "metaclip2.pipeline.stages.sample_shard",
        "metaclip2.pipeline.stages.shard_names",
    }
)

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
    "metaclip2.curation.threshold",
    "metaclip2.curation.sampling",
    "metaclip2.matching.text",
    "metaclip2.matching.lid",
    "metaclip2.matching.scripts",
    "metaclip2.matching.lid_metadata",
    "metaclip2.matching.matcher",
    "metaclip2.matching.store",
    "metaclip2.pipeline.annotate",
    "metaclip2.pipeline.run",
    "metaclip2.pipeline.datacard",
    "metaclip2.pipeline.stats",
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


@pytest.mark.parametrize("name", sorted(set(EXPORTED) - PENDING))
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


def test_pending_names_are_still_pending() -> None:
    unknown = sorted(PENDING - set(EXPORTED))
    assert not unknown, f"not exported (renamed or removed?): {unknown}; update PENDING"
    done = sorted(name for name in PENDING if _problem(EXPORTED[name]) is None)
    assert not done, f"documented now, remove from PENDING: {done}"


def test_not_run_names_have_their_reason() -> None:
    for name, reason in NOT_RUN.items():
        assert name in EXPORTED and reason
        assert _problem(EXPORTED[name]) is not None, f"{name} has runnable examples now: remove it from NOT_RUN"
