"""The ``metaclip2`` command: each verb group's module registers its subcommands.

Exit status: 0 success; 1 an error in the data or the run (the message names the file and what
to do); 2 a usage error (a bad option or parameter, a file or directory a parameter names that
does not exist, or an extra the option needs is not installed); 3 a lenient run (no ``--strict``) that finished but skipped damaged inputs (see the
datacard's ``invalid_by_reason``); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from metaclip2.cli.logs import LOG_LEVELS, setup_logging, to_run_log
from metaclip2.cli.parser import Parser
from metaclip2.core.errors import Metaclip2Error, MissingExtraError, MissingInputError, ParameterError

__all__ = ["build_parser", "main", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_DAMAGED"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DAMAGED = 0, 1, 2, 3

# The errors that mean "fix the command": a bad value, a path that names nothing (or a step not
# run yet), a missing extra. Everything else (damaged or unusable data, a failed run) is exit 1.
_USAGE_ERRORS = (ParameterError, MissingInputError, MissingExtraError)

# Verb groups, in --help order.
_COMMAND_MODULES = ("metadata", "matching", "curation", "demo")

_EPILOG = """\
exit status:
  0  success
  1  an error in the data or the run (one line naming the file and what to do)
  2  a usage error: a bad option or parameter, a file or directory an option names that does
     not exist (or an earlier step not run yet), or an extra the option needs is not installed
  3  a lenient run (no --strict) that finished but skipped damaged input files or records
 130 interrupted (finished shards are kept; the same command resumes)

every verb takes --log-level {debug,info,warning,error} (any case) and -q (warnings and errors only);
curate, count, thresholds and sample also append their log to RUN/metaclip2.log.
Progress goes to stderr: a bar on a terminal, a plain line every few seconds otherwise.

examples:
  metaclip2 demo --out /tmp/demo
  metaclip2 curate --metadata metadata/lid --input 'pool/*.jsonl' --out runs/pool --t-en 20000 --workers 8
  metaclip2 sweep runs/pool --t-en 1000,5000,20000,50000     # choose t_en from stage 1 alone
  metaclip2 <verb> --help
"""


def _leaves(parser: argparse.ArgumentParser):
    """Every parser that runs a verb (has no subcommands of its own)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
        return
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
            yield from _leaves(child)


def _add_common(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``-q`` on a verb (``-q`` kept where the verb defines its own)."""
    options = {s for a in parser._actions for s in a.option_strings}
    parser.add_argument("--log-level", type=str.lower, choices=LOG_LEVELS, default=None,
                        help="messages shown on stderr, in any case (default: info; -q: warning)")  # fmt: skip
    if "-q" not in options:
        parser.add_argument("-q", "--quiet", action="store_true", default=False, help="only warnings and errors")


def build_parser() -> argparse.ArgumentParser:
    """The whole command's parser.

    See Also
    --------
    - [`main`][metaclip2.cli.main.main] : Parse and run a command.

    Examples
    --------
    >>> from metaclip2.cli.main import build_parser
    >>> parser = build_parser()
    >>> args = parser.parse_args(["sweep", "runs/r1", "--t-en", "2,5"])
    >>> args.command, args.run, args.t_en_list
    ('sweep', 'runs/r1', '2,5')
    """
    import importlib

    from metaclip2 import __version__

    parser = Parser(
        prog="metaclip2",
        description="Worldwide metadata-based curation of image-text pairs (Meta CLIP 2).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"metaclip2 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(f"metaclip2.cli.{name}").add_subcommands(sub)
    for leaf in _leaves(parser):
        if leaf is not parser:
            _add_common(leaf)
    return parser


def _quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quiet", False)) or getattr(args, "progress", True) is False


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns its exit status (see the module notes).

    See Also
    --------
    - [`build_parser`][metaclip2.cli.main.build_parser] : The parser main uses.
    - [`curate`][metaclip2.pipeline.run.api.curate] : All three stages and the datacard in one call.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.cli.main import main
    >>> main(["curate", "--metadata", f"{d}/metadata", "--input", f"{d}/pool.jsonl", "--out", f"{d}/run",
    ...       "--t-en", "2", "-q"])
    6 pairs in (0 invalid, 0 without metadata, 0 unmatched), 6 matched, 5 kept
    curated subset: .../run/subset/*.jsonl
    ...
    0
    >>> main(["sweep", f"{d}/run", "--t-en", "1,2"])
    expected kept sizes ...
    0

    Errors are one line on stderr and an exit status: 2 for a usage error (a bad option, or a
    path that names nothing), 1 for the data or the run:

    >>> main(["sweep", f"{d}/run"])  # no candidate thresholds
    2
    >>> main(["sweep", f"{d}/nowhere", "--t-en", "2"])  # no such run
    2
    >>> os.makedirs(f"{d}/broken"); _ = open(f"{d}/broken/run.json", "w").write("{")
    >>> main(["sweep", f"{d}/broken", "--t-en", "2"])  # a damaged run
    1
    >>> tmp.cleanup()
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed --help/--version (0) or the usage error (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    root = logging.getLogger("metaclip2")
    saved = (list(root.handlers), root.level, root.propagate)  # restored: main() may run in-process
    setup_logging(getattr(args, "log_level", None), quiet=_quiet(args))
    log = logging.getLogger("metaclip2.cli")
    try:
        prepare = getattr(args, "prepare", None)  # e.g. read --config: its errors are the verb's, as below
        if prepare is not None:
            prepare(args)
            setup_logging(getattr(args, "log_level", None), quiet=_quiet(args))  # the file may say progress = false
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except KeyboardInterrupt:
        log.error("interrupted; finished shards are kept and a re-run resumes from them")
        return 130
    except BrokenPipeError:  # e.g. piped into `head`: the reader has what it wanted
        _silence_stdout()
        return EXIT_OK
    except Metaclip2Error as e:
        # Our errors already say what is wrong and what to do: one line, no traceback.
        log.debug("where it was raised:", exc_info=True)  # --log-level debug shows the traceback
        print(f"metaclip2 {args.command}: error: {e}", file=sys.stderr)
        to_run_log(logging.ERROR, f"metaclip2 {args.command}: error: {e}")
        return EXIT_USAGE if isinstance(e, _USAGE_ERRORS) else EXIT_ERROR
    finally:
        for h in root.handlers:
            if h not in saved[0]:
                h.close()
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]


if __name__ == "__main__":
    sys.exit(main())
