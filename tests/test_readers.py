"""Input readers: JSONL (image and flat form), Parquet, WebDataset tar, and bad-input accounting."""

from __future__ import annotations

import io
import json
import sys
import tarfile

import pytest

from metaclip2.pipeline.io.inputs import detect_format
from metaclip2.pipeline.io.readers import read_shard
from metaclip2.pipeline.io.records import INVALID_REASONS, InvalidInputError, ParquetDependencyError, ReaderSpec


def _summary(images):
    """[(id, [(text, lang, reason, where), ...]), ...] for easy comparison."""
    return [(im.id, list(zip(im.texts, im.langs, im.invalid, im.where))) for im in images]


def _reasons(images):
    out = {}
    for im in images:
        for r in im.invalid:
            if r is not None:
                out[r] = out.get(r, 0) + 1
    return out


# A JSONL shard with every kind of bad input, and what each line must give.
BAD_LINES = [
    (b'{"id": "ok", "texts": ["a cat", {"text": "ein Hund", "lang": "de", "source": "x"}]}', None),
    (b'{"id": "broken", "texts": [', "malformed"),
    (b'{"id": "u", "texts": ["caf\xe9"]}', "undecodable"),  # latin-1 byte
    (b'{"texts": ["a", "b"]}', "missing_id"),  # counts as two pairs
    (b'{"id": "m"}', "missing_text"),
    (b'{"id": "n", "texts": [5, {"text": 3}, {"text": "ok", "lang": 7}]}', "not_string"),  # three pairs
    (b'{"id": "e", "texts": ["   ", ""]}', "empty"),  # two pairs
    (b'{"id": "l", "texts": ["' + b"x" * 50 + b'"]}', "too_long"),
    (b'{"id": "s", "texts": ["\\ud800 lone surrogate"]}', "undecodable"),
    (b"[1, 2]", "malformed"),
    (b'{"id": "d", "texts": [{"lang": "en"}]}', "missing_text"),
    (b"", None),  # blank lines are not pairs
    (b'{"id": 42, "texts": ["integer ids are fine"]}', None),
    (b'{"id": "f", "text": "a dog", "text_index": 1.5}', "bad_index"),  # not a whole number
    (b'{"id": "ok", "text": "a cat again", "text_index": 1}', "duplicate_index"),  # "ok" has alt-text 1 above
    (b'{"id": "z", "text": "a dog", "status": "failed_to_download"}', "not_downloaded"),  # img2dataset's failures
]
BAD_EXPECTED = {"malformed": 2, "undecodable": 2, "missing_id": 2, "missing_text": 2, "not_string": 3, "empty": 2, "too_long": 1,
                "bad_index": 1, "duplicate_index": 1, "not_downloaded": 1}


@pytest.fixture()
def bad_jsonl(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(line for line, _ in BAD_LINES) + b"\n")
    return path


def test_every_bad_input_is_counted_with_its_line(bad_jsonl):
    images = list(read_shard(bad_jsonl, max_chars=40))
    assert _reasons(images) == BAD_EXPECTED
    assert set(BAD_EXPECTED) == set(INVALID_REASONS) - {"damaged"}  # damage: see test_damage.py
    # Lines are 1-based file lines, and each reason sits on the line that caused it.
    first_reason_line = {}
    for im in images:
        for r, w in zip(im.invalid, im.where):
            if r is not None:
                first_reason_line.setdefault(r, w)
    for lineno, (_, reason) in enumerate(BAD_LINES, 1):
        if reason is not None:
            assert lineno >= first_reason_line[reason]
    assert first_reason_line["malformed"] == 2
    assert first_reason_line["too_long"] == 8
    ok = {}
    for im in images:  # an id's first record (the last lines add to "ok")
        if im.id is not None:
            ok.setdefault(im.id, im)
    assert ok["ok"].texts == ["a cat", "ein Hund"] and ok["ok"].langs == [None, "de"]
    assert ok["42"].texts == ["integer ids are fine"]
    # Valid texts of a record keep their alt-text index next to invalid ones.
    assert ok["n"].invalid == ["not_string", "not_string", "not_string"]
    total_pairs = sum(len(im.invalid) for im in images)
    assert total_pairs == 2 + sum(BAD_EXPECTED.values()) + 1


def test_strict_names_file_and_line(bad_jsonl):
    with pytest.raises(InvalidInputError) as e:
        list(read_shard(bad_jsonl, strict=True, max_chars=40))
    assert e.value.line == 2 and e.value.reason == "malformed"
    assert f"{bad_jsonl}:2" in str(e.value)
    # The error pickles (it comes back from worker processes).
    import pickle

    again = pickle.loads(pickle.dumps(e.value))
    assert str(again) == str(e.value) and again.line == 2


def test_default_size_limit_is_4096_chars(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"id": "a", "texts": ["x" * 4096, "y" * 4097]}) + "\n")
    (im,) = read_shard(path)
    assert im.invalid == [None, "too_long"]


def test_flat_form_groups_consecutive_lines_by_id(tmp_path):
    path = tmp_path / "flat.jsonl"
    rows = [
        {"id": "a", "text": "one"},
        {"id": "a", "text": "two", "lang": "en"},
        {"id": "b", "text": "three"},
        {"id": "a", "text": "four"},  # not consecutive: another image with the same id
        {"id": "c", "texts": ["five", "six"]},
        {"id": "c", "text": 5},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = _summary(read_shard(path))
    assert got == [
        ("a", [("one", None, None, 1), ("two", "en", None, 2)]),
        ("b", [("three", None, None, 3)]),
        ("a", [("four", None, None, 4)]),
        ("c", [("five", None, None, 5), ("six", None, None, 5)]),
        ("c", [(None, None, "not_string", 6)]),
    ]


def test_gzipped_jsonl(tmp_path):
    import gzip

    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"id": "g", "texts": ["zipped"]}) + "\n")
    assert _summary(read_shard(path)) == [("g", [("zipped", None, None, 1)])]


def test_parquet_image_and_flat_form(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    texts_type = pa.list_(pa.struct([("text", pa.string()), ("lang", pa.string())]))
    table = pa.table(
        {
            "id": pa.array(["p1", None, "p3"]),
            "texts": pa.array(
                [[{"text": "a red car", "lang": "en"}, {"text": "", "lang": None}], [{"text": "no id", "lang": None}], None],
                type=texts_type,
            ),
        }
    )
    pq.write_table(table, tmp_path / "img.parquet")
    got = _summary(read_shard(tmp_path / "img.parquet"))
    assert got == [
        ("p1", [("a red car", "en", None, 1), (None, None, "empty", 1)]),
        (None, [(None, None, "missing_id", 2)]),
        (None, [(None, None, "missing_text", 3)]),
    ]
    flat = pa.table({"id": ["f", "f", "g"], "text": ["x y", "z", None], "lang": ["en", None, "de"]})
    pq.write_table(flat, tmp_path / "flat.parquet")
    assert _summary(read_shard(tmp_path / "flat.parquet")) == [
        ("f", [("x y", "en", None, 1), ("z", None, None, 2)]),
        ("g", [(None, None, "missing_text", 3)]),
    ]
    # A list of plain strings works too.
    pq.write_table(pa.table({"id": ["s"], "texts": [["one", "two"]]}), tmp_path / "str.parquet")
    assert _summary(read_shard(tmp_path / "str.parquet")) == [("s", [("one", None, None, 1), ("two", None, None, 1)])]


def test_corrupt_parquet_is_counted_not_fatal(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    images = list(read_shard(path))
    assert _reasons(images) == {"damaged": 1}
    assert images[0].damage["where"] == "footer"
    with pytest.raises(InvalidInputError, match="damaged"):
        list(read_shard(path, strict=True))


def test_parquet_missing_pyarrow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ParquetDependencyError, match=r"metaclip2\[parquet\]"):
        list(read_shard(tmp_path / "x.parquet"))


def _add(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_webdataset_tar(tmp_path):
    path = tmp_path / "shard-000.tar"
    with tarfile.open(path, "w") as tar:
        _add(tar, "a.jpg", b"\xff\xd8 fake jpeg")
        _add(tar, "a.json", json.dumps({"texts": ["a dog", {"text": "ein Haus", "lang": "de"}]}).encode())
        _add(tar, "b.txt", b"a cat on a tree\n")
        _add(tar, "b.jpg", b"img")
        _add(tar, "c.jpg", b"image without text")
        _add(tar, "d.json", b"{not json")
        _add(tar, "e.txt", b"\xff\xfe bad bytes")
        _add(tar, "dir/x.json", json.dumps({"id": "custom", "text": "flat text", "lang": "en"}).encode())
        _add(tar, "f.json", json.dumps(["just", "a list"]).encode())
    got = _summary(read_shard(path))
    assert got == [
        ("a", [("a dog", None, None, "a.json"), ("ein Haus", "de", None, "a.json")]),
        ("b", [("a cat on a tree", None, None, "b.txt")]),
        (None, [(None, None, "missing_text", "c")]),
        (None, [(None, None, "malformed", "d.json")]),
        ("e", [(None, None, "undecodable", "e.txt")]),
        ("custom", [("flat text", "en", None, "dir/x.json")]),
        ("f", [("just", None, None, "f.json"), ("a list", None, None, "f.json")]),
    ]
    with pytest.raises(InvalidInputError, match=r"shard-000.tar\[c\].*missing_text"):
        list(read_shard(path, strict=True))


def test_truncated_tar_keeps_what_it_read(tmp_path):
    path = tmp_path / "t.tar"
    with tarfile.open(path, "w") as tar:
        _add(tar, "a.txt", b"first")
        _add(tar, "b.txt", b"x" * 5000)
    data = path.read_bytes()
    path.write_bytes(data[:2600])  # cut inside b.txt's content
    images = list(read_shard(path))
    assert images[0].id == "a" and images[0].texts == ["first"]
    assert _reasons(images) == {"damaged": 1}
    assert images[1].damage["where"].startswith("offset ") and "lost" in images[1].damage["error"]


def test_detect_format():
    assert detect_format("x/part.jsonl") == "jsonl"
    assert detect_format("x/part.JSONL.GZ") == "jsonl"
    assert detect_format("x/part.parquet") == "parquet"
    assert detect_format("x/00001.tar") == "tar"
    assert (detect_format("x/urls.csv"), detect_format("x/urls.TSV.gz")) == ("csv", "tsv")
    with pytest.raises(ValueError, match="format"):
        detect_format("x/part.txt")


def test_undecodable_line_counts_every_text_it_visibly_holds(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_bytes(b'{"id": "a", "texts": ["caf\xe9", "b", "c"]}\n{"id": "b", "text": "caf\xe9"}\n{"id": "c", \xff\n{"id": "d", "texts": ["ok"]}\n')
    images = list(read_shard(path))
    assert [(im.invalid, im.where) for im in images if im.id is None] == [
        (["undecodable"] * 3, [1] * 3), (["undecodable"], [2]), (["undecodable"], [3])]  # fmt: skip
    assert [im.id for im in images if im.id] == ["d"]


def test_too_long_line_is_skipped_without_being_held(tmp_path):
    from metaclip2.pipeline.io.jsonl import _read_jsonl
    from metaclip2.pipeline.io.records import _Resolver

    path = tmp_path / "long.jsonl"
    long_line = json.dumps({"id": "big", "texts": ["a cat " * 2000]})
    path.write_text('{"id": "a", "texts": ["a cat"]}\n' + long_line + '\n{"id": "b", "texts": ["a dog"]}\n')
    # a cap of 1,000 bytes stands for the default (1 MiB, or 64 x max_chars) and a 1 GiB line
    images = list(_read_jsonl(str(path), 100, _Resolver(str(path), ReaderSpec(), None), cap=1000))
    assert [(im.id, im.invalid, im.where) for im in images] == [("a", [None], [1]), (None, ["too_long"], [2]), ("b", [None], [3])]
    # with the default cap, the same line is an ordinary record (its text is too long, not the line)
    assert [im.invalid for im in read_shard(path, max_chars=100)] == [[None], ["too_long"], [None]]


def test_huge_line_memory_stays_bounded(tmp_path):
    import tracemalloc

    path = tmp_path / "huge.jsonl"
    size = 50 << 20
    with open(path, "wb") as f:
        f.write(b'{"id": "a", "texts": ["a cat"]}\n{"id": "huge", "texts": ["')
        chunk = b"x" * (1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)
        f.write(b'"]}\n{"id": "b", "texts": ["a dog"]}\n')
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        images = [(im.id, im.invalid) for im in read_shard(path)]
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert images == [("a", [None]), (None, ["too_long"]), ("b", [None])]
    assert peak < size // 8, f"peak {peak} bytes for a {size}-byte line"


def _shard_view(path):
    report = {}
    images = [(im.id, im.texts, im.indices, im.langs, im.invalid, im.where, im.extra, im.text_extra) for im in read_shard(path, report=report)]
    return images, report


def test_fast_json_parse_reads_exactly_as_json(tmp_path, monkeypatch):
    """orjson (where installed) and json give the same images: big integers, NaN, lone surrogates,
    a byte-order mark, blank and non-UTF-8 lines, deep nesting."""
    from metaclip2.pipeline.io import records

    pytest.importorskip("orjson")
    lines = [b'\xef\xbb\xbf{"id": "a", "text": "a red dog", "n": 1}', b'{"id": 123456789012345678901234567890, "text": "big id"}',
             b'{"id": "b", "text": "x", "score": NaN}', b'{"id": "c", "text": "\\ud800 lone"}', b"  ",
             b'{"id": "d", "text": "caf\xe9"}', b'{"id": "e", "texts": ["one", {"text": "zwei", "lang": "de"}], "w": 18446744073709551616}',
             b'{"id": "f", "text": "deep", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}", b'{"id": "g", "text": "fine", "f": 1e400}', b"[1, 2]"]  # fmt: skip
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_bytes(b"\n".join(lines) + b"\n")
    tar_path = tmp_path / "s.tar"
    with tarfile.open(tar_path, "w") as tar:
        for i, data in enumerate(lines):
            info = tarfile.TarInfo(f"{i:04d}.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    for path in (jsonl, tar_path):
        fast = _shard_view(path)
        with monkeypatch.context() as m:
            m.setattr(records, "_orjson", None)
            slow = _shard_view(path)
        assert fast == slow
    images, _ = _shard_view(jsonl)
    assert images[1][0] == "123456789012345678901234567890"  # an int id, not a float
    assert "undecodable" in images[3][4] and "undecodable" in images[4][4]
