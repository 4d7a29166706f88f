"""``metaclip2 demo``: the whole pipeline on the bundled SAMPLE data."""

from __future__ import annotations

import argparse

__all__ = ["add_subcommands"]


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``metaclip2 demo [--out DIR] [--workers N] [-q]``."""
    p = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on a small multilingual sample shipped with the package",
        description="Build metadata from bundled sample sources, generate a sample pool, curate it, "
        "and write the datacard, the HTML report (run/report.html) and plots. Everything is SAMPLE data.",
        epilog="examples:\n  metaclip2 demo --out /tmp/demo --workers 2\n  metaclip2 sweep /tmp/demo/run --t-en 5,10,20,40,80",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="metaclip2-demo", metavar="DIR", help="output directory (default: ./metaclip2-demo)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default: 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metaclip2.pipeline.builds.demo import run_demo

    run_demo(args.out, workers=args.workers, progress=not args.quiet)
    return 0
