"""Bounded, seeded samples of alt-texts that stages 1 and 3 collect while they read, for the report.

Each shard writes ``<shard>.examples.json`` next to its other outputs (recorded with size and
sha256 in its stats, so it is verified like them). Every sample is a *bottom-k* sample: an
alt-text's key is :func:`~metaclip2.curation.sampling.uniform` of (seed, image id, alt-text
index), and a bucket keeps the :data:`K` smallest keys. A bottom-k sample of a union is the
bottom-k of the shards' bottom-k samples, so samples merge exactly (:func:`merge_examples`) and
do not depend on the order of reading, the grouping of images or the number of workers.

* Stage 1 (:class:`Stage1Examples`): per metadata language, alt-texts that matched an entry
  (with the entry ids) and alt-texts that matched nothing; per LID label without metadata, its
  alt-texts.
* Stage 3 (:class:`Stage3Examples`): per language, for its :data:`HEAD` entries of highest count
  (the smallest keep probabilities below 1, known from ``probabilities.bin`` alone) and for a
  seeded sample of :data:`TAIL` tail entries hit by the pool (the smallest entry keys, also a
  bottom-k sample), alt-texts kept and not kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from metaclip2.core.atomic import write_text
from metaclip2.curation.sampling import uniform

__all__ = ["K", "HEAD", "TAIL", "Stage1Examples", "Stage3Examples", "merge_examples", "entry_keys"]

FORMAT = "metaclip2-examples/1"
#: Alt-texts kept per bucket (a language, an entry's kept or not-kept alt-texts, a label).
K = 3
#: Head entries per language with stage-3 examples (highest counts first).
HEAD = 20
#: Tail entries per language with stage-3 examples (a seeded sample of those the pool hit).
TAIL = 20
#: Characters of an alt-text kept in an example.
MAX_CHARS = 240
#: Matched entry ids kept with a stage-1 example.
MAX_IDS = 16
#: Stage 1 has no seed of its own: its samples use this one.
STAGE1_SEED = 0


def _item(seed: int, image_id: str, k: int) -> tuple:
    return (uniform(seed, image_id, k, purpose="example"), image_id, k)


def entry_keys(seed: int, lang: str, entries) -> "np.ndarray":
    """The keys that order a language's entries for the seeded tail sample (smallest first), in [0, 1).

    A splitmix64 mix of the entry id and a digest of (seed, language): numpy work, so a
    shard's stage 3 can filter its matches by key without a call per match.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.examples import entry_keys
    >>> keys = entry_keys(0, "en", [3, 4])
    >>> bool(((0 <= keys) & (keys < 1)).all()), bool(keys[0] == entry_keys(0, "en", [3])[0]), bool(keys[0] != keys[1])
    (True, True, True)
    """
    h = hashlib.blake2b(f"example-entry|{int(seed)}|{lang}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    z = np.asarray(entries, dtype=np.uint64) + np.uint64(int.from_bytes(h, "little"))
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        z = z * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


class _Bucket:
    """The K smallest (key, image id, k) items seen, each with its record."""

    __slots__ = ("items",)

    def __init__(self):
        self.items: list = []

    def wants(self, key: tuple) -> bool:
        return len(self.items) < K or key < self.items[-1][0]

    def add(self, key: tuple, record: dict) -> None:
        if not self.wants(key) or any(key == it[0] for it in self.items):
            return
        self.items.append((key, record))
        self.items.sort(key=lambda it: it[0])
        del self.items[K:]

    def records(self) -> list:
        return [r for _, r in self.items]


def _record(image_id: str, k: int, text: str, **extra) -> dict:
    return {"id": image_id, "k": int(k), "text": text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…", **extra}


class Stage1Examples:
    """Stage 1's sample of one shard: matched and unmatched alt-texts per language, and
    alt-texts per LID label without metadata.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.examples import Stage1Examples
    >>> ex = Stage1Examples()
    >>> for i in range(10):
    ...     ex.unmatched("en", f"img-{i}", 0, f"text {i}")
    >>> ex.matched("en", "img-x", 1, "a red dog", [4, 7])
    >>> doc = ex.to_json()
    >>> len(doc["unmatched"]["en"]), doc["matched"]["en"][0]["ids"]
    (3, [4, 7])
    """

    def __init__(self, seed: int = STAGE1_SEED):
        self.seed = seed
        self._buckets: dict[tuple, _Bucket] = {}

    def _add(self, kind: str, lang: str, image_id: str, k: int, text: str, ids=None) -> None:
        b = self._buckets.get((kind, lang))
        if b is None:
            b = self._buckets[(kind, lang)] = _Bucket()
        key = _item(self.seed, image_id, k)
        if b.wants(key):  # most pairs stop here: no record is built for them
            extra = {} if ids is None else {"ids": [int(i) for i in list(ids)[:MAX_IDS]]}
            b.add(key, _record(image_id, k, text, **extra))

    def matched(self, lang: str, image_id: str, k: int, text: str, ids: Sequence[int]) -> None:
        """A pair of `lang` that matched entries `ids`."""
        self._add("matched", lang, image_id, k, text, ids)

    def unmatched(self, lang: str, image_id: str, k: int, text: str) -> None:
        """A pair of `lang` that matched no entry."""
        self._add("unmatched", lang, image_id, k, text)

    def no_metadata(self, label: str, image_id: str, k: int, text: str) -> None:
        """A pair whose LID label has no metadata."""
        self._add("no_metadata", str(label), image_id, k, text)

    def to_json(self) -> dict:
        """The file's content."""
        out: dict = {"format": FORMAT, "stage": 1, "seed": self.seed, "k": K, "matched": {}, "unmatched": {}, "no_metadata": {}}
        for (kind, lang), b in sorted(self._buckets.items()):
            out[kind][lang] = b.records()
        return out

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``<shard>.examples.json`` atomically."""
        return _write(path, self.to_json())


class Stage3Examples:
    """Stage 3's sample of one shard: kept and not-kept alt-texts of the head entries and of a
    seeded sample of tail entries, per language.

    Parameters
    ----------
    q : mapping of str to ndarray
        Keep probabilities per language (``EntryProbabilities.q``).
    seed : int
        Stage 3's seed.

    Examples
    --------
    >>> import numpy as np
    >>> from metaclip2.pipeline.stages.examples import Stage3Examples
    >>> ex = Stage3Examples({"en": np.array([0.5, 1.0, 1.0])}, seed=0)
    >>> ex.add("en", "a", 0, "a red dog", [0, 2], kept=True)
    >>> ex.add("en", "b", 0, "a dog", [0], kept=False)
    >>> doc = ex.to_json()
    >>> [r["id"] for r in doc["head"]["en"]["0"]["kept"]], [r["id"] for r in doc["head"]["en"]["0"]["not_kept"]]
    (['a'], ['b'])
    >>> sorted(doc["tail"]["en"])
    ['2']
    """

    def __init__(self, q: Mapping, seed: int = 0):
        self.seed = int(seed)
        self._q = q
        self.head: dict[str, set] = {}
        self._is_head: dict[str, np.ndarray] = {}
        for lang, arr in q.items():
            below = np.flatnonzero(arr < 1.0)
            # lowest q first = highest count; ties by entry id (a stable sort keeps id order)
            top = below[np.argsort(arr[below], kind="stable")[:HEAD]]
            self.head[lang] = set(top.tolist())
        self._entries: dict[tuple, dict] = {}  # (lang, entry) -> {"kept": _Bucket, "not_kept": _Bucket}
        self._tail: dict[str, dict] = {}  # lang -> {entry: entry key}, the TAIL smallest keys seen

    def _bound(self, lang: str) -> float:
        """Entry keys at or above this cannot enter `lang`'s tail sample (it only falls)."""
        held = self._tail.get(lang)
        return max(held.values()) if held is not None and len(held) >= TAIL else 2.0

    def _tail_takes(self, lang: str, entry: int, key: float) -> bool:
        held = self._tail.setdefault(lang, {})
        if entry in held:
            return True
        if len(held) >= TAIL:
            out = max(held, key=lambda e: (held[e], e))
            if (key, entry) >= (held[out], out):
                return False
            del held[out]
            self._entries.pop((lang, out), None)
        held[entry] = key
        return True

    def _take(self, lang: str, entry: int, image_id: str, k: int, text: str, kept: bool, key) -> tuple:
        slot = self._entries.get((lang, entry))
        if slot is None:
            slot = self._entries[(lang, entry)] = {"kept": _Bucket(), "not_kept": _Bucket()}
        b = slot["kept" if kept else "not_kept"]
        if key is None:
            key = _item(self.seed, image_id, k)
        if b.wants(key):
            b.add(key, _record(image_id, k, text))
        return key

    def add(self, lang: str, image_id: str, k: int, text: str, ids: Iterable[int], kept: bool) -> None:
        """A matched pair of `lang` (entries `ids`) and stage 3's decision for it."""
        ids = np.asarray(list(ids), dtype=np.int64)
        self.add_rows([lang], [image_id], [k], [text], ids, np.array([0, len(ids)]), [kept])

    def add_rows(self, langs, image_ids, ks, texts, ids, offsets, keep) -> None:
        """:meth:`add` for each row of a CSR batch (row ``r`` matched ``ids[offsets[r]:offsets[r + 1]]``).

        The matches of entries that cannot be sampled (neither head nor a tail entry whose key
        is below the language's current bound) are dropped with numpy, before any per-row work.
        """
        n = len(langs)
        if not n:
            return
        ids = np.asarray(ids, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        row_of = np.repeat(np.arange(n), np.diff(offsets))
        code: dict = {}
        lang_code = np.array([code.setdefault(lang, len(code)) for lang in langs], dtype=np.int32)[row_of]
        keys = np.zeros(len(ids))
        want = np.zeros(len(ids), dtype=bool)
        for lang, c in code.items():
            q = self._q.get(lang)
            if q is None:
                continue
            at = np.flatnonzero(lang_code == c)
            e = ids[at]
            inside = e < len(q)
            at, e = at[inside], e[inside]
            head = np.isin(e, np.fromiter(self.head[lang], dtype=np.int64)) if self.head[lang] else np.zeros(len(e), dtype=bool)
            tail = q[e] >= 1.0
            k_e = entry_keys(self.seed, lang, e[tail])
            keys[at[tail]] = k_e
            sel = np.zeros(len(e), dtype=bool)
            sel[np.flatnonzero(tail)[k_e <= self._bound(lang)]] = True
            want[at] = head | sel
        keyed: dict = {}
        for j in np.flatnonzero(want).tolist():
            r = int(row_of[j])
            lang, e = langs[r], int(ids[j])
            if e not in self.head.get(lang, ()) and not self._tail_takes(lang, e, float(keys[j])):
                continue
            keyed[r] = self._take(lang, e, image_ids[r], int(ks[r]), texts[r], bool(keep[r]), keyed.get(r))

    def to_json(self) -> dict:
        """The file's content."""
        out: dict = {"format": FORMAT, "stage": 3, "seed": self.seed, "k": K, "head": {}, "tail": {}}
        for (lang, e), slot in sorted(self._entries.items()):
            part = "head" if e in self.head.get(lang, ()) else "tail"
            out[part].setdefault(lang, {})[str(e)] = {"kept": slot["kept"].records(), "not_kept": slot["not_kept"].records()}
        return out

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``<shard>.examples.json`` atomically."""
        return _write(path, self.to_json())


def _write(path, doc: dict) -> Path:
    # compact (the file is read by programs), keys sorted: the same sample, the same bytes
    return write_text(path, json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n")


def _merge_records(lists: Iterable[list], seed: int) -> list:
    b = _Bucket()
    for records in lists:
        for r in records:
            b.add(_item(seed, r["id"], r["k"]), r)
    return b.records()


def merge_examples(docs: Sequence[dict]) -> dict:
    """The sample of several shards' examples files of one stage: what one shard holding all
    their pairs would have written.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.examples import Stage1Examples, merge_examples
    >>> a, b, whole = Stage1Examples(), Stage1Examples(), Stage1Examples()
    >>> for i in range(20):
    ...     (a if i % 2 else b).unmatched("en", f"img-{i}", 0, f"t{i}")
    ...     whole.unmatched("en", f"img-{i}", 0, f"t{i}")
    >>> merge_examples([a.to_json(), b.to_json()]) == whole.to_json()
    True
    """
    if not docs:
        return {}
    first = docs[0]
    seed, stage = first["seed"], first["stage"]
    out: dict = {"format": FORMAT, "stage": stage, "seed": seed, "k": K}
    if stage == 1:
        for kind in ("matched", "unmatched", "no_metadata"):
            langs = sorted({lang for d in docs for lang in d.get(kind, {})})
            out[kind] = {lang: _merge_records([d[kind][lang] for d in docs if lang in d.get(kind, {})], seed) for lang in langs}
        return out
    out["head"], out["tail"] = {}, {}
    for part in ("head", "tail"):
        langs = sorted({lang for d in docs for lang in d.get(part, {})})
        for lang in langs:
            entries = sorted({e for d in docs for e in d.get(part, {}).get(lang, {})}, key=int)
            if part == "tail":  # the TAIL smallest entry keys of the union
                keys = entry_keys(seed, lang, [int(e) for e in entries]).tolist()
                entries = [e for _, e in sorted(zip(keys, entries), key=lambda ke: (ke[0], int(ke[1])))[:TAIL]]
            merged = {}
            for e in sorted(entries):
                slots = [d[part][lang][e] for d in docs if e in d.get(part, {}).get(lang, {})]
                merged[e] = {w: _merge_records([s[w] for s in slots], seed) for w in ("kept", "not_kept")}
            out[part][lang] = merged
    return out
