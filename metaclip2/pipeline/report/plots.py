"""PNG plots of a curation run (the ``plot`` extra: matplotlib, Agg backend, imported lazily).

Two figures, written into ``<run_dir>/plots/``:

``match_mass.png``
    Per language (the most-matched ones, one panel each): the cumulative share of the
    language's match mass over its entries ranked by count, most-matched first (log x axis),
    with the threshold ``t`` marked. Entries left of the cut (count > t) are the *head*, whose
    pairs are sub-sampled; the rest is the *tail*, kept whole ([Algorithm 1][algorithm-1]).
``pairs_per_language.png``
    Per language: pairs in the pool, pairs that matched an entry, and pairs kept (log scale
    when the languages differ a lot), with the kept share printed above each group.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from metaclip2.core.errors import MissingExtraError
from metaclip2.core.atomic import AtomicFile

import numpy as np

__all__ = ["PlotDependencyError", "write_plots", "plot_match_mass", "plot_pairs_per_language", "language_rows"]

_EXTRA_HINT = "pip install 'metaclip2[plot]'"
# PNG text chunks carry the matplotlib version by default; leave them out so equal runs give equal files.
_PNG_METADATA = {"Software": None}
_COLORS = {"pairs": "#c6dbef", "matched": "#6baed6", "kept": "#08519c", "head": "#fdd0a2", "cut": "#d94801"}


class PlotDependencyError(MissingExtraError):
    """Plotting needs matplotlib (the ``plot`` extra)."""


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise PlotDependencyError(f"plots need matplotlib: {_EXTRA_HINT}") from e
    matplotlib.use("Agg", force=True)  # no display needed; safe in workers and CI
    import matplotlib.pyplot as plt

    return plt


def _per_language(datacard: dict) -> dict:
    for key in ("languages", "per_language", "by_lang"):
        if isinstance(datacard.get(key), dict):
            return datacard[key]
    return {}


def _num(d: dict, *keys, default=0):
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return default


def language_rows(datacard: dict) -> list[dict]:
    """Per-language numbers of a datacard, most pairs first.

    Returns
    -------
    list of dict
        ``{"lang", "pairs", "matched", "kept", "t", "tail_share"}`` per language (pairs are
        counts of (image, alt-text) pairs; ``t`` in matches, None when the language has no
        threshold; ``tail_share`` in [0, 1] or None).
    """
    rows = []
    for lang, d in _per_language(datacard).items():
        if not isinstance(d, dict):
            continue
        rows.append(
            {
                "lang": lang,
                "pairs": int(_num(d, "pairs", "pairs_in", "input")),
                "matched": int(_num(d, "matched")),
                "kept": int(_num(d, "kept")),
                "t": _num(d, "t", "threshold", default=None),
                "tail_share": _num(d, "tail_share", "p", default=None),
            }
        )
    rows.sort(key=lambda r: (-r["pairs"], r["lang"]))
    return rows


def _margins(fig, left: float, right: float, bottom: float, top: float, wspace: float = 0.2, hspace: float = 0.2) -> None:
    """Fixed margins, in inches, that fit the labels these plots draw (what ``tight_layout``
    found for them, with room to spare): the same layout for the same figure size, without
    measuring every text first (``tight_layout`` cost as much as drawing the figure)."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h, wspace=wspace, hspace=hspace)


def _widest_tick_label(ax) -> int:
    """Characters of the y axis's widest tick label (3 on a log axis: its labels are powers of ten),
    from the locator and formatter alone: no text is measured."""
    if ax.get_yscale() == "log":
        return 3
    axis = ax.yaxis
    lo, hi = ax.get_ylim()
    ticks = [v for v in axis.get_major_locator().tick_values(lo, hi) if lo <= v <= hi]
    return max((len(label) for label in axis.get_major_formatter().format_ticks(ticks)), default=1)


def _save(fig, path: Path) -> Path:
    with AtomicFile(path) as f:
        fig.savefig(f.stream, format="png", dpi=110, metadata=_PNG_METADATA)
    return path


def plot_match_mass(counts, t: dict, path: str | os.PathLike, max_languages: int = 8, title_note: str = "") -> Path:
    """Cumulative match mass over entries ranked by count, one panel per language.

    Parameters
    ----------
    counts : mapping of str -> ndarray of uint64
        Entry counts per language (e.g. [`metaclip2.EntryCounts`][metaclip2.curation.counts.EntryCounts]).
    t : dict of str -> int or None
        Threshold per language, in matches.
    path : path
        PNG file to write.
    max_languages : int
        Panels for at most this many languages, the most-matched first.
    title_note : str
        Appended to the figure title (e.g. ``"sample data"``).

    Returns
    -------
    pathlib.Path
    """
    plt = _pyplot()
    from matplotlib import ticker

    langs = sorted((lang for lang in counts if int(np.asarray(counts[lang]).sum()) > 0),
                   key=lambda lang: (-int(np.asarray(counts[lang]).sum()), lang))[:max_languages]  # fmt: skip
    n = max(len(langs), 1)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows + 0.9), squeeze=False, sharey=True)
    for ax in axes.flat[len(langs) :]:
        ax.set_visible(False)
    for ax, lang in zip(axes.flat, langs):
        c = np.sort(np.asarray(counts[lang], dtype=np.float64))[::-1]
        n_entries = len(c)
        c = c[c > 0]
        total = c.sum()
        cum = np.cumsum(c) / total * 100.0
        rank = np.arange(1, len(c) + 1)
        ax.plot(rank, cum, color=_COLORS["kept"], lw=1.8, drawstyle="steps-post")
        ax.set_xscale("log")
        if len(c) >= 100:  # two decades or more: major ticks (powers of ten) say enough, and the
            ax.xaxis.set_minor_locator(ticker.NullLocator())  # minor ones cost a third of the drawing
        ax.set_xlim(0.8, max(len(c), 2) * 1.25)
        ax.set_ylim(0, 103)
        ax.grid(True, which="major", alpha=0.3)
        tl = t.get(lang)
        head = int((c > tl).sum()) if tl is not None else 0
        if tl is None:
            note = "no threshold"
        elif head == 0:
            note = f"t = {tl:,}: no entry above t\n(all {len(c):,} matched entries kept whole)"
        else:
            share = cum[head - 1]
            ax.axvspan(0.8, head + 0.5, color=_COLORS["head"], alpha=0.6, lw=0)
            ax.axvline(head + 0.5, color=_COLORS["cut"], ls="--", lw=1.3)
            ax.axhline(share, color=_COLORS["cut"], ls=":", lw=1)
            note = f"t = {tl:,} matches\nhead: {head:,} entries hold {share:.0f}%\ntail share p = {100 - share:.0f}%"
        ax.text(0.97, 0.05, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8.5,
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.9})  # fmt: skip
        ax.set_title(f"{lang}  ({int(total):,} matches, {len(c):,}/{n_entries:,} entries hit)", fontsize=9.5)
    for ax in axes[-1]:
        ax.set_xlabel("entries ranked by match count (log)")
    for ax in axes[:, 0]:
        ax.set_ylabel("cumulative share of matches (%)")
    title = "Where the matches go: head entries (shaded, count > t) are sub-sampled, the tail is kept whole"
    fig.suptitle(title + (f" — {title_note}" if title_note else ""), fontsize=10.5)
    _margins(fig, left=0.75, right=0.22, bottom=0.62, top=0.66, wspace=0.1, hspace=0.26)
    out = _save(fig, Path(path))
    plt.close(fig)
    return out


def plot_pairs_per_language(datacard: dict, path: str | os.PathLike, max_languages: int = 30, title_note: str = "") -> Path:
    """Grouped bars per language: pairs in the pool, matched, kept.

    Parameters
    ----------
    datacard : dict
        A run's datacard (see [`language_rows`][metaclip2.pipeline.report.plots.language_rows] for the per-language keys read).
    path : path
        PNG file to write.
    max_languages : int
        Bars for at most this many languages (most pairs first).
    title_note : str
        Appended to the figure title.

    Returns
    -------
    pathlib.Path
    """
    plt = _pyplot()
    rows = language_rows(datacard)[:max_languages]
    fig, ax = plt.subplots(figsize=(max(7.0, 0.75 * len(rows) + 2.5), 4.8))
    x = np.arange(len(rows))
    width = 0.27
    values = {k: np.array([r[k] for r in rows], dtype=np.float64) for k in ("pairs", "matched", "kept")}
    labels = {"pairs": "pairs in pool", "matched": "matched an entry", "kept": "kept"}
    for i, key in enumerate(("pairs", "matched", "kept")):
        ax.bar(x + (i - 1) * width, values[key], width, label=labels[key], color=_COLORS[key], edgecolor="0.3", lw=0.4)
    positive = values["kept"][values["kept"] > 0]
    top = float(values["pairs"].max()) if len(rows) else 1.0
    log = len(positive) > 0 and top / max(float(positive.min()), 1.0) > 100
    if log:
        ax.set_yscale("log")
        ax.set_ylim(0.8, top * 4)
    else:
        ax.set_ylim(0, top * 1.18)
    for xi, r in zip(x, rows):
        share = r["kept"] / r["pairs"] if r["pairs"] else 0.0
        ax.text(xi, r["pairs"] * (1.25 if log else 1.02) + (0 if log else top * 0.01), f"{share:.0%}",
                ha="center", va="bottom", fontsize=8, color=_COLORS["kept"])  # fmt: skip
    ax.set_xticks(x)
    ax.set_xticklabels([r["lang"] for r in rows])
    ax.set_xlabel("language (LID language of the alt-text)")
    ax.set_ylabel("(image, alt-text) pairs" + (" — log scale" if log else ""))
    totals = datacard.get("totals", {}) if isinstance(datacard.get("totals"), dict) else {}
    extra = []
    for key, label in (("invalid", "invalid"), ("no_metadata", "without metadata")):
        v = totals.get(key)
        if isinstance(v, dict):
            v = sum(v.values())
        if v:
            extra.append(f"{int(v):,} {label}")
    title = "Pool vs kept pairs per language" + (f" — {title_note}" if title_note else "")
    sub = "% above each group = kept / pairs in" + (f"; not shown: {', '.join(extra)}" if extra else "")
    ax.set_title(f"{title}\n{sub}", fontsize=10)
    ax.legend(frameon=False, fontsize=9, loc="upper right")
    ax.grid(True, axis="y", alpha=0.3)
    _margins(fig, left=0.45 + 0.09 * _widest_tick_label(ax), right=0.15, bottom=0.6, top=0.55)
    out = _save(fig, Path(path))
    plt.close(fig)
    return out


def write_plots(run_dir: str | os.PathLike, datacard: dict) -> list[Path]:
    """Write the run's PNG plots into ``<run_dir>/plots/``.

    Reads ``stage2/counts.bin`` and ``stage2/thresholds.json`` for the match-mass plot (skipped
    when stage 2 has not run) and the datacard's per-language numbers for the pairs plot.

    Parameters
    ----------
    run_dir : path
        A curation run directory.
    datacard : dict
        The run's datacard (as written to ``datacard.json``).

    Returns
    -------
    list of pathlib.Path
        The PNG files written.

    Raises
    ------
    PlotDependencyError
        matplotlib is not installed (``pip install 'metaclip2[plot]'``).
    """
    _pyplot()  # fail early, before any file is touched
    run = Path(run_dir)
    plots = run / "plots"
    note = "sample data" if datacard.get("sample_data") else ""
    written = []
    counts_path, thr_path = run / "stage2" / "counts.bin", run / "stage2" / "thresholds.json"
    if counts_path.exists() and thr_path.exists():
        from metaclip2.curation.counts import EntryCounts

        counts = EntryCounts.load(counts_path)
        from metaclip2.pipeline.run.rundir import load_json

        t = load_json(thr_path).get("t", {})
        written.append(plot_match_mass(counts, t, plots / "match_mass.png", title_note=note))
    if language_rows(datacard):
        written.append(plot_pairs_per_language(datacard, plots / "pairs_per_language.png", title_note=note))
    return written
