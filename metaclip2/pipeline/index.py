"""The stage-1 index of a shard: its matched pairs, read back by stage 3 and by sweeps.

One row per *matched* pair, in input order: ``n`` (image ordinal in the shard), ``id``
(image id), ``k`` (alt-text index), ``lang`` (metadata language), ``ids`` (matched entry
ids), ``text``, ``extra`` (the image's carried fields, or None). Readers get rows in
:class:`IndexBatch` es of whole images, as arrays (entry ids in CSR form), so consumers never
parse rows one by one.

The storage format is private to this module: use :class:`IndexWriter` and
:func:`iter_index`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from metaclip2.core.atomic import AtomicFile
from metaclip2.core.errors import DataError

__all__ = ["INDEX_SUFFIX", "IndexBatch", "IndexWriter", "iter_index"]

#: File name suffix of a shard's index (``<shard><INDEX_SUFFIX>``).
INDEX_SUFFIX = ".index.jsonl"


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
    """

    n: np.ndarray
    k: np.ndarray
    lang: list
    offsets: np.ndarray
    ids: np.ndarray
    id: list
    text: list
    extra: list

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


class IndexWriter:
    """Writes a shard's index atomically; rows must come in input order.

    Use as a context manager; the file appears only when the block ends without error.
    """

    def __init__(self, path: str | os.PathLike):
        self._file = AtomicFile(path)
        self.path = self._file.path
        self.rows = 0
        self._buf: list[str] = []

    def write(self, n: int, id: str, k: int, lang: str, ids, text: str, extra: dict | None = None) -> None:
        row = {"n": int(n), "id": id, "k": int(k), "lang": lang, "ids": [int(i) for i in ids], "text": text}
        if extra:
            row["extra"] = extra
        self._buf.append(json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n")
        self.rows += 1
        if len(self._buf) >= 4096:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._file.write("".join(self._buf).encode("utf-8"))
            self._buf = []

    def __enter__(self) -> "IndexWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._flush()
            self._file.commit()
        else:
            self._file.abort()


def iter_index(path: str | os.PathLike, batch_rows: int = 8192) -> Iterator[IndexBatch]:
    """The index's rows as :class:`IndexBatch` es of about `batch_rows` rows, whole images each.

    Raises
    ------
    DataError
        A damaged row (the message names the file and line).
    """
    path = Path(path)
    rows: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{line_no}: damaged stage-1 index row ({e}): delete the shard's stage-1 files and run stage 1 again") from None
            if len(rows) >= batch_rows and row["n"] != rows[-1]["n"]:
                yield _batch(rows)
                rows = []
            rows.append(row)
    if rows:
        yield _batch(rows)


def _batch(rows: list[dict]) -> IndexBatch:
    lengths = np.fromiter((len(r["ids"]) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return IndexBatch(
        n=np.fromiter((r["n"] for r in rows), dtype=np.int64, count=len(rows)),
        k=np.fromiter((r["k"] for r in rows), dtype=np.int32, count=len(rows)),
        lang=[r["lang"] for r in rows],
        offsets=offsets,
        ids=np.fromiter((i for r in rows for i in r["ids"]), dtype=np.int32, count=int(offsets[-1])),
        id=[r["id"] for r in rows],
        text=[r["text"] for r in rows],
        extra=[r.get("extra") for r in rows],
    )
