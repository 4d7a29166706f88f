"""Bounded, seeded samples of alt-texts that stages 1 and 3 collect while they read, for the report.

Each shard writes ``<shard>.examples.json`` next to its other outputs (recorded with size and
sha256 in its stats, so it is verified like them). Every sample is a *bottom-k* sample: an
alt-text's key is [`uniform`][metaclip2.curation.sampling.uniform] of (seed, image id, alt-text
index), and a bucket keeps the ``K`` smallest keys. A bottom-k sample of a union is the
bottom-k of the shards' bottom-k samples, so samples merge exactly ([`merge_examples`][metaclip2.pipeline.stages.examples.merge_examples]) and
do not depend on the order of reading, the grouping of images or the number of workers.

* Stage 1 ([`Stage1Examples`][metaclip2.pipeline.stages.examples.Stage1Examples]): per metadata language, alt-texts that matched an entry
  (with the entry ids) and alt-texts that matched nothing; per LID label without metadata, its
  alt-texts.
* Stage 3 ([`Stage3Examples`][metaclip2.pipeline.stages.examples.Stage3Examples]): per language, for its ``HEAD`` entries of highest count
  (the smallest keep probabilities below 1, known from ``probabilities.bin`` alone) and for a
  seeded sample of ``TAIL`` tail entries hit by the pool (the smallest entry keys, also a
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


def _base(seed: int, lang: str) -> int:
    h = hashlib.blake2b(f"example-entry|{int(seed)}|{lang}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(h, "little")


def _mix(entries, bases) -> np.ndarray:
    """splitmix64 of ``entries + bases`` (uint64, modulo 2**64) as floats in [0, 1)."""
    z = np.asarray(entries, dtype=np.uint64) + np.asarray(bases, dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        z = z * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


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
    return _mix(entries, np.uint64(_base(seed, lang)))


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
        self.head: dict[str, set] = {}
        # one id space over all languages (language i's entry e is start[i] + e), so that a
        # batch of many languages is filtered in a few numpy calls
        self._langs = sorted(q)
        self._code = {lang: i for i, lang in enumerate(self._langs)}
        sizes = np.array([len(q[lang]) for lang in self._langs], dtype=np.int64)
        self._size = sizes
        self._start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._base = np.array([_base(self.seed, lang) for lang in self._langs], dtype=np.uint64)
        self._is_head = np.zeros(int(self._start[-1]), dtype=bool)
        self._is_tail = np.zeros(int(self._start[-1]), dtype=bool)
        for i, lang in enumerate(self._langs):
            arr = np.asarray(q[lang])
            below = np.flatnonzero(arr < 1.0)
            # lowest q first = highest count; ties by entry id (a stable sort keeps id order)
            top = below[np.argsort(arr[below], kind="stable")[:HEAD]]
            self.head[lang] = set(top.tolist())
            self._is_head[self._start[i] + top] = True
            self._is_tail[self._start[i] : self._start[i + 1]] = arr >= 1.0
        self._bound = np.full(len(self._langs), 2.0)  # per language: a tail key at or above it cannot enter
        self._tail: dict[int, dict] = {}  # language code -> {entry: key}, the TAIL smallest (key, entry) seen
        self._entries: dict[tuple, dict] = {}  # (lang, entry) -> {"kept": _Bucket, "not_kept": _Bucket}
        self._bucket_ids = np.zeros(0, dtype=np.int64)
        self._bucket_bound = np.zeros(0)
        self._full: dict[int, float] = {}  # bucket id -> its largest key, for the full buckets

    def _tail_takes(self, c: int, entry: int, key: float) -> None:
        held = self._tail.setdefault(c, {})
        if entry in held or key > self._bound[c]:
            return
        if len(held) >= TAIL:
            out = max(held, key=lambda e: (held[e], e))
            if (key, entry) >= (held[out], out):
                return
            del held[out]
            self._entries.pop((self._langs[c], out), None)
            g = int(self._start[c]) + out
            for w in (0, 1):
                self._full.pop(g * 2 + w, None)
        held[entry] = key
        if len(held) >= TAIL:
            self._bound[c] = max(held.values())

    def add(self, lang: str, image_id: str, k: int, text: str, ids: Iterable[int], kept: bool) -> None:
        """A matched pair of `lang` (entries `ids`) and stage 3's decision for it."""
        ids = np.asarray(list(ids), dtype=np.int64)
        self.add_rows([lang], [image_id], [k], [text], ids, np.array([0, len(ids)]), [kept])

    def add_rows(self, langs, image_ids, ks, texts, ids, offsets, keep) -> None:
        """[`add`][metaclip2.pipeline.stages.examples.Stage3Examples.add] for each row of a CSR batch (row ``r`` matched ``ids[offsets[r]:offsets[r + 1]]``).

        Which matches can be sampled (a head entry, or a tail entry whose key is below its
        language's bound) is decided with numpy over the whole batch; only those reach per-row work.
        """
        n = len(langs)
        if not n or not self._langs:
            return
        ids = np.asarray(ids, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        row_of = np.repeat(np.arange(n), np.diff(offsets))
        codes = np.array([self._code.get(lang, -1) for lang in langs], dtype=np.int64)[row_of]
        ok = (codes >= 0) & (ids < self._size[np.maximum(codes, 0)])
        pos = np.flatnonzero(ok)
        c, e = codes[pos], ids[pos]
        gid = self._start[c] + e
        head = self._is_head[gid]
        tail = self._is_tail[gid]
        keys = _mix(e[tail], self._base[c[tail]])
        near = np.flatnonzero(tail)[keys < self._bound[c[tail]]]
        if len(near):  # the tail sample's candidates, in (key, entry) order: few once it is full
            near_keys = keys[np.searchsorted(np.flatnonzero(tail), near)]
            for j in np.lexsort((e[near], near_keys)).tolist():
                self._tail_takes(int(c[near[j]]), int(e[near[j]]), float(near_keys[j]))
        sampled = np.zeros(len(pos), dtype=bool)
        if self._tail:
            held = np.array([self._start[cc] + ee for cc, d in self._tail.items() for ee in d], dtype=np.int64)
            sampled = tail & np.isin(gid, held)
        wanted = np.flatnonzero(head | sampled)
        if not len(wanted):
            return
        rows = row_of[pos[wanted]]
        first = np.unique(rows)
        u = np.array([uniform(self.seed, image_ids[r], int(ks[r]), purpose="example") for r in first.tolist()])[np.searchsorted(first, rows)]
        kept = np.asarray(keep, dtype=bool)[rows]
        # a full bucket takes only keys at or below its largest: most matches stop here, in numpy
        bucket = gid[wanted] * 2 + kept
        at = np.minimum(np.searchsorted(self._bucket_ids, bucket), max(len(self._bucket_ids) - 1, 0))
        bound = np.where(self._bucket_ids[at] == bucket, self._bucket_bound[at], 2.0) if len(self._bucket_ids) else np.full(len(u), 2.0)
        changed = False
        for j in np.flatnonzero(u <= bound).tolist():
            r = int(rows[j])
            lang, entry = langs[r], int(e[wanted[j]])
            slot = self._entries.get((lang, entry))
            if slot is None:
                slot = self._entries[(lang, entry)] = {"kept": _Bucket(), "not_kept": _Bucket()}
            b = slot["kept" if kept[j] else "not_kept"]
            key = (float(u[j]), image_ids[r], int(ks[r]))
            if b.wants(key):
                b.add(key, _record(image_ids[r], int(ks[r]), texts[r]))
                if len(b.items) >= K:
                    self._full[int(gid[wanted[j]]) * 2 + int(kept[j])] = b.items[-1][0][0]
                    changed = True
        if changed:
            self._index_buckets()

    def _index_buckets(self) -> None:
        """Sorted bucket ids (global entry id * 2 + kept) of the full buckets, with their largest keys."""
        ids = np.fromiter(self._full.keys(), dtype=np.int64, count=len(self._full))
        order = np.argsort(ids)
        self._bucket_ids = ids[order]
        self._bucket_bound = np.fromiter(self._full.values(), dtype=np.float64, count=len(self._full))[order]

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
