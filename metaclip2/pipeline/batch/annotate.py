"""Curation over plain columns, for data frameworks (HF ``datasets``, Ray Data, datatrove, WebDataset).

The offline run (:func:`~metaclip2.pipeline.run.api.curate`) reads shards itself; a framework
user holds the columns already. These functions take columns (lists, numpy arrays, Arrow
arrays, pandas Series) and give the same results as the offline run on the same records:

* :func:`annotate` — validity check (as the readers do), LID, routing to a metadata language
  (:meth:`~metaclip2.matching.store.MetadataStore.resolve`), matching: ``(langs, offsets, ids)``
  with the matched entry ids in CSR form;
* :func:`count_matches` — adds a batch's matches into an
  :class:`~metaclip2.curation.counts.EntryCounts` (counts of batches add up with ``+``);
* :func:`keep_mask` — the keep decision of each row, equal to
  :class:`~metaclip2.curation.sampling.OnlineSampler` and to stage 3 of the offline run (epoch 0).

:class:`BatchCurator` bundles them with column names for ``map``/``filter`` style APIs and
pickles cheaply into worker processes (the metadata is re-opened there, once per process,
through :class:`MetadataHandle`).
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from metaclip2.core.errors import ParameterError
from metaclip2.curation.counts import EntryCounts
from metaclip2.curation.sampling import UNITS, EntryProbabilities, keep_probabilities, select_texts, uniform
from metaclip2.curation.threshold import DEFAULT_T_EN
from metaclip2.pipeline.io.records import DEFAULT_MAX_CHARS, check_lang, check_text

__all__ = ["Annotation", "BatchCurator", "MetadataHandle", "annotate", "count_matches", "keep_mask"]


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
        """The :class:`~metaclip2.matching.store.MetadataStore` (cached per process)."""
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
    max_chars: int = DEFAULT_MAX_CHARS,
    min_confidence: float | None = None,
    lid_model: str | None = None,
) -> Annotation:
    """LID → routing → matching of a batch of texts, as in stage 1 of the offline run.

    Parameters
    ----------
    texts : list, numpy array, Arrow array or pandas Series
        Alt-texts (str; bytes are read as a tar ``.txt`` member; None/NaN are invalid).
    langs : same kinds, optional
        Given language codes (None entries: LID decides). Any code form
        :func:`~metaclip2.core.languages.normalize_language_code` reads.
    metadata : path or MetadataHandle
    max_chars : int
        Longer texts are invalid (as in the readers).
    min_confidence, lid_model
        As in :class:`~metaclip2.pipeline.run.config.CurationConfig`.

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
    from metaclip2.matching.lid import resolve_languages

    store = _handle(metadata).store
    texts = [_text(t) for t in _to_list(texts)]
    given = _to_list(langs) if langs is not None else [None] * len(texts)
    if len(given) != len(texts):
        raise ParameterError(f"{len(given)} languages given for {len(texts)} texts")
    slots, valid, valid_langs = [], [], []
    for i, (t, g) in enumerate(zip(texts, given)):
        lang, lang_reason = check_lang(g)
        if check_text(t, max_chars) is None and lang_reason is None:
            slots.append(i)
            valid.append(t)
            valid_langs.append(lang)
    out_langs: list = [None] * len(texts)
    per_text: list = [None] * len(texts)
    if valid:
        labels = resolve_languages(valid, valid_langs, min_confidence=min_confidence, lid_model=lid_model)
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
    """Add a batch's matches into `counts` (a new :class:`EntryCounts` by default) and return it.

    Parameters
    ----------
    langs : column of (str or None)
        Metadata language per text (:attr:`Annotation.langs`).
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
        counts.register(lang, store.digest(lang), len(store.entries(lang)))
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
    seed: int = 0,
    epoch: int = 0,
    unit: str = "image",
) -> np.ndarray:
    """Keep decision of every row of a batch: the offline run's (epoch 0) and :class:`OnlineSampler`'s.

    Parameters
    ----------
    probabilities : EntryProbabilities or path
        ``probabilities.bin`` of a run, or :meth:`EntryProbabilities.from_counts` of the counts.
    image_ids : column of str
    langs : column of (str or None)
    ids : CSR ids with `offsets`, or a per-row list column
    text_indices : column of int, optional
        Alt-text index of each row within its image (default 0: one text per image).
    seed, epoch : int
    unit : {"image", "pair"}
        With ``"image"``, all rows of an image must be in the same batch, and rows with the
        same image id are taken as one image (ids must be unique across images, as the
        offline run's decisions assume too).

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
    if unit not in UNITS:
        raise ParameterError(f"unit must be one of {UNITS}, got {unit!r}")
    if not isinstance(probabilities, EntryProbabilities):
        probabilities = EntryProbabilities.load(probabilities)
    from metaclip2.pipeline.stages.sample import take_rows

    image_ids = [str(i) for i in _to_list(image_ids)]
    langs = _to_list(langs)
    n = len(image_ids)
    ks = [0] * n if text_indices is None else [int(k) for k in _to_list(text_indices)]
    off, flat = _csr(ids, offsets)
    p = np.zeros(n, dtype=np.float64)
    for lang, rows in _by_lang(langs).items():
        q = probabilities.q.get(lang)
        if q is not None:
            sub_off, sub_ids = take_rows(off, flat, rows)
            p[rows] = keep_probabilities(q, sub_off, sub_ids)
    keep = np.zeros(n, dtype=bool)
    if unit == "pair":
        for r in np.flatnonzero(p > 0):
            keep[r] = uniform(seed, image_ids[r], ks[r], epoch) < p[r]
        return keep
    images: dict[str, list[int]] = {}
    for r in np.flatnonzero(p > 0):
        images.setdefault(image_ids[r], []).append(int(r))
    for image_id, rows in images.items():
        per_text = [0.0] * (max(ks[r] for r in rows) + 1)
        for r in rows:
            per_text[ks[r]] = float(p[r])
        kept = set(select_texts(image_id, per_text, seed, epoch, "image"))
        for r in rows:
            keep[r] = ks[r] in kept
    return keep


def _column(batch: Any, key: str) -> Any:
    try:
        return batch[key]
    except (KeyError, IndexError):
        raise ParameterError(f"the batch has no column {key!r}") from None


class BatchCurator:
    """Curation for ``map``/``filter`` style APIs: column names, metadata and settings in one picklable object.

    Parameters
    ----------
    metadata : path or MetadataHandle
    probabilities : EntryProbabilities or path, optional
        Needed for keep decisions; or call :meth:`fit` with counts.
    text_key, id_key : str
        Columns of the alt-text and the image id (``"text"``, ``"id"``).
    lang_key, text_index_key : str, optional
        Columns of a given language and of the alt-text index within the image.
    seed, unit, max_chars, min_confidence, lid_model
        As in :class:`~metaclip2.pipeline.run.config.CurationConfig`.

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
    >>> cur = BatchCurator(d, text_key="caption", id_key="key", lang_key="lang")
    >>> batch = {"key": ["i1", "i2", "i3", "i4"], "caption": ["a red dog", "a dog", "a black dog", "a cat"],
    ...          "lang": ["en"] * 4}
    >>> batch = cur.annotate_batch(batch)
    >>> batch["metaclip2_ids"]
    [[0, 2], [0], [0], [1]]
    >>> cur.fit(cur.count(batch), t_en=1).keep_batch(batch)
    [True, False, False, True]

    With Hugging Face ``datasets`` the same methods go to ``map`` and ``filter``:

    >>> ds = ds.map(cur.annotate_batch, batched=True, num_proc=4)                   # doctest: +SKIP
    >>> cur.fit(cur.count(ds))                                                       # doctest: +SKIP
    >>> kept = ds.filter(cur.keep_batch, batched=True, num_proc=4)                  # doctest: +SKIP
    >>> tmp.cleanup()
    """

    LANG, IDS = "metaclip2_lang", "metaclip2_ids"  # columns added by annotate_batch

    def __init__(
        self,
        metadata: str | os.PathLike | MetadataHandle,
        probabilities: EntryProbabilities | str | os.PathLike | None = None,
        *,
        text_key: str = "text",
        id_key: str = "id",
        lang_key: str | None = None,
        text_index_key: str | None = None,
        seed: int = 0,
        unit: str = "image",
        max_chars: int = DEFAULT_MAX_CHARS,
        min_confidence: float | None = None,
        lid_model: str | None = None,
    ):
        if unit not in UNITS:
            raise ParameterError(f"unit must be one of {UNITS}, got {unit!r}")
        self.metadata = _handle(metadata)
        # a path travels to workers as a path and is loaded once per process there
        self._probabilities_path = None if probabilities is None or isinstance(probabilities, EntryProbabilities) else os.fspath(probabilities)
        self._probabilities = probabilities if isinstance(probabilities, EntryProbabilities) else None
        if self._probabilities_path is not None:
            self.probabilities  # noqa: B018 - fail now on a bad file, not in a worker
        self.text_key, self.id_key, self.lang_key, self.text_index_key = text_key, id_key, lang_key, text_index_key
        self.seed, self.unit, self.max_chars = int(seed), unit, int(max_chars)
        self.min_confidence, self.lid_model = min_confidence, lid_model

    @property
    def probabilities(self) -> EntryProbabilities | None:
        """The entry probabilities (from ``probabilities=`` or :meth:`fit`), or None."""
        if self._probabilities is None and self._probabilities_path is not None:
            from metaclip2.pipeline.stages.cache import cached_probabilities

            return cached_probabilities(self._probabilities_path)
        return self._probabilities

    def annotate(self, texts: Any, langs: Any = None) -> Annotation:
        """:func:`annotate` with this curator's metadata and settings."""
        return annotate(texts, langs, metadata=self.metadata, max_chars=self.max_chars,
                        min_confidence=self.min_confidence, lid_model=self.lid_model)  # fmt: skip

    def annotate_batch(self, batch: Any) -> Any:
        """`batch` (a dict of columns or a pandas DataFrame) with columns :attr:`LANG` and :attr:`IDS` added."""
        a = self.annotate(_column(batch, self.text_key), _column(batch, self.lang_key) if self.lang_key else None)
        if hasattr(batch, "assign"):  # pandas
            return batch.assign(**{self.LANG: a.langs, self.IDS: a.ids_lists()})
        out = dict(batch)
        out[self.LANG], out[self.IDS] = a.langs, a.ids_lists()
        return out

    def count(self, batches: Any, counts: EntryCounts | None = None) -> EntryCounts:
        """Counts of annotated rows: one batch (dict of columns / DataFrame / HF Dataset) or an iterable of them."""
        counts = EntryCounts() if counts is None else counts
        if hasattr(batches, "keys") or hasattr(batches, "column_names") or hasattr(batches, "assign"):
            batches = [batches]
        for b in batches:
            count_matches(_column(b, self.LANG), _column(b, self.IDS), metadata=self.metadata, counts=counts)
        return counts

    def fit(self, counts: EntryCounts, *, t_en: float = DEFAULT_T_EN, english: str = "keep", p: float | None = None) -> "BatchCurator":
        """Set the entry probabilities from the pool's counts (stage 2); returns self.

        They travel with the curator to worker processes; for large metadata save them
        (``cur.probabilities.save(path)``) and give ``probabilities=path`` instead, which
        each process loads once.
        """
        self._probabilities = EntryProbabilities.from_counts(counts, t_en=t_en, english=english, p=p)
        self._probabilities_path = None
        return self

    def keep(self, image_ids: Any, langs: Any, ids: Any, text_indices: Any = None, epoch: int = 0) -> np.ndarray:
        """:func:`keep_mask` with this curator's probabilities, seed and unit."""
        if self.probabilities is None:
            raise ParameterError("no entry probabilities: give probabilities= or call fit(counts) first")
        return keep_mask(self.probabilities, image_ids, langs, ids, text_indices=text_indices,
                         seed=self.seed, epoch=epoch, unit=self.unit)  # fmt: skip

    def keep_batch(self, batch: Any, epoch: int = 0) -> list[bool]:
        """Keep decision per row of an annotated batch (for ``filter(..., batched=True)``)."""
        ks = _column(batch, self.text_index_key) if self.text_index_key else None
        return self.keep(_column(batch, self.id_key), _column(batch, self.LANG), _column(batch, self.IDS), ks, epoch).tolist()

    def filter_stream(self, samples: Iterable[Mapping], epoch: int = 0, batch_size: int = 256) -> Iterator[Mapping]:
        """The kept samples of a stream of dicts (e.g. WebDataset samples), annotated and decided in batches.

        With ``unit="image"`` an image's rows must be in the same batch (one sample = one image).
        """
        buf: list = []

        def flush():
            cols = {k: [s.get(k) for s in buf] for k in {self.text_key, self.id_key, self.lang_key, self.text_index_key} - {None}}
            a = self.annotate(cols[self.text_key], cols.get(self.lang_key))
            if self.probabilities is None:
                raise ParameterError("no entry probabilities: give probabilities= or call fit(counts) first")
            keep = keep_mask(self.probabilities, cols[self.id_key], a.langs, a.ids, offsets=a.offsets,
                             text_indices=cols.get(self.text_index_key), seed=self.seed, epoch=epoch, unit=self.unit)  # fmt: skip
            return [s for s, k in zip(buf, keep) if k]

        for s in samples:
            buf.append(s)
            if len(buf) >= batch_size:
                yield from flush()
                buf = []
        if buf:
            yield from flush()
