"""Stage 3 in expectation: expected kept pairs and images, per language, for any threshold.

The sweep's kernel. It takes a pool's matched alt-texts once ([`SweepData`][metaclip2.curation.expectation.SweepData]) and answers,
for each ``t_en``, what stage 2 would derive (through [`thresholds`][metaclip2.curation.threshold.thresholds])
and what stage 3 would keep on average, and with what spread, through the same entry
probabilities and keep-probability kernel stage 3 uses: only the draw is replaced by its
expectation. With ``unit="image"`` a candidate alt-text of an image with ``m`` candidates is kept
with probability ``p / m``; with ``"pair"``, ``p``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from metaclip2.core.errors import DataError, ParameterError
from metaclip2.curation.counts import EntryCounts
from metaclip2.curation.sampling import UNITS, _accumulate, _accumulation_plan
from metaclip2.curation.threshold import ENGLISH, SortedCounts, _probabilities, no_english_message, thresholds

__all__ = ["SweepData", "Folder"]


class Folder:
    """Builds a [`SweepData`][metaclip2.curation.expectation.SweepData] batch by batch, in bounded memory per matched pair.

    Images whose only matched alt-text matched a single entry (most of a pool) are folded into a
    count per entry; only the others are kept as rows.

    Parameters
    ----------
    counts : EntryCounts
        The pool's merged counts (their languages and sizes name the entry space).

    Examples
    --------
    >>> import numpy as np
    >>> from metaclip2.curation import EntryCounts
    >>> from metaclip2.curation.expectation import Folder
    >>> counts = EntryCounts()
    >>> counts.register("en", digest="e" * 64, n_entries=2)
    >>> counts.add("en", [0]); counts.add("en", [0, 1])
    >>> fold = Folder(counts)
    >>> fold.add(np.array([0, 0]), np.array([0, 1]), np.array([0, 1, 3]), np.array([0, 0, 1]))
    >>> data = fold.data()
    >>> data.single.tolist(), data.gids.tolist(), data.images
    ([1.0, 0.0], [0, 1], 2)
    """

    def __init__(self, counts: EntryCounts):
        self.counts = counts
        self.langs = list(counts)
        self.sizes = np.array([len(counts[lang]) for lang in self.langs], dtype=np.int64)
        self.base = np.zeros(len(self.langs), dtype=np.int64)
        if len(self.langs):
            self.base[1:] = np.cumsum(self.sizes)[:-1]
        self.singles: list[np.ndarray] = []
        self.parts: dict[str, list[np.ndarray]] = {"lang": [], "image": [], "lengths": [], "gids": []}
        self.images = self.pairs = 0

    def add(self, lang_codes: np.ndarray, image_starts: np.ndarray, offsets: np.ndarray, ids: np.ndarray, where: str = "a batch") -> None:
        """Add a batch of matched rows: language codes (positions in the counts' languages), the
        rows where each image starts, CSR entry ids. An image must not continue in the next batch."""
        n = len(lang_codes)
        if not n:
            return
        lengths = np.diff(offsets)
        row_of_id = np.repeat(np.arange(n), lengths)
        if len(ids) and (ids.min() < 0 or np.any(ids >= self.sizes[lang_codes][row_of_id])):
            raise DataError(f"entry ids in {where} exceed the counts: the rows come from other metadata")
        gids = ids + self.base[lang_codes][row_of_id]
        img_size = np.diff(np.r_[image_starts, n])
        img_local = np.repeat(np.arange(len(image_starts)), img_size)
        alone = (img_size[img_local] == 1) & (lengths == 1)
        self.singles.append(gids[alone[row_of_id]])
        keep = ~alone
        self.parts["lang"].append(lang_codes[keep])
        self.parts["image"].append(img_local[keep] + self.images)
        self.parts["lengths"].append(lengths[keep])
        self.parts["gids"].append(gids[keep[row_of_id]])
        self.images += len(image_starts)
        self.pairs += n

    def data(self, source: str = "") -> "SweepData":
        """The [`SweepData`][metaclip2.curation.expectation.SweepData] of everything added."""
        cat = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)) for k, v in self.parts.items()}
        offsets = np.zeros(len(cat["lengths"]) + 1, dtype=np.int64)
        np.cumsum(cat["lengths"], out=offsets[1:])
        n_total = int(self.sizes.sum())
        single = np.bincount(np.concatenate(self.singles) if self.singles else np.zeros(0, dtype=np.int64), minlength=n_total).astype(np.float64)
        return SweepData(
            langs=self.langs, counts=self.counts, base=self.base, single=single, row_lang=cat["lang"].astype(np.int32),
            row_image=cat["image"].astype(np.int64), offsets=offsets, gids=cat["gids"].astype(np.int64),
            images=self.images, pairs=self.pairs, source=source,
        )  # fmt: skip


@dataclass
class SweepData:
    """A run's stage-1 outputs reduced to what keep probabilities need.

    Attributes
    ----------
    langs : list of str
        The counts' languages (sorted); codes below index this list.
    counts : EntryCounts
        Merged entry counts of the run.
    base : ndarray of int64
        Offset of each language's entries in the concatenated entry space.
    single : ndarray of float64
        Per concatenated entry: images whose only matched alt-text matched only that entry.
    row_lang, row_image : ndarray
        The other images' matched alt-texts: language code, image number (non-decreasing).
    offsets, gids : ndarray of int64
        Their matched entries in CSR form, as concatenated entry ids.
    images, pairs : int
        Images with a matched alt-text, and matched pairs, over the run.

    See Also
    --------
    - [`keep_decisions`][metaclip2.curation.sampling.keep_decisions] : The decisions whose expectation this is.

    Examples
    --------
    Four English images; the first two alt-texts matched entry 0, the third entries 0 and 1:

    >>> import numpy as np
    >>> from metaclip2.curation import EntryCounts
    >>> from metaclip2.curation.expectation import SweepData
    >>> counts = EntryCounts()
    >>> counts.register("en", digest="e" * 64, n_entries=2)
    >>> for ids in ([0], [0], [0, 1], [1]):
    ...     counts.add("en", ids)
    >>> data = SweepData.from_rows(counts, ["en"] * 4, images=[0, 1, 2, 3],
    ...                            offsets=np.array([0, 1, 2, 4, 5]), ids=np.array([0, 0, 0, 1, 1]))
    >>> data.images, data.pairs, data.thresholds(t_en=2)
    (4, 4, (0.0, {'en': 2}))
    >>> round(data.expect(t_en=2)["pairs"], 4)   # 2/3 + 2/3 + (1 - 1/3 * 0) + 1
    3.3333
    """

    langs: list
    counts: EntryCounts
    base: np.ndarray
    single: np.ndarray
    row_lang: np.ndarray
    row_image: np.ndarray
    offsets: np.ndarray
    gids: np.ndarray
    images: int
    pairs: int
    source: str = ""

    @classmethod
    def from_rows(cls, counts: EntryCounts, langs: Sequence[str], images: Sequence[int], offsets: np.ndarray, ids: np.ndarray) -> "SweepData":
        """SweepData of matched alt-texts given as rows: language, image number (non-decreasing), CSR entry ids."""
        table = list(counts)
        fold = Folder(counts)
        code = {lang: i for i, lang in enumerate(table)}
        lc = np.array([code[x] for x in langs], dtype=np.int32)
        image = np.asarray(images, dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, image[1:] != image[:-1]]) if len(image) else np.zeros(0, dtype=np.int64)
        fold.add(lc, starts, np.asarray(offsets, dtype=np.int64), np.asarray(ids, dtype=np.int64), where="the rows")
        return fold.data()

    def __post_init__(self) -> None:
        self._lang = {lang: SortedCounts(self.counts[lang]) for lang in self.langs}
        n = len(self.row_lang)
        # Rows sorted by (image, language), once: images and (image, language) groups are then
        # contiguous runs, so every per-threshold step is a reduceat without gathers.
        if n:
            order = np.lexsort((self.row_lang, self.row_image))
            lengths = np.diff(self.offsets)[order]
            starts = self.offsets[:-1][order]
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            self.gids = self.gids[np.repeat(starts - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)]
            self.offsets, self.row_lang, self.row_image = offsets, self.row_lang[order], self.row_image[order]
        li, ll = self.row_image, self.row_lang
        new_img = np.r_[True, li[1:] != li[:-1]] if n else np.zeros(0, dtype=bool)
        new_grp = (new_img | np.r_[True, ll[1:] != ll[:-1]]) if n else new_img
        self._img_starts = np.flatnonzero(new_img)
        self._grp_starts = np.flatnonzero(new_grp)
        self._grp_lang = ll[self._grp_starts]
        self._grp_img_starts = np.flatnonzero(new_img[self._grp_starts])  # image starts among the groups
        # sums per group / image through bincount: np.add.reduceat is several times slower
        self._row_grp = np.cumsum(new_grp) - 1
        self._grp_img = np.cumsum(new_img[self._grp_starts]) - 1
        self._row_img = np.cumsum(new_img) - 1
        img_size = np.diff(np.r_[self._img_starts, n])
        self._inv_m = np.repeat(1.0 / np.maximum(img_size, 1), img_size)  # 1 / candidates, if all are
        self._row_langs_present = np.unique(ll)
        # Only entries some pair matched matter: q is computed on those alone, per threshold.
        entry_lang = np.repeat(np.arange(len(self.langs)), np.diff(np.r_[self.base, len(self.single)]))
        nz = np.flatnonzero(self.single)
        self._used = np.unique(np.concatenate([nz, self.gids]))
        self._used_lang = entry_lang[self._used]
        self._used_counts = (np.concatenate([np.asarray(self.counts[lang], dtype=np.uint64) for lang in self.langs])[self._used]
                             if self.langs else np.zeros(0, dtype=np.uint64)).astype(np.float64)  # fmt: skip
        self._single_pos = np.searchsorted(self._used, nz)
        self._single_w = self.single[nz]
        self._single_lang = entry_lang[nz]
        self._pos = np.searchsorted(self._used, self.gids)  # every row's entries among the used ones
        self._plan = _accumulation_plan(self.offsets)
        # bincount takes intp: cast once, not per threshold
        for name in ("_grp_lang", "_single_lang", "_row_grp", "_grp_img", "_row_img"):
            setattr(self, name, getattr(self, name).astype(np.intp, copy=False))
        self._row_lang_ip = self.row_lang.astype(np.intp)

    @property
    def english(self) -> bool:
        """Whether the counts hold English matches (else thresholds need an explicit p)."""
        return ENGLISH in self._lang and self._lang[ENGLISH].total > 0

    # -- stage 2 ------------------------------------------------------------------------------

    def thresholds(self, t_en: float, english: str = "keep", p: float | None = None) -> tuple[float, dict]:
        """``(p, {lang: t or None})``: [`thresholds`][metaclip2.curation.threshold.thresholds] on the sorted counts."""
        if p is None:
            if not self.english:
                raise DataError(no_english_message())
            p = self._lang[ENGLISH].t_to_p(t_en)
        return p, thresholds(self._lang, t_en=t_en, english=english, p=p)

    # -- stage 3 in expectation ---------------------------------------------------------------

    def expect(self, t_en: float, english: str = "keep", p: float | None = None, unit: str = "image") -> dict:
        """Expected kept sizes (and standard deviations) for one threshold; see the module notes.

        Returns
        -------
        dict
            ``t_en``, ``p``, ``pairs``, ``pairs_std``, ``images``, ``images_std`` and
            ``languages``: ``{lang: {"t", "pairs", "pairs_std", "images", "images_std"}}``.
        """
        if unit not in UNITS:
            raise ParameterError(f"unit must be one of {UNITS}, got {unit!r}")
        p, t = self.thresholds(t_en, english, p)
        # q = t / max(c, t) on the matched entries only; a language without threshold keeps nothing
        t_vec = np.array([np.nan if t[lang] is None else float(t[lang]) for lang in self.langs], dtype=np.float64)
        q = _probabilities(self._used_counts, t_vec[self._used_lang])  # entry_probabilities, on counts checked once
        nl = len(self.langs)
        # one matched pair, one entry: p = q, for both units
        qs = q[self._single_pos]
        s_mean = np.bincount(self._single_lang, self._single_w * qs, minlength=nl)
        s_var = np.bincount(self._single_lang, self._single_w * qs * (1.0 - qs), minlength=nl)
        pr = self._row_probabilities(q)
        if unit == "pair":
            pairs = np.bincount(self._row_lang_ip, pr, minlength=nl)
            pairs_var = np.bincount(self._row_lang_ip, pr * (1.0 - pr), minlength=nl)
            g = 1.0 - _reduce(np.multiply, 1.0 - pr, self._grp_starts)
            images = np.bincount(self._grp_lang, g, minlength=nl)
            images_var = np.bincount(self._grp_lang, g * (1.0 - g), minlength=nl)
            img = 1.0 - _reduce(np.multiply, 1.0 - g, self._grp_img_starts)
            total_pairs_var = float(pairs_var.sum() + s_var.sum())
        else:
            if all(t[self.langs[i]] is not None for i in self._row_langs_present):
                w = pr * self._inv_m  # every matched alt-text is a candidate (p > 0)
            else:  # a language without threshold: its alt-texts are no candidates
                m = np.bincount(self._row_img, pr > 0, minlength=len(self._img_starts))[self._row_img]
                w = np.where(pr > 0, pr / np.maximum(m, 1.0), 0.0)
            g = np.bincount(self._row_grp, w, minlength=len(self._grp_starts))
            pairs = images = np.bincount(self._grp_lang, g, minlength=nl)
            pairs_var = images_var = np.bincount(self._grp_lang, g * (1.0 - g), minlength=nl)
            img = np.bincount(self._grp_img, g, minlength=len(self._img_starts))
            total_pairs_var = float((img * (1.0 - img)).sum() + s_var.sum())
        langs = {}
        for i, lang in enumerate(self.langs):
            langs[lang] = {
                "t": t[lang],
                "pairs": float(pairs[i] + s_mean[i]),
                "pairs_std": math.sqrt(max(float(pairs_var[i] + s_var[i]), 0.0)),
                "images": float(images[i] + s_mean[i]),
                "images_std": math.sqrt(max(float(images_var[i] + s_var[i]), 0.0)),
            }
        return {
            "t_en": t_en,
            "p": p,
            "pairs": float(pairs.sum() + s_mean.sum()),
            "pairs_std": math.sqrt(max(total_pairs_var, 0.0)),
            "images": float(img.sum() + s_mean.sum()),
            "images_std": math.sqrt(max(float((img * (1.0 - img)).sum() + s_var.sum()), 0.0)),
            "languages": langs,
        }

    def _row_probabilities(self, q: np.ndarray) -> np.ndarray:
        return _accumulate(q[self._pos], self.offsets, self._plan)


def _reduce(ufunc, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``ufunc.reduceat`` over non-empty segments starting at `starts` (empty input: empty)."""
    if not len(starts):
        return np.zeros(0)
    return ufunc.reduceat(values, starts)
