"""Language tables: fastText lid.176 labels, Wikipedia codes, and how they group.

Matching uses one metadata list per **LID language** ([From Wikipedia languages to LID languages][from-wikipedia-languages-to-lid-languages]).
A LID language is named after a lid.176 label and owns the union of the metadata of an
ordered group of Wikipedias; alt-texts whose label owns no metadata, and Wikipedias that no
label stands for, go to the language ``"other"``.

The rule used to fill the table (the authors' release ships it empty):

1. A lid.176 label whose language has its own Wikipedia is a LID language of its own, and
   that Wikipedia is the first (primary) member of its group. lid.176 was trained on
   Wikipedia text with Wikipedia's own codes, so the label is the dump name for all labels
   but ``cbk`` (→ ``cbk_zam``), ``yue`` (→ ``zh_yue``) and ``lrc`` (none). Closely related pairs that both have a label *and* a Wikipedia stay
   apart, because lid.176 separates them and each keeps its own threshold in Algorithm 1:
   ``no``/``nn`` (Bokmål/Nynorsk; ``nb`` is accepted as an alias of ``no``), ``sh``/``sr``/
   ``hr``/``bs``, ``ar``/``arz``, ``de``/``als``/``bar``, ``fa``/``mzn``, ``id``/``ms``/``min``.
2. Chinese: The recipe groups ``zh`` ← zh, zh_yue, zh_classical, zh_min_nan. lid.176 has its own
   ``yue`` and ``wuu`` labels, but it confuses short Han-script strings among zh/yue/wuu (a
   two-character caption's top two labels are often zh and yue), so splitting Han text over
   three metadata lists would make matching hinge on an unreliable decision. Labels ``yue``
   and ``wuu`` therefore map to ``zh``, and every Chinese-macrolanguage Wikipedia (zh, zh_yue,
   zh_classical, zh_min_nan, wuu, gan, hak, cdo) is in the ``zh`` group. zh_min_nan, hak and
   cdo are mostly written in Latin romanisation; they are kept in ``zh`` because the recipe names
   zh_min_nan there and the other two are the same case.
3. A Wikipedia with no label of its own joins a LID language only when it is the *same*
   language in another standard/orthography, or a member of an ISO 639-3 macrolanguage that
   the label stands for, so that lid.176 would give its text that label
   (``_VARIETY_ROUTES``: e.g. simple→en, be_tarask→be, ary→ar, ltg→lv, fiu_vro→et).
4. Everything else is routed explicitly to ``"other"`` (``_OTHER_WIKIPEDIAS``), including
   distinct languages that lid.176 may confuse with a neighbour (bat_smg/Samogitian,
   roa_rup/Aromanian, dz/Dzongkha vs bo, mdf vs myv): sending them to the neighbour would
   mix another language's vocabulary into its list.
5. The one lid.176 label without any Wikipedia, ``lrc`` (Northern Luri), maps to ``other``.

Note: ``als`` in lid.176 and Wikipedia is *Alemannic* (ISO ``gsw``), not ISO 639-3 ``als``
(Tosk Albanian).

Codes are Wikipedia dump names (``zh_yue``, ``be_tarask``), i.e. the domain's ``-``
written as ``_``. The functions also accept the ``-`` form and common aliases
(``be_x_old``, ``gsw``, ``yue``, ``nb`` …; see ``WIKIPEDIA_ALIASES``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping
from metaclip2.core.errors import UnknownLanguageError

OTHER = "other"
"""Name of the catch-all LID language (labels without metadata, Wikipedias without a label)."""

LID176_LABELS: tuple[str, ...] = (
    "af", "als", "am", "an", "ar", "arz", "as", "ast", "av", "az", "azb", "ba", "bar", "bcl",
    "be", "bg", "bh", "bn", "bo", "bpy", "br", "bs", "bxr", "ca", "cbk", "ce", "ceb", "ckb",
    "co", "cs", "cv", "cy", "da", "de", "diq", "dsb", "dty", "dv", "el", "eml", "en", "eo",
    "es", "et", "eu", "fa", "fi", "fr", "frr", "fy", "ga", "gd", "gl", "gn", "gom", "gu", "gv",
    "he", "hi", "hif", "hr", "hsb", "ht", "hu", "hy", "ia", "id", "ie", "ilo", "io", "is",
    "it", "ja", "jbo", "jv", "ka", "kk", "km", "kn", "ko", "krc", "ku", "kv", "kw", "ky", "la",
    "lb", "lez", "li", "lmo", "lo", "lrc", "lt", "lv", "mai", "mg", "mhr", "min", "mk", "ml",
    "mn", "mr", "mrj", "ms", "mt", "mwl", "my", "myv", "mzn", "nah", "nap", "nds", "ne",
    "new", "nl", "nn", "no", "oc", "or", "os", "pa", "pam", "pfl", "pl", "pms", "pnb", "ps",
    "pt", "qu", "rm", "ro", "ru", "rue", "sa", "sah", "sc", "scn", "sco", "sd", "sh", "si",
    "sk", "sl", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr",
    "tt", "tyv", "ug", "uk", "ur", "uz", "vec", "vep", "vi", "vls", "vo", "wa", "war", "wuu",
    "xal", "xmf", "yi", "yo", "yue", "zh",
)
"""The 176 labels of fastText lid.176 (``__label__`` prefix removed), sorted."""

WIKIPEDIA_LANGUAGES: tuple[str, ...] = (
    "ab", "ace", "ady", "af", "als", "alt", "am", "ami", "an", "ang", "anp", "ar", "arc",
    "ary", "arz", "as", "ast", "atj", "av", "avk", "awa", "ay", "az", "azb",
    "ba", "ban", "bar", "bat_smg", "bbc", "bcl", "be", "be_tarask", "bew", "bg", "bh", "bi",
    "bjn", "blk", "bm", "bn", "bo", "bpy", "br", "bs", "bug", "bxr",
    "ca", "cbk_zam", "cdo", "ce", "ceb", "ch", "chr", "chy", "ckb", "co", "cr", "crh", "cs",
    "csb", "cu", "cv", "cy",
    "da", "dag", "de", "dga", "din", "diq", "dsb", "dtp", "dty", "dv", "dz",
    "ee", "el", "eml", "en", "eo", "es", "et", "eu", "ext",
    "fa", "fat", "ff", "fi", "fiu_vro", "fj", "fo", "fon", "fr", "frp", "frr", "fur", "fy",
    "ga", "gag", "gan", "gcr", "gd", "gl", "glk", "gn", "gom", "gor", "got", "gpe", "gu",
    "guc", "gur", "guw", "gv",
    "ha", "hak", "haw", "he", "hi", "hif", "hr", "hsb", "ht", "hu", "hy", "hyw",
    "ia", "id", "ie", "ig", "igl", "ik", "ilo", "inh", "io", "is", "it", "iu",
    "ja", "jam", "jbo", "jv",
    "ka", "kaa", "kab", "kbd", "kbp", "kcg", "kg", "ki", "kk", "kl", "km", "kn", "ko", "koi",
    "krc", "ks", "ksh", "ku", "kus", "kv", "kw", "ky",
    "la", "lad", "lb", "lbe", "lez", "lfn", "lg", "li", "lij", "lld", "lmo", "ln", "lo", "lt",
    "ltg", "lv",
    "mad", "mai", "map_bms", "mdf", "mg", "mhr", "mi", "min", "mk", "ml", "mn", "mni", "mnw",
    "mr", "mrj", "ms", "mt", "mwl", "my", "myv", "mzn",
    "nah", "nap", "nds", "nds_nl", "ne", "new", "nia", "nl", "nn", "no", "nov", "nqo", "nrm",
    "nso", "nv", "ny",
    "oc", "olo", "om", "or", "os",
    "pa", "pag", "pam", "pap", "pcd", "pcm", "pdc", "pfl", "pi", "pih", "pl", "pms", "pnb",
    "pnt", "ps", "pt", "pwn",
    "qu",
    "rm", "rmy", "rn", "ro", "roa_rup", "roa_tara", "ru", "rue", "rw",
    "sa", "sah", "sat", "sc", "scn", "sco", "sd", "se", "sg", "sh", "shi", "shn", "si",
    "simple", "sk", "skr", "sl", "sm", "smn", "sn", "so", "sq", "sr", "srn", "ss", "st", "stq",
    "su", "sv", "sw", "szl", "szy",
    "ta", "tay", "tcy", "te", "tet", "tg", "th", "ti", "tk", "tl", "tly", "tn", "to", "tpi",
    "tr", "trv", "ts", "tt", "tum", "tw", "ty", "tyv",
    "udm", "ug", "uk", "ur", "uz",
    "ve", "vec", "vep", "vi", "vls", "vo",
    "wa", "war", "wo", "wuu",
    "xal", "xh", "xmf",
    "yi", "yo",
    "za", "zea", "zgh", "zh", "zh_classical", "zh_min_nan", "zh_yue", "zu",
)
"""The 330 Wikipedias whose 2024-05-01 dumps the Meta CLIP 2 release builds metadata from
(dump names, sorted). The paper counts 329 because its merge step skips ``be_tarask``;
this library keeps it (in the ``be`` group)."""

# Labels whose Wikipedia dump name differs from the label (rule 1/2), or that have none (rule 5).
_LABEL_WIKIPEDIA_EXCEPTIONS: dict[str, str | None] = {
    "cbk": "cbk_zam",  # Chavacano: Wikipedia's domain is cbk-zam.
    "yue": "zh_yue",  # Cantonese: Wikipedia's domain is zh-yue.
    "lrc": None,  # Northern Luri: no Wikipedia (only an Incubator test wiki).
}

# Labels whose LID (metadata) language is not the label itself.
_LABEL_MERGES: dict[str, str] = {
    "yue": "zh",  # rule 2: Han-script Chinese varieties share one list
    "wuu": "zh",
    "lrc": OTHER,  # rule 5: no Wikipedia, so no metadata
}

# Rule 3: Wikipedias without a label, routed to the LID language lid.176 gives their text.
_VARIETY_ROUTES: dict[str, str] = {
    "simple": "en",  # Simple English Wikipedia: English
    "be_tarask": "be",  # Belarusian in the Taraškievica orthography
    "nds_nl": "nds",  # Dutch Low Saxon: Low German in Dutch-based spelling
    "hyw": "hy",  # Western Armenian: same script, mutually intelligible standard
    "zh_yue": "zh",  # rule 2 (also the primary Wikipedia of label yue)
    "zh_classical": "zh",  # Classical Chinese (lzh), macrolanguage zho
    "zh_min_nan": "zh",  # Southern Min (nan), macrolanguage zho; the recipe names it in zh
    "gan": "zh",  # Gan, macrolanguage zho, Han script
    "hak": "zh",  # Hakka, macrolanguage zho
    "cdo": "zh",  # Eastern Min, macrolanguage zho
    "ary": "ar",  # Moroccan Arabic, macrolanguage ara (Egyptian arz has its own label)
    "bjn": "ms",  # Banjar, macrolanguage msa
    "fiu_vro": "et",  # Võro, macrolanguage est
    "ltg": "lv",  # Latgalian, macrolanguage lav
    "koi": "kv",  # Komi-Permyak, macrolanguage kom (label kv = Komi)
    "skr": "pnb",  # Saraiki, macrolanguage lah (Lahnda; label pnb = Western Punjabi, Shahmukhi)
    "map_bms": "jv",  # Banyumasan: a Javanese dialect without an ISO code of its own
}

# Rule 4: Wikipedias explicitly routed to "other" (no lid.176 label for their language).
_OTHER_WIKIPEDIAS: tuple[str, ...] = (
    "ab", "ace", "ady", "alt", "ami", "ang", "anp", "arc", "atj", "avk", "awa", "ay", "ban",
    "bat_smg", "bbc", "bew", "bi", "blk", "bm", "bug", "ch", "chr", "chy", "cr", "crh", "csb",
    "cu", "dag", "dga", "din", "dtp", "dz", "ee", "ext", "fat", "ff", "fj", "fo", "fon", "frp",
    "fur", "gag", "gcr", "glk", "gor", "got", "gpe", "guc", "gur", "guw", "ha", "haw", "ig",
    "igl", "ik", "inh", "iu", "jam", "kaa", "kab", "kbd", "kbp", "kcg", "kg", "ki", "kl", "ks",
    "ksh", "kus", "lad", "lbe", "lfn", "lg", "lij", "lld", "ln", "mad", "mdf", "mi", "mni",
    "mnw", "nia", "nov", "nqo", "nrm", "nso", "nv", "ny", "olo", "om", "pag", "pap", "pcd",
    "pcm", "pdc", "pi", "pih", "pnt", "pwn", "rmy", "rn", "roa_rup", "roa_tara", "rw", "sat",
    "se", "sg", "shi", "shn", "sm", "smn", "sn", "srn", "ss", "st", "stq", "szl", "szy", "tay",
    "tcy", "tet", "ti", "tly", "tn", "to", "tpi", "trv", "ts", "tum", "tw", "ty", "udm", "ve",
    "wo", "xh", "za", "zea", "zgh", "zu",
)

WIKIPEDIA_ALIASES: Mapping[str, str] = MappingProxyType({
    # Dump or domain names that differ from the canonical dump name used here, and the ISO
    # codes that Wikimedia redirects to an old domain.
    "be_x_old": "be_tarask",  # the be-tarask dump is still named be_x_oldwiki
    "lzh": "zh_classical",
    "yue": "zh_yue",
    "nan": "zh_min_nan",
    "sgs": "bat_smg",
    "vro": "fiu_vro",
    "rup": "roa_rup",
    "gsw": "als",
    "bho": "bh",
    "nb": "no",
    "cbk": "cbk_zam",
})
"""Alternative Wikipedia codes → canonical dump name (after ``-`` → ``_``, lower-case)."""

# Labels other detectors (or an input language column) commonly use for a lid.176 language.
_LABEL_ALIASES: dict[str, str] = {
    "nb": "no",
    "nob": "no",
    "iw": "he",  # pre-1989 ISO code still emitted by some tools (CLD2/3)
    "in": "id",
    "ji": "yi",
    "jw": "jv",
    "mo": "ro",
    "fil": "tl",
    "gsw": "als",
    "bho": "bh",
    "zh_hans": "zh",
    "zh_hant": "zh",
    "zh_cn": "zh",
    "zh_tw": "zh",
    "zh_hk": "zh",
    "zh_sg": "zh",
    "zh_latn": "zh",
}


# --- Scripts -----------------------------------------------------------------------------
#
# Which writing system(s) each lid.176 label's language is written in, as ISO 15924 codes,
# for the script-consistency step of LID (``metaclip2.matching.lid``). Two codes are
# composites of ISO 15924: ``Jpan`` (Han + Hiragana + Katakana: a text with any kana) and
# ``Hani`` used for Han *without* kana; ``Hang`` is Hangul (with or without Hanja).
#
# Sources, in order:
# 1. Unicode CLDR ``likelySubtags`` (the default script of each language code), e.g.
#    ``ka → ka_Geor_GE``, ``pnb → pnb_Arab_PK``, ``sd → sd_Arab_PK``, ``bpy → bpy_Beng_IN``.
# 2. The script of the label's own Wikipedia edition, whose text lid.176 was trained on and
#    whose metadata the label is matched against (``languages.py`` routing above). A second
#    script is listed where that Wikipedia is published in both, through MediaWiki's
#    LanguageConverter variants or as articles in both scripts: ``sr``/``sh`` (Cyrillic and
#    Latin), ``kk`` (Cyrillic, Latin, Arabic), ``ku`` (Latin, Arabic), ``tg`` (Cyrillic,
#    Latin), ``uz`` (Latin, Cyrillic), ``tt`` (Cyrillic, Latin), ``gom`` (Devanagari, Latin).
# 3. ``mn`` also lists Mongolian script (CLDR ``mn_Mong_CN``), so that the only script of
#    that name has a label.
# Deliberately *not* listed: scripts a language is occasionally written in whose text would
# not match the label's metadata (``ja`` for Han-only text: Han without kana is routed to
# Chinese; ``hif`` in Devanagari: its Wikipedia is Latin; ``ku`` is Kurmanji, Sorani is
# ``ckb``).
_NON_LATIN_SCRIPTS: dict[str, tuple[str, ...]] = {
    # Cyrillic
    "av": ("Cyrl",), "ba": ("Cyrl",), "be": ("Cyrl",), "bg": ("Cyrl",), "bxr": ("Cyrl",),
    "ce": ("Cyrl",), "cv": ("Cyrl",), "krc": ("Cyrl",), "kv": ("Cyrl",), "ky": ("Cyrl",),
    "lez": ("Cyrl",), "mhr": ("Cyrl",), "mk": ("Cyrl",), "mrj": ("Cyrl",), "myv": ("Cyrl",),
    "os": ("Cyrl",), "ru": ("Cyrl",), "rue": ("Cyrl",), "sah": ("Cyrl",), "tyv": ("Cyrl",),
    "uk": ("Cyrl",), "xal": ("Cyrl",),
    "sr": ("Cyrl", "Latn"), "sh": ("Latn", "Cyrl"), "kk": ("Cyrl", "Latn", "Arab"),
    "tg": ("Cyrl", "Latn"), "uz": ("Latn", "Cyrl"), "tt": ("Cyrl", "Latn"), "mn": ("Cyrl", "Mong"),
    # Arabic
    "ar": ("Arab",), "arz": ("Arab",), "azb": ("Arab",), "ckb": ("Arab",), "fa": ("Arab",),
    "lrc": ("Arab",), "mzn": ("Arab",), "pnb": ("Arab",), "ps": ("Arab",), "sd": ("Arab",),
    "ug": ("Arab",), "ur": ("Arab",), "ku": ("Latn", "Arab"),
    # Other alphabets and abjads
    "el": ("Grek",), "he": ("Hebr",), "yi": ("Hebr",), "ka": ("Geor",), "xmf": ("Geor",),
    "hy": ("Armn",), "dv": ("Thaa",), "am": ("Ethi",),
    # East Asian
    "zh": ("Hani",), "yue": ("Hani",), "wuu": ("Hani",), "ja": ("Jpan",), "ko": ("Hang",),
    # South-East Asian and Tibetan
    "th": ("Thai",), "lo": ("Laoo",), "km": ("Khmr",), "my": ("Mymr",), "bo": ("Tibt",),
    # Indic (Brahmic)
    "hi": ("Deva",), "mr": ("Deva",), "ne": ("Deva",), "sa": ("Deva",), "mai": ("Deva",),
    "bh": ("Deva",), "new": ("Deva",), "dty": ("Deva",), "gom": ("Deva", "Latn"),
    "bn": ("Beng",), "as": ("Beng",), "bpy": ("Beng",), "pa": ("Guru",), "gu": ("Gujr",),
    "or": ("Orya",), "ta": ("Taml",), "te": ("Telu",), "kn": ("Knda",), "ml": ("Mlym",),
    "si": ("Sinh",),
}

LID176_SCRIPTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {label: _NON_LATIN_SCRIPTS.get(label, ("Latn",)) for label in LID176_LABELS}
)
"""lid.176 label → ISO 15924 script code(s) its language is written in, most usual first.
The 96 labels not listed in ``_NON_LATIN_SCRIPTS`` (``af`` … ``yo``) are Latin-only."""

SCRIPT_DEFAULT_LABEL: Mapping[str, str] = MappingProxyType({
    "Latn": "en", "Cyrl": "ru", "Arab": "ar", "Grek": "el", "Hebr": "he", "Geor": "ka",
    "Armn": "hy", "Thaa": "dv", "Ethi": "am", "Mong": "mn",
    "Hani": "zh", "Jpan": "ja", "Hang": "ko",
    "Thai": "th", "Laoo": "lo", "Khmr": "km", "Mymr": "my", "Tibt": "bo",
    "Deva": "hi", "Beng": "bn", "Guru": "pa", "Gujr": "gu", "Orya": "or", "Taml": "ta",
    "Telu": "te", "Knda": "kn", "Mlym": "ml", "Sinh": "si",
})
"""Script → the label given to a text in that script when none of the model's top-k labels
is written in it: the language with the most speakers (and the largest Wikipedia) among
the lid.176 labels of that script. Every script of ``LID176_SCRIPTS`` has one."""

_SCRIPT_SUBTAGS = {code.lower(): code for code in SCRIPT_DEFAULT_LABEL} | {"hans": "Hani", "hant": "Hani", "kore": "Hang"}


def label_scripts(label: str) -> tuple[str, ...] | None:
    """Scripts that texts with this LID label are written in, or None if unknown.

    Parameters
    ----------
    label : str
        A lid.176 label (``"sr"``, ``"__label__ja"``), or a form other detectors and input
        columns use: ``-``/``_`` subtags and old codes (``"zh-TW"``, ``"iw"``, ``"nb"``); a
        script subtag wins (``"sr-Latn"`` → ``("Latn",)``, ``"zh-Hant"`` → ``("Hani",)``).

    Returns
    -------
    tuple of str or None
        ISO 15924 codes (see [`LID176_SCRIPTS`][metaclip2.core.languages.LID176_SCRIPTS]); None for ``"other"`` and for labels
        that name no lid.176 language (the script check never changes those).
    """
    key = _canonical_code(label)
    if key.startswith("__label__"):
        key = key[len("__label__"):]
    if key in LID176_SCRIPTS:
        return LID176_SCRIPTS[key]
    parts = key.split("_")
    for sub in parts[1:]:
        if sub in _SCRIPT_SUBTAGS:
            return (_SCRIPT_SUBTAGS[sub],)
    base = _LABEL_ALIASES.get(key, _LABEL_ALIASES.get(parts[0], parts[0]))
    return LID176_SCRIPTS.get(base)

# ISO 639-3 (and 639-2/B) codes of the languages lid.176 names with a two-letter label, plus
# the individual languages that GlotLID/FineWeb-2 name inside a macrolanguage (arb for ar,
# cmn for zh, …). Three-letter lid.176 labels (ceb, war, …) are already ISO 639-3.
_ISO639_3: dict[str, str] = {
    "afr": "af", "amh": "am", "arg": "an", "ara": "ar", "arb": "ar", "asm": "as", "ava": "av",
    "aze": "az", "azj": "az", "bak": "ba", "bel": "be", "bul": "bg", "bih": "bh", "ben": "bn",
    "bod": "bo", "tib": "bo", "bre": "br", "bos": "bs", "cat": "ca", "che": "ce", "cos": "co",
    "ces": "cs", "cze": "cs", "chv": "cv", "cym": "cy", "wel": "cy", "dan": "da", "deu": "de",
    "ger": "de", "div": "dv", "ell": "el", "gre": "el", "eng": "en", "epo": "eo", "spa": "es",
    "est": "et", "ekk": "et", "eus": "eu", "baq": "eu", "fas": "fa", "per": "fa", "pes": "fa",
    "prs": "fa", "fin": "fi", "fra": "fr", "fre": "fr", "fry": "fy", "gle": "ga", "gla": "gd",
    "glg": "gl", "grn": "gn", "gug": "gn", "guj": "gu", "glv": "gv", "heb": "he", "hin": "hi",
    "hrv": "hr", "hat": "ht", "hun": "hu", "hye": "hy", "arm": "hy", "ina": "ia", "ind": "id",
    "ile": "ie", "ido": "io", "isl": "is", "ice": "is", "ita": "it", "jpn": "ja", "jav": "jv",
    "kat": "ka", "geo": "ka", "kaz": "kk", "khm": "km", "kan": "kn", "kor": "ko", "kur": "ku",
    "kmr": "ku", "kom": "kv", "kpv": "kv", "cor": "kw", "kir": "ky", "lat": "la", "ltz": "lb",
    "lim": "li", "lao": "lo", "lit": "lt", "lav": "lv", "lvs": "lv", "mlg": "mg", "plt": "mg",
    "mkd": "mk", "mac": "mk", "mal": "ml", "mon": "mn", "khk": "mn", "mar": "mr", "msa": "ms",
    "may": "ms", "zsm": "ms", "mlt": "mt", "mya": "my", "bur": "my", "nep": "ne", "npi": "ne",
    "nld": "nl", "dut": "nl", "nno": "nn", "nor": "no", "oci": "oc", "ori": "or", "ory": "or",
    "oss": "os", "pan": "pa", "pol": "pl", "pus": "ps", "pbt": "ps", "por": "pt", "que": "qu",
    "roh": "rm", "ron": "ro", "rum": "ro", "rus": "ru", "san": "sa", "srd": "sc", "snd": "sd",
    "hbs": "sh", "sin": "si", "slk": "sk", "slo": "sk", "slv": "sl", "som": "so", "sqi": "sq",
    "alb": "sq", "srp": "sr", "sun": "su", "swe": "sv", "swa": "sw", "swh": "sw", "tam": "ta",
    "tel": "te", "tgk": "tg", "tha": "th", "tuk": "tk", "tgl": "tl", "tur": "tr", "tat": "tt",
    "uig": "ug", "ukr": "uk", "urd": "ur", "uzb": "uz", "uzn": "uz", "vie": "vi", "vol": "vo",
    "wln": "wa", "yid": "yi", "ydd": "yi", "yor": "yo", "zho": "zh", "chi": "zh", "cmn": "zh",
    "lzh": "zh", "nan": "zh", "hak": "zh", "gan": "zh", "cdo": "zh", "emx": "eml", "egl": "eml",
    "rgn": "eml", "nob": "no", "gsw": "als", "als": "sq",  # als: only as als_Script (bare als is Alemannic)
}

# ISO 15924 script subtags (lower case) seen in xxx_Script and BCP-47 codes.
_SCRIPTS = frozenset(
    "latn cyrl arab hans hant hani deva beng grek hebr jpan kore hang thai ethi geor armn taml "
    "telu knda mlym gujr guru orya sinh khmr laoo mymr tibt thaa syrc tfng cans cher zyyy".split()
)


def _canonical_code(code: str) -> str:
    return code.strip().lower().replace("-", "_")


def _build_tables() -> tuple[dict[str, str | None], dict[str, str], dict[str, str]]:
    lid_to_wiki: dict[str, str | None] = {}
    lid_to_lang: dict[str, str] = {}
    wiki_to_lang: dict[str, str] = {}
    for label in LID176_LABELS:
        wiki = _LABEL_WIKIPEDIA_EXCEPTIONS.get(label, label)
        lang = _LABEL_MERGES.get(label, label)
        lid_to_wiki[label] = wiki
        lid_to_lang[label] = lang
        if wiki is not None:
            wiki_to_lang[wiki] = lang
    for wiki, lang in _VARIETY_ROUTES.items():
        if wiki_to_lang.get(wiki, lang) != lang:
            raise AssertionError(f"{wiki} routed to both {wiki_to_lang[wiki]} and {lang}")
        wiki_to_lang[wiki] = lang
    for wiki in _OTHER_WIKIPEDIAS:
        if wiki in wiki_to_lang:
            raise AssertionError(f"{wiki} routed to both {wiki_to_lang[wiki]} and other")
        wiki_to_lang[wiki] = OTHER
    return lid_to_wiki, lid_to_lang, wiki_to_lang


_LID_TO_WIKI, _LID_TO_LANG, _WIKI_TO_LANG = _build_tables()

LID176_TO_WIKIPEDIA: Mapping[str, str | None] = MappingProxyType(_LID_TO_WIKI)
"""lid.176 label → the Wikipedia (dump name) of the same language, or None (only ``lrc``)."""

LID176_TO_METADATA_LANGUAGE: Mapping[str, str] = MappingProxyType(_LID_TO_LANG)
"""lid.176 label → LID language its alt-texts are matched in (a group key, or ``"other"``)."""

WIKIPEDIA_TO_LID_LANGUAGE: Mapping[str, str] = MappingProxyType(
    {code: _WIKI_TO_LANG[code] for code in WIKIPEDIA_LANGUAGES}
)
"""Wikipedia dump name → LID language whose metadata it is merged into, or ``"other"``."""


def lid_to_metadata_language(label: str, default: str | None = OTHER) -> str:
    """LID language (metadata list) that an alt-text with this LID label is matched in.

    Parameters
    ----------
    label : str
        A lid.176 label (``"en"``, ``"__label__yue"``) or ``"other"``. Also accepted: the
        ``-``/region forms and old codes other detectors or an input language column use
        (``"zh-TW"``, ``"nb"``, ``"iw"``, ``"pt-BR"``), ISO 639-3 and ``xxx_Script`` codes
        (``"deu"``, ``"eng_Latn"``; see [`normalize_language_code`][metaclip2.core.languages.normalize_language_code]) and Wikipedia codes
        (``"be_tarask"``, ``"simple"``).
    default : str or None
        Returned for a label that names no known language; None raises ``KeyError``.

    Returns
    -------
    str
        A key of [`lid_language_groups`][metaclip2.core.languages.lid_language_groups] (``"yue"`` → ``"zh"``, ``"lrc"`` → ``"other"``).

    See Also
    --------
    - [`lid_language_groups`][metaclip2.core.languages.lid_language_groups] : The LID languages and the Wikipedias they merge.
    - [`normalize_language_code`][metaclip2.core.languages.normalize_language_code] : The code forms accepted.

    Examples
    --------
    >>> from metaclip2.core import lid_to_metadata_language
    >>> [lid_to_metadata_language(x) for x in ("en", "__label__yue", "zh-TW", "pt-BR", "deu", "lrc")]
    ['en', 'zh', 'zh', 'pt', 'de', 'other']
    >>> lid_to_metadata_language("xx", default=None)
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.UnknownLanguageError: unknown language label 'xx'
    """
    code = normalize_language_code(label)
    if code is not None:
        return code if code == OTHER else _LID_TO_LANG.get(code) or _WIKI_TO_LANG[code]
    if default is None:
        raise UnknownLanguageError(f"unknown language label {label!r}")
    return default


def normalize_language_code(code: str) -> str | None:
    """The lid.176 label (or Wikipedia code) a given language code stands for, or None if unknown.

    Accepts what data sets put in a language column: lid.176 labels and ``__label__`` forms,
    ISO 639-1 (``de``), ISO 639-3 and 639-2/B (``deu``, ``ger``; individual languages of a
    macrolanguage such as ``cmn``, ``arb``, ``zsm``), GlotLID/FineWeb-2 ``xxx_Script``
    (``eng_Latn``, ``cmn_Hani``), BCP-47 tags with script and/or region (``zh-Hans``,
    ``pt-BR``, ``sr-Latn-RS``), and Wikipedia codes (``be_tarask``, ``simple``).

    A code with a script subtag is read as ISO 639-3, as GlotLID and FineWeb-2 use it:
    ``als_Latn`` is Tosk Albanian (→ ``sq``), whereas a bare ``als`` is lid.176's Alemannic.

    Parameters
    ----------
    code : str

    Returns
    -------
    str or None
        A code that [`lid_to_metadata_language`][metaclip2.core.languages.lid_to_metadata_language] maps without falling back to its
        default, or None.

    Examples
    --------
    >>> [normalize_language_code(c) for c in ("eng", "eng_Latn", "zh-Hans", "pt-BR", "deu", "xx")]
    ['en', 'en', 'zh', 'pt', 'de', None]
    """
    if not isinstance(code, str):
        return None
    key = _canonical_code(code)
    if key.startswith("__label__"):
        key = key[len("__label__"):]
    if not key:
        return None
    if key == OTHER:
        return OTHER
    parts = key.split("_")
    scripted = len(parts) > 1 and parts[1] in _SCRIPTS
    for candidate in (key, parts[0]):
        if candidate == parts[0] and scripted and candidate in _ISO639_3:
            return _ISO639_3[candidate]  # xxx_Script: ISO 639-3 meaning first (als_Latn)
        c = _LABEL_ALIASES.get(candidate, candidate)
        if c in _LID_TO_LANG:
            return c
        w = WIKIPEDIA_ALIASES.get(c, c)
        if w in _WIKI_TO_LANG:
            return w
        if c in _ISO639_3:
            return _ISO639_3[c]
    return None


def wikipedia_to_lid_language(code: str) -> str:
    """Grouping key under which a Wikipedia's metadata is merged.

    Parameters
    ----------
    code : str
        A Wikipedia code in dump form (``"zh_yue"``) or domain form (``"zh-yue"``), or an
        alias from ``WIKIPEDIA_ALIASES`` (``"be_x_old"``, ``"gsw"``).

    Returns
    -------
    str
        A LID language (``"zh_yue"`` → ``"zh"``, ``"simple"`` → ``"en"``) or ``"other"``.

    Raises
    ------
    KeyError
        For a code that is not one of ``WIKIPEDIA_LANGUAGES`` (e.g. a Wikipedia created after
        2024-05); route it yourself rather than have a typo land in ``other`` silently.

    See Also
    --------
    - [`lid_language_groups`][metaclip2.core.languages.lid_language_groups] : Every grouping at once.
    - [`lid_to_metadata_language`][metaclip2.core.languages.lid_to_metadata_language] : The same for an alt-text's LID label.

    Examples
    --------
    >>> from metaclip2.core import wikipedia_to_lid_language
    >>> [wikipedia_to_lid_language(c) for c in ("en", "simple", "zh_yue", "zh-yue", "be_x_old")]
    ['en', 'en', 'zh', 'zh', 'be']
    """
    key = _canonical_code(code)
    key = WIKIPEDIA_ALIASES.get(key, key)
    try:
        return _WIKI_TO_LANG[key]
    except KeyError:
        raise UnknownLanguageError(f"{code!r} is not a known Wikipedia code (see WIKIPEDIA_LANGUAGES)") from None


def lid_language_groups() -> dict[str, list[str]]:
    """LID language → Wikipedias whose metadata it merges, primary Wikipedia first.

    Returns
    -------
    dict[str, list[str]]
        Keys sorted, with ``"other"`` last. Each list starts with the LID language's own
        Wikipedia (e.g. ``"zh"``, ``"cbk_zam"`` for ``cbk``); the rest follow sorted.
        ``"other"``'s list is sorted. Every code of ``WIKIPEDIA_LANGUAGES`` occurs exactly
        once. Metadata merged in this order (first source wins) is deterministic.

    See Also
    --------
    - [`wikipedia_to_lid_language`][metaclip2.core.languages.wikipedia_to_lid_language] : The group of one Wikipedia.
    - [`build_lid_metadata`][metaclip2.matching.lid_metadata.build_lid_metadata] : Merges metadata by these groups.

    Examples
    --------
    >>> from metaclip2.core import lid_language_groups
    >>> groups = lid_language_groups()
    >>> groups["en"], groups["zh"][:3], list(groups)[-1]
    (['en', 'simple'], ['zh', 'cdo', 'gan'], 'other')
    """
    groups: dict[str, list[str]] = {}
    for code in WIKIPEDIA_LANGUAGES:
        groups.setdefault(_WIKI_TO_LANG[code], []).append(code)
    out: dict[str, list[str]] = {}
    for lang in sorted(k for k in groups if k != OTHER):
        primary = _LID_TO_WIKI[lang]
        rest = sorted(c for c in groups[lang] if c != primary)
        out[lang] = [primary, *rest]
    out[OTHER] = sorted(groups.get(OTHER, []))
    return out


def lid_languages() -> tuple[str, ...]:
    """All LID languages (metadata list names), sorted, ``"other"`` last."""
    return tuple(lid_language_groups())
