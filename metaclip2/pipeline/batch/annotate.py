"""Curation over plain columns, for data frameworks (HF ``datasets``, Ray Data, datatrove, WebDataset).

The offline run ([`curate`][metaclip2.pipeline.run.api.curate]) reads shards itself; a framework
user holds the columns already. These functions take columns (lists, numpy arrays, Arrow
arrays, pandas Series) and give the same results as the offline run on the same records:

* [`annotate`][metaclip2.pipeline.batch.annotate.annotate] — validity check (as the readers do), LID, routing to a metadata language
  ([`resolve`][metaclip2.matching.store.MetadataStore.resolve]), matching: ``(langs, offsets, ids)``
  with the matched entry ids in CSR form;
* [`count_matches`][metaclip2.pipeline.batch.annotate.count_matches] — adds a batch's matches into an
  [`EntryCounts`][metaclip2.curation.counts.EntryCounts] (counts of batches add up with ``+``);
* [`keep_mask`][metaclip2.pipeline.batch.annotate.keep_mask] — the keep decision of each row, equal to
  [`OnlineSampler`][metaclip2.curation.sampling.OnlineSampler] and to stage 3 of the offline run (epoch 0).

[`BatchCurator`][metaclip2.pipeline.batch.annotate.BatchCurator] bundles them with column names for ``map``/``filter`` style APIs and
pickles cheaply into worker processes (the metadata is re-opened there, once per process,
through [`MetadataHandle`][metaclip2.pipeline.batch.annotate.MetadataHandle]).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from metaclip2.core.errors import ParameterError
from metaclip2.curation.counts import EntryCounts
from metaclip2.curation.sampling import EntryProbabilities, keep_decisions
from metaclip2.pipeline.io.records import check_lang, check_text
from metaclip2.pipeline.run.config import CurationConfig
from metaclip2.pipeline.stages.options import MatchOptions, SampleOptions

__all__ = ["Annotation", "BatchCurator", "MetadataHandle", "annotate", "count_matches", "keep_mask"]

log = logging.getLogger(__name__)


class MetadataHandle:
    """A picklable reference to a metadata directory; the store opens once per process, on first use.

    Parameters
    ----------
    directory : path
        Per-LID-language metadata directory.

    See Also
    --------
    - [`annotate`][metaclip2.pipeline.batch.annotate.annotate] : Matches of a batch of texts.
    - [`BatchCurator`][metaclip2.pipeline.batch.annotate.BatchCurator] : The same steps for map/filter APIs.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d, _ = write_example_pool(tmp.name)  # metadata: en (dog, cat, red), de (Hund, Katze)
    >>> import copy
    >>> from metaclip2.pipeline import MetadataHandle
    >>> h = MetadataHandle(d)
    >>> h.store.languages
    ['de', 'en']
    >>> str(copy.deepcopy(h).directory) == str(d)  # what travels to workers: the path (the store reopens there)
    True
    >>> tmp.cleanup()
    """

    def __init__(self, directory: str | os.PathLike | "MetadataHandle"):
        self.directory = directory.directory if isinstance(directory, MetadataHandle) else os.fspath(directory)

    @property
    def store(self):
        """The [`MetadataStore`][metaclip2.matching.store.MetadataStore] (cached per process)."""
        from metaclip2.pipeline.stages.cache import cached_store

        return cached_store(self.directory)

    def __reduce__(self):  # only the path travels; the worker opens its own store
        return (MetadataHandle, (self.directory,))

    def __repr__(self) -> str:
        return f"MetadataHandle({self.directory!r})"


def _handle(metadata) -> MetadataHandle:
    return metadata if isinstance(metadata, MetadataHandle) else MetadataHandle(metadata)


def _to_list(column: Any) -> list:
    """A Python list of a column: list, tuple, numpy array, Arrow (Chunked)Array, pandas Series."""
    if column is None:
        return None
    if isinstance(column, list):
        return column
    if hasattr(column, "to_pylist"):
        return column.to_pylist()
    if hasattr(column, "tolist"):
        return column.tolist()
    return list(column)


class Annotation(NamedTuple):
    """Matches of a batch of texts.

    Attributes
    ----------
    langs : list of (str or None)
        Metadata language of each text; None for an invalid text (empty, too long, not a
        string, …) or a language without metadata.
    offsets : ndarray of int64, shape (n + 1,)
    ids : ndarray of int32
        Text ``i`` matched entries ``ids[offsets[i]:offsets[i+1]]`` (sorted, unique) of ``langs[i]``.

    See Also
    --------
    - [`annotate`][metaclip2.pipeline.batch.annotate.annotate] : Matches of a batch of texts.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d, _ = write_example_pool(tmp.name)  # metadata: en (dog, cat, red), de (Hund, Katze)
    >>> from metaclip2.pipeline import annotate
    >>> a = annotate(["a red dog", "Katze", "Fisch"], ["en", "de", "de"], metadata=d)
    >>> a.langs
    ['en', 'de', 'de']
    >>> a.offsets.tolist(), a.ids.tolist()
    ([0, 2, 3, 3], [0, 2, 1])
    >>> a.ids_lists()
    [[0, 2], [1], []]
    >>> tmp.cleanup()
    """

    langs: list
    offsets: np.ndarray
    ids: np.ndarray

    def ids_lists(self) -> list[list[int]]:
        """Matched entry ids per text, as lists (a list column for a data frame)."""
        return [self.ids[a:b].tolist() for a, b in zip(self.offsets[:-1], self.offsets[1:])]


def _text(value: Any) -> Any:
    """A text as the readers see it: bytes are a tar ``.txt`` member (BOM and final newline dropped)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            return data.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            return None
    if isinstance(value, float) and value != value:  # NaN from a data frame
        return None
    return value


def annotate(
    texts: Sequence | Any,
    langs: Sequence | Any | None = None,
    *,
    metadata: str | os.PathLike | MetadataHandle,
    options: MatchOptions | None = None,
    **changes: Any,
) -> Annotation:
    """LID → routing → matching of a batch of texts, as in stage 1 of the offline run.

    Parameters
    ----------
    texts : list, numpy array, Arrow array or pandas Series
        Alt-texts (str; bytes are read as a tar ``.txt`` member; None/NaN are invalid).
    langs : same kinds, optional
        Given language codes (None entries: LID decides). Any code form
        [`normalize_language_code`][metaclip2.core.languages.normalize_language_code] reads.
    metadata : path or MetadataHandle
    options : MatchOptions or CurationConfig, optional
        Stage 1's options, as the offline run uses them (``max_chars``, ``min_confidence``,
        ``lid_model``, ``script_check``, …); default: all defaults.
    **changes
        [`MatchOptions`][metaclip2.pipeline.stages.options.MatchOptions] fields applied over `options`.

    Returns
    -------
    Annotation
        ``(langs, offsets, ids)``.

    See Also
    --------
    - [`Annotation`][metaclip2.pipeline.batch.annotate.Annotation] : What annotate returns.
    - [`count_matches`][metaclip2.pipeline.batch.annotate.count_matches] : Add a batch's matches to the counts.
    - [`keep_mask`][metaclip2.pipeline.batch.annotate.keep_mask] : Keep decisions of a batch.
    - [`BatchCurator`][metaclip2.pipeline.batch.annotate.BatchCurator] : The same steps for map/filter APIs.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d, _ = write_example_pool(tmp.name)  # metadata: en (dog, cat, red), de (Hund, Katze)
    >>> from metaclip2.pipeline import annotate
    >>> a = annotate(["a red dog", "Katze und Hund", "", "a fish"], ["en", "de", "en", "en"], metadata=d)
    >>> a.langs  # the empty text is invalid
    ['en', 'de', None, 'en']
    >>> a.ids_lists()
    [[0, 2], [0, 1], [], []]
    >>> tmp.cleanup()
    """
    options = MatchOptions.of(options, **changes)
    store = _handle(metadata).store
    texts = [_text(t) for t in _to_list(texts)]
    given = _to_list(langs) if langs is not None else [None] * len(texts)
    if len(given) != len(texts):
        raise ParameterError(f"{len(given)} languages given for {len(texts)} texts")
    slots, valid, valid_langs = [], [], []
    for i, (t, g) in enumerate(zip(texts, given)):
        lang, lang_reason = check_lang(g)
        if check_text(t, options.max_chars) is None and lang_reason is None:
            slots.append(i)
            valid.append(t)
            valid_langs.append(lang)
    out_langs: list = [None] * len(texts)
    per_text: list = [None] * len(texts)
    if valid:
        valid = options.prepare_texts(valid)
        labels = options.identify(valid, valid_langs)
        resolved: dict = {}
        by_lang: dict[str, list[int]] = {}
        for s, label in enumerate(labels):
            if label not in resolved:
                resolved[label] = store.resolve(label)
            lang = resolved[label]
            if lang is not None:
                out_langs[slots[s]] = lang
                by_lang.setdefault(lang, []).append(s)
        for lang in sorted(by_lang):
            members = by_lang[lang]
            offsets, ids = store.matcher(lang).match_many([valid[s] for s in members])
            for j, s in enumerate(members):
                per_text[slots[s]] = ids[offsets[j] : offsets[j + 1]]
    lengths = np.fromiter((0 if a is None else len(a) for a in per_text), dtype=np.int64, count=len(texts))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    parts = [np.asarray(a, dtype=np.int32) for a in per_text if a is not None and len(a)]
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    return Annotation(out_langs, offsets, ids)


def _csr(ids: Any, offsets: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, ids)`` of a CSR pair or of a per-row list column (lists, Arrow ListArray)."""
    if offsets is not None:
        return np.asarray(offsets, dtype=np.int64), np.asarray(ids, dtype=np.int32)
    if hasattr(ids, "combine_chunks"):  # Arrow ChunkedArray
        ids = ids.combine_chunks()
    if hasattr(ids, "offsets") and hasattr(ids, "flatten"):  # Arrow ListArray: no Python lists made
        off = np.asarray(ids.offsets, dtype=np.int64)
        values = np.asarray(ids.values, dtype=np.int32)
        return off - off[0], values[off[0] : off[-1]]
    rows = _to_list(ids)
    lengths = np.fromiter((len(r) if r is not None else 0 for r in rows), dtype=np.int64, count=len(rows))
    off = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=off[1:])
    flat = [int(i) for r in rows if r is not None for i in r]
    return off, np.asarray(flat, dtype=np.int32)


def _by_lang(langs: list) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = {}
    for r, lang in enumerate(langs):
        if isinstance(lang, str):  # None (or NaN after a data frame round trip): no metadata
            groups.setdefault(lang, []).append(r)
    return {lang: np.asarray(groups[lang], dtype=np.int64) for lang in sorted(groups)}


def count_matches(
    langs: Sequence | Any,
    ids: Any,
    *,
    metadata: str | os.PathLike | MetadataHandle,
    offsets: Any = None,
    counts: EntryCounts | None = None,
) -> EntryCounts:
    """Add a batch's matches into `counts` (a new [`EntryCounts`][metaclip2.curation.counts.EntryCounts] by default) and return it.

    Parameters
    ----------
    langs : column of (str or None)
        Metadata language per text ([`Annotation.langs`][metaclip2.pipeline.batch.annotate.Annotation.langs]).
    ids : CSR ids with `offsets`, or a per-row list column (lists, Arrow ListArray)
    metadata : path or MetadataHandle
        Gives each language's entry count and digest.
    offsets : array, optional
        With CSR `ids`.
    counts : EntryCounts, optional
        Added to in place.

    Returns
    -------
    EntryCounts
        Counts of several batches (or workers) add up: ``sum(parts, EntryCounts())`` or ``a + b``.

    See Also
    --------
    - [`annotate`][metaclip2.pipeline.batch.annotate.annotate] : Matches of a batch of texts.
    - [`keep_mask`][metaclip2.pipeline.batch.annotate.keep_mask] : Keep decisions of a batch.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d, _ = write_example_pool(tmp.name)  # metadata: en (dog, cat, red), de (Hund, Katze)
    >>> from metaclip2.pipeline import annotate, count_matches
    >>> a = annotate(["a red dog", "a dog", "ein Hund"], ["en", "en", "de"], metadata=d)
    >>> counts = count_matches(a.langs, a.ids, offsets=a.offsets, metadata=d)
    >>> counts
    EntryCounts(de: 1 matches, en: 3 matches)
    >>> counts["en"].tolist()  # dog, cat, red
    [2, 0, 1]

    A per-row list column works too, and adds to the counts of earlier batches:

    >>> counts = count_matches(["de"], [[1]], metadata=d, counts=counts)
    >>> counts["de"].tolist()
    [1, 1]
    >>> tmp.cleanup()
    """
    from metaclip2.pipeline.stages.sample import take_rows

    store = _handle(metadata).store
    counts = EntryCounts() if counts is None else counts
    langs = _to_list(langs)
    off, flat = _csr(ids, offsets)
    for lang, rows in _by_lang(langs).items():
        counts.register(lang, store.digest(lang), len(store.matcher(lang)))  # a mapped matcher knows its size without decoding entries
        sub_off, sub_ids = take_rows(off, flat, rows)
        counts.add_matches(lang, sub_off, sub_ids)
    return counts


def keep_mask(
    probabilities: EntryProbabilities | str | os.PathLike,
    image_ids: Sequence | Any,
    langs: Sequence | Any,
    ids: Any,
    *,
    offsets: Any = None,
    text_indices: Sequence | Any | None = None,
    epoch: int = 0,
    options: SampleOptions | None = None,
    **changes: Any,
) -> np.ndarray:
    """Keep decision of every row of a batch: the offline run's (epoch 0) and [`OnlineSampler`][metaclip2.curation.sampling.OnlineSampler]'s.

    The rows of an image are all rows with its id ([`keep_decisions`][metaclip2.curation.sampling.keep_decisions]):
    give every row of the images you decide in one call (with ``unit="image"``); a batch that
    holds part of an image decides it differently. [`BatchCurator.decide`][metaclip2.pipeline.batch.annotate.BatchCurator.decide] decides a whole
    annotated table at once.

    Parameters
    ----------
    probabilities : EntryProbabilities or path
        ``probabilities.bin`` of a run, or [`EntryProbabilities.from_counts`][metaclip2.curation.sampling.EntryProbabilities.from_counts] of the counts.
    image_ids : column of str
    langs : column of (str or None)
    ids : CSR ids with `offsets`, or a per-row list column
    text_indices : column of int, optional
        Alt-text index of each row within its image; default: an image's rows are numbered 0,
        1, … in the order they stand (as the readers number a flat pool's records).
    epoch : int
    options : SampleOptions or CurationConfig, optional
        Stage 3's options (``seed``, ``unit``); ``**changes`` applies fields over them.

    Returns
    -------
    ndarray of bool

    See Also
    --------
    - [`annotate`][metaclip2.pipeline.batch.annotate.annotate] : Matches of a batch of texts.
    - [`count_matches`][metaclip2.pipeline.batch.annotate.count_matches] : Add a batch's matches to the counts.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d, _ = write_example_pool(tmp.name)  # metadata: en (dog, cat, red), de (Hund, Katze)
    >>> from metaclip2.curation import EntryProbabilities
    >>> from metaclip2.pipeline import annotate, count_matches, keep_mask
    >>> texts = ["a red dog", "a dog", "a black dog", "a cat"]
    >>> a = annotate(texts, ["en"] * 4, metadata=d)
    >>> counts = count_matches(a.langs, a.ids, offsets=a.offsets, metadata=d)
    >>> probabilities = EntryProbabilities.from_counts(counts, t_en=1)
    >>> keep_mask(probabilities, ["i1", "i2", "i3", "i4"], a.langs, a.ids, offsets=a.offsets)
    array([ True, False, False,  True])
    >>> tmp.cleanup()
    """
    options = SampleOptions.of(options, **changes)
    if not isinstance(probabilities, EntryProbabilities):
        probabilities = EntryProbabilities.load(probabilities)
    image_ids = _to_list(image_ids)
    langs = [x if isinstance(x, str) else None for x in _to_list(langs)]  # NaN from a data frame: no language
    off, flat = _csr(ids, offsets)
    if len(langs) != len(image_ids) or len(off) != len(image_ids) + 1:
        raise ParameterError(f"{len(image_ids)} image ids, {len(langs)} languages and {len(off) - 1} id lists: one each per row")
    p = probabilities.row_probabilities(langs, off, flat, strict=False)
    ks = None if text_indices is None else _to_list(text_indices)
    return keep_decisions(image_ids, p, ks, seed=options.seed, epoch=epoch, unit=options.unit)


def _column(batch: Any, key: str) -> Any:
    try:
        return batch[key]
    except (KeyError, IndexError):
        raise ParameterError(f"the batch has no column {key!r}") from None


class BatchCurator:
    """Curation for ``map``/``filter`` style APIs: column names, metadata and settings in one picklable object.

    An image is all rows with one id ([`keep_decisions`][metaclip2.curation.sampling.keep_decisions]).
    [`keep_batch`][metaclip2.pipeline.batch.annotate.BatchCurator.keep_batch] decides the images of one batch; the images
    [`count`][metaclip2.pipeline.batch.annotate.BatchCurator.count] saw with several matched
    alt-texts it decides whole, wherever their rows fall; [`decide`][metaclip2.pipeline.batch.annotate.BatchCurator.decide] decides a whole annotated
    table at once, whatever batches annotated it; [`filter_stream`][metaclip2.pipeline.batch.annotate.BatchCurator.filter_stream] never splits the
    consecutive rows of an image.

    Parameters
    ----------
    metadata : path or MetadataHandle
    probabilities : EntryProbabilities or path, optional
        Needed for keep decisions; or call [`fit`][metaclip2.pipeline.batch.annotate.BatchCurator.fit] with counts.
    config : CurationConfig, MatchOptions, SampleOptions or ThresholdOptions, optional
        The run's options, taken as they are (e.g. the ``CurationConfig`` of a ``curate`` run):
        LID and matching from its stage-1 fields, [`fit`][metaclip2.pipeline.batch.annotate.BatchCurator.fit] from its stage-2 fields, the
        decisions from ``seed`` and ``unit``; the column names from ``id_key``, ``text_keys``,
        ``lang_key`` and ``text_index_key`` (defaults ``"id"``, ``"text"``, none, none).
    text_key : str, optional
        The alt-text column (the same as ``text_keys=(text_key,)``).
    **options
        [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig] fields applied over `config`
        (``seed=``, ``unit=``, ``script_check=``, ``id_key=``, …), checked as a run checks them.

    See Also
    --------
    - [`annotate`][metaclip2.pipeline.batch.annotate.annotate] : Matches of a batch of texts.
    - [`count_matches`][metaclip2.pipeline.batch.annotate.count_matches] : Add a batch's matches to the counts.
    - [`keep_mask`][metaclip2.pipeline.batch.annotate.keep_mask] : Keep decisions of a batch.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d, _ = write_example_pool(tmp.name)  # metadata: en (dog, cat, red), de (Hund, Katze)
    >>> from metaclip2.pipeline import BatchCurator
    >>> cur = BatchCurator(d, text_key="caption", id_key="key", lang_key="lang", seed=0)
    >>> batch = {"key": ["i1", "i2", "i3", "i4"], "caption": ["a red dog", "a dog", "a black dog", "a cat"],
    ...          "lang": ["en"] * 4}
    >>> batch = cur.annotate_batch(batch)
    >>> batch["metaclip2_ids"]
    [[0, 2], [0], [0], [1]]
    >>> cur.fit(cur.count(batch), t_en=1).keep_batch(batch)
    [True, False, False, True]

    Rows of one image split across batches are decided whole by [`decide`][metaclip2.pipeline.batch.annotate.BatchCurator.decide]:

    >>> rows = {"key": ["i1", "i1", "i2"], "caption": ["a red dog", "a cat", "a dog"], "lang": ["en"] * 3}
    >>> parts = [cur.annotate_batch({k: v[:2] for k, v in rows.items()}), cur.annotate_batch({k: v[2:] for k, v in rows.items()})]
    >>> table = {k: parts[0][k] + parts[1][k] for k in parts[0]}
    >>> cur.decide(table).tolist()
    [False, True, False]

    With Hugging Face ``datasets``, annotate with ``map`` (any batches, any processes), then
    decide over the whole dataset:

    >>> ds = ds.map(cur.annotate_batch, batched=True, num_proc=4)                   # doctest: +SKIP
    >>> cur.fit(cur.count(ds))                                                       # doctest: +SKIP
    >>> kept = ds.select(np.flatnonzero(cur.decide(ds)))                             # doctest: +SKIP
    >>> tmp.cleanup()
    """

    LANG, IDS = "metaclip2_lang", "metaclip2_ids"  # columns added by annotate_batch

    def __init__(
        self,
        metadata: str | os.PathLike | MetadataHandle,
        probabilities: EntryProbabilities | str | os.PathLike | None = None,
        config: Any = None,
        *,
        text_key: str | None = None,
        **options: Any,
    ):
        if text_key is not None:
            options["text_keys"] = (text_key,)
        self.config = _as_config(config, options)
        if self.config.text_keys is not None and len(self.config.text_keys) != 1:
            raise ParameterError(f"a batch has one alt-text column; text_keys names {len(self.config.text_keys)}")
        self.metadata = _handle(metadata)
        # a path travels to workers as a path and is loaded once per process there
        self._probabilities_path = None if probabilities is None or isinstance(probabilities, EntryProbabilities) else os.fspath(probabilities)
        self._probabilities = probabilities if isinstance(probabilities, EntryProbabilities) else None
        if self._probabilities_path is not None:
            self.probabilities  # noqa: B018 - fail now on a bad file, not in a worker

    @property
    def text_key(self) -> str:
        """The alt-text column."""
        return self.config.text_keys[0] if self.config.text_keys else "text"

    @property
    def id_key(self) -> str:
        """The image-id column."""
        return self.config.id_key or "id"

    @property
    def lang_key(self) -> str | None:
        """The column of a given language, if any."""
        return self.config.lang_key

    @property
    def text_index_key(self) -> str | None:
        """The column of the alt-text index within its image, if any."""
        return self.config.text_index_key

    @property
    def probabilities(self) -> EntryProbabilities | None:
        """The entry probabilities (from ``probabilities=`` or [`fit`][metaclip2.pipeline.batch.annotate.BatchCurator.fit]), or None."""
        if self._probabilities is None and self._probabilities_path is not None:
            from metaclip2.pipeline.stages.cache import cached_probabilities

            return cached_probabilities(self._probabilities_path)
        return self._probabilities

    def annotate(self, texts: Any, langs: Any = None) -> Annotation:
        """[`annotate`][metaclip2.pipeline.batch.annotate.BatchCurator.annotate] with this curator's metadata and settings."""
        return annotate(texts, langs, metadata=self.metadata, options=self.config)

    def annotate_batch(self, batch: Any) -> Any:
        """`batch` (a dict of columns or a pandas DataFrame) with columns `LANG` and `IDS` added."""
        a = self.annotate(_column(batch, self.text_key), _column(batch, self.lang_key) if self.lang_key else None)
        if hasattr(batch, "assign"):  # pandas
            return batch.assign(**{self.LANG: a.langs, self.IDS: a.ids_lists()})
        out = dict(batch)
        out[self.LANG], out[self.IDS] = a.langs, a.ids_lists()
        return out

    def count(self, batches: Any, counts: EntryCounts | None = None) -> EntryCounts:
        """Counts of annotated rows: one batch (dict of columns / DataFrame / HF Dataset) or an iterable of them.

        This pass sees every row, so it also remembers the rows of the images that have more than
        one matched alt-text: after [`fit`][metaclip2.pipeline.batch.annotate.BatchCurator.fit], [`keep_batch`][metaclip2.pipeline.batch.annotate.BatchCurator.keep_batch] decides those images whole even
        when a later ``filter`` cuts their rows into different batches or processes. Give the
        whole pool to one ``count`` call (or several calls over disjoint rows, in pool order).
        """
        counts = EntryCounts() if counts is None else counts
        if hasattr(batches, "keys") or hasattr(batches, "column_names") or hasattr(batches, "assign"):
            batches = [batches]
        for b in batches:
            langs, lists = _column(b, self.LANG), _column(b, self.IDS)
            count_matches(langs, lists, metadata=self.metadata, counts=counts)
            self._remember(b, langs, lists)
        self._whole = {}
        return counts

    def _remember(self, batch: Any, langs: Any, lists: Any) -> None:
        """Note each matched row (id, alt-text index or text, language, ids) for `_whole_decisions`."""
        try:
            ids = [str(x) for x in _to_list(_column(batch, self.id_key))]
            keys = _to_list(_column(batch, self.text_index_key if self.text_index_key else self.text_key))
        except ParameterError:  # counts of bare annotations (no id column): nothing to remember
            return
        seen = self.__dict__.setdefault("_seen", {})  # id -> rows seen (alt-text numbering without an index column)
        rows = self.__dict__.setdefault("_rows", {})  # id -> {key: (k, lang, ids)}
        for i, key, lang, row_ids in zip(ids, keys, _to_list(langs), _to_list(lists)):
            k = int(key) if self.text_index_key else seen.get(i, 0)
            if not self.text_index_key:
                seen[i] = k + 1
            if isinstance(lang, str) and row_ids is not None and len(row_ids):
                rows.setdefault(i, {})[key] = (k, lang, [int(x) for x in row_ids])

    def _indices(self, ids: list, texts: Any) -> list[int] | None:
        """Alt-text indices of a batch's rows without an index column: as [`count`][metaclip2.pipeline.batch.annotate.BatchCurator.count] numbered
        them over the whole pool where it saw the row, else in the order they stand in the batch."""
        rows = getattr(self, "_rows", None)
        if not rows:
            return None
        local: dict = {}
        out = []
        for i, text in zip(ids, _to_list(texts)):
            k = local.get(i, 0)
            local[i] = k + 1
            known = rows.get(str(i), {}).get(text)
            out.append(known[0] if known is not None else k)
        return out

    def _whole_decisions(self, epoch: int) -> dict:
        """``{(id, key): kept}`` for the rows of images with several matched alt-texts that [`count`][metaclip2.pipeline.batch.annotate.BatchCurator.count] saw."""
        whole = self.__dict__.setdefault("_whole", {})
        if epoch not in whole:
            multi = [(i, key, row) for i, keys in getattr(self, "_rows", {}).items() if len(keys) > 1 for key, row in keys.items()]
            if not multi or self.probabilities is None:
                return {}
            lengths = np.fromiter((len(r[2]) for _, _, r in multi), dtype=np.int64, count=len(multi))
            offsets = np.zeros(len(multi) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            flat = np.fromiter((x for _, _, r in multi for x in r[2]), dtype=np.int64, count=int(offsets[-1]))
            p = self.probabilities.row_probabilities([r[1] for _, _, r in multi], offsets, flat, strict=False)
            kept = keep_decisions([i for i, _, _ in multi], p, [r[0] for _, _, r in multi],
                                  seed=self.config.seed, epoch=epoch, unit=self.config.unit)  # fmt: skip
            whole[epoch] = {(i, key): bool(x) for (i, key, _), x in zip(multi, kept)}
        return whole[epoch]

    def fit(self, counts: EntryCounts, **changes: Any) -> "BatchCurator":
        """Set the entry probabilities from the pool's counts (stage 2) with the config's
        ``t_en``, ``english`` and ``p`` (or `changes` to them); returns self.

        They travel with the curator to worker processes; for large metadata save them
        (``cur.probabilities.save(path)``) and give ``probabilities=path`` instead, which
        each process loads once.
        """
        if changes:
            self.config = self.config.replace(**changes)
        o = self.config
        self._probabilities = EntryProbabilities.from_counts(counts, t_en=o.t_en, english=o.english, p=o.p)
        self._probabilities_path = None
        self._whole = {}
        return self

    def keep(self, image_ids: Any, langs: Any, ids: Any, text_indices: Any = None, epoch: int = 0) -> np.ndarray:
        """[`keep_mask`][metaclip2.pipeline.batch.annotate.keep_mask] with this curator's probabilities, seed and unit."""
        if self.probabilities is None:
            raise ParameterError("no entry probabilities: give probabilities= or call fit(counts) first")
        return keep_mask(self.probabilities, image_ids, langs, ids, text_indices=text_indices, epoch=epoch, options=self.config)

    def keep_batch(self, batch: Any, epoch: int = 0) -> list[bool]:
        """Keep decision per row of an annotated batch whose images are whole (for ``filter(..., batched=True)``).

        Images with several matched alt-texts that [`count`][metaclip2.pipeline.batch.annotate.BatchCurator.count] saw are decided whole, whatever
        batch or process their rows fall in (their rows are found by the alt-text index column, or
        else by id and text). Otherwise a batch that begins with the image the previous batch of
        this process ended with has cut that image in two, and each part is decided alone: that
        is logged as a warning (once), naming [`decide`][metaclip2.pipeline.batch.annotate.BatchCurator.decide].
        """
        ids = _to_list(_column(batch, self.id_key))
        covered = len(getattr(self, "_rows", {}).get(str(ids[0]) if ids else None, ())) > 1 and self._whole_decisions(epoch)
        if ids and getattr(self, "_last_id", None) is not None and ids[0] == self._last_id and not covered and not getattr(self, "_warned", False):
            self._warned = True
            log.warning("BatchCurator.keep_batch: image %r continues from the previous batch, so its parts are decided apart; "
                        "decide whole images with BatchCurator.decide(table), or group the rows by image first", ids[0])  # fmt: skip
        self._last_id = ids[-1] if ids else None
        ks = _column(batch, self.text_index_key) if self.text_index_key else self._indices(ids, _column(batch, self.text_key))
        keep = self.keep(ids, _column(batch, self.LANG), _column(batch, self.IDS), ks, epoch)
        whole = self._whole_decisions(epoch)
        if whole:  # images with several matched alt-texts, decided whole when count() saw them
            keys = _to_list(ks) if self.text_index_key else _to_list(_column(batch, self.text_key))
            for r, (i, key) in enumerate(zip(ids, keys)):
                kept = whole.get((str(i), key))
                if kept is not None:
                    keep[r] = kept
        return keep.tolist()

    def decide(self, table: Any, epoch: int = 0) -> np.ndarray:
        """Keep decision of every row of a whole annotated table, however it was batched.

        Parameters
        ----------
        table : HF Dataset, pandas DataFrame, pyarrow Table or dict of columns
            With the id column, `LANG` and `IDS` (from [`annotate_batch`][metaclip2.pipeline.batch.annotate.BatchCurator.annotate_batch]) and
            the text-index column if the config names one.
        epoch : int

        Returns
        -------
        ndarray of bool
            One per row, in the table's order: ``ds.select(np.flatnonzero(mask))``.
        """
        cols = [self.id_key, self.LANG, self.IDS] + ([self.text_index_key] if self.text_index_key else [])
        if hasattr(table, "with_format") and hasattr(table, "column_names"):  # HF Dataset: Arrow columns, indices applied
            table = table.with_format("arrow")[:] if len(table) else {c: [] for c in cols}
        ks = _column(table, self.text_index_key) if self.text_index_key else None
        return self.keep(_column(table, self.id_key), _column(table, self.LANG), _column(table, self.IDS), ks, epoch)

    def filter_stream(self, samples: Iterable[Mapping], epoch: int = 0, batch_size: int = 256) -> Iterator[Mapping]:
        """The kept samples of a stream of dicts (e.g. WebDataset samples), annotated and decided in batches.

        A batch never ends inside a run of consecutive samples with the same id, so an image
        whose rows follow each other is decided whole (one sample = one image is the usual case).
        """
        if self.probabilities is None:
            raise ParameterError("no entry probabilities: give probabilities= or call fit(counts) first")
        buf: list = []

        def flush(rows: list) -> list:
            cols = {k: [s.get(k) for s in rows] for k in {self.text_key, self.id_key, self.lang_key, self.text_index_key} - {None}}
            a = self.annotate(cols[self.text_key], cols.get(self.lang_key))
            keep = keep_mask(self.probabilities, cols[self.id_key], a.langs, a.ids, offsets=a.offsets,
                             text_indices=cols.get(self.text_index_key), epoch=epoch, options=self.config)  # fmt: skip
            return [s for s, k in zip(rows, keep) if k]

        for s in samples:
            if len(buf) >= batch_size and s.get(self.id_key) != buf[-1].get(self.id_key):
                yield from flush(buf)
                buf = []
            buf.append(s)
        if buf:
            yield from flush(buf)


def _as_config(config: Any, options: dict) -> CurationConfig:
    """A [`CurationConfig`][metaclip2.pipeline.run.config.CurationConfig] from a config, any stage's options object, or none, with `options` applied."""
    if config is None or isinstance(config, CurationConfig):
        return CurationConfig.from_options(config, **options)
    fields = {f: getattr(config, f) for f in getattr(config, "__dataclass_fields__", {})}
    if not fields:
        raise ParameterError(f"config must be a CurationConfig or a stage's options, got {type(config).__name__}")
    return CurationConfig(**{**fields, **options})
