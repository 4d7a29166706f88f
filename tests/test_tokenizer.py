"""Tokenisation into bigram chains (SPEC §1), with the real segmenters."""

from __future__ import annotations

import builtins
import importlib.util

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip2.core.charclass import is_no_space_script, is_punctuation
from metaclip2.metadata import tokenizer as T
from metaclip2.metadata.tokenizer import SegmenterUnavailable, is_no_space_language, tokenize


def reference_spaced(text: str) -> list[list[str]]:
    """Plain-loop reference of the spaced-script rules (HTML tags assumed absent)."""
    chains, chain, word = [], [], ""
    for ch in text + "\n":
        if ch.isspace() or is_punctuation(ch) or is_no_space_script(ch):
            if word:
                chain.append(word)
                word = ""
            if ch == "\n" or (is_punctuation(ch)):
                if chain:
                    chains.append(chain)
                chain = []
            elif not ch.isspace():
                chain.append(ch)
        else:
            word += ch
    return chains


def test_spaced_rules() -> None:
    assert tokenize("Hello, <b>New</b> York\nTimes", "en") == [["Hello"], ["New", "York"], ["Times"]]
    assert tokenize("東京は ok ไทย", "en") == [["東", "京", "は", "ok", "ไ", "ท", "ย"]]
    assert tokenize("l'homme (1999) — vu", "fr") == [["l"], ["homme"], ["1999"], ["vu"]]
    assert tokenize("Слово «в» кавычках", "ru") == [["Слово"], ["в"], ["кавычках"]]
    assert tokenize("a，b。c", "en") == [["a"], ["b"], ["c"]]
    assert tokenize("", "en") == []


ALPHABET = st.sampled_from(list("ab Zé9 \n\t.,;'\"()-—，。「東京ไทยက") + ["\u00a0", "\u3000", "!", "?"])


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_spaced_matches_reference(text: str) -> None:
    assert tokenize(text, "en") == reference_spaced(text)


def test_regex_classes_agree_with_charclass() -> None:
    _, token_re = T._spaced_regexes()
    for cp in list(range(0, 0x3000)) + list(range(0x3000, 0x10000, 7)) + [0x20000, 0x1F600, 0xE0001]:
        ch = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or ch.isspace():
            continue
        m = token_re.match(ch)
        if is_punctuation(ch):
            assert m and m.group(1) == ch, hex(cp)
        elif is_no_space_script(ch):
            assert m and m.group(2) == ch, hex(cp)
        else:
            assert m and m.group(3) == ch, hex(cp)


def test_language_classes() -> None:
    for lang in ["zh", "zh-yue", "zh_classical", "ja", "th", "lo", "km", "my", "bo", "dz", "ryu"]:
        assert is_no_space_language(lang), lang
    for lang in ["en", "zh_min_nan", "ko", "ru", "vi"]:
        assert not is_no_space_language(lang), lang
    # zh_min_nan is written in Latin letters (Pe̍h-ōe-jī)
    assert tokenize("Tâi-oân sī chi̍t ê tó", "zh_min_nan") == [["Tâi"], ["oân", "sī", "chi̍t", "ê", "tó"]]


SENTENCES = {
    "zh": ("我爱北京天安门。中华人民共和国成立于1949年", [["我", "爱", "北京", "天安门"], ["中华人民共和国", "成立", "于", "1949", "年"]]),
    "ja": ("東京都は日本の首都です。今日は良い天気", [["東京", "都", "は", "日本", "の", "首都", "です"], ["今日", "は", "良い", "天気"]]),
    "th": ("ภาษาไทยเป็นภาษาราชการของประเทศไทย", [["ภาษาไทย", "เป็น", "ภาษาราชการ", "ของ", "ประเทศ", "ไทย"]]),
    "lo": ("ພາສາລາວເປັນພາສາທາງການຂອງປະເທດລາວ", [["ພາສາລາວ", "ເປັນ", "ພາສາ", "ທາງການ", "ຂອງ", "ປະເທດລາວ"]]),
    "km": ("ភាសាខ្មែរគឺជាភាសាផ្លូវការរបស់ប្រទេសកម្ពុជា", [["ភាសា", "ខ្មែរ", "គឺជា", "ភាសា", "ផ្លូវការ", "របស់", "ប្រទេស", "កម្ពុជា"]]),
}
MODULES = {"zh": "jieba", "ja": "sudachipy", "th": "pythainlp", "lo": "laonlp", "km": "khmernltk"}


@pytest.mark.slow
@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_segmenter_real_sentence(lang: str) -> None:
    if importlib.util.find_spec(MODULES[lang]) is None:
        pytest.skip(f"{MODULES[lang]} not installed")
    text, expect = SENTENCES[lang]
    chains = tokenize(text, lang)
    assert chains == expect
    assert "".join("".join(c) for c in chains) == text.replace("。", "")  # no character lost


def test_burmese_syllables() -> None:
    chains = tokenize("မြန်မာဘာသာစကားသည် မြန်မာနိုင်ငံ၏ ရုံးသုံးဘာသာစကား ဖြစ်သည်။", "my")
    assert chains == [
        ["မြန်", "မာ", "ဘာ", "သာ", "စ", "ကား", "သည်", "မြန်", "မာ", "နိုင်", "ငံ"],
        ["ရုံး", "သုံး", "ဘာ", "သာ", "စ", "ကား", "ဖြစ်", "သည်"],
    ]
    # a stacked consonant (virama) stays inside its syllable
    assert tokenize("ကမ္ဘာ", "my") == [["ကမ္ဘာ"]]


def test_tibetan_needs_botok_data(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(T.BOTOK_PACK_ENV, str(tmp_path / "absent"))
    T._LOADED.pop("bo", None)
    if importlib.util.find_spec("botok") is None:
        with pytest.raises(SegmenterUnavailable, match="botok"):
            tokenize("བོད་ཡིག", "bo")
        return
    with pytest.raises(SegmenterUnavailable, match=T.BOTOK_PACK_ENV):
        tokenize("བོད་ཡིག", "bo")


def test_segmented_punctuation_and_brackets(monkeypatch) -> None:
    fake = {"zz": lambda text: ["甲", "「乙", "丙", "(丁", "戊)", "己", " ", "庚", "（辛）"]}
    monkeypatch.setattr(T, "NO_SPACE_LANGUAGES", T.NO_SPACE_LANGUAGES | {"zz"})
    monkeypatch.setitem(T._LOADED, "zz", fake["zz"])
    # "「乙" starts with punctuation, "(丁" / "戊)" are unbalanced: skipped, chain broken;
    # white space is skipped without breaking; balanced "（辛）" starts with punctuation.
    assert tokenize("x\ny", "zz") == [["甲"], ["丙"], ["己", "庚"], ["甲"], ["丙"], ["己", "庚"]]
    assert not T._unbalanced("a(b)c") and T._unbalanced("a)b(") and T._unbalanced("《書")


def test_missing_segmenter_is_a_clear_error(monkeypatch) -> None:
    real_import = builtins.__import__

    def failing(name, *args, **kwargs):
        if name.split(".")[0] in ("jieba", "pythainlp"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing)
    monkeypatch.setattr(T, "_LOADED", {})
    import importlib

    monkeypatch.setattr(importlib, "import_module", lambda name, package=None: failing(name))
    for lang, package in [("zh", "jieba"), ("th", "pythainlp")]:
        with pytest.raises(SegmenterUnavailable, match=r"pip install 'metaclip2\[segment\]'") as info:
            tokenize("文字", lang)
        assert package in str(info.value) and "never falls back" in str(info.value)
        assert isinstance(info.value, ImportError)
