"""Reading Parquet shards (``.parquet``, ``.pq``): one record per row, row group by row group,
only the layout's and the carried scalar columns (needs pyarrow: ``pip install 'metaclip2[parquet]'``).

A flat layout (one string column of alt-texts: DataComp's, img2dataset's) is read column-wise:
the rows that are certainly clean become images straight from the column lists, every other
row is checked as a record, alone, in its place; the images are the same.
"""

from __future__ import annotations

import base64
import itertools
import math
from typing import Any, Iterator

from metaclip2.core.errors import Metaclip2Error, ParameterError

from metaclip2.pipeline.io.inputs import open_input
from metaclip2.pipeline.io.records import (
    DOWNLOAD_SUCCESS,
    STATUS_KEY,
    Image,
    _Damage,
    _jsonable,
    _record_keys,
    _one,
    _records,
    _Resolver,
    _text_index,
    import_pyarrow,
)

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


def _parquet_objects(path: str, resolver: _Resolver, blocks: bool = False, piece: tuple[int, int] | None = None) -> Iterator[tuple[Any, int | str]]:
    """``(row dict, row number)`` per row, and damage; with `blocks`, one ``(_Block, rows before
    it)`` per batch instead of its rows (for the column-wise path of [`_read_parquet`]); with
    `piece`, only row groups ``[first, stop)`` (a stage-1 piece; rows numbered as in the file)."""
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
                    if blocks:
                        yield _Block(names, lists, batch), row + done
                        done += batch.num_rows
                        continue
                    for values in zip(*lists):
                        done += 1
                        yield dict(zip(names, values)), row + done
            except Exception as e:  # noqa: BLE001
                d = _Damage(f"row group {g}", f"{type(e).__name__}: {e}", n - done)
                yield d, d.where
            row += n


def _read_parquet(path: str, max_chars: int, resolver: _Resolver, piece: tuple[int, int] | None = None) -> Iterator[Image]:
    if not _COLUMNWISE:  # the reference: every row through _records
        return _records(_parquet_objects(path, resolver, piece=piece), resolver, max_chars)
    return _parquet_images(_parquet_objects(path, resolver, blocks=True, piece=piece), resolver, max_chars)


# -- the column-wise path ----------------------------------------------------------------------
#
# A flat layout (one string column of texts) is read batch by batch: loops over the column lists
# mark the rows that are certainly clean (their Image is built straight from the lists); every
# other row goes through _records, alone, in its place, its slot joining the open group as
# _records would join it. Numbering (read_shard's) is taken and done here, a batch of new ids in
# bulk. The Images are exactly the reference's (tests/test_readers_columnwise.py compares both
# paths field by field, numbering and report included).

#: Switch for the column-wise path (off: every row through _records, the reference).
_COLUMNWISE = True


class _Block:
    """One batch: its column names, its columns as Python lists, the Arrow batch."""

    __slots__ = ("names", "lists", "batch")

    def __init__(self, names, lists, batch):
        self.names, self.lists, self.batch = names, lists, batch

    def rows(self, first: int) -> Iterator[tuple[dict, int]]:
        names = self.names
        for i, values in enumerate(zip(*self.lists), first + 1):
            yield dict(zip(names, values)), i


def _expand(objs) -> Iterator[tuple[Any, int | str]]:
    for obj, where in objs:
        if type(obj) is _Block:
            yield from obj.rows(where)
        else:
            yield obj, where


class _Plan:
    """Where a flat layout's fields stand in a batch, and how each is checked column-wise."""

    __slots__ = ("id", "id_int", "text", "lang", "index", "status", "extra", "extra_names", "floats", "nested", "max_chars", "dicts")


def _dict_maker(names: list):
    """``f(*columns)``: one dict per row, keys `names` in order (a dict display: several times
    faster than ``dict(zip(names, row))``). The keys enter the code as ``repr`` literals only."""
    values = [f"v{k}" for k in range(len(names))]
    pairs = ", ".join(f"{name!r}: {v}" for name, v in zip(names, values))
    code = f"lambda {', '.join(values)}: [{{{pairs}}} for {', '.join(values)}, in zip({', '.join(values)})]"
    return eval(compile(code, "<parquet rows>", "eval"), {"__builtins__": {"zip": zip}})  # noqa: S307


def _flat_plan(schema, resolver: _Resolver, max_chars: int) -> _Plan | None:
    """The column-wise plan of a file, or None where its rows must all go through _records."""
    pa, _ = import_pyarrow()
    T = pa.types
    lay, spec = resolver.layout, resolver.spec
    if lay is None:
        return None
    names = list(schema.names)
    if len(set(names)) != len(names):
        return None
    if lay.name == "metaclip2" and not spec.text_keys:
        if "texts" in names:
            return None
        text_key = "text"
    elif len(lay.text_keys) == 1:
        text_key = lay.text_keys[0]
    else:
        return None
    index_key = spec.text_index_key or "text_index"
    lang_key = lay.lang_key if lay.lang_key in names else None
    keys = [lay.id_key, text_key, lang_key, index_key, STATUS_KEY]
    if text_key not in names or lay.id_key not in names or len(set(keys)) != len(keys):
        return None

    def string(t) -> bool:
        return T.is_string(t) or T.is_large_string(t)

    types = {name: schema.field(name).type for name in names}
    if not string(types[text_key]):
        return None
    id_type = types[lay.id_key]
    if not (string(id_type) or (T.is_integer(id_type))):
        return None
    if lang_key is not None and not (string(types[lang_key]) or T.is_null(types[lang_key])):
        return None
    plan = _Plan()
    plan.id, plan.id_int, plan.text = names.index(lay.id_key), T.is_integer(id_type), names.index(text_key)
    plan.lang = names.index(lang_key) if lang_key is not None else None
    plan.index = names.index(index_key) if index_key in names else None
    plan.status = names.index(STATUS_KEY) if STATUS_KEY in names and string(types[STATUS_KEY]) else None
    plan.max_chars = max_chars
    skip = set(_record_keys(lay, spec))
    everything = spec.keep_keys is None and not spec.drop_keys
    plan.extra, plan.extra_names, plan.floats, plan.nested = [], [], set(), set()
    for k, name in enumerate(names):
        if name in skip or not (everything or spec.carries(name)):
            continue
        t = types[name]
        if T.is_floating(t) and not T.is_float16(t):
            plan.floats.add(k)
        elif T.is_list(t) or T.is_large_list(t) or T.is_fixed_size_list(t) or T.is_struct(t):
            if name not in resolver.nested or not carryable(t):
                return None
            plan.nested.add(k)
        elif not (string(t) or T.is_integer(t) or T.is_boolean(t) or T.is_null(t)):
            return None  # e.g. a binary status column: what _extra makes of it is left to it
        plan.extra.append(k)
        plan.extra_names.append(name)
    plan.dicts = _dict_maker(plan.extra_names) if plan.extra_names else None
    return plan


_SUCCESS_OR_NONE = frozenset((DOWNLOAD_SUCCESS, None))


def _clean_rows(plan: _Plan, lists: list, batch) -> list:
    """Per row, whether its id, text and status are certainly clean: what check_text, _check_id
    and the status test accept at once (Arrow's strings are valid UTF-8: never undecodable)."""
    m = plan.max_chars
    texts, ids = lists[plan.text], lists[plan.id]
    # all(): no None nor "" (the texts and string ids); an int id column: no null
    if (texts and all(texts) and max(map(len, texts)) <= m and not any(map(str.isspace, texts))
            and (not batch.column(plan.id).null_count if plan.id_int else all(ids))
            and (plan.status is None or set(lists[plan.status]) <= _SUCCESS_OR_NONE)):  # fmt: skip
        return [True] * len(texts)  # the common case: every row, in C loops
    if plan.id_int:
        clean = [t is not None and 0 < len(t) <= m and not t.isspace() and i is not None for t, i in zip(texts, ids)]
    else:
        clean = [t is not None and 0 < len(t) <= m and not t.isspace() and not (i is None or i == "") for t, i in zip(texts, ids)]
    if plan.status is not None:
        clean = [c and (s is None or s == DOWNLOAD_SUCCESS) for c, s in zip(clean, lists[plan.status])]
    return clean


def _finite(values: list) -> list:
    """A float column's values with NaN and infinities as None (as _extra makes them)."""
    if all(map(math.isfinite, filter(None, values))):  # None and 0.0 left out: both kept as they are
        return values
    return [None if v is not None and not math.isfinite(v) else v for v in values]


def _parquet_images(objs, resolver: _Resolver, max_chars: int) -> Iterator[Image]:
    pending = []
    first = None
    for item in objs:
        if type(item[0]) is _Block:
            first = item
            break
        pending.append(item)  # damage before the first batch
    plan = _flat_plan(first[0].batch.schema, resolver, max_chars) if first is not None else None
    items = itertools.chain(pending, (first,) if first is not None else (), objs)
    if plan is None:
        yield from _records(_expand(items), resolver, max_chars)
        return
    # the shard's numbering (read_shard's), taken: every image is numbered here before it is
    # yielded, a batch of new ids in bulk
    numbering, resolver.numbering = resolver.numbering, None
    number = numbering.apply if numbering is not None else _unnumbered
    group: Image | None = None  # the open group of consecutive rows of one id (not yet numbered)
    new = object.__new__
    for block, first_row in items:
        if type(block) is not _Block:  # damage: it does not interrupt a group (as in _records)
            for image in _records(((block, first_row),), resolver, max_chars):
                number(image)
                yield image
            continue
        lists, n = block.lists, block.batch.num_rows
        clean = _clean_rows(plan, lists, block.batch)
        ids = lists[plan.id]
        if plan.id_int:
            ids = [None if v is None else str(v) for v in ids]
        texts = lists[plan.text]
        langs = [None if v is None else (v.strip() or None) for v in lists[plan.lang]] if plan.lang is not None else None
        if plan.index is not None:
            checked = [_text_index(v) for v in lists[plan.index]]
            indices = [k for k, _ in checked]
            clean = [c and r is None for c, (_, r) in zip(clean, checked)]
        else:
            indices = None
        columns = []
        for k in plan.extra:
            values = lists[k]
            if k in plan.floats:
                values = _finite(values)
            elif k in plan.nested:
                values = [None if v is None else _jsonable(v) for v in values]
            columns.append(values)
        # one dict per row, as _extra makes it (its transformations are the column-wise ones above)
        extras = plan.dicts(*columns) if plan.dicts is not None else None
        gid = group.id if group is not None else None
        if numbering is not None and indices is None and n > 1 and ids[0] != gid and all(clean):
            # its first row closes the open group (it is clean and of another id): first that one,
            # numbered, so that the shard's ids stay in the order they are numbered
            if group is not None:
                number(group)
                yield group
                group = gid = None
            bulk = numbering._fresh(ids[:-1], ids[-1])
        else:
            bulk = False
        if bulk:
            # the common case: every row clean, a new id each; all but the last (its group may go
            # on in the next batch) numbered in bulk: index 0, as apply gives a new id's one slot
            if extras is None:
                extras = [{} for _ in range(n)]
            for image_id, text, lang, extra, where in zip(
                ids, texts, langs or itertools.repeat(None), extras, range(first_row + 1, first_row + n)
            ):  # all but the last row
                image = new(Image)  # what Image(id) and one add() make, without the default factories
                image.id = image_id  # one store per field: no tuple to build and unpack
                image.texts = [text]
                image.indices = [0]
                image.langs = [lang]
                image.invalid = [None]
                image.where = [where]
                image.extra = {}
                image.text_extra = [extra]
                image.damage = None
                yield image
            # the last one: the open group, numbered when it is complete
            group = _one(ids[-1], texts[-1], langs[-1] if langs else None, None, first_row + n, extras[-1], None)
            continue
        where = first_row
        for image_id, text, lang, index, extra, ok in zip(
            ids, texts, langs or itertools.repeat(None), indices or itertools.repeat(None), extras or itertools.repeat(None), clean
        ):
            where += 1
            if not ok:  # through _records, alone; its slot joins the open group where it is one
                i = where - first_row - 1
                for image in _records(((dict(zip(block.names, [c[i] for c in lists])), where),), resolver, max_chars):
                    if image.id is None:
                        number(image)
                        yield image
                    elif image.id == gid:
                        _join(group, image)
                    else:
                        if group is not None:
                            number(group)
                            yield group
                        group, gid = image, image.id
                continue
            if extra is None:
                extra = {}
            if image_id == gid:
                group.indices.append(index)
                group.texts.append(text)
                group.langs.append(lang)
                group.invalid.append(None)
                group.where.append(where)
                group.text_extra.append(extra)
                continue
            if group is not None:
                number(group)
                yield group
            group, gid = _one(image_id, text, lang, None, where, extra, index), image_id
    if group is not None:
        number(group)
        yield group


def _unnumbered(image: Image) -> None:
    """Numbering left to the caller (no read_shard numbering taken)."""


def _join(group: Image, image: Image) -> None:
    """Append `image`'s slots (one flat record's) to `group`, as _records adds them."""
    group.indices += image.indices
    group.texts += image.texts
    group.langs += image.langs
    group.invalid += image.invalid
    group.where += image.where
    group.text_extra += image.text_extra
