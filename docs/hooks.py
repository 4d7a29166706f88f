"""mkdocs hooks: pages generated at build time from the single source they document.

* ``index.md`` becomes README.md, with its ``docs/…`` links made relative to the docs folder;
* ``api/cli.md``'s ``<!-- cli-help -->`` marker becomes the ``--help`` text of every
  ``metaclip2`` command and subcommand, taken from the parser the command itself uses.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI_MARKER = "<!-- cli-help -->"


def _readme() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.sub(r"\]\(docs/", "](", text)


def _helps(parser: argparse.ArgumentParser, prog: str, level: int):
    yield level, prog, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _helps(sub, f"{prog} {name}", level + 1)


def _cli_help() -> str:
    from metaclip2.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix it for byte-stable pages
    try:
        parts = []
        for level, prog, text in _helps(build_parser(), "metaclip2", 3):
            parts.append(f"{'#' * min(level, 5)} `{prog}`\n\n```text\n{text.rstrip()}\n```\n")
        return "\n".join(parts)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri == "index.md":
        return _readme()
    if CLI_MARKER in markdown:
        with contextlib.redirect_stdout(io.StringIO()):
            return markdown.replace(CLI_MARKER, _cli_help())
    return markdown
