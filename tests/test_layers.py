"""The package's layers: every import points down (or sideways within a subpackage), never up.

core (0) → execution (1) → metadata (2) → matching (3) → curation (4) → pipeline (5) → cli (6).
Function-local imports count too: a lazy import is still a dependency.

Inside the pipeline the same holds for its sub-packages: io (0) → stages (1) → run (2) →
report (3) → batch (4) → builds (5).
"""

import ast
from pathlib import Path

import metaclip2

PACKAGE = Path(metaclip2.__file__).parent
LAYERS = ["core", "execution", "metadata", "matching", "curation", "pipeline", "cli"]
PIPELINE_LAYERS = ["io", "stages", "run", "report", "batch", "builds"]


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "metaclip2" or len(parts) < 2:
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def _sublayer(module: str) -> int | None:
    """Sub-layer of a module of ``metaclip2.pipeline.<sub>``; None for anything else (and the package itself)."""
    parts = module.split(".")
    if parts[:2] != ["metaclip2", "pipeline"] or len(parts) < 3:
        return None
    return PIPELINE_LAYERS.index(parts[2]) if parts[2] in PIPELINE_LAYERS else None


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # `from metaclip2 import pipeline`
                if node.module == "metaclip2":
                    yield node.lineno, f"metaclip2.{alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; use absolute metaclip2.… imports")


def _upward(root: Path, layer_of, names: list[str], package: str, what: str, exempt: tuple = ()) -> list[str]:
    """Imports below `root` that point to a higher layer (`layer_of`), or import `package` itself."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        own = layer_of(".".join(rel.with_suffix("").parts))
        if own is None:
            continue
        for line, module in _imports(path):
            target = layer_of(module)
            if target is not None and target > own:
                bad.append(f"{rel}:{line} imports {module} ({names[own]} must not import {names[target]})")
            if module == package and not str(rel).endswith(exempt):
                bad.append(f"{rel}:{line} imports {what}")
    return bad


def upward_imports():
    return _upward(PACKAGE, _layer, LAYERS, "metaclip2", "the top-level package (import from the subpackage instead)", ("cli/main.py",))


def upward_pipeline_imports():
    return _upward(PACKAGE / "pipeline", _sublayer, PIPELINE_LAYERS, "metaclip2.pipeline", "the pipeline package (import from the sub-package's module instead)")


def test_every_subpackage_is_a_known_layer():
    subpackages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert set(subpackages) <= set(LAYERS), subpackages
    assert {p.stem for p in PACKAGE.glob("*.py")} <= {"__init__", "__main__"}  # no loose modules


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports() == []


def _plant(tmp_path, monkeypatch, module: str, line: str) -> None:
    """Check a copy of the package in which `module` (a path below it) ends with a function holding `line`."""
    import shutil

    copy = tmp_path / "metaclip2"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    target = copy / module
    target.write_text(target.read_text() + f"\n\ndef _f():\n    {line}\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", copy)


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    # The guard itself must be able to fail: plant an upward import in a copy of one layer.
    _plant(tmp_path, monkeypatch, "core/charclass.py", "from metaclip2.pipeline.run.api import curate")
    assert any("core/charclass.py" in b and "pipeline" in b for b in upward_imports())


def test_every_pipeline_subpackage_is_a_known_sublayer():
    subpackages = sorted(p.name for p in (PACKAGE / "pipeline").iterdir() if (p / "__init__.py").exists())
    assert sorted(subpackages) == sorted(PIPELINE_LAYERS), subpackages
    assert {p.stem for p in (PACKAGE / "pipeline").glob("*.py")} == {"__init__"}  # no loose modules


def test_no_pipeline_module_imports_from_a_higher_sublayer():
    assert upward_pipeline_imports() == []


def test_the_checker_sees_an_upward_pipeline_import(tmp_path, monkeypatch):
    # The sub-layer guard must be able to fail too: a stage importing the run configuration.
    _plant(tmp_path, monkeypatch, "pipeline/stages/match.py", "from metaclip2.pipeline.run.config import CurationConfig")
    assert upward_imports() == []  # the package layers do not see it
    assert any("pipeline/stages/match.py" in b and "stages must not import run" in b for b in upward_pipeline_imports())


def test_public_face_is_small_and_importable():
    assert len(metaclip2.__all__) <= 40
    for name in metaclip2.__all__:
        assert hasattr(metaclip2, name), name
    assert (PACKAGE / "py.typed").exists()


def test_every_exception_derives_from_the_root():
    import importlib
    import inspect

    seen = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if "data" in rel.parts or rel.name == "__main__":
            continue
        module = importlib.import_module(".".join(rel.parts).removesuffix(".__init__"))
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and not issubclass(cls, Warning) and cls.__module__.startswith("metaclip2") and not cls.__name__.startswith("_"):
                seen.append(cls)
                assert issubclass(cls, metaclip2.Metaclip2Error), cls
    assert len(set(seen)) >= 10
