"""Which script(s) a text is written in: its letters counted per Unicode script.

Used by the script-consistency step of language identification
([`metaclip2.matching.lid.script_check`][metaclip2.matching.lid.script_check]). Only letters of the scripts that lid.176
labels are written in are counted ([`SCRIPTS`][metaclip2.matching.scripts.SCRIPTS], ISO 15924 codes, see
``languages.LID176_SCRIPTS``); characters of the Common and Inherited scripts (digits,
punctuation, spaces, combining marks, the prolonged-sound mark ``ー``) and of other scripts
are ignored. A character's script is its Unicode ``Script`` property, read once from the
``regex`` module's ``\\p{Script=…}`` classes into a code point → column table, so a batch of
texts is classified with a few numpy operations rather than a regex per text and script.

Two columns are composites. Han letters count as ``Jpan`` in a text with any Hiragana or
Katakana (kana and Han together), and as ``Hani`` otherwise: kana only occur in Japanese,
while Han without kana is read as Chinese. Bopomofo counts as ``Hani``.

A script is **dominant** in a text when its weighted letter count is at least
[`DOMINANT_SHARE`][metaclip2.matching.scripts.DOMINANT_SHARE] of the text's largest one. Han, kana and Hangul characters weigh
[`SYLLABIC_WEIGHT`][metaclip2.matching.scripts.SYLLABIC_WEIGHT] Latin letters each, since one of them carries about a syllable or
a word: ``"iPhone 15 Pro Max 手机壳 透明"`` (12 Latin letters, 5 Han) has both Latin and Han
dominant, ``"a photo of a dog 狗"`` only Latin.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

__all__ = [
    "SCRIPTS",
    "DOMINANT_SHARE",
    "SYLLABIC_WEIGHT",
    "WEIGHTS",
    "script_counts",
    "dominant_mask",
    "dominant_scripts",
]

SCRIPTS: tuple[str, ...] = (
    "Latn", "Cyrl", "Arab", "Grek", "Hebr", "Geor", "Armn", "Thaa", "Ethi", "Mong",
    "Hani", "Jpan", "Hang",
    "Thai", "Laoo", "Khmr", "Mymr", "Tibt",
    "Deva", "Beng", "Guru", "Gujr", "Orya", "Taml", "Telu", "Knda", "Mlym", "Sinh",
)
"""Columns of [`script_counts`][metaclip2.matching.scripts.script_counts]: ISO 15924 codes of the scripts lid.176 labels use."""

DOMINANT_SHARE = 0.25
"""A script is dominant if its weighted count is at least this share of the largest."""

SYLLABIC_WEIGHT = 2
"""Weight of a Han, kana or Hangul character relative to a letter of an alphabet."""

# Unicode Script property values (as `regex` names them) feeding each column.
_UNICODE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "Latn": ("Latin",), "Cyrl": ("Cyrillic",), "Arab": ("Arabic",), "Grek": ("Greek",),
    "Hebr": ("Hebrew",), "Geor": ("Georgian",), "Armn": ("Armenian",), "Thaa": ("Thaana",),
    "Ethi": ("Ethiopic",), "Mong": ("Mongolian",), "Hani": ("Han", "Bopomofo"),
    "Hang": ("Hangul",), "Thai": ("Thai",), "Laoo": ("Lao",), "Khmr": ("Khmer",),
    "Mymr": ("Myanmar",), "Tibt": ("Tibetan",), "Deva": ("Devanagari",),
    "Beng": ("Bengali",), "Guru": ("Gurmukhi",), "Gujr": ("Gujarati",), "Orya": ("Oriya",),
    "Taml": ("Tamil",), "Telu": ("Telugu",), "Knda": ("Kannada",), "Mlym": ("Malayalam",),
    "Sinh": ("Sinhala",),
}
_COL = {code: i for i, code in enumerate(SCRIPTS)}
_HANI, _JPAN = _COL["Hani"], _COL["Jpan"]
# Raw ids in the code point table: 0 ignored, 1 + column, and one extra id for kana.
_KANA_ID = len(SCRIPTS) + 1
_N_IDS = len(SCRIPTS) + 2
# Every script above lies below U+32000 (CJK Extension H ends at U+3134F; table clipped there).
_TABLE_SIZE = 0x32000
_BLOCK = 4096  # texts per numpy pass: bounds the temporary arrays, not the result

WEIGHTS = np.ones(len(SCRIPTS), dtype=np.int32)
WEIGHTS[[_COL["Hani"], _COL["Jpan"], _COL["Hang"]]] = SYLLABIC_WEIGHT
WEIGHTS.setflags(write=False)
"""Weight of one letter of each column of [`script_counts`][metaclip2.matching.scripts.script_counts] (see [`SYLLABIC_WEIGHT`][metaclip2.matching.scripts.SYLLABIC_WEIGHT])."""


@functools.lru_cache(maxsize=1)
def _table() -> np.ndarray:
    """uint8 code point → raw id, built once from ``regex``'s Script property classes."""
    import regex

    table = np.zeros(_TABLE_SIZE + 1, dtype=np.uint8)  # last slot: everything above
    every = "".join(map(chr, range(_TABLE_SIZE)))
    sources = [(name, 1 + _COL[code]) for code, names in _UNICODE_SCRIPTS.items() for name in names]
    sources += [("Hiragana", _KANA_ID), ("Katakana", _KANA_ID)]
    for name, ident in sources:
        for m in regex.finditer(rf"\p{{Script={name}}}+", every):
            table[m.start():m.end()] = ident
    table.setflags(write=False)
    return table


def _raw_counts(texts: Sequence[str]) -> np.ndarray:
    n = len(texts)
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    cps = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    ids = _table()[np.minimum(cps, _TABLE_SIZE)]
    owner = np.repeat(np.arange(n, dtype=np.int64), lens)
    keep = ids != 0
    flat = owner[keep] * _N_IDS + ids[keep]
    return np.bincount(flat, minlength=n * _N_IDS).reshape(n, _N_IDS)


def script_counts(texts: Sequence[str]) -> np.ndarray:
    """Letters per script of each text.

    Parameters
    ----------
    texts : sequence of str

    Returns
    -------
    numpy.ndarray
        int32, shape ``(len(texts), len(SCRIPTS))``; columns in [`SCRIPTS`][metaclip2.matching.scripts.SCRIPTS] order.
        Han letters are in ``Jpan`` together with the kana if the text has any kana, in
        ``Hani`` otherwise.

    See Also
    --------
    - [`dominant_mask`][metaclip2.matching.scripts.dominant_mask] : The dominant scripts of these counts.
    - [`dominant_scripts`][metaclip2.matching.scripts.dominant_scripts] : Both steps for one text.

    Examples
    --------
    >>> from metaclip2.matching.scripts import SCRIPTS, script_counts
    >>> counts = script_counts(["Nike 运动鞋", "犬が好き", "2024!"])
    >>> [{s: int(n) for s, n in zip(SCRIPTS, row) if n} for row in counts]
    [{'Latn': 4, 'Hani': 3}, {'Jpan': 4}, {}]
    """
    out = np.zeros((len(texts), len(SCRIPTS)), dtype=np.int32)
    for start in range(0, len(texts), _BLOCK):
        raw = _raw_counts(texts[start:start + _BLOCK])
        block = raw[:, 1:_KANA_ID].copy()
        kana = raw[:, _KANA_ID]
        japanese = kana > 0
        han = block[:, _HANI]
        block[:, _JPAN] = np.where(japanese, han + kana, 0)
        block[:, _HANI] = np.where(japanese, 0, han)
        out[start:start + len(raw)] = block
    return out


def dominant_mask(counts: np.ndarray) -> np.ndarray:
    """Dominant scripts of each row of [`script_counts`][metaclip2.matching.scripts.script_counts] (bool, same shape).

    A row without any counted letter has no dominant script.

    See Also
    --------
    - [`script_counts`][metaclip2.matching.scripts.script_counts] : The counts it takes.

    Examples
    --------
    >>> from metaclip2.matching.scripts import SCRIPTS, dominant_mask, script_counts
    >>> mask = dominant_mask(script_counts(["Nike 运动鞋", "2024!"]))
    >>> [[s for s, m in zip(SCRIPTS, row) if m] for row in mask]
    [['Latn', 'Hani'], []]
    """
    mask = np.zeros(counts.shape, dtype=bool)
    cols = np.flatnonzero(counts.any(axis=0))  # a batch uses few scripts: work on those
    if len(cols):
        weighted = counts[:, cols] * WEIGHTS[cols]
        top = weighted.max(axis=1)
        mask[:, cols] = (weighted > 0) & (weighted >= top[:, None] * DOMINANT_SHARE)
    return mask


def dominant_scripts(text: str) -> tuple[str, ...]:
    """Dominant scripts of one text, heaviest first (ties in [`SCRIPTS`][metaclip2.matching.scripts.SCRIPTS] order).

    Examples: ``"狗在水中"`` → ``("Hani",)``; ``"犬が好き"`` → ``("Jpan",)``;
    ``"Nike 运动鞋"`` → ``("Hani", "Latn")``; ``"2024!"`` → ``()``.

    See Also
    --------
    - [`script_check`][metaclip2.matching.lid.script_check] : Uses them to correct LID labels.

    Examples
    --------
    >>> from metaclip2.matching.scripts import dominant_scripts
    >>> [dominant_scripts(t) for t in ("狗在水中", "犬が好き", "Nike 运动鞋", "2024!")]
    [('Hani',), ('Jpan',), ('Hani', 'Latn'), ()]
    """
    counts = script_counts([text])
    mask = dominant_mask(counts)[0]
    weighted = (counts[0] * WEIGHTS).tolist()
    cols = sorted(np.flatnonzero(mask).tolist(), key=lambda c: (-weighted[c], c))
    return tuple(SCRIPTS[c] for c in cols)
