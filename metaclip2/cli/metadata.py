"""``metaclip2 metadata …``: build metadata from WordNet, a Wikipedia dump and page-view files.

Subcommands::

    wordnet    one language's WordNet/OMW entries, one per line
    ngrams     dump -> n-gram counts file (parallel over worker processes)
    pageviews  page-view files -> per-language ``<lang>.views.tsv`` (views, title)
    build      one language's metadata (<lang>.tsv + <lang>.summary.json) from given inputs
    lid        per-Wikipedia metadata directory -> per-LID-language metadata + matchers
    download   pages-articles dumps and hourly page-view files -> a local tree (resumable, verified)
    import     your own entry list (text, JSON list, JSON object keys) -> <lang>.tsv
    all        ngrams + page views + WordNet + build (+ lid) for one language, or with
               --languages for every language of a downloaded tree (then LID merge)

Every handler is set as ``func`` on its parser and returns an exit status; the top-level
``metaclip2`` CLI calls [`add_subcommands`][metaclip2.cli.metadata.add_subcommands].
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter
from pathlib import Path
from metaclip2.core.atomic import AtomicFile
from metaclip2.core.errors import ParameterError

__all__ = ["add_subcommands", "read_views", "write_views"]

log = logging.getLogger(__name__)


def _use_nltk_data(path: str | None) -> None:
    if not path:
        return
    import nltk

    path = str(Path(path).resolve())
    os.environ["NLTK_DATA"] = path
    if path not in nltk.data.path:
        nltk.data.path.insert(0, path)


def write_views(path: str | os.PathLike, views: Counter) -> None:
    """Write one language's title view totals as ``views<TAB>title`` lines, most viewed first."""
    with AtomicFile(path, "w") as f:
        for title, v in sorted(views.items(), key=lambda tv: (-tv[1], tv[0])):
            f.write(f"{v}\t{title}\n")


def read_views(path: str | os.PathLike) -> Counter:
    """Read a file written by [`write_views`][metaclip2.cli.metadata.write_views] (title -> views)."""
    out: Counter = Counter()
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f:
            v, _, title = line.rstrip("\n").partition("\t")
            out[title] += int(v)
    return out


def _add_caps(p: argparse.ArgumentParser) -> None:
    from metaclip2.metadata import build as b
    from metaclip2.metadata import pageviews as pv

    def cap(s: str):
        return None if s.lower() in ("none", "0", "inf") else int(s)

    g = p.add_argument_group("caps and filters (defaults: the paper's)")
    g.add_argument("--no-wordnet", action="store_true", help="leave WordNet out")
    g.add_argument("--head-word-only", action="store_true", help="English: only each synset's first lemma (MetaCLIP 1)")
    g.add_argument("--no-numbers", action="store_true", help='leave out "0" … "99"')
    g.add_argument("--unigram-fraction", type=float, default=b.DEFAULT_UNIGRAM_FRACTION)
    g.add_argument("--max-unigrams", type=cap, default=b.DEFAULT_MAX_UNIGRAMS, help="'none' for no cap")
    g.add_argument("--bigram-method", choices=("pmi", "corrected"), default="pmi")
    g.add_argument("--min-pmi", type=float, default=b.DEFAULT_MIN_PMI)
    g.add_argument("--max-bigrams", type=cap, default=b.DEFAULT_MAX_BIGRAMS, help="'none' for no cap")
    g.add_argument("--title-fraction", type=float, default=pv.DEFAULT_TITLE_FRACTION)
    g.add_argument("--max-titles", type=cap, default=pv.DEFAULT_MAX_TITLES, help="'none' for no cap")
    g.add_argument("--max-length", type=int, default=b.DEFAULT_MAX_LENGTH)
    g.add_argument("--cap-counts", choices=b.CAP_MODES, default="added", help="added (default, as the release): a cap counts entries a source adds after filters and dedupe; candidates: earlier behaviour")
    p.add_argument("--nltk-data", help="nltk data directory holding corpora/wordnet and the OMW zip (else NLTK_DATA)")


def _caps(args) -> dict:
    return dict(
        wordnet=None if args.no_wordnet else "auto",
        head_word_only=args.head_word_only,
        numbers=not args.no_numbers,
        unigram_fraction=args.unigram_fraction,
        max_unigrams=args.max_unigrams,
        bigram_method=args.bigram_method,
        min_pmi=args.min_pmi,
        max_bigrams=args.max_bigrams,
        title_fraction=args.title_fraction,
        max_titles=args.max_titles,
        max_length=args.max_length,
        cap_mode=args.cap_counts,
    )


def _progress(args) -> bool:
    return not getattr(args, "quiet", False)


def _report(result, paths) -> None:
    counts = result.counts()
    print(f"{result.lang}: {len(result.entries)} entries ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    for p in paths:
        print(f"  wrote {p}")


def _cmd_wordnet(args) -> int:
    from metaclip2.metadata.wordnet import wordnet_entries

    _use_nltk_data(args.nltk_data)
    entries = wordnet_entries(args.lang, head_word_only=args.head_word_only, progress=_progress(args))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(e + "\n" for e in entries)
        log.info(f"{args.lang}: {len(entries)} WordNet entries -> {args.out}")
    else:
        sys.stdout.writelines(e + "\n" for e in entries)
    return 0


def _count_ngrams(dump, lang: str, out: Path, workers: int, progress: bool, args=None) -> Path:
    from metaclip2.metadata.ngrams import write_dump_ngrams

    kw = dict(
        memory_limit=getattr(args, "memory_limit", None),
        force_language=getattr(args, "force_language", False),
        tmp_dir=getattr(args, "tmp_dir", None),
        progress=progress,
    )
    if getattr(args, "executor", "local") == "ray":
        from metaclip2.execution.ray_executor import RayExecutor

        # --workers sizes a local Ray instance; ignored when joining a cluster.
        with RayExecutor(address=args.ray_address, num_cpus=workers) as ex:
            stats = write_dump_ngrams(dump, lang, out, executor=ex, **kw)
    else:
        stats = write_dump_ngrams(dump, lang, out, workers=workers, **kw)
    print(
        f"{lang}: {stats['articles']} articles, {stats['n_tokens']} tokens, {stats['unigrams']} unigrams, "
        f"{stats['bigrams']} bigrams ({stats['parts']} parts, {stats['runs']} runs; "
        f"counting {stats['count_seconds']:.1f} s, merge {stats['merge_seconds']:.1f} s)",
        file=sys.stderr,
    )
    return out


def _cmd_ngrams(args) -> int:
    out = _count_ngrams(args.dump, args.lang, Path(args.out), args.workers, _progress(args), args)
    log.info(f"{args.lang}: n-gram counts -> {out}")
    return 0


def _add_scale(p: argparse.ArgumentParser) -> None:
    from metaclip2.metadata.ngram_runs import parse_memory

    def memory(s: str):
        try:
            return parse_memory(s)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    p.add_argument("--memory-limit", type=memory, default=None, metavar="SIZE",
                   help="per-process budget for n-gram tables, e.g. 128MB or 2GiB (binary: MB = MiB = 2^20 bytes, GB = 2^30); "
                   "runs spill to disk (default: none)")  # fmt: skip
    p.add_argument("--tmp-dir", default=None, help="where spilled runs go (default: beside the output); must be shared with Ray workers")
    p.add_argument("--force-language", action="store_true", help="count a dump whose siteinfo names another language than --lang")


def _cmd_pageviews(args) -> int:
    from metaclip2.metadata.pageviews import PageviewStats, read_pageviews

    stats = PageviewStats()
    views = read_pageviews(args.files, languages=args.lang or None, progress=_progress(args), stats=stats)
    out = Path(args.out_dir)
    for lang in sorted(views):
        write_views(out / f"{lang}.views.tsv", views[lang])
    log.info(f"{len(views)} languages -> {out}/<lang>.views.tsv; lines: {stats.as_dict()}")
    return 0


def _titles_kwargs(args) -> dict:
    if getattr(args, "views", None):
        return {"titles": read_views(args.views)}
    if getattr(args, "pageviews", None):
        return {"pageviews": args.pageviews}
    return {}


def _cmd_build(args) -> int:
    from metaclip2.metadata.build import build_metadata, write_language_metadata

    _use_nltk_data(args.nltk_data)
    if args.views and args.pageviews:
        raise ParameterError("give --views or --pageviews, not both")
    result = build_metadata(args.lang, ngrams=args.ngrams, progress=_progress(args), **_titles_kwargs(args), **_caps(args))
    _report(result, write_language_metadata(result, args.out_dir))
    return 0


def _cmd_lid(args) -> int:
    from metaclip2.matching.lid_metadata import build_lid_metadata

    index = build_lid_metadata(args.wiki_dir, args.out_dir, matchers=not args.no_matchers, progress=_progress(args), unknown=args.unknown)
    for lid, info in index.items():
        print(f"{lid}: {info['entries']} entries from {', '.join(info['wikipedia'])}")
    return 0


def _cmd_all(args) -> int:
    from metaclip2.metadata.build import build_metadata, write_language_metadata

    _use_nltk_data(args.nltk_data)
    out = Path(args.out_dir)
    ngrams = None
    if args.dump:
        ngrams = out / "ngrams" / f"{args.lang}.ngrams"
        if args.reuse and ngrams.exists():
            log.info(f"reusing {ngrams}")
        else:
            _count_ngrams(args.dump, args.lang, ngrams, args.workers, _progress(args), args)
    result = build_metadata(args.lang, ngrams=ngrams, pageviews=args.pageviews or None, progress=_progress(args), **_caps(args))
    _report(result, write_language_metadata(result, out / "wikipedia"))
    if args.lid_dir:
        from metaclip2.matching.lid_metadata import build_lid_metadata

        build_lid_metadata(out / "wikipedia", args.lid_dir, matchers=True, progress=_progress(args), unknown="other")
        print(f"  LID metadata -> {args.lid_dir}")
    return 0


# --- issue 13: download, import, and `all --languages` over a downloaded tree -----------------


def _cmd_download(args) -> int:
    from metaclip2.metadata.download import download_sources

    # A DownloadError (an unreachable site) is a ValueError: the top-level CLI prints it without a traceback.
    record = download_sources(
        args.out, languages=args.languages, date=args.date, pageview_dates=args.pageview_dates,
        hours_per_date=args.hours_per_date, seed=args.seed, pageviews_from=args.pageviews_from,
        pageviews_to=args.pageviews_to, base_url=args.base_url, pageviews_base_url=args.pageviews_base_url, dump_path=args.dump_path,
        connections=args.connections, retries=args.retries, timeout=args.timeout, progress=_progress(args),
        file_deadline=args.file_deadline,
    )  # fmt: skip
    files = record["files"]
    by_status = Counter(f["status"] for f in files)
    print(f"{len(files)} files under {args.out}: " + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    # Exactly what each new file was checked with ("sha1 checked", "size checked", "decompressed whole", ...).
    checked = Counter(f["message"] for f in files if f["status"] == "downloaded")
    if checked:
        print("  downloaded: " + ", ".join(f"{n} {what}" for what, n in sorted(checked.items())))
    failed = [f for f in files if f["status"] not in ("downloaded", "skipped")]
    for f in failed:
        print(f"  {f['status']}: {f['url']} {f['message']}")
    if failed:
        log.info("  re-run the same command to resume; complete files are skipped")
    return 1 if failed else 0


def _cmd_import(args) -> int:
    from metaclip2.metadata.importing import import_metadata

    r = import_metadata(args.file, args.lang, args.out_dir, list_format=args.list_format, numbers=args.numbers, max_length=args.max_length)
    s = r.summary
    print(f"{args.lang}: {s['entries']} entries from {s['candidates']} {s['list_format']} items of {args.file} "
          f"(dropped {sum(s['dropped_by_filter'].values())}: {s['dropped_by_filter']}; duplicates {s['duplicates']})")  # fmt: skip
    print(f"  wrote {Path(args.out_dir) / (args.lang + '.tsv')}")
    return 0


def _cmd_all_languages(args) -> int:
    from metaclip2.pipeline.builds.worldwide import build_all

    _use_nltk_data(args.nltk_data)
    if args.dump or args.pageviews or args.lid_dir or args.reuse:
        raise ParameterError("--languages builds from --tree: --dump, --pageviews, --lid-dir and --reuse are for one language")
    if not args.tree:
        raise ParameterError("--languages needs --tree (the directory `metaclip2 metadata download` wrote)")
    report = build_all(
        args.tree, args.out_dir, args.languages, date=args.date, pageviews=not args.no_page_views,
        executor=args.executor, workers=args.workers, ray_address=args.ray_address, split_bytes=args.split_bytes,
        missing_segmenter=args.missing_segmenter, matchers=not args.no_matchers, progress=_progress(args), **_caps(args),
    )  # fmt: skip
    print(report.table())
    print(f"LID metadata: {Path(args.out_dir) / 'lid'} ({len(report.lid_index)} LID languages); use it as `metaclip2 curate --metadata`")
    return 0


def _cmd_all_dispatch(args) -> int:
    if args.languages:
        if args.lang:
            raise ParameterError("give a language or --languages, not both")
        return _cmd_all_languages(args)
    if not args.lang:
        raise ParameterError("give a Wikipedia code, or --languages all|en,de,... with --tree")
    return _cmd_all(args)


def _size(s: str) -> int:
    from metaclip2.core.sizes import parse_bytes

    try:
        return parse_bytes(s, "--split-bytes")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_all_languages_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("every language of a downloaded tree (--languages)")
    g.add_argument("--languages", help="'all' (every dump in --tree) or en,de,zh,...; builds each, merges per LID language into OUT_DIR/lid")
    g.add_argument("--tree", help="directory written by `metaclip2 metadata download` (or a mirror with the dump site's layout)")
    g.add_argument("--date", help="dump date YYYYMMDD (default: each language's latest in the tree)")
    g.add_argument("--no-page-views", action="store_true", help="leave titles out even if the tree has page-view files")
    g.add_argument("--missing-segmenter", choices=("error", "skip", "no-ngrams"), default="error",
                   help="a no-space language without its segmenter: stop (default), leave it out, or build it without n-grams")  # fmt: skip
    g.add_argument("--split-bytes", type=_size, default=256 << 20, metavar="SIZE",
                   help="dumps this large are counted one at a time over all workers, e.g. 1GB or bytes "
                   "(binary: MB = 2^20 bytes, GB = 2^30; default: 256MiB)")  # fmt: skip
    g.add_argument("--no-matchers", action="store_true", help="do not save matchers in OUT_DIR/lid")


def _add_worldwide_subcommands(leaf) -> None:
    from metaclip2.metadata import download as dl
    from metaclip2.metadata.build import DEFAULT_MAX_LENGTH

    p = leaf("download", "fetch pages-articles dumps and hourly page-view files (resumable, checksum-verified)", _cmd_download)
    p.add_argument("--languages", required=True, help="'all' (every Wikipedia) or en,de,zh,...")
    p.add_argument("-o", "--out", required=True, help="local tree: <code>wiki/<date>/… and other/pageviews/…")
    p.add_argument("--date", default=dl.DEFAULT_DUMP_DATE, help="dump date YYYYMMDD (default: the paper's %(default)s)")
    p.add_argument("--pageview-dates", type=int, default=dl.DEFAULT_PAGEVIEW_DATES, help="random dates of page views (paper: 40; 0: none)")
    p.add_argument("--hours-per-date", type=int, default=1, help="hourly files per date (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed drawing the dates and hours")
    p.add_argument("--pageviews-from", help="first date to draw from (default: 365 days before --date)")
    p.add_argument("--pageviews-to", help="last date to draw from (default: the day before --date)")
    p.add_argument("--base-url", default=dl.DEFAULT_BASE_URL, help="dump site or mirror with the same layout")
    p.add_argument("--pageviews-base-url", help="page-view root (default: BASE_URL/other/pageviews)")
    p.add_argument("--dump-path", default=dl.DEFAULT_DUMP_PATH, help="a dump's path below BASE_URL, for mirrors with another layout (default: %(default)s)")
    p.add_argument("--connections", type=int, default=dl.DEFAULT_CONNECTIONS, help="parallel connections (dumps.wikimedia.org allows 2)")
    p.add_argument("--retries", type=int, default=5, help="retries per file after a network error (each resumes)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="socket timeout, seconds; a body must also bring 1 KiB/s over each such window (default %(default)s)")
    p.add_argument("--file-deadline", type=float, default=dl.DEFAULT_FILE_DEADLINE,
                   help="seconds one file may take, retries included; the .part is kept for a re-run (default %(default)s)")

    p = leaf("import", "turn your own entry list (text lines, JSON list, or JSON object keys) into a language's metadata", _cmd_import)
    p.add_argument("file", help="one entry per line, a JSON list of strings, or a JSON object (MetaCLIP 1 metadata.json)")
    p.add_argument("--lang", required=True, help="Wikipedia code the list is for (names <lang>.tsv)")
    p.add_argument("--out", "--out-dir", dest="out_dir", required=True, help="receives <lang>.tsv and <lang>.summary.json (e.g. the wikipedia/ directory)")
    p.add_argument("--list-format", choices=("auto", "text", "json-list", "json-keys"), default="auto",
                   help="how FILE lists its entries (default: detected from its first character)")
    p.add_argument("--numbers", action="store_true", help='put "0" ... "99" first, as built metadata does')
    p.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH, help="drop entries longer than this (characters)")


def _add_executor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="where n-gram counting runs (ray: the `ray` extra)")
    p.add_argument("--ray-address", default=None, help="Ray cluster to join: 'auto' or HOST:PORT (default: start a local Ray)")


_EXAMPLES = {
    "wordnet": "metaclip2 metadata wordnet fr -o fr.wordnet.txt",
    "ngrams": "metaclip2 metadata ngrams frwiki-20240601-pages-articles.xml.bz2 --lang fr -o fr.ngrams --workers 8",
    "pageviews": "metaclip2 metadata pageviews pageviews-2024*.gz --out views/",
    "build": "metaclip2 metadata build fr --ngrams fr.ngrams --views views/fr.views.tsv --out wikipedia/",
    "lid": "metaclip2 metadata lid wikipedia/ lid/",
    "download": "metaclip2 metadata download --languages en,fr,zh -o tree/",
    "import": "metaclip2 metadata import metadata.json --lang en --out-dir wikipedia/",
    "all": "metaclip2 metadata all --languages all --tree tree/ --out metadata/ --workers 8",
}


def add_subcommands(subparsers) -> argparse.ArgumentParser:
    """Register ``metadata`` and its subcommands on an argparse ``subparsers`` object.

    Each leaf parser gets ``func`` (call ``args.func(args)``, returns an exit status).
    """
    md = subparsers.add_parser(
        "metadata", help="build metadata (WordNet, Wikipedia n-grams, titles) per language",
        description="Build the per-language entry lists that curation matches alt-texts against.",
        epilog="examples:\n" + "\n".join(f"  {e}" for e in _EXAMPLES.values()), formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = md.add_subparsers(dest="metadata_command", metavar="STEP", required=True)

    def leaf(name, help, func):
        p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {_EXAMPLES[name]}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=func)
        return p

    p = leaf("wordnet", "one language's WordNet/OMW entries, one per line", _cmd_wordnet)
    p.add_argument("lang", help="Wikipedia code (en, fr, zh …) or nltk code (eng, fra …)")
    p.add_argument("--head-word-only", action="store_true", help="English: only each synset's first lemma (MetaCLIP 1)")
    p.add_argument("-o", "--out", help="output file (default: stdout)")
    p.add_argument("--nltk-data", help="nltk data directory (else NLTK_DATA)")

    p = leaf("ngrams", "count a Wikipedia dump's unigrams and bigrams into a counts file", _cmd_ngrams)
    p.add_argument("dump", nargs="+", help="<lang>wiki-<date>-pages-articles*.xml.bz2 (multistream dumps split over workers; several part files allowed)")
    p.add_argument("--lang", required=True, help="Wikipedia code of the dump (picks the tokenizer)")
    p.add_argument("-o", "--out", required=True, help="n-gram counts file to write")
    p.add_argument("--workers", "--processes", dest="workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: all cores)")
    _add_executor(p)
    _add_scale(p)

    p = leaf("pageviews", "sum hourly page-view files into per-language <lang>.views.tsv", _cmd_pageviews)
    p.add_argument("files", nargs="+", help="pageviews-YYYYMMDD-HH0000.gz files")
    p.add_argument("--out", "--out-dir", dest="out_dir", required=True)
    p.add_argument("--lang", action="append", help="keep only this language (repeatable; default all)")

    p = leaf("build", "build one language's metadata from given inputs", _cmd_build)
    p.add_argument("lang", help="Wikipedia code")
    p.add_argument("--out", "--out-dir", dest="out_dir", required=True, help="receives <lang>.tsv and <lang>.summary.json")
    p.add_argument("--ngrams", help="n-gram counts file (from `metadata ngrams`)")
    p.add_argument("--views", help="<lang>.views.tsv (from `metadata pageviews`)")
    p.add_argument("--pageviews", nargs="+", help="page-view files, read for this language")
    _add_caps(p)

    p = leaf("lid", "merge per-Wikipedia metadata into per-LID-language metadata and matchers", _cmd_lid)
    p.add_argument("wiki_dir", help="directory of <wikicode>.tsv files")
    p.add_argument("out_dir", help="receives <lidlang>.tsv, <lidlang>.matcher, index.json")
    p.add_argument("--no-matchers", action="store_true", help="do not build matchers")
    p.add_argument("--unknown", choices=("error", "other"), default="error", help="files whose code is not a known Wikipedia")

    _add_worldwide_subcommands(leaf)
    p = leaf("all", "every step for one language, or (--languages) for every language of a downloaded tree", _cmd_all_dispatch)
    p.add_argument("lang", nargs="?", help="Wikipedia code (one-language mode; see --languages for many)")
    _add_all_languages_args(p)
    p.add_argument("--dump", help="the language's pages-articles dump")
    p.add_argument("--pageviews", nargs="*", default=[], help="page-view files")
    p.add_argument("--out", "--out-dir", dest="out_dir", required=True, help="receives ngrams/<lang>.ngrams and wikipedia/<lang>.tsv")
    p.add_argument("--lid-dir", help="also merge out-dir/wikipedia into LID languages here")
    p.add_argument("--workers", "--processes", dest="workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: all cores)")
    _add_executor(p)
    _add_scale(p)
    p.add_argument("--reuse", action="store_true", help="reuse an existing n-gram counts file")
    _add_caps(p)
    return md
