"""Every parameter of a curation run, its default and its check, declared once.

:class:`CurationConfig` is what :func:`~metaclip2.pipeline.run.api.curate` and the stage runners
take; the command line builds its options from the same fields
(:func:`add_config_arguments`), so a default or a check is never written twice. A config is
validated whole when it is made, before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

from metaclip2.core.sizes import parse_bytes
from metaclip2.core.errors import DataError, MissingInputError, ParameterError
from metaclip2.curation.sampling import UNITS
from metaclip2.curation.threshold import DEFAULT_T_EN
from metaclip2.execution.executor import EXECUTORS, Executor
from metaclip2.matching.matcher import MATCHER_ENGINES
from metaclip2.pipeline.io.inputs import FORMATS
from metaclip2.pipeline.io.records import DEFAULT_MAX_CHARS, ReaderSpec
from metaclip2.pipeline.io.writers import OUTPUT_FORMATS

__all__ = ["ENGLISH_MODES", "CurationConfig", "add_config_arguments", "config_from_arguments"]

ENGLISH_MODES = ("keep", "recompute")

# The stage a field belongs to: 1-3 are part of the run's identity (recorded in run.json and
# checked on resume); "exec" fields only say how the work runs.
_STAGE1, _STAGE2, _STAGE3, _EXEC = 1, 2, 3, "exec"


def _opt(default: Any, stage: Any, help: str, *, metavar: str | None = None, choices: Iterable | None = None,
         recorded: bool = True, flag: str | None = None, multi: bool = False) -> Any:  # fmt: skip
    # flag: the option's name when it is not the field's; multi: a tuple of names given as a
    # comma list and/or by repeating the option
    meta = {"stage": stage, "help": help, "metavar": metavar, "choices": tuple(choices) if choices else None,
            "recorded": recorded, "flag": flag, "multi": multi}  # fmt: skip
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class CurationConfig:
    """The parameters of a curation run (defaults follow the authors' release (see [Choices and departures][choices-and-departures])).

    Parameters
    ----------
    max_chars : int
        Alt-texts longer than this are invalid (stage 1).
    input_format : {"jsonl", "parquet", "tar"} or None
        Input shard format; None: from each file name.
    min_confidence : float or None
        LID predictions below this probability are labelled ``other``.
    lid_model : str or None
        A fastText LID model file instead of the bundled lid.176.ftz.
    script_check : bool
        Replace a LID label that the text's own script rules out (e.g. ``ja`` for Han without
        kana) by the model's best label in that script; False keeps the model's raw labels.
    strict : bool
        Stop at the first bad input record or damaged container (not recorded: it changes no
        output of a finished shard).
    matcher_engine : {"trie", "aho-corasick"}
        How stage 1 searches entries: the compact word trie (default) or pyahocorasick automata,
        the paper's method (not recorded: both give identical matches by construction).
    id_key, text_keys, lang_key : str, tuple of str, str, or None
        Record keys of the image id, its alt-text(s) and a given language; None: detected from
        the input's layout (see :class:`~metaclip2.pipeline.io.records.ReaderSpec`).
    keep_keys, drop_keys : tuple of str or None
        Input fields carried into the curated subset: only `keep_keys` (None: all scalar
        fields), less `drop_keys`.
    keys_list : bool
        Also write, per shard, the ids of the kept images (``<shard>.keys.txt``), e.g. to
        filter the original tars.
    redo_changed : bool
        Redo the shards whose input file changed since stage 1 read it (and stages 2-3 after
        them) instead of refusing the run (not recorded: it only says what to do on resume).
    t_en : int or float
        English threshold of Algorithm 1 (170,000 in the paper, for a 29B-pair pool).
    english : {"keep", "recompute"}
        Keep ``t_en`` for English (release) or recompute it from p (paper).
    p : float or None
        Tail share to use instead of deriving it from English counts.
    seed : int
        Seed of every keep decision.
    unit : {"image", "pair"}
        One matched alt-text per image (release) or each pair on its own (paper).
    output_format : {"jsonl", "parquet"}
        Format of the curated subset.
    workers : int
        Worker processes (local) or CPUs of a local Ray instance.
    executor : {"local", "ray"} or Executor
        Where shards run.
    ray_address : str or None
        ``"auto"`` or ``HOST:PORT`` of a Ray cluster (with ``executor="ray"``).
    progress : bool
        Progress bars and notes on stderr.
    matcher_memory : int, str or None
        Bytes (or a size such as ``"512MB"``, binary: MB = 2^20) of loaded matchers each worker
        keeps (stage 1 matches one language at a time, so one matcher suffices); None: the
        metadata store's default. Not recorded.

    Raises
    ------
    ParameterError
        A value out of its range, naming the parameter.
    MissingInputError
        `lid_model` names no file.
    DataError
        `lid_model` is not a fastText model file.

    Examples
    --------
    >>> from metaclip2.pipeline import CurationConfig
    >>> CurationConfig(t_en=20_000.0, seed=3).t_en
    20000
    >>> CurationConfig(unit="caption")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.ParameterError: unit must be one of ('image', 'pair'), got 'caption'
    """

    max_chars: int = _opt(DEFAULT_MAX_CHARS, _STAGE1, "alt-texts longer than N characters are invalid", metavar="N")
    input_format: str | None = _opt(None, _STAGE1, "input shard format (default: from each file name)", choices=FORMATS)
    min_confidence: float | None = _opt(None, _STAGE1, "LID predictions below P count as 'other'", metavar="P")
    lid_model: str | None = _opt(None, _STAGE1, "fastText LID model instead of the bundled lid.176.ftz", metavar="PATH")
    script_check: bool = _opt(True, _STAGE1, "correct LID labels the text's script rules out (--no-script-check: the model's raw labels, as the paper)")
    strict: bool = _opt(False, _STAGE1, "stop at the first bad input record or damaged container, naming file and line", recorded=False)
    id_key: str | None = _opt(None, _STAGE1, "record key of the image id (none: from the detected layout)", metavar="KEY")
    text_keys: tuple | None = _opt(None, _STAGE1, "record key(s) of the alt-texts, repeatable or a comma list (none: from the detected layout)",
                                   metavar="KEY", flag="--text-key", multi=True)  # fmt: skip
    lang_key: str | None = _opt(None, _STAGE1, "record key of a given language code (ISO 639-1/-3, xxx_Script, BCP-47)", metavar="KEY")
    keep_keys: tuple | None = _opt(None, _STAGE1, "carry only these input fields into the curated subset (comma list)", metavar="KEYS", multi=True)
    drop_keys: tuple | None = _opt(None, _STAGE1, "do not carry these input fields (comma list)", metavar="KEYS", multi=True)
    redo_changed: bool = _opt(False, _STAGE1, "redo shards whose input file changed since stage 1 (default: refuse the run)",
                              recorded=False)  # fmt: skip
    matcher_engine: str = _opt("trie", _STAGE1, "matching engine: trie (compact, fast to load) or aho-corasick (pyahocorasick, "
                               "the paper's automaton); the matches are the same", choices=MATCHER_ENGINES, recorded=False)  # fmt: skip
    t_en: float = _opt(DEFAULT_T_EN, _STAGE2, "English threshold t_en; it scales with the pool (170000 is the paper's for billions of pairs): preview with `metaclip2 sweep`", metavar="T")
    english: str = _opt("keep", _STAGE2, "keep t_en for English (release) or recompute it from p (paper)", choices=ENGLISH_MODES)
    p: float | None = _opt(None, _STAGE2, "tail share to use instead of deriving it from English counts", metavar="P")
    seed: int = _opt(0, _STAGE3, "sampling seed", metavar="N")
    unit: str = _opt("image", _STAGE3, "image: one matched alt-text per image (release); pair: each pair alone (paper)", choices=UNITS)
    output_format: str = _opt("jsonl", _STAGE3, "curated subset format", choices=OUTPUT_FORMATS)
    keys_list: bool = _opt(False, _STAGE3, "also write the kept image ids of each shard (<shard>.keys.txt), e.g. to filter the original tars")
    workers: int = _opt(1, _EXEC, "worker processes (Ray: CPUs of a local instance)", metavar="N")
    executor: Any = _opt("local", _EXEC, "where shards run (ray: pip install 'metaclip2[ray]')", choices=EXECUTORS)
    ray_address: str | None = _opt(None, _EXEC, "Ray cluster to use: 'auto' or HOST:PORT (default: start a local one)", metavar="ADDR")
    progress: bool = _opt(True, _EXEC, "progress bars and notes on stderr")
    matcher_memory: int | None = _opt(None, _EXEC, "memory for loaded matchers per worker, e.g. 512MB or 2GiB (binary: MB = MiB = 2^20 bytes, GB = 2^30; "
                                      "default: the metadata store's budget)",
                                      metavar="SIZE", recorded=False)  # fmt: skip

    def __post_init__(self) -> None:
        def fix(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        fix("max_chars", _integer("max_chars", self.max_chars, minimum=1))
        _choice("input_format", self.input_format, FORMATS, optional=True)
        for name in ("text_keys", "keep_keys", "drop_keys"):
            fix(name, _names(name, getattr(self, name)))
        self.reader_spec()  # checks the key names
        fix("min_confidence", _fraction("min_confidence", self.min_confidence, optional=True))
        _choice("matcher_engine", self.matcher_engine, MATCHER_ENGINES)
        if self.lid_model is not None:
            fix("lid_model", os.fspath(self.lid_model))
            if not os.path.isfile(self.lid_model):
                raise MissingInputError(f"lid_model {self.lid_model!r} is not a file: give a fastText .bin/.ftz model, or leave it out for the bundled lid.176")
            _check_fasttext_model(self.lid_model)
        for name in ("strict", "redo_changed", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name} must be True or False, got {getattr(self, name)!r}")
        fix("t_en", _positive_count("t_en", self.t_en))
        _choice("english", self.english, ENGLISH_MODES)
        fix("p", _fraction("p", self.p, optional=True))
        fix("seed", _integer("seed", self.seed))
        _choice("unit", self.unit, UNITS)
        _choice("output_format", self.output_format, OUTPUT_FORMATS)
        fix("workers", _integer("workers", self.workers, minimum=1))
        if self.matcher_memory is not None:
            fix("matcher_memory", parse_bytes(self.matcher_memory, "matcher_memory"))
        if not isinstance(self.executor, Executor):
            _choice("executor", self.executor, EXECUTORS)
            if self.ray_address is not None and self.executor != "ray":
                raise ParameterError("ray_address needs executor='ray'")
        if self.output_format == "parquet":
            from metaclip2.pipeline.io.records import import_pyarrow

            import_pyarrow()  # fail now, not after stage 1

    def reader_spec(self) -> ReaderSpec:
        """The :class:`~metaclip2.pipeline.io.records.ReaderSpec` of the key options."""
        return ReaderSpec(id_key=self.id_key, text_keys=self.text_keys or (), lang_key=self.lang_key,
                          keep_keys=self.keep_keys, drop_keys=self.drop_keys or ())  # fmt: skip

    def replace(self, **changes: Any) -> "CurationConfig":
        """A copy with `changes` applied (and validated); unknown names raise :class:`ParameterError`."""
        return dataclasses.replace(self, **_known(changes))

    @classmethod
    def from_options(cls, config: "CurationConfig | None" = None, **options: Any) -> "CurationConfig":
        """`config` (default: all defaults) with keyword `options` applied."""
        return (config or cls()).replace(**options) if options else (config or cls())

    def section(self, stage: int) -> dict[str, Any]:
        """The run.json record of `stage` (1, 2 or 3): its recorded parameters by name."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in dataclasses.fields(self)
                if f.metadata["stage"] == stage and f.metadata["recorded"]}  # fmt: skip


_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")  # first int32 of every fastText .bin/.ftz


def _check_fasttext_model(path: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise DataError(f"lid_model {path!r} cannot be read ({e.strerror or e})") from None
    if head != _FASTTEXT_MAGIC:
        raise DataError(f"lid_model {path!r} is not a fastText model file (.bin/.ftz): give one, or leave it out for the bundled lid.176")


def _known(options: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(CurationConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ParameterError(f"unknown curation option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return options


def _names(name: str, value: Any) -> tuple | None:
    """A tuple of key names from a comma list or a sequence of comma lists; None stays None."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    try:
        out = tuple(part.strip() for item in items for part in str(item).split(","))
    except TypeError:
        raise ParameterError(f"{name} must be key names (a comma list or a list of str), got {value!r}") from None
    if not out or any(not part for part in out):
        raise ParameterError(f"{name} must name non-empty keys, got {value!r}")
    return out


def _integer(name: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise ParameterError(f"{name} must be a whole number, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ParameterError(f"{name} must be at least {minimum}, got {value}")
    return value


def _fraction(name: str, value: Any, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ParameterError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _positive_count(name: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ParameterError(f"{name} must be a positive count, got {value!r}")
    return int(value) if float(value).is_integer() else float(value)  # 8.0 and 8 are the same run


def _choice(name: str, value: Any, choices: tuple, optional: bool = False) -> None:
    if value is None and optional:
        return
    if value not in choices:
        raise ParameterError(f"{name} must be one of {choices}, got {value!r}")


# -- command line ------------------------------------------------------------------------------


def add_config_arguments(parser: argparse.ArgumentParser, stages: Iterable[Any]) -> None:
    """Add the options of the config fields of `stages` (1, 2, 3, "exec") to `parser`.

    Each field ``name`` becomes ``--name-with-dashes`` (``progress`` becomes ``-q/--quiet``);
    argparse defaults are left unset so that the config's own defaults apply.

    See Also
    --------
    - [`config_from_arguments`][metaclip2.pipeline.run.config.config_from_arguments] : The parsed options back as a config.
    - [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig] : The fields, their defaults and checks.

    Examples
    --------
    A command of one's own with stage 2's options:

    >>> import argparse
    >>> from metaclip2.pipeline.run.config import add_config_arguments
    >>> parser = argparse.ArgumentParser(prog="my-thresholds")
    >>> add_config_arguments(parser, [2])
    >>> print(parser.format_usage().strip())
    usage: my-thresholds [-h] [--t-en T] [--english {keep,recompute}] [--p P]
    >>> vars(parser.parse_args(["--t-en", "20000"]))      # options not given stay absent
    {'t_en': 20000.0}
    """
    stages = set(stages)
    for f in dataclasses.fields(CurationConfig):
        m = f.metadata
        if m["stage"] not in stages:
            continue
        flag = m["flag"] or "--" + f.name.replace("_", "-")
        if f.name == "progress":
            parser.add_argument("-q", "--quiet", dest="progress", action="store_false", default=argparse.SUPPRESS,
                                help="no progress bars or notes")  # fmt: skip
        elif m["multi"]:
            parser.add_argument(flag, dest=f.name, action="append", metavar=m["metavar"], default=argparse.SUPPRESS,
                                help=f"{m['help']}")  # fmt: skip
        elif f.type in ("bool", bool) and f.default is True:
            parser.add_argument(m["flag"] or "--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false",
                                default=argparse.SUPPRESS, help=m["help"])  # fmt: skip
        elif f.type in ("bool", bool):
            parser.add_argument(flag, dest=f.name, action="store_true", default=argparse.SUPPRESS, help=m["help"])
        else:
            kind = {"max_chars": int, "seed": int, "workers": int, "t_en": float, "p": float, "min_confidence": float}.get(f.name, str)
            default = f.default if f.default is not None else "none"
            # one default, once: a help that already says its default keeps its own wording
            text = m["help"] if "default" in m["help"] else f"{m['help']} (default: {default})"
            parser.add_argument(flag, dest=f.name, type=kind, choices=m["choices"], metavar=m["metavar"],
                                default=argparse.SUPPRESS, help=text)  # fmt: skip


def config_from_arguments(args: argparse.Namespace) -> CurationConfig:
    """The :class:`CurationConfig` of parsed arguments (fields not given keep their defaults).

    Raises
    ------
    ParameterError
        A value the config refuses (the message names the option's field).

    See Also
    --------
    - [`add_config_arguments`][metaclip2.pipeline.run.config.add_config_arguments] : Adds the options to a parser.

    Examples
    --------
    >>> import argparse
    >>> from metaclip2.pipeline.run.config import add_config_arguments, config_from_arguments
    >>> parser = argparse.ArgumentParser(prog="my-curate")
    >>> parser.add_argument("inputs", nargs="+")
    _StoreAction(...)
    >>> add_config_arguments(parser, [1, 2, 3, "exec"])
    >>> args = parser.parse_args(["pool/*.jsonl", "--t-en", "20000", "--unit", "pair", "--workers", "2"])
    >>> config = config_from_arguments(args)
    >>> config.t_en, config.unit, config.workers, config.seed     # seed: the default
    (20000, 'pair', 2, 0)
    """
    names = {f.name for f in dataclasses.fields(CurationConfig)}
    return CurationConfig(**{k: v for k, v in vars(args).items() if k in names})
