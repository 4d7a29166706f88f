"""Stage 2 of the curation ([Algorithm 1][algorithm-1]) as plain functions: per-shard counts
summed ([`merge_counts`][metaclip2.pipeline.stages.merge.merge_counts]), then thresholds and entry probabilities ([`compute_probabilities`][metaclip2.pipeline.stages.merge.compute_probabilities]).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from metaclip2.core.atomic import write_json
from metaclip2.core.jsonfile import seal
from metaclip2.core.errors import DataError
from metaclip2.core.fingerprint import file_digest
from metaclip2.curation.counts import EntryCounts, merge_count_files
from metaclip2.curation.sampling import EntryProbabilities
from metaclip2.pipeline.stages.options import ThresholdOptions

__all__ = ["merge_counts", "compute_probabilities"]


def merge_counts(
    counts_paths: Sequence[str | os.PathLike],
    out_path: str | os.PathLike | None = None,
    digests: dict[str, str] | None = None,
) -> EntryCounts:
    """Stage 2a: sum per-shard counts.

    Parameters
    ----------
    counts_paths : sequence of path
        ``<shard>.counts.bin`` files.
    out_path : path, optional
        Where to save the merged counts.
    digests : dict, optional
        Metadata digests by language; counts of other entry lists are refused.

    Returns
    -------
    EntryCounts
        The merged counts (read from `out_path` language by language when one is given).

    See Also
    --------
    - [`match_shard`][metaclip2.pipeline.stages.match.match_shard] : Stage 1, which writes the per-shard counts.
    - [`compute_probabilities`][metaclip2.pipeline.stages.merge.compute_probabilities] : Stage 2b, from the merged counts.
    - [`merge_count_files`][metaclip2.curation.counts.merge_count_files] : The streaming merge used with `out_path`.

    Examples
    --------
    Two shards' counts over the same English entry list (``dog``, ``cat``, ``red``):

    >>> import os, tempfile
    >>> from metaclip2.curation import EntryCounts
    >>> from metaclip2.pipeline.stages.merge import merge_counts
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> for shard, matches in {"part-0": [[0, 2], [0]], "part-1": [[1], [0, 2]]}.items():
    ...     c = EntryCounts()
    ...     c.register("en", digest="d" * 64, n_entries=3)
    ...     for ids in matches:
    ...         c.add("en", ids)
    ...     c.save(f"{d}/{shard}.counts.bin")
    >>> paths = [f"{d}/part-0.counts.bin", f"{d}/part-1.counts.bin"]
    >>> merge_counts(paths)["en"].tolist()
    [3, 1, 2]
    >>> merged = merge_counts(paths, f"{d}/counts.bin")
    >>> merged["en"].tolist(), os.path.exists(f"{d}/counts.bin")
    ([3, 1, 2], True)
    >>> tmp.cleanup()
    """
    if out_path is None:
        total = EntryCounts()
        for p in counts_paths:
            total.merge(EntryCounts.load(p, digests=digests))
        return total
    # streamed language by language: memory of the largest language, not of all of them
    merge_count_files(counts_paths, out_path, digests=digests)
    return EntryCounts.load(out_path)


def compute_probabilities(
    counts_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: ThresholdOptions | None = None,
    *,
    record: dict | None = None,
    **changes: Any,
) -> dict:
    """Stage 2b: thresholds and entry probabilities from merged counts.

    Writes ``probabilities.bin`` ([`EntryProbabilities`][metaclip2.curation.sampling.EntryProbabilities], the file an
    [`OnlineSampler`][metaclip2.curation.sampling.OnlineSampler] loads) and then ``thresholds.json``
    (``{"p", "t_en", "english", "t": {lang: t or null}, "outputs": {file name: {"bytes",
    "sha256"}}}`` for the counts and ``probabilities.bin``, plus `record`'s items) to `out_dir`.

    Parameters
    ----------
    counts_path : path
        Merged counts ([`merge_counts`][metaclip2.pipeline.stages.merge.merge_counts]).
    out_dir : path
    options : ThresholdOptions or CurationConfig, optional
        Stage 2's options ([`ThresholdOptions`][metaclip2.pipeline.stages.options.ThresholdOptions]:
        ``t_en``, ``english``, ``p``); default: all defaults.
    record : dict, optional
        More items for ``thresholds.json``.
    **changes
        [`ThresholdOptions`][metaclip2.pipeline.stages.options.ThresholdOptions] fields applied over `options`.

    Returns
    -------
    dict
        The content of ``thresholds.json``.

    Raises
    ------
    DataError
        The counts hold no language: nothing matched.

    See Also
    --------
    - [`merge_counts`][metaclip2.pipeline.stages.merge.merge_counts] : Stage 2a, which writes the merged counts.
    - [`thresholds`][metaclip2.curation.threshold.thresholds] : How each language's threshold is derived.
    - [`EntryProbabilities`][metaclip2.curation.sampling.EntryProbabilities] : What ``probabilities.bin`` holds.
    - [`sample_shard`][metaclip2.pipeline.stages.sample.sample_shard] : Stage 3, which reads ``probabilities.bin``.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.curation import EntryCounts
    >>> from metaclip2.pipeline.stages.merge import compute_probabilities
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> counts = EntryCounts.from_arrays({"en": [3, 1, 2], "de": [2, 1]}, {"en": "e" * 64, "de": "d" * 64})
    >>> counts.save(f"{d}/counts.bin")
    >>> info = compute_probabilities(f"{d}/counts.bin", d, t_en=2)
    >>> info["t"], round(info["p"], 4), sorted(info["outputs"])
    ({'de': 1, 'en': 2}, 0.1667, ['counts.bin', 'probabilities.bin'])
    >>> sorted(os.listdir(d))
    ['counts.bin', 'probabilities.bin', 'thresholds.json']
    >>> tmp.cleanup()
    """
    options = ThresholdOptions.of(options, **changes)
    counts = EntryCounts.load(counts_path)
    if not len(counts):
        raise DataError("no alt-text matched any metadata entry: there is nothing to curate (check the metadata and input languages)")
    probs = EntryProbabilities.from_counts(counts, t_en=options.t_en, english=options.english, p=options.p)
    out_dir = Path(out_dir)
    probs.save(out_dir / "probabilities.bin")
    outputs = {Path(counts_path).name: file_digest(counts_path), "probabilities.bin": file_digest(out_dir / "probabilities.bin")}
    info = {**(record or {}), "p": probs.params["p"], "t_en": options.t_en, "english": options.english, "t": probs.t, "outputs": outputs}
    write_json(out_dir / "thresholds.json", seal(info))  # its own digest: an edited copy is noticed
    return info
