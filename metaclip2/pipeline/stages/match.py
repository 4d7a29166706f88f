"""Stage 1 of the curation ([Algorithm 1][algorithm-1]) as a plain per-shard function.

[`match_shard`][metaclip2.pipeline.stages.match.match_shard] reads a shard, identifies languages, matches and counts; it takes only
paths, numbers and strings, writes its outputs atomically and returns a small JSON-able
result, so any scheduler can run it on one shard: our executors
([`metaclip2.execution.local`][metaclip2.execution.local]), a Slurm array, a Kubernetes job.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from metaclip2.core.atomic import write_json
from metaclip2.core.errors import DataError
from metaclip2.core.fingerprint import file_digest, input_fingerprint, input_stat
from metaclip2.curation.counts import EntryCounts
from metaclip2.execution.progress import report_pairs
from metaclip2.pipeline.io.index import IndexWriter
from metaclip2.pipeline.io.partition import LanguageRuns
from metaclip2.pipeline.io.readers import read_shard
from metaclip2.pipeline.io.records import Image, Numbering
from metaclip2.pipeline.stages.budget import WorkerBudget
from metaclip2.pipeline.stages.cache import cached_store, known_language_code
from metaclip2.pipeline.stages.examples import Stage1Examples
from metaclip2.pipeline.stages.options import MatchOptions
from metaclip2.pipeline.stages.files import _safe, _strip_ext, stage1_paths
from metaclip2.pipeline.stages.split import MATCHED, NUMBERED, write_images
from metaclip2.pipeline.stages.stats import MAX_EXAMPLES, Stage1Stats

__all__ = ["match_shard", "MatchTask", "shard_warnings", "stage1_summary"]

_CHUNK = 4096  # images per LID batch
_MATCH_BATCH = 8192  # alt-texts per match_many call


def match_shard(
    input_path: str | os.PathLike,
    metadata: str | os.PathLike,
    out_dir: str | os.PathLike,
    shard: str | None = None,
    options: MatchOptions | None = None,
    **changes: Any,
) -> Stage1Stats:
    """Stage 1 on one shard: language per alt-text, matching, per-shard counts.

    The shard is processed in three phases, so that each language's matcher is used in one
    contiguous phase and a worker needs only one matcher at a time: (1) LID over the whole
    shard, pairs grouped by metadata language ([`LanguageRuns`][metaclip2.pipeline.io.partition.LanguageRuns],
    spilled to temporary files beyond their share of ``memory_per_worker``:
    [`WorkerBudget`][metaclip2.pipeline.stages.budget.WorkerBudget]); (2) matching, language by
    language; (3) the matched pairs merged back into input order. The index bytes do not
    depend on the grouping.

    Parameters
    ----------
    input_path : path
        An input shard (see [`metaclip2.pipeline.io.readers`][metaclip2.pipeline.io.readers]).
    metadata : path
        Per-LID-language metadata directory ([`MetadataStore`][metaclip2.matching.store.MetadataStore]).
    out_dir : path
        Where ``<shard>.index.bin``, ``<shard>.counts.bin``, ``<shard>.images.bin`` and
        ``<shard>.stats.json`` go.
    shard : str, optional
        Output name; default: the input's file name without extension.
    options : MatchOptions or CurationConfig, optional
        Stage 1's options ([`MatchOptions`][metaclip2.pipeline.stages.options.MatchOptions]: reading,
        language identification, matching); default: all defaults.
    **changes
        [`MatchOptions`][metaclip2.pipeline.stages.options.MatchOptions] fields applied over `options`
        (``lid_model=``, ``script_check=``, ``text_keys=``, …).

    Returns
    -------
    Stage1Stats
        The shard's accounting (also written, last, to ``<shard>.stats.json``).

    See Also
    --------
    - [`MatchTask`][metaclip2.pipeline.stages.match.MatchTask] : The same call as a picklable task for executors.
    - [`merge_counts`][metaclip2.pipeline.stages.merge.merge_counts] : Stage 2a: sum the shards' counts.
    - [`count`][metaclip2.pipeline.run.api.count] : Stage 1 of a whole run directory, shard by shard.

    Examples
    --------
    A shard whose alt-texts come with their languages (so no LID model is loaded):

    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline.stages.match import match_shard
    >>> stats = match_shard(f"{d}/pool.jsonl", f"{d}/metadata", f"{d}/stage1")
    >>> stats.shard, stats.pairs, stats.matched, stats.by_lang
    ('pool', 6, 6, {'de': {'pairs': 2, 'matched': 2}, 'en': {'pairs': 4, 'matched': 4}})
    >>> sorted(os.listdir(f"{d}/stage1"))
    ['pool.counts.bin', 'pool.examples.json', 'pool.images.bin', 'pool.index.bin', 'pool.stats.json']
    >>> tmp.cleanup()
    """
    input_path = os.fspath(input_path)
    shard = shard or _safe(_strip_ext(input_path.rstrip("/").rsplit("/", 1)[-1]))
    options = MatchOptions.of(options, **changes)
    return _match(input_path, metadata, out_dir, shard, shard, options)


def _match(input_path: str, metadata, out_dir, shard: str, name: str, options: MatchOptions,
           piece: tuple[int, int] | None = None) -> Stage1Stats:  # fmt: skip
    """[`match_shard`][metaclip2.pipeline.stages.match.match_shard]'s work; its files are named `name` in `out_dir`.

    With `piece` (see [`read_shard`][metaclip2.pipeline.io.readers.read_shard]) only that part of the
    input is read, and its fingerprint is its size and time only (the merge of the pieces hashes
    the whole file: [`metaclip2.pipeline.stages.pieces`][metaclip2.pipeline.stages.pieces]).
    """
    paths = stage1_paths(out_dir, name)
    # the worker's memory budget: buffered rows (each of the 2 groupings), matcher cache, LID model
    budget = WorkerBudget.of(options)
    store = cached_store(metadata, options.matcher_engine, matcher_memory=budget.matchers, strict=options.strict)
    # One extra read of the input (which also warms the page cache for the reader): what a
    # resumed run compares the file with to notice that it was replaced.
    if piece is None:
        fingerprint = input_fingerprint(input_path)
    else:
        st = input_stat(input_path)
        fingerprint = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    counts = EntryCounts()
    stats = Stage1Stats(input=input_path, shard=shard)
    examples = Stage1Examples()  # a bounded sample of alt-texts for the report
    resolved: dict[str, str | None] = {}
    ordinal = reported = 0
    layout: dict = {}
    numbering = Numbering()
    with LanguageRuns(out_dir, f"{name}.lid", budget.rows) as pending, LanguageRuns(out_dir, f"{name}.matched", budget.rows) as matched:
        # 1. languages of every pair, pairs grouped by metadata language
        chunk: list[tuple[int, Image]] = []
        for image in read_shard(input_path, input_format=options.input_format, max_chars=options.max_chars, strict=options.strict,
                                spec=options.reader_spec(), report=layout, numbering=numbering, piece=piece):  # fmt: skip
            if image.id is not None:
                chunk.append((ordinal, image))
                ordinal += 1
            _count_invalid(image, stats)
            if len(chunk) >= _CHUNK:
                _identify_chunk(chunk, store, stats, pending, resolved, options, examples)
                chunk = []
                report_pairs(stats.pairs - reported)  # live progress in pairs, within the shard
                reported = stats.pairs
        if chunk:
            _identify_chunk(chunk, store, stats, pending, resolved, options, examples)
        # 2. one phase per language; the matcher is asked for again in each phase, never kept,
        # so a store with a bounded cache can drop it
        for lang in _phase_order(pending.languages(), store):
            _match_language(lang, pending.rows(lang), store, counts, stats, matched, examples)
            pending.release(lang)
        # 3. input order again
        matched_ids: set = set()
        with IndexWriter(paths["index"]) as index:
            for row in matched.in_order():
                index.write(*row)
                matched_ids.add(row[1])
    # every id of the shard, hashed: what finds the images split across shards at stage 2
    write_images(paths["images"], ((i, slots, (MATCHED if i in matched_ids else 0) | (NUMBERED if numbered else 0))
                                   for i, slots, numbered in numbering.ids()))  # fmt: skip
    report_pairs(stats.pairs - reported)
    stats.images = ordinal
    stats.layout = layout
    counts.save(paths["counts"])
    examples.write(paths["examples"])
    st = input_stat(input_path)
    if (st.st_size, st.st_mtime_ns) != (fingerprint["bytes"], fingerprint["mtime_ns"]):
        raise DataError(f"input {input_path} changed while stage 1 read it: run again once it is complete")
    stats.fingerprint = fingerprint
    stats.outputs = {p.name: file_digest(p) for key, p in sorted(paths.items()) if key != "stats"}
    write_json(paths["stats"], stats.to_json())
    return stats


def _count_invalid(image: Image, stats: Stage1Stats) -> None:
    if image.damage is not None:
        stats.damaged.append(dict(image.damage))
    for reason, where, lang in zip(image.invalid, image.where, image.langs):
        stats.pairs += 1
        if reason is not None:
            stats.invalid[reason] = stats.invalid.get(reason, 0) + 1
            if len(stats.invalid_examples) < MAX_EXAMPLES:
                stats.invalid_examples.append({"line": where, "reason": reason})
        elif lang is not None:
            if not known_language_code(lang):
                stats.unknown_lang_codes[lang] = stats.unknown_lang_codes.get(lang, 0) + 1


def stage1_summary(stats: Stage1Stats) -> str:
    """Where stage 1's pairs went, in one line (for an error that says nothing matched).

    See Also
    --------
    - [`shard_warnings`][metaclip2.pipeline.stages.match.shard_warnings] : The per-shard warnings that say why.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.stats import Stage1Stats
    >>> from metaclip2.pipeline.stages.match import stage1_summary
    >>> stats = Stage1Stats(input="pool.jsonl", shard="pool", pairs=3, invalid={"missing_id": 2}, unmatched=1)
    >>> stage1_summary(stats)
    'stage 1 read 3 pairs: 2 invalid (mostly missing_id: 2), 0 without metadata, 1 unmatched (the stage-1 warnings ...)'
    """
    parts = [f"stage 1 read {stats.pairs} pairs: {stats.n_invalid} invalid"]
    if stats.invalid:
        reason, n = max(stats.invalid.items(), key=lambda kv: kv[1])
        parts[0] += f" (mostly {reason}: {n})"
    parts.append(f"{stats.no_metadata} without metadata")
    parts.append(f"{stats.unmatched} unmatched")
    return ", ".join(parts) + " (the stage-1 warnings and stats files name the fields found per shard)"


def shard_warnings(stats: Stage1Stats) -> list[str]:
    """One-line warnings about a shard's stage 1: damage, and most of its pairs invalid.

    The second names the main reason and the fields found against the keys expected, so that
    a wrong layout or key is seen before "nothing matched".

    See Also
    --------
    - [`stage1_summary`][metaclip2.pipeline.stages.match.stage1_summary] : Where all of stage 1's pairs went, in one line.
    - [`ReaderSpec`][metaclip2.pipeline.io.records.ReaderSpec] : Naming the keys of another layout.

    Examples
    --------
    A shard whose records name the image ``key`` and the text ``alt``, which no known layout does:

    >>> from metaclip2.pipeline.stages.stats import Stage1Stats
    >>> from metaclip2.pipeline.stages.match import shard_warnings
    >>> stats = Stage1Stats(input="pool.jsonl", shard="pool", pairs=3, invalid={"missing_id": 2}, unmatched=1,
    ...                     layout={"fields": ["alt", "key"], "expected": "metaclip2: id + texts; datacomp: uid + text"})
    >>> for line in shard_warnings(stats):
    ...     print(line)
    pool.jsonl: 2 of 3 pairs invalid, mostly missing_id (2); read with no known layout
    (expected metaclip2: id + texts; datacomp: uid + text); fields found: alt, key. Name the keys
    with --id-key/--text-key if they differ
    >>> shard_warnings(Stage1Stats(input="ok.jsonl", shard="ok", pairs=3, matched=3))
    []
    """
    out = []
    name = stats.input or stats.shard
    for d in stats.damaged[:3]:
        lost = "unknown" if d.get("lost") is None else d["lost"]
        out.append(f"{name}: damaged at {d['where']}: {d['error']} (records lost: {lost})")
    if len(stats.damaged) > 3:
        out.append(f"{name}: {len(stats.damaged) - 3} more damaged stretches (see its stats and the datacard)")
    if stats.pairs and stats.n_invalid * 2 > stats.pairs:
        reason, n = max(stats.invalid.items(), key=lambda kv: kv[1])
        lay = stats.layout or {}
        found = ", ".join(lay.get("fields") or []) or "none"
        if lay.get("layout"):
            used = f"layout {lay['layout']} (id {lay.get('id_key')}, text {'/'.join(lay.get('text_keys') or [])})"
        else:
            used = f"no known layout (expected {lay.get('expected')})"
        out.append(f"{name}: {stats.n_invalid} of {stats.pairs} pairs invalid, mostly {reason} ({n}); "
                   f"read with {used}; fields found: {found}. Name the keys with --id-key/--text-key if they differ")  # fmt: skip
    return out


def _identify_chunk(chunk, store, stats, pending: LanguageRuns, resolved, options: MatchOptions, examples=None) -> None:
    """LID of a chunk's valid alt-texts; each goes to its metadata language's run."""
    slots = [(j, k) for j, (_, image) in enumerate(chunk) for k, r in enumerate(image.invalid) if r is None]
    if not slots:
        return
    texts = options.prepare_texts([chunk[j][1].texts[k] for j, k in slots])
    given = [chunk[j][1].langs[k] for j, k in slots]
    changes: Counter = Counter()
    labels = options.identify(texts, given, changes=changes)
    for (old, new), n in changes.items():
        key = f"{old}->{new}"
        stats.lid_changes[key] = stats.lid_changes.get(key, 0) + n
    for (j, k), text, label in zip(slots, texts, labels):
        if label not in resolved:
            resolved[label] = store.resolve(label)
        lang = resolved[label]
        if lang is None:
            stats.no_metadata += 1
            stats.no_metadata_labels[label] = stats.no_metadata_labels.get(label, 0) + 1
            if examples is not None:
                examples.no_metadata(label, chunk[j][1].id, chunk[j][1].indices[k], text)
        else:
            n, image = chunk[j]
            pending.add((n, image.id, image.indices[k], lang, (), text, image.fields(k) or None))


def _phase_order(langs: list[str], store) -> list[str]:
    """Languages whose matchers the store holds first (least recently used first), then the rest.

    A bounded LRU cache that cannot hold every language would otherwise miss on every
    language of every shard (a cyclic scan); this way it keeps what it holds. Outputs do not
    depend on the order.
    """
    info = getattr(store, "cache_info", None)
    if info is None:
        return langs
    wanted = set(langs)
    hot = [lang for lang in info() if lang in wanted]
    held = set(hot)
    return hot + [lang for lang in langs if lang not in held]


def _match_language(lang: str, rows, store, counts: EntryCounts, stats: Stage1Stats, matched: LanguageRuns, examples=None) -> None:
    """Match `lang`'s pairs in batches; count them; matched pairs go to `matched`."""
    matcher = store.matcher(lang)
    counts.register(lang, store.digest(lang), len(matcher))
    row_stats = stats.by_lang.setdefault(lang, {"pairs": 0, "matched": 0})
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _MATCH_BATCH:
            _match_batch(lang, batch, matcher, counts, stats, row_stats, matched, examples)
            batch = []
    if batch:
        _match_batch(lang, batch, matcher, counts, stats, row_stats, matched, examples)


def _match_batch(lang, batch, matcher, counts, stats, row_stats, matched, examples) -> None:
    offsets, ids = matcher.match_many([row[5] for row in batch])
    counts.add_matches(lang, offsets, ids)
    n_matched = int(np.count_nonzero(np.diff(offsets)))
    row_stats["pairs"] += len(batch)
    row_stats["matched"] += n_matched
    stats.matched += n_matched
    stats.unmatched += len(batch) - n_matched
    o = offsets.tolist()
    for i, (n, id_, k, _, _, text, extra) in enumerate(batch):
        if o[i + 1] > o[i]:
            matched.add((n, id_, k, lang, ids[o[i] : o[i + 1]], text, extra))
            if examples is not None:
                examples.matched(lang, id_, k, text, ids[o[i] : o[i + 1]])
        elif examples is not None:
            examples.unmatched(lang, id_, k, text)


@dataclass(frozen=True)
class MatchTask:
    """Stage 1 of one shard, as a picklable callable (what executors run).

    The fields are [`match_shard`][metaclip2.pipeline.stages.match.match_shard]'s arguments; calling the task runs it.

    See Also
    --------
    - [`match_shard`][metaclip2.pipeline.stages.match.match_shard] : What the task calls.
    - [`SampleTask`][metaclip2.pipeline.stages.sample.SampleTask] : The stage-3 task.
    - [`LocalExecutor`][metaclip2.execution.local.LocalExecutor] : Runs tasks in worker processes.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> import copy
    >>> from metaclip2.pipeline.stages.match import MatchTask
    >>> from metaclip2.pipeline.stages.options import MatchOptions
    >>> task = MatchTask(input_path=f"{d}/pool.jsonl", metadata=f"{d}/metadata", out_dir=f"{d}/stage1",
    ...                  shard="pool", options=MatchOptions(max_chars=4096))
    >>> copy.deepcopy(task) == task     # plain fields: what travels to a worker
    True
    >>> stats = task()
    >>> stats.shard, stats.matched
    ('pool', 6)
    >>> tmp.cleanup()
    """

    input_path: str
    metadata: str
    out_dir: str
    shard: str
    options: MatchOptions = MatchOptions()

    def __call__(self) -> Stage1Stats:
        return match_shard(self.input_path, self.metadata, self.out_dir, self.shard, self.options)
