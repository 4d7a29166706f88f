"""The two matching engines: identical results on real lists and captions, one file format for
both, the engine chosen at load, in stores and in the pipeline, and honest memory estimates."""

from __future__ import annotations

import gzip
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

from metaclip2.core.entries import write_metadata
from metaclip2.core.errors import ParameterError
from metaclip2.matching.matcher import MATCHER_ENGINES, Matcher
from metaclip2.matching.store import MetadataStore
from metaclip2.matching.text import pad_entry, spacing

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "metaclip2" / "data" / "demo"
SHARED_NLTK = ROOT.parent / "shared" / "data" / "nltk_data"  # as conftest finds ../shared/data


def _corpus(lang: str) -> list[str]:
    with gzip.open(DEMO / "corpus" / f"{lang}.txt.gz", "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def _demo_list(lang: str) -> list[str]:
    return [w for w in (DEMO / "wordnet" / f"{lang}.txt").read_text(encoding="utf-8").splitlines() if w.strip()]


@pytest.fixture(scope="module")
def english():
    """WordNet 3.0's English lemmas (from ../shared/data) or, when absent, the demo list; real captions."""
    if SHARED_NLTK.is_dir():
        os.environ.setdefault("NLTK_DATA", str(SHARED_NLTK))
        from metaclip2.metadata.wordnet import wordnet_entries

        entries = list(wordnet_entries("en"))
    else:
        entries = _demo_list("en")
    # Entries the captions surely hold, in every padding class, and some that never match.
    entries = list(dict.fromkeys(entries + ["U.S", "St. Louis", "(band)", "東京", "tower 東京", "e.g", "cat's"]))
    captions = _corpus("en") + [c[: len(c) // 2] for c in _corpus("en")] + _corpus("zh")[:200] + ["", "a\x00b cat", "\ud800 dog"]
    return entries, captions


def _authors_loop(entries: list[str], captions: list[str]) -> list[list[int]]:
    """The release's way: one pyahocorasick automaton of every padded entry, iterated per caption."""
    import ahocorasick

    a = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for i, e in enumerate(entries):
        a.add_word(pad_entry(e), i)
    a.make_automaton()
    return [sorted({i for _, i in a.iter(spacing(c))}) for c in captions]


def _csr(m: Matcher, captions: list[str], batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    return m.match_many(captions, batch_size=batch_size)


def test_engines_give_identical_csr_on_a_real_list(english):
    entries, captions = english
    trie, ac = Matcher(entries, lang="en"), Matcher(entries, lang="en", engine="aho-corasick")
    assert trie.unmatchable == ac.unmatchable and len(trie.unmatchable) >= 3
    a, b = _csr(trie, captions), _csr(ac, captions, batch_size=333)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0][-1] > len(captions)  # the captions really match (more than one id per caption on average)
    expected = _authors_loop(entries, captions)
    assert [a[1][a[0][k] : a[0][k + 1]].tolist() for k in range(len(captions))] == expected
    assert [ac.match(c) for c in captions[:300]] == expected[:300]


@pytest.mark.parametrize("lang", ["zh", "ja", "th"])
def test_engines_agree_on_languages_written_without_spaces(lang):
    corpus = _corpus(lang)
    rng = random.Random(0)
    # The demo list, plus character n-grams of the captions: many CJK-like first characters.
    grams = [line[i : i + k] for line in corpus[:300] for k in (1, 2, 3) for i in range(0, len(line) - k + 1, 7)]
    entries = list(dict.fromkeys(e for e in _demo_list(lang) + grams + [str(i) for i in range(20)] if e.strip() and "\t" not in e))
    rng.shuffle(entries)
    trie, ac = Matcher(entries), Matcher(entries, engine="aho-corasick")
    a, b = _csr(trie, corpus), _csr(ac, corpus, batch_size=97)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and len(a[1]) > len(corpus)
    assert [a[1][a[0][k] : a[0][k + 1]].tolist() for k in range(0, len(corpus), 10)] == _authors_loop(entries, corpus[::10])


@pytest.mark.parametrize("saved_by", MATCHER_ENGINES)
def test_one_file_format_for_both_engines(tmp_path, english, saved_by):
    entries, captions = english
    entries = list(dict.fromkeys(entries[:20000] + entries[-7:]))
    path = tmp_path / f"{saved_by}.matcher"
    Matcher(entries, lang="en", engine=saved_by).save(path)
    other = tmp_path / "other.matcher"
    Matcher(entries, lang="en", engine=next(e for e in MATCHER_ENGINES if e != saved_by)).save(other)
    assert path.read_bytes() == other.read_bytes()  # data only: nothing of the engine is saved
    expected = _csr(Matcher(entries), captions)
    for engine in MATCHER_ENGINES:
        m = Matcher.load(path, entries=entries, lang="en", engine=engine)
        assert m.engine == engine and m.entries == entries and m.lang == "en"
        got = _csr(m, captions)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])


def test_unknown_engine_is_refused_before_anything(tmp_path):
    with pytest.raises(ParameterError, match="engine must be one of .*'aho-corasick'.*got 'ac'"):
        Matcher(["a"], engine="ac")
    with pytest.raises(ParameterError, match="engine must be one of"):
        Matcher.load(tmp_path / "missing.matcher", engine="AC")
    write_metadata(tmp_path / "en.tsv", ["a"], lang="en")
    with pytest.raises(ParameterError, match="engine must be one of"):
        MetadataStore(tmp_path, engine="regex")


def test_store_builds_and_loads_the_chosen_engine(tmp_path):
    lists = {"en": ["cat", "New York", "U.S"], "zh": ["東京", "大学"]}
    for lang, entries in lists.items():
        write_metadata(tmp_path / f"{lang}.tsv", entries, lang=lang)
    Matcher(lists["en"], lang="en").save(tmp_path / "en.matcher")  # zh is built from its .tsv
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the saved file is used, not rebuilt with a warning
        store = MetadataStore(tmp_path, engine="aho-corasick")
        for lang in lists:
            assert store.matcher(lang).engine == "aho-corasick"
    assert store.matcher("en").match("A cat in New York, U.S.") == [0, 1]
    assert store.matcher("zh").match("我在東京大学") == [0, 1]
    import pickle

    clone = pickle.loads(pickle.dumps(store))  # what worker processes get
    assert clone.engine == "aho-corasick" and clone.matcher("zh").engine == "aho-corasick"


_MEASURE = """
import gc, sys, random
from metaclip2.matching.matcher import Matcher
def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096
rng = random.Random(0)
words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 9))) for _ in range(60000)]
cjk = ["".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(rng.randint(2, 4))) for _ in range(10000)]
entries = list(dict.fromkeys(words[:20000] + [f"{a} {b}" for a, b in zip(words[20000:], words[30000:])] + cjk))
Matcher(entries[:50], engine="aho-corasick").match_many(["a b"])
gc.collect(); r0 = rss()
m = Matcher(entries, engine="aho-corasick")
del entries; gc.collect()
print(m.nbytes, rss() - r0)
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="measures resident memory through /proc (Linux)")
def test_aho_corasick_nbytes_is_what_the_process_grows_by():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", _MEASURE], capture_output=True, text=True, env=env, check=True)
    nbytes, grown = map(int, out.stdout.split())
    # The process's growth also holds the entry list, which nbytes counts too.
    assert 0.6 * grown < nbytes < 1.6 * grown, (nbytes, grown)
