"""The fast reader paths give exactly the reference's images: Parquet's column-wise path against
every row through ``_records``, JSONL's and tar's against the slow parse, on seeded random
files full of clean and dirty records (field by field, types included: ``repr``)."""

from __future__ import annotations

import io
import json
import math
import random
import tarfile
from typing import Any, Iterator

import pytest

from metaclip2.pipeline.io import parquet as parquet_io
from metaclip2.pipeline.io import records
from metaclip2.pipeline.io.readers import read_shard
from metaclip2.pipeline.io.records import InvalidInputError, Numbering, ReaderSpec

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

FIELDS = ("id", "texts", "indices", "langs", "invalid", "where", "extra", "text_extra", "damage")


def _read(path, fast: bool, monkeypatch, **kw):
    """(images as repr'd field tuples, numbering.ids(), report, strict outcome) of one path."""
    monkeypatch.setattr(parquet_io, "_COLUMNWISE", fast)
    monkeypatch.setattr(records, "_FAST", fast, raising=False)
    numbering, report = Numbering(), {}
    images = [repr(tuple(getattr(im, f) for f in FIELDS)) for im in read_shard(path, numbering=numbering, report=report, **kw)]
    try:
        strict = sum(len(im.texts) for im in read_shard(path, strict=True, **kw))
    except InvalidInputError as e:
        strict = str(e)
    return images, list(numbering.ids()), report, strict


def _same(path, monkeypatch, **kw):
    new = _read(path, True, monkeypatch, **kw)
    ref = _read(path, False, monkeypatch, **kw)
    assert new[0] == ref[0]  # every image, field by field
    assert new[1:] == ref[1:]
    return new[0]


# -- Parquet ------------------------------------------------------------------------------------

TEXTS = ["a red dog", "ein Hund", "x", " padded ", "", "   ", "\x1c", "\x1c\x1d", "\x1f a", "\u3000", "\u3000\u2003",
         "\u4e2d\u6587", "caf\u00e9", "\u00a0x\u00a0", "\x00", "tab\tsep", "line\nbreak", "0123456789", "01234567890",
         "\u00e9" * 10, "\u00e9" * 11, "emoji \U0001f600", None]  # fmt: skip
IDS = ["a", "b", "c", "", None, "\u00fc", "id with space", "0", "a"]


def _column(rng, kind, n, base):
    """Values of one column of `kind`."""
    if kind == "text":
        return [rng.choice(TEXTS) if rng.random() < 0.5 else f"clean text {rng.randrange(50)}" for _ in range(n)]
    if kind == "str_id":  # runs of one id (grouping), repeats further down, dirty ids
        out, cur = [], None
        for _ in range(n):
            r = rng.random()
            cur = cur if r < 0.3 and cur is not None else (rng.choice(IDS) if r < 0.45 else f"{base}-{rng.randrange(3 * n)}")
            out.append(cur)
        return out
    if kind == "int_id":
        return [None if rng.random() < 0.05 else rng.choice([rng.randrange(5), rng.randrange(1 << 40), -rng.randrange(9)]) for _ in range(n)]
    if kind == "status":
        return [rng.choice(["success", "success", "failed_to_download", None, ""]) for _ in range(n)]
    if kind == "lang":
        return [rng.choice([None, "de", " en ", "", "  ", "\u00fc", "zho_Hans", "\u3000fr"]) for _ in range(n)]
    if kind == "int_index":
        return [rng.choice([None, 0, 1, 2, 3, -1, 1 << 31, 7]) for _ in range(n)]
    if kind == "float_index":
        return [rng.choice([None, 0.0, 1.0, 2.0, 1.5, -1.0, math.nan, math.inf, 3.0]) for _ in range(n)]
    if kind == "float":
        return [rng.choice([0.25, 0.0, -1.5, None, math.nan, math.inf, -math.inf, 1e300]) for _ in range(n)]
    if kind == "clean_float":
        return [rng.random() for _ in range(n)]
    if kind == "int":
        return [rng.choice([None, 0, 1, -5, 1 << 40]) for _ in range(n)]
    if kind == "bool":
        return [rng.choice([True, False, None]) for _ in range(n)]
    if kind == "url":
        return [rng.choice([f"https://x/{rng.randrange(99)}.jpg", None, "", "\u00fc"]) for _ in range(n)]
    if kind == "list":
        return [rng.choice([None, [], [1, 2], [3]]) for _ in range(n)]
    if kind == "float_list":
        return [rng.choice([None, [0.5, math.nan], [math.inf], []]) for _ in range(n)]
    if kind == "struct":
        return [rng.choice([None, {"w": 1, "h": 2.5}, {"w": None, "h": math.nan}]) for _ in range(n)]
    raise AssertionError(kind)


TYPES = {"text": pa.string(), "str_id": pa.string(), "int_id": pa.int64(), "status": pa.string(), "lang": pa.string(),
         "int_index": pa.int64(), "float_index": pa.float64(), "float": pa.float64(), "clean_float": pa.float32(),
         "int": pa.int64(), "bool": pa.bool_(), "url": pa.string(), "list": pa.list_(pa.int64()),
         "float_list": pa.list_(pa.float64()), "struct": pa.struct([("w", pa.int64()), ("h", pa.float64())])}  # fmt: skip


def _parquet(tmp_path, seed, n=None, group=None):
    """A random flat-layout Parquet shard: (path, spec)."""
    rng = random.Random(seed)
    n = n or rng.randrange(1, 120)
    layout = rng.choice(["datacomp", "img2dataset", "metaclip2", "named"])
    id_key, text_key = {"datacomp": ("uid", "text"), "img2dataset": ("key", "caption"), "metaclip2": ("id", "text"),
                        "named": ("my_id", "alt")}[layout]  # fmt: skip
    cols = {id_key: ("int_id" if rng.random() < 0.25 else "str_id"), text_key: "text"}
    if rng.random() < 0.4:
        cols["status"] = "status"
    if rng.random() < 0.4:
        cols["lang"] = "lang"
    if rng.random() < 0.3:
        cols["text_index"] = rng.choice(["int_index", "float_index"])
    for name in rng.sample(["url", "float", "clean_float", "int", "bool", "list", "float_list", "struct"], rng.randrange(0, 6)):
        cols[name] = name
    table = {name: pa.array(_column(rng, kind, n, seed), type=TYPES[kind]) for name, kind in cols.items()}
    if rng.random() < 0.2:
        table["nothing"] = pa.nulls(n)
    if rng.random() < 0.2:
        table["blob"] = pa.array([b"\xff"] * n, type=pa.binary())  # not carryable: never read
    names = list(table)
    rng.shuffle(names)
    path = tmp_path / f"s{seed}.parquet"
    pq.write_table(pa.table({k: table[k] for k in names}), path, row_group_size=group or rng.randrange(1, 40))
    spec = {}
    if layout == "named":
        spec = {"id_key": id_key, "text_keys": text_key}
    if "lang" in cols and layout != "metaclip2" and rng.random() < 0.7:
        spec["lang_key"] = "lang"
    if rng.random() < 0.2:
        spec["drop_keys"] = "url,int"
    elif rng.random() < 0.2:
        spec["keep_keys"] = ",".join(k for k in ("url", "list", "float") if k in cols) or None
    return path, ReaderSpec(**spec)


@pytest.mark.parametrize("seed", range(60))
def test_parquet_columnwise_is_the_reference(tmp_path, monkeypatch, seed):
    path, spec = _parquet(tmp_path, seed)
    _same(path, monkeypatch, spec=spec, max_chars=10)


def test_parquet_columnwise_across_batches(tmp_path, monkeypatch):
    """Row groups of more than one 8192-row batch, runs of one id across batch and group ends."""
    n = 8192 + 900
    rng = random.Random(5)
    ids = [f"i{i // 3}" for i in range(n)]  # runs of three: some cross the batch end (8192 = 3 * 2730 + 2)
    texts = [rng.choice(TEXTS) if rng.random() < 0.02 else f"text {i}" for i in range(n)]
    scores = [math.nan if rng.random() < 0.001 else 0.5 for _ in range(n)]
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"uid": ids, "text": texts, "score": scores}), path, row_group_size=8192 + 400)
    _same(path, monkeypatch)
    across = [im for im in read_shard(path) if im.id == "i2730"]  # rows 8191-8193: the batch ends after 8192
    assert [im.where for im in across] == [[8191, 8192, 8193]]
    clean = tmp_path / "clean.parquet"  # the bulk numbering: every row clean, one id each
    pq.write_table(pa.table({"uid": [f"u{i}" for i in range(n)] + ["u5"], "text": ["t"] * (n + 1)}), clean, row_group_size=8192)
    images = _same(clean, monkeypatch)
    assert "duplicate_index" not in images[-1] and "[1]" in images[-1]  # u5 again: its second slot, index 1


def test_parquet_columnwise_damaged(tmp_path, monkeypatch):
    """A file whose pages are damaged: the same damage and the same images on both paths."""
    for seed in range(8):
        path, spec = _parquet(tmp_path, 1000 + seed, n=200, group=50)
        data = bytearray(path.read_bytes())
        rng = random.Random(seed)
        for _ in range(3):
            k = rng.randrange(8, len(data) // 2)
            data[k : k + 4] = b"\xde\xad\xbe\xef"
        path.write_bytes(bytes(data))
        _same(path, monkeypatch, spec=spec, max_chars=10)


def test_parquet_not_flat_goes_through_records(tmp_path, monkeypatch):
    """Image-form lists, a bool id column, a text column of ints: every row through _records."""
    for i, table in enumerate([
        {"id": ["a", "b"], "texts": [["x", " "], None]},
        {"uid": [True, False], "text": ["x", "y"]},
        {"uid": ["a", "b"], "text": [1, None]},
        {"key": ["a", "a"], "caption": ["x", "y"], "status": [1, 2]},
        {"key": ["a", "a"], "caption": ["x", "y"], "status": [b"failed", b"success"]},
    ]):  # fmt: skip
        path = tmp_path / f"n{i}.parquet"
        pq.write_table(pa.table(table), path)
        _same(path, monkeypatch)


# -- JSONL and tar: against _records as it stood before its fast paths, and the digit-run test first

from metaclip2.pipeline.io import jsonl as jsonl_io  # noqa: E402
from metaclip2.pipeline.io import tar as tar_io  # noqa: E402
from metaclip2.pipeline.io.records import (  # noqa: E402
    STATUS_KEY,
    Image,
    _Bad,
    _check_id,
    _Damage,
    _damaged,
    _decode,
    _extra,
    _not_downloaded,
    _record_keys,
    _shape,
    _text_index,
    _text_item,
    _unreadable,
    check_lang,
    check_text,
)


def _records_reference(objs: Iterator[tuple[Any, int | str]], resolver: _Resolver, max_chars: int, default_id: str | None = None) -> Iterator[Image]:
    """records._records as it stood before its fast paths (verbatim but for this line)."""
    spec = resolver.spec
    index_key = spec.text_index_key or "text_index"
    group: Image | None = None  # the open group of consecutive flat records
    last_lay = skip = None
    for obj, where in objs:
        if type(obj) is not dict:  # the common case (a plain dict) skips these checks
            if isinstance(obj, (_Bad, _Damage)):
                # It cannot be tied to an id, so it does not interrupt a flat group.
                yield _damaged(obj) if isinstance(obj, _Damage) else _unreadable(obj.reason, where, obj.n)
                continue
            if not isinstance(obj, dict):
                if group is not None:
                    yield group
                    group = None
                yield _unreadable("malformed", where)
                continue
        lay = resolver.layout or resolver.resolve(set(obj)) or resolver.fallback()
        if lay is not last_lay:
            skip = resolver.skip.get(lay)
            if skip is None:
                skip = resolver.skip[lay] = frozenset(_record_keys(lay, spec))  # looked up per field
            last_lay = lay
        shape = _shape(obj, lay, spec)
        image_id, id_reason = _check_id(obj.get(lay.id_key, default_id))
        if id_reason is None and STATUS_KEY in obj and _not_downloaded(obj):
            id_reason = "not_downloaded"  # never an image: counted with its alt-texts, never matched
        if shape[0] == "flat":
            if id_reason is not None:
                yield _unreadable(id_reason, where)
                continue
            if group is not None and group.id != image_id:
                yield group
                group = None
            if group is None:
                group = Image(image_id)
            lang, lang_reason = check_lang(shape[2])
            text = shape[1]
            if type(text) is not str:
                text = _decode(text)
            index, index_reason = _text_index(obj[index_key]) if index_key in obj else (None, None)
            reason = check_text(text, max_chars) or lang_reason or index_reason
            group.add(text, lang, reason, where, _extra(obj, skip, spec, resolver.nested) if reason is None else None, index=index)
            continue
        if group is not None:
            yield group
            group = None
        if id_reason is not None:
            yield _unreadable(id_reason, where, len(shape[1]) if shape[0] == "image" else 1)
            continue
        if shape[0] == "missing":
            yield _unreadable("missing_text", where)
            continue
        lang, lang_reason = check_lang(shape[2])
        image = Image(image_id, extra=_extra(obj, skip, spec, resolver.nested))
        for item in shape[1]:
            text, tlang, reason, extra = _text_item(item, max_chars, lang, spec, resolver.nested)
            image.add(text, tlang, reason or lang_reason, where, extra)
        yield image
    if group is not None:
        yield group


def _same_records(path, monkeypatch, **kw):
    """As _same, the reference being _records_reference with every line through the digit-run test."""
    monkeypatch.setattr(records, "_FAST", True)
    new = _read(path, True, monkeypatch, **kw)
    monkeypatch.setattr(jsonl_io, "_records", _records_reference)
    monkeypatch.setattr(tar_io, "_records", _records_reference)
    ref = _read(path, False, monkeypatch, **kw)
    assert new[0] == ref[0]
    assert new[1:] == ref[1:]
    return new[0]


BIG = ["12345678901234567890123", "-98765432109876543210", "18446744073709551616", "9223372036854775807", "1234567890123456789"]
FLOATS = ["0.5", "1e5", "-0.0", "1.0000000000000000001", "0.12345678901234567890123", "NaN", "Infinity", "1e400", "12345678901234567890.5"]
STRINGS = ['"a red dog"', '""', '"  "', '"\\u001c"', '"\\ud800"', '"caf\\u00e9"', '"\\u3000"', '"x y z w v"', '"0123456789a"', "null",
           "7", "true", '"12345678901234567890123"']  # fmt: skip


def _value(rng, depth=0):
    r = rng.random()
    if r < 0.3:
        return rng.choice(STRINGS)
    if r < 0.45:
        return rng.choice(BIG)
    if r < 0.6:
        return rng.choice(FLOATS)
    if r < 0.7 and depth < 3:
        return "[" + ", ".join(_value(rng, depth + 1) for _ in range(rng.randrange(3))) + "]"
    if r < 0.8 and depth < 3:
        return "{" + ", ".join(f'"k{i}": {_value(rng, depth + 1)}' for i in range(rng.randrange(3))) + "}"
    return str(rng.randrange(-5, 50))


def _record(rng, k):
    """One JSONL line (bytes): flat or image form, clean or not."""
    r = rng.random()
    if r < 0.03:
        return rng.choice([b"", b"   ", b"not json", b'{"id": "x", "text": "caf\xe9"}', b"[1, 2]", b'"a string"',
                           b'{"id": "deep", "text": "t", "n": ' + b"[" * 2000 + b"]" * 2000 + b"}",
                           b'{"id": "deep", "text": "t", "n": ' + b"[" * 1000 + BIG[0].encode() + b"]" * 1000 + b"}"])  # fmt: skip
    fields = {}
    idr = rng.random()
    fields["id"] = f'"i{k // 2 if rng.random() < 0.5 else k}"' if idr < 0.8 else rng.choice(['""', "null", "true", "12", rng.choice(BIG), '"\\u00fc"', '"\\udc00"'])
    if rng.random() < 0.7:
        fields["text"] = f'"clean text {k}"' if rng.random() < 0.6 else rng.choice(STRINGS)
    else:
        fields["texts"] = "[" + ", ".join(rng.choice(STRINGS + ['{"text": "ein Hund", "lang": " de ", "source": 1.5}', '{"text": 3}']) for _ in range(rng.randrange(4))) + "]"
    for key in rng.sample(["url", "score", "n", "status", "lang", "text_index", "nested"], rng.randrange(4)):
        fields[key] = {"status": rng.choice(['"success"', '"failed"', "1", "null"]), "lang": rng.choice(['" de "', '""', "3", "null"]),
                       "text_index": rng.choice(["0", "1", "-1", "1.0", "1.5", "true", BIG[0]]), "url": '"https://x/1"'}.get(key) or _value(rng)  # fmt: skip
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode()


@pytest.mark.parametrize("seed", range(30))
def test_jsonl_fast_is_the_reference(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    lines = [_record(rng, k) for k in range(rng.randrange(1, 80))]
    path = tmp_path / "s.jsonl"
    path.write_bytes((b"\xef\xbb\xbf" if seed % 5 == 0 else b"") + b"\n".join(lines) + b"\n")
    _same_records(path, monkeypatch, max_chars=10)


@pytest.mark.parametrize("seed", range(20))
def test_tar_fast_is_the_reference(tmp_path, monkeypatch, seed):
    rng = random.Random(100 + seed)
    path = tmp_path / "s.tar"
    with tarfile.open(path, "w") as tar:
        for k in range(rng.randrange(1, 40)):
            key = f"{k // 2 if rng.random() < 0.3 else k:06d}"
            record = _record(rng, k)
            if rng.random() < 0.5:  # img2dataset's keys; the id (key) defaults to the sample's
                record = record.replace(b'"text":', b'"caption":').replace(b'"id":', b'"key":' if rng.random() < 0.5 else b'"x":')
            members = [("json", record)] if rng.random() < 0.8 else []
            if rng.random() < 0.4:
                members.append(("txt", rng.choice([b"a caption", b"", b"  ", b"caf\xe9", b"x" * 20])))
            for ext, data in [("jpg", b"\xff")] + members:
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    _same_records(path, monkeypatch, max_chars=10)


# -- Numbering: its cheaper common case and bulk numbering against it as it stood


class _NumberingReference:
    """records.Numbering as it stood before (verbatim but for this docstring)."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._used: dict[str, Any] = {}  # id -> the one index used, or the set of them
        self._given: set = set()  # ids with an index the data gave

    def ids(self) -> Iterator[tuple[str, int, bool]]:
        """``(id, slots, numbered)`` of every id met: [`slots`][metaclip2.pipeline.io.records.Numbering.slots], and whether all its indices
        were numbered here (none given by the data)."""
        given = self._given
        for image_id, n in self._next.items():
            yield image_id, n, image_id not in given

    def slots(self, image_id: str) -> int:
        """One past the largest index `image_id` used so far (0 if unseen)."""
        return self._next.get(image_id, 0)

    def apply(self, image: Image) -> None:
        """Give `image`'s unnumbered slots their indices and mark duplicates invalid."""
        if image.id is None:
            image.indices = list(range(len(image.texts)))
            return
        indices = image.indices
        if len(indices) == 1 and indices[0] is None and image.id not in self._next:  # the common case: a new id, one slot
            indices[0] = self._used[image.id] = 0
            self._next[image.id] = 1
            return
        nxt = self._next.get(image.id, 0)
        used = self._used.get(image.id)
        for s, k in enumerate(image.indices):
            if k is None:
                k = image.indices[s] = nxt
            else:  # given by the data (text_index, or a position in an image-form record)
                self._given.add(image.id)
            if used is None:
                used = k
            elif (k == used) if isinstance(used, int) else (k in used):
                if image.invalid[s] is None:
                    image.invalid[s] = "duplicate_index"
                    image.texts[s] = image.langs[s] = None
                continue
            elif isinstance(used, int):
                used = {used, k}
            else:
                used.add(k)
            nxt = max(nxt, k + 1)
        if used is not None:
            self._used[image.id] = used
            self._next[image.id] = nxt


@pytest.mark.parametrize("seed", range(20))
def test_numbering_is_the_reference(seed):
    """Random images (new and met ids, one or several slots, given and unnumbered indices,
    invalid slots), numbered one by one or, where _fresh takes them, in bulk."""
    rng = random.Random(seed)
    new, ref = Numbering(), _NumberingReference()
    pool = [f"i{k}" for k in range(rng.choice([5, 50, 500]))]
    for _ in range(300):
        if rng.random() < 0.2:  # a batch of one-slot images of distinct ids, as the Parquet path hands them
            ids = list(dict.fromkeys(rng.choice(pool) for _ in range(rng.randrange(1, 6))))
            if new._fresh(ids):
                for i in ids:
                    ref.apply(Image(i, ["t"], [None], [None], [None], [0], {}, [{}]))
                continue
            images = [Image(i, ["t"], [None], [None], [None], [0], {}, [{}]) for i in ids]
        else:
            k = rng.choice([1, 1, 1, 2, 3])
            image_id = None if rng.random() < 0.05 else rng.choice(pool)
            images = [Image(image_id, ["t"] * k, [rng.choice([None, None, 0, 1, 2, 5]) for _ in range(k)], ["en"] * k,
                            [rng.choice([None, None, None, "empty"]) for _ in range(k)], list(range(k)), {}, [{}] * k)]  # fmt: skip
        for image in images:
            twin = Image(image.id, list(image.texts), list(image.indices), list(image.langs), list(image.invalid), list(image.where), {}, [{}] * len(image.texts))
            new.apply(image)
            ref.apply(twin)
            assert repr(image) == repr(twin)
    assert list(new.ids()) == list(ref.ids())
    assert all(new.slots(i) == ref._next.get(i, 0) for i in pool)
