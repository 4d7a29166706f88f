"""``metaclip2 curate | count | thresholds | sample | report`` (hooked in by ``metaclip2.cli``)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_subcommands"]


def _common_stage1(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metadata", required=True, metavar="DIR", help="per-LID-language metadata directory (<lang>.tsv files)")
    p.add_argument("--input", required=True, nargs="+", metavar="GLOB",
                   help="input shards or glob patterns: .jsonl[.gz] (image or flat form), .parquet, WebDataset .tar")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line/row, naming file and line")
    p.add_argument("--max-chars", type=int, default=None, metavar="N", help="alt-texts longer than N characters are invalid (default 4096)")
    p.add_argument("--input-format", choices=("jsonl", "parquet", "tar"), default=None, help="default: from each file name")
    p.add_argument("--min-confidence", type=float, default=None, metavar="P", help="LID predictions below P count as 'other'")
    p.add_argument("--lid-model", default=None, metavar="PATH", help="fastText LID model instead of the bundled lid.176.ftz")


def _common_exec(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default 1)")
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="where shards run (ray: pip install 'metaclip2[ray]')")
    p.add_argument("--ray-address", default=None, metavar="ADDR", help="Ray cluster to use: 'auto' or HOST:PORT (default: start a local one)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _common_stage2(p: argparse.ArgumentParser) -> None:
    p.add_argument("--t-en", type=float, default=None, metavar="T", help="English threshold t_en (default 170000)")
    p.add_argument("--english", choices=("keep", "recompute"), default="keep",
                   help="keep t_en for English (release, default) or recompute it from p (paper)")
    p.add_argument("--p", type=float, default=None, metavar="P", help="tail share to use instead of deriving it from English counts")


def _common_stage3(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--unit", choices=("image", "pair"), default="image",
                   help="image: one matched alt-text per image (release, default); pair: each pair alone (paper)")
    p.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", help="curated subset format (default jsonl)")


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``curate``, ``count``, ``thresholds``, ``sample`` and ``report``.

    Each sets ``func`` (``func(args) -> int`` exit status) in the parsed namespace.
    """
    p = subparsers.add_parser(
        "curate",
        help="curate a pool of image alt-texts end to end (Algorithm 1): match, threshold, sample, report",
        description="Run stages 1-3 over the input shards into the run directory OUT, then write its datacard and plots. "
        "Re-running the same command resumes a killed run; OUT refuses other metadata, inputs or parameters.",
    )
    _common_stage1(p)
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    _common_stage2(p)
    _common_stage3(p)
    _common_exec(p)
    p.set_defaults(func=run_curate)

    p = subparsers.add_parser("count", help="curation stage 1 alone: LID, matching and per-shard entry counts")
    _common_stage1(p)
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    _common_exec(p)
    _add_shard_selection(p, plan=True)
    p.set_defaults(func=run_count)

    p = subparsers.add_parser("thresholds", help="curation stage 2 alone: merged counts, thresholds, entry probabilities")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory with a finished stage 1")
    _common_stage2(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_thresholds)

    p = subparsers.add_parser("sample", help="curation stage 3 alone: keep decisions and the curated subset")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory with a finished stage 2")
    _common_stage3(p)
    _common_exec(p)
    _add_shard_selection(p, plan=False)
    p.set_defaults(func=run_sample)

    p = subparsers.add_parser("report", help="datacard JSON and plots of a curation run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--no-plots", action="store_true", help="only the datacard")
    p.set_defaults(func=run_report)


def _stage1_kwargs(args) -> dict:
    from metaclip2.curation.readers import DEFAULT_MAX_CHARS

    return dict(
        strict=args.strict,
        max_chars=args.max_chars if args.max_chars is not None else DEFAULT_MAX_CHARS,
        input_format=args.input_format,
        min_confidence=args.min_confidence,
        lid_model=args.lid_model,
    )


def _exec_kwargs(args) -> dict:
    return dict(workers=args.workers, executor=args.executor, ray_address=args.ray_address, progress=not args.quiet)


def _add_shard_selection(p: argparse.ArgumentParser, plan: bool) -> None:
    p.add_argument("--shard-index", type=int, action="append", default=None, metavar="I",
                   help="run only shard I (its position in the sorted input list; repeatable), "
                   "e.g. $SLURM_ARRAY_TASK_ID in an array job")  # fmt: skip
    if plan:
        p.add_argument("--plan", action="store_true",
                       help="only record the run's parameters in OUT/run.json (once, before an array of --shard-index jobs)")


def _shards(args):
    if getattr(args, "plan", False):
        return []
    return args.shard_index


def _t_en(args):
    from metaclip2.curation.threshold import DEFAULT_T_EN

    t = DEFAULT_T_EN if args.t_en is None else args.t_en
    return int(t) if float(t).is_integer() else t


def _fail(e: Exception) -> int:
    print(f"error: {e}", file=sys.stderr)
    return 2


def _expected_errors():
    from metaclip2.curation.readers import InvalidInputError
    from metaclip2.curation.run import RunMismatchError
    from metaclip2.metadata.entries import MetadataError

    return (RunMismatchError, InvalidInputError, MetadataError, FileNotFoundError, ImportError, ValueError)


def run_curate(args: argparse.Namespace) -> int:
    """``metaclip2 curate``."""
    from metaclip2.curation.datacard import write_report
    from metaclip2.curation.run import curate

    try:
        res = curate(args.metadata, args.input, args.out, t_en=_t_en(args), english=args.english, p=args.p,
                     seed=args.seed, unit=args.unit, format=args.format, **_stage1_kwargs(args), **_exec_kwargs(args))  # fmt: skip
    except _expected_errors() as e:
        return _fail(e)
    rep = write_report(res.out)
    t = res.datacard["totals"]
    print(f"{t['pairs']} pairs in ({t['invalid']} invalid, {t['no_metadata']} without metadata, {t['unmatched']} unmatched), "
          f"{t['matched']} matched, {t['kept']} kept")  # fmt: skip
    print(f"curated subset: {res.out / 'stage3'}/*.{args.format}")
    print(f"probabilities:  {res.probabilities}")
    print(f"datacard:       {rep['datacard']}")
    for p in rep["plots"]:
        print(f"plot:           {p}")
    return 0


def run_count(args: argparse.Namespace) -> int:
    """``metaclip2 count``."""
    from metaclip2.curation.run import count

    try:
        stats = count(args.metadata, args.input, args.out, shards=_shards(args), **_stage1_kwargs(args), **_exec_kwargs(args))
    except _expected_errors() as e:
        return _fail(e)
    pairs = sum(s["pairs"] for s in stats)
    matched = sum(s["matched"] for s in stats)
    print(f"stage 1: {len(stats)} shards, {pairs} pairs, {matched} matched -> {args.out}/stage1")
    return 0


def run_thresholds(args: argparse.Namespace) -> int:
    """``metaclip2 thresholds``."""
    from metaclip2.curation.run import compute_thresholds

    try:
        info = compute_thresholds(args.out, t_en=_t_en(args), english=args.english, p=args.p, progress=not args.quiet)
    except _expected_errors() as e:
        return _fail(e)
    print(f"p = {info['p']}")
    for lang, t in info["t"].items():
        print(f"{lang}\t{t}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    """``metaclip2 sample``."""
    from metaclip2.curation.run import sample

    try:
        stats = sample(args.out, seed=args.seed, unit=args.unit, format=args.format, shards=_shards(args), **_exec_kwargs(args))
    except _expected_errors() as e:
        return _fail(e)
    kept = sum(s["kept"] for s in stats)
    matched = sum(s["matched"] for s in stats)
    print(f"stage 3: {kept} of {matched} matched pairs kept -> {args.out}/stage3")
    return 0


def run_report(args: argparse.Namespace) -> int:
    """``metaclip2 report``."""
    from metaclip2.curation.datacard import write_report

    try:
        rep = write_report(args.run_dir, plots=not args.no_plots)
    except _expected_errors() as e:
        return _fail(e)
    print(f"datacard: {rep['datacard']}")
    for p in rep["plots"]:
        print(f"plot:     {p}")
    return 0
