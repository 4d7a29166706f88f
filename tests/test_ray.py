"""The Ray executor (issue 6): a real local Ray cluster gives the same bytes as local runs.

One module-scoped Ray instance (2 CPUs, no dashboard, bound to 127.0.0.1) serves every test
that needs it; the tests skip with a reason when Ray is not installed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# Before ray is imported: no usage-stats reporting, no auth token written to $HOME.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from metaclip2.core.errors import ParameterError  # noqa: E402
from metaclip2.execution.ray_executor import RayExecutor, RayNotInstalledError, import_ray  # noqa: E402

from fixtures import make_metadata, tree  # noqa: E402

_RAY_INIT = dict(include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")


def _need_ray():
    return pytest.importorskip("ray", reason="Ray is not installed (pip install 'metaclip2[ray]')")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local 2-CPU Ray instance for this module, shut down after its last test."""
    ray = _need_ray()
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, **_RAY_INIT)
    # Test-module functions are not importable by Ray workers: ship them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


# -- helpers run as tasks (module level; pickled by value, see the fixture) -------------------


def _affine(x: int, a: int = 1, b: int = 0) -> tuple[int, int]:
    return x, a * x + b


def _pid_and_sum(arr, i: int) -> tuple[int, int, float]:
    return i, os.getpid(), float(arr.sum()) + i


def _fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"bad input {x}")
    return x


def _die_first_time(x: int, marker: str) -> int:
    """End this Ray worker process abruptly on the first attempt, as a lost node would; return x on the next."""
    if not os.path.exists(marker):
        Path(marker).write_text("attempt 1 died")
        os._exit(1)
    return x


def _die(x: int) -> int:
    os._exit(1)


class _DyingShardTask:
    """Like the pipeline's per-shard tasks (a callable with a ``shard``), but its worker always dies."""

    shard = "part-07"

    def __call__(self):
        os._exit(1)


# -- the executor itself ----------------------------------------------------------------------


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(RayNotInstalledError, match=r"pip install 'metaclip2\[ray\]'") as info:
        RayExecutor()
    assert isinstance(info.value, ImportError)
    with pytest.raises(ImportError, match=r"metaclip2\[ray\]"):
        import_ray()
    from metaclip2.execution import get_executor

    with pytest.raises(ImportError, match=r"pip install 'metaclip2\[ray\]'"):
        get_executor("ray", 2)


def test_cli_without_ray_is_a_clear_error(monkeypatch, capsys, pool, tmp_path):
    from metaclip2.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    meta, shards = pool
    out = tmp_path / "run"
    assert main(["count", "--metadata", str(meta), "--input", str(shards[0]), "--out", str(out), "--executor", "ray", "--quiet"]) == 2
    assert "pip install 'metaclip2[ray]'" in capsys.readouterr().err
    assert not out.exists()  # refused before anything was written


def test_owned_runtime_is_started_and_shut_down():
    """No runtime in the process: the executor starts a local one and `close` ends it."""
    ray = _need_ray()
    if ray.is_initialized():
        pytest.skip("a Ray runtime is already up in this process")
    with RayExecutor(num_cpus=1, init_kwargs=_RAY_INIT) as ex:
        assert ray.is_initialized()
        assert ex.workers == 1
        assert ex.map(json.dumps, [{"obj": [3]}, {"obj": {"b": 1, "a": 2}, "sort_keys": True}]) == ["[3]", '{"a": 2, "b": 1}']
    assert not ray.is_initialized()


def test_map_keeps_input_order(ray_cluster):
    kwargs = [{"x": x, "a": 3, "b": -x % 5} for x in range(23)]
    ex = RayExecutor()
    got = ex.map(_affine, kwargs)
    assert got == [_affine(**kw) for kw in kwargs]  # plain loop = reference
    assert ex.map(_affine, []) == []
    limited = RayExecutor(max_in_flight=2).map(_affine, kwargs)
    assert limited == got


def test_shared_values_go_through_object_store_once(ray_cluster):
    import numpy as np

    from metaclip2.execution.ray_executor import _shared_values

    arr = np.arange(100_000, dtype=np.float64)
    kwargs = [{"arr": arr, "i": i} for i in range(6)]
    refs = _shared_values(ray_cluster, kwargs)
    assert list(refs) == [id(arr)]  # one object-store copy; ints stay inline
    got = RayExecutor().map(_pid_and_sum, kwargs)
    assert [g[0] for g in got] == list(range(6))
    assert [g[2] for g in got] == [float(arr.sum()) + i for i in range(6)]
    # Tasks ran in Ray's worker processes, which are reused (so per-process caches of
    # matchers/probabilities in the stage functions are hit): at most one per CPU.
    pids = {g[1] for g in got}
    assert os.getpid() not in pids and len(pids) <= 2


def test_task_error_reraises_original_type(ray_cluster):
    with pytest.raises(ValueError, match="bad input 3"):
        RayExecutor().map(_fail_on, [{"x": x, "bad": 3} for x in range(6)])


def test_lost_worker_is_retried(ray_cluster, tmp_path):
    """A task whose worker process dies is run again (Ray max_retries) and its result returned."""
    marker = tmp_path / "attempted"
    got = RayExecutor(max_retries=1).map(_die_first_time, [{"x": 7, "marker": str(marker)}])
    assert got == [7]
    assert marker.read_text() == "attempt 1 died"  # the first attempt did run, and died


def test_retries_used_up_is_one_line_saying_rerun(ray_cluster):
    from metaclip2.core.errors import Metaclip2Error
    from metaclip2.execution.ray_executor import TaskLostError

    with pytest.raises(TaskLostError) as info:
        RayExecutor(max_retries=1, desc="stage 1: match").map(_die, [{"x": 1}])
    msg = str(info.value)
    assert isinstance(info.value, Metaclip2Error) and "\n" not in msg
    assert msg.startswith("stage 1: match: Ray task 1 of 1 was lost with its worker or node (WorkerCrashedError)")
    assert msg.endswith("(max_retries=1) are used up: run the same command again")
    # The curation stages' tasks are named by their shard, and their finished shards are kept.
    with pytest.raises(TaskLostError, match=r"^stage 3: sample: the Ray task of shard part-07 was lost .*max_retries=0\) "
                                            r"are used up: run the same command again to resume \(finished shards are verified and reused\)$"):
        RayExecutor(max_retries=0).run([_DyingShardTask()], desc="stage 3: sample")
    # A task that raised is not retried, and keeps its own error.
    with pytest.raises(ValueError, match="bad input 0"):
        RayExecutor(max_retries=2).map(_fail_on, [{"x": 0, "bad": 0}])
    with pytest.raises(ParameterError, match="max_retries must be 0 or more, got -1"):
        RayExecutor(max_retries=-1)


def test_does_not_shut_down_a_runtime_it_did_not_start(ray_cluster):
    ex = RayExecutor(address=None)
    assert ex.map(json.dumps, [{"obj": -1}]) == ["-1"]
    ex.close()
    assert ray_cluster.is_initialized()
    assert ex.workers == 2  # restarts lazily against the same runtime
    ex.close()
    assert ray_cluster.is_initialized()


# -- metadata building: n-gram counts of a real dump ------------------------------------------


@pytest.fixture(scope="module")
def short_dump(enwiki_dump, tmp_path_factory) -> Path:
    """The real English dump cut after its first 100 pages (30 articles), as plain XML."""
    import bz2

    out = tmp_path_factory.mktemp("dump") / "enwiki-head.xml"
    pages = 0
    with bz2.open(enwiki_dump, "rt", encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line in src:
            dst.write(line)
            if line.strip() == "</page>":
                pages += 1
                if pages == 100:
                    break
        dst.write("</mediawiki>\n")
    return out


def test_ngram_counts_of_dump_equal_local(ray_cluster, short_dump, tmp_path):
    """Rendering + counting as Ray tasks, merged on the driver: the counts file bytes equal."""
    from metaclip2.metadata.ngrams import count_dump_ngrams
    from metaclip2.metadata.wikitext import iter_articles

    n_articles = sum(1 for _ in iter_articles(short_dump))
    assert n_articles >= 20
    # Small batches: many tasks, several windows of the executor.
    local = count_dump_ngrams(short_dump, "en", workers=1, batch_size=2)
    remote = count_dump_ngrams(short_dump, "en", batch_size=2, executor=RayExecutor())
    assert local.n_tokens > 50_000
    local.save(tmp_path / "local.ngrams")
    remote.save(tmp_path / "ray.ngrams")
    assert (tmp_path / "local.ngrams").read_bytes() == (tmp_path / "ray.ngrams").read_bytes()

    # `metaclip2 metadata ngrams … --executor ray` (joins the running Ray, leaves it up).
    from metaclip2.cli import main

    cli_out = tmp_path / "cli.ngrams"
    assert main(["metadata", "ngrams", str(short_dump), "--lang", "en", "-o", str(cli_out), "--executor", "ray", "-q"]) == 0
    assert cli_out.read_bytes() == (tmp_path / "local.ngrams").read_bytes()
    assert ray_cluster.is_initialized()


def test_article_batches_come_back_in_dump_order(ray_cluster, short_dump):
    from metaclip2.metadata.wikitext import iter_articles, map_article_batches

    titles = [page.text.split("\n", 1)[0] for page in iter_articles(short_dump)]
    got = [t for part in map_article_batches(short_dump, _first_line, batch_size=3, executor=RayExecutor()) for t in part]
    want = [t for part in map_article_batches(short_dump, _first_line, batch_size=3, workers=1) for t in part]
    assert got == want
    assert len(got) == len(titles)


def _first_line(texts: list[str]) -> list[str]:
    return [t.split("\n", 1)[0] for t in texts]


# -- curation: every run-dir file equal, local vs Ray -----------------------------------------

_LANGS = {
    "en": ["cat", "dog", "red car", "house", "tree", "blue sky", "beach", "mountain", "city street", "flower", "bird", "river"],
    "de": ["katze", "hund", "rotes auto", "haus", "baum", "blauer himmel", "strand", "berg"],
    "ja": ["猫", "犬", "赤い車", "家", "木", "青い空"],
}


def _make_pool(root: Path, n_shards: int = 5, images_per_shard: int = 240, seed: int = 7) -> tuple[Path, list[Path]]:
    """Metadata for en/de/ja and JSONL shards with Zipf-skewed entry use and a few bad lines."""
    import random

    meta = make_metadata(root / "metadata", _LANGS)
    rng = random.Random(seed)
    shards = []
    for s in range(n_shards):
        path = root / "pool" / f"part-{s:02d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(images_per_shard):
            texts = []
            for _ in range(rng.randint(1, 3)):
                lang = rng.choices(["en", "de", "ja", "fr"], weights=[6, 3, 2, 1])[0]
                pool = _LANGS.get(lang, ["chat"])
                # Zipf-like: the first entries are used far more often (the head gets cut).
                words = [pool[min(int(rng.paretovariate(1.2)) - 1, len(pool) - 1)] for _ in range(rng.randint(0, 2))]
                sep = "" if lang == "ja" else " "
                text = sep.join(words + ["photo" if lang != "ja" else "写真"])
                texts.append({"text": text, "lang": lang})
            lines.append(json.dumps({"id": f"img-{s}-{i}", "texts": texts}, ensure_ascii=False))
        lines.insert(17, "{not json")
        lines.insert(33, json.dumps({"id": f"img-{s}-x", "texts": [42]}))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        shards.append(path)
    return meta, shards


def _tree(root: Path) -> dict[str, bytes]:
    # the command line's log (timestamps, pids) is the one file meant to differ between runs
    return tree(root, skip={"metaclip2.log"})


def _run_twice(tmp_path: Path, run) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Run ``run(executor_name)`` for local and Ray into the *same* OUT path (stats hold paths)."""
    out = tmp_path / "run"
    trees = []
    for name in ("local", "ray"):
        run(name, out)
        trees.append(_tree(out))
        out.rename(tmp_path / f"done-{name}")
    return trees[0], trees[1]


class _Recording(RayExecutor):
    calls: list = []

    def run(self, tasks, desc=None):
        tasks = list(tasks)
        _Recording.calls.append((type(tasks[0]).__name__ if tasks else None, len(tasks)))
        return super().run(tasks, desc)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return _make_pool(tmp_path_factory.mktemp("pool"))


def test_curate_ray_equals_local_byte_for_byte(ray_cluster, pool, tmp_path):
    from metaclip2.pipeline.run.api import curate

    meta, shards = pool

    def run(name, out):
        ex = _Recording() if name == "ray" else "local"
        curate(meta, [str(shards[0].parent / "*.jsonl")], out, t_en=25, seed=3, executor=ex, workers=1, progress=False)

    local, remote = _run_twice(tmp_path, run)
    assert sorted(local) == sorted(remote)
    for shard in ("part-00", "part-04"):
        for f in (f"stage1/{shard}.index.bin", f"stage1/{shard}.counts.bin", f"stage1/{shard}.stats.json",
                  f"subset/{shard}.jsonl", f"stage3/{shard}.stats.json"):  # fmt: skip
            assert f in local
    for f in ("stage2/counts.bin", "stage2/probabilities.bin", "stage2/thresholds.json", "run.json", "datacard.json"):
        assert f in local
    differ = [f for f in local if local[f] != remote[f]]
    assert differ == []
    assert _Recording.calls == [("MatchTask", 5), ("SampleTask", 5)]  # stages 1 and 3 went through Ray
    # The run is not trivial: some pairs kept, some not, bad lines accounted for.
    stats1 = json.loads(local["stage1/part-00.stats.json"])
    stats3 = json.loads(local["stage3/part-00.stats.json"])
    assert stats1["invalid"] and stats1["matched"] > 100
    assert 0 < stats3["kept"] < stats3["matched"]


def test_single_stage_cli_on_ray_resumes_and_equals_local(ray_cluster, pool, tmp_path):
    """`metaclip2 count/thresholds/sample --executor ray`, with a finished shard removed and redone."""
    from metaclip2.cli import main

    meta, shards = pool

    def cli(*argv):
        assert main([str(a) for a in argv]) == 0

    def run(name, out):
        ex = ["--executor", name, "--workers", "2", "--quiet"]
        cli("count", "--metadata", meta, "--input", *shards[:3], "--out", out, *ex)
        if name == "ray":
            # Resumability: a shard whose outputs vanish is redone, finished ones are kept.
            for f in (out / "stage1").glob("part-01.*"):
                f.unlink()
            cli("count", "--metadata", meta, "--input", *shards[:3], "--out", out, *ex)
        cli("thresholds", "--out", out, "--t-en", "25", "--quiet")
        cli("sample", "--out", out, "--seed", "5", "--unit", "pair", *ex)

    local, remote = _run_twice(tmp_path, run)
    assert "subset/part-01.jsonl" in local and "stage2/probabilities.bin" in local
    assert local == remote
    assert ray_cluster.is_initialized()  # the CLI joined the test's Ray, and left it up


# -- docs/cluster.md: the per-shard script for Slurm/Kubernetes gives the runner's bytes ------


def _doc_script() -> str:
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "cluster.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(# curate_shard\.py.*?)```", doc, re.S)
    assert len(blocks) == 1, "docs/cluster.md lost its curate_shard.py example"
    return blocks[0]


def test_documented_per_shard_script_equals_curate(pool, tmp_path, monkeypatch):
    """Run docs/cluster.md's curate_shard.py (as array jobs would, in any order) vs `curate`."""
    from metaclip2.pipeline.run.api import curate

    meta, shards = pool
    out = tmp_path / "run"
    script = (
        _doc_script()
        .replace('"/shared/meta"', repr(str(meta)))
        .replace('"/shared/pool/*.jsonl"', repr(str(shards[0].parent / "*.jsonl")))
        .replace('"/shared/run"', repr(str(out)))
        .replace("170_000", "25")
    )
    assert str(meta) in script and str(out) in script

    def job(*argv):
        monkeypatch.setattr(sys, "argv", ["curate_shard.py", *map(str, argv)])
        exec(compile(script, "curate_shard.py", "exec"), {"__name__": "__main__"})

    n = len(shards)
    for i in reversed(range(n)):  # array tasks finish in any order
        job("match", i)
    job("match", 2)  # a resubmitted task is a no-op
    job("reduce")
    for i in range(n):
        job("sample", i)
    by_jobs = {f: b for f, b in _tree(out).items() if f.startswith(("stage", "subset"))}
    out.rename(tmp_path / "jobs")

    curate(meta, [str(shards[0].parent / "*.jsonl")], out, t_en=25, seed=0, progress=False)
    by_runner = {f: b for f, b in _tree(out).items() if f.startswith(("stage", "subset"))}
    assert len(by_jobs) == 5 * n + 5 + 3 * n  # stage 1: index, counts, images, examples, stats; stage 2: + split; stage 3: stats, examples, subset
    assert by_jobs == by_runner


def test_tasks_run_with_fewer_collections(ray_cluster):
    import gc

    from metaclip2.execution.collection import TASK_GC_THRESHOLD

    got = RayExecutor().map(gc.get_threshold, [{}, {}])
    assert all(t[0] >= TASK_GC_THRESHOLD for t in got), got
