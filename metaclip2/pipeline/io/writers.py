"""Row writers: JSON lines, and the curated subset as JSONL or Parquet, each file atomic
([`AtomicFile`][metaclip2.core.atomic.AtomicFile]): a killed run never leaves a file that looks finished."""

from __future__ import annotations

import json
import os
from typing import Any

from metaclip2.core.atomic import AtomicFile
from metaclip2.pipeline.io.records import import_pyarrow
from metaclip2.core.errors import ParameterError

__all__ = [
    "OUTPUT_FORMATS",
    "CURATED_COLUMNS",
    "ExtraTypes",
    "carried_columns",
    "json_line",
    "JsonlWriter",
    "ParquetWriter",
    "curated_writer",
]

OUTPUT_FORMATS = ("jsonl", "parquet")

#: Columns of the curated subset, in order.
CURATED_COLUMNS = ("id", "text", "text_index", "lang", "ids", "keep_probability")


def carried_columns(extra: dict | None) -> dict:
    """An input record's carried fields as output columns: a name that clashes with a curated
    column (``lang``, ``ids``, …) is written ``input_<name>``."""
    if not extra:
        return {}
    return {(f"input_{k}" if k in CURATED_COLUMNS else k): v for k, v in extra.items()}


_KIND_ORDER = ("bool", "int", "float", "string")


def _kind(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int" if -(2**63) <= v < 2**63 else "string"
    if isinstance(v, float):
        return "float"
    return "string"


class ExtraTypes:
    """Column types of carried fields, inferred the same way whatever the row order.

    Per column: only booleans → bool; only integers → int64; integers and/or floats →
    float64; anything else (strings, or a mix with strings or booleans) → string (non-strings
    written as JSON); only nulls → string. Columns are sorted by name.
    """

    def __init__(self) -> None:
        self.kinds: dict[str, set] = {}

    def add(self, columns: dict) -> None:
        for k, v in columns.items():
            kinds = self.kinds.setdefault(k, set())
            kind = _kind(v)
            if kind is not None:
                kinds.add(kind)

    def types(self) -> dict[str, str]:
        """Column name → ``"bool"``, ``"int"``, ``"float"`` or ``"string"``, sorted by name."""
        out = {}
        for k in sorted(self.kinds):
            kinds = self.kinds[k]
            if kinds == {"bool"}:
                out[k] = "bool"
            elif kinds == {"int"}:
                out[k] = "int"
            elif kinds and kinds <= {"int", "float"}:
                out[k] = "float"
            else:
                out[k] = "string"
        return out


def _convert(v: Any, kind: str) -> Any:
    if v is None:
        return None
    if kind == "string":
        return v if isinstance(v, str) else json.dumps(v)
    if kind == "float":
        return float(v)
    return v


_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))  # made once: a third faster


def json_line(obj: Any) -> str:
    """One compact JSON line (keys sorted, UTF-8 kept), with its newline."""
    return _ENCODER.encode(obj) + "\n"


class _RowWriter:
    """Rows into an [`AtomicFile`][metaclip2.core.atomic.AtomicFile]: committed by `close`, dropped by `abort`."""

    def __init__(self, path: str | os.PathLike):
        self._file = AtomicFile(path)
        self.path = self._file.path
        self.rows = 0

    def write(self, row: dict) -> None:
        raise NotImplementedError

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
    """JSON lines (see [`json_line`][metaclip2.pipeline.io.writers.json_line]) written atomically to `path`."""

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
    """The curated subset ([`CURATED_COLUMNS`][metaclip2.pipeline.io.writers.CURATED_COLUMNS], then carried columns) as a Parquet file, written atomically.

    Column types: ``id``, ``text``, ``lang`` string; ``text_index`` int32; ``ids`` list of
    int32; ``keep_probability`` float64; carried columns as `extra_types` says (see
    [`ExtraTypes`][metaclip2.pipeline.io.writers.ExtraTypes]), sorted by name. Needs pyarrow (``pip install 'metaclip2[parquet]'``).
    """

    ROW_GROUP = 65536

    def __init__(self, path: str | os.PathLike, extra_types: dict[str, str] | None = None):
        pa, pq = import_pyarrow()
        super().__init__(path)
        self._pa = pa
        arrow = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "string": pa.string()}
        self.extra_types = dict(sorted((extra_types or {}).items()))
        self.columns = CURATED_COLUMNS + tuple(self.extra_types)
        self.schema = pa.schema(
            [
                ("id", pa.string()),
                ("text", pa.string()),
                ("text_index", pa.int32()),
                ("lang", pa.string()),
                ("ids", pa.list_(pa.int32())),
                ("keep_probability", pa.float64()),
            ]
            + [(k, arrow[t]) for k, t in self.extra_types.items()]
        )
        self._writer = pq.ParquetWriter(self._file.stream, self.schema, compression="zstd")
        self._cols: dict[str, list] = {c: [] for c in self.columns}

    def write(self, row: dict) -> None:
        for c in CURATED_COLUMNS:
            self._cols[c].append(row[c])
        for c, kind in self.extra_types.items():
            self._cols[c].append(_convert(row.get(c), kind))
        self.rows += 1
        if len(self._cols["id"]) >= self.ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._cols["id"]:
            table = self._pa.Table.from_pydict(self._cols, schema=self.schema)
            self._writer.write_table(table, row_group_size=self.ROW_GROUP)
            self._cols = {c: [] for c in self.columns}

    def _finish(self) -> None:
        self._flush()
        self._writer.close()

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            super().abort()


def curated_writer(path: str | os.PathLike, output_format: str = "jsonl", extra_types: dict[str, str] | None = None):
    """A [`JsonlWriter`][metaclip2.pipeline.io.writers.JsonlWriter] or [`ParquetWriter`][metaclip2.pipeline.io.writers.ParquetWriter] (with carried columns of `extra_types`) for the curated subset."""
    if output_format == "jsonl":
        return JsonlWriter(path)
    if output_format == "parquet":
        return ParquetWriter(path, extra_types)
    raise ParameterError(f"output_format must be one of {OUTPUT_FORMATS}, got {output_format!r}")
