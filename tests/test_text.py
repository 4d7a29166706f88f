"""spacing(), pad_entry() and the character classes they rest on (SPEC §2)."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaclip2.core.charclass import ADDITIONAL_PUNCTUATION, is_cjk_like, is_no_space_script, is_punctuation, only_punctuation
from metaclip2.matching.text import pad_entry, spacing

# Written from the SPEC text, independently of the library.
SPEC_WRAPPED = ",.;:?!`"
SPEC_SPACED = "\t\n\r"


def spec_spacing(text: str) -> str:
    out = [" "]
    for ch in text:
        if ch in SPEC_WRAPPED:
            out.append(" " + ch + " ")
        elif ch in SPEC_SPACED:
            out.append(" ")
        else:
            out.append(ch)
    out.append(" ")
    return "".join(out)


# Unicode block ranges of the scripts SPEC §2 names (CJK: the ideograph, kana, symbol and full-width blocks).
SPEC_BLOCKS = {
    "thai": (0x0E00, 0x0E7F),
    "lao": (0x0E80, 0x0EFF),
    "tibetan": (0x0F00, 0x0FFF),
    "myanmar": (0x1000, 0x109F),
    "khmer": (0x1780, 0x17FF),
    "cjk symbols": (0x3000, 0x303F),
    "hiragana": (0x3040, 0x309F),
    "katakana": (0x30A0, 0x30FF),
    "cjk unified": (0x4E00, 0x9FFF),
    "cjk ext a": (0x3400, 0x4DBF),
    "cjk ext b": (0x20000, 0x2A6DF),
    "full-width": (0xFF00, 0xFFEF),
}


def spec_cjk_like(ch: str) -> bool:
    cp = ord(ch)
    if any(lo <= cp <= hi for lo, hi in SPEC_BLOCKS.values()):
        return True
    return ch in string.punctuation or ch in ADDITIONAL_PUNCTUATION or unicodedata.category(ch).startswith("P")


def spec_pad(entry: str) -> str:
    return ("" if spec_cjk_like(entry[0]) else " ") + entry + ("" if spec_cjk_like(entry[-1]) else " ")


# --- spacing ---------------------------------------------------------------------------


def test_spacing_examples():
    assert spacing("A cat, on a mat.") == " A cat ,  on a mat .  "
    assert spacing("") == "  "
    assert spacing("a\tb\nc\rd") == " a b c d "
    assert spacing("\r\n") == "    "
    assert spacing("`x`") == "  ` x `  "
    assert spacing("...") == "  .  .  .  "
    assert spacing("?!;:") == "  ?  !  ;  :  "
    # Only the seven marks are wrapped: brackets, quotes, hash and hyphen are left alone.
    assert spacing("(it's) #1 - x") == " (it's) #1 - x "
    # No case folding, no Unicode normalisation, other white space untouched.
    decomposed = "Cafe\u0301"
    assert spacing(decomposed) == " " + decomposed + " "
    assert spacing("ABC\u00a0\u3000\x0b") == " ABC\u00a0\u3000\x0b "
    # Full-width marks are not wrapped (SPEC lists only ASCII ones).
    assert spacing("東京，大阪。") == " 東京，大阪。 "


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab 東ก,.;:?!`()'#-\t\n\r\x00\u3000\xa0") + ["\ud800", "𠀀"]), max_size=30))
def test_spacing_matches_spec(text):
    assert spacing(text) == spec_spacing(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_spacing_matches_spec_any_unicode(text):
    assert spacing(text) == spec_spacing(text)


# --- pad_entry ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, padded",
    [
        ("cat", " cat "),
        ("New York", " New York "),
        ("New York.", " New York."),
        ("東京", "東京"),
        ("東京 tower", "東京 tower "),
        ("tower 東京", " tower 東京"),
        ("กขค", "กขค"),  # Thai
        ("ສະບາຍ", "ສະບາຍ"),  # Lao
        ("ကို", "ကို"),  # Burmese
        ("ខ្មែរ", "ខ្មែរ"),  # Khmer
        ("བོད", "བོད"),  # Tibetan
        ("ひらがな", "ひらがな"),
        ("カタカナ", "カタカナ"),
        ("𠀀", "𠀀"),  # CJK extension B (outside the BMP)
        ("한국어", " 한국어 "),  # Hangul is written with spaces
        ("Москва", " Москва "),
        ("(foo)", "(foo)"),
        ("#tag", "#tag "),
        ("rock'n'roll", " rock'n'roll "),
        ("-x-", "-x-"),
        ("¿qué", "¿qué "),
        ("「東京」", "「東京」"),
        ("1", " 1 "),
        (" x", "  x "),  # a leading space is not CJK-like: padded again
        ("x  y", " x  y "),
        ("東", "東"),
        (".", "."),
    ],
)
def test_pad_entry_examples(entry, padded):
    assert pad_entry(entry) == padded


def test_pad_entry_rejects_empty():
    with pytest.raises(ValueError):
        pad_entry("")


ENTRY_CHARS = list("aZ 1東京ก한,.()'#-`") + ["𠀀", "\u3000", "\xa0", "ສ", "ក", "བ", "က", "ア", "，"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(ENTRY_CHARS), min_size=1, max_size=8))
def test_pad_entry_matches_spec(entry):
    assert pad_entry(entry) == spec_pad(entry)


# --- character classes ---------------------------------------------------------------------


@pytest.mark.parametrize("name, block", sorted(SPEC_BLOCKS.items()))
def test_spec_blocks_are_no_space_scripts(name, block):
    lo, hi = block
    for cp in (lo, (lo + hi) // 2, hi):
        ch = chr(cp)
        assert is_no_space_script(ch), (name, hex(cp))
        assert is_cjk_like(ch), (name, hex(cp))


@pytest.mark.parametrize("ch", list("aZzé0 \t") + ["한", "Ж", "ب", "א", "ß", "\xa0", "\u0301", "\U0001f600"])
def test_not_cjk_like(ch):
    assert not is_cjk_like(ch)
    assert not is_no_space_script(ch)


def test_punctuation_class():
    for ch in string.punctuation:
        assert is_punctuation(ch) and is_cjk_like(ch), ch
    for ch in ADDITIONAL_PUNCTUATION:
        assert is_punctuation(ch) and is_cjk_like(ch), ch
    for ch in "«»„¡§":  # Unicode P* categories
        assert is_punctuation(ch), ch
    for ch in "aZ0 東한\t":
        assert not is_punctuation(ch), ch
    assert only_punctuation("...!?") and only_punctuation("（）【】") and only_punctuation("- -")
    assert not only_punctuation("a.") and not only_punctuation("東。")


@settings(max_examples=300, deadline=None)
@given(st.characters())
def test_cjk_like_agrees_with_spec_on_named_blocks(ch):
    # On the blocks SPEC names and on punctuation, the library and the SPEC reading agree.
    if spec_cjk_like(ch):
        assert is_cjk_like(ch)
    # Letters and digits are never punctuation: outside the named blocks they need a boundary.
    if unicodedata.category(ch)[0] in "LN":
        assert not is_punctuation(ch)
        assert is_cjk_like(ch) == is_no_space_script(ch)
