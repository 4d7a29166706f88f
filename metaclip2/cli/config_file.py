"""``--config FILE`` and ``--print-config``: a curation run's parameters in a TOML file.

The file's keys are the [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig] field names
(``t_en``, ``seed``, ``text_keys``, ...) and the run's ``metadata``, ``input`` and ``out``
([`RUN_KEYS`][metaclip2.cli.config_file.RUN_KEYS]). Options given on the command line override the file; a key the file does
not set keeps its default. A command uses the keys it has options for, so one file describing
a run serves ``curate``, ``count``, ``thresholds`` and ``sample`` alike (the last two take
``out`` as their RUN when none is given, so ``--out NEW`` forks it). Relative paths are
relative to the current directory, as on the command line. [`format_config`][metaclip2.cli.config_file.format_config] writes such a
file, every field included (an unset optional one as a comment), and reading it back gives the
same config.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
from typing import Any, Iterable

from metaclip2.core.errors import Metaclip2Error, MissingInputError, ParameterError
from metaclip2.pipeline.run.config import CurationConfig

__all__ = ["RUN_KEYS", "read_config_file", "format_config"]

#: The run's own settings that a config file may hold besides the config's fields.
RUN_KEYS = ("metadata", "input", "out")

_PATHS = {"metadata": "str", "input": "strs", "out": "str"}


def _kind(f: dataclasses.Field) -> str | None:
    """What TOML value a field takes: str, strs (a string or a list of them), bool, size; None:
    numbers, left to the config's own checks."""
    t = str(f.type)
    if f.name in ("matcher_memory", "memory_per_worker"):
        return "size"
    if "bool" in t:
        return "bool"
    if "tuple" in t:
        return "strs"
    if "str" in t or t == "Any":
        return "str"
    return None


_FIELDS = {f.name: f for f in dataclasses.fields(CurationConfig)}


def _check(path: str, key: str, value: Any, kind: str | None) -> None:
    ok = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "strs": isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)),
        "size": isinstance(value, (int, str)) and not isinstance(value, bool),
        None: True,
    }[kind]
    if not ok:
        want = {"str": "a string", "bool": "true or false", "strs": "a string or a list of strings",
                "size": 'a size such as "512MiB" or a number of bytes'}[kind]  # fmt: skip
        raise ParameterError(f"config file {path}: {key} must be {want}, got {value!r}")


def _load_toml(path: str) -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise MissingInputError(f"config file {path} does not exist: give a TOML file (--print-config writes one)") from None
    except IsADirectoryError:
        raise ParameterError(f"config file {path} is a directory: give a TOML file (--print-config writes one)") from None
    except tomllib.TOMLDecodeError as e:
        raise ParameterError(f"config file {path} is not valid TOML ({e}): fix it, or write one with --print-config") from None
    except UnicodeDecodeError:
        raise ParameterError(f"config file {path} is not UTF-8 text: give a TOML file") from None


def read_config_file(path: str | os.PathLike, command_keys: Iterable[str] = ()) -> dict[str, Any]:
    """The checked settings of a TOML config file: config fields and `command_keys`.

    Parameters
    ----------
    path : path
        The TOML file.
    command_keys : iterable of str
        Other keys the file may set (e.g. [`RUN_KEYS`][metaclip2.cli.config_file.RUN_KEYS]): a string, or for ``input`` also a
        list of strings.

    Returns
    -------
    dict
        Key to value, as in the file (the config's fields are validated, not normalised).

    Raises
    ------
    ParameterError
        Not TOML; an unknown key (named with the closest known one); a value of the wrong kind
        or out of its range (naming the key and the file).
    MissingInputError
        No such file, or a field's path (``lid_model``) that names no file.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.cli.config_file import read_config_file
    >>> d = tempfile.mkdtemp(); path = os.path.join(d, "run.toml")
    >>> _ = open(path, "w").write('t_en = 20000\\nunit = "pair"\\ntext_keys = ["caption", "alt"]\\n')
    >>> read_config_file(path)
    {'t_en': 20000, 'unit': 'pair', 'text_keys': ['caption', 'alt']}
    >>> _ = open(path, "w").write('t_em = 20000\\n')
    >>> read_config_file(path)
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.ParameterError: config file .../run.toml: unknown key 't_em'; did you mean 't_en'?
    """
    path = os.fspath(path)
    data = _load_toml(path)
    command_keys = tuple(command_keys)
    known = [*command_keys, *_FIELDS]
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise ParameterError(f"config file {path}: unknown key {key!r}{hint}")
        _check(path, key, value, _PATHS.get(key, "str") if key in command_keys else _kind(_FIELDS[key]))
    fields = {k: v for k, v in data.items() if k in _FIELDS}
    try:
        CurationConfig(**fields)  # each value's own check, before any command-line option is applied
    except Metaclip2Error as e:
        raise type(e)(f"config file {path}: {e}") from None
    return dict(data)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escapes = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    text = str(value)
    return '"' + "".join(escapes.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c) for c in text) + '"'


def format_config(config: CurationConfig, command: dict[str, Any] | None = None) -> str:
    """`config` as a TOML config file: every field with its help as a comment; unset ones commented out.

    Parameters
    ----------
    config : CurationConfig
    command : dict, optional
        The command's own settings (``metadata``, ``input``, ``out``) to write first; None
        values are written as comments.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.cli.config_file import format_config, read_config_file
    >>> from metaclip2.pipeline.run.config import CurationConfig
    >>> config = CurationConfig(t_en=20000, text_keys=("caption",), seed=3)
    >>> text = format_config(config)
    >>> print("\\n".join(line for line in text.splitlines() if line.startswith(("t_en", "seed", "# p ="))))
    t_en = 20000
    # p = (unset)
    seed = 3
    >>> path = os.path.join(tempfile.mkdtemp(), "run.toml"); _ = open(path, "w").write(text)
    >>> CurationConfig(**read_config_file(path)) == config
    True
    """
    lines = ["# metaclip2 curation parameters (TOML): use with --config FILE; options on the command line override them"]
    for key, value in (command or {}).items():
        lines.append(f"{key} = {_toml_value(value)}" if value is not None else f"# {key} = (unset)")
    if len(lines) > 1:
        lines.append("")
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        lines.append(f"# {f.metadata['help']}")
        if value is None:
            lines.append(f"# {f.name} = (unset)")
        elif not isinstance(value, (str, bool, int, float, tuple, list)):
            lines.append(f"# {f.name} = {type(value).__name__} (not expressible in a file)")  # an Executor object
        else:
            lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
