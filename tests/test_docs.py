"""The documentation cannot drift: the API reference builds with warnings as errors and covers
every public name, and the example notebook runs from a clean state on the sample data."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "worldwide_curation.ipynb"
LAYERS = ("core", "execution", "metadata", "matching", "curation", "pipeline", "cli")


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is absent
        return False


def _need(*modules: str, extra: str) -> None:
    missing = [m for m in modules if not _found(m)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: pip install -e '.[{extra}]'")


def _env() -> dict:
    # Subprocesses (mkdocs, the notebook's kernel) must import this tree, not another install.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _inventory(site: Path) -> set[str]:
    """Object names of a Sphinx-format ``objects.inv`` (what mkdocstrings writes)."""
    data = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four text lines, then the zlib body
        header_end = data.index(b"\n", header_end) + 1
    body = zlib.decompress(data[header_end:]).decode("utf-8")
    return {line.split(" ", 1)[0] for line in body.splitlines() if line}


@pytest.mark.slow
def test_docs_build_strict_and_cover_every_public_name(tmp_path):
    _need("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx", extra="docs")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"

    # Every name a layer exports is documented somewhere in the reference (a new module that
    # no API page lists, or a public name the reference hides, fails here).
    names = _inventory(site)
    undocumented = []
    for layer in LAYERS:
        package = importlib.import_module(f"metaclip2.{layer}")
        for name in package.__all__:
            obj = getattr(package, name)
            home = getattr(obj, "__module__", None) if hasattr(obj, "__qualname__") else None
            candidates = {f"metaclip2.{layer}.{name}"}
            if home and home.startswith("metaclip2."):
                candidates.add(f"{home}.{obj.__qualname__}")
            if not candidates & names:
                undocumented.append(f"metaclip2.{layer}.{name}")
    assert not undocumented, f"public names missing from the API reference: {undocumented}"

    # The front page is the README itself, and the CLI page holds the parser's help.
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "Turn a raw, worldwide pool of web image" in index
    cli = (site / "api" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "metaclip2 curate" in cli and "--t-en" in cli


def test_notebook_is_committed_without_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    dirty = [i for i, cell in enumerate(nb["cells"])
             if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]  # fmt: skip
    assert not dirty, f"{NOTEBOOK.name}: cells {dirty} hold outputs; strip them (e.g. jupyter nbconvert --clear-output --inplace)"


@pytest.mark.slow
def test_notebook_runs(tmp_path, monkeypatch):
    _need("nbclient", "nbformat", "ipykernel", extra="test")
    _need("matplotlib", extra="plot")
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])  # the kernel inherits the environment
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook works in a tempfile.mkdtemp() folder
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(figures) >= 3, "the notebook shows its plots inline (sources, head/tail, kept per language)"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "English tail share p =" in text and "kept" in text
    # the user's path: an img2dataset Parquet pool curated, read back, and BatchCurator agreeing
    assert "'not_downloaded'" in text and "same kept set as curate: True" in text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("metaclip2-notebook-")], "the notebook removes its directory"
