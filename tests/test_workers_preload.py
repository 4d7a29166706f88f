"""Worker processes start with the curation stages imported: the forkserver imported them once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MARKER = """
import os
PID = os.getpid()  # the process that imported this module
def imported_by_another():
    return PID != os.getpid()
"""

RUN = """
import metaclip2.pipeline.run.api  # names the stage modules to preload
from metaclip2.execution import get_executor
from metaclip2.execution.local import preload_in_workers
preload_in_workers("marker")
import marker
ex = get_executor("local", 2)
try:
    print(ex.map(marker.imported_by_another, [{}, {}]))
    print(preload_in_workers())
finally:
    ex.close()
"""


@pytest.mark.skipif(sys.platform == "darwin", reason="no forkserver on macOS: workers are spawned")
def test_forkserver_preloads_named_modules_for_every_worker(tmp_path):
    (tmp_path / "marker.py").write_text(MARKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    out = subprocess.run([sys.executable, "-c", RUN], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    first, names = out.stdout.strip().splitlines()
    assert first == "[True, True]"  # each worker found it imported already, by the forkserver it forked from
    assert "metaclip2.pipeline.stages.match" in names and "metaclip2.pipeline.stages.sample" in names
