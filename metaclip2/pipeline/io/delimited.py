"""Reading CSV and TSV url lists (``.csv``, ``.tsv``, optionally gzip-compressed), img2dataset's
input: a header row, then one record per row, read block by block through pyarrow's CSV reader
(needs pyarrow: ``pip install 'metaclip2[parquet]'``).

Every column is read as a string (a list has no types; a caption such as ``1984`` stays text).
Quoted values may hold delimiters and line breaks. A row with the wrong number of fields is
invalid (``malformed``); a stream that stops decoding is damage (the rest is lost).

A list with no id column (the layout's id key, or ``--id-key``, is not in its header) has its
rows numbered as img2dataset numbers them: the id of the row ``r`` (0-based, header not
counted) is ``<file stem>:<r as 9 digits>`` (``urls:000000041``); the file's stem keeps the
ids of several lists apart, since an image is all rows with its id across the pool. img2dataset
itself names the image of row ``r`` of its (single) list ``<r as 9 digits>`` with its default
10,000 samples per shard; give such lists an id column to get exactly its keys.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from metaclip2.core.errors import Metaclip2Error
from metaclip2.pipeline.io.inputs import _open_maybe_gzip
from metaclip2.pipeline.io.records import LAYOUTS, Image, _Bad, _Damage, _records, _Resolver, import_pyarrow

__all__: list[str] = []

_BLOCK = 1 << 20  # bytes per block pyarrow parses: bounds the memory of one read


def _delimiter(path: str, fmt: str) -> str:
    return "\t" if fmt == "tsv" else ","


def _stem(path: str) -> str:
    name = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    for ext in (".csv.gz", ".tsv.gz", ".csv", ".tsv"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _id_key(names: list[str], resolver: _Resolver) -> str | None:
    """The id column to add (row numbers), or None: the header has the id column."""
    spec = resolver.spec
    if spec.id_key:
        return None if spec.id_key in names else spec.id_key
    texts = spec.text_keys
    for id_key, text_keys, _ in LAYOUTS.values():
        if id_key in names and (not texts or all(t in names for t in texts)):
            return None
    for id_key, text_keys, _ in LAYOUTS.values():  # the layout whose texts the header has: its id key
        if all(t in names for t in (texts or text_keys)):
            return id_key
    return None


def _csv_objects(path: str, fmt: str, resolver: _Resolver) -> Iterator[tuple[Any, int | str]]:
    pa, _ = import_pyarrow()
    import pyarrow.csv as pacsv

    def opened():
        f, damage = _open_maybe_gzip(path, path.lower())
        if damage is not None:
            raise _Stop(damage)
        return f

    bad: list = []

    def invalid_row(row) -> str:
        bad.append(row.number)
        return "skip"

    parse = pacsv.ParseOptions(delimiter=_delimiter(path, fmt), newlines_in_values=True, invalid_row_handler=invalid_row)
    try:
        with opened() as f:
            reader = pacsv.open_csv(f, read_options=pacsv.ReadOptions(block_size=_BLOCK), parse_options=parse)
            names = list(reader.schema.names)
        bad.clear()  # the probe of the header parsed a block too: its rows are counted by the read below
    except _Stop as stop:
        yield stop.damage, stop.damage.where
        return
    except Metaclip2Error:  # an HTTP input that does not exist or did not download
        raise
    except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid and others for what is not CSV
        yield _Damage("header", f"{type(e).__name__}: {e}"), "header"
        return
    add_id = _id_key(names, resolver)
    stem = _stem(path)
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False)
    row = 0
    try:
        with opened() as f:
            reader = pacsv.open_csv(f, read_options=pacsv.ReadOptions(block_size=_BLOCK), parse_options=parse,
                                    convert_options=convert)  # fmt: skip
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                for number in bad:  # rows the parser skipped, counted where they were met
                    yield _Bad("malformed"), f"line {number}" if number is not None else f"block from row {row + 1}"
                bad.clear()
                for obj in batch.to_pylist():
                    if add_id is not None:
                        obj[add_id] = f"{stem}:{row:09d}"
                    row += 1
                    yield obj, row
            for number in bad:
                yield _Bad("malformed"), f"line {number}" if number is not None else f"block from row {row + 1}"
    except _Stop as stop:
        yield stop.damage, stop.damage.where
    except Metaclip2Error:
        raise
    except Exception as e:  # noqa: BLE001 - a cut or corrupt stream: the rest is lost
        yield _Damage(f"row {row + 1}", f"{type(e).__name__}: {e}; the rest of the file is lost"), f"row {row + 1}"


class _Stop(Exception):
    def __init__(self, damage: _Damage):
        self.damage = damage


def _read_delimited(fmt: str):
    def read(path: str, max_chars: int, resolver: _Resolver) -> Iterator[Image]:
        return _records(_csv_objects(os.fspath(path), fmt, resolver), resolver, max_chars)

    return read
