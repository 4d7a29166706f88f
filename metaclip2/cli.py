"""``metaclip2`` command line: a thin layer over the library's functions.

Each stage module registers its own subcommands (``add_subcommands``); every
leaf command sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, what it adds); a module that is not there yet or fails to import for a
# missing optional dependency only loses its own subcommands.
_COMMAND_MODULES = (
    "metaclip2.metadata.cli",
    "metaclip2.matching.cli",
    "metaclip2.curation.cli",
    "metaclip2.curation.demo",
)


def build_parser() -> argparse.ArgumentParser:
    from metaclip2 import __version__

    parser = argparse.ArgumentParser(
        prog="metaclip2",
        description="Worldwide metadata-based curation of image-text pairs (Meta CLIP 2).",
    )
    parser.add_argument("--version", action="version", version=f"metaclip2 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        module.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished shards are kept and a re-run resumes from them", file=sys.stderr)
        return 130
    except (ImportError, FileNotFoundError, ValueError) as e:
        # Library errors already say what is wrong and what to do; no traceback for them.
        print(f"metaclip2 {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
