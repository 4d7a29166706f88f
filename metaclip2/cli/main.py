"""The ``metaclip2`` command: each verb group's module registers its subcommands.

Exit status: 0 success; 1 an error in the data or the run (the message names the file and what
to do); 2 a usage error (a bad option or parameter, or an extra the option needs is not
installed); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from metaclip2.core.errors import Metaclip2Error, MissingExtraError, ParameterError

__all__ = ["build_parser", "main"]

# Verb groups, in --help order.
_COMMAND_MODULES = ("metadata", "matching", "curation", "demo")


def build_parser() -> argparse.ArgumentParser:
    """The whole command's parser."""
    import importlib

    from metaclip2 import __version__

    parser = argparse.ArgumentParser(
        prog="metaclip2",
        description="Worldwide metadata-based curation of image-text pairs (Meta CLIP 2).",
    )
    parser.add_argument("--version", action="version", version=f"metaclip2 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(f"metaclip2.cli.{name}").add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished shards are kept and a re-run resumes from them", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
    except Metaclip2Error as e:
        # Our errors already say what is wrong and what to do: one line, no traceback.
        print(f"metaclip2 {args.command}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, (ParameterError, MissingExtraError)) else 1


if __name__ == "__main__":
    sys.exit(main())
