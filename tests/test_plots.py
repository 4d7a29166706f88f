"""Plots of a run: files exist, are valid PNGs of a sane size; the data they draw is the run's."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="plots need the 'plot' extra (matplotlib)")

from metaclip2 import EntryCounts  # noqa: E402
from metaclip2.pipeline.report import plots  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the signature and the chunk's CRC."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert zlib.crc32(kind + body) == crc
    assert data.endswith(b"IEND\xaeB`\x82")
    return struct.unpack(">II", body[:8])


def zipf_counts(n: int, scale: float, rng) -> np.ndarray:
    c = (scale / np.arange(1, n + 1) ** 1.1).astype(np.uint64)
    rng.shuffle(c)
    return c


@pytest.fixture
def run_dir(tmp_path):
    rng = np.random.default_rng(0)
    arrays, t = {}, {}
    for lang, n, scale in (("en", 400, 5000), ("de", 120, 800), ("zh", 150, 900), ("th", 30, 40), ("ja", 10, 0)):
        arrays[lang] = zipf_counts(n, scale, rng) if scale else np.zeros(n, np.uint64)
        t[lang] = None if scale == 0 else (60 if lang == "th" else 50)
    counts = EntryCounts.from_arrays(arrays, {lang: lang * 32 for lang in arrays})
    (tmp_path / "stage2").mkdir()
    counts.save(tmp_path / "stage2" / "counts.bin")
    (tmp_path / "stage2" / "thresholds.json").write_text(json.dumps({"p": 0.1, "t_en": 50, "t": t}))
    datacard = {
        "sample_data": True,
        "languages": {
            "en": {"pairs": 5000, "matched": 4200, "kept": 900, "t": 50, "tail_share": 0.1},
            "de": {"pairs": 800, "matched": 700, "kept": 300, "t": 50, "tail_share": 0.2},
            "zh": {"pairs": 900, "matched": 800, "kept": 310, "t": 50, "tail_share": 0.2},
            "th": {"pairs": 40, "matched": 30, "kept": 30, "t": 60, "tail_share": 1.0},
            "ja": {"pairs": 12, "matched": 0, "kept": 0, "t": None, "tail_share": None},
        },
        "totals": {"invalid": 7, "no_metadata": 11},
    }
    return tmp_path, datacard, counts, t


def test_write_plots_valid_pngs(run_dir):
    path, datacard, _, _ = run_dir
    written = plots.write_plots(path, datacard)
    names = sorted(p.name for p in written)
    assert names == ["match_mass.png", "pairs_per_language.png"]
    for p in written:
        assert p.parent == path / "plots"
        w, h = png_size(p)
        assert 500 <= w <= 3000 and 300 <= h <= 2500, (p.name, w, h)
        assert p.stat().st_size > 10_000  # drawn, not blank
    assert not list((path / "plots").glob("*.tmp*")), "temporary files left behind"


def test_without_stage2_only_pairs_plot(run_dir, tmp_path_factory):
    _, datacard, _, _ = run_dir
    empty = tmp_path_factory.mktemp("nostage2")
    written = plots.write_plots(empty, datacard)
    assert [p.name for p in written] == ["pairs_per_language.png"]


def test_language_rows_reads_datacard(run_dir):
    _, datacard, _, _ = run_dir
    rows = plots.language_rows(datacard)
    assert [r["lang"] for r in rows] == ["en", "zh", "de", "th", "ja"]  # most pairs first
    assert rows[0] == {"lang": "en", "pairs": 5000, "matched": 4200, "kept": 900, "t": 50, "tail_share": 0.1}
    assert rows[-1]["t"] is None


def test_match_mass_plot_draws_the_counts(run_dir, monkeypatch):
    """The curve is the cumulative share of sorted counts, and the cut sits at #entries with count > t."""
    path, _, counts, t = run_dir
    plt = plots._pyplot()
    seen = {}
    real_close = plt.close

    def grab(fig):
        for ax in fig.axes:
            if ax.get_visible() and ax.lines:
                seen[ax.get_title().split()[0]] = ax
        # keep the figure open for inspection; close after the assertions
    monkeypatch.setattr(plt, "close", grab)
    plots.plot_match_mass(counts, t, path / "m.png")
    assert set(seen) == {"en", "de", "zh", "th"}  # ja has no matches: no panel
    for lang, ax in seen.items():
        c = np.sort(counts[lang].astype(np.float64))[::-1]
        c = c[c > 0]
        curve = ax.lines[0].get_ydata()
        np.testing.assert_allclose(curve, np.cumsum(c) / c.sum() * 100)
        head = int((c > t[lang]).sum())
        cuts = [ln.get_xdata()[0] for ln in ax.lines[1:] if ln.get_linestyle() == "--"]
        assert cuts == ([head + 0.5] if head else []), lang
    real_close("all")


def test_missing_matplotlib_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"pip install 'metaclip2\[plot\]'"):
        plots.write_plots(".", {})



def _drawn(monkeypatch, draw):
    """The figure `draw` makes (drawn), its renderer, and the boxes of what is drawn: each visible
    axes' tight box (tick labels, axis labels and title included) and the figure's own texts."""
    plt = plots._pyplot()
    figs = []
    monkeypatch.setattr(plt, "close", figs.append)
    draw()
    [fig] = figs
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    boxes = {f"axes {ax.get_title()}": ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()}
    boxes.update({t.get_text(): t.get_window_extent(renderer) for t in fig.texts if t.get_text()})
    return fig, renderer, boxes


def _inside(box, outer, slack: float = 1.0) -> bool:
    return box.x0 >= outer.x0 - slack and box.x1 <= outer.x1 + slack and box.y0 >= outer.y0 - slack and box.y1 <= outer.y1 + slack


@pytest.mark.parametrize("top", [120, 999_999, 5_000_000])
def test_pairs_plot_margins_fit_its_labels(tmp_path, monkeypatch, top):
    """Fixed margins (no tight_layout): everything drawn stays inside the figure, and the axis
    label clear of the tick labels, for narrow and wide (six-digit) tick labels and offset notation."""
    card = {"languages": {f"l{i}": {"pairs": top // (i + 1), "matched": top // (i + 2), "kept": top // (i + 1) // 2, "t": 5}
                          for i in range(4)}}  # fmt: skip
    fig, renderer, boxes = _drawn(monkeypatch, lambda: plots.plot_pairs_per_language(card, tmp_path / "p.png"))
    for what, box in boxes.items():
        assert _inside(box, fig.bbox), what
    [ax] = fig.axes
    lo, hi = ax.get_ylim()
    ticks = [t.label1.get_window_extent(renderer) for t in ax.yaxis.get_major_ticks() if lo <= t.get_loc() <= hi and t.label1.get_text()]
    assert ticks and ax.yaxis.label.get_window_extent(renderer).x1 <= min(b.x0 for b in ticks)
    plots._pyplot().close("all")


@pytest.mark.parametrize("n_langs", [4, 5])
def test_match_mass_margins_fit_its_labels(run_dir, monkeypatch, n_langs):
    path, _, counts, t = run_dir
    fig, _, boxes = _drawn(monkeypatch, lambda: plots.plot_match_mass(counts, t, path / "m.png", max_languages=n_langs))
    assert len([b for b in boxes if b.startswith("axes")]) == min(n_langs, 4)  # ja has no matches: no panel
    for what, box in boxes.items():
        assert _inside(box, fig.bbox), what
    plots._pyplot().close("all")


def test_plots_are_the_same_bytes_run_to_run(run_dir, tmp_path):
    path, datacard, _, _ = run_dir
    first = {p.name: p.read_bytes() for p in plots.write_plots(path, datacard)}
    again = {p.name: p.read_bytes() for p in plots.write_plots(path, datacard)}
    assert first == again and len(first) == 2
