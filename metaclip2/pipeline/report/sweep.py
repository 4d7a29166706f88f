"""Preview stages 2-3 for many thresholds from stage 1 alone: expected kept sizes, no sampling.

Stage 3 keeps a pair with probability ``p_r = 1 - prod_i (1 - q[lang][i])`` over the entries it
matched ([Algorithm 1][algorithm-1]), each decision an independent draw. So the expected kept sizes are sums of
probabilities, and their variances sums of Bernoulli variances:

* ``unit="pair"`` (each pair on its own): kept pairs ``sum_r p_r``; an image is kept when any of
  its pairs is, with probability ``1 - prod_r (1 - p_r)`` (per language: over its pairs of that
  language).
* ``unit="image"`` (the release, [`select_texts`][metaclip2.curation.sampling.select_texts]): one
  candidate alt-text (``p_r > 0``) is picked uniformly, then kept with its own probability, so
  the image is kept with probability ``mean_r p_r`` over its candidates and at most one pair per
  image is kept (kept pairs = kept images; per language, the sum of ``p_r / m`` over the image's
  pairs of that language, ``m`` its number of candidates). This is *not* ``1 - prod (1 - p_r)``.

[`load_sweep_data`][metaclip2.pipeline.report.sweep.load_sweep_data] reads the stage-1 index once (through
[`iter_index`][metaclip2.pipeline.io.index.iter_index]) into flat arrays; every threshold is then numpy
work over them ([`sweep`][metaclip2.pipeline.report.sweep.sweep], [`target_size`][metaclip2.pipeline.report.sweep.target_size]). Images with one matched alt-text that
matched one entry, the bulk of a web pool, are folded into per-entry counts (their probability
is ``q`` itself); the others are kept as CSR rows.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from metaclip2.core.errors import DataError, MissingInputError, ParameterError
from metaclip2.curation.counts import EntryCounts
from metaclip2.curation.expectation import Folder, SweepData
from metaclip2.pipeline.io.index import iter_index

__all__ = ["SweepData", "SweepTable", "load_sweep_data", "sweep", "target_size"]

log = logging.getLogger(__name__)

# -- reading a run -----------------------------------------------------------------------------


def load_sweep_data(run_dir: str | os.PathLike, batch_rows: int = 65536) -> SweepData:
    """Read a run's stage-1 outputs once into a [`SweepData`][metaclip2.curation.expectation.SweepData].

    The merged counts are ``stage2/counts.bin`` when stage 2 ran, else the shards' counts summed
    here (nothing is written).

    Raises
    ------
    MissingInputError
        Stage 1 is missing or unfinished.
    DataError
        Index and counts disagree (a language or an entry id the counts do not have).

    See Also
    --------
    - [`sweep`][metaclip2.pipeline.report.sweep.sweep] : Expected kept sizes for candidate thresholds.
    - [`target_size`][metaclip2.pipeline.report.sweep.target_size] : The threshold of a wanted kept size.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import count, load_sweep_data, sweep
    >>> _ = count(f"{d}/metadata", [f"{d}/pool.jsonl"], out=f"{d}/run")
    >>> data = load_sweep_data(f"{d}/run")
    >>> data.langs, data.pairs, data.images
    (['de', 'en'], 6, 6)
    >>> [round(row["pairs"], 2) for row in sweep(data, [1, 2, 3]).rows]
    [4.17, 5.17, 5.5]
    >>> tmp.cleanup()
    """
    from metaclip2.pipeline.run.fork import stage1_dir
    from metaclip2.pipeline.run.rundir import RunDir
    from metaclip2.pipeline.stages.files import stage1_paths
    from metaclip2.pipeline.stages.merge import merge_counts

    run = RunDir(run_dir)
    s1 = run.require("stage1", "run stage 1 (`metaclip2 count`) first")
    s1_dir = stage1_dir(run)
    names = s1["shards"]
    missing = [n for n in names if not stage1_paths(s1_dir, n)["stats"].exists()]
    if missing:
        raise MissingInputError(
            f"stage 1 is unfinished for {len(missing)} of {len(names)} shards (e.g. {missing[0]}): run `metaclip2 count` again"
        )
    # every stage-1 file read below is first checked against what stage 1 recorded (size and
    # sha256), as stage 3 checks its index: another shard's index, or one cut, is named here
    from metaclip2.pipeline.run import verify

    checks = verify.verify_many(lambda n, i: verify.stage1_shard(s1_dir, n, i, metadata_digests=s1["metadata_digests"]),
                                list(zip(names, s1["inputs"])), workers=2)  # fmt: skip
    for name, check in zip(names, checks):
        if check.stats is None:
            raise DataError(f"stage 1 of shard {name} cannot be used: {check.problem or 'it is unfinished'}; "
                            "run `metaclip2 count` again, which redoes it")  # fmt: skip
    if run.counts.exists() and run.thresholds.exists():
        counts = EntryCounts.load(run.counts, digests=s1["metadata_digests"])
    else:
        counts = merge_counts([stage1_paths(s1_dir, n)["counts"] for n in names], digests=s1["metadata_digests"])
    code = {lang: i for i, lang in enumerate(counts)}
    fold = Folder(counts)
    split = _split_rows(run, s1_dir, names, {n: c.stats for n, c in zip(names, checks)})
    split_ids = {r[0] for r in split}
    for name in names:
        _fold_shard(fold, code, stage1_paths(s1_dir, name)["index"], name, batch_rows, split_ids)
    _fold_split(fold, code, [r for r in split if not r[6]])
    data = fold.data(source=str(run.path))
    log.debug("sweep data of %s: %d images, %d matched pairs (%d single-entry images folded)", run.path, data.images, data.pairs, int(data.single.sum()))
    return data


def _split_rows(run, s1_dir: Path, names: Sequence[str], stats: dict) -> list[tuple]:
    """Rows of the images split across shards (``(id, k, lang, ids, shard, own k, duplicate)``):
    stage 2's file when it is current, else found here the same way (nothing is written).
    `stats`: the shards' verified stage-1 stats."""
    from metaclip2.pipeline.run import verify
    from metaclip2.pipeline.stages.files import stage1_paths
    from metaclip2.pipeline.stages.split import SPLIT_FILE, find_split_images, load_split

    paths = [stage1_paths(s1_dir, n) for n in names]
    try:
        digest = verify.split_inputs_digest(s1_dir, names, stats)
    except (KeyError, TypeError, DataError):
        digest = None  # stats of an older stage 1: find_split_images names what to redo
    if digest is not None:
        info, _ = verify.split_record(run.stage2, digest)
        if info is not None:
            return load_split(run.stage2 / SPLIT_FILE)
    rows = find_split_images([p["index"] for p in paths], [p["images"] for p in paths], names)
    return [(i, k, lang, ids, extra["shard"], extra["k"], bool(extra.get("duplicate"))) for _, i, k, lang, ids, _, extra in rows]


def _fold_split(fold: Folder, code: dict, rows: list[tuple]) -> None:
    """Fold the split images' rows (sorted by id), each image on all its rows."""
    if not rows:
        return
    lc = np.array([code[r[2]] for r in rows], dtype=np.int32)
    lengths = np.fromiter((len(r[3]) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.fromiter((e for r in rows for e in r[3]), dtype=np.int64, count=int(offsets[-1]))
    starts = np.flatnonzero([j == 0 or rows[j][0] != rows[j - 1][0] for j in range(len(rows))])
    fold.add(lc, starts, offsets, ids, where="the split-images rows")


def _fold_shard(fold: Folder, code: dict, index: Path, name: str, batch_rows: int, skip: set = frozenset()) -> None:
    """Fold one shard's matched rows, an image being all the rows with its id in the shard (as
    stage 3 decides it), wherever they stand; images in `skip` (split across shards) are left out."""
    langs, lengths, ids, image = [], [], [], []
    first: dict[str, int] = {}  # id -> image number, in first-occurrence order
    for batch in iter_index(index, batch_rows=batch_rows):
        if skip and len(batch):
            rows = [r for r, x in enumerate(batch.id) if x not in skip]
            if len(rows) < len(batch):
                batch = _take(batch, rows)
        if not len(batch):
            continue
        try:
            langs.append(np.array([code[lang] for lang in batch.lang], dtype=np.int32))
        except KeyError as e:
            raise DataError(f"the stage-1 index of {name} holds language {e.args[0]!r}, which its counts lack: delete the shard's stage-1 files and run stage 1 again") from None
        lengths.append(np.diff(batch.offsets).astype(np.int64))
        ids.append(batch.ids.astype(np.int64))
        image.append(np.fromiter((first.setdefault(x, len(first)) for x in batch.id), dtype=np.int64, count=len(batch)))
    if not langs:
        return
    lc, ln, gi, im = (np.concatenate(a) for a in (langs, lengths, ids, image))
    offsets = np.zeros(len(ln) + 1, dtype=np.int64)
    np.cumsum(ln, out=offsets[1:])
    if np.any(im[1:] < im[:-1]):  # an id that comes back further down: its rows made contiguous
        order = np.argsort(im, kind="stable")
        starts, ln, lc, im = offsets[:-1][order], ln[order], lc[order], im[order]
        offsets = np.zeros(len(ln) + 1, dtype=np.int64)
        np.cumsum(ln, out=offsets[1:])
        gi = gi[np.repeat(starts - offsets[:-1], ln) + np.arange(int(offsets[-1]), dtype=np.int64)]
    fold.add(lc, np.flatnonzero(np.r_[True, im[1:] != im[:-1]]), offsets, gi, where=f"the stage-1 index of {name}")


def _take(batch, rows: list):
    """The batch's `rows` (only the columns the sweep reads)."""
    from metaclip2.pipeline.io.index import IndexBatch
    from metaclip2.pipeline.stages.sample import take_rows

    r = np.asarray(rows, dtype=np.int64)
    offsets, ids = take_rows(batch.offsets, batch.ids, r)
    return IndexBatch(n=batch.n[r], k=batch.k[r], lang=[batch.lang[i] for i in rows], offsets=offsets, ids=ids,
                      id=[batch.id[i] for i in rows], text=[], extra=[])  # fmt: skip


# -- the table ---------------------------------------------------------------------------------


@dataclass
class SweepTable:
    """Expected kept sizes per candidate threshold (rows in the order asked).

    Attributes
    ----------
    rows : list of dict
        [`SweepData.expect`][metaclip2.curation.expectation.SweepData.expect] results.
    unit, english : str
    matched_pairs, matched_images : int
        The run's matched pairs and images with a matched alt-text (what can be kept).

    See Also
    --------
    - [`sweep`][metaclip2.pipeline.report.sweep.sweep] : Expected kept sizes for candidate thresholds.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import count, sweep
    >>> _ = count(f"{d}/metadata", [f"{d}/pool.jsonl"], out=f"{d}/run")
    >>> table = sweep(f"{d}/run", [1, 2])
    >>> table.matched_pairs, [row["t_en"] for row in table.rows]
    (6, [1, 2])
    >>> print(table.to_csv())
    t_en,p,lang,t,pairs,pairs_std,images,images_std
    1,0,all,,4.16667,0.957427,4.16667,0.957427
    1,0,de,1,1.5,0.5,1.5,0.5
    1,0,en,1,2.66667,0.816497,2.66667,0.816497
    2,0.166667,all,,5.16667,0.687184,5.16667,0.687184
    2,0.166667,de,1,1.5,0.5,1.5,0.5
    2,0.166667,en,2,3.66667,0.471405,3.66667,0.471405
    >>> tmp.cleanup()
    """

    rows: list
    unit: str
    english: str
    matched_pairs: int
    matched_images: int
    run: str = ""

    def to_dict(self) -> dict:
        """JSON-able: the parameters and the rows."""
        return {"run": self.run, "unit": self.unit, "english": self.english, "matched_pairs": self.matched_pairs,
                "matched_images": self.matched_images, "rows": self.rows}  # fmt: skip

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """Long-form CSV (one line per threshold and language, ``all`` for the totals); written to `path` if given."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["t_en", "p", "lang", "t", "pairs", "pairs_std", "images", "images_std"])
        for r in self.rows:
            w.writerow([r["t_en"], _g(r["p"]), "all", "", _g(r["pairs"]), _g(r["pairs_std"]), _g(r["images"]), _g(r["images_std"])])
            for lang, d in r["languages"].items():
                w.writerow([r["t_en"], _g(r["p"]), lang, "" if d["t"] is None else d["t"], _g(d["pairs"]),
                            _g(d["pairs_std"]), _g(d["images"]), _g(d["images_std"])])  # fmt: skip
        text = buf.getvalue()
        if path is not None:
            from metaclip2.core.atomic import AtomicFile

            with AtomicFile(path, "w") as f:
                f.write(text)
        return text

    def __str__(self) -> str:
        head = f"{'t_en':>10} {'p':>8} {'kept pairs':>12} {'± sd':>7} {'kept images':>12} {'share kept':>10}  per language: kept pairs (t)"
        lines = [f"expected kept sizes (unit={self.unit}, english={self.english}) of {self.matched_pairs:,} matched pairs "
                 f"in {self.matched_images:,} images", head]  # fmt: skip
        for r in self.rows:
            share = r["pairs"] / self.matched_pairs if self.matched_pairs else 0.0
            top = sorted(r["languages"].items(), key=lambda kv: -kv[1]["pairs"])[:6]
            langs = "  ".join(f"{lang} {d['pairs']:,.0f} ({'-' if d['t'] is None else _g(d['t'])})" for lang, d in top)
            lines.append(f"{_g(r['t_en']):>10} {r['p']:>8.4f} {r['pairs']:>12,.1f} {r['pairs_std']:>7.1f} "
                         f"{r['images']:>12,.1f} {share:>10.1%}  {langs}")  # fmt: skip
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike) -> Path:
        """Kept size against t_en (log x), total and the largest languages, as a PNG (the ``plot`` extra)."""
        from metaclip2.pipeline.report.plots import _pyplot, _save

        plt = _pyplot()
        rows = sorted(self.rows, key=lambda r: r["t_en"])
        x = [r["t_en"] for r in rows]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot(x, [r["pairs"] for r in rows], "o-", color="black", label="all languages")
        if rows:
            top = sorted(rows[-1]["languages"], key=lambda lang: -rows[-1]["languages"][lang]["pairs"])[:8]
            for lang in top:
                ax.plot(x, [r["languages"][lang]["pairs"] for r in rows], ".-", label=lang, alpha=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("t_en (English threshold, matches)")
        ax.set_ylabel(f"expected kept {'pairs' if self.unit == 'pair' else 'images (= pairs)'}")
        ax.set_title(f"kept size against t_en ({self.matched_pairs:,} matched pairs, unit={self.unit})", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        try:
            return _save(fig, Path(path))
        finally:
            plt.close(fig)


def _g(x) -> str:
    if x is None:
        return ""
    if isinstance(x, (int, np.integer)) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e15):
        return str(int(x))
    return f"{x:.6g}"


# -- API ---------------------------------------------------------------------------------------


def _data(run) -> SweepData:
    return run if isinstance(run, SweepData) else load_sweep_data(run)


def sweep(
    run,
    t_en: Iterable[float] = (),
    *,
    english: str = "keep",
    p: float | Sequence[float] | None = None,
    unit: str = "image",
) -> SweepTable:
    """Expected kept sizes of a run for each candidate `t_en` (or each candidate `p`).

    Parameters
    ----------
    run : path or SweepData
        A run directory with a finished stage 1 (or data loaded by [`load_sweep_data`][metaclip2.pipeline.report.sweep.load_sweep_data], to
        sweep it several times).
    t_en : iterable of float
        Candidate English thresholds.
    english : {"keep", "recompute"}
        As in stage 2.
    p : float or sequence of float, optional
        A fixed tail share (as stage 2's ``p``), or several to sweep instead of `t_en` (a pool
        without English has no other knob); then `t_en` may hold one value (default 1) for
        English in ``keep`` mode.
    unit : {"image", "pair"}
        As in stage 3.

    Returns
    -------
    SweepTable

    Raises
    ------
    ParameterError
        No candidate, a non-positive t_en, a p outside [0, 1].
    DataError
        No English matches and no `p`.

    See Also
    --------
    - [`load_sweep_data`][metaclip2.pipeline.report.sweep.load_sweep_data] : Load a run once to sweep it several times.
    - [`target_size`][metaclip2.pipeline.report.sweep.target_size] : The threshold of a wanted kept size.
    - [`SweepTable`][metaclip2.pipeline.report.sweep.SweepTable] : What sweep returns.
    - [`fork_run`][metaclip2.pipeline.run.fork.fork_run] : Another stage 2 and 3 on the same stage 1.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import count, sweep
    >>> _ = count(f"{d}/metadata", [f"{d}/pool.jsonl"], out=f"{d}/run")
    >>> print(sweep(f"{d}/run", [1, 2, 3]))
    expected kept sizes (unit=image, english=keep) of 6 matched pairs in 6 images
          t_en        p   kept pairs    ± sd  kept images share kept  per language: kept pairs (t)
             1   0.0000          4.2     1.0          4.2      69.4%  en 3 (1)  de 2 (1)
             2   0.1667          5.2     0.7          5.2      86.1%  en 4 (2)  de 2 (1)
             3   0.5000          5.5     0.5          5.5      91.7%  en 4 (3)  de 2 (1)
    >>> tmp.cleanup()
    """
    data = _data(run)
    t_values = [_t(t) for t in t_en]
    if p is not None and not isinstance(p, (int, float)):
        p_values = [_p(x) for x in p]
        if len(t_values) > 1:
            raise ParameterError("sweep either t_en or p: give several values of one of them")
        if not t_values and data.english and english == "keep":
            raise ParameterError("sweeping p on a pool with English: give the one t_en English keeps (--t-en T), or recompute it (--english recompute)")
        t0 = t_values[0] if t_values else 1
        rows = [data.expect(t0, english, x, unit) for x in p_values]
    else:
        if not t_values:
            raise ParameterError("give at least one t_en to sweep (e.g. 1000,5000,20000)")
        rows = [data.expect(t, english, None if p is None else _p(p), unit) for t in t_values]
    return SweepTable(rows, unit, english, data.pairs, data.images, data.source)


def target_size(
    run,
    size: float,
    *,
    english: str = "keep",
    p: float | None = None,
    unit: str = "image",
    measure: str = "pairs",
    rel_tol: float = 1e-4,
) -> dict:
    """The `t_en` (or, without English or with a fixed `p`, the `p`) whose expected kept size is `size`.

    Expected kept size grows with t_en (every language's threshold does), so a bisection finds
    it: over whole t_en first, then fractions of one when a single step jumps over the target.

    Parameters
    ----------
    run : path or SweepData
    size : float
        Target expected number of kept pairs (`measure` ``"pairs"``) or images (``"images"``).
    english, unit : str
        As in [`sweep`][metaclip2.pipeline.report.sweep.sweep].
    p : float, optional
        A fixed tail share: then t_en can only move English (``english="keep"``); with
        ``"recompute"`` it moves nothing, and the search runs over p instead.
    measure : {"pairs", "images"}
    rel_tol : float
        Stop when the expected size is this close to `size`, relatively.

    Returns
    -------
    dict
        The [`SweepData.expect`][metaclip2.curation.expectation.SweepData.expect] row of the threshold found, plus ``"target"``,
        ``"searched"`` (``"t_en"`` or ``"p"``) and ``"gap"``: None, or, when the expected size
        jumps over the target (a language's threshold steps; small pools), the sizes just
        below and above the jump (the nearest one is returned, with a warning).

    Raises
    ------
    ParameterError
        `size` is not reachable (more than every matched pair, or less than the smallest kept size).

    See Also
    --------
    - [`sweep`][metaclip2.pipeline.report.sweep.sweep] : Expected kept sizes for candidate thresholds.
    - [`load_sweep_data`][metaclip2.pipeline.report.sweep.load_sweep_data] : Load a run once to sweep it several times.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import count, target_size
    >>> _ = count(f"{d}/metadata", [f"{d}/pool.jsonl"], out=f"{d}/run")
    >>> found = target_size(f"{d}/run", 5)
    >>> found["searched"], round(found["t_en"], 2), round(found["pairs"], 2)
    ('t_en', 1.78, 5.0)
    >>> found["languages"]["de"]["t"]
    1
    >>> tmp.cleanup()
    """
    if measure not in ("pairs", "images"):
        raise ParameterError(f"measure must be 'pairs' or 'images', got {measure!r}")
    data = _data(run)
    size = float(size)
    if not size > 0:
        raise ParameterError(f"the target size must be positive, got {size}")
    by_p = (p is not None and english == "recompute") or (p is None and not data.english)
    if by_p:
        f = lambda x: data.expect(1, english, x, unit)  # noqa: E731
        lo, hi = 0.0, 1.0
    else:
        f = lambda x: data.expect(x, english, p, unit)  # noqa: E731
        lo = 1.0
        hi = float(max((int(data.counts[lang].max()) for lang in data.langs if len(data.counts[lang])), default=1)) + 1
    r_lo, r_hi = f(lo), f(hi)
    if size > r_hi[measure] * (1 + rel_tol):
        raise ParameterError(f"no threshold keeps {size:,.0f} {measure}: at most {r_hi[measure]:,.1f} are kept in expectation "
                             f"(of {data.pairs:,} matched pairs in {data.images:,} images)")  # fmt: skip
    if size < r_lo[measure] * (1 - rel_tol):
        raise ParameterError(f"no threshold keeps as few as {size:,.0f} {measure}: the smallest expected kept size is {r_lo[measure]:,.1f}")
    integral = not by_p
    for _ in range(200):
        best = min((r_lo, r_hi), key=lambda r: abs(r[measure] - size))
        if abs(best[measure] - size) <= rel_tol * size:
            break
        if integral and hi - lo <= 1:
            integral = False  # one whole step jumps over the target: refine inside it
        mid = math.floor((lo + hi) / 2) if integral else (lo + hi) / 2
        if mid in (lo, hi) and not integral and hi - lo < 1e-9 * max(hi, 1):
            break
        r_mid = f(mid)
        if r_mid[measure] < size:
            lo, r_lo = mid, r_mid
        else:
            hi, r_hi = mid, r_mid
    best = min((r_lo, r_hi), key=lambda r: abs(r[measure] - size))
    out = {**best, "target": size, "searched": "p" if by_p else "t_en", "gap": None}
    if abs(best[measure] - size) > 0.01 * size:
        # Thresholds of the other languages are counts, so the kept size steps where one moves;
        # on a small pool one step can jump over the target.
        knob = "p" if by_p else "t_en"
        out["gap"] = (r_lo[measure], r_hi[measure])
        log.warning("the expected kept %s jumps from %.1f to %.1f at %s = %g (a language's threshold steps there); "
                    "the nearest is %.1f", measure, r_lo[measure], r_hi[measure], knob, best[knob], best[measure])  # fmt: skip
    return out


def _t(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ParameterError(f"t_en must be a positive count, got {x!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ParameterError(f"t_en must be a positive count, got {x!r}")
    return int(v) if v.is_integer() else v


def _p(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ParameterError(f"p must be a number in [0, 1], got {x!r}") from None
    if not 0 <= v <= 1:
        raise ParameterError(f"p must be a number in [0, 1], got {x!r}")
    return v
