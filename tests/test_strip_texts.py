"""``strip_texts``: alt-texts lose the white space at their ends (NBSP, U+3000 …) before LID and
matching, as the release does, through every door alike (here ``curate`` and ``annotate``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metaclip2.core.entries import read_metadata
from metaclip2.core.errors import ParameterError
from metaclip2.pipeline import CurationConfig, annotate, curate
from metaclip2.pipeline.stages.options import MatchOptions

from fixtures import make_images, make_metadata, write_jsonl

# (text, lang, entries matched stripped, entries matched as read); the matcher pads with ASCII
# spaces only, so an edge NBSP / ideographic / em space hides the word next to it.
CASES = [
    ("\xa0dog\u3000", "en", {"dog"}, set()),
    ("a red car\u2003", "en", {"red car"}, set()),
    ("\u3000Hund", "de", {"Hund"}, set()),
    ("\u3000猫\u3000", "zh", {"猫"}, {"猫"}),  # CJK entries are not padded
    ("  cat\t", "en", {"cat"}, {"cat"}),  # ASCII space and tab: the same either way
    ("big\xa0dog", "en", set(), set()),  # inside a text nothing changes
]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    d = tmp_path_factory.mktemp("strip")
    meta = make_metadata(d / "meta")
    images = make_images(5, 40, "im")
    images += [{"id": f"edge{i}", "texts": [{"text": t, "lang": lang}]} for i, (t, lang, _, _) in enumerate(CASES)]
    write_jsonl(d / "pool.jsonl", images)
    return d, meta, images


def _entries(meta: Path, lang: str) -> list[str]:
    return list(read_metadata(meta / f"{lang}.tsv"))


@pytest.mark.parametrize("strip", [True, False], ids=["strip", "as-read"])
def test_curate_and_annotate_agree(pool, strip):
    d, meta, images = pool
    # t_en above every count: every matched pair is kept, so the output lists every match
    res = curate(meta, [str(d / "pool.jsonl")], d / f"run-{strip}", CurationConfig(t_en=10**6, unit="pair", strip_texts=strip, progress=False))
    curated = {(r["id"], r["text_index"]): sorted(r["ids"]) for p in res.outputs for r in map(json.loads, Path(p).read_text().splitlines())}

    pairs = [(im["id"], k, t["text"], t["lang"]) for im in images for k, t in enumerate(im["texts"])]
    a = annotate([p[2] for p in pairs], [p[3] for p in pairs], metadata=meta, strip_texts=strip)
    annotated = {(p[0], p[1]): sorted(ids) for p, ids in zip(pairs, a.ids_lists()) if ids}
    assert curated == annotated

    for i, (text, lang, when_stripped, as_read) in enumerate(CASES):
        names = _entries(meta, lang)
        found = {names[j] for j in annotated.get((f"edge{i}", 0), [])}
        assert found == (when_stripped if strip else as_read), repr(text)


def test_option_is_a_checked_stage1_field():
    assert CurationConfig().strip_texts is True  # the release's behaviour by default
    with pytest.raises(ParameterError, match="strip_texts"):
        MatchOptions(strip_texts="no")
    assert MatchOptions(strip_texts=False).prepare_texts(["\xa0dog"]) == ["\xa0dog"]
