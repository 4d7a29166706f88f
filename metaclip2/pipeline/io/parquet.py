"""Reading Parquet shards (``.parquet``, ``.pq``): one record per row, row group by row group,
only the layout's and the carried scalar columns (needs pyarrow: ``pip install 'metaclip2[parquet]'``).
"""

from __future__ import annotations

from typing import Any, Iterator

from metaclip2.pipeline.io.inputs import open_input
from metaclip2.pipeline.io.records import STATUS_KEY, Image, LayoutError, _Damage, _record_keys, _records, _Resolver, import_pyarrow

__all__: list[str] = []


def _parquet_columns(schema, resolver: _Resolver) -> list[str]:
    """Columns to read: the layout's keys and every carried scalar column."""
    pa, _ = import_pyarrow()
    names = list(schema.names)
    lay = resolver.resolve(set(names)) or resolver.fallback()
    keys = set(_record_keys(lay, resolver.spec))
    scalar = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_null)
    out = []
    for name in names:
        t = schema.field(name).type
        if name in keys or name == STATUS_KEY or (resolver.spec.carries(name) and any(f(t) for f in scalar)):
            out.append(name)
    return out


def _parquet_objects(path: str, resolver: _Resolver) -> Iterator[tuple[Any, int | str]]:
    _, pq = import_pyarrow()
    try:
        f = open_input(path)
    except OSError as e:
        yield _Damage("file", f"{type(e).__name__}: {e}"), "file"
        return
    with f:
        try:
            pf = pq.ParquetFile(f)
            columns = _parquet_columns(pf.schema_arrow, resolver)
        except LayoutError:
            raise
        except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
            yield _Damage("footer", f"{type(e).__name__}: {e}"), "footer"
            return
        row = 0
        for g in range(pf.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            done = 0
            try:
                for batch in pf.iter_batches(batch_size=8192, row_groups=[g], columns=columns):
                    for obj in batch.to_pylist():
                        done += 1
                        yield obj, row + done
            except Exception as e:  # noqa: BLE001
                d = _Damage(f"row group {g}", f"{type(e).__name__}: {e}", n - done)
                yield d, d.where
            row += n


def _read_parquet(path: str, max_chars: int, resolver: _Resolver) -> Iterator[Image]:
    return _records(_parquet_objects(path, resolver), resolver, max_chars)
