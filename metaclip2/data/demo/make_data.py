"""Regenerate the demo's bundled SAMPLE sources from ``concepts.tsv`` (deterministic).

Run from the repository root::

    NLTK_DATA=/path/to/nltk_data python metaclip2/data/demo/make_data.py

Writes, next to this script:

* ``wordnet/<lang>.txt``   — one lemma per line, playing the role of WordNet/OMW. English is a
  slice of Princeton WordNet 3.0 (the most sense-tagged noun lemmas, read from nltk's
  ``corpora/wordnet/index.noun``; needs NLTK_DATA); other languages are the hand-written
  translations of ``concepts.tsv``.
* ``corpus/<lang>.txt.gz`` — generated encyclopedia-style sentences (Zipf-distributed concepts
  and multi-word place names), playing the role of a Wikipedia dump for n-gram counting.
* ``ngrams/<lang>.ngrams.gz`` — n-gram counts of the corpora of languages written without
  spaces (zh, ja, th), counted with the ``segment`` extra; the demo uses them only when that
  extra is missing.
* ``pageviews/pageviews-*.gz`` — two synthetic hourly page-view files.

Every file is a pure function of ``concepts.tsv``, the templates below and fixed seeds; gzip
headers carry no time stamp, so a re-run gives byte-identical files.
"""

from __future__ import annotations

import gzip
import os
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LANGUAGES = ("en", "de", "fr", "es", "zh", "ja", "ru", "ar", "th")
NO_SPACE = ("zh", "ja", "th")
SEED = 20240501
N_SENTENCES = 1500
N_WORDNET_EN = 3000
ZIPF_S = 1.0

CORPUS_TEMPLATES = {
    "en": ["The {a} is often seen in {p}.", "In {p}, the {a} and the {b} are common.", "A {a} is shown next to a {b}.",
           "The history of the {a} in {p} is long.", "Many people in {p} have a {a}."],
    "de": ["Der Begriff {a} ist in {p} bekannt.", "In {p} gibt es {a} und {b}.", "Ein Bild zeigt {a} neben {b}.",
           "Die Geschichte von {a} in {p} ist lang.", "Viele Menschen in {p} lieben {a}."],
    "fr": ["Le mot {a} est connu à {p}.", "À {p}, on trouve {a} et {b}.", "Une image montre {a} près de {b}.",
           "L'histoire de {a} à {p} est longue.", "Beaucoup de gens à {p} aiment {a}."],
    "es": ["La palabra {a} es conocida en {p}.", "En {p} hay {a} y {b}.", "Una imagen muestra {a} junto a {b}.",
           "La historia de {a} en {p} es larga.", "Mucha gente en {p} ama {a}."],
    "zh": ["{a}在{p}很常见。", "在{p}，有{a}和{b}。", "图片显示{a}在{b}旁边。", "{p}的{a}历史悠久。", "{p}的很多人喜欢{a}。"],
    "ja": ["{a}は{p}でよく見られる。", "{p}には{a}と{b}がある。", "写真には{a}と{b}が写っている。", "{p}の{a}の歴史は長い。",
           "{p}の多くの人は{a}が好きだ。"],
    "ru": ["Слово {a} известно в городе {p}.", "В городе {p} есть {a} и {b}.", "На фото {a} и {b}.",
           "История: {a} и город {p}.", "Многие жители города {p} любят {a}."],
    "ar": ["كلمة {a} معروفة في {p}.", "في {p} يوجد {a} و {b}.", "تظهر الصورة {a} بجانب {b}.", "تاريخ {a} في {p} طويل.",
           "كثير من الناس في {p} يحبون {a}."],
    "th": ["{a}พบได้ทั่วไปใน{p}", "ใน{p}มี{a}และ{b}", "ภาพแสดง{a}ข้าง{b}", "ประวัติของ{a}ใน{p}ยาวนาน", "คนจำนวนมากใน{p}ชอบ{a}"],
}  # fmt: skip

_LATIN_PLACES = ["New York", "Hong Kong", "Buenos Aires", "Los Angeles", "Cape Town", "Tel Aviv", "Kuala Lumpur",
                 "Rio de Janeiro", "San Francisco", "Sri Lanka"]  # fmt: skip
PLACES = {
    "en": _LATIN_PLACES, "de": _LATIN_PLACES, "fr": _LATIN_PLACES, "es": _LATIN_PLACES,
    "ru": ["Нижний Новгород", "Великий Новгород", "Старый Оскол", "Сергиев Посад", "Великие Луки"],
    "ar": ["أبو ظبي", "الدار البيضاء", "شرم الشيخ", "بيت لحم", "رأس الخيمة"],
    "zh": ["纽约", "香港", "北京", "上海", "东京"],
    "ja": ["東京", "大阪", "京都", "札幌", "横浜"],
    "th": ["กรุงเทพมหานคร", "เชียงใหม่", "ภูเก็ต", "พัทยา", "ขอนแก่น"],
}  # fmt: skip

PAGEVIEW_FILES = ("pageviews-20240501-120000.gz", "pageviews-20240601-180000.gz")


def read_concepts(path: Path = HERE / "concepts.tsv") -> dict[str, list[str]]:
    """``concepts.tsv`` as language -> list of words (row ``i`` is concept ``i`` in every language)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:] if line]
    return {lang: [r[j] for r in rows] for j, lang in enumerate(header)}


def zipf_weights(n: int, s: float = ZIPF_S) -> list[float]:
    return [1.0 / (k + 1) ** s for k in range(n)]


def _write_gzip(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))


def english_wordnet_slice(nltk_data: Path, n: int, must: list[str]) -> list[str]:
    """The `n` noun lemmas of WordNet 3.0 with the most tagged senses, plus `must`, ranked."""
    rows = []
    with open(nltk_data / "corpora" / "wordnet" / "index.noun", encoding="utf-8") as f:
        for line in f:
            if line.startswith(" "):
                continue  # licence header
            parts = line.split()
            lemma, p_cnt = parts[0], int(parts[3])
            tagsense_cnt = int(parts[5 + p_cnt])
            rows.append((-tagsense_cnt, lemma.replace("_", " ")))
    rows.sort()
    out = [lemma for _, lemma in rows[:n]]
    seen = set(out)
    out += [w for w in must if w not in seen]
    return out


def corpus(lang: str, concepts: list[str], rng: random.Random) -> list[str]:
    weights = zipf_weights(len(concepts))
    places = PLACES[lang]
    templates = CORPUS_TEMPLATES[lang]
    out = []
    for _ in range(N_SENTENCES):
        a, b = rng.choices(concepts, weights=weights, k=2)
        out.append(rng.choice(templates).format(a=a, b=b, p=rng.choice(places)))
    return out


def pageviews(concepts: dict[str, list[str]], rng: random.Random) -> str:
    lines = []
    for lang in LANGUAGES:
        words = concepts[lang]
        titles = [w[:1].upper() + w[1:] for w in words] + PLACES[lang]
        weights = zipf_weights(len(titles), 0.8)
        for title, w in zip(titles, weights):
            views = 1 + int(rng.random() * 400 * w)
            t = title.replace(" ", "_")
            lines.append(f"{lang} {t} {views} 0")
            lines.append(f"{lang}.m {t} {views // 2} 0")  # mobile Wikipedia: folded into {lang}
        # Not Wikipedia (Wiktionary) / namespaces / zero views: all must be left out.
        lines.append(f"{lang}.d {words[0]} 999999 0")
        lines.append(f"{lang} Special:Search 99999 0")
        lines.append(f"{lang} File:Sample.jpg 5000 0")
        lines.append(f"{lang} Zero_views_page 0 0")
    rng.shuffle(lines)
    return "\n".join(lines) + "\n"


def main() -> None:
    nltk_data = Path(os.environ.get("NLTK_DATA", ""))
    if not (nltk_data / "corpora" / "wordnet" / "index.noun").exists():
        sys.exit("set NLTK_DATA to a folder holding corpora/wordnet (WordNet 3.0)")
    concepts = read_concepts()
    (HERE / "wordnet").mkdir(exist_ok=True)
    for lang in LANGUAGES:
        words = english_wordnet_slice(nltk_data, N_WORDNET_EN, concepts["en"]) if lang == "en" else concepts[lang]
        (HERE / "wordnet" / f"{lang}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
        sentences = corpus(lang, concepts[lang], random.Random(f"{SEED}-corpus-{lang}"))
        _write_gzip(HERE / "corpus" / f"{lang}.txt.gz", "\n".join(sentences) + "\n")
        if lang in NO_SPACE:
            from metaclip2.metadata.ngrams import count_ngrams

            (HERE / "ngrams").mkdir(exist_ok=True)
            count_ngrams(sentences, lang).save(HERE / "ngrams" / f"{lang}.ngrams.gz")
    for i, name in enumerate(PAGEVIEW_FILES):
        _write_gzip(HERE / "pageviews" / name, pageviews(concepts, random.Random(f"{SEED}-pageviews-{i}")))
    licence = nltk_data / "corpora" / "wordnet" / "LICENSE"
    (HERE / "wordnet" / "LICENSE-WordNet-3.0.txt").write_bytes(licence.read_bytes())
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"wrote {HERE} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
