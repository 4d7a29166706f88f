"""Unicode character classes shared by metadata building and matching.

Two classes matter to the recipe ([Matching rules][matching-rules], [Filters on every source][filters-on-every-source]):

* **punctuation**: ASCII punctuation, the full-width/CJK marks listed by the
  paper, and every character whose Unicode category is ``P*``;
* **CJK-like**: punctuation, or a character of the CJK (Han, kana, Bopomofo,
  CJK symbols, full-width forms), Thai, Lao, Burmese (Myanmar), Khmer or
  Tibetan blocks. Such characters do not need a space to separate them from
  their neighbours, so entries that start or end with them are not padded.

Hangul is deliberately *not* CJK-like: Korean is written with spaces, its
metadata comes from whitespace tokens, and it is matched with word boundaries.
"""

from __future__ import annotations

import string
import unicodedata
from functools import lru_cache

__all__ = ["ADDITIONAL_PUNCTUATION", "is_punctuation", "is_cjk_like", "is_no_space_script", "only_punctuation"]

#: Full-width and CJK marks named by the paper, on top of ASCII punctuation.
ADDITIONAL_PUNCTUATION = frozenset("，。、；：？！“”‘’（）【】《》〈〉「」『』～—¿")

_ASCII_PUNCTUATION = frozenset(string.punctuation)

# Inclusive code point ranges of scripts written without spaces between words.
_NO_SPACE_RANGES = (
    (0x0E00, 0x0E7F),  # Thai
    (0x0E80, 0x0EFF),  # Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x2E80, 0x2FDF),  # CJK radicals supplement, Kangxi radicals
    (0x2FF0, 0x2FFF),  # ideographic description characters
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x3190, 0x31FF),  # Kanbun, Bopomofo ext., CJK strokes, Katakana ext.
    (0x3200, 0x33FF),  # enclosed CJK letters, CJK compatibility
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA9E0, 0xA9FF),  # Myanmar extended-B
    (0xAA60, 0xAA7F),  # Myanmar extended-A
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # half-width and full-width forms
    (0x1B000, 0x1B16F),  # kana supplement / extended
    (0x20000, 0x3134F),  # CJK extensions B-G, compatibility supplement
)


@lru_cache(maxsize=65536)
def is_punctuation(ch: str) -> bool:
    """Whether the single character `ch` is punctuation (see module docstring).

    Examples
    --------
    >>> from metaclip2.core.charclass import is_punctuation
    >>> [is_punctuation(c) for c in ",。¿a"]
    [True, True, True, False]
    """
    return ch in _ASCII_PUNCTUATION or ch in ADDITIONAL_PUNCTUATION or unicodedata.category(ch).startswith("P")


@lru_cache(maxsize=65536)
def is_no_space_script(ch: str) -> bool:
    """Whether `ch` belongs to a CJK, Thai, Lao, Burmese, Khmer or Tibetan block.

    Examples
    --------
    >>> from metaclip2.core.charclass import is_no_space_script
    >>> [is_no_space_script(c) for c in "東กa한"]
    [True, True, False, False]
    """
    cp = ord(ch)
    for lo, hi in _NO_SPACE_RANGES:
        if cp < lo:
            return False
        if cp <= hi:
            return True
    return False


def is_cjk_like(ch: str) -> bool:
    """Whether an entry starting/ending with `ch` needs no space on that side ([Matching rules][matching-rules]).

    See Also
    --------
    - [`pad_entry`][metaclip2.matching.text.pad_entry] : Pads an entry on its non-CJK-like sides.

    Examples
    --------
    >>> from metaclip2.core.charclass import is_cjk_like
    >>> [is_cjk_like(c) for c in "東กa한、"]
    [True, True, False, False, True]
    """
    return is_no_space_script(ch) or is_punctuation(ch)


def only_punctuation(s: str) -> bool:
    """Whether the non-empty string `s` consists of punctuation and white space only.

    Examples
    --------
    >>> from metaclip2.core.charclass import only_punctuation
    >>> only_punctuation("« ! »"), only_punctuation("a!")
    (True, False)
    """
    return all(is_punctuation(c) or c.isspace() for c in s)
