"""Page-view parsing rules (SPEC §1 source 4) on generated hourly files."""

from __future__ import annotations

import gzip
import math
import random
from collections import Counter

import pytest

from metaclip2.metadata.pageviews import PageviewStats, domain_language, read_pageviews, title_entries

LINES_A = [
    "en Main_Page 10 0",
    "en.m Main_Page 5 0",  # mobile folds into en
    "en.d Main_Page 1000 0",  # Wiktionary: excluded
    "en.b Main_Page 1000 0",  # Wikibooks: excluded
    "en.m.d Main_Page 1000 0",  # mobile Wiktionary: excluded
    "en.voy Main_Page 1000 0",  # Wikivoyage: excluded
    "commons.m Main_Page 1000 0",  # not a language
    "en Special:Search 99 0",  # namespace: dropped
    "en Talk:Foo 99 0",
    "en New_York_City 7 0",
    "en Zero_views 0 0",  # zero count: dropped
    "zh-yue 香港 3 0",  # domain uses '-', dumps use '_'
    "zh-yue.m 香港 2 0",
    "fr Paris 4 0",
    "this line is malformed ok",
    "en OnlyThreeFields 4",
    "en BadCount x 0",
    "en NegCount -3 0",
    "",
]
LINES_B = [
    "en New_York_City 8 0",  # summed over files (dates)
    "fr.m Paris 1 0",
    "en Café 2 0",
]


def _write(path, lines):
    with gzip.open(path, "wt", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def files(tmp_path):
    return [
        _write(tmp_path / "pageviews-20240501-000000.gz", LINES_A),
        _write(tmp_path / "pageviews-20240612-130000.gz", LINES_B),
    ]


def test_rules(files):
    stats = PageviewStats()
    views = read_pageviews(files, progress=False, stats=stats)
    assert set(views) == {"en", "zh_yue", "fr"}
    assert views["en"] == Counter({"Main Page": 15, "New York City": 15, "Café": 2})
    assert views["zh_yue"] == Counter({"香港": 5})
    assert views["fr"] == Counter({"Paris": 5})
    assert stats.files == 2
    assert stats.other_project == 5
    assert stats.namespace == 2
    assert stats.zero_views == 1
    assert stats.malformed == 5  # 5 fields, 3 fields, bad count, negative count, empty line
    assert stats.kept == 9


def test_language_filter_and_plain_text(tmp_path):
    p = tmp_path / "pageviews-20240501-010000"
    p.write_text("\n".join(LINES_A) + "\n", encoding="utf-8")
    views = read_pageviews(p, languages=["zh-yue"], progress=False)
    assert views == {"zh_yue": Counter({"香港": 5})}


def test_domain_language():
    assert domain_language("en") == "en"
    assert domain_language("en.m") == "en"
    assert domain_language("be-tarask.m") == "be_tarask"
    for other in ("en.d", "en.m.d", "en.b", "en.q", "en.s", "en.v", "en.n", "en.voy", "www.wd", "commons.m", "meta.m"):
        assert domain_language(other) is None, other


def test_title_entries_rank_fraction_cap():
    counts = Counter({"b": 5, "a": 5, "c": 9, "d": 1, "e": 3, "z": 0})
    assert title_entries(counts, top_fraction=1.0, max_entries=None) == ["c", "a", "b", "e", "d"]  # ties by title
    assert title_entries(counts, top_fraction=0.6, max_entries=None) == ["c", "a", "b"]  # ceil(0.6 * 5)
    assert title_entries(counts, top_fraction=0.5, max_entries=None) == ["c", "a", "b"]  # ceil(2.5)
    assert title_entries(counts, top_fraction=1.0, max_entries=2) == ["c", "a"]
    big = Counter({f"t{i}": i + 1 for i in range(100)})
    assert len(title_entries(big, top_fraction=0.29, max_entries=None)) == 29
    assert len(title_entries(big, top_fraction=0.07, max_entries=None)) == 7  # 0.07 * 100 = 7.000000000000001
    assert len(title_entries(big)) == 76  # paper's default 76 %


def test_title_entries_independent_of_input_order():
    rng = random.Random(0)
    items = [(f"t{rng.randrange(50)}x{i}", rng.randrange(1, 6)) for i in range(300)]
    ref = title_entries(Counter(dict(items)))
    for _ in range(3):
        rng.shuffle(items)
        assert title_entries(Counter(dict(items))) == ref
    # Plain reference: sort by views desc, then title.
    d = dict(items)
    n = min(math.ceil(len(d) * 0.76), 61_235)
    assert ref == sorted(d, key=lambda t: (-d[t], t))[:n]
