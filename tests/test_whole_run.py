"""The whole ``metaclip2 curate`` command with one and two workers, and what makes the second
one faster: local workers started in the background, the report's plots drawn in a worker,
tasks run with fewer garbage collections (and the caller's thresholds restored after them)."""

from __future__ import annotations

import gc
import json
import os
import shutil

import pytest

from metaclip2.execution.collection import TASK_GC_THRESHOLD, fewer_collections, set_task_thresholds
from metaclip2.execution.local import LocalExecutor

from fixtures import make_images, make_metadata, tree, write_jsonl


@pytest.fixture
def thresholds():
    """The test's gc thresholds, whatever they were, back after it."""
    old = gc.get_threshold()
    yield old
    gc.set_threshold(*old)


# -- garbage collection ------------------------------------------------------------------------


def test_fewer_collections_restores_the_callers_thresholds_also_on_error(thresholds):
    gc.set_threshold(123, 7, 9)
    with fewer_collections():
        assert gc.get_threshold() == (TASK_GC_THRESHOLD, 7, 9)
    assert gc.get_threshold() == (123, 7, 9)
    with pytest.raises(ZeroDivisionError):
        with fewer_collections(5000):
            assert gc.get_threshold() == (5000, 7, 9)
            1 / 0
    assert gc.get_threshold() == (123, 7, 9)


def test_task_thresholds_never_lower_a_higher_one(thresholds):
    gc.set_threshold(10 * TASK_GC_THRESHOLD, 3, 4)
    assert set_task_thresholds() == (10 * TASK_GC_THRESHOLD, 3, 4)
    assert gc.get_threshold() == (10 * TASK_GC_THRESHOLD, 3, 4)
    with fewer_collections():
        assert gc.get_threshold()[0] == 10 * TASK_GC_THRESHOLD


def test_tasks_in_the_calling_process_run_with_fewer_collections_and_leave_it_as_it_was(thresholds):
    gc.set_threshold(700, 10, 10)
    with LocalExecutor(workers=1) as ex:
        assert ex.map(gc.get_threshold, [{}, {}]) == [(TASK_GC_THRESHOLD, 10, 10)] * 2
        assert gc.get_threshold() == (700, 10, 10)
        assert ex.submit(gc.get_threshold).result() == (TASK_GC_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_worker_processes_keep_task_thresholds():
    with LocalExecutor(workers=2) as ex:
        seen = ex.map(gc.get_threshold, [{}, {}, {}])
    assert all(t[0] == TASK_GC_THRESHOLD for t in seen), seen


# -- starting and submitting -----------------------------------------------------------------------


def test_workers_started_in_the_background_run_the_first_map():
    ex = LocalExecutor(workers=2).start(wait=False)
    try:
        assert ex.start(wait=False) is ex  # a second start is a no-op
        pids = ex.map(os.getpid, [{}, {}, {}, {}])
        workers = set(ex._pool._processes)  # the pool's two processes (either may run all four tasks)
        assert len(workers) == 2 and os.getpid() not in workers
        assert set(pids) <= workers
        assert ex.submit(os.getpid).result() in workers  # the same pool
    finally:
        ex.close()
    assert ex._pool is None and ex._starting is None


def test_close_right_after_a_background_start_leaves_no_pool():
    ex = LocalExecutor(workers=2).start(wait=False)
    ex.close()
    assert ex._pool is None and ex._starting is None
    assert ex.map(pow, [{"base": 2, "exp": 3}, {"base": 3, "exp": 2}]) == [8, 9]  # usable again: a new pool
    ex.close()


def test_submit_runs_in_a_worker_and_carries_its_error():
    with LocalExecutor(workers=2) as ex:
        assert ex.submit(os.getpid).result() != os.getpid()
        with pytest.raises(json.JSONDecodeError):
            ex.submit(json.loads, s="{").result()
    with LocalExecutor(workers=1) as ex:  # one worker: here and now
        future = ex.submit(os.getpid)
        assert future.done() and future.result() == os.getpid()
        with pytest.raises(json.JSONDecodeError):
            ex.submit(json.loads, s="{").result()


# -- the whole command -----------------------------------------------------------------------------


def test_curate_command_writes_the_same_bytes_with_one_and_two_workers(tmp_path, capsys):
    """Every file of the run, the report's PNG plots and report.html included, is the same
    whether one process did everything or two workers ran the stages and drew the plots."""
    pytest.importorskip("matplotlib", reason="plots need the 'plot' extra (matplotlib)")
    from metaclip2.cli import main

    meta = make_metadata(tmp_path / "meta")
    (tmp_path / "in").mkdir()
    for s in range(3):
        write_jsonl(tmp_path / "in" / f"part-{s}.jsonl", make_images(s, 150, f"s{s}-"))
    run = tmp_path / "run"  # the same path each time: report.html names it
    trees, printed = {}, {}
    for workers in (1, 2, 1, 2):
        shutil.rmtree(run, ignore_errors=True)
        assert main(["curate", "--metadata", str(meta), "--input", str(tmp_path / "in" / "*.jsonl"), "--out", str(run),
                     "--t-en", "4", "--workers", str(workers), "-q"]) == 0  # fmt: skip
        printed.setdefault(workers, []).append(capsys.readouterr().out)
        trees.setdefault(workers, []).append(tree(run, skip=("metaclip2.log", "run.lock")))
    assert {"plots/match_mass.png", "plots/pairs_per_language.png", "report.html", "datacard.json"} <= set(trees[1][0])
    assert trees[1][0] == trees[1][1] == trees[2][0] == trees[2][1]
    assert printed[1][0] == printed[2][0]  # the same paths printed, plots included
    assert "plot:" in printed[2][0]
