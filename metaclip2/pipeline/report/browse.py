"""What the HTML report shows, gathered from a run's verified stage files.

[`report_data`][metaclip2.pipeline.report.browse.report_data] reads the datacard ([`make_datacard`][metaclip2.pipeline.run.datacard.make_datacard],
which checks every stats file's seal and sums), the merged counts and ``probabilities.bin``
(checked against the run's metadata digests), the shards' examples files (each against the size
and sha256 its stats recorded), the entry lists of the metadata (against the same digests), and
the threshold sweep over a grid of ``t_en`` ([`sweep`][metaclip2.pipeline.report.sweep.sweep],
the kernel of ``metaclip2 sweep``). Everything it returns is bounded: per language at most
``HEAD`` head and
``TAIL`` tail entries, ``CURVE_POINTS`` points of
the ranked counts, and ``GRID`` sweep rows.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from metaclip2.core.errors import DataError, Metaclip2Error

__all__ = ["report_data", "GRID", "CURVE_POINTS"]

log = logging.getLogger(__name__)

#: t_en values of the report's sweep control (at most; plus the run's own).
GRID = 25
#: Points of a language's ranked-count curve (log-spaced ranks).
CURVE_POINTS = 72


def _verified_examples(directory: Path, names: list[str], stats_cls, paths_of, notes: list[str], what: str) -> list[dict]:
    """The examples files of the shards, each checked against its stats' record; gaps noted."""
    from metaclip2.core.fingerprint import file_problem
    from metaclip2.pipeline.run.rundir import load_json
    from metaclip2.pipeline.stages.examples import FORMAT

    docs, lacking = [], []
    for name in names:
        paths = paths_of(directory, name)
        if not paths["stats"].exists():
            lacking.append(name)
            continue
        stats = stats_cls.from_json(load_json(paths["stats"]), str(paths["stats"]))
        outputs = stats.outputs or {}
        # stage 1 records its files by name, stage 3 relative to the run (stage3/, subset/, keys/)
        recorded = outputs.get(paths["examples"].name) or outputs.get(f"{paths['examples'].parent.name}/{paths['examples'].name}")
        if recorded is None:
            lacking.append(name)
            continue
        problem = file_problem(paths["examples"], recorded)
        if problem is not None:
            raise DataError(f"{paths['examples']} is not the file its stage wrote ({problem}): run that stage again for shard {name}")
        doc = load_json(paths["examples"])
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise DataError(f"{paths['examples']} is not a metaclip2 examples file: run that stage again for shard {name}")
        docs.append(doc)
    if lacking:
        notes.append(f"{what}: {len(lacking)} of {len(names)} shards have no examples file (e.g. {lacking[0]}: not run yet, or "
                     "made by an older metaclip2); examples come from the other shards" if docs else
                     f"{what}: no examples (the stage has not run, or was made by an older metaclip2: run it again in a new "
                     "directory to see them)")  # fmt: skip
    return docs


def _entry_names(metadata: str | None, wanted: dict, digests: dict, notes: list[str]) -> dict:
    """``{lang: {entry id: (entry, source)}}`` for the `wanted` ids (``{lang: ids}``), from the
    metadata files that still hold the run's entry lists (one language in memory at a time)."""
    from metaclip2.core.entries import entries_digest, read_metadata

    out: dict = {}
    if not metadata:
        return out
    missing = []
    for lang in sorted(wanted):
        path = Path(metadata) / f"{lang}.tsv"
        try:
            entries, sources = read_metadata(path, with_sources=True)
        except (Metaclip2Error, OSError):
            missing.append(lang)
            continue
        if entries_digest(entries) != digests.get(lang):
            missing.append(lang)
            continue
        out[lang] = {e: (entries[e], sources[e]) for e in wanted[lang] if e < len(entries)}
    if missing:
        notes.append(f"entry names: the metadata of {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''} is no longer at "
                     f"{metadata} (or holds another entry list); those entries are shown by id")  # fmt: skip
    return out


def _curve(c: np.ndarray, t) -> dict:
    """Ranked counts (hit entries, highest first) at log-spaced ranks, and the head's length."""
    hit = np.sort(c[c > 0])[::-1].astype(np.int64)
    n = len(hit)
    if not n:
        return {"n": 0, "ranks": [], "counts": [], "head": 0}
    ranks = np.unique(np.round(np.geomspace(1, n, num=min(n, CURVE_POINTS))).astype(np.int64))
    head = int(np.count_nonzero(hit > t)) if t is not None else 0
    return {"n": n, "ranks": ranks.tolist(), "counts": hit[ranks - 1].tolist(), "head": head, "max": int(hit[0])}


def _grid(t_run, top: int) -> list:
    top = max(int(top), 2)
    values = {int(round(v)) for v in np.geomspace(1, top, num=GRID - 1)}
    if t_run is not None:
        values.add(int(t_run) if float(t_run).is_integer() else float(t_run))
    return sorted(values)


def report_data(run_dir: str | os.PathLike) -> dict:
    """Everything the HTML report of `run_dir` shows, from its verified stage files.

    Returns
    -------
    dict
        ``card`` (the datacard), ``languages`` (per language: ``curve``, ``head``: the head
        entries' rows, ``unmatched``/``matched`` stage-1 examples, ``lid_changes``),
        ``entries`` (the browsable entries: ``lang``, ``id``, ``text``, ``source``, ``count``,
        ``q``, ``head``, ``kept``, ``not_kept``), ``no_metadata`` (examples per LID label),
        ``sweep`` (``grid``, ``rows``, ``run_t_en``, ``unit``, ``english``, ``p`` or None when no
        sweep can be made) and ``notes`` (what the report lacks, and why).

    Raises
    ------
    DataError
        A stage file fails its checks (the message names it and what to run again).

    See Also
    --------
    - [`write_html_report`][metaclip2.pipeline.report.card.write_html_report] : Renders it as one HTML file.

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline import curate
    >>> from metaclip2.pipeline.report.browse import report_data
    >>> _ = curate(f"{d}/metadata", f"{d}/pool.jsonl", out=f"{d}/run", t_en=2)
    >>> data = report_data(f"{d}/run")
    >>> sorted({(e["lang"], e["text"]) for e in data["entries"]})[:3]
    [('de', 'Hund'), ('de', 'Katze'), ('en', 'cat')]
    >>> [row["t_en"] for row in data["sweep"]["rows"]][:3], data["notes"]
    ([1, 2, 3], [])
    >>> tmp.cleanup()
    """
    from metaclip2.curation.counts import EntryCounts
    from metaclip2.curation.sampling import EntryProbabilities
    from metaclip2.pipeline.report.sweep import load_sweep_data, sweep
    from metaclip2.pipeline.run.datacard import make_datacard
    from metaclip2.pipeline.run.fork import stage1_dir
    from metaclip2.pipeline.run.rundir import RunDir
    from metaclip2.pipeline.stages.examples import HEAD, TAIL, entry_keys, merge_examples
    from metaclip2.pipeline.stages.files import stage1_paths, stage3_paths
    from metaclip2.pipeline.stages.stats import Stage1Stats, Stage3Stats

    run = RunDir(run_dir)
    card = make_datacard(run.path)
    info = run.read()
    s1 = run.require("stage1", "run stage 1 (`metaclip2 count`) first")
    s2, s3 = info.get("stage2"), info.get("stage3")
    digests = s1.get("metadata_digests", {})
    names = s1.get("shards", [])
    notes: list[str] = []

    ex1 = merge_examples(_verified_examples(stage1_dir(run), names, Stage1Stats, stage1_paths, notes, "stage 1"))
    ex3: dict = {}
    if s3:
        fmt = s3.get("output_format", "jsonl")
        ex3 = merge_examples(_verified_examples(run.stage3, names, Stage3Stats, lambda d, n: stage3_paths(d, n, fmt), notes, "stage 3"))
    else:
        notes.append("stage 3 has not run: no kept / not-kept examples (run `metaclip2 sample`)")

    counts = probs = None
    if card["p"] is not None or any(d["t"] is not None for d in card["languages"].values()):
        counts = EntryCounts.load(run.counts, digests=digests)
        probs = EntryProbabilities.load(run.probabilities)
        probs.check_digests(digests)
    else:
        notes.append("stage 2 has not run: no thresholds, flattening curves or entry browser (run `metaclip2 thresholds`)")

    langs = sorted(card["languages"])
    per_lang: dict = {}
    browse: list[tuple] = []  # (lang, entry id, head?)
    for lang in langs:
        d = card["languages"][lang]
        row: dict = {"curve": None, "head": [], "matched": ex1.get("matched", {}).get(lang, []),
                     "unmatched": ex1.get("unmatched", {}).get(lang, [])}  # fmt: skip
        row["lid_changes"] = {k: v for k, v in card.get("lid_changes", {}).items() if k.split("->")[-1] == lang or k.split("->")[0] == lang}
        if counts is not None and lang in counts:
            c = np.asarray(counts[lang])
            t = d["t"]
            row["curve"] = _curve(c, t)
            hit = np.flatnonzero(c > 0)
            order = hit[np.lexsort((hit, -c[hit].astype(np.int64)))]
            # the entries stage 3 sampled (stages/examples.py): the HEAD highest counts above t
            # (ties by id), and the TAIL smallest entry keys among the hit entries at or below t
            head = [int(e) for e in order[:HEAD] if t is not None and c[e] > t]
            pool = hit[c[hit] <= t] if t is not None else hit
            keys = entry_keys(int(s3["seed"]) if s3 else 0, lang, pool)
            tail = sorted(int(e) for e in pool[np.lexsort((pool, keys))[:TAIL]])
            browse += [(lang, e, True) for e in head] + [(lang, e, False) for e in tail]
        per_lang[lang] = row

    wanted: dict = {}
    for lang, e, _ in browse:
        wanted.setdefault(lang, set()).add(e)
    for lang in per_lang:  # the entries of stage 1's matched samples
        for r in per_lang[lang]["matched"]:
            wanted.setdefault(lang, set()).update(r.get("ids", []))
    names_of = _entry_names(card.get("metadata"), wanted, digests, notes)
    entries = []
    for lang, e, is_head in browse:
        c = int(counts[lang][e])
        q = float(probs.q[lang][e]) if lang in probs.q and e < len(probs.q[lang]) else None
        text, source = names_of.get(lang, {}).get(e, (f"#{e}", "?"))
        slot = ex3.get("head" if is_head else "tail", {}).get(lang, {}).get(str(e), {})
        entries.append({
            "lang": lang, "id": e, "text": text, "source": source or "-",
            "count": c, "q": q, "head": is_head,
            "kept": [r["text"] for r in slot.get("kept", [])], "not_kept": [r["text"] for r in slot.get("not_kept", [])],
        })  # fmt: skip
    for lang, row in per_lang.items():
        row["head"] = [e for e in entries if e["lang"] == lang and e["head"]]
    for lang, row in per_lang.items():
        for r in row["matched"]:
            r["entries"] = [names_of.get(lang, {}).get(i, (f"#{i}",))[0] for i in r.get("ids", [])]

    return {"card": card, "run": str(run.path), "languages": per_lang, "entries": entries,
            "no_metadata": ex1.get("no_metadata", {}), "sweep": _sweep(run, s2, s3, card, load_sweep_data, sweep, notes),
            "notes": notes}  # fmt: skip


def _sweep(run, s2, s3, card, load_sweep_data, sweep, notes) -> dict | None:
    if not s2:
        return None
    try:
        data = load_sweep_data(run.path)
        t_run = s2.get("t_en")
        top = max((int(data.counts[lang].max()) for lang in data.langs if len(data.counts[lang])), default=1) + 1
        grid = _grid(t_run, top)
        unit = (s3 or {}).get("unit", "image")
        table = sweep(data, grid, english=s2.get("english", "keep"), p=s2.get("p"), unit=unit)
    except Metaclip2Error as e:
        notes.append(f"t_en sweep: not available ({e})")
        return None
    rows = [{"t_en": r["t_en"], "p": r["p"], "pairs": r["pairs"], "images": r["images"],
             "languages": {lang: {"t": v["t"], "pairs": v["pairs"], "images": v["images"]} for lang, v in r["languages"].items()}}
            for r in table.rows]  # fmt: skip
    return {"grid": grid, "rows": rows, "run_t_en": t_run, "unit": unit, "english": table.english, "p": s2.get("p"),
            "matched_pairs": table.matched_pairs, "matched_images": table.matched_images}  # fmt: skip
