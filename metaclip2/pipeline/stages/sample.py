"""Stage 3 of the curation ([Algorithm 1][algorithm-1]) as a plain per-shard function.

[`sample_shard`][metaclip2.pipeline.stages.sample.sample_shard] makes the keep decisions for epoch 0 (the same as
[`OnlineSampler`][metaclip2.curation.sampling.OnlineSampler]'s) and writes the curated subset.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metaclip2.core.atomic import AtomicFile, write_json
from metaclip2.core.errors import DataError
from metaclip2.core.fingerprint import file_digest
from metaclip2.curation.sampling import EntryProbabilities, keep_decisions
from metaclip2.execution.progress import report_pairs
from metaclip2.pipeline.io.index import INDEX_SUFFIX, IndexBatch, iter_index
from metaclip2.core.jsonfile import read_json
from metaclip2.pipeline.io.writers import ExtraTypes, carried_columns, curated_writer, output_columns
from metaclip2.pipeline.stages.cache import _cached_probabilities
from metaclip2.pipeline.stages.examples import Stage3Examples
from metaclip2.pipeline.stages.files import stage1_paths, stage3_output_name, stage3_paths
from metaclip2.pipeline.stages.options import SampleOptions
from metaclip2.pipeline.stages.split import load_split
from metaclip2.pipeline.stages.stats import Stage1Stats, Stage3Stats

__all__ = ["sample_shard", "SampleTask", "key_line"]


def take_rows(offsets: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR sub-matrix of `rows` (in that order): ``(offsets, ids)``."""
    starts, ends = offsets[rows], offsets[np.asarray(rows) + 1]
    lengths = ends - starts
    sub = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=sub[1:])
    # position j of the result reads ids[starts[row_of(j)] + (j - sub[row_of(j)])]
    gather = np.repeat(starts - sub[:-1], lengths) + np.arange(int(sub[-1]), dtype=np.int64)
    return sub, ids[gather]


def sample_shard(
    index_path: str | os.PathLike,
    probabilities: str | os.PathLike,
    out_dir: str | os.PathLike,
    shard: str | None = None,
    options: SampleOptions | None = None,
    *,
    index_sha256: str | None = None,
    probabilities_sha256: str | None = None,
    split: str | os.PathLike | None = None,
    split_sha256: str | None = None,
    **changes: Any,
) -> Stage3Stats:
    """Stage 3 on one shard: keep decisions for epoch 0, curated subset written.

    Keep probabilities come from [`row_probabilities`][metaclip2.curation.sampling.EntryProbabilities.row_probabilities]
    and decisions from [`keep_decisions`][metaclip2.curation.sampling.keep_decisions] (an image is all rows
    with one id), so they equal ``OnlineSampler(probabilities, seed, unit)(id, texts, epoch=0)``
    and every other door's.

    Parameters
    ----------
    index_path : path
        A stage-1 ``<shard>.index.bin``.
    probabilities : path
        ``probabilities.bin`` of stage 2.
    out_dir : path
        Where ``<shard>.<output_format>`` and ``<shard>.stats.json`` go.
    shard : str, optional
        Default: the index file name without ``.index.bin``.
    options : SampleOptions or CurationConfig, optional
        Stage 3's options ([`SampleOptions`][metaclip2.pipeline.stages.options.SampleOptions]: ``seed``,
        ``unit``, ``output_format``, ``keys_list``); default: all defaults.
    split : path, optional
        Stage 2's ``split.index.bin`` ([`split`][metaclip2.pipeline.stages.split]): the rows, from
        every shard, of the images found in more than one. This shard decides each such image
        it holds on all its rows (so every shard decides it alike) and writes its own kept
        rows; the image is counted (``images``, ``kept_images``, keys list) by the first shard,
        in the run's order, that holds a matched (kept) row of it. Without it, the shard is
        taken to hold its images whole.
    index_sha256, probabilities_sha256, split_sha256 : str, optional
        What stages 1 and 2 recorded for the files: a file with another digest is refused.
        The subset's rows are [`CURATED_COLUMNS`][metaclip2.pipeline.io.writers.CURATED_COLUMNS] then the
        input's carried fields ([`carried_columns`][metaclip2.pipeline.io.writers.carried_columns]; in
        Parquet typed by [`ExtraTypes`][metaclip2.pipeline.io.writers.ExtraTypes] over the shard).
    **changes
        [`SampleOptions`][metaclip2.pipeline.stages.options.SampleOptions] fields applied over `options`.
        With ``keys_list``, ``<shard>.keys.txt`` lists the kept images' ids, one per line, in
        input order; an id that holds a line break or starts with ``"`` is written as a JSON
        string (``"a\\nb"``), so there is exactly one line per kept image.

    Returns
    -------
    Stage3Stats
        The shard's accounting (also written, last, to ``<shard>.stats.json``).

    Raises
    ------
    DataError
        The index or the probabilities are not the files stages 1 and 2 wrote.

    See Also
    --------
    - [`SampleTask`][metaclip2.pipeline.stages.sample.SampleTask] : The same call as a picklable task for executors.
    - [`OnlineSampler`][metaclip2.curation.sampling.OnlineSampler] : The same decisions, made per image at training time.
    - [`sample`][metaclip2.pipeline.run.api.sample] : Stage 3 of a whole run directory, shard by shard.

    Examples
    --------
    Stages 1 and 2 on one shard, then the curated subset:

    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline.stages.match import match_shard
    >>> from metaclip2.pipeline.stages.merge import compute_probabilities, merge_counts
    >>> from metaclip2.pipeline.stages.sample import sample_shard
    >>> _ = match_shard(f"{d}/pool.jsonl", f"{d}/metadata", f"{d}/stage1")
    >>> _ = merge_counts([f"{d}/stage1/pool.counts.bin"], f"{d}/counts.bin")
    >>> _ = compute_probabilities(f"{d}/counts.bin", d, t_en=2)
    >>> stats = sample_shard(f"{d}/stage1/pool.index.bin", f"{d}/probabilities.bin", f"{d}/stage3", seed=0)
    >>> stats.matched, stats.kept, sorted(stats.by_lang.items())
    (6, 5, [('de', {'matched': 2, 'kept': 1}), ('en', {'matched': 4, 'kept': 4})])
    >>> with open(f"{d}/subset/pool.jsonl") as f:
    ...     print([json.loads(line)["id"] for line in f])
    ['a', 'b', 'c', 'd', 'e']
    >>> tmp.cleanup()
    """
    options = SampleOptions.of(options, **changes)
    index_path = Path(index_path)
    shard = shard or index_path.name.removesuffix(INDEX_SUFFIX)
    paths = stage3_paths(out_dir, shard, options.output_format)
    probs, probs_sha256 = _cached_probabilities(probabilities)
    sources = {"index": file_digest(index_path)["sha256"], "probabilities": probs_sha256}
    checks = [("stage-1 index", index_path, sources["index"], index_sha256), ("probabilities", probabilities, probs_sha256, probabilities_sha256)]
    if split is not None:
        sources["split"] = file_digest(split)["sha256"]
        checks.append(("split-images file", split, sources["split"], split_sha256))
    for what, path, got, want in checks:
        if want is not None and got != want:
            raise DataError(f"{path} is not the {what} its stage wrote (sha256 {got[:12]}, {want[:12]} recorded): run that stage again")
    # a name, not a path: run directories can be compared and moved
    stats = Stage3Stats(index=index_path.name, shard=shard, seed=options.seed, unit=options.unit, sources=sources)
    id_column, arrow_types = _input_columns(index_path)
    # 1. every matched row's image id, alt-text index and keep probability: an image is all the
    # rows with its id anywhere in the shard, so the decisions are made over the whole shard;
    # the same pass types a Parquet subset's carried columns (one schema per shard, from all its rows)
    types = ExtraTypes() if options.output_format == "parquet" else None
    image_ids: list = []
    ks: list = []
    ps: list = []
    for batch in iter_index(index_path):
        ps.append(_batch_probabilities(batch, probs))
        image_ids += batch.id
        ks.append(batch.k)
        if types is not None:
            for extra in batch.extra:
                if extra:
                    types.add(carried_columns(extra, id_column))
    extra_types = None
    if types is not None:
        extra_types = types.types()
        # the columns of a Parquet input keep their Arrow types, all of them in every shard's file
        extra_types.update({k: t for k, t in carried_columns(arrow_types, id_column).items()})
    p = np.concatenate(ps) if ps else np.zeros(0)
    k = np.concatenate(ks) if ks else np.zeros(0, dtype=np.int32)
    split_k: dict = {}
    if split is None:
        keep = keep_decisions(image_ids, p, k, seed=options.seed, epoch=0, unit=options.unit)
        kept_ids = {image_ids[r] for r in np.flatnonzero(keep).tolist()}
        stats.images = len(set(image_ids))
    else:
        keep, kept_ids, split_k = _decide_with_split(image_ids, p, k, load_split(split, shard), shard, probs, options)
        owned = split_k.pop(None)
        stats.images = len(set(image_ids) - owned["split"]) + len(owned["images"])
    stats.kept_images = len(kept_ids)
    del image_ids, ks, ps
    # 2. the kept rows, in index order
    keys = AtomicFile(paths["keys"]) if options.keys_list else None
    examples = Stage3Examples(probs.q, options.seed)  # a bounded sample of alt-texts for the report
    try:
        with curated_writer(paths["output"], options.output_format, extra_types, id_column) as out:
            at = 0
            for batch in iter_index(index_path):
                b = at + len(batch)
                _write_batch(batch, p[at:b], keep[at:b], out, stats, keys, kept_ids, split_k, id_column)
                examples.add_rows(batch.lang, batch.id, batch.k, batch.text, batch.ids, batch.offsets, keep[at:b])
                at = b
                report_pairs(len(batch))
        if keys is not None:
            keys.commit()
    except BaseException:
        if keys is not None:
            keys.abort()
        raise
    stats.not_kept = stats.matched - stats.kept
    examples.write(paths["examples"])
    stats.outputs = {stage3_output_name(paths["output"]): file_digest(paths["output"]),
                     stage3_output_name(paths["examples"]): file_digest(paths["examples"])}  # fmt: skip
    if options.keys_list:
        stats.outputs[stage3_output_name(paths["keys"])] = file_digest(paths["keys"])
    write_json(paths["stats"], stats.to_json())
    return stats


def key_line(image_id: str) -> bytes:
    """One line of a keys list: the id as it is, or as a JSON string when it holds a line break
    (or starts with ``"``), so that one kept image is always one line.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.sample import key_line
    >>> key_line("000123"), key_line("a\\nb")
    (b'000123\\n', b'"a\\\\nb"\\n')
    """
    if "\n" in image_id or "\r" in image_id or image_id.startswith('"') or "\u2028" in image_id or "\u2029" in image_id:
        image_id = json.dumps(image_id)
    return image_id.encode("utf-8", "surrogatepass") + b"\n"


def _batch_probabilities(batch: IndexBatch, probs: EntryProbabilities) -> np.ndarray:
    if batch.lang_code is not None:
        return probs.row_probabilities(batch.languages, batch.offsets, batch.ids, codes=batch.lang_code)
    return probs.row_probabilities(batch.lang, batch.offsets, batch.ids)


def _decide_with_split(image_ids: list, p: np.ndarray, k: np.ndarray, rows: list, shard: str, probs: EntryProbabilities,
                       options: SampleOptions) -> tuple[np.ndarray, set, dict]:  # fmt: skip
    """Decisions of a shard's rows when some of its images are split across shards (`rows`:
    [`load_split`][metaclip2.pipeline.stages.split.load_split] of this shard): those are decided on
    all their rows; the others as the shard holds them.

    Returns the keep mask, the kept ids this shard counts, and ``(id, own k) -> k`` of its split
    rows (plus, under ``None``, the split ids and those whose images this shard counts).
    """
    split_ids = {r[0] for r in rows}
    # the shard's other images, decided here alone
    alone = np.array([x not in split_ids for x in image_ids], dtype=bool)
    keep = keep_decisions(image_ids, np.where(alone, p, 0.0), k, seed=options.seed, epoch=0, unit=options.unit)
    kept_ids = {image_ids[r] for r in np.flatnonzero(keep).tolist()}
    owned = {"split": split_ids, "images": set()}
    split_k: dict = {None: owned}
    if rows:
        lengths = np.fromiter((len(r[3]) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.fromiter((e for r in rows for e in r[3]), dtype=np.int64, count=int(offsets[-1]))
        sp = probs.row_probabilities([r[2] for r in rows], offsets, ids)
        sp[[j for j, r in enumerate(rows) if r[6]]] = 0.0  # an (id, k) an earlier shard holds: never kept
        skeep = keep_decisions([r[0] for r in rows], sp, [r[1] for r in rows], seed=options.seed, epoch=0, unit=options.unit)
        first: dict = {}  # id -> the first shard (rows are in shard order) with a matched row, then with a kept one
        first_kept: dict = {}
        for j, r in enumerate(rows):
            first.setdefault(r[0], r[4])
            if skeep[j]:
                first_kept.setdefault(r[0], r[4])
        owned["images"] = {i for i, sh in first.items() if sh == shard}
        kept_ids |= {i for i, sh in first_kept.items() if sh == shard}
        decided = {(r[0], r[5]): (bool(skeep[j]), r[1]) for j, r in enumerate(rows) if r[4] == shard}
        kl = k.tolist()
        for row in np.flatnonzero(~alone).tolist():
            got = decided.get((image_ids[row], kl[row]))
            if got is None:
                raise DataError(f"the split-images file lacks a row of image {image_ids[row]!r} of shard {shard}: run stage 2 again")
            keep[row], split_k[(image_ids[row], kl[row])] = got
    return keep, kept_ids, split_k


def _input_columns(index_path: Path) -> tuple[str, dict]:
    """The id column's name and the Arrow types of the carried columns, as stage 1 read the input.

    From the shard's stage-1 stats (its ``layout``: ``id_key`` and, for Parquet inputs,
    ``carried_schema``); ``("id", {})`` where stage 1 recorded neither.
    """
    stats_path = stage1_paths(index_path.parent, index_path.name.removesuffix(INDEX_SUFFIX))["stats"]
    if not stats_path.exists():
        return "id", {}
    layout = Stage1Stats.from_json(read_json(stats_path), source=str(stats_path)).layout or {}
    id_column = output_columns(layout.get("id_key") if isinstance(layout.get("id_key"), str) else None)[0]
    encoded = layout.get("carried_schema")
    if not encoded:
        return id_column, {}
    try:
        import pyarrow as pa

        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(encoded, validate=True)))
    except ImportError:
        return id_column, {}  # a JSONL subset needs no types
    except Exception as e:  # noqa: BLE001 - binascii and pyarrow raise their own types
        raise DataError(f"{stats_path}: the carried columns' schema is damaged ({type(e).__name__}): run stage 1 of the shard again") from None
    return id_column, {f.name: f.type for f in schema}


def _write_batch(batch: IndexBatch, p: np.ndarray, keep: np.ndarray, out, stats: Stage3Stats, keys, kept_ids: set,
                 split_k: dict | None = None, id_column: str = "id") -> None:  # fmt: skip
    """Account a batch's rows and write its kept ones; a kept image's key goes out at its first kept row.
    `split_k` maps ``(id, own k)`` of rows of images split across shards to their index over the pool."""
    pl, k = p.tolist(), batch.k.tolist()
    langs, ids, offsets = batch.lang, batch.ids, batch.offsets.tolist()
    for lang in set(langs):
        stats.by_lang.setdefault(lang, {"matched": 0, "kept": 0})
    for lang in langs:
        stats.by_lang[lang]["matched"] += 1
    stats.matched += len(batch)
    for r in np.flatnonzero(keep).tolist():
        image_id = batch.id[r]
        if keys is not None and image_id in kept_ids:
            kept_ids.discard(image_id)  # one line per kept image
            keys.write(key_line(image_id))
        stats.kept += 1
        stats.by_lang[langs[r]]["kept"] += 1
        out.write(
            {
                **carried_columns(batch.extra[r], id_column),
                "id": image_id,
                "text": batch.text[r],
                "text_index": split_k.get((image_id, k[r]), k[r]) if split_k else k[r],
                "lang": langs[r],
                "ids": ids[offsets[r] : offsets[r + 1]].tolist(),
                "keep_probability": pl[r],
            }
        )


@dataclass(frozen=True)
class SampleTask:
    """Stage 3 of one shard, as a picklable callable (what executors run).

    The fields are [`sample_shard`][metaclip2.pipeline.stages.sample.sample_shard]'s arguments; calling the task runs it.

    See Also
    --------
    - [`sample_shard`][metaclip2.pipeline.stages.sample.sample_shard] : What the task calls.
    - [`MatchTask`][metaclip2.pipeline.stages.match.MatchTask] : The stage-1 task.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.execution import LocalExecutor
    >>> from metaclip2.pipeline.stages.match import MatchTask
    >>> from metaclip2.pipeline.stages.merge import compute_probabilities, merge_counts
    >>> from metaclip2.pipeline.stages.sample import SampleTask
    >>> from metaclip2.pipeline.stages.options import SampleOptions
    >>> _ = MatchTask(f"{d}/pool.jsonl", f"{d}/metadata", f"{d}/stage1", "pool")()
    >>> _ = merge_counts([f"{d}/stage1/pool.counts.bin"], f"{d}/counts.bin")
    >>> info = compute_probabilities(f"{d}/counts.bin", d, t_en=2)
    >>> task = SampleTask(index_path=f"{d}/stage1/pool.index.bin", probabilities=f"{d}/probabilities.bin",
    ...                   out_dir=f"{d}/stage3", shard="pool", options=SampleOptions(seed=0, keys_list=True),
    ...                   probabilities_sha256=info["outputs"]["probabilities.bin"]["sha256"])
    >>> with LocalExecutor(workers=1) as ex:
    ...     [stats] = ex.run([task])
    >>> stats.kept_images, open(f"{d}/keys/pool.keys.txt").read().split()
    (5, ['a', 'b', 'c', 'd', 'e'])
    >>> tmp.cleanup()
    """

    index_path: str
    probabilities: str
    out_dir: str
    shard: str
    options: SampleOptions = SampleOptions()
    index_sha256: str | None = None
    probabilities_sha256: str | None = None
    split: str | None = None
    split_sha256: str | None = None

    def __call__(self) -> Stage3Stats:
        return sample_shard(self.index_path, self.probabilities, self.out_dir, self.shard, self.options,
                            index_sha256=self.index_sha256, probabilities_sha256=self.probabilities_sha256,
                            split=self.split, split_sha256=self.split_sha256)  # fmt: skip
