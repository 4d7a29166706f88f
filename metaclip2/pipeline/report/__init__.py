"""Sub-layer 3 of the pipeline: reading finished runs. The report of a run
([`write_report`][metaclip2.pipeline.report.card.write_report]: the datacard and plots,
[`plots`][metaclip2.pipeline.report.plots]; [`write_html_report`][metaclip2.pipeline.report.card.write_html_report]:
one self-contained HTML page, [`browse`][metaclip2.pipeline.report.browse] and [`html`][metaclip2.pipeline.report.html])
and the threshold sweep over a run's stage-1 outputs ([`sweep`][metaclip2.pipeline.report.sweep]). Imports only the
lower sub-layers of the pipeline.
"""

from metaclip2.pipeline.report.card import write_html_report, write_report
from metaclip2.pipeline.report.plots import PlotDependencyError, language_rows, plot_match_mass, plot_pairs_per_language, write_plots
from metaclip2.pipeline.report.sweep import SweepData, SweepTable, load_sweep_data, sweep, target_size

__all__ = [
    "write_report",
    "write_html_report",
    "PlotDependencyError",
    "write_plots",
    "plot_match_mass",
    "plot_pairs_per_language",
    "language_rows",
    "SweepData",
    "SweepTable",
    "load_sweep_data",
    "sweep",
    "target_size",
]
