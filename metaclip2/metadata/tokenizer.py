"""Tokenising Wikipedia text into bigram chains ([Wikipedia text and tokenising][wikipedia-text-and-tokenising]; for building n-grams only, never matching).

`tokenize` returns *chains*: runs of consecutive tokens. Unigrams are all tokens of all chains,
bigrams are the adjacent pairs inside one chain, so a chain break is exactly "no bigram spans
this point". Punctuation is never a token: it only breaks chains (punctuation-only strings are
removed from metadata anyway: [Filters on every source][filters-on-every-source]), so ``N`` in PMI counts word tokens only.

* Languages written with spaces: HTML tags removed, split on white space; every character of
  the CJK, Thai, Lao, Burmese, Khmer and Tibetan blocks is a token of its own; every punctuation
  character, and every line break (paragraph or heading end), breaks the chain.
* Languages written without spaces (`NO_SPACE_LANGUAGES`) go through a word segmenter: zh (and
  Han-script variants) jieba, ja/ryu SudachiPy (core dictionary, split mode A, the short unit
  closest to the authors' MeCab+ipadic), th PyThaiNLP ``newmm``, lo LaoNLP, km khmer-nltk, my a
  rule-based syllable breaker (no model), bo/dz botok with a locally present dialect pack.
  Segmenter tokens that start with punctuation or hold an unbalanced bracket are skipped and
  break the chain. A missing segmenter raises `SegmenterUnavailable` — never a per-character
  fallback. Segmenters are loaded lazily, once per process.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Callable

from metaclip2.core.charclass import is_no_space_script, is_punctuation
from metaclip2.core.errors import MissingExtraError

__all__ = [
    "NO_SPACE_LANGUAGES",
    "SegmenterUnavailable",
    "is_no_space_language",
    "normalize_lang",
    "tokenize",
    "segmenter",
    "BOTOK_PACK_ENV",
]

#: Wikipedia codes of languages written without spaces between words. ``zh_min_nan``
#: (Pe̍h-ōe-jī), ``hak`` and ``cdo`` are romanised and are tokenised as spaced languages.
NO_SPACE_LANGUAGES = frozenset(
    {"bo", "dz", "ja", "ryu", "km", "lo", "my", "th", "zh", "zh_yue", "yue", "zh_classical", "lzh", "wuu", "gan"}
)

#: Environment variable naming a botok dialect-pack directory (e.g. ``.../dialect_packs/general``).
BOTOK_PACK_ENV = "METACLIP2_BOTOK_DIALECT_PACK"

_EXTRA = "pip install 'metaclip2[segment]'"


class SegmenterUnavailable(MissingExtraError):
    """The word segmenter a no-space language needs is not installed or has no data."""


def normalize_lang(lang: str) -> str:
    """Wikipedia-style language code: lower case, ``-`` → ``_`` (``zh-yue`` → ``zh_yue``).

    Examples
    --------
    >>> from metaclip2.metadata.tokenizer import normalize_lang
    >>> normalize_lang("zh-YUE")
    'zh_yue'
    """
    return lang.strip().lower().replace("-", "_")


def is_no_space_language(lang: str) -> bool:
    """Whether `lang` is written without spaces (n-grams are joined with ``""``).

    See Also
    --------
    - [`segmenter`][metaclip2.metadata.tokenizer.segmenter] : The segmenter of such a language.

    Examples
    --------
    >>> from metaclip2.metadata.tokenizer import is_no_space_language
    >>> [is_no_space_language(c) for c in ("zh", "zh-yue", "ja", "th", "de", "ko")]
    [True, True, True, True, False, False]
    """
    return normalize_lang(lang) in NO_SPACE_LANGUAGES


# ---------------------------------------------------------------------------------------------
# Spaced scripts


def _ranges(pred: Callable[[str], bool]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = None
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            hit = False
        else:
            hit = pred(chr(cp))
        if hit and start is None:
            start = cp
        elif not hit and start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return out


def _class(ranges: list[tuple[int, int]]) -> str:
    def esc(cp: int) -> str:
        return f"\\U{cp:08x}"

    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)


@lru_cache(maxsize=1)
def _spaced_regexes():
    """(tag regex, token regex) for spaced scripts, built from `metaclip2.core.charclass`."""
    import regex

    # The character classes are derived from the shared predicates (one pass over all code
    # points, ~1 s, once per process) so tokenising and matching agree on what punctuation is.
    punct = _class(_ranges(getattr(is_punctuation, "__wrapped__", is_punctuation)))
    nospace = _class(_ranges(getattr(is_no_space_script, "__wrapped__", is_no_space_script)))
    tag = regex.compile(r"<[^<>\n]{0,1000}>")
    # group 1: a punctuation char or a line break (chain break); group 2: one no-space-script char; group 3: a word
    token = regex.compile(rf"([{punct}]|\n)|((?!\s)[{nospace}])|([^\s{punct}{nospace}]+)", regex.V0)
    return tag, token


def _tokenize_spaced(text: str) -> list[list[str]]:
    tag_re, token_re = _spaced_regexes()
    text = tag_re.sub(" ", text)
    chains: list[list[str]] = []
    chain: list[str] = []
    for m in token_re.finditer(text):
        if m.group(1) is not None:
            if chain:
                chains.append(chain)
                chain = []
        else:
            chain.append(m.group())
    if chain:
        chains.append(chain)
    return chains


# ---------------------------------------------------------------------------------------------
# Segmented scripts

_OPEN = "([{（【《〈「『〔［｛〖〘〚"
_CLOSE = ")]}）】》〉」』〕］｝〗〙〛"


def _unbalanced(tok: str) -> bool:
    for o, c in zip(_OPEN, _CLOSE):
        if o in tok or c in tok:
            depth = 0
            for ch in tok:
                if ch == o:
                    depth += 1
                elif ch == c:
                    depth -= 1
                    if depth < 0:
                        return True
            if depth:
                return True
    return False


def _missing(package: str, lang: str, exc: BaseException | None = None) -> SegmenterUnavailable:
    err = SegmenterUnavailable(
        f"tokenising '{lang}' needs the word segmenter {package!r}, which is not installed; "
        f"install it with {_EXTRA} (or pip install {package}). "
        "metaclip2 never falls back to splitting this language per character."
    )
    err.__cause__ = exc
    return err


def _import(module: str, package: str, lang: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _missing(package, lang, exc) from exc


def _seg_jieba(lang: str) -> Callable[[str], list[str]]:
    jieba = _import("jieba", "jieba", lang)
    jieba.setLogLevel(60)  # silence "Building prefix dict" chatter
    tok = jieba.Tokenizer()
    return lambda text: tok.lcut(text, HMM=True)


def _seg_sudachi(lang: str) -> Callable[[str], list[str]]:
    dictionary = _import("sudachipy", "sudachipy", lang)
    _import("sudachidict_core", "sudachidict-core", lang)
    dic = dictionary.Dictionary(dict="core")
    tokenizer = dic.tokenizer() if hasattr(dic, "tokenizer") else dic.create()
    mode = dictionary.SplitMode.A
    limit = 10_000  # characters per call; Sudachi rejects inputs over 49,149 bytes

    def seg(text: str) -> list[str]:
        out: list[str] = []
        for i in range(0, len(text), limit):
            out.extend(m.surface() for m in tokenizer.tokenize(text[i : i + limit], mode))
        return out

    return seg


def _seg_thai(lang: str) -> Callable[[str], list[str]]:
    mod = _import("pythainlp.tokenize", "pythainlp", lang)
    return lambda text: mod.word_tokenize(text, engine="newmm", keep_whitespace=False)


def _seg_lao(lang: str) -> Callable[[str], list[str]]:
    mod = _import("laonlp.tokenize", "laonlp", lang)
    return mod.word_tokenize


def _seg_khmer(lang: str) -> Callable[[str], list[str]]:
    import logging

    mod = _import("khmernltk", "khmer-nltk", lang)
    logging.getLogger("khmer-nltk").setLevel(logging.WARNING)
    return mod.word_tokenize


def _seg_burmese(lang: str) -> Callable[[str], list[str]]:
    """Rule-based Burmese syllable breaker (no model needed).

    A syllable starts at a consonant that neither follows a virama (U+1039, stacked consonant)
    nor is followed by an asat (U+103A) or virama; independent vowels, digits, Burmese
    punctuation and any non-Burmese character also start a new unit.
    """
    import regex

    brk = regex.compile(
        r"(?<!\u1039)[\u1000-\u1021](?![\u103a\u1039])|[\u1023-\u102a\u103f\u104c-\u104f\u1040-\u104b]|[^\u1000-\u109f\s]+"
    )

    def seg(text: str) -> list[str]:
        out: list[str] = []
        for piece in text.split():
            starts = [m.start() for m in brk.finditer(piece)]
            if not starts or starts[0] != 0:
                starts.insert(0, 0)
            starts.append(len(piece))
            out.extend(piece[a:b] for a, b in zip(starts, starts[1:]) if a < b)
        return out

    return seg


def _botok_pack() -> Path:
    env = os.environ.get(BOTOK_PACK_ENV)
    return Path(env) if env else Path.home() / "Documents" / "pybo" / "dialect_packs" / "general"


def _seg_botok(lang: str) -> Callable[[str], list[str]]:
    _import("botok", "botok", lang)
    pack = _botok_pack()
    if not (pack / "dictionary").is_dir():
        raise SegmenterUnavailable(
            f"tokenising '{lang}' needs botok's dialect pack, which is not at {pack}. botok would "
            "download it at first use; metaclip2 never downloads at run time. Fetch it once "
            "(https://github.com/Esukhia/botok-data/releases, e.g. general.zip), unzip it and set "
            f"{BOTOK_PACK_ENV}=/path/to/dialect_packs/general (or put it at that default path)."
        )
    from botok import Config, WordTokenizer

    tok = WordTokenizer(config=Config.from_path(pack))
    return lambda text: [t.text for t in tok.tokenize(text, split_affixes=False)]


_SEGMENTERS: dict[str, Callable[[str], Callable[[str], list[str]]]] = {
    "zh": _seg_jieba,
    "zh_yue": _seg_jieba,
    "yue": _seg_jieba,
    "zh_classical": _seg_jieba,
    "lzh": _seg_jieba,
    "wuu": _seg_jieba,
    "gan": _seg_jieba,
    "ja": _seg_sudachi,
    "ryu": _seg_sudachi,
    "th": _seg_thai,
    "lo": _seg_lao,
    "km": _seg_khmer,
    "my": _seg_burmese,
    "bo": _seg_botok,
    "dz": _seg_botok,
}

_LOADED: dict[str, Callable[[str], list[str]]] = {}


def segmenter(lang: str) -> Callable[[str], list[str]]:
    """The word segmenter of a no-space language, loaded on first use and cached per process.

    Raises
    ------
    SegmenterUnavailable
        If its package (or, for botok, its data) is missing; the message names what to install.
    KeyError
        If `lang` is not a no-space language.

    See Also
    --------
    - [`tokenize`][metaclip2.metadata.tokenizer.tokenize] : Uses it for languages written without spaces.

    Examples
    --------
    Japanese with SudachiPy (the ``segment`` extra):

    >>> from metaclip2.metadata import segmenter, tokenize
    >>> segmenter("ja")("犬が公園を走る")
    ['犬', 'が', '公園', 'を', '走る']
    >>> tokenize("犬が公園を走る。猫が寝る", "ja")
    [['犬', 'が', '公園', 'を', '走る'], ['猫', 'が', '寝る']]
    """
    lang = normalize_lang(lang)
    seg = _LOADED.get(lang)
    if seg is None:
        seg = _LOADED[lang] = _SEGMENTERS[lang](lang)
    return seg


def _tokenize_segmented(text: str, lang: str) -> list[list[str]]:
    tag_re, _ = _spaced_regexes()
    seg = segmenter(lang)
    chains: list[list[str]] = []
    chain: list[str] = []
    for line in tag_re.sub(" ", text).split("\n"):
        if not line.strip():
            continue
        for raw in seg(line):
            for tok in raw.split():  # segmenters may return white space or multi-word tokens
                if is_punctuation(tok[0]) or _unbalanced(tok):
                    if chain:
                        chains.append(chain)
                        chain = []
                else:
                    chain.append(tok)
        if chain:  # a line (paragraph) ends the chain
            chains.append(chain)
            chain = []
    return chains


def tokenize(text: str, lang: str) -> list[list[str]]:
    """Split text into bigram chains.

    Parameters
    ----------
    text : str
        Plain text (e.g. from `metaclip2.metadata.wikitext.wikitext_to_text`).
    lang : str
        Wikipedia language code (``en``, ``zh``, ``zh-yue`` …).

    Returns
    -------
    list of list of str
        Runs of consecutive tokens; bigrams never span two runs. Punctuation is not a token.

    Raises
    ------
    SegmenterUnavailable
        For a no-space language whose segmenter is missing.

    See Also
    --------
    - [`segmenter`][metaclip2.metadata.tokenizer.segmenter] : The word segmenter of a language written without spaces.
    - [`count_ngrams`][metaclip2.metadata.ngrams.count_ngrams] : Counts unigrams and bigrams of these chains.

    Examples
    --------
    Punctuation ends a chain, so no bigram spans "York, at":

    >>> from metaclip2.metadata import tokenize
    >>> tokenize("A dog runs on the beach. New York, at night!", "en")
    [['A', 'dog', 'runs', 'on', 'the', 'beach'], ['New', 'York'], ['at', 'night']]
    """
    if normalize_lang(lang) in NO_SPACE_LANGUAGES:
        return _tokenize_segmented(text, lang)
    return _tokenize_spaced(text)
