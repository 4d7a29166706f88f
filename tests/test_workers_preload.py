"""Worker processes start with the curation stages imported (the forkserver imported them once)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys
def loaded(name):  # what a worker has imported before its first task (this module imports nothing)
    return name in sys.modules
"""

RUN = """
import metaclip2.pipeline.run.api  # names the stage modules to preload
from metaclip2.execution import get_executor
from metaclip2.execution.local import preload_in_workers
from probe import loaded
ex = get_executor("local", 2)
try:
    print(ex.map(loaded, [{"name": "metaclip2.pipeline.stages.match"}] * 2), ex.map(loaded, [{"name": "metaclip2.pipeline.stages.sample"}] * 2))
    print(preload_in_workers())
finally:
    ex.close()
"""


@pytest.mark.skipif(sys.platform == "darwin", reason="no forkserver on macOS: workers are spawned")
def test_forkserver_preloads_the_stage_modules(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    out = subprocess.run([sys.executable, "-c", RUN], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    first, names = out.stdout.strip().splitlines()
    assert first == "[True, True] [True, True]"  # both workers had them before their first task
    assert "metaclip2.pipeline.stages.match" in names
