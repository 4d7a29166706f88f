"""The documentation cannot drift: the API reference builds with warnings as errors and covers
every public name, and the example notebook runs from a clean state on the sample data."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import re
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "worldwide_curation.ipynb"
LAYERS = ("core", "execution", "metadata", "matching", "curation", "pipeline", "cli")
# A Sphinx role (``:func:`x```) renders verbatim on the mkdocstrings pages: docstrings use
# autorefs links (``[`x`][metaclip2.full.path]``) or plain code spans instead.
ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|const):`")


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


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once for this module's tests with ``mkdocs build --strict``."""
    _need("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx", extra="docs")
    site = tmp_path_factory.mktemp("docs") / "site"
    proc = _build(ROOT / "mkdocs.yml", site)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return site


@pytest.mark.slow
def test_docs_build_strict_and_cover_every_public_name(site):
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


def _layer_modules() -> set[str]:
    """Every module of every layer: each .py under metaclip2/<layer>/ (sub-packages included)."""
    out = set()
    for layer in LAYERS:
        for path in (ROOT / "metaclip2" / layer).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            out.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def test_docstrings_hold_no_sphinx_role():
    found = []
    for path in sorted((ROOT / "metaclip2").rglob("*.py")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ROLE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()[:80]}")
    assert not found, "Sphinx roles render verbatim; write [`name`][metaclip2.full.path] or `name`:\n" + "\n".join(found)


def test_every_module_has_an_api_section():
    documented = set()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        documented.update(re.findall(r"^::: (metaclip2[\w.]*)\s*$", page.read_text(encoding="utf-8"), re.M))
    missing = sorted(_layer_modules() - documented)
    assert not missing, f"modules without a section on an API page (docs/api/*.md): {missing}"


@pytest.mark.slow
def test_api_pages_render_cross_references_as_links(site):
    pages = {p: p.read_text(encoding="utf-8") for p in (site / "api").rglob("index.html")}
    ids = {p: set(re.findall(r'\bid="([^"]+)"', p.read_text(encoding="utf-8"))) for p in site.rglob("*.html")}
    raw, unlinked, broken, links = [], [], [], 0
    for page, html in pages.items():
        name = page.parent.name
        raw += [f"{name}: {m.group(0)}" for m in re.finditer(ROLE.pattern.replace("`", "(?:`|<code>)") + r"[^<]*", html)]
        # An autorefs reference it could not resolve stays as literal ``[x][path]`` text.
        unlinked += [f"{name}: {m.group(0)}" for m in re.finditer(r"\]\[metaclip2\.[\w.]+\]", html)]
        for href in re.findall(r'<a class="autorefs[^"]*"[^>]*href="([^"]*)"', html):
            links += 1
            target, _, anchor = href.partition("#")
            dest = (page.parent / target / "index.html").resolve() if target else page
            if dest not in ids or anchor not in ids[dest]:
                broken.append(f"{name}: {href}")
    assert not raw, f"raw Sphinx roles on the API pages: {raw[:10]}"
    assert not unlinked, f"unresolved cross-references: {unlinked[:10]}"
    assert not broken, f"cross-reference links to no anchor: {broken[:10]}"
    assert links > 300, f"only {links} cross-reference links: were the docstrings' references converted?"
    # Every module of every layer has its own section (an anchor) on an API page.
    names = _inventory(site)
    assert not sorted(_layer_modules() - names), sorted(_layer_modules() - names)


@pytest.mark.slow
def test_strict_build_fails_on_an_unresolved_reference(tmp_path):
    # What makes the checks above hold: autorefs under --strict refuses a reference it cannot resolve.
    _need("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx", extra="docs")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(
        "# x\n\n::: metaclip2.core.sizes\n\nSee [`nothing`][metaclip2.core.sizes.no_such_name].\n", encoding="utf-8")
    (tmp_path / "mkdocs.yml").write_text(
        f"site_name: x\ndocs_dir: docs\nplugins:\n  - autorefs\n  - mkdocstrings:\n"
        f"      handlers:\n        python:\n          paths: [{json.dumps(str(ROOT))}]\n", encoding="utf-8")
    proc = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode != 0
    assert "no_such_name" in proc.stdout + proc.stderr
