"""datatrove pipeline steps: a counting pass and a keep filter over documents (``pip install datatrove``).

Curation needs the whole pool's counts before any keep decision, so it is two pipelines::

    cur = BatchCurator("metadata/lid")
    LocalPipelineExecutor([ParquetReader(pool, id_key="uid"), MetaclipCounter(cur, "counts/")], tasks=8).run()
    cur.fit(load_counts("counts/"), t_en=170_000)
    LocalPipelineExecutor([ParquetReader(pool, id_key="uid"), MetaclipFilter(cur), JsonlWriter("kept/")], tasks=8).run()

Documents are one alt-text each (``doc.text``, image id ``doc.id``, the alt-text index in
``doc.metadata[<text_index_key>]`` when the curator's config names one), as datatrove's readers
give them. An image is all documents with its id; [`MetaclipFilter`][metaclip2.pipeline.batch.datatrove_steps.MetaclipFilter] decides the
consecutive documents of one id together (a pair-per-line file lists an image's alt-texts one
after the other), so its decisions equal the offline run's (``metaclip2 curate``) on the same
records whenever an image's documents follow each other within one task's files.
"""

from __future__ import annotations

import contextlib
import glob
import os

from metaclip2.core.errors import MissingExtraError, MissingInputError
from metaclip2.curation.counts import EntryCounts

try:
    from datatrove.pipeline.base import PipelineStep
    from datatrove.pipeline.filters.base_filter import BaseFilter
    from datatrove.pipeline.filters.base_filter import StatHints
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("the datatrove steps need datatrove: pip install 'metaclip2[frameworks]'") from err

__all__ = ["MetaclipCounter", "MetaclipFilter", "load_counts"]

_BATCH = 512


def _batches(data, n: int):
    batch = []
    for doc in data:
        batch.append(doc)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


class MetaclipCounter(PipelineStep):
    """Pass 1: match every document and count; writes ``<counts_dir>/counts-<rank>.bin`` and passes documents on.

    Parameters
    ----------
    curator : BatchCurator
    counts_dir : str
        A local directory; [`load_counts`][metaclip2.pipeline.batch.datatrove_steps.load_counts] sums its files.
    """

    name = "metaclip2 counter"
    type = "🔢 - COUNTER"

    def __init__(self, curator, counts_dir: str, batch_size: int = _BATCH):
        super().__init__()
        self.curator, self.counts_dir, self.batch_size = curator, counts_dir, batch_size

    def run(self, data, rank: int = 0, world_size: int = 1):
        counts = EntryCounts()
        for batch in _batches(data, self.batch_size):
            a = self.curator.annotate([doc.text for doc in batch])
            self.curator.count({self.curator.LANG: a.langs, self.curator.IDS: a.ids_lists()}, counts)
            self.stat_update("matched", value=int(sum(1 for lang, n in zip(a.langs, a.offsets[1:] - a.offsets[:-1]) if lang and n)))
            yield from batch
        os.makedirs(self.counts_dir, exist_ok=True)
        counts.save(os.path.join(self.counts_dir, f"counts-{rank:05d}.bin"))


class MetaclipFilter(BaseFilter):
    """Pass 2: keep the documents the curation keeps (the curator needs probabilities: [`BatchCurator.fit`][metaclip2.pipeline.batch.annotate.BatchCurator.fit]).

    Consecutive documents with the same id are one image and are decided together, never split
    between two batches.
    """

    name = "metaclip2 filter"

    def __init__(self, curator, epoch: int = 0, batch_size: int = _BATCH, exclusion_writer=None):
        super().__init__(exclusion_writer=exclusion_writer, batch_size=batch_size)
        self.curator, self.epoch = curator, epoch

    def _text_index(self, doc):
        key = self.curator.text_index_key
        return None if key is None else doc.metadata.get(key)

    def filter_batch(self, batch):
        a = self.curator.annotate([doc.text for doc in batch])
        ks = None if self.curator.text_index_key is None else [self._text_index(doc) for doc in batch]
        keep = self.curator.keep([doc.id for doc in batch], a.langs, a.ids_lists(), ks, epoch=self.epoch)
        return [bool(k) for k in keep]

    def filter(self, doc) -> bool:
        return self.filter_batch([doc])[0]

    def run(self, data, rank: int = 0, world_size: int = 1):
        # BaseFilter.run, with batches cut between images only
        with self.exclusion_writer if self.exclusion_writer else contextlib.nullcontext() as writer:
            for batch in _image_batches(data, self.batch_size):
                with self.track_time("batch"):
                    keep = self.filter_batch(batch)
                for doc, k in zip(batch, keep):
                    self.stat_update(StatHints.total)
                    if k:
                        self.stat_update(StatHints.forwarded)
                        self.update_doc_stats(doc)
                        yield doc
                    else:
                        self.stat_update(StatHints.dropped)
                        if self.exclusion_writer:
                            writer.write(doc, rank)


def _image_batches(data, n: int):
    """Batches of about `n` documents that never end inside a run of documents with one id."""
    batch: list = []
    for doc in data:
        if len(batch) >= n and doc.id != batch[-1].id:
            yield batch
            batch = []
        batch.append(doc)
    if batch:
        yield batch


def load_counts(counts_dir: str) -> EntryCounts:
    """The sum of the ``counts-*.bin`` files a [`MetaclipCounter`][metaclip2.pipeline.batch.datatrove_steps.MetaclipCounter] wrote."""
    paths = sorted(glob.glob(os.path.join(counts_dir, "counts-*.bin")))
    if not paths:
        raise MissingInputError(f"{counts_dir} holds no counts-*.bin: run the MetaclipCounter pipeline first")
    return EntryCounts.sum(EntryCounts.load(p) for p in paths)
