"""Curate an img2dataset WebDataset pool online: a counting pass, then a loader that keeps samples per epoch.

    python examples/frameworks_webdataset.py METADATA_DIR 'pool/{00000..00001}.tar'

Epoch 0 gives the same kept set as ``metaclip2 curate`` on the same tars; later epochs redraw.
"""

import sys

import webdataset as wds

from metaclip2.curation.counts import EntryCounts
from metaclip2.pipeline import BatchCurator
from metaclip2.pipeline.run.guidance import suggest_t_en


def curate_wds(metadata, urls, t_en=None, epoch=0):
    cur, counts = BatchCurator(metadata, text_key="txt", id_key="__key__"), EntryCounts()
    for batch in wds.WebDataset(urls, shardshuffle=False).batched(512, collation_fn=None):
        cur.count(cur.annotate_batch({"txt": [s["txt"] for s in batch], "__key__": [s["__key__"] for s in batch]}), counts)
    cur.fit(counts, t_en=t_en or suggest_t_en(counts)[0.06])  # or BatchCurator(..., probabilities="run/stage2/probabilities.bin")
    return wds.WebDataset(urls, shardshuffle=False).compose(lambda src: cur.filter_stream(src, epoch=epoch))


if __name__ == "__main__":  # loader workers import this file again
    for sample in curate_wds(sys.argv[1], sys.argv[2]):
        print(sample["__key__"], sample["txt"][:60])
