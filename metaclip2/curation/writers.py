"""Atomic writers: JSON files, JSON lines, and the curated subset as JSONL or Parquet.

Every file is written to a temporary name beside its target and renamed into place
(:func:`os.replace`) only once complete, so a killed run never leaves a file that looks
finished. Temporary names end in ``.tmp<pid>``; :func:`remove_temporaries` clears the ones a
killed run left behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from metaclip2.curation.readers import import_pyarrow

__all__ = [
    "OUTPUT_FORMATS",
    "CURATED_COLUMNS",
    "json_line",
    "write_json",
    "AtomicFile",
    "JsonlWriter",
    "ParquetWriter",
    "curated_writer",
    "remove_temporaries",
]

OUTPUT_FORMATS = ("jsonl", "parquet")

#: Columns of the curated subset, in order.
CURATED_COLUMNS = ("id", "text", "text_index", "lang", "ids", "keep_probability")


def json_line(obj: Any) -> str:
    """One compact JSON line (keys sorted, UTF-8 kept), with its newline."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


def _tmp(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp{os.getpid()}")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as JSON (sorted keys, indent 1, UTF-8, trailing newline), atomically."""
    path = Path(path)
    with AtomicFile(path) as f:
        f.write((json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8"))
    return path


class AtomicFile:
    """A binary file written under a temporary name and renamed to `path` on success.

    On an exception inside the ``with`` block the temporary file is removed and `path`
    is left as it was.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = _tmp(self.path)
        self._f = open(self.tmp, "wb")

    @property
    def stream(self):
        """The open temporary file (binary), for writers that want a file object."""
        return self._f

    def write(self, data: bytes) -> None:
        self._f.write(data)

    def commit(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self._f.close()
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class _RowWriter:
    """Rows into an :class:`AtomicFile`: committed by :meth:`close`, dropped by :meth:`abort`."""

    def __init__(self, path: str | os.PathLike):
        self._file = AtomicFile(path)
        self.path = self._file.path
        self.rows = 0

    def write(self, row: dict) -> None:
        raise NotImplementedError

    def write_rows(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self.write(row)

    def _finish(self) -> None:
        """Write out what is buffered; the file is committed next."""

    def close(self) -> None:
        self._finish()
        self._file.commit()

    def abort(self) -> None:
        self._file.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class JsonlWriter(_RowWriter):
    """JSON lines (see :func:`json_line`) written atomically to `path`."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._buf: list[str] = []

    def write(self, row: dict) -> None:
        self._buf.append(json_line(row))
        self.rows += 1
        if len(self._buf) >= 4096:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._file.write("".join(self._buf).encode("utf-8"))
            self._buf = []

    _finish = _flush


class ParquetWriter(_RowWriter):
    """The curated subset (:data:`CURATED_COLUMNS`) as a Parquet file, written atomically.

    Column types: ``id``, ``text``, ``lang`` string; ``text_index`` int32; ``ids`` list of
    int32; ``keep_probability`` float64. Needs pyarrow (``pip install 'metaclip2[parquet]'``).
    """

    ROW_GROUP = 65536

    def __init__(self, path: str | os.PathLike):
        pa, pq = import_pyarrow()
        super().__init__(path)
        self._pa = pa
        self.schema = pa.schema(
            [
                ("id", pa.string()),
                ("text", pa.string()),
                ("text_index", pa.int32()),
                ("lang", pa.string()),
                ("ids", pa.list_(pa.int32())),
                ("keep_probability", pa.float64()),
            ]
        )
        self._writer = pq.ParquetWriter(self._file.stream, self.schema, compression="zstd")
        self._cols: dict[str, list] = {c: [] for c in CURATED_COLUMNS}

    def write(self, row: dict) -> None:
        for c in CURATED_COLUMNS:
            self._cols[c].append(row[c])
        self.rows += 1
        if len(self._cols["id"]) >= self.ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._cols["id"]:
            table = self._pa.Table.from_pydict(self._cols, schema=self.schema)
            self._writer.write_table(table, row_group_size=self.ROW_GROUP)
            self._cols = {c: [] for c in CURATED_COLUMNS}

    def _finish(self) -> None:
        self._flush()
        self._writer.close()

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            super().abort()


def curated_writer(path: str | os.PathLike, format: str = "jsonl"):
    """A :class:`JsonlWriter` or :class:`ParquetWriter` for the curated subset."""
    if format == "jsonl":
        return JsonlWriter(path)
    if format == "parquet":
        return ParquetWriter(path)
    raise ValueError(f"format must be one of {OUTPUT_FORMATS}, got {format!r}")


def remove_temporaries(directory: str | os.PathLike) -> int:
    """Delete temporary files (``*.tmp<pid>``) a killed run left in `directory`; returns how many.

    Call only when no writer is running in that directory.
    """
    n = 0
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    for p in directory.iterdir():
        stem, sep, pid = p.name.rpartition(".tmp")
        if sep and stem and pid.isdigit() and p.is_file():
            p.unlink()
            n += 1
    return n
