"""Shared fixtures: the real data in ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing downloads at run time: the Hugging Face libraries stay off the hub (set before any test
# imports them; a test that needed the hub would fail here, not fetch).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs the shared test data at {path} (../shared/data beside the project root); it is absent here")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real WordNet/OMW and Wikipedia samples."""
    return _need(SHARED_DATA)


@pytest.fixture(scope="session")
def nltk_data(shared_data: Path) -> Path:
    """Point nltk at the shared WordNet 3.0 + OMW data (no download)."""
    path = _need(shared_data / "nltk_data")
    os.environ["NLTK_DATA"] = str(path)
    import nltk

    if str(path) not in nltk.data.path:
        nltk.data.path.insert(0, str(path))
    return path


@pytest.fixture(scope="session")
def enwiki_dump(shared_data: Path) -> Path:
    """The real (shortened) English pages-articles dump."""
    return _need(shared_data / "wikipedia" / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
