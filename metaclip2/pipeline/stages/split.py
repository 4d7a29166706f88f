"""Images split across shards: found in bounded memory, decided whole, identically by every shard.

An image is all the rows with its id ([`keep_decisions`][metaclip2.curation.sampling.keep_decisions]). Within
a shard, stages 1 and 3 see all of them; an image cut across shards (a pool split into files
mid-image, or an id repeated in two files) needs its rows from every shard. So:

* stage 1 writes, per shard, ``<shard>.images.bin`` ([`write_images`][metaclip2.pipeline.stages.split.write_images]): for every id of
  the shard, its 64-bit hash ([`id_hash`][metaclip2.pipeline.stages.split.id_hash]), its number of alt-text slots and two flags
  (``MATCHED``: a matched row; ``NUMBERED``: every index numbered by position, none given by
  the data), sorted by hash;
* stage 2 finds the hashes present in more than one shard ([`find_split_images`][metaclip2.pipeline.stages.split.find_split_images]): the
  64-bit range is cut into parts sized to a memory budget and, per part, each shard's
  memory-mapped array is sliced by `numpy.searchsorted`; then the indexes of the shards
  holding such a hash are read for their rows, grouped by the id *string* (a hash only finds
  candidates: two ids with one hash are never merged), and written to ``split.index.bin``
  ([`write_split`][metaclip2.pipeline.stages.split.write_split]);
* stage 3 of a shard decides each split image it holds on the union of its rows
  ([`load_split`][metaclip2.pipeline.stages.split.load_split]); each shard writes only its own kept rows.

An image's positionally numbered alt-texts (no ``text_index`` in the data) continue across
shards in the run's shard order: a shard's indices of the id are offset by the slots the id
used in the shards before it, so a pool cut into files numbers its images as the whole pool
would. (That offset is found by hash; a 64-bit collision between ids of different shards,
about ``n**2 / 2**65`` for ``n`` ids, would shift such indices, never merge the images.) An
``(id, index)`` met in two shards is a data problem: the later rows are marked ``duplicate``
and never kept.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from metaclip2.core.atomic import AtomicFile
from metaclip2.core.errors import DataError
from metaclip2.pipeline.io.index import IndexWriter, iter_index

__all__ = ["MATCHED", "NUMBERED", "SPLIT_FILE", "SPLIT_RECORD", "id_hash", "write_images", "read_images", "find_split_images", "write_split", "load_split",
           "split_inputs_digest", "split_images"]

#: Stage 2's file of the split images' rows, and its record (inputs and outputs digests).
SPLIT_FILE = "split.index.bin"
SPLIT_RECORD = "split.json"

#: Flag of an id with at least one matched row in the shard.
MATCHED = 1
#: Flag of an id whose alt-text indices were all numbered by position (none given by the data).
NUMBERED = 2

_MAGIC = b"MC2IMAGES/1\n\x00\x00\x00\x00"
_HEAD = struct.Struct("<16sQI4x")  # magic, records, crc32 of the arrays
_BUDGET = 256 << 20  # bytes of hashes held at once while looking for split images
_REPAIR = "delete the shard's stage-1 files and run stage 1 again"


def id_hash(image_id: str) -> int:
    """The 64-bit hash of an image id (blake2b-8 of its UTF-8, little-endian).

    Examples
    --------
    >>> from metaclip2.pipeline.stages.split import id_hash
    >>> id_hash("a") == id_hash("a") != id_hash("b")
    True
    """
    return int.from_bytes(hashlib.blake2b(image_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def write_images(path: str | os.PathLike, ids: Iterable[tuple[str, int, int]]) -> int:
    """Write a shard's ``images.bin`` from ``(id, slots, flags)``; returns the number of records.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.pipeline.stages.split import MATCHED, id_hash, read_images, write_images
    >>> tmp = tempfile.TemporaryDirectory()
    >>> write_images(f"{tmp.name}/s.images.bin", [("b", 1, MATCHED), ("a", 2, 0)])
    2
    >>> hashes, slots, flags = read_images(f"{tmp.name}/s.images.bin")
    >>> sorted([id_hash("a"), id_hash("b")]) == hashes.tolist()
    True
    >>> tmp.cleanup()
    """
    rows = sorted((id_hash(i), int(s), int(f)) for i, s, f in ids)
    h = np.fromiter((r[0] for r in rows), dtype="<u8", count=len(rows))
    s = np.fromiter((min(r[1], 2**32 - 1) for r in rows), dtype="<u4", count=len(rows))
    f = np.fromiter((r[2] for r in rows), dtype="<u1", count=len(rows))
    return _write_image_arrays(path, h, s, f)


def _write_image_arrays(path: str | os.PathLike, h: np.ndarray, s: np.ndarray, f: np.ndarray) -> int:
    """Write an ``images.bin`` of hashes `h` (ascending), slots `s` and flags `f`."""
    rows = h
    body = [np.asarray(h, dtype="<u8").tobytes(), np.asarray(s, dtype="<u4").tobytes(), np.asarray(f, dtype="<u1").tobytes()]
    crc = 0
    for b in body:
        crc = zlib.crc32(b, crc)
    with AtomicFile(path) as out:
        out.write(_HEAD.pack(_MAGIC, len(rows), crc))
        for b in body:
            out.write(b)
    return len(rows)


def read_images(path: str | os.PathLike, check: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hashes, slots, flags)`` of an ``images.bin``, memory-mapped (`check`: verify its checksum too).

    Raises
    ------
    DataError
        Not such a file, truncated, or (with `check`) damaged.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.pipeline.stages.split import MATCHED, NUMBERED, read_images, write_images
    >>> tmp = tempfile.TemporaryDirectory()
    >>> _ = write_images(f"{tmp.name}/s.images.bin", [("a", 3, MATCHED | NUMBERED)])
    >>> hashes, slots, flags = read_images(f"{tmp.name}/s.images.bin", check=True)
    >>> slots.tolist(), flags.tolist()
    ([3], [3])
    >>> with open(f"{tmp.name}/s.images.bin", "r+b") as f:
    ...     _ = f.seek(-1, 2); _ = f.write(bytes([255]))
    >>> read_images(f"{tmp.name}/s.images.bin", check=True)
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: .../s.images.bin is damaged (checksum mismatch): ...
    >>> tmp.cleanup()
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(_HEAD.size)
    except FileNotFoundError:
        raise DataError(f"{path} is missing (a stage 1 of an older version): {_REPAIR}") from None
    if len(head) != _HEAD.size or head[:16] != _MAGIC:
        raise DataError(f"{path} is not a metaclip2 images file: {_REPAIR}")
    _, n, crc = _HEAD.unpack(head)
    if size != _HEAD.size + 13 * n:
        raise DataError(f"{path} is truncated or damaged ({size} bytes for {n} records): {_REPAIR}")
    if n == 0:
        return np.zeros(0, dtype="<u8"), np.zeros(0, dtype="<u4"), np.zeros(0, dtype="<u1")
    h = np.memmap(path, dtype="<u8", mode="r", offset=_HEAD.size, shape=(n,))
    s = np.memmap(path, dtype="<u4", mode="r", offset=_HEAD.size + 8 * n, shape=(n,))
    f = np.memmap(path, dtype="<u1", mode="r", offset=_HEAD.size + 12 * n, shape=(n,))
    if check:
        got = 0
        for a in (h, s, f):
            for i in range(0, len(a), 1 << 20):
                got = zlib.crc32(a[i : i + (1 << 20)].tobytes(), got)
        if got != crc:
            raise DataError(f"{path} is damaged (checksum mismatch): {_REPAIR}")
    return h, s, f


def _candidates(arrays: Sequence[tuple], budget: int) -> dict[int, list[tuple[int, int, int]]]:
    """Hashes present in more than one shard (one with a matched row): hash -> [(shard, slots, flags)]."""
    total = sum(len(a[0]) for a in arrays)
    parts = max(1, math.ceil(total * 96 / budget))  # about 96 bytes per record while a part is sorted
    bounds = [(j << 64) // parts for j in range(parts)]
    out: dict[int, list] = {}
    for j in range(parts):
        hs, sh, pos = [], [], []
        for i, (h, _, _) in enumerate(arrays):
            a = int(np.searchsorted(h, np.uint64(bounds[j]))) if j else 0
            b = int(np.searchsorted(h, np.uint64(bounds[j + 1]))) if j + 1 < parts else len(h)
            if b > a:
                hs.append(np.asarray(h[a:b]))
                sh.append(np.full(b - a, i, dtype=np.int64))
                pos.append(np.arange(a, b, dtype=np.int64))
        if len(hs) < 2:
            continue
        h, s, p = np.concatenate(hs), np.concatenate(sh), np.concatenate(pos)
        order = np.argsort(h, kind="stable")
        h, s, p = h[order], s[order], p[order]
        start = np.r_[True, h[1:] != h[:-1]]
        run = np.cumsum(start) - 1
        first = np.flatnonzero(start)
        lo, hi = np.minimum.reduceat(s, first), np.maximum.reduceat(s, first)
        many = lo != hi
        if not many.any():
            continue
        for r in np.flatnonzero(many[run]).tolist():
            i, q = int(s[r]), int(p[r])
            out.setdefault(int(h[r]), []).append((i, int(arrays[i][1][q]), int(arrays[i][2][q])))
    return {h: v for h, v in out.items() if any(f & MATCHED for _, _, f in v)}


def find_split_images(index_paths: Sequence[str | os.PathLike], images_paths: Sequence[str | os.PathLike],
                      names: Sequence[str], budget: int = _BUDGET) -> list[tuple]:  # fmt: skip
    """Rows of the images found in more than one shard, as ``split.index.bin`` holds them.

    Parameters
    ----------
    index_paths, images_paths : sequence of path
        Each shard's stage-1 index and ``images.bin``, in the run's shard order.
    names : sequence of str
        The shards' names.
    budget : int
        Bytes of hashes held at once.

    Returns
    -------
    list of tuple
        ``(n, id, k, lang, ids, text, extra)`` rows ([`IndexWriter`][metaclip2.pipeline.io.index.IndexWriter]'s),
        sorted by id then shard: ``k`` the alt-text index over the whole pool, ``extra``
        ``{"shard", "k"}`` (the shard's name and its own index; ``"duplicate": true`` for an
        ``(id, k)`` an earlier shard holds).

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.pipeline.io.index import IndexWriter
    >>> from metaclip2.pipeline.stages.split import MATCHED, NUMBERED, find_split_images, write_images
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> for name, rows in (("s0", [(0, "a", 0), (1, "b", 0)]), ("s1", [(0, "a", 0), (1, "c", 0)])):
    ...     with IndexWriter(f"{d}/{name}.index.bin") as w:
    ...         for n, i, k in rows:
    ...             w.write(n, i, k, "en", [0], "t")
    ...     write_images(f"{d}/{name}.images.bin", [(i, 1, MATCHED | NUMBERED) for _, i, _ in rows])
    2
    2
    >>> rows = find_split_images([f"{d}/s0.index.bin", f"{d}/s1.index.bin"], [f"{d}/s0.images.bin", f"{d}/s1.images.bin"], ["s0", "s1"])
    >>> [(i, k, extra) for _, i, k, _, _, _, extra in rows]     # image a continues in s1: its index there is 1
    [('a', 0, {'shard': 's0', 'k': 0}), ('a', 1, {'shard': 's1', 'k': 0})]
    >>> tmp.cleanup()
    """
    arrays = [read_images(p) for p in images_paths]
    found = _candidates(arrays, budget)
    if not found:
        return []
    by_shard: dict[int, set] = {}
    for h, entries in found.items():
        for i, _, f in entries:
            if f & MATCHED:
                by_shard.setdefault(i, set()).add(h)
    rows: dict[str, list] = {}
    for i in sorted(by_shard):
        wanted = by_shard[i]
        for batch in iter_index(index_paths[i]):
            for n, image_id, k, lang, ids, _, _ in batch.rows():
                if id_hash(image_id) in wanted:
                    rows.setdefault(image_id, []).append((i, k, lang, ids.tolist()))
    out = []
    for g, image_id in enumerate(sorted(rows)):
        entries = found[id_hash(image_id)]
        seen: set = set()
        for i, k, lang, ids in sorted(rows[image_id], key=lambda r: (r[0], r[1])):
            mine = [f for j, _, f in entries if j == i]
            offset = sum(s for j, s, _ in entries if j < i) if mine and all(f & NUMBERED for f in mine) else 0
            extra = {"shard": names[i], "k": k}
            if k + offset in seen:
                extra["duplicate"] = True
            seen.add(k + offset)
            out.append((g, image_id, k + offset, lang, ids, "", extra))
    return out


def write_split(path: str | os.PathLike, rows: Sequence[tuple]) -> None:
    """Write [`find_split_images`][metaclip2.pipeline.stages.split.find_split_images]' rows to `path` in the stage-1 index format (atomically).

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.pipeline.stages.split import load_split, write_split
    >>> tmp = tempfile.TemporaryDirectory()
    >>> write_split(f"{tmp.name}/split.index.bin", [(0, "a", 0, "en", [1], "", {"shard": "s0", "k": 0}),
    ...                                             (0, "a", 1, "de", [0], "", {"shard": "s1", "k": 0})])
    >>> load_split(f"{tmp.name}/split.index.bin", shard="s1")
    [('a', 0, 'en', [1], 's0', 0, False), ('a', 1, 'de', [0], 's1', 0, False)]
    >>> tmp.cleanup()
    """
    with IndexWriter(path) as w:
        for row in rows:
            w.write(*row)


def split_inputs_digest(shards: Mapping[str, tuple[str, str]]) -> str:
    """What a split-images file is made from: one sha256 over ``{shard: (index sha256, images sha256)}``.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.split import split_inputs_digest
    >>> len(split_inputs_digest({"s0": ("a" * 64, "b" * 64)}))
    64
    """
    h = hashlib.sha256()
    for shard in sorted(shards):
        index, images = shards[shard]
        h.update(f"{shard}\t{index}/{images}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def split_images(stage1_dir: str | os.PathLike, names: Sequence[str], out_dir: str | os.PathLike,
                 inputs_sha256: str | None = None, budget: int = _BUDGET) -> dict:  # fmt: skip
    """Stage 2's step for images split across shards: ``out_dir/split.index.bin`` and, last,
    ``out_dir/split.json`` (``images``, ``rows``, ``outputs`` and `inputs_sha256`, by default
    [`split_inputs_digest`][metaclip2.pipeline.stages.split.split_inputs_digest] of the shards' files). Returns what ``split.json`` holds.

    See Also
    --------
    - [`sample_shard`][metaclip2.pipeline.stages.sample.sample_shard] : Stage 3, given the file as ``split=``.

    Examples
    --------
    >>> import json, os, tempfile
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> from metaclip2.pipeline.builds.demo import write_example_pool
    >>> _ = write_example_pool(d)  # metadata/ (en, de) and pool.jsonl: six images
    >>> from metaclip2.pipeline.stages.match import match_shard
    >>> from metaclip2.pipeline.stages.split import split_images
    >>> _ = match_shard(f"{d}/pool.jsonl", f"{d}/metadata", f"{d}/stage1")
    >>> info = split_images(f"{d}/stage1", ["pool"], f"{d}/stage2")   # one shard: nothing is split
    >>> info["images"], sorted(os.listdir(f"{d}/stage2"))
    (0, ['split.index.bin', 'split.json'])
    >>> tmp.cleanup()
    """
    from metaclip2.core.atomic import make_directory, write_json
    from metaclip2.core.fingerprint import file_digest
    from metaclip2.pipeline.stages.files import stage1_paths

    paths = [stage1_paths(stage1_dir, n) for n in names]
    if inputs_sha256 is None:
        inputs_sha256 = split_inputs_digest({n: (file_digest(p["index"])["sha256"], file_digest(p["images"])["sha256"])
                                             for n, p in zip(names, paths)})  # fmt: skip
    rows = find_split_images([p["index"] for p in paths], [p["images"] for p in paths], names, budget)
    out = Path(out_dir)
    make_directory(out)
    (out / SPLIT_RECORD).unlink(missing_ok=True)  # the "done" marker goes first, comes back last
    write_split(out / SPLIT_FILE, rows)
    info = {"inputs_sha256": inputs_sha256, "images": len({r[1] for r in rows}), "rows": len(rows),
            "outputs": {SPLIT_FILE: file_digest(out / SPLIT_FILE)}}  # fmt: skip
    write_json(out / SPLIT_RECORD, info)
    return info


def load_split(path: str | os.PathLike, shard: str | None = None) -> list[tuple]:
    """``(id, k, lang, ids, shard, own k, duplicate)`` of a ``split.index.bin``'s rows; with
    `shard`, only the images that shard holds rows of.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.pipeline.stages.split import load_split, write_split
    >>> tmp = tempfile.TemporaryDirectory()
    >>> write_split(f"{tmp.name}/split.index.bin", [(0, "a", 0, "en", [1], "", {"shard": "s0", "k": 0}),
    ...                                             (0, "a", 1, "en", [2], "", {"shard": "s1", "k": 0})])
    >>> load_split(f"{tmp.name}/split.index.bin", shard="s2")     # s2 holds no row of a split image
    []
    >>> tmp.cleanup()
    """
    mine = None
    if shard is not None:  # a first pass for the ids, so that only this shard's images are held
        mine = set()
        for batch in iter_index(path):
            mine.update(i for i, extra in zip(batch.id, batch.extra) if extra and extra.get("shard") == shard)
    rows = []
    for batch in iter_index(path):
        for _, image_id, k, lang, ids, _, extra in batch.rows():
            if mine is None or image_id in mine:
                extra = extra or {}
                rows.append((image_id, k, lang, ids.tolist(), extra.get("shard"), extra.get("k"), bool(extra.get("duplicate"))))
    return rows
