"""Sweeps of t_en from stage 1 alone, forks of a run, guidance, and the command line's conventions.

The sweep's expectations are checked three ways: against a slow row-by-row reference built
from the sampling functions themselves; against actual stage-3 runs (within 3 standard
deviations, on the demo pool and on a pool without English); and by --target-size landing on
its target in expectation.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

from metaclip2.core.errors import DataError, RunMismatchError
from metaclip2.core.jsonfile import seal
from metaclip2.curation.counts import EntryCounts
from metaclip2.curation.sampling import EntryProbabilities, keep_probability
from metaclip2.curation.threshold import thresholds as reference_thresholds
from metaclip2.pipeline.builds import demo
from metaclip2.pipeline.io.index import iter_index
from metaclip2.pipeline.run.api import compute_thresholds, count, curate, sample
from metaclip2.pipeline.stages.files import stage1_paths
from metaclip2.pipeline.report.sweep import load_sweep_data, sweep, target_size

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo's metadata, pool and run (t_en = 40)."""
    return demo.run_demo(tmp_path_factory.mktemp("demo"), workers=1, progress=False)


@pytest.fixture(scope="module")
def no_english(demo_run, tmp_path_factory):
    """A pool without English (the demo pool's other languages, languages given), stage 1 done."""
    d = tmp_path_factory.mktemp("noen")
    src = demo.make_sample_pool(d / "src", n_images=2000, n_shards=2, with_lid=False)
    for path in src:
        lines = []
        for raw in path.read_bytes().splitlines():
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            texts = [t for t in obj.get("texts", []) if isinstance(t, dict) and t.get("lang") not in ("en", None)]
            if texts and "id" in obj:
                lines.append(json.dumps({"id": obj["id"], "texts": texts}, ensure_ascii=False))
        (d / path.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    pool = sorted(d.glob("sample-pool-*.jsonl"))
    run = d / "run"
    count(demo_run["metadata"], [str(p) for p in pool], run, progress=False)
    return {"pool": pool, "run": run, "metadata": demo_run["metadata"]}


# -- the expectation is exact ------------------------------------------------------------------


def _reference(run: Path, t_en: float, unit: str, p=None) -> dict:
    """Expected kept sizes row by row with the library's own per-pair functions (slow, obvious)."""
    from metaclip2.pipeline.run.rundir import RunDir

    rd = RunDir(run)
    names = rd.read()["stage1"]["shards"]
    counts = EntryCounts.sum(EntryCounts.load(stage1_paths(rd.stage1, n)["counts"]) for n in names)
    probs = EntryProbabilities.from_counts(counts, t_en=t_en, p=p)
    pairs = images = 0.0
    by_lang: dict[str, float] = {}
    for n in names:
        for b in iter_index(stage1_paths(rd.stage1, n)["index"]):
            starts = list(b.image_starts()) + [len(b)]
            for a, z in zip(starts[:-1], starts[1:]):
                ps = [(b.lang[r], keep_probability(probs.q[b.lang[r]], b.row_ids(r))) for r in range(a, z)]
                if unit == "pair":
                    pairs += sum(x for _, x in ps)
                    images += 1 - np.prod([1 - x for _, x in ps])
                    for lang, x in ps:
                        by_lang[lang] = by_lang.get(lang, 0) + x
                else:  # select_texts: one candidate (p > 0) uniformly, kept with its p
                    cand = [(lang, x) for lang, x in ps if x > 0]
                    for lang, x in cand:
                        pairs += x / len(cand)
                        by_lang[lang] = by_lang.get(lang, 0) + x / len(cand)
                    images = pairs
    return {"pairs": pairs, "images": images, "by_lang": by_lang, "t": probs.t, "p": probs.params["p"]}


@pytest.mark.slow
@pytest.mark.parametrize("unit", ["image", "pair"])
def test_expectation_equals_a_row_by_row_reference(demo_run, unit):
    data = load_sweep_data(demo_run["run"])
    for t_en in (3, 17, 40, 500):
        row = data.expect(t_en, unit=unit)
        ref = _reference(demo_run["run"], t_en, unit)
        assert row["p"] == ref["p"]
        assert {k: v["t"] for k, v in row["languages"].items()} == ref["t"]
        assert row["pairs"] == pytest.approx(ref["pairs"], rel=1e-12)
        assert row["images"] == pytest.approx(ref["images"], rel=1e-12)
        for lang, v in ref["by_lang"].items():
            assert row["languages"][lang]["pairs"] == pytest.approx(v, rel=1e-12)


def test_thresholds_equal_stage_2s(demo_run):
    data = load_sweep_data(demo_run["run"])
    counts = EntryCounts.load(demo_run["run"] / "stage2" / "counts.bin")
    for t_en in (1, 2, 7, 40, 41.5, 10**6):
        for english in ("keep", "recompute"):
            p, t = data.thresholds(t_en, english)
            assert t == reference_thresholds(counts, t_en=t_en, english=english)


# -- against actual stage-3 runs ---------------------------------------------------------------


def _within_3_sigma(row: dict, stats: list, unit: str) -> None:
    kept = sum(s.kept for s in stats)
    kept_images = sum(s.kept_images for s in stats)
    assert abs(kept - row["pairs"]) <= 3 * row["pairs_std"] + 1e-9, (kept, row["pairs"], row["pairs_std"])
    assert abs(kept_images - row["images"]) <= 3 * row["images_std"] + 1e-9
    by_lang: dict[str, int] = {}
    for s in stats:
        for lang, d in s.by_lang.items():
            by_lang[lang] = by_lang.get(lang, 0) + d["kept"]
    for lang, d in row["languages"].items():
        assert abs(by_lang.get(lang, 0) - d["pairs"]) <= 3 * d["pairs_std"] + 1e-9, lang


@pytest.mark.parametrize("unit,t_en", [("image", 8), ("image", 40), ("image", 200), ("pair", 10), ("pair", 60)])
def test_sweep_agrees_with_sample_runs_on_the_demo_pool(demo_run, tmp_path, unit, t_en):
    table = sweep(demo_run["run"], [t_en], unit=unit)
    for seed in (1, 2):
        out = tmp_path / f"fork-{seed}"
        stats = sample(out, source=demo_run["run"], t_en=t_en, unit=unit, seed=seed, progress=False)
        _within_3_sigma(table.rows[0], stats, unit)


def test_sweep_agrees_with_sample_runs_on_a_pool_without_english(no_english, tmp_path):
    data = load_sweep_data(no_english["run"])
    assert not data.english
    with pytest.raises(DataError, match="--p"):
        sweep(data, [100])
    table = sweep(data, p=[0.03, 0.1, 0.3])
    assert [r["p"] for r in table.rows] == [0.03, 0.1, 0.3]
    assert "en" not in {lang for r in table.rows for lang, d in r["languages"].items() if d["pairs"] > 0}
    for i, row in enumerate(table.rows):
        stats = sample(tmp_path / f"p{i}", source=no_english["run"], p=row["p"], seed=i, progress=False)
        _within_3_sigma(row, stats, "image")


# -- target size -------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["image", "pair"])
def test_target_size_lands_within_one_percent(demo_run, unit):
    data = load_sweep_data(demo_run["run"])
    gaps = 0
    for target in (700, 1200, 1800, 2500):
        row = target_size(data, target, unit=unit)
        assert row["searched"] == "t_en"
        assert data.expect(row["t_en"], unit=unit)["pairs"] == pytest.approx(row["pairs"])
        if row["gap"] is None:
            assert abs(row["pairs"] - target) <= 0.01 * target, (target, row["t_en"], row["pairs"])
        else:  # the demo pool's counts are tens: a language's threshold step can jump over the target
            below, above = row["gap"]
            assert below < target < above and row["pairs"] in (below, above)
            assert abs(row["pairs"] - target) == min(target - below, above - target)
            gaps += 1
    assert gaps <= 1


def test_target_size_searches_p_without_english(no_english):
    data = load_sweep_data(no_english["run"])
    row = target_size(data, 600)
    assert row["searched"] == "p" and abs(row["pairs"] - 600) <= 6


def test_target_size_out_of_reach_is_a_parameter_error(demo_run):
    from metaclip2.core.errors import ParameterError

    with pytest.raises(ParameterError, match="at most"):
        target_size(demo_run["run"], 10**7)


# -- forks -------------------------------------------------------------------------------------


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_fork_reuses_stage_1_and_equals_a_fresh_run(demo_run, tmp_path):
    from metaclip2.pipeline.report.card import write_report

    fresh = curate(demo_run["metadata"], [str(p) for p in sorted(Path(demo_run["pool"]).glob("*.jsonl"))], tmp_path / "fresh",
                   t_en=12, seed=0, progress=False)  # fmt: skip
    fork = tmp_path / "fork"
    compute_thresholds(fork, source=demo_run["run"], t_en=12, progress=False)
    sample(fork, seed=0, progress=False)
    write_report(fork, plots=False)
    assert (fork / "stage1").is_symlink() and (fork / "stage1").resolve() == (demo_run["run"] / "stage1").resolve()
    for part in ("stage2", "stage3", "subset"):
        assert _files(fork / part) == _files(fresh.out / part)
    assert (fork / "datacard.json").read_bytes() == (fresh.out / "datacard.json").read_bytes()
    # the fork is a normal run: resuming it is a no-op, other stage-2 parameters are refused
    compute_thresholds(fork, t_en=12, progress=False)
    with pytest.raises(RunMismatchError):
        compute_thresholds(fork, t_en=13, progress=False)


def test_fork_refuses_a_changed_source(demo_run, tmp_path):
    import shutil

    src = tmp_path / "src"
    shutil.copytree(demo_run["run"], src)
    fork = tmp_path / "fork"
    compute_thresholds(fork, source=src, t_en=20, progress=False)
    stats = next((src / "stage1").glob("*.stats.json"))
    stats.write_text(stats.read_text().replace('"pairs"', '"pairs" ', 1))
    with pytest.raises(RunMismatchError, match="changed since"):
        sample(fork, progress=False)
    with pytest.raises(RunMismatchError, match="run of its own"):
        compute_thresholds(demo_run["run"], source=src, t_en=20, progress=False)


def test_failed_stage_2_is_not_recorded(no_english, tmp_path):
    fork = tmp_path / "fork"
    with pytest.raises(DataError, match="--p"):
        compute_thresholds(fork, source=no_english["run"], t_en=100, progress=False)
    assert "stage2" not in json.loads((fork / "run.json").read_text())
    info = compute_thresholds(fork, p=0.06, progress=False)  # the retry with the fix works
    assert info["p"] == 0.06


# -- guidance ----------------------------------------------------------------------------------


def test_extreme_tail_share_warns_with_paper_t_en(demo_run, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="metaclip2"):
        compute_thresholds(tmp_path / "f", source=demo_run["run"], t_en=170_000, progress=False)
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "p = 1.0000" in msg and "0.055-0.06" in msg and "t_en = 1" in msg and "sweep" in msg


def test_no_english_is_refused_before_stage_1(no_english, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(DataError, match="--p") as e:
        curate(no_english["metadata"], [str(p) for p in no_english["pool"]], out, progress=False)
    assert "none of" in str(e.value)
    assert not (out / "stage1").exists()  # nothing of stage 1 was run


# -- command line ------------------------------------------------------------------------------


def _cli(*argv, **kw):
    return subprocess.run([sys.executable, "-c", "import sys; from metaclip2.cli.main import main; sys.exit(main())", *argv],
                          capture_output=True, text=True, env=ENV, **kw)  # fmt: skip


def test_cli_sweep_fork_and_log(demo_run, tmp_path):
    run = str(demo_run["run"])
    r = _cli("sweep", run, "--t-en", "5,40,1000", "--csv", str(tmp_path / "s.csv"), "--json", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    assert "kept pairs" in r.stdout and "0.055-0.06" in r.stderr  # p = 1 at 1000: the warning names the paper's share
    table = json.loads((tmp_path / "s.json").read_text())
    assert [row["t_en"] for row in table["rows"]] == [5, 40, 1000]
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "t_en,p,lang,t,pairs,pairs_std,images,images_std"
    r = _cli("sweep", run, "--target-size", "1200")
    assert r.returncode == 0 and "use it: metaclip2 thresholds" in r.stdout
    new = tmp_path / "new"
    r = _cli("thresholds", run, "--t-en", "25", "--out", str(new))
    assert r.returncode == 0, r.stderr
    r = _cli("sample", str(new), "-q")
    assert r.returncode == 0 and r.stderr == ""
    log = (new / "metaclip2.log").read_text()
    assert "thresholds" in log and "stage 2: p =" in log and "forked" in log


def test_cli_exit_codes(demo_run, tmp_path):
    assert _cli("sweep").returncode == 2  # argparse
    assert _cli("sweep", str(demo_run["run"])).returncode == 2  # nothing to sweep
    r = _cli("thresholds", str(tmp_path / "nothing"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1  # a run directory that names nothing to do: a usage error
    # a lenient run that skipped damaged inputs: 3
    out = tmp_path / "run"
    pool = [str(p) for p in sorted(Path(demo_run["pool"]).glob("*.jsonl"))][:1]
    args = ("count", "--metadata", str(demo_run["metadata"]), "--input", *pool, "--out", str(out), "-q")
    assert _cli(*args).returncode == 0
    stats = next((out / "stage1").glob("*.stats.json"))
    d = json.loads(stats.read_text())
    d["invalid"]["damaged_gzip"] = 1
    d["pairs"] += 1  # the counts still add up, and the record is sealed again: as a run would write it
    stats.write_text(json.dumps(seal(d)))
    r = _cli(*args)
    assert r.returncode == 3 and "damaged" in r.stderr
    assert "3  a lenient run" in _cli("--help").stdout


def test_every_verb_has_a_description_examples_quiet_and_log_level():
    from metaclip2.cli.main import _leaves, build_parser

    parser = build_parser()
    for leaf in _leaves(parser):
        if leaf is parser:
            continue
        options = {s for a in leaf._actions for s in a.option_strings}
        assert leaf.description and "example" in (leaf.epilog or ""), leaf.prog
        assert {"-q", "--log-level"} <= options, leaf.prog
        assert "--processes" not in options or "--workers" in options, leaf.prog


def test_broken_pipe_exits_quietly(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("a photo of a dog on the beach\n" * 200_000, encoding="utf-8")
    cmd = f"{sys.executable} -c 'import sys; from metaclip2.cli.main import main; sys.exit(main())' lid {lines} | head -n 1"
    r = subprocess.run(["bash", "-c", cmd + "; echo status=${PIPESTATUS[0]}"], capture_output=True, text=True, env=ENV)
    assert r.stdout.count("\n") == 2 and "status=0" in r.stdout
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


def test_plain_progress_lines_when_not_a_tty(demo_run, tmp_path):
    r = _cli("sample", str(demo_run["run"]), "--out", str(tmp_path / "f"), "--t-en", "30")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    assert "stage 3: sample: 4/4 shards" in r.stderr and "pairs/s" in r.stderr


def test_progress_in_pairs_within_one_big_shard(demo_run, tmp_path):
    pool = demo.make_sample_pool(tmp_path / "pool", n_images=9000, n_shards=1, with_lid=False)
    env = {**ENV, "METACLIP2_PROGRESS_INTERVAL": "0"}
    for workers in ("1", "2"):
        out = tmp_path / f"run{workers}"
        r = subprocess.run([sys.executable, "-c", "import sys; from metaclip2.cli.main import main; sys.exit(main())", "count",
                            "--metadata", str(demo_run["metadata"]), "--input", str(pool[0]), "--out", str(out), "--workers", workers],
                           capture_output=True, text=True, env=env)  # fmt: skip
        assert r.returncode == 0, r.stderr
        partial = [line for line in r.stderr.splitlines() if "0/1 shards" in line and "pairs/s" in line]
        if workers == "1":  # reported by the task itself while the one shard runs
            assert partial, r.stderr
        assert "1/1 shards" in r.stderr and "\r" not in r.stderr


def test_sweeping_p_with_english_needs_its_t_en(demo_run):
    from metaclip2.core.errors import ParameterError

    with pytest.raises(ParameterError, match="--t-en"):
        sweep(demo_run["run"], p=[0.05, 0.1])
    rows = sweep(demo_run["run"], [40], p=[0.05, 0.1]).rows
    assert [r["languages"]["en"]["t"] for r in rows] == [40, 40] and rows[0]["pairs"] < rows[1]["pairs"]
