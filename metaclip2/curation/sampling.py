"""Balanced sampling (Algorithm 1, stage 3), offline or online.

Every random decision is a pure function of ``(seed, image id, alt-text index,
epoch)``: a keyed BLAKE2b hash turned into a uniform number in [0, 1). There is
no RNG stream, so a shard can be decided anywhere, in any order, by any number
of workers, and a data loader can redraw the decision each epoch.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterable, Mapping, Sequence

import numpy as np

from metaclip2.core.arrayfile import load_arrays, save_arrays
from metaclip2.curation.counts import EntryCounts
from metaclip2.curation.threshold import DEFAULT_T_EN, ENGLISH, SortedCounts, entry_probabilities, thresholds
from metaclip2.core.errors import DataError, MatcherMismatchError, ParameterError

__all__ = [
    "UNITS",
    "uniform",
    "keep_probability",
    "keep_probabilities",
    "select_texts",
    "keep_decisions",
    "EntryProbabilities",
    "OnlineSampler",
]

#: ``"image"``: one matched alt-text per image, picked uniformly, then kept with its
#: pair probability (the release; default). ``"pair"``: every pair decided on its own (the paper).
UNITS = ("image", "pair")

_FORMAT = "metaclip2-probabilities/1"
_SCALE = 2.0**-53


def uniform(seed: int, image_id: str, text_index: int, epoch: int = 0, purpose: str = "keep") -> float:
    """Uniform number in [0, 1) determined by its arguments alone.

    Parameters
    ----------
    seed : int
    image_id : str
        The image's id (any string).
    text_index : int
        Index of the alt-text among the image's alt-texts (-1 for image-level draws).
    epoch : int
    purpose : str
        Separates independent draws on the same key (``"keep"``, ``"pick"``).

    See Also
    --------
    - [`select_texts`][metaclip2.curation.sampling.select_texts] : Draws these numbers to keep alt-texts.

    Examples
    --------
    The same key always gives the same number, on any machine and worker:

    >>> from metaclip2.curation.sampling import uniform
    >>> uniform(0, "img-1", 0)
    0.16712123486840202
    >>> uniform(0, "img-1", 0) == uniform(0, "img-1", 0)
    True
    >>> uniform(0, "img-1", 0, epoch=1)
    0.05227550418777316
    """
    key = f"{purpose}|{int(seed)}|{int(epoch)}|{int(text_index)}|{image_id}".encode("utf-8", "surrogatepass")
    h = hashlib.blake2b(key, digest_size=8).digest()
    return (int.from_bytes(h, "little") >> 11) * _SCALE


def keep_probability(q: np.ndarray, ids: Iterable[int]) -> float:
    """Probability of keeping a pair that matched `ids`: ``1 - prod(1 - q[i])``.

    Accumulated as ``p += q[i] * (1 - p)`` over the ids in ascending order, in
    float64: equal to the product form, but exact for a single entry (``p ==
    q[i]``) and never below the largest ``q[i]`` by rounding.
    [`keep_probabilities`][metaclip2.curation.sampling.keep_probabilities] performs the same operations and gives the same
    bits. 0 for no ids.

    See Also
    --------
    - [`keep_probabilities`][metaclip2.curation.sampling.keep_probabilities] : The same over a batch of texts.
    - [`entry_probabilities`][metaclip2.curation.threshold.entry_probabilities] : The per-entry probabilities `q`.

    Examples
    --------
    >>> import numpy as np
    >>> from metaclip2.curation.sampling import keep_probability
    >>> q = np.array([0.2, 0.5, 1.0])
    >>> keep_probability(q, [0])
    0.2
    >>> keep_probability(q, [0, 1])  # 1 - 0.8 * 0.5
    0.6
    >>> keep_probability(q, [])
    0.0
    """
    ids = sorted(set(int(i) for i in ids))
    if ids and (ids[0] < 0 or ids[-1] >= len(q)):
        raise ParameterError(
            f"entry id {ids[-1] if ids[-1] >= len(q) else ids[0]} is outside this language's {len(q)} entries: "
            "the ids come from another metadata list than the probabilities"
        )
    return float(keep_probabilities(q, np.array([0, len(ids)]), np.array(ids, dtype=np.int64))[0])


def keep_probabilities(q: np.ndarray, offsets: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """[`keep_probability`][metaclip2.curation.sampling.keep_probability] of every text of a CSR batch (ids sorted and unique within each text).

    Parameters
    ----------
    q : ndarray of float64, shape (n_entries,)
    offsets : ndarray of int, shape (n + 1,)
    ids : ndarray of int, shape (offsets[-1],)

    Returns
    -------
    ndarray of float64, shape (n,)

    See Also
    --------
    - [`keep_probability`][metaclip2.curation.sampling.keep_probability] : One text.

    Examples
    --------
    Three texts: the first matched entry 0, the second entries 0 and 1, the third nothing:

    >>> import numpy as np
    >>> from metaclip2.curation.sampling import keep_probabilities
    >>> q = np.array([0.2, 0.5, 1.0])
    >>> keep_probabilities(q, offsets=np.array([0, 1, 3, 3]), ids=np.array([0, 0, 1]))
    array([0.2, 0.6, 0. ])
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    if len(offsets) < 2 or offsets[-1] == 0:
        return np.zeros(max(len(offsets) - 1, 0), dtype=np.float64)
    return _accumulate(np.asarray(q, dtype=np.float64)[np.asarray(ids, dtype=np.int64)], offsets)


def _accumulate(qi: np.ndarray, offsets: np.ndarray, plan: list | None = None) -> np.ndarray:
    """``p += q * (1 - p)`` over each row's entry probabilities `qi` (CSR by `offsets`), in order.

    The keep-probability kernel: every door (stage 3, the batch API, the online sampler, the
    sweep) ends here, so a pair gets the same bits through each. `plan` is
    `_accumulation_plan` of `offsets`, for a caller that runs the kernel many times.
    """
    n = len(offsets) - 1
    plan = plan if plan is not None else _accumulation_plan(offsets)
    if plan and len(plan[0][0]) == n:  # every row has an id: after the first, p is 0 + q * 1, q itself
        p = qi[plan[0][1]].astype(np.float64)
        p += 0.0  # as 0 + q: a -0.0 becomes 0.0, every other value stays the same bits
        plan = plan[1:]
    else:
        p = np.zeros(n, dtype=np.float64)
    # the j-th id of every row at once
    for rows, at in plan:
        p[rows] += qi[at] * (1.0 - p[rows])
    return p


def _accumulation_plan(offsets: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per position j: the rows with more than j ids, and where their j-th id is."""
    lengths = np.diff(offsets)
    plan = []
    for j in range(int(lengths.max()) if len(lengths) else 0):
        rows = np.flatnonzero(lengths > j)
        plan.append((rows, offsets[rows] + j))
    return plan


def select_texts(
    image_id: str,
    probabilities: Sequence[float],
    seed: int = 0,
    epoch: int = 0,
    unit: str = "image",
) -> list[int]:
    """Indices of an image's alt-texts that are kept.

    Parameters
    ----------
    image_id : str
    probabilities : sequence of float
        Keep-probability of each alt-text (0 for one that matched nothing or
        has no metadata), indexed by alt-text index.
    seed, epoch : int
    unit : {"image", "pair"}
        See [`UNITS`][metaclip2.curation.sampling.UNITS].

    Returns
    -------
    list of int
        Kept alt-text indices, ascending; at most one with ``unit="image"``.

    See Also
    --------
    - [`uniform`][metaclip2.curation.sampling.uniform] : The draws behind the decision.
    - [`OnlineSampler`][metaclip2.curation.sampling.OnlineSampler] : The same decision from matched entry ids.

    Examples
    --------
    An image with three alt-texts; the third matched nothing:

    >>> from metaclip2.curation.sampling import select_texts
    >>> select_texts("img-1", [0.2, 1.0, 0.0])
    [0]
    >>> select_texts("img-1", [0.2, 1.0, 0.5], unit="pair")
    [0, 1, 2]
    >>> select_texts("img-1", [0.0, 0.0])
    []
    """
    _check_unit(unit)
    candidates = [(k, p) for k, p in enumerate(probabilities) if p > 0]
    return _choose(image_id, [k for k, _ in candidates], [p for _, p in candidates], seed, epoch, unit)


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise ParameterError(f"unit must be one of {UNITS}, got {unit!r}")


def _choose(image_id: str, ks: Sequence[int], ps: Sequence[float], seed: int, epoch: int, unit: str) -> list[int]:
    """Kept alt-text indices of one image from its candidates (`ks` ascending, each `ps` > 0).

    The per-image rule of Algorithm 1's sampling, written once: ``"pair"`` keeps each candidate
    with its probability; ``"image"`` picks one candidate uniformly, then keeps it with its own.
    """
    if unit == "pair":
        return [k for k, p in zip(ks, ps) if uniform(seed, image_id, k, epoch) < p]
    if not ks:
        return []
    j = 0 if len(ks) == 1 else int(uniform(seed, image_id, -1, epoch, "pick") * len(ks))
    return [ks[j]] if uniform(seed, image_id, ks[j], epoch) < ps[j] else []


def keep_decisions(
    image_ids: Sequence,
    probabilities: Sequence[float] | np.ndarray,
    text_indices: Sequence[int] | np.ndarray | None = None,
    seed: int = 0,
    epoch: int = 0,
    unit: str = "image",
) -> np.ndarray:
    """Keep decision of every row of a table of alt-texts, images grouped by id.

    What an image is, for every door: all rows with one image id, wherever they stand; an
    alt-text is named by its index within the image. The decisions therefore depend on
    ``(seed, image id, alt-text index, probabilities)`` only, never on row order or on how
    the rows were cut into shards, batches or processes — provided each call sees every row
    of the images it decides (with ``unit="pair"`` any subset of rows may be decided alone).

    Parameters
    ----------
    image_ids : sequence of str
        Image id of each row (other values are turned into ``str``).
    probabilities : sequence of float
        Keep probability of each row ([`EntryProbabilities.row_probabilities`][metaclip2.curation.sampling.EntryProbabilities.row_probabilities]); rows at 0
        (matched nothing, no metadata) are never kept and are no candidates.
    text_indices : sequence of int, optional
        Alt-text index of each row within its image. Default: the rows of an image are
        numbered 0, 1, … in the order they stand here.
    seed, epoch : int
    unit : {"image", "pair"}

    Returns
    -------
    ndarray of bool

    Raises
    ------
    DataError
        Two candidate rows of one image carry the same alt-text index.

    See Also
    --------
    - [`select_texts`][metaclip2.curation.sampling.select_texts] : The same rule for one image.

    Examples
    --------
    Rows of two images, interleaved; the decisions are those of each image alone:

    >>> from metaclip2.curation.sampling import keep_decisions, select_texts
    >>> keep_decisions(["a", "b", "a"], [0.2, 1.0, 1.0], text_indices=[0, 0, 1]).tolist()
    [False, True, True]
    >>> select_texts("a", [0.2, 1.0])
    [1]
    >>> keep_decisions(["a", "a", "b"], [0.2, 1.0, 1.0], text_indices=[0, 1, 0]).tolist()  # order does not matter
    [False, True, True]
    """
    _check_unit(unit)
    p = np.asarray(probabilities, dtype=np.float64)
    ids = [x if isinstance(x, str) else str(x) for x in image_ids]
    if len(ids) != len(p):
        raise ParameterError(f"{len(ids)} image ids for {len(p)} probabilities")
    if text_indices is None:
        seen: dict[str, int] = {}
        ks = []
        for x in ids:
            ks.append(seen.get(x, 0))
            seen[x] = ks[-1] + 1
    else:
        ks = [int(k) for k in text_indices]
        if len(ks) != len(p):
            raise ParameterError(f"{len(ks)} alt-text indices for {len(p)} rows")
    keep = np.zeros(len(p), dtype=bool)
    images: dict[str, list[int]] = {}
    for r in np.flatnonzero(p > 0).tolist():
        images.setdefault(ids[r], []).append(r)
    pl = p.tolist()
    for image_id, rows in images.items():
        if len(rows) > 1:
            rows.sort(key=ks.__getitem__)
            for a, b in zip(rows, rows[1:]):
                if ks[a] == ks[b]:
                    raise DataError(f"image {image_id!r} has two alt-texts with index {ks[a]}: alt-text indices must be unique within an image")
        kept = _choose(image_id, [ks[r] for r in rows], [pl[r] for r in rows], seed, epoch, unit)
        if kept:
            chosen = set(kept)
            for r in rows:
                if ks[r] in chosen:
                    keep[r] = True
    return keep


class EntryProbabilities:
    """Per-language entry probabilities ``q = t / max(c, t)`` with their thresholds.

    Attributes
    ----------
    q : dict of str to ndarray of float64
    t : dict of str to int or None
    digests : dict of str to str
        Digest of the entry list each language indexes.
    params : dict
        How they were computed (``t_en``, ``english``, ``p``).

    See Also
    --------
    - [`thresholds`][metaclip2.curation.threshold.thresholds] : How `t` is derived.
    - [`entry_probabilities`][metaclip2.curation.threshold.entry_probabilities] : How `q` is derived.
    - [`OnlineSampler`][metaclip2.curation.sampling.OnlineSampler] : Samples with saved probabilities.

    Examples
    --------
    Stage 2 on the merged counts of a tiny pool, then saved and loaded back:

    >>> import os, tempfile
    >>> from metaclip2.curation import EntryCounts, EntryProbabilities
    >>> counts = EntryCounts()
    >>> counts.register("en", digest="e" * 64, n_entries=3)
    >>> for ids in ([0], [0], [0], [0, 1], [2]):
    ...     counts.add("en", ids)
    >>> probs = EntryProbabilities.from_counts(counts, t_en=2)
    >>> probs.t
    {'en': 2}
    >>> probs.q["en"]
    array([0.5, 1. , 1. ])
    >>> probs.keep_probability("en", [0, 1])
    1.0
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     probs.save(os.path.join(tmp, "probabilities.bin"))
    ...     EntryProbabilities.load(os.path.join(tmp, "probabilities.bin")).t
    {'en': 2}
    """

    def __init__(self, q: Mapping[str, np.ndarray], t: Mapping[str, float | None], digests: Mapping[str, str], params: Mapping | None = None):
        self.q = {lang: np.asarray(q[lang], dtype=np.float64) for lang in sorted(q)}
        self.t = dict(sorted(t.items()))
        self.digests = dict(sorted(digests.items()))
        self.params = dict(params or {})

    def __repr__(self) -> str:
        return f"EntryProbabilities({len(self.q)} languages, params={self.params})"

    @classmethod
    def from_counts(
        cls, counts: EntryCounts, t_en: float = DEFAULT_T_EN, english: str = "keep", p: float | None = None, english_code: str = ENGLISH
    ) -> "EntryProbabilities":
        """Stage 2: thresholds from merged counts, then entry probabilities."""
        if p is None and english_code in counts and counts[english_code].any():
            p = SortedCounts(counts[english_code]).t_to_p(t_en)
        t = thresholds(counts, t_en=t_en, english=english, english_code=english_code, p=p)
        q = {lang: entry_probabilities(counts[lang], t[lang]) for lang in counts}
        return cls(q, t, counts.digests, {"t_en": t_en, "english": english, "p": p})

    def keep_probability(self, lang: str, ids: Iterable[int]) -> float:
        """Keep-probability of a pair of `lang` that matched `ids` (0 for an unknown language)."""
        q = self.q.get(lang)
        return 0.0 if q is None else keep_probability(q, ids)

    def row_probabilities(self, langs: Sequence, offsets: np.ndarray, ids: np.ndarray, codes: np.ndarray | None = None,
                          strict: bool = True) -> np.ndarray:  # fmt: skip
        """Keep probability of every row of a CSR batch whose rows have languages of their own.

        Parameters
        ----------
        langs : sequence of (str or None)
            Each row's language; or, with `codes`, the table the codes index.
        offsets, ids : ndarray of int
            The rows' matched entry ids (sorted and unique within each row).
        codes : ndarray of int, optional
            Each row's language as a position in `langs`.
        strict : bool
            Raise for matches of a language the probabilities lack (stage 3: the index and the
            probabilities must come from one run); False gives such rows 0, as
            [`keep_probability`][metaclip2.curation.sampling.EntryProbabilities.keep_probability] does (the online sampler, the batch API).

        Returns
        -------
        ndarray of float64
            0 for a row without language or matches; otherwise [`keep_probability`][metaclip2.curation.sampling.EntryProbabilities.keep_probability] of its
            ids, bit for bit.

        Raises
        ------
        DataError
            A language the probabilities lack holds matches, or an entry id exceeds its language:
            the rows come from other metadata or another run.

        Examples
        --------
        >>> import numpy as np
        >>> from metaclip2.curation import EntryProbabilities
        >>> probs = EntryProbabilities({"en": np.array([0.5, 1.0]), "de": np.array([0.25])}, t={"en": 2, "de": 1}, digests={"en": "e", "de": "d"})
        >>> probs.row_probabilities(["en", "de", None], np.array([0, 2, 3, 3]), np.array([0, 1, 0])).tolist()
        [1.0, 0.25, 0.0]
        """
        if codes is None:
            table = sorted({x for x in langs if isinstance(x, str)})
            code = {lang: i for i, lang in enumerate(table)}
            codes = np.fromiter((code.get(x, -1) if isinstance(x, str) else -1 for x in langs), dtype=np.int64, count=len(langs))
        else:
            table, codes = list(langs), np.asarray(codes, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        ids = np.asarray(ids, dtype=np.int64)
        lengths = np.diff(offsets)
        qi = np.zeros(len(ids), dtype=np.float64)
        id_lang = np.repeat(codes, lengths)
        order = np.argsort(id_lang, kind="stable")
        bounds = np.searchsorted(id_lang[order], np.arange(len(table) + 1))
        for c, lang in enumerate(table):
            at = order[bounds[c] : bounds[c + 1]]
            if not len(at):
                continue
            q = self.q.get(lang)
            if q is None and not strict:
                continue
            if q is None:
                raise DataError(f"the probabilities have no language {lang!r}, whose matches are given: they come from another run or other metadata")
            sub = ids[at]
            if int(sub.max()) >= len(q) or int(sub.min()) < 0:
                raise DataError(f"entry ids of {lang!r} exceed its {len(q)} probabilities: the matches come from other metadata")
            qi[at] = q[sub]
        if len(ids) and np.any(id_lang < 0):
            raise DataError("matches are given for a row without language")
        return _accumulate(qi, offsets) if len(offsets) > 1 else np.zeros(0, dtype=np.float64)

    def check_digests(self, digests: Mapping[str, str]) -> None:
        """Raise [`MatcherMismatchError`][metaclip2.core.errors.MatcherMismatchError] if a language indexes another entry list."""
        bad = sorted(lang for lang in self.digests if lang in digests and digests[lang] != self.digests[lang])
        if bad:
            raise MatcherMismatchError(f"probabilities were computed for other metadata of: {', '.join(bad)}")

    def save(self, path: str | os.PathLike) -> None:
        """Write to `path` (deterministic bytes, atomic)."""
        header = {"format": _FORMAT, "t": self.t, "digests": self.digests, "params": self.params}
        save_arrays(path, header, self.q)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EntryProbabilities":
        """Read probabilities saved by [`save`][metaclip2.curation.sampling.EntryProbabilities.save], checked before use.

        Raises
        ------
        DataError
            Not a probabilities file, or a damaged one: a checksum mismatch
            ([`load_arrays`][metaclip2.core.arrayfile.load_arrays]), a missing field, or a probability
            that is NaN or outside [0, 1]. The message names the file and the language.
        """
        header, arrays = load_arrays(path)
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise DataError(f"{path} is not a metaclip2 probabilities file")
        t, digests, params = header.get("t"), header.get("digests"), header.get("params")
        if not (isinstance(t, dict) and isinstance(digests, dict) and isinstance(params, dict)) or set(digests) != set(arrays):
            raise DataError(f"{path} is damaged (its header does not describe its arrays): run stage 2 again")
        for lang in sorted(arrays):
            q = arrays[lang]
            if q.dtype.kind != "f":
                raise DataError(f"{path} is damaged: the probabilities of {lang!r} are not floating-point numbers; run stage 2 again")
            # NaN fails both comparisons, so it is caught here too
            bad = np.flatnonzero(~((q >= 0.0) & (q <= 1.0)))
            if len(bad):
                raise DataError(
                    f"{path} is damaged: {len(bad)} probabilities of {lang!r} are not in [0, 1] "
                    f"(entry {int(bad[0])}: {float(q[bad[0]])!r}); run stage 2 again"
                )
        return cls(arrays, t, digests, params)


class OnlineSampler:
    """Stage 3 as a per-sample decision for a data loader, redrawn every epoch.

    Parameters
    ----------
    probabilities : EntryProbabilities or path
        Saved per-language entry probabilities (``probabilities.bin`` of a run).
    seed : int
    unit : {"image", "pair"}

    See Also
    --------
    - [`select_texts`][metaclip2.curation.sampling.select_texts] : The decision it makes per image.
    - [`EntryProbabilities`][metaclip2.curation.sampling.EntryProbabilities] : What it samples with.

    Examples
    --------
    In a data loader, with the ``probabilities.bin`` of a run (here built in place): each
    alt-text is given as its LID language and the ids of the entries it matched.

    >>> import numpy as np
    >>> from metaclip2.curation import EntryProbabilities, OnlineSampler
    >>> probs = EntryProbabilities({"en": np.array([0.5, 1.0, 1.0])}, t={"en": 2}, digests={"en": "e" * 64})
    >>> sampler = OnlineSampler(probs, seed=0)
    >>> texts = [("en", [0]), ("en", [])]
    >>> [sampler("img-1", texts, epoch) for epoch in range(4)]
    [[0], [0], [], []]
    >>> sampler.keep("img-1", 0, "en", [1])
    True
    """

    def __init__(self, probabilities, seed: int = 0, unit: str = "image"):
        if not isinstance(probabilities, EntryProbabilities):
            probabilities = EntryProbabilities.load(probabilities)
        if unit not in UNITS:
            raise ParameterError(f"unit must be one of {UNITS}, got {unit!r}")
        self.probabilities = probabilities
        self.seed = int(seed)
        self.unit = unit

    def probabilities_of(self, texts: Sequence) -> list[float]:
        """Keep-probability of each ``(lang, ids)`` (or ``{"lang", "ids"}``) alt-text."""
        out = []
        for t in texts:
            lang, ids = (t["lang"], t["ids"]) if isinstance(t, Mapping) else t
            out.append(self.probabilities.keep_probability(lang, ids) if len(ids) else 0.0)
        return out

    def __call__(self, image_id: str, texts: Sequence, epoch: int = 0) -> list[int]:
        """Indices of the alt-texts of `image_id` kept in `epoch`.

        `texts` lists each alt-text's language and matched entry ids, as
        ``(lang, ids)`` tuples or ``{"lang": ..., "ids": [...]}`` dicts, in
        alt-text index order.
        """
        return select_texts(image_id, self.probabilities_of(texts), self.seed, epoch, self.unit)

    def keep(self, image_id: str, text_index: int, lang: str, ids: Sequence[int], epoch: int = 0) -> bool:
        """Pair-unit decision for a single alt-text."""
        p = self.probabilities.keep_probability(lang, ids) if len(ids) else 0.0
        return p > 0 and bool(_choose(image_id, [text_index], [p], self.seed, epoch, "pair"))
