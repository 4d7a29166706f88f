"""The fast reader paths give exactly the reference's images: Parquet's column-wise path against
every row through ``_records``, JSONL's and tar's against the slow parse, on seeded random
files full of clean and dirty records (field by field, types included: ``repr``)."""

from __future__ import annotations

import io
import json
import math
import random
import tarfile

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
