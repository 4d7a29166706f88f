"""Writing a finished run's report: ``datacard.json`` and, with matplotlib installed, PNG plots
([`metaclip2.pipeline.report.plots.write_plots`][metaclip2.pipeline.report.plots.write_plots]).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from metaclip2.core.atomic import write_json
from metaclip2.pipeline.run.datacard import make_datacard

__all__ = ["write_report", "write_html_report"]

log = logging.getLogger(__name__)


def write_report(run_dir: str | os.PathLike, plots: bool = True, html: bool | str | os.PathLike = False, executor=None) -> dict:
    """Write ``datacard.json`` and, with matplotlib installed, PNG plots to the run directory.

    Parameters
    ----------
    run_dir : path
    plots : bool
        Also draw plots ([`metaclip2.pipeline.report.plots.write_plots`][metaclip2.pipeline.report.plots.write_plots]); skipped with a note
        on stderr when matplotlib (``pip install 'metaclip2[plot]'``) is missing.
    html : bool or path
        Also write the HTML report ([`write_html_report`][metaclip2.pipeline.report.card.write_html_report]): True for ``report.html`` in the
        run directory, or the path to write it to.
    executor : LocalExecutor, optional
        With more than one worker, the plots are drawn in one of its worker processes while
        this one writes the HTML report (the files are the same).

    Returns
    -------
    dict
        ``{"datacard": Path, "plots": [Path, ...], "card": dict, "html": Path or None}``.

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
    >>> report["datacard"].name, report["plots"], report["card"]["totals"]["kept"], report["html"]
    ('datacard.json', [], 5, None)
    >>> tmp.cleanup()
    """
    from metaclip2.pipeline.run.rundir import RunDir

    run_dir = Path(run_dir)
    card = make_datacard(run_dir)
    # shared: reports may run beside the jobs of an array, never beside a whole-run command
    with RunDir(run_dir).lock(exclusive=False):
        path = write_json(run_dir / "datacard.json", card)
        drawing = None
        if plots and getattr(executor, "workers", 1) > 1 and hasattr(executor, "submit"):
            from metaclip2.pipeline.report.plots import write_plots

            drawing = executor.submit(write_plots, run_dir=str(run_dir), datacard=card)  # beside the HTML report
        page = None
        if html is not False:
            page = write_html_report(run_dir, None if html is True else html)
        written: list[Path] = []
        if plots:
            try:
                if drawing is None:
                    from metaclip2.pipeline.report.plots import write_plots

                    written = list(write_plots(run_dir, card))
                else:
                    written = [Path(p) for p in drawing.result()]
            except ImportError as e:
                log.warning("plots skipped: %s", e)
    return {"datacard": path, "plots": written, "card": card, "html": page}


def write_html_report(run_dir: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Write the run's HTML report: one self-contained page to browse it (no network, works from file://).

    The page shows the run (inputs, parameters, metadata digests), the accounting of every
    input pair, a sortable per-language table, per language the flattening of its entry counts
    (inline SVG) and samples of alt-texts that matched and matched nothing, an entry browser
    (head entries and a seeded sample of tail entries, with alt-texts kept and not kept), and a
    ``t_en`` control over sweep rows computed here ([`sweep`][metaclip2.pipeline.report.sweep.sweep]).
    Everything is read from the run's verified stage files
    ([`report_data`][metaclip2.pipeline.report.browse.report_data]); its size is bounded by constants,
    not by the pool.

    Parameters
    ----------
    run_dir : path
        A run directory with at least stage 1 done (what is missing is said on the page).
    path : path, optional
        Where to write it; default ``RUN_DIR/report.html``.

    Returns
    -------
    Path

    Raises
    ------
    DataError
        A stage file fails its checks (the message names it and what to run again).

    See Also
    --------
    - [`write_report`][metaclip2.pipeline.report.card.write_report] : The datacard and plots (and, with ``html=True``, this page).

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import curate
    >>> from metaclip2.pipeline.report.card import write_html_report
    >>> _ = curate(f"{d}/metadata", f"{d}/pool.jsonl", out=f"{d}/run", t_en=2)
    >>> page = write_html_report(f"{d}/run")
    >>> page.name, "Katze und Hund" in page.read_text(encoding="utf-8")
    ('report.html', True)
    >>> tmp.cleanup()
    """
    from metaclip2.core.atomic import write_text
    from metaclip2.pipeline.report.browse import report_data
    from metaclip2.pipeline.report.html import render_report
    from metaclip2.pipeline.run.rundir import RunDir

    run_dir = Path(run_dir)
    with RunDir(run_dir).lock(exclusive=False):
        data = report_data(run_dir)
        out = Path(path) if path is not None else run_dir / "report.html"
        return write_text(out, render_report(data))
