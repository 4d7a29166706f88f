"""The run directory: its layout, ``run.json`` and the per-shard "done" markers.

::

    run.json                          parameters and metadata digests, one section per stage
    stage1/<shard>.index.jsonl        matched pairs: n, id, k, lang, ids, text
    stage1/<shard>.counts.bin         the shard's EntryCounts
    stage1/<shard>.stats.json         the shard's accounting — written last, the "done" marker
    stage2/counts.bin                 merged EntryCounts
    stage2/probabilities.bin          EntryProbabilities (what an OnlineSampler loads)
    stage2/thresholds.json            {"p", "t_en", "english", "t"} — written last
    stage3/<shard>.jsonl|.parquet     the curated subset
    stage3/<shard>.stats.json         the shard's sampling accounting — written last
    datacard.json                     see metaclip2.pipeline.datacard

A section of ``run.json`` is recorded the first time its stage runs and checked on every
later run: a directory never mixes outputs made with other metadata, inputs or parameters.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from metaclip2.core.atomic import write_json
from metaclip2.core.errors import DataError, MissingInputError, ParameterError, RunMismatchError

__all__ = ["RunDir", "RUN_FORMAT"]

RUN_FORMAT = "metaclip2-run/1"


class RunDir:
    """One curation run's directory.

    Parameters
    ----------
    path : path
        The directory (made absolute: tasks may run on other nodes or in other working
        directories).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()
        self.stage1 = self.path / "stage1"
        self.stage2 = self.path / "stage2"
        self.stage3 = self.path / "stage3"
        self.run_json = self.path / "run.json"
        self.counts = self.stage2 / "counts.bin"
        self.probabilities = self.stage2 / "probabilities.bin"
        self.thresholds = self.stage2 / "thresholds.json"
        self.datacard = self.path / "datacard.json"

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- run.json ----------------------------------------------------------------------------

    def read(self) -> dict[str, Any]:
        """``run.json``'s content; ``{"format": ...}`` for a new or empty directory.

        Raises
        ------
        RunMismatchError
            The directory holds other files but no run.json, or run.json is not ours.
        ParameterError
            The path is a file.
        """
        if self.path.exists() and not self.path.is_dir():
            raise ParameterError(f"run directory {self.path} is a file: choose a new or empty directory")
        if self.run_json.exists():
            run = load_json(self.run_json)
            if run.get("format") != RUN_FORMAT:
                raise RunMismatchError(f"{self.run_json} is not a metaclip2 run file")
            return run
        if self.path.exists() and any(self.path.iterdir()):
            raise RunMismatchError(f"{self.path} is not empty and holds no run.json: choose a new or empty directory")
        return {"format": RUN_FORMAT}

    def claim(self, section: str, values: dict[str, Any], ignore: Sequence[str] = ()) -> dict[str, Any]:
        """Record `values` as run.json's `section`, or check that they equal what is recorded.

        Raises
        ------
        RunMismatchError
            run.json records other values; the message lists each difference.
        """
        run = self.read()
        old = run.get(section)
        if old is None:
            run[section] = values
            write_json(self.run_json, run)
            return run
        diffs = [
            f"{k}: {_show(old.get(k))} in run.json, {_show(values.get(k))} now"
            for k in sorted(set(old) | set(values))
            if k not in ignore and old.get(k) != values.get(k)
        ]
        if diffs:
            raise RunMismatchError(
                f"{self.path} holds a run made with other {section} settings ({'; '.join(diffs)}); "
                "outputs of different runs cannot be mixed: use another output directory (or delete this one)"
            )
        return run

    def require(self, section: str, hint: str) -> dict[str, Any]:
        """run.json's `section`, or :class:`MissingInputError` with `hint` (what to run first)."""
        run = self.read()
        if section not in run:
            raise MissingInputError(f"{self.path} has no {section} yet: {hint}")
        return run[section]


def load_json(path: str | os.PathLike) -> Any:
    """A JSON file's content; a damaged file raises :class:`DataError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path} is damaged ({e}): delete it and run that stage again") from None


def _show(v: Any) -> str:
    s = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return s if len(s) <= 80 else s[:77] + "..."
