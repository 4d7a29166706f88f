"""Reading Parquet shards (``.parquet``, ``.pq``): one record per row, row group by row group,
only the layout's and the carried scalar columns (needs pyarrow: ``pip install 'metaclip2[parquet]'``).
"""

from __future__ import annotations

import base64
from typing import Any, Iterator

from metaclip2.core.errors import Metaclip2Error, ParameterError

from metaclip2.pipeline.io.inputs import open_input
from metaclip2.pipeline.io.records import STATUS_KEY, Image, _Damage, _record_keys, _records, _Resolver, import_pyarrow

__all__: list[str] = []


def carryable(t) -> bool:
    """Whether values of Arrow type `t` go through the stage-1 index (as JSON) and back to `t` unchanged."""
    pa, _ = import_pyarrow()
    T = pa.types
    if T.is_string(t) or T.is_large_string(t) or T.is_integer(t) or T.is_boolean(t) or T.is_null(t):
        return True
    if T.is_floating(t):
        return not T.is_float16(t)
    if T.is_list(t) or T.is_large_list(t) or T.is_fixed_size_list(t):
        return carryable(t.value_type)
    if T.is_struct(t):
        return all(carryable(t.field(i).type) for i in range(t.num_fields))
    return False


def _parquet_columns(schema, resolver: _Resolver) -> list[str]:
    """Columns to read: the layout's keys and every carried column of a type the subset keeps.

    The carried columns' Arrow types go to the report (``carried_schema``, an IPC schema in
    base64), so that stage 3 writes them with the types they came with.
    """
    pa, _ = import_pyarrow()
    names = list(schema.names)
    lay = resolver.resolve(set(names)) or resolver.fallback()
    keys = set(_record_keys(lay, resolver.spec))
    spec = resolver.spec
    out, carried, nested = [], [], set()
    for name in names:
        t = schema.field(name).type
        if name in keys or name == STATUS_KEY:
            out.append(name)
            if name in keys or not spec.carries(name):
                continue
        elif not spec.carries(name):
            continue
        elif not carryable(t):
            if spec.keep_keys is not None:  # named in --keep-keys: never a silent drop
                raise ParameterError(f"--keep-keys {name}: column {name} of {resolver.path} is {t}, which the curated "
                                     "subset cannot carry; drop it from --keep-keys")  # fmt: skip
            continue
        else:
            out.append(name)
        carried.append(schema.field(name).remove_metadata())
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t) or pa.types.is_floating(t)
                or pa.types.is_boolean(t) or pa.types.is_null(t)):  # fmt: skip
            nested.add(name)
    resolver.nested = resolver.nested | nested
    resolver.report["carried_schema"] = base64.b64encode(pa.schema(carried).serialize().to_pybytes()).decode("ascii") if carried else None
    return out


def _parquet_objects(path: str, resolver: _Resolver, piece: tuple[int, int] | None = None) -> Iterator[tuple[Any, int | str]]:
    _, pq = import_pyarrow()
    try:
        f = open_input(path, seekable=True)
    except Metaclip2Error:  # an HTTP input that does not exist or did not download: one line, not damage
        raise
    except OSError as e:
        yield _Damage("file", f"{type(e).__name__}: {e}"), "file"
        return
    with f:
        try:
            pf = pq.ParquetFile(f)
            columns = _parquet_columns(pf.schema_arrow, resolver)
        except Metaclip2Error:  # a layout that cannot be told, a --keep-keys column that cannot be carried
            raise
        except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
            yield _Damage("footer", f"{type(e).__name__}: {e}"), "footer"
            return
        first, stop = piece or (0, pf.num_row_groups)  # a stage-1 piece: row groups [first, stop)
        row = sum(pf.metadata.row_group(g).num_rows for g in range(first))
        for g in range(first, stop):
            n = pf.metadata.row_group(g).num_rows
            done = 0
            try:
                for batch in pf.iter_batches(batch_size=8192, row_groups=[g], columns=columns):
                    # column by column to Python lists, then one dict per row: far cheaper than
                    # the batch's own to_pylist(), with the same values
                    names = batch.schema.names
                    lists = [c.to_pylist() for c in batch.columns] or [[()] * batch.num_rows]  # no column: empty rows
                    names = names if batch.num_columns else ()
                    for values in zip(*lists):
                        done += 1
                        yield dict(zip(names, values)), row + done
            except Exception as e:  # noqa: BLE001
                d = _Damage(f"row group {g}", f"{type(e).__name__}: {e}", n - done)
                yield d, d.where
            row += n


def _read_parquet(path: str, max_chars: int, resolver: _Resolver, piece: tuple[int, int] | None = None) -> Iterator[Image]:
    return _records(_parquet_objects(path, resolver, piece), resolver, max_chars)
