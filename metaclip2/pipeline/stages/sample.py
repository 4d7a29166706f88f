"""Stage 3 of the curation ([Algorithm 1][algorithm-1]) as a plain per-shard function.

:func:`sample_shard` makes the keep decisions for epoch 0 (the same as
:class:`~metaclip2.curation.sampling.OnlineSampler`'s) and writes the curated subset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaclip2.core.atomic import AtomicFile, write_json
from metaclip2.core.errors import DataError, ParameterError
from metaclip2.core.fingerprint import file_digest
from metaclip2.curation.sampling import UNITS, EntryProbabilities, select_texts
from metaclip2.execution.progress import report_pairs
from metaclip2.pipeline.io.index import INDEX_SUFFIX, IndexBatch, iter_index
from metaclip2.pipeline.io.writers import ExtraTypes, carried_columns, curated_writer
from metaclip2.pipeline.stages.cache import _cached_probabilities
from metaclip2.pipeline.stages.files import stage3_paths
from metaclip2.pipeline.stages.stats import Stage3Stats

__all__ = ["sample_shard", "SampleTask"]


def batch_keep_probabilities(batch: IndexBatch, probs: EntryProbabilities) -> np.ndarray:
    """Keep probability of every row of an index batch (vectorised over rows and languages).

    The same float operations, in the same order, as
    :func:`~metaclip2.curation.sampling.keep_probabilities` per language, so the same bits.

    Raises
    ------
    DataError
        A language or entry id the probabilities do not have: index and probabilities come
        from different runs.
    """
    if batch.lang_code is None:
        table = sorted(set(batch.lang))
        code = {lang: i for i, lang in enumerate(table)}
        lang_code = np.fromiter((code[x] for x in batch.lang), dtype=np.int64, count=len(batch))
    else:
        table, lang_code = batch.languages, batch.lang_code.astype(np.int64)
    offsets = np.asarray(batch.offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    ids = np.asarray(batch.ids, dtype=np.int64)
    qi = np.zeros(len(ids), dtype=np.float64)
    id_lang = np.repeat(lang_code, lengths)
    order = np.argsort(id_lang, kind="stable")
    bounds = np.searchsorted(id_lang[order], np.arange(len(table) + 1))
    for c, lang in enumerate(table):
        at = order[bounds[c] : bounds[c + 1]]
        if not len(at) and not np.any(lang_code == c):
            continue
        q = probs.q.get(lang)
        if q is None:
            raise DataError(f"the probabilities have no language {lang!r}, which the stage-1 index holds: they come from another run")
        sub = ids[at]
        if len(sub) and int(sub.max()) >= len(q):
            raise DataError(f"entry ids of {lang!r} exceed its probabilities: the index comes from other metadata")
        qi[at] = q[sub]
    p = np.zeros(len(batch), dtype=np.float64)
    # the j-th id of every row at once, as keep_probabilities does per language
    for j in range(int(lengths.max()) if len(lengths) else 0):
        rows = np.flatnonzero(lengths > j)
        p[rows] += qi[offsets[rows] + j] * (1.0 - p[rows])
    return p


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
    *,
    seed: int = 0,
    unit: str = "image",
    output_format: str = "jsonl",
    index_sha256: str | None = None,
    probabilities_sha256: str | None = None,
    keys_list: bool = False,
) -> Stage3Stats:
    """Stage 3 on one shard: keep decisions for epoch 0, curated subset written.

    Decisions go through :func:`~metaclip2.curation.sampling.select_texts` with each alt-text's
    keep-probability (0 for the image's alt-texts that matched nothing), so they equal
    ``OnlineSampler(probabilities, seed, unit)(id, texts, epoch=0)``.

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
    seed : int
    unit : {"image", "pair"}
    output_format : {"jsonl", "parquet"}
    index_sha256, probabilities_sha256 : str, optional
        What stages 1 and 2 recorded for the two files: a file with another digest is refused.
        The subset's rows are :data:`~metaclip2.pipeline.io.writers.CURATED_COLUMNS` then the
        input's carried fields (:func:`~metaclip2.pipeline.io.writers.carried_columns`; in
        Parquet typed by :class:`~metaclip2.pipeline.io.writers.ExtraTypes` over the shard).
    keys_list : bool
        Also write ``<shard>.keys.txt``: the kept images' ids, one per line, in input order.

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
    >>> with open(f"{d}/stage3/pool.jsonl") as f:
    ...     print([json.loads(line)["id"] for line in f])
    ['a', 'b', 'c', 'd', 'e']
    >>> tmp.cleanup()
    """
    if unit not in UNITS:
        raise ParameterError(f"unit must be one of {UNITS}, got {unit!r}")
    index_path = Path(index_path)
    shard = shard or index_path.name.removesuffix(INDEX_SUFFIX)
    paths = stage3_paths(out_dir, shard, output_format)
    probs, probs_sha256 = _cached_probabilities(probabilities)
    sources = {"index": file_digest(index_path)["sha256"], "probabilities": probs_sha256}
    for what, got, want in (("stage-1 index", sources["index"], index_sha256), ("probabilities", probs_sha256, probabilities_sha256)):
        if want is not None and got != want:
            path = index_path if what == "stage-1 index" else probabilities
            raise DataError(f"{path} is not the {what} its stage wrote (sha256 {got[:12]}, {want[:12]} recorded): run that stage again")
    # a name, not a path: run directories can be compared and moved
    stats = Stage3Stats(index=index_path.name, shard=shard, seed=int(seed), unit=unit, sources=sources)
    extra_types = None
    if output_format == "parquet":  # one schema per shard, from all its rows: a pass over the index first
        types = ExtraTypes()
        for batch in iter_index(index_path):
            for extra in batch.extra:
                if extra:
                    types.add(carried_columns(extra))
        extra_types = types.types()
    keys = AtomicFile(paths["keys"]) if keys_list else None
    try:
        with curated_writer(paths["output"], output_format, extra_types) as out:
            for batch in iter_index(index_path):
                _sample_batch(batch, probs, seed, unit, out, stats, keys)
                report_pairs(len(batch))
        if keys is not None:
            keys.commit()
    except BaseException:
        if keys is not None:
            keys.abort()
        raise
    stats.not_kept = stats.matched - stats.kept
    stats.outputs = {paths["output"].name: file_digest(paths["output"])}
    if keys_list:
        stats.outputs[paths["keys"].name] = file_digest(paths["keys"])
    write_json(paths["stats"], stats.to_json())
    return stats


def _sample_batch(batch: IndexBatch, probs: EntryProbabilities, seed: int, unit: str, out, stats: Stage3Stats, keys=None) -> None:
    p = batch_keep_probabilities(batch, probs).tolist()
    k = batch.k.tolist()
    langs, ids, offsets = batch.lang, batch.ids, batch.offsets.tolist()
    for lang in set(langs):
        stats.by_lang.setdefault(lang, {"matched": 0, "kept": 0})
    for lang in langs:
        stats.by_lang[lang]["matched"] += 1
    starts = batch.image_starts().tolist() + [len(batch)]
    stats.images += len(starts) - 1
    stats.matched += len(batch)
    for a, b in zip(starts[:-1], starts[1:]):
        if b - a == 1:  # most images: one matched alt-text
            per_text = [0.0] * k[a] + [p[a]]
        else:
            per_text = [0.0] * (max(k[a:b]) + 1)
            for r in range(a, b):
                per_text[k[r]] = p[r]
        kept = select_texts(batch.id[a], per_text, seed, 0, unit)
        if not kept:
            continue
        stats.kept_images += 1
        if keys is not None:
            keys.write(batch.id[a].encode("utf-8", "surrogatepass") + b"\n")
        for r in range(a, b):
            if k[r] in kept:
                stats.kept += 1
                stats.by_lang[langs[r]]["kept"] += 1
                out.write(
                    {
                        **carried_columns(batch.extra[r]),
                        "id": batch.id[r],
                        "text": batch.text[r],
                        "text_index": k[r],
                        "lang": langs[r],
                        "ids": ids[offsets[r] : offsets[r + 1]].tolist(),
                        "keep_probability": p[r],
                    }
                )


@dataclass(frozen=True)
class SampleTask:
    """Stage 3 of one shard, as a picklable callable (what executors run).

    The fields are :func:`sample_shard`'s arguments; calling the task runs it.

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
    >>> _ = MatchTask(f"{d}/pool.jsonl", f"{d}/metadata", f"{d}/stage1", "pool", None, 4096, False, None, None)()
    >>> _ = merge_counts([f"{d}/stage1/pool.counts.bin"], f"{d}/counts.bin")
    >>> info = compute_probabilities(f"{d}/counts.bin", d, t_en=2)
    >>> task = SampleTask(index_path=f"{d}/stage1/pool.index.bin", probabilities=f"{d}/probabilities.bin",
    ...                   out_dir=f"{d}/stage3", shard="pool", seed=0, unit="image", output_format="jsonl",
    ...                   probabilities_sha256=info["outputs"]["probabilities.bin"]["sha256"], keys_list=True)
    >>> with LocalExecutor(workers=1) as ex:
    ...     [stats] = ex.run([task])
    >>> stats.kept_images, open(f"{d}/stage3/pool.keys.txt").read().split()
    (5, ['a', 'b', 'c', 'd', 'e'])
    >>> tmp.cleanup()
    """

    index_path: str
    probabilities: str
    out_dir: str
    shard: str
    seed: int
    unit: str
    output_format: str
    index_sha256: str | None = None
    probabilities_sha256: str | None = None
    keys_list: bool = False

    def __call__(self) -> Stage3Stats:
        return sample_shard(self.index_path, self.probabilities, self.out_dir, self.shard, seed=self.seed,
                            unit=self.unit, output_format=self.output_format, index_sha256=self.index_sha256,
                            probabilities_sha256=self.probabilities_sha256, keys_list=self.keys_list)  # fmt: skip
