"""The options of each stage, each declared once: its default, its check, its help text.

A stage function takes its stage's options object ([`MatchOptions`][metaclip2.pipeline.stages.options.MatchOptions], [`ThresholdOptions`][metaclip2.pipeline.stages.options.ThresholdOptions],
[`SampleOptions`][metaclip2.pipeline.stages.options.SampleOptions]); a task carries it to a worker as it is; the batch API and the
preflight accept it (or the whole run's [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig],
which *is* all three) as they are. An option is read where it acts (stage 1's language options
in [`MatchOptions.identify`][metaclip2.pipeline.stages.options.MatchOptions.identify], the record keys in [`MatchOptions.reader_spec`][metaclip2.pipeline.stages.options.MatchOptions.reader_spec]), so a new
option reaches every door by adding one field here.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from metaclip2.core.errors import DataError, MissingInputError, ParameterError
from metaclip2.core.sizes import parse_bytes
from metaclip2.curation.sampling import UNITS
from metaclip2.curation.threshold import DEFAULT_T_EN, ENGLISH_MODES
from metaclip2.matching.matcher import MATCHER_ENGINES
from metaclip2.pipeline.io.inputs import FORMATS
from metaclip2.pipeline.io.records import DEFAULT_MAX_CHARS, ReaderSpec
from metaclip2.pipeline.io.writers import OUTPUT_FORMATS
from metaclip2.pipeline.stages.budget import DEFAULT_MEMORY_PER_WORKER

__all__ = ["MatchOptions", "ThresholdOptions", "SampleOptions", "option"]

# The stage a field belongs to: 1-3 are part of the run's identity (recorded in run.json and
# checked on resume); "exec" fields only say how the work runs.
STAGE1, STAGE2, STAGE3, EXEC = 1, 2, 3, "exec"


def option(default: Any, stage: Any, help: str, *, metavar: str | None = None, choices: Iterable | None = None,
           recorded: bool = True, flag: str | None = None, multi: bool = False, kind: type = str) -> Any:  # fmt: skip
    """A dataclass field that is also a command-line option.

    Parameters
    ----------
    default : any
    stage : {1, 2, 3, "exec"}
        The stage whose identity the option is part of (recorded in ``run.json``), or ``"exec"``.
    help : str
        The option's help text (the default is appended by the command line, once).
    metavar, choices
        As in `argparse.ArgumentParser.add_argument`.
    recorded : bool
        False: the option changes no output, so a resumed run may change it.
    flag : str, optional
        The option's flag when it is not ``--field-name``.
    multi : bool
        A tuple of names given as a comma list and/or by repeating the option.
    kind : type
        How the command line converts the value (``int``, ``float``, ``str``).

    Returns
    -------
    dataclasses.Field

    Examples
    --------
    >>> from dataclasses import dataclass, fields
    >>> from metaclip2.pipeline.stages.options import option
    >>> @dataclass(frozen=True)
    ... class Mine:
    ...     depth: int = option(3, "exec", "how deep", metavar="N", kind=int)
    >>> f = fields(Mine)[0]
    >>> f.default, f.metadata["help"], f.metadata["kind"]
    (3, 'how deep', <class 'int'>)
    """
    meta = {"stage": stage, "help": help, "metavar": metavar, "choices": tuple(choices) if choices else None,
            "recorded": recorded, "flag": flag, "multi": multi, "kind": kind}  # fmt: skip
    return field(default=default, metadata=meta)


class _Options:
    """Shared behaviour: validated on construction, copied with `replace`, picked from a larger config."""

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:  # each options class checks its own fields
        pass

    def _fix(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def replace(self, **changes: Any):
        """A copy with `changes` applied (and validated); unknown names raise [`ParameterError`][metaclip2.core.errors.ParameterError]."""
        return dataclasses.replace(self, **_known(type(self), changes))

    @classmethod
    def of(cls, options: Any = None, **changes: Any):
        """This stage's options taken from `options` (this class, or any config that has its
        fields, such as [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig]), with `changes`.

        Examples
        --------
        >>> from metaclip2.pipeline.stages.options import MatchOptions, SampleOptions
        >>> SampleOptions.of(None, seed=3).seed
        3
        >>> MatchOptions.of(MatchOptions(max_chars=100), script_check=False).max_chars
        100
        """
        if options is None:
            base = cls()
        elif type(options) is cls:
            base = options
        else:
            base = cls(**{f.name: getattr(options, f.name) for f in dataclasses.fields(cls) if hasattr(options, f.name)})
        return base.replace(**changes) if changes else base


def _known(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ParameterError(f"unknown {cls.__name__} option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    return options


@dataclass(frozen=True)
class MatchOptions(_Options):
    """Stage 1's options: reading shards, language identification, matching.

    Parameters
    ----------
    max_chars : int
        Alt-texts longer than this are invalid.
    input_format : {"jsonl", "parquet", "tar", "csv", "tsv"} or None
        Input shard format; None: from each file name.
    min_confidence : float or None
        LID predictions below this probability are labelled ``other``.
    lid_model : str or None
        A fastText LID model file instead of the bundled lid.176.ftz.
    script_check : bool
        Replace a LID label that the text's own script rules out (e.g. ``ja`` for Han without
        kana) by the model's best label in that script; False keeps the model's raw labels.
    strip_texts : bool
        Strip white space (``str.strip``: NBSP, U+3000, U+2003 … too) from both ends of every
        alt-text before it is matched and indexed, as the release does; False matches the text
        as read, so ``"\\xa0dog\\u3000"`` does not match ``dog`` (see
        [`prepare_texts`][metaclip2.pipeline.stages.options.MatchOptions.prepare_texts]).
    strict : bool
        Stop at the first bad input record or damaged container (not recorded: it changes no
        output of a finished shard).
    id_key, text_keys, lang_key, text_index_key : str, tuple of str, or None
        Record keys of the image id, its alt-text(s), a given language and the alt-text's index
        within its image; None: detected from the input's layout (see
        [`ReaderSpec`][metaclip2.pipeline.io.records.ReaderSpec]).
    keep_keys, drop_keys : tuple of str or None
        Input fields carried into the curated subset: only `keep_keys` (None: all), less `drop_keys`.
    matcher_engine : {"trie", "aho-corasick"}
        How entries are searched: the compact word trie (default) or pyahocorasick automata,
        the paper's method (not recorded: both give identical matches by construction).
    matcher_memory : int or None
        Bytes of loaded matchers each worker keeps; None: the matchers' share of
        `memory_per_worker` (not recorded).
    memory_per_worker : int
        Memory budget of a whole worker process, split among its buffered rows, the LID model
        and its matcher cache ([`WorkerBudget`][metaclip2.pipeline.stages.budget.WorkerBudget]); 1 GiB by
        default (not recorded: outputs never depend on it).

    Raises
    ------
    ParameterError
        A value out of its range, naming the parameter.
    MissingInputError
        `lid_model` names no file.
    DataError
        `lid_model` is not a fastText model file.

    See Also
    --------
    - [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig] : Every stage's options and the run's.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.options import MatchOptions
    >>> MatchOptions(script_check=False, text_keys="caption,alt").text_keys
    ('caption', 'alt')
    >>> MatchOptions().identify(["A photo of a cat sitting on a red mat"], [None])
    ['en']
    """

    max_chars: int = option(DEFAULT_MAX_CHARS, STAGE1, "alt-texts longer than N characters are invalid", metavar="N", kind=int)
    input_format: str | None = option(None, STAGE1, "input shard format (default: from each file name)", choices=FORMATS)
    min_confidence: float | None = option(None, STAGE1, "LID predictions below P count as 'other'", metavar="P", kind=float)
    lid_model: str | None = option(None, STAGE1, "fastText LID model instead of the bundled lid.176.ftz", metavar="PATH")
    script_check: bool = option(True, STAGE1, "correct LID labels the text's script rules out (--no-script-check: the model's raw labels, as the paper)")
    strip_texts: bool = option(True, STAGE1, "strip white space (NBSP, U+3000, ...) from both ends of alt-texts before matching, as "
                               "the release does (--no-strip-texts: match them as read)")  # fmt: skip
    strict: bool = option(False, STAGE1, "stop at the first bad input record or damaged container, naming file and line", recorded=False)
    id_key: str | None = option(None, STAGE1, "record key of the image id (default: from the detected layout)", metavar="KEY")
    text_keys: tuple | None = option(None, STAGE1, "record key(s) of the alt-texts, repeatable or a comma list (default: from the detected layout)",
                                     metavar="KEY", flag="--text-key", multi=True)  # fmt: skip
    lang_key: str | None = option(None, STAGE1, "record key of a given language code (ISO 639-1/-3, xxx_Script, BCP-47)", metavar="KEY")
    text_index_key: str | None = option(None, STAGE1, "record key of the alt-text's index within its image (default: 'text_index' "
                                        "when records have it, else the order of the image's records)", metavar="KEY")  # fmt: skip
    keep_keys: tuple | None = option(None, STAGE1, "carry only these input fields into the curated subset (comma list)", metavar="KEYS", multi=True)
    drop_keys: tuple | None = option(None, STAGE1, "do not carry these input fields (comma list)", metavar="KEYS", multi=True)
    matcher_engine: str = option("trie", STAGE1, "matching engine: trie (compact, fast to load) or aho-corasick (pyahocorasick, "
                                 "the paper's automaton); the matches are the same", choices=MATCHER_ENGINES, recorded=False)  # fmt: skip
    matcher_memory: int | None = option(None, EXEC, "memory for loaded matchers per worker, e.g. 512MB or 2GiB (binary: MB = MiB = 2^20 bytes, "
                                        "GB = 2^30; default: the matchers' share of --memory-per-worker)", metavar="SIZE", recorded=False)  # fmt: skip
    memory_per_worker: int = option(DEFAULT_MEMORY_PER_WORKER, EXEC, "memory budget of each worker process, e.g. 1.5GiB (binary: MB = "
                                    "2^20 bytes, GB = 2^30; 1073741824 = 1 GiB): split among buffered rows (spilled to disk beyond "
                                    "their share), the LID model and the matcher cache",
                                    metavar="SIZE", recorded=False)  # fmt: skip

    def _check(self) -> None:
        self._fix("max_chars", _integer("max_chars", self.max_chars, minimum=1))
        _choice("input_format", self.input_format, FORMATS, optional=True)
        for name in ("text_keys", "keep_keys", "drop_keys"):
            self._fix(name, _names(name, getattr(self, name)))
        self.reader_spec()  # checks the key names
        self._fix("min_confidence", _fraction("min_confidence", self.min_confidence, optional=True))
        _choice("matcher_engine", self.matcher_engine, MATCHER_ENGINES)
        for name in ("script_check", "strip_texts", "strict"):
            _boolean(name, getattr(self, name))
        if self.lid_model is not None:
            self._fix("lid_model", os.fspath(self.lid_model))
            if not os.path.isfile(self.lid_model):
                raise MissingInputError(f"lid_model {self.lid_model!r} is not a file: give a fastText .bin/.ftz model, or leave it out for the bundled lid.176")
            _check_fasttext_model(self.lid_model)
        if self.matcher_memory is not None:
            self._fix("matcher_memory", parse_bytes(self.matcher_memory, "matcher_memory"))
        self._fix("memory_per_worker", parse_bytes(self.memory_per_worker, "memory_per_worker"))
        if self.memory_per_worker <= 0:
            raise ParameterError(f"memory_per_worker must be a positive size such as 1.5GiB, got {self.memory_per_worker!r}")

    def reader_spec(self) -> ReaderSpec:
        """The [`ReaderSpec`][metaclip2.pipeline.io.records.ReaderSpec] of the record-key options."""
        return ReaderSpec(id_key=self.id_key, text_keys=self.text_keys or (), lang_key=self.lang_key,
                          text_index_key=self.text_index_key, keep_keys=self.keep_keys,
                          drop_keys=self.drop_keys or ())  # fmt: skip

    def prepare_texts(self, texts: Sequence[str]) -> list[str]:
        """Alt-texts as language identification and matching see them (every door calls this).

        With `strip_texts`, each is stripped of white space at both ends (``str.strip``, which
        knows every Unicode space); the matcher pads texts with ASCII spaces only, so an edge
        NBSP or ideographic space would otherwise hide the word next to it.

        Examples
        --------
        >>> from metaclip2.pipeline.stages.options import MatchOptions
        >>> MatchOptions().prepare_texts(["\\xa0dog\\u3000"]), MatchOptions(strip_texts=False).prepare_texts([" dog"])
        (['dog'], [' dog'])
        """
        return [t.strip() for t in texts] if self.strip_texts else list(texts)

    def identify(self, texts: Sequence[str], given: Sequence[str | None], changes: dict | None = None) -> list[str]:
        """LID labels of `texts` (a given language is kept), with these options' model, confidence and script check.

        Every door identifies languages through this method: stage 1, the preflight and the batch
        API. `changes` collects the script check's label changes (see
        [`resolve_languages`][metaclip2.matching.lid.resolve_languages]).
        """
        from metaclip2.matching.lid import resolve_languages

        return resolve_languages(texts, given, min_confidence=self.min_confidence, lid_model=self.lid_model,
                                 script_check=self.script_check, changes=changes)  # fmt: skip


@dataclass(frozen=True)
class ThresholdOptions(_Options):
    """Stage 2's options: how thresholds derive from the counts.

    Parameters
    ----------
    t_en : int or float
        English threshold of Algorithm 1 (170,000 in the paper, for a 29B-pair pool).
    english : {"keep", "recompute"}
        Keep ``t_en`` for English (release) or recompute it from p (paper).
    p : float or None
        Tail share to use instead of deriving it from English counts.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.options import ThresholdOptions
    >>> ThresholdOptions(t_en=20_000.0).t_en
    20000
    """

    t_en: float = option(DEFAULT_T_EN, STAGE2, "English threshold t_en; it scales with the pool (170000 is the paper's for billions "
                         "of pairs): preview with `metaclip2 sweep`", metavar="T", kind=float)  # fmt: skip
    english: str = option("keep", STAGE2, "keep t_en for English (release) or recompute it from p (paper)", choices=ENGLISH_MODES)
    p: float | None = option(None, STAGE2, "tail share to use instead of deriving it from English counts", metavar="P", kind=float)

    def _check(self) -> None:
        self._fix("t_en", _positive_count("t_en", self.t_en))
        _choice("english", self.english, ENGLISH_MODES)
        self._fix("p", _fraction("p", self.p, optional=True))


@dataclass(frozen=True)
class SampleOptions(_Options):
    """Stage 3's options: the keep decisions and the subset's form.

    Parameters
    ----------
    seed : int
        Seed of every keep decision.
    unit : {"image", "pair"}
        One matched alt-text per image (release) or each pair on its own (paper).
    output_format : {"jsonl", "parquet"}
        Format of the curated subset.
    keys_list : bool
        Also write, per shard, the ids of the kept images (``<shard>.keys.txt``), e.g. to
        filter the original tars.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.options import SampleOptions
    >>> SampleOptions(unit="caption")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.ParameterError: unit must be one of ('image', 'pair'), got 'caption'
    """

    seed: int = option(0, STAGE3, "sampling seed", metavar="N", kind=int)
    unit: str = option("image", STAGE3, "image: one matched alt-text per image (release); pair: each pair alone (paper)", choices=UNITS)
    output_format: str = option("jsonl", STAGE3, "curated subset format", choices=OUTPUT_FORMATS)
    keys_list: bool = option(False, STAGE3, "also write the kept image ids of each shard (<shard>.keys.txt), e.g. to filter the original tars")

    def _check(self) -> None:
        self._fix("seed", _integer("seed", self.seed))
        _choice("unit", self.unit, UNITS)
        _choice("output_format", self.output_format, OUTPUT_FORMATS)
        _boolean("keys_list", self.keys_list)
        if self.output_format == "parquet":
            from metaclip2.pipeline.io.records import import_pyarrow

            import_pyarrow()  # fail now, not after stage 1


# -- checks ------------------------------------------------------------------------------------

_FASTTEXT_MAGIC = (793712314).to_bytes(4, "little")  # first int32 of every fastText .bin/.ftz


def _check_fasttext_model(path: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise DataError(f"lid_model {path!r} cannot be read ({e.strerror or e})") from None
    if head != _FASTTEXT_MAGIC:
        raise DataError(f"lid_model {path!r} is not a fastText model file (.bin/.ftz): give one, or leave it out for the bundled lid.176")


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


def _boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ParameterError(f"{name} must be True or False, got {value!r}")


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
