"""``metaclip2 curate | count | thresholds | sample | report``.

The options are built from :class:`~metaclip2.pipeline.config.CurationConfig`'s fields, so
each one's default and check live in one place.
"""

from __future__ import annotations

import argparse

from metaclip2.pipeline.config import add_config_arguments, config_from_arguments

__all__ = ["add_subcommands"]

_STAGE1, _STAGE2, _STAGE3, _EXEC = 1, 2, 3, "exec"


def _inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metadata", required=True, metavar="DIR", help="per-LID-language metadata directory (<lang>.tsv files)")
    p.add_argument("--input", required=True, nargs="+", metavar="GLOB",
                   help="input shards or glob patterns: .jsonl[.gz] (image or flat form), .parquet, WebDataset .tar")  # fmt: skip


def _shard_selection(p: argparse.ArgumentParser, plan: bool) -> None:
    p.add_argument("--shard-index", type=int, action="append", default=None, metavar="I",
                   help="run only shard I (its position in the sorted input list; repeatable), "
                   "e.g. $SLURM_ARRAY_TASK_ID in an array job")  # fmt: skip
    if plan:
        p.add_argument("--plan", action="store_true",
                       help="only record the run's parameters in OUT/run.json (once, before an array of --shard-index jobs)")  # fmt: skip


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``curate``, ``count``, ``thresholds``, ``sample`` and ``report``."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "curate", formatter_class=fmt,
        help="curate a pool of image alt-texts end to end (Algorithm 1): match, threshold, sample, report",
        description="Run stages 1-3 over the input shards into the run directory OUT, then write its datacard and plots.\n"
        "Re-running the same command resumes a killed run: finished shards are verified (sizes and sha256 of their\n"
        "outputs, fingerprints of their inputs) and skipped, damaged ones redone. OUT refuses other metadata, inputs\n"
        "or parameters, a changed input (unless --redo-changed), and a second command while one runs in it.",
        epilog="example:\n  metaclip2 curate --metadata metadata/lid --input 'pool/*.jsonl' --out runs/pool --t-en 20000 --workers 8",
    )  # fmt: skip
    _inputs(p)
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    add_config_arguments(p, (_STAGE1, _STAGE2, _STAGE3, _EXEC))
    p.set_defaults(func=run_curate)

    p = subparsers.add_parser(
        "count", formatter_class=fmt,
        help="curation stage 1 alone: LID, matching and per-shard entry counts",
        description="Stage 1 of Algorithm 1 over the input shards: language identification, matching against the\n"
        "metadata, and per-shard entry counts, into OUT/stage1. Finished shards are verified and skipped.",
        epilog="examples:\n  metaclip2 count --metadata metadata/lid --input 'pool/*.parquet' --out runs/pool --workers 8\n"
        "  metaclip2 count ... --plan            # once, before a Slurm array of:\n"
        "  metaclip2 count ... --shard-index $SLURM_ARRAY_TASK_ID",
    )  # fmt: skip
    _inputs(p)
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    add_config_arguments(p, (_STAGE1, _EXEC))
    _shard_selection(p, plan=True)
    p.set_defaults(func=run_count)

    p = subparsers.add_parser(
        "thresholds", formatter_class=fmt,
        help="curation stage 2 alone: merged counts, thresholds, entry probabilities",
        description="Stage 2 of Algorithm 1: sum the shards' entry counts, derive the tail share p from English at t_en,\n"
        "a threshold per language, and the entry probabilities (OUT/stage2/probabilities.bin).",
        epilog="example:\n  metaclip2 thresholds --out runs/pool --t-en 20000",
    )  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR", help="run directory with a finished stage 1")
    add_config_arguments(p, (_STAGE2,))
    p.add_argument("-q", "--quiet", dest="progress", action="store_false", default=argparse.SUPPRESS, help="no notes on stderr")
    p.set_defaults(func=run_thresholds)

    p = subparsers.add_parser(
        "sample", formatter_class=fmt,
        help="curation stage 3 alone: keep decisions and the curated subset",
        description="Stage 3 of Algorithm 1: a keep decision for every matched pair (epoch 0, the same as an\n"
        "OnlineSampler's), and the curated subset in OUT/stage3. Finished shards are verified and skipped.",
        epilog="example:\n  metaclip2 sample --out runs/pool --seed 0 --unit image --output-format parquet",
    )  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR", help="run directory with a finished stage 2")
    add_config_arguments(p, (_STAGE3, _EXEC))
    _shard_selection(p, plan=False)
    p.set_defaults(func=run_sample)

    p = subparsers.add_parser(
        "report", formatter_class=fmt,
        help="datacard JSON and plots of a curation run",
        description="Write RUN_DIR/datacard.json (what went in, matched and was kept, per language and shard)\n"
        "and, with matplotlib installed, PNG plots in RUN_DIR/plots.",
        epilog="example:\n  metaclip2 report runs/pool",
    )  # fmt: skip
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--no-plots", action="store_true", help="only the datacard")
    p.set_defaults(func=run_report)


def _shards(args: argparse.Namespace):
    return [] if getattr(args, "plan", False) else args.shard_index


def run_curate(args: argparse.Namespace) -> int:
    """``metaclip2 curate``."""
    from metaclip2.pipeline.datacard import write_report
    from metaclip2.pipeline.run import curate

    config = config_from_arguments(args)
    res = curate(args.metadata, args.input, args.out, config)
    rep = write_report(res.out)
    t = res.datacard["totals"]
    print(f"{t['pairs']} pairs in ({t['invalid']} invalid, {t['no_metadata']} without metadata, {t['unmatched']} unmatched), "
          f"{t['matched']} matched, {t['kept']} kept")  # fmt: skip
    print(f"curated subset: {res.out / 'stage3'}/*.{config.output_format}")
    print(f"probabilities:  {res.probabilities}")
    print(f"datacard:       {rep['datacard']}")
    for p in rep["plots"]:
        print(f"plot:           {p}")
    return 0


def run_count(args: argparse.Namespace) -> int:
    """``metaclip2 count``."""
    from metaclip2.pipeline.run import count

    stats = count(args.metadata, args.input, args.out, config_from_arguments(args), shards=_shards(args))
    pairs = sum(s.pairs for s in stats)
    matched = sum(s.matched for s in stats)
    print(f"stage 1: {len(stats)} shards, {pairs} pairs, {matched} matched -> {args.out}/stage1")
    return 0


def run_thresholds(args: argparse.Namespace) -> int:
    """``metaclip2 thresholds``."""
    from metaclip2.pipeline.run import compute_thresholds

    info = compute_thresholds(args.out, config_from_arguments(args))
    print(f"p = {info['p']}")
    for lang, t in info["t"].items():
        print(f"{lang}\t{t}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    """``metaclip2 sample``."""
    from metaclip2.pipeline.run import sample

    stats = sample(args.out, config_from_arguments(args), shards=_shards(args))
    kept = sum(s.kept for s in stats)
    matched = sum(s.matched for s in stats)
    print(f"stage 3: {kept} of {matched} matched pairs kept -> {args.out}/stage3")
    return 0


def run_report(args: argparse.Namespace) -> int:
    """``metaclip2 report``."""
    from metaclip2.pipeline.datacard import write_report

    rep = write_report(args.run_dir, plots=not args.no_plots)
    print(f"datacard: {rep['datacard']}")
    for p in rep["plots"]:
        print(f"plot:     {p}")
    return 0
