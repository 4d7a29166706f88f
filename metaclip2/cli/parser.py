"""The command's argument parser: an unknown option is named, with the closest real one.

argparse reports a misspelt option late and vaguely: ``curate --metdata x`` first complains
that ``--metadata`` is required, and an extra option otherwise shows up as "unrecognized
arguments" of the top-level command. [`Parser`][metaclip2.cli.parser.Parser] instead says ``unknown option --metdata;
did you mean --metadata?`` in the verb that was given it (exit status 2, as every usage error).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys

__all__ = ["Parser", "unknown_options"]


def unknown_options(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """The options in `argv` that `parser` does not know, each with the closest known one.

    A token counts as an option when argparse would read it as one (it starts with ``-``, is
    not ``-`` alone nor a negative number); one that abbreviates known options (argparse's
    prefix matching) is known. Scanning stops at ``--``.

    Returns
    -------
    list of str
        ``"unknown option --metdata; did you mean --metadata?"`` (or without the suggestion
        when nothing is close), in the order given.

    Examples
    --------
    >>> import argparse
    >>> from metaclip2.cli.parser import unknown_options
    >>> p = argparse.ArgumentParser()
    >>> _ = p.add_argument("--metadata"); _ = p.add_argument("--t-en", type=float)
    >>> unknown_options(p, ["--metdata", "x", "--t-en", "-5", "--meta=y", "--zzz"])
    ['unknown option --metdata; did you mean --metadata?', 'unknown option --zzz']
    """
    known = [s for s in parser._option_string_actions]
    out = []
    for token in argv:
        if token == "--":
            break
        if not token.startswith(tuple(parser.prefix_chars)) or token == "-":
            continue
        if parser._negative_number_matcher.match(token) and not parser._has_negative_number_optionals:
            continue
        name = token.split("=", 1)[0]
        if name in parser._option_string_actions:
            continue
        if parser.allow_abbrev and name.startswith("--") and any(s.startswith(name) for s in known):
            continue  # an abbreviation (argparse itself says when it is ambiguous)
        close = difflib.get_close_matches(name, known, n=1)
        out.append(f"unknown option {name}" + (f"; did you mean {close[0]}?" if close else ""))
    return out


class Parser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose errors name unknown options and their closest match.

    Its subparsers are of the same class (argparse's default), so every verb behaves alike. A
    verb (a parser without subcommands) refuses arguments it does not take itself, rather than
    leaving them to the top-level parser, which does not know the verb's options.

    Examples
    --------
    >>> import contextlib, io
    >>> from metaclip2.cli.parser import Parser
    >>> p = Parser(prog="demo")
    >>> _ = p.add_argument("--metadata", required=True)
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     try:
    ...         p.parse_args(["--metdata", "x"])
    ...     except SystemExit as e:
    ...         print(e.code)
    2
    >>> err.getvalue().splitlines()[-1]
    'demo: error: unknown option --metdata; did you mean --metadata?'
    """

    _argv: list[str] = []

    def parse_known_args(self, args=None, namespace=None):  # noqa: D102 - argparse's
        self._argv = list(sys.argv[1:] if args is None else args)
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and not any(isinstance(a, argparse._SubParsersAction) for a in self._actions):
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def error(self, message: str):  # noqa: D102 - argparse's
        unknown = unknown_options(self, self._argv)
        if unknown and not message.startswith(("ambiguous option", "argument ")):
            message = "; ".join(unknown)
        elif (m := _INVALID_CHOICE.match(message)) and "did you mean" not in message and "maybe you meant" not in message:
            for action in self._actions:  # a misspelt verb or choice value: the closest one
                if action.choices is not None and m.group(1) in (*action.option_strings, action.metavar, action.dest):
                    close = difflib.get_close_matches(m.group(2), [str(c) for c in action.choices], n=1)
                    message += f"; did you mean {close[0]!r}?" if close else ""
                    break
        super().error(message)


_INVALID_CHOICE = re.compile(r"argument (\S+): invalid choice: '([^']*)'")
