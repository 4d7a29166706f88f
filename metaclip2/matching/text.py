"""The text side and the entry side of substring matching ([Matching rules][matching-rules]).

Matching is plain substring search of a *padded* entry in a *spaced* text:

>>> spacing("A cat, on a mat.")
' A cat ,  on a mat .  '
>>> pad_entry("cat"), pad_entry("東京"), pad_entry("New York.")
(' cat ', '東京', ' New York.')

so ``"cat"`` matches ``"A cat, on"`` but not ``"category"``, while an entry in a
script written without spaces matches anywhere.
"""

from __future__ import annotations

from metaclip2.core.charclass import is_cjk_like
from metaclip2.core.errors import ParameterError

__all__ = ["spacing", "pad_entry", "WRAPPED_PUNCTUATION", "SPACED_CONTROLS"]

#: Characters that get a space on each side in texts (not in entries).
WRAPPED_PUNCTUATION = (",", ".", ";", ":", "?", "!", "`")
#: Characters that become a space in texts.
SPACED_CONTROLS = ("\t", "\n", "\r")



def spacing(text: str) -> str:
    """Prepare an alt-text for matching.

    Returns ``" " + text + " "`` with each of ``, . ; : ? ! ` `` surrounded by
    spaces and each of ``\\t \\n \\r`` replaced by a space. Nothing else changes
    (no case folding, no Unicode normalisation).

    See Also
    --------
    - [`pad_entry`][metaclip2.matching.text.pad_entry] : The entry side of the match.

    Examples
    --------
    >>> from metaclip2.matching.text import spacing
    >>> spacing("A cat, on a mat.")
    ' A cat ,  on a mat .  '
    >>> spacing("line one\\tline two")
    ' line one line two '
    """
    # Chained str.replace: several times faster than str.translate with multi-character values.
    for p in WRAPPED_PUNCTUATION:
        if p in text:
            text = text.replace(p, f" {p} ")
    for c in SPACED_CONTROLS:
        if c in text:
            text = text.replace(c, " ")
    return " " + text + " "


def pad_entry(entry: str) -> str:
    """Pad a metadata entry with the word-boundary spaces it needs.

    A space is added before `entry` unless its first character is CJK-like
    (CJK, Thai, Lao, Burmese, Khmer or Tibetan block, or punctuation), and after
    it unless its last character is.

    See Also
    --------
    - [`spacing`][metaclip2.matching.text.spacing] : The text side of the match.
    - [`is_cjk_like`][metaclip2.core.charclass.is_cjk_like] : Which characters need no space.

    Examples
    --------
    >>> from metaclip2.matching.text import pad_entry, spacing
    >>> pad_entry("cat"), pad_entry("東京"), pad_entry("New York.")
    (' cat ', '東京', ' New York.')
    >>> pad_entry("cat") in spacing("A cat, on a mat."), pad_entry("cat") in spacing("category")
    (True, False)
    """
    if not entry:
        raise ParameterError("cannot pad an empty entry")
    head = "" if is_cjk_like(entry[0]) else " "
    tail = "" if is_cjk_like(entry[-1]) else " "
    return head + entry + tail
