"""The stage-1 index of a shard: its matched pairs, read back by stage 3 and by sweeps.

One row per *matched* pair, in input order: ``n`` (ordinal of the record group in the shard), ``id``
(image id), ``k`` (alt-text index), ``lang`` (metadata language), ``ids`` (matched entry
ids), ``text``, ``extra`` (the image's carried fields, or None). Readers get rows in
[`IndexBatch`][metaclip2.pipeline.io.index.IndexBatch] es of whole images, as arrays (entry ids in CSR form), so consumers never
parse rows one by one. "Whole image" here is a run of rows with one ``n`` (the rows read from
one record, or from consecutive records of one id); the same id further down the shard is
another run, so consumers that decide per image group rows by id over the whole shard
([`sample_shard`][metaclip2.pipeline.stages.sample.sample_shard], the sweep).

The storage format is private to this module: use [`IndexWriter`][metaclip2.pipeline.io.index.IndexWriter] and
[`iter_index`][metaclip2.pipeline.io.index.iter_index]. It is binary and chunked (no pickle, no per-row parsing)::

    file   := MAGIC chunk*
    chunk  := b"CHNK" meta_len:u32 payload_len:u64 crc32(meta + payload):u32 meta payload
    meta   := JSON {"rows", "n0", "langs": [...], "arrays": [[name, dtype, length], ...],
                    "blobs": [id, extra, text byte lengths]}
    payload:= per image (run of rows with one n, id, extra): n - n0, rows, id_len, extra_len
              per row: k, lang (code into "langs"), n_ids, then ids (all rows), text_len
              id bytes, extra bytes, text bytes (UTF-8; extra is sorted-key JSON, empty for None)

Integer arrays are little-endian in the smallest unsigned type that holds the chunk's values
(``meta["arrays"]`` names it), so an index costs a few bytes per row beyond its texts. A chunk holds whole images (of the final index; the temporary
language runs of stage 1 use the same chunks without that rule), at most about
``chunk_rows`` rows, so writing needs memory for one chunk only, and equal rows give equal
bytes.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

import numpy as np

from metaclip2.core.atomic import AtomicFile
from metaclip2.core.errors import DataError
from metaclip2.core.jsonfile import parse_json
from metaclip2.core.regularfile import open_regular

__all__ = ["INDEX_SUFFIX", "IndexBatch", "IndexWriter", "iter_index", "iter_chunks", "append_rows"]

#: File name suffix of a shard's index (``<shard><INDEX_SUFFIX>``).
INDEX_SUFFIX = ".index.bin"

_MAGIC = b"MC2INDEX/2\n\x00"
_CHUNK_TAG = b"CHNK"
_HEAD = struct.Struct("<4sIQI")  # tag, meta length, payload length, crc32
_CHUNK_ROWS = 8192
_CHUNK_BYTES = 32 << 20  # text characters of a chunk: bounds its memory
_REPAIR = "delete the shard's stage-1 files and run stage 1 again"


@dataclass
class IndexBatch:
    """Consecutive index rows, whole images only.

    Attributes
    ----------
    n : ndarray of int64
        Image ordinal in the shard, non-decreasing.
    k : ndarray of int32
        Alt-text index within the image.
    lang : list of str
        Metadata language of each row.
    offsets : ndarray of int64
        CSR offsets (``len(rows) + 1``): row ``r``'s entry ids are ``ids[offsets[r]:offsets[r+1]]``.
    ids : ndarray of int32
        Matched entry ids.
    id : list of str
        Image id of each row.
    text : list of str
    extra : list of (dict or None)
        The image's carried fields, per row.
    lang_code : ndarray of uint16, optional
        ``lang[r] == languages[lang_code[r]]``: languages as small integers, for vectorised
        grouping.
    languages : list of str, optional
        The code table of `lang_code` (sorted).

    See Also
    --------
    - [`iter_index`][metaclip2.pipeline.io.index.iter_index] : Reads an index as batches.
    - [`IndexWriter`][metaclip2.pipeline.io.index.IndexWriter] : Writes one.

    Examples
    --------
    Image ``a`` has two matched alt-texts (English and German), image ``c`` one:

    >>> import tempfile
    >>> from metaclip2.pipeline.io.index import IndexWriter, iter_index
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> with IndexWriter(f"{d}/pool.index.bin") as w:
    ...     w.write(0, "a", 0, "en", [0, 2], "a red dog")
    ...     w.write(0, "a", 1, "de", [0], "ein Hund")
    ...     w.write(2, "c", 0, "en", [1], "a cat")
    >>> [batch] = iter_index(f"{d}/pool.index.bin")
    >>> len(batch), batch.id, batch.lang, batch.k.tolist()
    (3, ['a', 'a', 'c'], ['en', 'de', 'en'], [0, 1, 0])
    >>> batch.offsets.tolist(), batch.row_ids(0).tolist(), batch.image_starts().tolist()
    ([0, 2, 3, 4], [0, 2], [0, 2])
    >>> batch.languages, batch.lang_code.tolist()
    (['de', 'en'], [1, 0, 1])
    >>> [(n, id_, k, lang, ids.tolist(), text) for n, id_, k, lang, ids, text, _ in batch.slice(2, 3).rows()]
    [(2, 'c', 0, 'en', [1], 'a cat')]
    >>> tmp.cleanup()
    """

    n: np.ndarray
    k: np.ndarray
    lang: list
    offsets: np.ndarray
    ids: np.ndarray
    id: list
    text: list
    extra: list
    lang_code: np.ndarray | None = None
    languages: list | None = None

    def __len__(self) -> int:
        return len(self.n)

    def row_ids(self, r: int) -> np.ndarray:
        """Entry ids of row `r`."""
        return self.ids[self.offsets[r] : self.offsets[r + 1]]

    def image_starts(self) -> np.ndarray:
        """Row positions where a new image starts (always includes 0 when non-empty)."""
        if not len(self.n):
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.r_[True, self.n[1:] != self.n[:-1]])

    def rows(self) -> Iterator[tuple]:
        """The rows as ``(n, id, k, lang, ids, text, extra)`` tuples (the arguments of [`IndexWriter.write`][metaclip2.pipeline.io.index.IndexWriter.write])."""
        n, k, o = self.n.tolist(), self.k.tolist(), self.offsets.tolist()
        for r in range(len(n)):
            yield n[r], self.id[r], k[r], self.lang[r], self.ids[o[r] : o[r + 1]], self.text[r], self.extra[r]

    def slice(self, a: int, b: int) -> "IndexBatch":
        """Rows ``a:b`` as a batch."""
        o = self.offsets[a : b + 1]
        return IndexBatch(
            n=self.n[a:b], k=self.k[a:b], lang=self.lang[a:b], offsets=o - o[0], ids=self.ids[o[0] : o[-1]],
            id=self.id[a:b], text=self.text[a:b], extra=self.extra[a:b],
            lang_code=None if self.lang_code is None else self.lang_code[a:b], languages=self.languages,
        )  # fmt: skip


class _ExtraCodec:
    """JSON of carried fields, encoded once per image (consecutive rows share the object)."""

    def __init__(self) -> None:
        self._obj: object = None
        self._bytes = b""

    def encode(self, extra: dict | None) -> bytes:
        if not extra:
            return b""
        if extra is not self._obj:
            self._obj = extra
            self._bytes = json.dumps(extra, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return self._bytes


def _pack(a: np.ndarray) -> tuple[str, bytes]:
    """Integers in the smallest little-endian dtype that holds them (chosen per chunk)."""
    if len(a) and a.min() < 0:
        return "<i8", a.astype("<i8").tobytes()
    top = int(a.max()) if len(a) else 0
    dtype = "<u1" if top < 1 << 8 else "<u2" if top < 1 << 16 else "<u4" if top < 1 << 32 else "<u8"
    return dtype, a.astype(dtype).tobytes()


def _lengths(parts: Sequence) -> np.ndarray:
    return np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))


def encode_rows(rows: Sequence[tuple], codec: _ExtraCodec | None = None) -> bytes:
    """One chunk holding `rows` (``(n, id, k, lang, ids, text, extra)`` tuples), as bytes.

    Consecutive rows of one image (same ``n``, ``id`` and ``extra``) store those once.
    """
    codec = codec or _ExtraCodec()
    r = len(rows)
    langs = sorted({row[3] for row in rows})
    code = {lang: i for i, lang in enumerate(langs)}
    # image groups: runs of rows with the same n, id and extra
    g_n, g_rows, g_id, g_extra = [], [], [], []
    for row in rows:
        extra = codec.encode(row[6])
        if g_n and g_n[-1] == row[0] and g_id[-1] == row[1] and g_extra[-1] == extra:
            g_rows[-1] += 1
        else:
            g_n.append(row[0])
            g_rows.append(1)
            g_id.append(row[1])
            g_extra.append(extra)
    n = np.asarray(g_n, dtype=np.int64)
    n0 = int(n.min()) if len(n) else 0
    id_b = [i.encode("utf-8", "surrogatepass") for i in g_id]
    text_b = [row[5].encode("utf-8", "surrogatepass") for row in rows]
    id_parts = [np.asarray(row[4], dtype=np.int64) for row in rows]
    ids = np.concatenate(id_parts) if id_parts else np.zeros(0, dtype=np.int64)
    columns = [
        ("n", n - n0),
        ("rows", np.asarray(g_rows, dtype=np.int64)),
        ("id_len", _lengths(id_b)),
        ("extra_len", _lengths(g_extra)),
        ("k", np.fromiter((row[2] for row in rows), dtype=np.int64, count=r)),
        ("lang", np.fromiter((code[row[3]] for row in rows), dtype=np.int64, count=r)),
        ("n_ids", _lengths(id_parts)),
        ("ids", ids),
        ("text_len", _lengths(text_b)),
    ]
    arrays, parts = [], []
    for name, a in columns:
        dtype, raw = _pack(a)
        arrays.append([name, dtype, len(a)])
        parts.append(raw)
    blobs = [b"".join(id_b), b"".join(g_extra), b"".join(text_b)]
    meta = json.dumps({"rows": r, "n0": n0, "langs": langs, "arrays": arrays, "blobs": [len(b) for b in blobs]},
                      ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")  # fmt: skip
    payload = b"".join(parts + blobs)
    crc = zlib.crc32(payload, zlib.crc32(meta))
    return _HEAD.pack(_CHUNK_TAG, len(meta), len(payload), crc) + meta + payload


def append_rows(path: str | os.PathLike, rows: Sequence[tuple], chunk_rows: int = 4096) -> None:
    """Append `rows` to a scratch index file (made if absent) in chunks of `chunk_rows`.

    For temporary runs read back with [`iter_chunks`][metaclip2.pipeline.io.index.iter_chunks]; chunks need not hold whole images.

    See Also
    --------
    - [`iter_chunks`][metaclip2.pipeline.io.index.iter_chunks] : Reads the chunks back as written.
    - [`IndexWriter`][metaclip2.pipeline.io.index.IndexWriter] : The final index, whole images per chunk.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.pipeline.io.index import append_rows, iter_chunks
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> append_rows(f"{d}/en.run", [(0, "a", 0, "en", [0, 2], "a red dog", None), (2, "c", 0, "en", [1], "a cat", None)])
    >>> append_rows(f"{d}/en.run", [(5, "f", 0, "en", [0], "dog", None)])
    >>> [chunk.id for chunk in iter_chunks(f"{d}/en.run")]
    [['a', 'c'], ['f']]
    >>> tmp.cleanup()
    """
    codec = _ExtraCodec()
    with open(path, "ab") as f:
        if f.tell() == 0:
            f.write(_MAGIC)
        for a in range(0, len(rows), chunk_rows):
            f.write(encode_rows(rows[a : a + chunk_rows], codec))


class IndexWriter:
    """Writes a shard's index atomically; rows must come in input order.

    Use as a context manager; the file appears only when the block ends without error.
    Memory holds one chunk (about ``chunk_rows`` rows) at a time.

    See Also
    --------
    - [`iter_index`][metaclip2.pipeline.io.index.iter_index] : Reads the index back.
    - [`match_shard`][metaclip2.pipeline.stages.match.match_shard] : Stage 1, which writes a shard's index.

    Examples
    --------
    Rows are ``(n, id, k, lang, ids, text, extra)``: image ordinal, image id, alt-text index,
    metadata language, matched entry ids, alt-text and the image's carried fields:

    >>> import os, tempfile
    >>> from metaclip2.pipeline.io.index import IndexWriter, iter_index
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> with IndexWriter(f"{d}/pool.index.bin") as w:
    ...     w.write(0, "a", 0, "en", [0, 2], "a red dog")
    ...     w.write(2, "c", 0, "en", [1], "a cat", {"url": "https://example.org/c.jpg"})
    >>> w.rows, [batch.extra for batch in iter_index(f"{d}/pool.index.bin")]
    (2, [[None, {'url': 'https://example.org/c.jpg'}]])

    An error inside the block leaves no file:

    >>> with IndexWriter(f"{d}/bad.index.bin") as w:
    ...     w.write(0, "a", 0, "en", [0], "a dog")
    ...     raise RuntimeError("the worker stopped")
    Traceback (most recent call last):
    ...
    RuntimeError: the worker stopped
    >>> os.path.exists(f"{d}/bad.index.bin")
    False
    >>> tmp.cleanup()
    """

    def __init__(self, path: str | os.PathLike, chunk_rows: int = _CHUNK_ROWS):
        self._file = AtomicFile(path)
        self.path = self._file.path
        self.rows = 0
        self._chunk_rows = int(chunk_rows)
        self._buf: list[tuple] = []
        self._text_bytes = 0
        self._codec = _ExtraCodec()
        self._file.write(_MAGIC)

    def write(self, n: int, id: str, k: int, lang: str, ids, text: str, extra: dict | None = None) -> None:
        n = int(n)
        # a chunk ends only between images, so readers get whole images chunk by chunk
        if self._buf and n != self._buf[-1][0] and (len(self._buf) >= self._chunk_rows or self._text_bytes >= _CHUNK_BYTES):
            self._flush()
        self._buf.append((n, id, int(k), lang, ids, text, extra or None))
        self._text_bytes += len(text)
        self.rows += 1

    def _flush(self) -> None:
        if self._buf:
            self._file.write(encode_rows(self._buf, self._codec))
            self._buf = []
            self._text_bytes = 0

    def __enter__(self) -> "IndexWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._flush()
            self._file.commit()
        else:
            self._file.abort()


def _cumsum0(a: np.ndarray) -> np.ndarray:
    o = np.zeros(len(a) + 1, dtype=np.int64)
    np.cumsum(a, out=o[1:])
    return o


# The chunk's integer arrays, in payload order: per image group, then per row.
_GROUP_COLUMNS = ("n", "rows", "id_len", "extra_len")
_ROW_COLUMNS = ("k", "lang", "n_ids")
_COLUMNS = _GROUP_COLUMNS + _ROW_COLUMNS + ("ids", "text_len")
_DTYPES = {"<u1", "<u2", "<u4", "<u8", "<i8"}
_MAX_META = 16 << 20  # a chunk's metadata is a few hundred bytes; more is damage
_MAX_N = 1 << 62  # image ordinals and lengths: far beyond any shard, safe in int64 sums


def _is_int(v, top: int = _MAX_N) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= top


def _meta_problem(meta) -> str | None:
    """What is wrong with a chunk's metadata (types and ranges), or None."""
    if not isinstance(meta, dict):
        return "metadata is not a JSON object"
    missing = [k for k in ("rows", "n0", "langs", "arrays", "blobs") if k not in meta]
    if missing:
        return f"metadata lacks {', '.join(missing)}"
    if not _is_int(meta["rows"]) or not _is_int(meta["n0"]):
        return "rows or n0 is not a count"
    langs = meta["langs"]
    if not (isinstance(langs, list) and all(isinstance(x, str) for x in langs) and len(set(langs)) == len(langs)):
        return "langs is not a list of distinct language codes"
    arrays = meta["arrays"]
    if not (isinstance(arrays, list) and len(arrays) == len(_COLUMNS)):
        return "arrays does not list the chunk's columns"
    for spec, name in zip(arrays, _COLUMNS):
        if not (isinstance(spec, list) and len(spec) == 3 and spec[0] == name and spec[1] in _DTYPES and _is_int(spec[2])):
            return f"array {name!r} is not described as [name, dtype, length]"
    blobs = meta["blobs"]
    if not (isinstance(blobs, list) and len(blobs) == 3 and all(_is_int(b) for b in blobs)):
        return "blobs is not three byte lengths"
    return None


def _decode(path: Path, at: int, meta: dict, payload: bytes) -> IndexBatch:
    def damaged(what: str) -> DataError:
        return DataError(f"{path}: damaged stage-1 index chunk at byte {at} ({what}): {_REPAIR}")

    problem = _meta_problem(meta)
    if problem is not None:
        raise damaged(problem)
    specs = meta["arrays"]
    # every length is checked against the payload before an array is made
    if sum(np.dtype(dtype).itemsize * count for _, dtype, count in specs) + sum(meta["blobs"]) != len(payload):
        raise damaged("declared lengths do not fit the payload")
    r, langs = meta["rows"], meta["langs"]
    pos = 0
    cols = {}
    for name, dtype, count in specs:
        a = np.frombuffer(payload, dtype=dtype, count=count, offset=pos)
        pos += a.nbytes
        if dtype == "<u8" and len(a) and int(a.max()) > _MAX_N or dtype == "<i8" and len(a) and int(a.min()) < 0:
            raise damaged(f"array {name!r} holds values out of range")
        cols[name] = a.astype(np.int64)
    blobs = []
    for size in meta["blobs"]:
        blobs.append(payload[pos : pos + size])
        pos += size
    g_rows = cols["rows"]
    groups = len(cols["n"])
    if any(len(cols[c]) != groups for c in _GROUP_COLUMNS) or any(len(cols[c]) != r for c in _ROW_COLUMNS + ("text_len",)):
        raise damaged("its columns' lengths disagree")
    if (groups and int(g_rows.min()) < 1) or int(g_rows.sum()) != r:
        raise damaged(f"image groups do not hold its {r} rows")
    if np.any(np.diff(cols["n"]) < 0) or (groups and meta["n0"] + int(cols["n"][-1]) > _MAX_N):
        raise damaged("image ordinals out of order or out of range")
    if r and int(cols["lang"].max()) >= len(langs):
        raise damaged(f"a language code {int(cols['lang'].max())} beyond its {len(langs)} languages")
    if len(cols["ids"]) and int(cols["ids"].max()) > np.iinfo(np.int32).max:
        raise damaged("an entry id out of range")
    if r and int(cols["k"].max()) > np.iinfo(np.int32).max:
        raise damaged("an alt-text index out of range")
    id_o, extra_o, text_o, ids_o = (_cumsum0(cols[c]) for c in ("id_len", "extra_len", "text_len", "n_ids"))
    if ids_o[-1] != len(cols["ids"]) or [id_o[-1], extra_o[-1], text_o[-1]] != [len(b) for b in blobs]:
        raise damaged("inconsistent lengths")
    ib, eb, tb = blobs
    io, eo, to = id_o.tolist(), extra_o.tolist(), text_o.tolist()
    try:
        g_ids = [ib[io[g] : io[g + 1]].decode("utf-8", "surrogatepass") for g in range(groups)]
        text = [tb[to[i] : to[i + 1]].decode("utf-8", "surrogatepass") for i in range(r)]
    except UnicodeDecodeError:
        raise damaged("an id or text is not UTF-8") from None
    g_extra = []
    for g in range(groups):
        if eo[g + 1] == eo[g]:
            g_extra.append(None)
            continue
        extra = parse_json(eb[eo[g] : eo[g + 1]], f"{path}: stage-1 index chunk at byte {at} (carried fields)", _REPAIR)
        if not isinstance(extra, dict):
            raise damaged("carried fields are not a JSON object")
        g_extra.append(extra)
    reps = g_rows.tolist()
    id_: list = []
    extra_rows: list = []
    for g, m in enumerate(reps):
        id_ += [g_ids[g]] * m
        extra_rows += [g_extra[g]] * m  # rows of an image share one dict, as the writer was given
    code = cols["lang"].astype(np.uint16)
    return IndexBatch(
        n=np.repeat(cols["n"] + meta["n0"], g_rows), k=cols["k"].astype(np.int32), lang=[langs[c] for c in code.tolist()],
        offsets=ids_o, ids=cols["ids"].astype(np.int32), id=id_, extra=extra_rows, text=text, lang_code=code, languages=langs,
    )  # fmt: skip


def _read_exact(f: BinaryIO, size: int) -> bytes:
    data = f.read(size)
    return data if len(data) == size else b""


def iter_chunks(path: str | os.PathLike) -> Iterator[IndexBatch]:
    """The chunks of an index file, one [`IndexBatch`][metaclip2.pipeline.io.index.IndexBatch] each, as written.

    Every chunk is checked before it is used: its checksum, its declared lengths against the
    file's size (before anything is allocated), and every field of its metadata (types,
    ranges, lengths that add up, language codes within its languages).

    Raises
    ------
    MissingInputError
        The file does not exist.
    DataError
        Not an index (or not a regular file), or a damaged or truncated chunk (the message
        names the file and the chunk's byte offset).

    See Also
    --------
    - [`iter_index`][metaclip2.pipeline.io.index.iter_index] : Batches of a chosen size, whole images each.
    - [`append_rows`][metaclip2.pipeline.io.index.append_rows] : Writes the chunks of a scratch file.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.pipeline.io.index import append_rows, iter_chunks
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> rows = [(0, "a", 0, "en", [0, 2], "a red dog", None), (2, "c", 0, "en", [1], "a cat", None),
    ...         (5, "f", 0, "en", [0], "dog", None)]
    >>> append_rows(f"{d}/en.run", rows, chunk_rows=2)
    >>> [(len(chunk), chunk.n.tolist()) for chunk in iter_chunks(f"{d}/en.run")]
    [(2, [0, 2]), (1, [5])]
    >>> with open(f"{d}/notes.txt", "w") as f:
    ...     _ = f.write("not an index")
    >>> next(iter_chunks(f"{d}/notes.txt"))
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: .../notes.txt is not a metaclip2 stage-1 index (or one of an older version): ...
    >>> tmp.cleanup()
    """
    path = Path(path)
    with open_regular(path, _REPAIR) as f:
        size = os.fstat(f.fileno()).st_size
        if f.read(len(_MAGIC)) != _MAGIC:
            raise DataError(f"{path} is not a metaclip2 stage-1 index (or one of an older version): {_REPAIR}")
        at = len(_MAGIC)
        while True:
            head = f.read(_HEAD.size)
            if not head:
                return
            if len(head) != _HEAD.size:
                raise DataError(f"{path}: truncated stage-1 index chunk at byte {at}: {_REPAIR}")
            tag, meta_len, payload_len, crc = _HEAD.unpack(head)
            if tag != _CHUNK_TAG:
                raise DataError(f"{path}: damaged stage-1 index chunk at byte {at}: {_REPAIR}")
            if meta_len > _MAX_META or meta_len + payload_len > size - (at + _HEAD.size):
                raise DataError(f"{path}: truncated stage-1 index chunk at byte {at} (it declares {meta_len + payload_len} "
                                f"bytes, the file holds {max(0, size - at - _HEAD.size)} after its head): {_REPAIR}")  # fmt: skip
            meta_raw = _read_exact(f, meta_len)
            payload = _read_exact(f, payload_len)
            if (meta_len and not meta_raw) or (payload_len and not payload):
                raise DataError(f"{path}: truncated stage-1 index chunk at byte {at}: {_REPAIR}")
            if zlib.crc32(payload, zlib.crc32(meta_raw)) != crc:
                raise DataError(f"{path}: damaged stage-1 index chunk at byte {at} (checksum mismatch): {_REPAIR}")
            meta = parse_json(meta_raw, f"{path}: stage-1 index chunk at byte {at} (metadata)", _REPAIR)
            yield _decode(path, at, meta, payload)
            at += _HEAD.size + meta_len + payload_len


def iter_index(path: str | os.PathLike, batch_rows: int = 8192) -> Iterator[IndexBatch]:
    """The index's rows as [`IndexBatch`][metaclip2.pipeline.io.index.IndexBatch] es of about `batch_rows` rows, whole images each.

    Raises
    ------
    DataError
        A damaged or truncated chunk, or a file that is not an index (the message names the file).

    See Also
    --------
    - [`IndexBatch`][metaclip2.pipeline.io.index.IndexBatch] : What each batch holds.
    - [`sample_shard`][metaclip2.pipeline.stages.sample.sample_shard] : Stage 3, which reads a shard's index.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.pipeline.io.index import IndexWriter, iter_index
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> with IndexWriter(f"{d}/pool.index.bin") as w:
    ...     w.write(0, "a", 0, "en", [0, 2], "a red dog")
    ...     w.write(0, "a", 1, "de", [0], "ein Hund")
    ...     w.write(2, "c", 0, "en", [1], "a cat")
    >>> [batch.id for batch in iter_index(f"{d}/pool.index.bin", batch_rows=1)]    # never half an image
    [['a', 'a'], ['c']]
    >>> tmp.cleanup()
    """
    for chunk in iter_chunks(path):
        if len(chunk) <= batch_rows:
            yield chunk
            continue
        starts = chunk.image_starts()
        a = 0
        while a < len(chunk):
            # first image start at least batch_rows past a, else the end
            j = int(np.searchsorted(starts, a + batch_rows))
            b = int(starts[j]) if j < len(starts) else len(chunk)
            yield chunk.slice(a, b)
            a = b
