"""Writing a finished run's report: ``datacard.json`` and, with matplotlib installed, PNG plots
([`metaclip2.pipeline.report.plots.write_plots`][metaclip2.pipeline.report.plots.write_plots]).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from metaclip2.core.atomic import write_json
from metaclip2.pipeline.run.datacard import make_datacard

__all__ = ["write_report"]

log = logging.getLogger(__name__)


def write_report(run_dir: str | os.PathLike, plots: bool = True) -> dict:
    """Write ``datacard.json`` and, with matplotlib installed, PNG plots to the run directory.

    Parameters
    ----------
    run_dir : path
    plots : bool
        Also draw plots ([`metaclip2.pipeline.report.plots.write_plots`][metaclip2.pipeline.report.plots.write_plots]); skipped with a note
        on stderr when matplotlib (``pip install 'metaclip2[plot]'``) is missing.

    Returns
    -------
    dict
        ``{"datacard": Path, "plots": [Path, ...], "card": dict}``.

    See Also
    --------
    - [`make_datacard`][metaclip2.pipeline.run.datacard.make_datacard] : The run's summary as a dict.
    - [`curate`][metaclip2.pipeline.run.api.curate] : All three stages and the datacard in one call.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import count, compute_thresholds, sample, write_report
    >>> _ = count(f"{d}/metadata", [f"{d}/pool.jsonl"], out=f"{d}/run")
    >>> _ = compute_thresholds(f"{d}/run", t_en=2); _ = sample(f"{d}/run")
    >>> report = write_report(f"{d}/run", plots=False)
    >>> report["datacard"].name, report["plots"], report["card"]["totals"]["kept"]
    ('datacard.json', [], 5)
    >>> tmp.cleanup()
    """
    from metaclip2.pipeline.run.rundir import RunDir

    run_dir = Path(run_dir)
    card = make_datacard(run_dir)
    # shared: reports may run beside the jobs of an array, never beside a whole-run command
    with RunDir(run_dir).lock(exclusive=False):
        path = write_json(run_dir / "datacard.json", card)
        written: list[Path] = []
        if plots:
            try:
                from metaclip2.pipeline.report.plots import write_plots

                written = list(write_plots(run_dir, card))
            except ImportError as e:
                log.warning("plots skipped: %s", e)
    return {"datacard": path, "plots": written, "card": card}
