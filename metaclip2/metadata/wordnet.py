"""WordNet source of the metadata ([WordNet][wordnet]): WordNet 3.0 and Open Multilingual WordNet.

Read through nltk's ``wordnet`` corpus (English) and its OMW corpus (``omw-2.0`` for
nltk >= 3.10, ``omw-1.4`` for nltk 3.9). Nothing is downloaded: a missing corpus raises
[`WordNetDataError`][metaclip2.metadata.wordnet.WordNetDataError] naming the ``nltk.download(...)`` call to run.

Order is deterministic and independent of the tab files' row order: synsets sorted by
(part of speech, offset), i.e. WordNet's own data-file order (adjectives with their
satellites, adverbs, nouns, verbs); inside a synset, English lemmas keep WordNet's order
(the first is the head word) and OMW lemmas are sorted by code point.
"""

from __future__ import annotations

import re
import threading
import warnings
from functools import lru_cache
from metaclip2.core.errors import Metaclip2Error, ParameterError

__all__ = [
    "WORDNET_LANGUAGES",
    "WordNetDataError",
    "wordnet_language",
    "wordnet_entries",
    "clean_lemma",
    "omw_corpus_name",
]

#: Wikipedia code -> nltk WordNet language code (see the algorithm guide, "WordNet"): English plus 30 OMW wordnets.
#: ``als`` follows the paper's table although OMW ``als`` is (Tosk) Albanian and
#: Wikipedia ``als`` is Alemannic.
WORDNET_LANGUAGES: dict[str, str] = {
    "en": "eng",
    "fi": "fin", "he": "heb", "sl": "slv", "it": "ita", "nn": "nno", "no": "nob", "als": "als",
    "pl": "pol", "hr": "hrv", "nl": "nld", "ro": "ron", "ar": "arb", "is": "isl", "sv": "swe",
    "pt": "por", "zh": "cmn", "ja": "jpn", "da": "dan", "sk": "slk", "lt": "lit", "bg": "bul",
    "eu": "eus", "ca": "cat", "gl": "glg", "es": "spa", "el": "ell", "ms": "zsm", "id": "ind",
    "fr": "fra", "th": "tha",
}  # fmt: skip

# OMW placeholders for lexical gaps (ita, heb): not words.
_PLACEHOLDERS = frozenset({"GAP!", "PSEUDOGAP!"})
# WordNet's data-file order of parts of speech; satellites live in the adjective file.
_POS_ORDER = {"a": 0, "s": 0, "r": 1, "n": 2, "v": 3}
_LOCK = threading.Lock()


class WordNetDataError(Metaclip2Error, LookupError):
    """A WordNet/OMW corpus that nltk needs is not installed."""


def wordnet_language(lang: str) -> str | None:
    """nltk WordNet language code for Wikipedia code `lang`, or None if it has no wordnet.

    Examples
    --------
    >>> from metaclip2.metadata.wordnet import wordnet_language
    >>> wordnet_language("fr"), wordnet_language("en"), wordnet_language("la")
    ('fra', 'eng', None)
    """
    return WORDNET_LANGUAGES.get(lang)


def omw_corpus_name() -> str:
    """Name of the OMW corpus the installed nltk reads (``"omw-2.0"`` or ``"omw-1.4"``).

    Examples
    --------
    >>> from metaclip2.metadata.wordnet import omw_corpus_name
    >>> omw_corpus_name()  # depends on the installed nltk
    'omw-...'
    """
    from nltk.corpus import wordnet as wn

    loader = wn.__dict__.get("_LazyCorpusLoader__args")  # present until the corpus is loaded
    if loader:
        name = getattr(loader[0], "__dict__", {}).get("_LazyCorpusLoader__name")
        if name:
            return name
    reader = getattr(wn, "_omw_reader", None)
    root = str(getattr(reader, "root", "")) if reader is not None else ""
    for name in ("omw-2.0", "omw-1.4"):
        if name in root:
            return name
    import nltk

    major, minor = (int(x) for x in nltk.__version__.split(".")[:2])
    return "omw-2.0" if (major, minor) >= (3, 10) else "omw-1.4"


def clean_lemma(name: str) -> str:
    """WordNet lemma name -> metadata string: ``_`` becomes a space, ``+`` is removed, stripped.

    See Also
    --------
    - [`wordnet_entries`][metaclip2.metadata.wordnet.wordnet_entries] : Cleans every lemma name this way.

    Examples
    --------
    >>> from metaclip2.metadata.wordnet import clean_lemma
    >>> clean_lemma("New_York"), clean_lemma("ice+cream")
    ('New York', 'icecream')
    """
    return name.replace("_", " ").replace("+", "").strip()


def _missing(corpus: str, err: Exception) -> WordNetDataError:
    return WordNetDataError(
        f"nltk corpus {corpus!r} is not installed (nltk looked in NLTK_DATA / nltk.data.path). "
        f"Run once, with network access: python -c \"import nltk; nltk.download('{corpus}')\" "
        f"or point NLTK_DATA at an nltk_data directory that holds corpora/{corpus}. ({type(err).__name__})"
    )


def _wordnet():
    """nltk's WordNet reader with OMW registered exactly once (see nltk_data README quirk 1)."""
    from nltk.corpus import wordnet as wn

    try:
        wn.ensure_loaded()
    except LookupError as e:
        raise _missing("wordnet", e) from None
    with _LOCK:
        if not wn.omw_langs:
            try:
                wn.add_omw()
            except (LookupError, OSError) as e:
                raise _missing(omw_corpus_name(), e) from None
    return wn


def _sort_key(ss) -> tuple[int, int]:
    return (_POS_ORDER[ss.pos()], ss.offset())


_ENGLISH: tuple | None = None
# nltk strips adjective position markers ("(a)", "(p)", "(ip)") from lemma names the same way.
_ADJ_MARKER = re.compile(r"(.*?)(\(.*\))?$")


def _english_synsets(progress: bool = False) -> tuple[tuple[str, int, list[str]], ...]:
    """``(pos, offset, lemma names)`` of every WordNet synset, in data-file order.

    Reads nltk's ``wordnet`` corpus files through its reader (``wn.open``) but parses only
    the lemma fields: the result equals ``[(s.pos(), s.offset(), s.lemma_names()) for s in
    wn.all_synsets()]`` (checked in the tests) at a sixth of the cost, since nltk builds
    full Synset objects with pointers and frames. Cached per process.
    """
    global _ENGLISH
    if _ENGLISH is None:
        from tqdm.auto import tqdm

        wn = _wordnet()
        out = []
        bar = tqdm(desc="WordNet synsets", unit="synset", total=117_659, disable=not progress)
        for pos_file in ("adj", "adv", "noun", "verb"):  # nltk's all_synsets order
            try:
                f = wn.open(f"data.{pos_file}")
            except (LookupError, OSError) as e:
                raise _missing("wordnet", e) from None
            with f:
                for line in f:
                    if line.startswith("  "):  # licence header
                        continue
                    fields = line.split(" ")
                    n = int(fields[3], 16)
                    names = [_ADJ_MARKER.match(w).group(1) for w in fields[4 : 4 + 2 * n : 2]]
                    out.append((fields[2], int(fields[0]), names))
                    bar.update()
        bar.close()
        _ENGLISH = tuple(sorted(out, key=lambda r: (_POS_ORDER[r[0]], r[1])))
    return _ENGLISH


@lru_cache(maxsize=64)
def _entries(code: str, head_word_only: bool, progress: bool = False) -> tuple[str, ...] | None:
    wn = _wordnet()
    if code == "eng":
        names = ((r[2][:1] if head_word_only else r[2]) for r in _english_synsets(progress))
    else:
        if head_word_only:
            raise ParameterError("head_word_only is the English predecessor's variant; it is only defined for English")
        if code not in wn.langs():
            return None
        synsets = sorted(wn.all_synsets(lang=code), key=_sort_key)
        names = (sorted(ss.lemma_names(code)) for ss in synsets)
    seen: dict[str, None] = {}
    for group in names:
        for name in group:
            if name in _PLACEHOLDERS:
                continue
            s = clean_lemma(name)
            if s:
                seen.setdefault(s, None)
    return tuple(seen)


def wordnet_entries(lang: str, head_word_only: bool = False, progress: bool = False) -> list[str]:
    """WordNet lemma names of one language, cleaned, deduplicated, in a deterministic order.

    Parameters
    ----------
    lang : str
        Wikipedia code (``"en"``, ``"fr"``, ``"zh"`` …, see [`WORDNET_LANGUAGES`][metaclip2.metadata.wordnet.WORDNET_LANGUAGES]) or an
        nltk WordNet code (``"eng"``, ``"fra"``, ``"ita_iwn"`` …).
    head_word_only : bool
        English only: keep only each synset's first lemma name (the English predecessor,
        MetaCLIP 1), instead of every lemma name (Meta CLIP 2, the default).
    progress : bool
        tqdm bar (stderr) while nltk parses the English synsets, the slow step.

    Returns
    -------
    list of str
        Every lemma name of every synset of the language, ``_`` -> space, ``+`` removed,
        ``GAP!``/``PSEUDOGAP!`` placeholders dropped, first occurrence kept. A language
        without a wordnet, or whose OMW file is absent from the installed data, gives ``[]``
        (the latter with a warning).

    Raises
    ------
    WordNetDataError
        The ``wordnet`` or OMW corpus is not installed.

    See Also
    --------
    - [`clean_lemma`][metaclip2.metadata.wordnet.clean_lemma] : How each lemma name is cleaned.
    - [`build_metadata`][metaclip2.metadata.build.build_metadata] : Uses these as its first source (``wordnet="auto"``).

    Examples
    --------
    Needs nltk's ``wordnet`` and ``omw-1.4`` corpora (``nltk.download``, once) and parses
    them for seconds, so it is not run here:

    >>> from metaclip2.metadata import wordnet_entries
    >>> wordnet_entries("en")[:5]  # doctest: +SKIP
    ['able', 'unable', 'abaxial', 'dorsal', 'adaxial']
    >>> wordnet_entries("fr")[:3]  # doctest: +SKIP
    ['comptable', 'incapable', 'abaxial']
    """
    code = WORDNET_LANGUAGES.get(lang, lang)
    if code not in WORDNET_LANGUAGES.values() and lang not in WORDNET_LANGUAGES:
        # Not in the paper's table: accept any nltk code that the data has, else empty.
        if code != "eng" and code not in _wordnet().langs():
            return []
    found = _entries(code, bool(head_word_only), bool(progress) and _ENGLISH is None)
    if found is None:
        warnings.warn(
            f"WordNet language {code!r} (for {lang!r}) is not in the installed {omw_corpus_name()} data "
            f"(nltk has {sorted(_wordnet().langs())}); its WordNet source is empty",
            stacklevel=2,
        )
        return []
    return list(found)
