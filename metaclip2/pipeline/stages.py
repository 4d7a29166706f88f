"""The curation stages as plain per-shard functions ([Algorithm 1][algorithm-1]).

Each function takes only paths, numbers and strings, writes its outputs atomically and
returns a small JSON-able dict, so any scheduler can run it on one shard: our executors
(:mod:`metaclip2.execution.local`), a Slurm array, a Kubernetes job. Loaded metadata
(matchers) and entry probabilities are cached per process, keyed by path and file stamps, so a
worker process that handles many shards loads them once.

Stage 1 :func:`match_shard`  — read a shard, identify languages, match, count.
Stage 2 :func:`merge_counts`, :func:`compute_probabilities` — sum counts, thresholds, entry
        probabilities.
Stage 3 :func:`sample_shard` — keep decisions for epoch 0 (the same as
        :class:`~metaclip2.curation.sampling.OnlineSampler`'s), write the curated subset.

Output files of a shard named ``S`` (see :func:`shard_names`):

* stage 1: ``S.index.bin`` (:mod:`metaclip2.pipeline.index`: one row per *matched* pair:
  ``n`` image ordinal in the shard, ``id``, ``k`` alt-text index, ``lang`` metadata language,
  ``ids`` matched entry ids, ``text``), ``S.counts.bin`` (sparse :class:`EntryCounts`),
  ``S.stats.json`` (written last);
* stage 3: ``S.jsonl`` or ``S.parquet`` (:data:`~metaclip2.pipeline.writers.CURATED_COLUMNS`),
  ``S.stats.json`` (written last).

Each stats file also records the size and sha256 of the shard's outputs (and of what it was
made from), so that a resumed run verifies them before reuse (:mod:`metaclip2.pipeline.verify`).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

import numpy as np

from metaclip2.curation.counts import EntryCounts, merge_count_files
from metaclip2.pipeline.readers import DEFAULT_MAX_CHARS, Image, ReaderSpec, read_shard
from metaclip2.curation.sampling import UNITS, EntryProbabilities, select_texts
from metaclip2.core.atomic import write_json
from metaclip2.core.fingerprint import file_digest, input_fingerprint, input_stat
from metaclip2.pipeline.stats import MAX_EXAMPLES, Stage1Stats, Stage3Stats
from metaclip2.pipeline.index import INDEX_SUFFIX, IndexBatch, IndexWriter, iter_index
from metaclip2.pipeline.partition import LanguageRuns
from metaclip2.core.atomic import AtomicFile
from metaclip2.pipeline.writers import ExtraTypes, carried_columns, curated_writer
from metaclip2.core.errors import DataError, ParameterError
from metaclip2.execution.progress import report_pairs

__all__ = [
    "shard_names",
    "stage1_paths",
    "stage3_paths",
    "cached_store",
    "cached_probabilities",
    "match_shard",
    "merge_counts",
    "compute_probabilities",
    "sample_shard",
    "MatchTask",
    "SampleTask",
    "shard_warnings",
    "stage1_summary",
]

_CHUNK = 4096  # images per LID batch
_MATCH_BATCH = 8192  # alt-texts per match_many call
_RUN_MEMORY = 64 << 20  # estimated bytes of grouped pairs a worker keeps in memory (each of 2 partitions)


# -- names and paths ---------------------------------------------------------------------------


def _safe(s: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._")
    return s or "shard"


def _strip_ext(name: str) -> str:
    for ext in (".jsonl.gz", ".json.gz", ".ndjson.gz", ".tar.gz", ".jsonl", ".json", ".ndjson", ".parquet", ".pq", ".tar", ".tgz"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def shard_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Stable, unique, filesystem-safe names for input shards.

    A shard is named by its path relative to the inputs' deepest common directory, extension
    dropped, ``/`` written ``__`` (``data/en/part-0.jsonl`` among ``data/*/…`` → ``en__part-0``).
    Names that would collide after sanitising get an 8-hex suffix from the full path.

    See Also
    --------
    - [`stage1_paths`][metaclip2.pipeline.stages.stage1_paths] : The files stage 1 writes for a name.
    - [`stage3_paths`][metaclip2.pipeline.stages.stage3_paths] : The files stage 3 writes for a name.

    Examples
    --------
    >>> from metaclip2.pipeline.stages import shard_names
    >>> shard_names(["data/en/part-0.jsonl", "data/de/part-0.jsonl", "data/de/part-1.parquet"])
    ['en__part-0', 'de__part-0', 'de__part-1']

    The same name twice once extensions are dropped: each gets a suffix from its path.

    >>> shard_names(["data/x.jsonl", "data/x.parquet"])
    ['x-...', 'x-...']
    """
    # URLs (fsspec inputs) are named like paths, by what follows their protocol
    resolved = [Path(p).resolve() if "://" not in str(p) else PurePosixPath("/" + str(p).split("://", 1)[1]) for p in paths]
    if not resolved:
        return []
    common = os.path.commonpath([str(p.parent) for p in resolved])
    raw = [_safe(_strip_ext(os.path.relpath(str(p), common)).replace(os.sep, "__")) for p in resolved]
    seen: dict[str, int] = {}
    for r in raw:
        seen[r] = seen.get(r, 0) + 1
    return [
        r if seen[r] == 1 else f"{r}-{hashlib.sha1(str(p).encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
        for r, p in zip(raw, resolved if all("://" not in str(p) for p in paths) else [os.fspath(p) for p in paths])
    ]


def stage1_paths(out_dir: str | os.PathLike, shard: str) -> dict[str, Path]:
    """``index``, ``counts`` and ``stats`` paths of a shard's stage-1 outputs in `out_dir`.

    See Also
    --------
    - [`match_shard`][metaclip2.pipeline.stages.match_shard] : Stage 1, which writes these files.

    Examples
    --------
    >>> from metaclip2.pipeline.stages import stage1_paths
    >>> {key: path.name for key, path in stage1_paths("run/stage1", "en__part-0").items()}
    {'index': 'en__part-0.index.bin', 'counts': 'en__part-0.counts.bin', 'stats': 'en__part-0.stats.json'}
    """
    d = Path(out_dir)
    return {"index": d / f"{shard}{INDEX_SUFFIX}", "counts": d / f"{shard}.counts.bin", "stats": d / f"{shard}.stats.json"}


def stage3_paths(out_dir: str | os.PathLike, shard: str, output_format: str = "jsonl") -> dict[str, Path]:
    """``output``, ``keys`` (kept image ids, optional) and ``stats`` paths of a shard's stage-3 outputs in `out_dir`.

    See Also
    --------
    - [`sample_shard`][metaclip2.pipeline.stages.sample_shard] : Stage 3, which writes these files.

    Examples
    --------
    >>> from metaclip2.pipeline.stages import stage3_paths
    >>> {key: path.as_posix() for key, path in stage3_paths("run/stage3", "en__part-0", "parquet").items()}
    {'output': 'run/stage3/en__part-0.parquet', 'keys': 'run/stage3/en__part-0.keys.txt', 'stats': 'run/stage3/en__part-0.stats.json'}
    """
    d = Path(out_dir)
    return {"output": d / f"{shard}.{output_format}", "keys": d / f"{shard}.keys.txt", "stats": d / f"{shard}.stats.json"}


# -- per-process caches ------------------------------------------------------------------------

_cache_lock = threading.Lock()
_stores: dict = {}
_probabilities: dict = {}  # key -> (EntryProbabilities, sha256 of the file)


def _stamp(paths: Iterable[Path]) -> tuple:
    out = []
    for p in sorted(paths):
        st = p.stat()
        out.append((p.name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def cached_store(metadata: str | os.PathLike, engine: str = "trie", matcher_memory: int | None = None):
    """The :class:`~metaclip2.matching.store.MetadataStore` of a directory, one per process.

    `engine` is the store's matcher engine (``"trie"`` or ``"aho-corasick"``).

    Reloaded when the directory's ``.tsv``/``.matcher`` files change (size, mtime, inode). An
    fsspec URL is read through a local copy (:func:`~metaclip2.pipeline.remote.local_metadata`).
    `matcher_memory` (bytes of loaded matchers kept) is the store's budget; None: its default.

    See Also
    --------
    - [`MetadataStore`][metaclip2.matching.store.MetadataStore] : What is cached.
    - [`cached_probabilities`][metaclip2.pipeline.stages.cached_probabilities] : The same for stage 2's probabilities.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.core import write_metadata
    >>> from metaclip2.pipeline.stages import cached_store
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> _ = write_metadata(f"{d}/en.tsv", ["dog", "cat", "red"], ["wordnet"] * 3, lang="en")
    >>> store = cached_store(d)
    >>> store.languages, cached_store(d) is store          # the second call is a cache hit
    (['en'], True)
    >>> _ = write_metadata(f"{d}/de.tsv", ["Hund", "Katze"], ["wordnet"] * 2, lang="de")
    >>> cached_store(d).languages                           # the directory changed: reloaded
    ['de', 'en']
    >>> tmp.cleanup()
    """
    from metaclip2.matching.store import MetadataStore
    from metaclip2.pipeline.remote import is_url, local_metadata

    d = local_metadata(os.fspath(metadata)) if is_url(metadata) else Path(metadata).resolve()
    key = (str(d), engine, _stamp(list(d.glob("*.tsv")) + list(d.glob("*.matcher"))), matcher_memory)
    with _cache_lock:
        store = _stores.get(key)
        if store is None:
            _stores.clear()  # one metadata directory at a time per worker
            budget = {} if matcher_memory is None else {"matcher_memory": int(matcher_memory)}
            store = _stores[key] = MetadataStore(d, engine=engine, **budget)
    return store


def cached_probabilities(path: str | os.PathLike) -> EntryProbabilities:
    """:meth:`EntryProbabilities.load` of `path`, one per process (reloaded when the file changes).

    See Also
    --------
    - [`compute_probabilities`][metaclip2.pipeline.stages.compute_probabilities] : Stage 2b, which writes the file.
    - [`EntryProbabilities`][metaclip2.curation.sampling.EntryProbabilities] : What is cached.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.curation import EntryCounts
    >>> from metaclip2.pipeline.stages import cached_probabilities, compute_probabilities
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> EntryCounts.from_arrays({"en": [3, 1, 2]}, {"en": "e" * 64}).save(f"{d}/counts.bin")
    >>> _ = compute_probabilities(f"{d}/counts.bin", d, t_en=2)
    >>> probs = cached_probabilities(f"{d}/probabilities.bin")
    >>> probs.t, probs.q["en"].tolist()
    ({'en': 2}, [0.6666666666666666, 1.0, 1.0])
    >>> cached_probabilities(f"{d}/probabilities.bin") is probs
    True
    >>> tmp.cleanup()
    """
    return _cached_probabilities(path)[0]


def _cached_probabilities(path: str | os.PathLike) -> tuple[EntryProbabilities, str]:
    p = Path(path).resolve()
    key = (str(p), _stamp([p]))
    with _cache_lock:
        hit = _probabilities.get(key)
        if hit is None:
            _probabilities.clear()
            hit = _probabilities[key] = (EntryProbabilities.load(p), file_digest(p)["sha256"])
    return hit


# -- stage 1 -----------------------------------------------------------------------------------


def match_shard(
    input_path: str | os.PathLike,
    metadata: str | os.PathLike,
    out_dir: str | os.PathLike,
    shard: str | None = None,
    *,
    input_format: str | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    strict: bool = False,
    min_confidence: float | None = None,
    lid_model: str | None = None,
    script_check: bool = True,
    spec: ReaderSpec | None = None,
    matcher_engine: str = "trie",
    matcher_memory: int | None = None,
) -> Stage1Stats:
    """Stage 1 on one shard: language per alt-text, matching, per-shard counts.

    The shard is processed in three phases, so that each language's matcher is used in one
    contiguous phase and a worker needs only one matcher at a time: (1) LID over the whole
    shard, pairs grouped by metadata language (:class:`~metaclip2.pipeline.partition.LanguageRuns`,
    spilled to temporary files beyond a fixed memory budget); (2) matching, language by
    language; (3) the matched pairs merged back into input order. The index bytes do not
    depend on the grouping.

    Parameters
    ----------
    input_path : path
        An input shard (see :mod:`metaclip2.pipeline.readers`).
    metadata : path
        Per-LID-language metadata directory (:class:`~metaclip2.matching.store.MetadataStore`).
    out_dir : path
        Where ``<shard>.index.bin``, ``<shard>.counts.bin`` and ``<shard>.stats.json`` go.
    shard : str, optional
        Output name; default: the input's file name without extension.
    input_format : {"jsonl", "parquet", "tar"}, optional
        Default: from the file name.
    max_chars : int
        Longer alt-texts are invalid.
    strict : bool
        Raise :class:`~metaclip2.pipeline.readers.InvalidInputError` at the first bad input.
    min_confidence : float, optional
        LID predictions below this probability are labelled ``other``.
    lid_model : str, optional
        A fastText LID model path; default: the bundled lid.176.ftz. Only loaded if some
        alt-text comes without a language.
    spec : ReaderSpec, optional
        Named keys and carried fields; default: the layout is detected.
    matcher_engine : {"trie", "aho-corasick"}
        The matcher engine (the matches are the same).
    matcher_memory : int, optional
        Bytes of loaded matchers a worker keeps (passed to the metadata store when it takes
        that parameter); default: the store's.

    Returns
    -------
    Stage1Stats
        The shard's accounting (also written, last, to ``<shard>.stats.json``).

    See Also
    --------
    - [`MatchTask`][metaclip2.pipeline.stages.MatchTask] : The same call as a picklable task for executors.
    - [`merge_counts`][metaclip2.pipeline.stages.merge_counts] : Stage 2a: sum the shards' counts.
    - [`count`][metaclip2.pipeline.run.count] : Stage 1 of a whole run directory, shard by shard.

    Examples
    --------
    A shard whose alt-texts come with their languages (so no LID model is loaded):

    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline.stages import match_shard
    >>> stats = match_shard(f"{d}/pool.jsonl", f"{d}/metadata", f"{d}/stage1")
    >>> stats.shard, stats.pairs, stats.matched, stats.by_lang
    ('pool', 6, 6, {'de': {'pairs': 2, 'matched': 2}, 'en': {'pairs': 4, 'matched': 4}})
    >>> sorted(os.listdir(f"{d}/stage1"))
    ['pool.counts.bin', 'pool.index.bin', 'pool.stats.json']
    >>> tmp.cleanup()
    """
    input_path = os.fspath(input_path)
    shard = shard or _safe(_strip_ext(input_path.rstrip("/").rsplit("/", 1)[-1]))
    paths = stage1_paths(out_dir, shard)
    store = cached_store(metadata, matcher_engine, matcher_memory=matcher_memory)
    # One extra read of the input (which also warms the page cache for the reader): what a
    # resumed run compares the file with to notice that it was replaced.
    fingerprint = input_fingerprint(input_path)
    counts = EntryCounts()
    stats = Stage1Stats(input=input_path, shard=shard)
    resolved: dict[str, str | None] = {}
    ordinal = reported = 0
    layout: dict = {}
    with LanguageRuns(out_dir, f"{shard}.lid", _RUN_MEMORY) as pending, LanguageRuns(out_dir, f"{shard}.matched", _RUN_MEMORY) as matched:
        # 1. languages of every pair, pairs grouped by metadata language
        chunk: list[tuple[int, Image]] = []
        for image in read_shard(input_path, input_format=input_format, max_chars=max_chars, strict=strict, spec=spec, report=layout):
            if image.id is not None:
                chunk.append((ordinal, image))
                ordinal += 1
            _count_invalid(image, stats)
            if len(chunk) >= _CHUNK:
                _identify_chunk(chunk, store, stats, pending, resolved, min_confidence, lid_model, script_check)
                chunk = []
                report_pairs(stats.pairs - reported)  # live progress in pairs, within the shard
                reported = stats.pairs
        if chunk:
            _identify_chunk(chunk, store, stats, pending, resolved, min_confidence, lid_model, script_check)
        # 2. one phase per language; the matcher is asked for again in each phase, never kept,
        # so a store with a bounded cache can drop it
        for lang in _phase_order(pending.languages(), store):
            _match_language(lang, pending.rows(lang), store, counts, stats, matched)
            pending.release(lang)
        # 3. input order again
        with IndexWriter(paths["index"]) as index:
            for row in matched.in_order():
                index.write(*row)
    report_pairs(stats.pairs - reported)
    stats.images = ordinal
    stats.layout = layout
    counts.save(paths["counts"])
    st = input_stat(input_path)
    if (st.st_size, st.st_mtime_ns) != (fingerprint["bytes"], fingerprint["mtime_ns"]):
        raise DataError(f"input {input_path} changed while stage 1 read it: run again once it is complete")
    stats.fingerprint = fingerprint
    stats.outputs = {p.name: file_digest(p) for key, p in sorted(paths.items()) if key != "stats"}
    write_json(paths["stats"], stats.to_json())
    return stats


_known_codes: dict = {}


def _count_invalid(image: Image, stats: Stage1Stats) -> None:
    from metaclip2.core.languages import normalize_language_code

    if image.damage is not None:
        stats.damaged.append(dict(image.damage))
    for reason, where, lang in zip(image.invalid, image.where, image.langs):
        stats.pairs += 1
        if reason is not None:
            stats.invalid[reason] = stats.invalid.get(reason, 0) + 1
            if len(stats.invalid_examples) < MAX_EXAMPLES:
                stats.invalid_examples.append({"line": where, "reason": reason})
        elif lang is not None:
            known = _known_codes.get(lang)
            if known is None:
                known = _known_codes[lang] = normalize_language_code(lang) is not None
            if not known:
                stats.unknown_lang_codes[lang] = stats.unknown_lang_codes.get(lang, 0) + 1


def stage1_summary(stats: Stage1Stats) -> str:
    """Where stage 1's pairs went, in one line (for an error that says nothing matched).

    See Also
    --------
    - [`shard_warnings`][metaclip2.pipeline.stages.shard_warnings] : The per-shard warnings that say why.

    Examples
    --------
    >>> from metaclip2.pipeline.stats import Stage1Stats
    >>> from metaclip2.pipeline.stages import stage1_summary
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
    - [`stage1_summary`][metaclip2.pipeline.stages.stage1_summary] : Where all of stage 1's pairs went, in one line.
    - [`ReaderSpec`][metaclip2.pipeline.readers.ReaderSpec] : Naming the keys of another layout.

    Examples
    --------
    A shard whose records name the image ``key`` and the text ``alt``, which no known layout does:

    >>> from metaclip2.pipeline.stats import Stage1Stats
    >>> from metaclip2.pipeline.stages import shard_warnings
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


def _identify_chunk(chunk, store, stats, pending: LanguageRuns, resolved, min_confidence, lid_model, script_check=True) -> None:
    """LID of a chunk's valid alt-texts; each goes to its metadata language's run."""
    from metaclip2.matching.lid import resolve_languages

    slots = [(j, k) for j, (_, image) in enumerate(chunk) for k, r in enumerate(image.invalid) if r is None]
    if not slots:
        return
    texts = [chunk[j][1].texts[k] for j, k in slots]
    given = [chunk[j][1].langs[k] for j, k in slots]
    changes: Counter = Counter()
    labels = resolve_languages(texts, given, min_confidence=min_confidence, lid_model=lid_model,
                               script_check=script_check, changes=changes)  # fmt: skip
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
        else:
            n, image = chunk[j]
            pending.add((n, image.id, k, lang, (), text, image.fields(k) or None))


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


def _match_language(lang: str, rows, store, counts: EntryCounts, stats: Stage1Stats, matched: LanguageRuns) -> None:
    """Match `lang`'s pairs in batches; count them; matched pairs go to `matched`."""
    matcher = store.matcher(lang)
    counts.register(lang, store.digest(lang), len(matcher))
    row_stats = stats.by_lang.setdefault(lang, {"pairs": 0, "matched": 0})
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _MATCH_BATCH:
            _match_batch(lang, batch, matcher, counts, stats, row_stats, matched)
            batch = []
    if batch:
        _match_batch(lang, batch, matcher, counts, stats, row_stats, matched)


def _match_batch(lang, batch, matcher, counts, stats, row_stats, matched) -> None:
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


# -- stage 2 -----------------------------------------------------------------------------------


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
    - [`match_shard`][metaclip2.pipeline.stages.match_shard] : Stage 1, which writes the per-shard counts.
    - [`compute_probabilities`][metaclip2.pipeline.stages.compute_probabilities] : Stage 2b, from the merged counts.
    - [`merge_count_files`][metaclip2.curation.counts.merge_count_files] : The streaming merge used with `out_path`.

    Examples
    --------
    Two shards' counts over the same English entry list (``dog``, ``cat``, ``red``):

    >>> import os, tempfile
    >>> from metaclip2.curation import EntryCounts
    >>> from metaclip2.pipeline.stages import merge_counts
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
    *,
    t_en: float,
    english: str = "keep",
    p: float | None = None,
    record: dict | None = None,
) -> dict:
    """Stage 2b: thresholds and entry probabilities from merged counts.

    Writes ``probabilities.bin`` (:class:`EntryProbabilities`, the file an
    :class:`~metaclip2.curation.sampling.OnlineSampler` loads) and then ``thresholds.json``
    (``{"p", "t_en", "english", "t": {lang: t or null}, "outputs": {file name: {"bytes",
    "sha256"}}}`` for the counts and ``probabilities.bin``, plus `record`'s items) to `out_dir`.

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
    - [`merge_counts`][metaclip2.pipeline.stages.merge_counts] : Stage 2a, which writes the merged counts.
    - [`thresholds`][metaclip2.curation.threshold.thresholds] : How each language's threshold is derived.
    - [`EntryProbabilities`][metaclip2.curation.sampling.EntryProbabilities] : What ``probabilities.bin`` holds.
    - [`sample_shard`][metaclip2.pipeline.stages.sample_shard] : Stage 3, which reads ``probabilities.bin``.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.curation import EntryCounts
    >>> from metaclip2.pipeline.stages import compute_probabilities
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
    counts = EntryCounts.load(counts_path)
    if not len(counts):
        raise DataError("no alt-text matched any metadata entry: there is nothing to curate (check the metadata and input languages)")
    probs = EntryProbabilities.from_counts(counts, t_en=t_en, english=english, p=p)
    out_dir = Path(out_dir)
    probs.save(out_dir / "probabilities.bin")
    outputs = {Path(counts_path).name: file_digest(counts_path), "probabilities.bin": file_digest(out_dir / "probabilities.bin")}
    info = {**(record or {}), "p": probs.params["p"], "t_en": t_en, "english": english, "t": probs.t, "outputs": outputs}
    write_json(out_dir / "thresholds.json", info)
    return info


# -- stage 3 -----------------------------------------------------------------------------------


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
        The subset's rows are :data:`~metaclip2.pipeline.writers.CURATED_COLUMNS` then the
        input's carried fields (:func:`~metaclip2.pipeline.writers.carried_columns`; in
        Parquet typed by :class:`~metaclip2.pipeline.writers.ExtraTypes` over the shard).
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
    - [`SampleTask`][metaclip2.pipeline.stages.SampleTask] : The same call as a picklable task for executors.
    - [`OnlineSampler`][metaclip2.curation.sampling.OnlineSampler] : The same decisions, made per image at training time.
    - [`sample`][metaclip2.pipeline.run.sample] : Stage 3 of a whole run directory, shard by shard.

    Examples
    --------
    Stages 1 and 2 on one shard, then the curated subset:

    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline.stages import compute_probabilities, match_shard, merge_counts, sample_shard
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


# -- typed tasks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchTask:
    """Stage 1 of one shard, as a picklable callable (what executors run).

    The fields are :func:`match_shard`'s arguments; calling the task runs it.

    See Also
    --------
    - [`match_shard`][metaclip2.pipeline.stages.match_shard] : What the task calls.
    - [`SampleTask`][metaclip2.pipeline.stages.SampleTask] : The stage-3 task.
    - [`LocalExecutor`][metaclip2.execution.local.LocalExecutor] : Runs tasks in worker processes.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> import copy
    >>> from metaclip2.pipeline.stages import MatchTask
    >>> task = MatchTask(input_path=f"{d}/pool.jsonl", metadata=f"{d}/metadata", out_dir=f"{d}/stage1",
    ...                  shard="pool", input_format=None, max_chars=4096, strict=False,
    ...                  min_confidence=None, lid_model=None)
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
    input_format: str | None
    max_chars: int
    strict: bool
    min_confidence: float | None
    lid_model: str | None
    spec: ReaderSpec | None = None
    matcher_engine: str = "trie"
    matcher_memory: int | None = None
    script_check: bool = True

    def __call__(self) -> Stage1Stats:
        return match_shard(self.input_path, self.metadata, self.out_dir, self.shard, input_format=self.input_format,
                           max_chars=self.max_chars, strict=self.strict, min_confidence=self.min_confidence,
                           lid_model=self.lid_model, spec=self.spec, matcher_engine=self.matcher_engine,
                           matcher_memory=self.matcher_memory, script_check=self.script_check)  # fmt: skip


@dataclass(frozen=True)
class SampleTask:
    """Stage 3 of one shard, as a picklable callable (what executors run).

    The fields are :func:`sample_shard`'s arguments; calling the task runs it.

    See Also
    --------
    - [`sample_shard`][metaclip2.pipeline.stages.sample_shard] : What the task calls.
    - [`MatchTask`][metaclip2.pipeline.stages.MatchTask] : The stage-1 task.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.execution import LocalExecutor
    >>> from metaclip2.pipeline.stages import MatchTask, SampleTask, compute_probabilities, merge_counts
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
