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
    "output_columns",
    "json_line",
    "JsonlWriter",
    "ParquetWriter",
    "curated_writer",
]

OUTPUT_FORMATS = ("jsonl", "parquet")

#: Columns of the curated subset, in order.
CURATED_COLUMNS = ("id", "text", "text_index", "lang", "ids", "keep_probability")


def carried_columns(extra: dict | None, id_column: str = "id") -> dict:
    """An input record's carried fields as output columns: a name that clashes with a curated
    column (``lang``, ``ids``, …; the id column is named `id_column`) is written ``input_<name>``.

    Examples
    --------
    >>> from metaclip2.pipeline.io.writers import carried_columns
    >>> carried_columns({"url": "u", "lang": "de", "id": 3}, id_column="uid")
    {'url': 'u', 'input_lang': 'de', 'id': 3}
    """
    if not extra:
        return {}
    if id_column == "id":
        return {(f"input_{k}" if k in CURATED_COLUMNS else k): v for k, v in extra.items()}
    clash = {id_column, *CURATED_COLUMNS[1:]}
    return {(f"input_{k}" if k in clash else k): v for k, v in extra.items()}


def output_columns(id_key: str | None) -> tuple:
    """[`CURATED_COLUMNS`][metaclip2.pipeline.io.writers.CURATED_COLUMNS] with the id column named as the input named it (`id_key`).

    Examples
    --------
    >>> from metaclip2.pipeline.io.writers import output_columns
    >>> output_columns("uid")[:3], output_columns(None)[:3]
    (('uid', 'text', 'text_index'), ('id', 'text', 'text_index'))
    """
    if not id_key or id_key in CURATED_COLUMNS[1:] or id_key.startswith("input_"):
        id_key = "id"
    return (id_key,) + CURATED_COLUMNS[1:]


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


def _convert(v: Any, kind: Any) -> Any:
    if v is None or not isinstance(kind, str):  # an Arrow type: the value as the input gave it
        return v
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
    """JSON lines (see [`json_line`][metaclip2.pipeline.io.writers.json_line]) written atomically to `path`; a row's
    ``id`` is written under `id_column`."""

    def __init__(self, path: str | os.PathLike, id_column: str = "id"):
        super().__init__(path)
        self._buf: list[str] = []
        self._id = id_column

    def write(self, row: dict) -> None:
        if self._id != "id":
            row[self._id] = row.pop("id")
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

    Column types: ``id`` (named `id_column`), ``text``, ``lang`` string; ``text_index`` int32;
    ``ids`` list of int32; ``keep_probability`` float64; carried columns as `extra_types` says
    (``"bool"``, ``"int"``, ``"float"``, ``"string"``: see [`ExtraTypes`][metaclip2.pipeline.io.writers.ExtraTypes]; or the Arrow type
    the input gave the column), sorted by name. Needs pyarrow (``pip install 'metaclip2[parquet]'``).
    """

    ROW_GROUP = 65536

    def __init__(self, path: str | os.PathLike, extra_types: dict | None = None, id_column: str = "id"):
        pa, pq = import_pyarrow()
        super().__init__(path)
        self._pa = pa
        arrow = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "string": pa.string()}
        self.extra_types = dict(sorted((extra_types or {}).items()))
        self.columns = CURATED_COLUMNS + tuple(self.extra_types)
        self._id = id_column
        self.schema = pa.schema(
            [
                (id_column, pa.string()),
                ("text", pa.string()),
                ("text_index", pa.int32()),
                ("lang", pa.string()),
                ("ids", pa.list_(pa.int32())),
                ("keep_probability", pa.float64()),
            ]
            + [(k, arrow[t] if isinstance(t, str) else t) for k, t in self.extra_types.items()]
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
            cols = self._cols if self._id == "id" else {(self._id if c == "id" else c): v for c, v in self._cols.items()}
            table = self._pa.Table.from_pydict(cols, schema=self.schema)
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


def curated_writer(path: str | os.PathLike, output_format: str = "jsonl", extra_types: dict | None = None, id_column: str = "id"):
    """A [`JsonlWriter`][metaclip2.pipeline.io.writers.JsonlWriter] or [`ParquetWriter`][metaclip2.pipeline.io.writers.ParquetWriter] (with carried columns of `extra_types`) for the curated subset."""
    if output_format == "jsonl":
        return JsonlWriter(path, id_column)
    if output_format == "parquet":
        return ParquetWriter(path, extra_types, id_column)
    raise ParameterError(f"output_format must be one of {OUTPUT_FORMATS}, got {output_format!r}")
