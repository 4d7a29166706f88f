"""Short real-language captions per LID label, for testing the LID script check.

Three sources, all offline and shippable or generated:

* ``demo``: the bundled demo corpus ``metaclip2/data/demo/corpus/<lang>.txt.gz`` (template
  captions with real words: ar, de, en, es, fr, ja, ru, th, zh), every line;
* ``omw``: WordNet / Open Multilingual WordNet lemmas read through nltk from the shared test
  data (``shared/data/nltk_data``), 2-4 random lemmas of one language per phrase;
* ``cldr``: Unicode CLDR names shipped in Babel's locale data (territories, languages,
  months, weekdays), 2-4 per phrase; this covers the scripts neither other source has
  (Hangul, Lao, Khmer, Myanmar, Tibetan, Georgian, Armenian, Ethiopic, the Indic scripts).

Phrases are drawn with a fixed seed per (language, source), so the sets are the same on
every run. Scripts without spaces (Han, kana, Thai, Lao, Khmer, Myanmar) are joined without
a separator. :func:`caption_sets` returns whatever sources are available, and says which
are missing and why.

Run as a script to print the per-script accuracy of the bundled lid.176 with and without
the script check (the table of the issue's closing note)::

    PYTHONPATH=. python tests/lid_captions.py
"""

from __future__ import annotations

import gzip
import os
import random
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_CORPUS = ROOT / "metaclip2" / "data" / "demo" / "corpus"
# ../shared/data beside the project root.
SHARED_CANDIDATES = (ROOT.parent / "shared" / "data",)

DEMO_LANGS = ("ar", "de", "en", "es", "fr", "ja", "ru", "th", "zh")
# LID label -> OMW language code (nltk).
OMW_LANGS = {
    "zh": "cmn", "el": "ell", "he": "heb", "ar": "arb", "bg": "bul", "en": "eng",
    "fr": "fra", "it": "ita", "pt": "por", "nl": "nld", "pl": "pol", "sk": "slk", "sl": "slv",
    "hr": "hrv", "da": "dan", "sv": "swe", "ca": "cat", "eu": "eus", "gl": "glg", "lt": "lit",
    "is": "isl", "sq": "als", "no": "nob", "id": "ind", "ms": "zsm",
}
# LID label -> CLDR locale.
CLDR_LANGS = {
    "zh": "zh_Hans", "ja": "ja", "ko": "ko", "th": "th", "lo": "lo", "km": "km", "my": "my",
    "bo": "bo", "el": "el", "he": "he", "ka": "ka", "hy": "hy", "am": "am", "hi": "hi",
    "mr": "mr", "ne": "ne", "bn": "bn", "pa": "pa", "gu": "gu", "or": "or", "ta": "ta",
    "te": "te", "kn": "kn", "ml": "ml", "si": "si", "ru": "ru", "uk": "uk", "fa": "fa",
    "ur": "ur", "de": "de", "fr": "fr", "es": "es", "it": "it", "pt": "pt", "pl": "pl",
    "tr": "tr", "vi": "vi", "ro": "ro", "hu": "hu", "cs": "cs", "fi": "fi",
}
UNSPACED = {"zh", "ja", "th", "lo", "km", "my"}
N_OMW = 400
N_CLDR = 300

EUROPEAN = ("ca", "cs", "da", "de", "en", "es", "eu", "fi", "fr", "gl", "hr", "hu", "is", "it",
            "lt", "nl", "no", "pl", "pt", "ro", "sk", "sl", "sq", "sv")
"""Latin-script European languages of the sets."""


def shared_data() -> Path | None:
    """The shared test data folder, or None if absent."""
    for path in SHARED_CANDIDATES:
        if (path / "nltk_data").is_dir():
            return path
    return None


def _phrases(words: list[str], n: int, seed: str, joiner: str) -> list[str]:
    words = sorted(set(words))
    rng = random.Random(seed)
    return [joiner.join(rng.sample(words, rng.randint(2, 4))) for _ in range(n)] if len(words) >= 4 else []


def _clean(word: str) -> str:
    word = word.replace("_", " ").replace("+", " ")
    kept = "".join(c for c in word if c == " " or unicodedata.category(c)[0] in "LM")
    return " ".join(kept.split())


def demo_captions(label: str) -> list[str]:
    """Every caption of the bundled demo corpus of one language."""
    with gzip.open(DEMO_CORPUS / f"{label}.txt.gz", "rt", encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def omw_phrases(label: str, nltk_data: Path) -> list[str]:
    """Phrases of 2-4 WordNet/OMW lemmas of one language (nltk, shared data)."""
    os.environ.setdefault("NLTK_DATA", str(nltk_data))
    import nltk
    from nltk.corpus import wordnet as wn

    if str(nltk_data) not in nltk.data.path:
        nltk.data.path.insert(0, str(nltk_data))
    if not wn.omw_langs:
        wn.add_omw()
    code = OMW_LANGS[label]
    names = wn.all_lemma_names() if code == "eng" else wn.all_lemma_names(lang=code)
    words = [w for w in (_clean(n) for n in names if "GAP!" not in n) if w]
    return _phrases(words, N_OMW, f"{label}-omw", "" if label in UNSPACED else " ")


def cldr_phrases(label: str) -> list[str]:
    """Phrases of 2-4 CLDR names (Babel locale data) of one language."""
    from babel import Locale

    loc = Locale.parse(CLDR_LANGS[label])
    words = [v for k, v in loc.territories.items() if k.isalpha()]
    words += list(loc.languages.values())
    words += list(loc.months["format"]["wide"].values()) + list(loc.days["format"]["wide"].values())
    words = [w for w in (_clean(w) for w in words) if w]
    return _phrases(words, N_CLDR, f"{label}-cldr", "" if label in UNSPACED else " ")


def caption_sets() -> tuple[dict[str, list[str]], list[str]]:
    """Captions per expected LID label, from every available source.

    Returns
    -------
    sets : dict[str, list[str]]
        Label → captions (demo, then OMW, then CLDR), in a fixed order.
    missing : list of str
        One line per unavailable source, saying why.
    """
    sets: dict[str, list[str]] = {}
    missing: list[str] = []
    for label in DEMO_LANGS:
        sets.setdefault(label, []).extend(demo_captions(label))
    data = shared_data()
    if data is None:
        missing.append(f"omw: no shared test data at {' or '.join(map(str, SHARED_CANDIDATES))}")
    else:
        for label in OMW_LANGS:
            sets.setdefault(label, []).extend(omw_phrases(label, data / "nltk_data"))
    try:
        import babel  # noqa: F401
    except ImportError:
        missing.append("cldr: Babel is not installed (pip install 'metaclip2[test]')")
    else:
        for label in CLDR_LANGS:
            sets.setdefault(label, []).extend(cldr_phrases(label))
    return dict(sorted(sets.items())), missing


def main() -> None:  # pragma: no cover - prints the closing-note table
    import time
    from collections import Counter

    from metaclip2.core.languages import lid_to_metadata_language
    from metaclip2.matching.lid import detect_languages, script_check
    from metaclip2.matching.scripts import dominant_scripts

    sets, missing = caption_sets()
    for line in missing:
        print("missing source:", line)
    by_script: dict[str, list] = {}
    for label, texts in sets.items():
        script = dominant_scripts(texts[0])[0]
        by_script.setdefault(script, []).append((label, texts))
    print(f"{'script':6s} {'languages':34s} {'captions':>8s} {'raw':>7s} {'checked':>7s} {'changed':>7s}")
    changes: Counter = Counter()
    total_raw = total_new = total = 0
    for script in sorted(by_script):
        n = hit_raw = hit_new = changed = 0
        for label, texts in by_script[script]:
            want = lid_to_metadata_language(label)
            raw = detect_languages(texts, script_check=False)
            new, ch = script_check(texts, raw)
            changes.update(ch)
            n += len(texts)
            hit_raw += sum(lid_to_metadata_language(x) == want for x in raw)
            hit_new += sum(lid_to_metadata_language(x) == want for x in new)
            changed += sum(ch.values())
        langs = ",".join(label for label, _ in by_script[script])
        print(f"{script:6s} {langs[:34]:34s} {n:8d} {hit_raw / n:7.1%} {hit_new / n:7.1%} {changed:7d}")
        total += n
        total_raw += hit_raw
        total_new += hit_new
    print(f"{'all':6s} {'':34s} {total:8d} {total_raw / total:7.1%} {total_new / total:7.1%} {sum(changes.values()):7d}")
    print("most frequent changes:", ", ".join(f"{a}->{b} {c}" for (a, b), c in changes.most_common(12)))
    t = time.perf_counter()
    detect_languages(sets["zh"])
    print(f"(zh set: {len(sets['zh'])} captions in {time.perf_counter() - t:.3f}s with the check)")


if __name__ == "__main__":
    main()
