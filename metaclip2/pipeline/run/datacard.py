"""The datacard of a curation run: what went in, what matched, what was kept, and why.

``datacard.json`` (see [`make_datacard`][metaclip2.pipeline.run.datacard.make_datacard]) is built from the run directory alone, so it
can be (re)made at any time; [`write_report`][metaclip2.pipeline.report.card.write_report] writes it
and adds PNG plots when matplotlib is installed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from metaclip2.pipeline.run.rundir import load_json
from metaclip2.pipeline.stages.files import stage1_paths, stage3_paths
from metaclip2.pipeline.stages.stats import Stage1Stats, Stage3Stats
from metaclip2.core.errors import DataError, MissingInputError
from metaclip2.core.jsonfile import unseal

__all__ = ["make_datacard"]

log = logging.getLogger(__name__)

_FORMAT = "metaclip2-datacard/1"

log = logging.getLogger(__name__)


def _load(path: Path) -> dict | None:
    return load_json(path) if path.exists() else None


def _stage2_thresholds(run_dir: Path, stage3: list) -> dict | None:
    """``{"t", "p"}`` that stage 3 sampled with, from the header of ``probabilities.bin``; None before stage 2.

    thresholds.json must agree with that header, and every finished stage-3 shard must have
    been sampled from that very file; otherwise the datacard is refused rather than wrong.
    """
    from metaclip2.core.arrayfile import load_header
    from metaclip2.core.fingerprint import file_digest
    from metaclip2.pipeline.run.verify import thresholds_problem

    thr_path, prob_path = run_dir / "stage2" / "thresholds.json", run_dir / "stage2" / "probabilities.bin"
    redo = "run `metaclip2 thresholds` again, which redoes stage 2"
    if not thr_path.exists():
        return None
    info = unseal(load_json(thr_path, hint=redo), str(thr_path), redo)
    if not prob_path.exists():
        raise DataError(f"{prob_path} is missing although {thr_path.name} is there: {redo}")
    problem = thresholds_problem(info, prob_path)
    if problem is not None:
        raise DataError(f"{thr_path} cannot be used: {problem}; {redo}")
    header = load_header(prob_path)
    recorded = sorted({st.sources.get("probabilities") for st in stage3 if st.sources} - {None})
    if recorded and recorded != [file_digest(prob_path)["sha256"]]:
        raise DataError(
            f"stage 3 of {run_dir} was sampled with another {prob_path.name} than the current one: "
            "run `metaclip2 sample` again, which redoes those shards"
        )
    return {"t": header["t"], "p": header["params"].get("p")}


def make_datacard(run_dir: str | os.PathLike) -> dict:
    """The datacard of a (possibly unfinished) run.

    Parameters
    ----------
    run_dir : path
        A run directory (see [`metaclip2.pipeline.run.api`][metaclip2.pipeline.run.api]).

    Returns
    -------
    dict
        ``format``; ``complete`` (all three stages done); ``parameters`` (the stage
        sections of run.json, without digests); ``metadata`` (path) and ``metadata_digests``
        (by language); ``p`` (tail share derived from English); ``totals`` (``pairs``,
        ``images``, ``invalid``, ``invalid_by_reason``, ``no_metadata``, ``unmatched``,
        ``matched``, ``kept``, ``not_kept``, ``kept_images``; with ``pairs = invalid +
        no_metadata + unmatched + matched`` and ``matched = kept + not_kept``);
        ``languages`` (per metadata language: ``pairs`` in, ``matched``, ``kept``, ``t``,
        ``tail_share`` = share of the language's match mass in entries counted below ``t``,
        ``entries``, ``entries_matched``, ``match_mass``); ``no_metadata_labels`` (LID
        labels without metadata); ``lid_changes`` (LID labels the
        script-consistency step replaced, by ``"from->to"``, most frequent first);
        ``unknown_lang_codes`` (given language codes that name no
        known language, by code); ``damaged`` (every damaged stretch of an input: ``shard``,
        ``input``, ``where`` (byte offset or row group), ``error``, ``lost`` records or None);
        ``shards`` (per shard: name, input, ``layout`` (layout and keys used, fields found),
        pairs, invalid, matched, kept, damaged, invalid examples with line and reason).
        Counts not yet known (stage not run) are None. Thresholds and ``p`` are those of
        ``probabilities.bin``, the file stage 3 sampled with.

    Raises
    ------
    DataError
        A file of the run is damaged or was edited (a stats file whose seal or sums fail,
        a ``thresholds.json`` that disagrees with ``probabilities.bin``, stage-3 shards
        sampled from another ``probabilities.bin``); the message names it and what to redo.

    See Also
    --------
    - [`write_report`][metaclip2.pipeline.report.card.write_report] : The datacard and plots written to the run.
    - [`curate`][metaclip2.pipeline.run.api.curate] : All three stages and the datacard in one call.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import curate, make_datacard
    >>> _ = curate(f"{d}/metadata", f"{d}/pool.jsonl", out=f"{d}/run", t_en=2)
    >>> card = make_datacard(f"{d}/run")
    >>> card["complete"], card["totals"]["matched"], card["totals"]["kept"]
    (True, 6, 5)
    >>> card["languages"]["en"]
    {'pairs': 4, 'matched': 4, 'kept': 4, 't': 2, 'tail_share': 0.1666..., 'entries': 3, 'entries_matched': 3, 'match_mass': 6}
    >>> tmp.cleanup()
    """
    from metaclip2.curation.counts import EntryCounts
    from metaclip2.curation.threshold import t_to_p

    run_dir = Path(run_dir)
    run = _load(run_dir / "run.json")
    if run is None:
        raise MissingInputError(f"{run_dir} is not a curation run directory (no run.json)")
    run = unseal(run, str(run_dir / "run.json"), "restore it, or start again in a new directory")
    s1 = run.get("stage1", {})
    s3 = run.get("stage3")
    names = s1.get("shards", [])
    output_format = s3["output_format"] if s3 else "jsonl"

    total1, total3 = Stage1Stats(), Stage3Stats()
    stage3: list = []
    shards = []
    damaged = []
    stage1_done = stage3_done = bool(names)
    for name in names:
        p1 = stage1_paths(run_dir / "stage1", name)["stats"]
        p3 = stage3_paths(run_dir / "stage3", name, output_format)["stats"]
        st1 = Stage1Stats.from_json(_load(p1), str(p1)) if p1.exists() else None
        st3 = Stage3Stats.from_json(_load(p3), str(p3)) if p3.exists() else None
        stage1_done &= st1 is not None
        stage3_done &= st3 is not None
        row = {"shard": name, "input": None, "pairs": None, "invalid": None, "matched": None, "kept": None, "invalid_examples": []}
        if st1 is not None:
            total1 += st1
            row.update(input=st1.input, layout=st1.layout, pairs=st1.pairs, invalid=st1.n_invalid, matched=st1.matched,
                       invalid_by_reason=st1.invalid, invalid_examples=st1.invalid_examples, damaged=st1.damaged)  # fmt: skip
            damaged.extend({"shard": name, "input": st1.input, **d} for d in st1.damaged)
        if st3 is not None:
            stage3.append(st3)
            total3 += st3
            row["kept"] = st3.kept
        shards.append(row)
    totals = {k: getattr(total1, k) for k in ("pairs", "images", "no_metadata", "unmatched", "matched")}
    totals["invalid"] = total1.n_invalid
    for k in ("kept", "not_kept", "kept_images"):
        totals[k] = getattr(total3, k) if stage3_done else None
    totals["invalid_by_reason"] = total1.invalid
    langs = {
        lang: {"pairs": v["pairs"], "matched": v["matched"],
               "kept": total3.by_lang.get(lang, {}).get("kept", 0) if stage3_done else None}
        for lang, v in total1.by_lang.items()
    }  # fmt: skip
    no_meta = total1.no_metadata_labels

    thresholds = _stage2_thresholds(run_dir, stage3)
    counts_path = run_dir / "stage2" / "counts.bin"
    counts = EntryCounts.load(counts_path) if thresholds is not None and counts_path.exists() else None
    for lang, d in langs.items():
        t = thresholds["t"].get(lang) if thresholds else None
        d["t"] = t
        d["tail_share"] = None
        d["entries"] = d["entries_matched"] = d["match_mass"] = None
        if counts is not None and lang in counts:
            c = counts[lang]
            d["entries"] = int(len(c))
            d["entries_matched"] = int(np.count_nonzero(c))
            d["match_mass"] = int(c.sum(dtype=np.uint64))
            if t is not None and d["match_mass"]:
                d["tail_share"] = t_to_p(t, c)

    params = {k: {kk: vv for kk, vv in v.items() if kk not in ("metadata_digests", "inputs", "shards", "metadata")}
              for k, v in run.items() if k.startswith("stage")}  # fmt: skip
    return {
        "format": _FORMAT,
        "complete": bool(stage1_done and stage3_done and thresholds is not None),
        "parameters": params,
        "metadata": s1.get("metadata"),
        "metadata_digests": s1.get("metadata_digests", {}),
        "inputs": s1.get("inputs", []),
        "p": thresholds["p"] if thresholds else None,
        "totals": totals,
        "languages": dict(sorted(langs.items())),
        "no_metadata_labels": dict(sorted(no_meta.items())),
        "layouts": _layouts(shards),
        "unknown_lang_codes": dict(sorted(total1.unknown_lang_codes.items())),
        "lid_changes": dict(sorted(total1.lid_changes.items(), key=lambda kv: (-kv[1], kv[0]))),
        "damaged": damaged,
        "shards": shards,
    }


def _layouts(shards: list[dict]) -> dict:
    out: dict = {}
    for row in shards:
        lay = row.get("layout")
        if lay:
            name = lay.get("layout") or "unknown"
            out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items()))
