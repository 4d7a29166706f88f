"""Every parameter of a curation run, its default and its check, declared once.

[`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig] is what [`curate`][metaclip2.pipeline.run.api.curate] and the stage runners
take; the command line builds its options from the same fields
([`add_config_arguments`][metaclip2.pipeline.run.config.add_config_arguments]), so a default or a check is never written twice. A config is
validated whole when it is made, before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable

from metaclip2.core.errors import ParameterError
from metaclip2.curation.threshold import ENGLISH_MODES
from metaclip2.execution.executor import EXECUTORS, Executor
from metaclip2.pipeline.stages.options import EXEC, STAGE1, MatchOptions, SampleOptions, ThresholdOptions, _boolean, _choice, _integer, option

__all__ = ["ENGLISH_MODES", "CurationConfig", "add_config_arguments", "config_from_arguments"]


@dataclass(frozen=True)
class CurationConfig(SampleOptions, ThresholdOptions, MatchOptions):
    """The parameters of a curation run: every stage's options and the run's own (defaults follow the authors' release (see [Choices and departures][choices-and-departures])).

    A config *is* a [`MatchOptions`][metaclip2.pipeline.stages.options.MatchOptions],
    [`ThresholdOptions`][metaclip2.pipeline.stages.options.ThresholdOptions] and
    [`SampleOptions`][metaclip2.pipeline.stages.options.SampleOptions] (its fields are theirs, declared
    there once), so it is accepted as it is wherever one of them is: by the stage functions,
    the batch API and the preflight. The run adds:

    Parameters
    ----------
    redo_changed : bool
        Redo the shards whose input file changed since stage 1 read it (and stages 2-3 after
        them) instead of refusing the run (not recorded: it only says what to do on resume).
    add_inputs : bool
        Accept inputs added since the run's stage 1 (a growing pool: a new month's shards): the
        old inputs must all still be there, unchanged; they keep their shard names and verified
        stage-1 outputs, stage 1 runs for the new shards only, and stages 2-3 are redone (their
        input changed). The result equals a fresh run over all inputs (not recorded).
    workers : int
        Worker processes (local) or CPUs of a local Ray instance.
    executor : {"local", "ray"} or Executor
        Where shards run.
    ray_address : str or None
        ``"auto"`` or ``HOST:PORT`` of a Ray cluster (with ``executor="ray"``).
    progress : bool
        Progress bars and notes on stderr.

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
    - [`MatchOptions`][metaclip2.pipeline.stages.options.MatchOptions] : Stage 1's fields.
    - [`ThresholdOptions`][metaclip2.pipeline.stages.options.ThresholdOptions] : Stage 2's fields.
    - [`SampleOptions`][metaclip2.pipeline.stages.options.SampleOptions] : Stage 3's fields.

    Examples
    --------
    >>> from metaclip2.pipeline import CurationConfig
    >>> CurationConfig(t_en=20_000.0, seed=3).t_en
    20000
    >>> CurationConfig(unit="caption")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.ParameterError: unit must be one of ('image', 'pair'), got 'caption'

    Each stage's part, as its tasks carry it:

    >>> CurationConfig(seed=3, script_check=False).sample_options()
    SampleOptions(seed=3, unit='image', output_format='jsonl', keys_list=False)
    >>> CurationConfig(script_check=False).match_options().script_check
    False
    """

    redo_changed: bool = option(False, STAGE1, "redo shards whose input file changed since stage 1 (default: refuse the run)", recorded=False)
    add_inputs: bool = option(False, STAGE1, "grow the run by the inputs added since its stage 1 (its old inputs unchanged and still "
                              "among them): stage 1 runs for the new shards only, stages 2-3 are redone", recorded=False)  # fmt: skip
    workers: int = option(1, EXEC, "worker processes (Ray: CPUs of a local instance)", metavar="N", kind=int)
    executor: Any = option("local", EXEC, "where shards run (ray: pip install 'metaclip2[ray]')", choices=EXECUTORS)
    ray_address: str | None = option(None, EXEC, "Ray cluster to use: 'auto' or HOST:PORT (default: start a local one)", metavar="ADDR")
    progress: bool = option(True, EXEC, "progress bars and notes on stderr")

    def _check(self) -> None:
        MatchOptions._check(self)
        ThresholdOptions._check(self)
        SampleOptions._check(self)
        for name in ("redo_changed", "add_inputs", "progress"):
            _boolean(name, getattr(self, name))
        self._fix("workers", _integer("workers", self.workers, minimum=1))
        if not isinstance(self.executor, Executor):
            _choice("executor", self.executor, EXECUTORS)
            if self.ray_address is not None and self.executor != "ray":
                raise ParameterError("ray_address needs executor='ray'")

    def match_options(self) -> MatchOptions:
        """Stage 1's options (what a stage-1 task carries)."""
        return MatchOptions.of(self)

    def threshold_options(self) -> ThresholdOptions:
        """Stage 2's options."""
        return ThresholdOptions.of(self)

    def sample_options(self) -> SampleOptions:
        """Stage 3's options (what a stage-3 task carries)."""
        return SampleOptions.of(self)

    @classmethod
    def from_options(cls, config: "CurationConfig | None" = None, **options: Any) -> "CurationConfig":
        """`config` (default: all defaults) with keyword `options` applied."""
        return (config or cls()).replace(**options) if options else (config or cls())

    def section(self, stage: int) -> dict[str, Any]:
        """The run.json record of `stage` (1, 2 or 3): its recorded parameters by name."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in dataclasses.fields(self)
                if f.metadata["stage"] == stage and f.metadata["recorded"]}  # fmt: skip


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
            kind = m["kind"]
            default = f.default if f.default is not None else "none"
            # one default, once: a help that already says its default keeps its own wording
            text = m["help"] if "default" in m["help"] else f"{m['help']} (default: {default})"
            parser.add_argument(flag, dest=f.name, type=kind, choices=m["choices"], metavar=m["metavar"],
                                default=argparse.SUPPRESS, help=text)  # fmt: skip


def config_from_arguments(args: argparse.Namespace) -> CurationConfig:
    """The [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig] of parsed arguments (fields not given keep their defaults).

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
