"""WordNet / OMW source against the real WordNet 3.0 + OMW data (tests/conftest.py `nltk_data`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

from metaclip2.metadata import wordnet as wnmod
from metaclip2.metadata.wordnet import WORDNET_LANGUAGES, clean_lemma, omw_corpus_name, wordnet_entries

ROOT = Path(__file__).resolve().parent.parent

# Distinct raw lemma names per OMW language (nltk_data README table, nltk 3.10.4 / omw-2.0).
README_DISTINCT = {"ita": 41855, "heb": 5325, "fra": 55347, "cmn": 61525, "pol": 45387, "nld": 43077, "cat": 67498}


def test_table_is_the_papers():
    assert len(WORDNET_LANGUAGES) == 31
    assert WORDNET_LANGUAGES["en"] == "eng" and WORDNET_LANGUAGES["zh"] == "cmn" and WORDNET_LANGUAGES["no"] == "nob"
    assert len(set(WORDNET_LANGUAGES.values())) == 31


def test_clean_lemma():
    assert clean_lemma("New_York") == "New York"
    assert clean_lemma("一+二") == "一二"
    assert clean_lemma("+") == ""


def test_english_counts_and_order(nltk_data):
    from nltk.corpus import wordnet as wn

    synsets = wnmod._english_synsets()
    assert len(synsets) == 117_659
    assert dict(Counter(pos for pos, _, _ in synsets)) == {"n": 82115, "v": 13767, "a": 7463, "s": 10693, "r": 3621}
    # The fast lemma-field reader agrees with nltk's own Synset objects (a spread sample;
    # the full comparison was run once and takes ~15 s).
    for pos, offset, names in synsets[::97]:
        ss = wn.synset_from_pos_and_offset(pos, offset)
        assert (ss.pos(), ss.offset(), ss.lemma_names()) == (pos, offset, names)
    keys = [(pos, o) for pos, o, _ in synsets]
    assert keys == sorted(keys, key=lambda r: ("arnv".index(r[0].replace("s", "a")), r[1]))
    # Plain reference: every lemma name of every synset, first occurrence wins.
    ref = list(dict.fromkeys(n.replace("_", " ") for _, _, names in synsets for n in names))
    entries = wordnet_entries("en")
    assert entries == ref
    assert len(entries) == 148_730
    assert entries[:4] == ["able", "unable", "abaxial", "dorsal"]  # able.a.01, unable.a.01, abaxial.a.01 (dorsal)
    assert "New York" in entries and "Canis familiaris" in entries and not any("_" in e or "(" in e[-3:] for e in entries)
    heads = wordnet_entries("en", head_word_only=True)
    assert heads == list(dict.fromkeys(names[0].replace("_", " ") for _, _, names in synsets))
    assert len(heads) == 87_379
    assert heads[:3] == ["able", "unable", "abaxial"]
    assert wn.synset("dog.n.01").lemma_names()[0] == "dog" and "dog" in heads
    assert wordnet_entries("eng") == entries  # nltk codes are accepted too


def _tab_reference(zip_path: Path, member: str, code: str) -> set[str]:
    names = set()
    with zipfile.ZipFile(zip_path) as z:
        for line in z.read(member).decode("utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1] == f"{code}:lemma":
                names.add(parts[2].strip())
    return names


@pytest.mark.parametrize(
    "lang,code,member,expected",
    [
        # GAP!/PSEUDOGAP! dropped: 41,855 - 2 and 5,325 - 2.
        ("it", "ita", "ita/wn-data-ita.tab", 41_853),
        ("he", "heb", "heb/wn-data-heb.tab", 5_323),
        # A lone "+" lemma becomes empty and is dropped.
        ("fr", "fra", "fra/wn-data-fra.tab", 55_346),
        # cow marks word boundaries with "+" (e.g. 一+二); removing it merges 425 names.
        ("zh", "cmn", "cow/wn-data-cmn.tab", 61_100),
        ("pl", "pol", "pol/wn-data-pol.tab", 45_387),
        ("nl", "nld", "nld/wn-data-nld.tab", 43_077),
    ],
)
def test_omw_counts(nltk_data, lang, code, member, expected):
    from nltk.corpus import wordnet as wn

    entries = wordnet_entries(lang)
    assert len(entries) == len(set(entries)) == expected
    raw = {n for ss in wn.all_synsets(lang=code) for n in ss.lemma_names(code)}
    assert len(raw) == README_DISTINCT[code]
    assert "GAP!" not in entries and "PSEUDOGAP!" not in entries
    assert not any("_" in e or "+" in e or e != e.strip() or not e for e in entries)
    # Independent reference: the tab file itself, cleaned the same way.
    name = omw_corpus_name()
    ref = {clean_lemma(n.replace(" ", "_")) for n in _tab_reference(nltk_data / "corpora" / f"{name}.zip", f"{name}/{member}", code)}
    ref -= {"GAP!", "PSEUDOGAP!", ""}
    assert set(entries) == ref


def test_omw_order_is_sorted_within_synsets(nltk_data):
    from nltk.corpus import wordnet as wn

    entries = wordnet_entries("fr")
    synsets = sorted(wn.all_synsets(lang="fra"), key=lambda s: ({"a": 0, "s": 0, "r": 1, "n": 2, "v": 3}[s.pos()], s.offset()))
    ref = list(dict.fromkeys(clean_lemma(n) for ss in synsets for n in sorted(ss.lemma_names("fra"))))
    ref = [e for e in ref if e]
    assert entries == ref
    # OMW was registered once only (a second add_omw doubles every language).
    assert len(wn.langs()) == len(set(wn.langs())) and "fra_fra" not in wn.langs()


def test_missing_language_warns_and_is_empty(nltk_data):
    if omw_corpus_name() == "omw-2.0":
        missing = ["es", "fi", "ja", "ro", "th"]
    else:
        missing = ["id", "fi", "ja", "ro", "th"]
    for lang in missing:
        with pytest.warns(UserWarning, match="not in the installed"):
            assert wordnet_entries(lang) == []
    assert wordnet_entries("de") == []  # no wordnet in the table: empty, no warning needed
    with pytest.raises(ValueError):
        wordnet_entries("fr", head_word_only=True)


def test_missing_corpus_names_the_download(tmp_path):
    env = dict(os.environ, NLTK_DATA=str(tmp_path), HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    code = (
        "from metaclip2.metadata.wordnet import wordnet_entries, WordNetDataError\n"
        "try:\n    wordnet_entries('en')\nexcept WordNetDataError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "ERR" in out.stdout, out.stderr
    assert "nltk.download('wordnet')" in out.stdout


def test_missing_omw_names_the_download(nltk_data, tmp_path):
    data = tmp_path / "nltk_data"
    shutil.copytree(nltk_data / "corpora" / "wordnet", data / "corpora" / "wordnet")
    env = dict(os.environ, NLTK_DATA=str(data), HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    code = (
        "from metaclip2.metadata.wordnet import wordnet_entries, WordNetDataError, omw_corpus_name\n"
        "try:\n    wordnet_entries('fr')\nexcept WordNetDataError as e:\n    print('ERR', omw_corpus_name(), e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "ERR" in out.stdout, out.stderr
    name = out.stdout.split()[1]
    assert name in ("omw-2.0", "omw-1.4")
    assert f"nltk.download('{name}')" in out.stdout
