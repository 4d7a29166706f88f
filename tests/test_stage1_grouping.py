"""Stage 1 grouped by language: one matcher phase per language, the same index bytes however grouped or spilled."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import metaclip2.pipeline.stages.budget as budget_module
import metaclip2.pipeline.stages.cache as cache
import metaclip2.pipeline.stages.match as match
from metaclip2.curation.counts import EntryCounts
from metaclip2.matching.matcher import Matcher
from metaclip2.matching.store import MetadataStore
from metaclip2.pipeline.run.config import CurationConfig
from metaclip2.pipeline.io.index import INDEX_SUFFIX, IndexWriter, iter_index
from metaclip2.pipeline.io.partition import LanguageRuns
from metaclip2.pipeline.stages.files import stage1_paths
from metaclip2.pipeline.stages.match import match_shard

from fixtures import make_metadata, random_texts

WORDS = {
    "en": "cat dog red car house tree sky the a big small on".split(),
    "de": "Hund Katze Haus Baum der die das klein".split(),
    "fr": "chat chien maison arbre le la".split(),
    "zh": list("猫狗房子大小的"),
    "pl": "kot pies dom i na".split(),  # no metadata of its own: "other"
}
META = {
    "en": ["cat", "dog", "red car", "house", "tree", "sky", "the"],
    "de": ["Hund", "Katze", "Haus", "Baum", "der"],
    "fr": ["chat", "chien", "maison", "le"],
    "zh": ["猫", "狗", "房子", "大"],
    "other": ["kot", "pies", "dom"],
}


def _world(tmp_path: Path, seed: int, n_images: int) -> tuple[Path, Path]:
    meta = make_metadata(tmp_path / "meta", META)
    rnd = random.Random(seed)
    with open(tmp_path / "in.jsonl", "w", encoding="utf-8") as f:
        for i in range(n_images):
            image = {"id": f"im{i}", "texts": random_texts(rnd, WORDS, max_texts=4, max_words=5)}
            if rnd.random() < 0.3:
                image["url"] = f"http://x/{i}"
            f.write(json.dumps(image, ensure_ascii=False) + "\n")
    return meta, tmp_path / "in.jsonl"


def _reference_index(meta: Path, shard: Path, out: Path) -> bytes:
    """The index written row by row in input order with a plain per-text match (no grouping)."""
    from metaclip2.pipeline.io.readers import read_shard

    matchers = {lang: Matcher(entries) for lang, entries in META.items()}
    path = out / ("ref" + INDEX_SUFFIX)
    with IndexWriter(path) as w:
        for n, image in enumerate(read_shard(shard)):
            for k, (text, given) in enumerate(zip(image.texts, image.langs)):
                lang = given if given in META else "other"
                ids = matchers[lang].match(text)
                if ids:
                    w.write(n, image.id, k, lang, sorted(ids), text, image.extra or None)
    return path.read_bytes()


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "in.stats.json"}


def test_grouping_and_spilling_give_the_reference_bytes(tmp_path, monkeypatch):
    meta, shard = _world(tmp_path, 0, 1500)
    outs = {}
    spills = []
    real_spill = LanguageRuns._spill

    def counting_spill(self):
        spills.append(1)
        real_spill(self)

    monkeypatch.setattr(LanguageRuns, "_spill", counting_spill)
    for budget in (1 << 30, 50_000, 1):  # all in memory; a few spills; a spill at every row
        # a worker budget below the fixed reserve leaves the rows their minimum: set it to `budget`
        monkeypatch.setattr(budget_module, "_MIN_ROWS", budget)
        monkeypatch.setattr(match, "_MATCH_BATCH", 7 if budget == 1 else 8192)
        out = tmp_path / f"out-{budget}"
        out.mkdir()
        stats = match_shard(shard, meta, out, "in", memory_per_worker=8 << 30 if budget == 1 << 30 else 1)
        outs[budget] = _files(out)
        assert not [p for p in out.iterdir() if ".tmp" in p.name]  # temporary runs removed
        assert stats.matched == sum(len(b) for b in iter_index(stage1_paths(out, "in")["index"]))
    assert spills  # the small budgets did spill
    assert outs[1 << 30] == outs[50_000] == outs[1]
    assert outs[1]["in" + INDEX_SUFFIX] == _reference_index(meta, shard, tmp_path)


def test_each_language_is_matched_in_one_phase(tmp_path, monkeypatch):
    meta, shard = _world(tmp_path, 1, 3000)
    calls: list[str] = []
    real = MetadataStore.matcher

    def recording(self, lang):
        calls.append(lang)
        return real(self, lang)

    monkeypatch.setattr(MetadataStore, "matcher", recording)
    monkeypatch.setattr(match, "_CHUNK", 100)  # many LID chunks: the old code matched every language in each
    monkeypatch.setattr(match, "_MATCH_BATCH", 50)
    cache.clear()
    match_shard(shard, meta, tmp_path, "in")
    assert sorted(set(calls)) == sorted(META)
    assert calls == sorted(set(calls))  # one call per language: asked once per phase, never kept across phases
    counts = EntryCounts.load(stage1_paths(tmp_path, "in")["counts"])
    assert sorted(counts) == sorted(META)


def test_matcher_memory_reaches_stores_that_take_it(tmp_path, monkeypatch):
    meta, shard = _world(tmp_path, 2, 50)
    seen = {}

    class BoundedStore(MetadataStore):
        def __init__(self, directory, matcher_memory: int = 1 << 30, **kwargs):
            super().__init__(directory, **kwargs)
            seen["matcher_memory"] = matcher_memory

    import metaclip2.matching.store as store_module

    monkeypatch.setattr(store_module, "MetadataStore", BoundedStore)
    cache.clear()
    match_shard(shard, meta, tmp_path, "in", matcher_memory=123_456)
    assert seen == {"matcher_memory": 123_456}
    monkeypatch.undo()
    cache.clear()
    plain = tmp_path / "plain"
    plain.mkdir()
    # the real store, with a budget below one matcher: the same index
    match_shard(shard, meta, plain, "in", matcher_memory=99)
    assert (plain / ("in" + INDEX_SUFFIX)).read_bytes() == (tmp_path / ("in" + INDEX_SUFFIX)).read_bytes()


def test_matcher_memory_config_is_checked_and_not_recorded():
    assert CurationConfig(matcher_memory=2**30).matcher_memory == 2**30
    assert CurationConfig(matcher_memory="512M").matcher_memory == 512 * 2**20  # as --matcher-memory 512M gives it
    assert "matcher_memory" not in {k for s in (1, 2, 3) for k in CurationConfig(matcher_memory=5).section(s)}
    with pytest.raises(ValueError, match="matcher_memory"):
        CurationConfig(matcher_memory=-1)
    with pytest.raises(ValueError, match="matcher_memory"):
        CurationConfig(matcher_memory=1.5)


def test_phase_order_starts_with_the_matchers_a_bounded_cache_holds(tmp_path):
    meta, shard = _world(tmp_path, 3, 400)
    store = MetadataStore(meta, matcher_memory=1)  # holds one matcher: the last one used
    cache.clear()
    langs = ["de", "en", "fr", "other", "zh"]
    assert match._phase_order(langs, store) == langs  # nothing held yet
    store.matcher("fr")
    assert match._phase_order(langs, store) == ["fr", "de", "en", "other", "zh"]
    # the order changes nothing in the outputs
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    match_shard(shard, meta, a, "in", matcher_memory=1)
    match_shard(shard, meta, b, "in", matcher_memory=1)  # starts with "zh", held since the first run
    assert _files(a) == _files(b)


def test_memory_per_worker_bounds_buffered_rows_and_changes_no_byte(tmp_path, monkeypatch):
    meta, shard = _world(tmp_path, 4, 3000)
    peaks: dict[int, int] = {}
    real_add = LanguageRuns.add

    def watching_add(self, row):
        real_add(self, row)
        peaks[id(self)] = max(peaks.get(id(self), 0), self._bytes)  # bytes held in memory after the add (and any spill)
        budgets[id(self)] = self._budget

    budgets: dict[int, int] = {}
    monkeypatch.setattr(LanguageRuns, "add", watching_add)
    spilled = []
    real_spill = LanguageRuns._spill
    monkeypatch.setattr(LanguageRuns, "_spill", lambda self: (spilled.append(1), real_spill(self)))
    outs = {}
    for size in ("8GiB", "1GiB", "100MiB", "1MiB"):
        peaks.clear()
        budgets.clear()
        spilled.clear()
        out = tmp_path / f"out-{size}"
        out.mkdir()
        cache.clear()
        match_shard(shard, meta, out, "in", memory_per_worker=size)
        outs[size] = _files(out)
        rows = budget_module.WorkerBudget.of(match.MatchOptions(memory_per_worker=size)).rows
        assert set(budgets.values()) == {rows}  # both groupings get the rows' share of the budget
        assert max(peaks.values()) <= rows
        if size == "1MiB":
            assert spilled  # 3,000 images of rows do not fit in the minimum share: they went to disk
        if size == "8GiB":
            assert not spilled
    assert len({json.dumps(sorted((k, v.hex()) for k, v in o.items())) for o in outs.values()}) == 1


def test_memory_per_worker_is_split_and_checked():
    big = budget_module.WorkerBudget.split(8 << 30)
    small = budget_module.WorkerBudget.split(512 << 20)
    assert small.rows < big.rows and small.matchers < big.matchers
    assert 2 * small.rows + small.matchers + small.lid <= 512 << 20
    assert budget_module.WorkerBudget.split(1 << 30, matcher_memory=5).matchers == 5  # an explicit cache size wins
    assert CurationConfig(memory_per_worker="1.5GiB").memory_per_worker == 3 << 29
    assert "memory_per_worker" not in {k for s in (1, 2, 3) for k in CurationConfig().section(s)}
    for bad in (0, -1, "lots"):
        with pytest.raises(ValueError, match="memory_per_worker"):
            CurationConfig(memory_per_worker=bad)
