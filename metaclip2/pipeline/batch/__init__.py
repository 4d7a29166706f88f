"""Sub-layer 4 of the pipeline: curation inside other frameworks. The batch API over plain columns
([`annotate`][metaclip2.pipeline.batch.annotate.annotate],
[`BatchCurator`][metaclip2.pipeline.batch.annotate.BatchCurator], ...) gives the offline run's
decisions to Hugging Face datasets, Ray Data or WebDataset code; the datatrove steps
([`metaclip2.pipeline.batch.datatrove_steps`][metaclip2.pipeline.batch.datatrove_steps]: ``MetaclipCounter``, ``MetaclipFilter``,
``load_counts``) need datatrove and are imported from their module, not from here. Imports only
the lower sub-layers of the pipeline.
"""

from metaclip2.pipeline.batch.annotate import Annotation, BatchCurator, MetadataHandle, annotate, count_matches, keep_mask

__all__ = [
    "Annotation",
    "BatchCurator",
    "MetadataHandle",
    "annotate",
    "count_matches",
    "keep_mask",
]
