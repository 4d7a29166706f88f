"""Real pool layouts in, their columns out: DataComp/img2dataset Parquet and tars with no flags,
named keys, carried columns, kept-key lists, fsspec inputs, given language codes."""

from __future__ import annotations

import functools
import http.server
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest

from metaclip2.pipeline.run.config import CurationConfig
from metaclip2.pipeline.io.readers import read_shard
from metaclip2.pipeline.io.records import LayoutError, ReaderSpec
from metaclip2.pipeline.run.api import curate

from fixtures import WORDS, make_images, make_metadata

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

KW = dict(t_en=8, progress=False, max_chars=100)


def flat_rows(seed: int, n: int, prefix: str) -> list[dict]:
    """One alt-text per image (the DataComp / img2dataset shape), with a language given."""
    rows = []
    for im in make_images(seed, n, prefix):
        t = im["texts"][0]
        rows.append({"id": im["id"], "text": t["text"], "lang": t["lang"], "url": f"https://img.example/{im['id']}.jpg"})
    return rows


def datacomp_parquet(path: Path, rows) -> Path:
    table = pa.table({
        "uid": [r["id"] for r in rows], "url": [r["url"] for r in rows], "text": [r["text"] for r in rows],
        "original_width": [640 + i for i in range(len(rows))], "original_height": [480] * len(rows),
        "clip_b32_similarity_score": [0.25 + i / 1000 for i in range(len(rows))],
        "face_bboxes": [[[0.1, 0.2, 0.3, 0.4]]] * len(rows), "sha256": ["ab" * 32] * len(rows),
    })  # fmt: skip
    pq.write_table(table, path)
    return path


def img2dataset_parquet(path: Path, rows) -> Path:
    table = pa.table({
        "key": [f"{i:09d}" for i in range(len(rows))], "caption": [r["text"] for r in rows], "url": [r["url"] for r in rows],
        "status": ["success"] * len(rows), "error_message": [None] * len(rows), "width": [256] * len(rows),
        "height": [256] * len(rows), "exif": ["{}"] * len(rows),
    })  # fmt: skip
    pq.write_table(table, path)
    return path


def _add(tar, name, data: bytes, **kw):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if data else None)


def img2dataset_tar(path: Path, rows, start: int = 0) -> Path:
    """img2dataset's tar layout; keys are unique across shards (``start`` + row number), as img2dataset writes them."""
    with tarfile.open(path, "w") as tar:
        for i, r in enumerate(rows):
            key = f"{start + i:09d}"
            meta = {"url": r["url"], "caption": r["text"], "key": key, "status": "success", "error_message": None,
                    "width": 256, "height": 256, "original_width": 640, "original_height": 480, "exif": "{}"}  # fmt: skip
            _add(tar, f"{key}.jpg", b"\xff\xd8\xff fake jpeg")
            _add(tar, f"{key}.txt", r["text"].encode())
            _add(tar, f"{key}.json", json.dumps(meta).encode())
    return path


@pytest.fixture(scope="module")
def meta(tmp_path_factory):
    return make_metadata(tmp_path_factory.mktemp("meta") / "m")


def _subset(res) -> list[dict]:
    rows = []
    for p in res.outputs:
        if p.suffix == ".parquet":
            rows += pq.read_table(p).to_pylist()
        else:
            rows += [json.loads(line) for line in p.read_text().splitlines()]
    return rows


@pytest.mark.parametrize("layout", ["datacomp", "img2dataset-parquet", "img2dataset-tar"])
def test_known_layouts_curate_with_no_flags(meta, tmp_path, layout):
    expected_layout = {"datacomp": "datacomp", "img2dataset-parquet": "img2dataset", "img2dataset-tar": "img2dataset"}
    rows = flat_rows(1, 150, "p")
    make = {"datacomp": datacomp_parquet, "img2dataset-parquet": img2dataset_parquet, "img2dataset-tar": img2dataset_tar}[layout]
    src = make(tmp_path / ("pool.tar" if layout.endswith("tar") else "pool.parquet"), rows)
    res = curate(meta, [str(src)], tmp_path / "run", output_format="parquet", keys_list=True, **KW)
    t = res.datacard["totals"]
    assert t["invalid"] == 0 and t["pairs"] == 150 and t["kept"] > 0
    shard = res.datacard["shards"][0]
    assert res.datacard["layouts"] == {expected_layout[layout]: 1}
    expected = {"datacomp": ("datacomp", "uid", ["text"]), "img2dataset-parquet": ("img2dataset", "key", ["caption"]),
                "img2dataset-tar": ("img2dataset", "key", ["caption"])}[layout]  # fmt: skip
    assert (shard["layout"]["layout"], shard["layout"]["id_key"], shard["layout"]["text_keys"]) == expected
    out = _subset(res)
    assert len(out) == t["kept"]
    by_url = {r["url"]: r for r in rows}
    for row in out:  # the input's columns come through, typed
        assert by_url[row["url"]]["text"] == row["text"]
    schema = pq.read_schema(res.outputs[0])
    if layout == "datacomp":
        assert schema.field("original_width").type == pa.int64()
        assert schema.field("clip_b32_similarity_score").type == pa.float64()
        assert schema.field("face_bboxes").type == pa.list_(pa.list_(pa.float64()))  # nested columns are carried
    else:
        assert schema.field("status").type == pa.string() and schema.field("width").type == pa.int64()
    id_column = expected[1]  # the id column keeps the input's name
    assert schema.names[:6] == [id_column, "text", "text_index", "lang", "ids", "keep_probability"]
    assert schema.names[6:] == sorted(schema.names[6:])
    keys = (res.out / "keys" / f"{res.outputs[0].stem}.keys.txt").read_text().split()
    assert keys == [r[id_column] for r in out]


def test_jsonl_with_named_keys_cli(meta, tmp_path, capsys):
    from metaclip2.cli.main import main

    rows = flat_rows(2, 80, "j")
    src = tmp_path / "pool.jsonl"
    src.write_text("".join(json.dumps({"uid": r["id"], "caption": r["text"], "url": r["url"]}) + "\n" for r in rows))
    assert main(["curate", "--metadata", str(meta), "--input", str(src), "--out", str(tmp_path / "run"), "--t-en", "8",
                 "-q", "--id-key", "uid", "--text-key", "caption", "--drop-keys", "nothing"]) == 0  # fmt: skip
    card = json.loads((tmp_path / "run" / "datacard.json").read_text())
    assert card["totals"]["invalid"] == 0 and card["totals"]["pairs"] == 80
    assert card["parameters"]["stage1"]["text_keys"] == ["caption"]
    out = [json.loads(x) for x in (tmp_path / "run" / "subset" / "pool.jsonl").read_text().splitlines()]
    assert out and all(set(r) == {"uid", "text", "text_index", "lang", "ids", "keep_probability", "url"} for r in out)


def test_wrong_keys_name_the_fields_found(meta, tmp_path, caplog):
    src = tmp_path / "pool.jsonl"
    src.write_text("".join(json.dumps({"uid": f"u{i}", "caption": "the cat"}) + "\n" for i in range(20)))
    with pytest.raises(Exception, match="nothing to curate.*20 pairs: 20 invalid \\(mostly missing_id: 20\\)"):
        curate(meta, [str(src)], tmp_path / "run", **KW)
    text = caplog.text
    assert "20 of 20 pairs invalid, mostly missing_id" in text and "fields found: caption, uid" in text


def test_ambiguous_layout_names_the_candidates(tmp_path):
    src = tmp_path / "x.jsonl"
    src.write_text(json.dumps({"id": "a", "uid": "b", "text": "cat"}) + "\n")
    with pytest.raises(LayoutError, match=r"metaclip2 \(id \+ text\), datacomp \(uid \+ text\)"):
        list(read_shard(src))
    (im,) = read_shard(src, spec=ReaderSpec(id_key="uid"))
    assert im.id == "b"


def test_several_text_keys_and_keep_drop(tmp_path):
    src = tmp_path / "x.jsonl"
    src.write_text(json.dumps({"key": "k", "short": "a cat", "long": "a red car", "url": "u", "w": 3, "nested": {"a": 1}}) + "\n")
    (im,) = read_shard(src, spec=ReaderSpec(id_key="key", text_keys="short,long"))
    assert im.texts == ["a cat", "a red car"] and im.extra == {"url": "u", "w": 3}
    (im,) = read_shard(src, spec=ReaderSpec(id_key="key", text_keys=["short"], keep_keys=["url", "w"], drop_keys=["w"]))
    assert im.fields(0) == {"url": "u"}


def test_per_text_fields_are_carried(meta, tmp_path):
    src = tmp_path / "x.jsonl"
    src.write_text(json.dumps({"id": "i1", "url": "U", "texts": [{"text": "the cat", "lang": "en", "source": "alt"},
                                                                   {"text": "der Hund", "lang": "de", "source": "title"}]}) + "\n")  # fmt: skip
    res = curate(meta, [str(src)], tmp_path / "run", unit="pair", t_en=1000, progress=False)
    out = _subset(res)
    assert sorted((r["source"], r["url"]) for r in out) == [("alt", "U"), ("title", "U")]


def test_config_key_options():
    c = CurationConfig(text_keys="a, b", keep_keys=["x,y", "z"])
    assert c.text_keys == ("a", "b") and c.keep_keys == ("x", "y", "z")
    assert c.section(1)["text_keys"] == ["a", "b"]
    with pytest.raises(ValueError, match="text_keys"):
        CurationConfig(text_keys="a,,b")
    import argparse

    from metaclip2.pipeline.run.config import add_config_arguments, config_from_arguments

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, (1, 3))
    args = parser.parse_args(["--id-key", "uid", "--text-key", "a", "--text-key", "b,c", "--drop-keys", "exif", "--keys-list"])
    c = config_from_arguments(args)
    assert (c.id_key, c.text_keys, c.drop_keys, c.keys_list) == ("uid", ("a", "b", "c"), ("exif",), True)
    assert c.reader_spec() == ReaderSpec(id_key="uid", text_keys=("a", "b", "c"), drop_keys=("exif",))


def test_given_language_codes_are_normalised_and_unknown_ones_counted(meta, tmp_path):
    lines = [{"id": "a", "text": "der Hund", "lang": "deu"}, {"id": "b", "text": "the cat", "lang": "eng_Latn"},
             {"id": "c", "text": "猫", "lang": "zh-Hans"}, {"id": "d", "text": "kot", "lang": "xx-klingon"},
             {"id": "e", "text": "the dog", "lang": "en-GB"}]  # fmt: skip
    src = tmp_path / "x.jsonl"
    src.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    res = curate(meta, [str(src)], tmp_path / "run", t_en=1000, progress=False, unit="pair")
    card = res.datacard
    assert card["unknown_lang_codes"] == {"xx-klingon": 1}
    assert {r["id"]: r["lang"] for r in _subset(res)} == {"a": "de", "b": "en", "c": "zh", "d": "other", "e": "en"}


# -- fsspec ---------------------------------------------------------------------------------------


def test_memory_fs_input_gives_the_same_subset(meta, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    rows = flat_rows(3, 60, "m")
    local = datacomp_parquet(tmp_path / "pool.parquet", rows)
    fs = fsspec.filesystem("memory")
    fs.pipe("/pools/dc/pool.parquet", local.read_bytes())
    a = curate(meta, [str(local)], tmp_path / "a", **KW)
    b = curate(meta, ["memory://pools/dc/*.parquet"], tmp_path / "b", **KW)
    assert b.datacard["inputs"] == ["memory:///pools/dc/pool.parquet"]
    assert a.outputs[0].read_bytes() == b.outputs[0].read_bytes()


def test_http_input(meta, tmp_path):
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp", reason="fsspec's HTTP filesystem needs aiohttp")
    rows = flat_rows(4, 40, "h")
    served = tmp_path / "www"
    served.mkdir()
    img2dataset_tar(served / "00000.tar", rows)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/00000.tar"
        b = curate(meta, [url], tmp_path / "b", **KW)
    finally:
        server.shutdown()
        thread.join()
    a = curate(meta, [str(served / "00000.tar")], tmp_path / "a", **KW)
    assert b.datacard["totals"]["invalid"] == 0
    assert a.outputs[0].read_bytes() == b.outputs[0].read_bytes()


def test_metadata_on_fsspec_is_mirrored_locally(meta, tmp_path, monkeypatch):
    fsspec = pytest.importorskip("fsspec")
    monkeypatch.setenv("METACLIP2_CACHE", str(tmp_path / "cache"))
    fs = fsspec.filesystem("memory")
    for p in sorted(Path(meta).glob("*.tsv")):
        fs.pipe(f"/meta-{tmp_path.name}/{p.name}", p.read_bytes())
    rows = flat_rows(5, 40, "f")
    src = datacomp_parquet(tmp_path / "pool.parquet", rows)
    a = curate(meta, [str(src)], tmp_path / "a", **KW)
    b = curate(f"memory://meta-{tmp_path.name}", [str(src)], tmp_path / "b", **KW)
    assert a.outputs[0].read_bytes() == b.outputs[0].read_bytes()
    assert a.datacard["metadata_digests"] == b.datacard["metadata_digests"]
    assert sorted(p.name for p in (tmp_path / "cache" / "metadata").glob("*/*.tsv")) == sorted(p.name for p in Path(meta).glob("*.tsv"))


def test_run_directory_url_is_refused(meta, tmp_path):
    with pytest.raises(ValueError, match="run directories are local"):
        curate(meta, [str(tmp_path / "x.jsonl")], "s3://bucket/run", **KW)


def test_carried_columns_are_deterministic(meta, tmp_path):
    from fixtures import tree

    (tmp_path / "in").mkdir()
    for s in range(3):
        datacomp_parquet(tmp_path / "in" / f"part-{s}.parquet", flat_rows(10 + s, 60, f"d{s}-"))
    a = curate(meta, [str(tmp_path / "in" / "*.parquet")], tmp_path / "a", output_format="parquet", workers=1, **KW)
    b = curate(meta, [str(tmp_path / "in" / "*.parquet")], tmp_path / "b", output_format="parquet", workers=2, **KW)
    assert tree(a.out / "stage3") == tree(b.out / "stage3") and tree(a.out / "subset") == tree(b.out / "subset")


def test_extra_types_do_not_depend_on_row_order():
    import random

    from metaclip2.pipeline.io.writers import ExtraTypes

    rows = [{"a": 1, "b": 1.5, "c": "x", "d": True, "e": None}, {"a": 2, "b": 2, "c": 3, "d": False, "e": None},
            {"a": None, "b": None, "c": None, "d": None, "f": 2**70}]  # fmt: skip
    want = {"a": "int", "b": "float", "c": "string", "d": "bool", "e": "string", "f": "string"}
    for seed in range(5):
        random.Random(seed).shuffle(rows)
        t = ExtraTypes()
        for r in rows:
            t.add(r)
        assert t.types() == want and list(t.types()) == sorted(want)


def test_fsspec_input_is_fingerprinted_for_resume(meta, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    from metaclip2.core.errors import DataError

    fs = fsspec.filesystem("memory")
    url = f"memory://fp-{tmp_path.name}/pool.jsonl"
    lines = "".join(json.dumps({"id": f"i{i}", "text": "the cat sat"}) + "\n" for i in range(30))
    fs.pipe(url.removeprefix("memory://"), lines.encode())
    a = curate(meta, [url], tmp_path / "run", **KW)
    again = curate(meta, [url], tmp_path / "run", **KW)  # resumes: everything verified, nothing redone
    assert again.datacard["totals"] == a.datacard["totals"]
    fs.pipe(url.removeprefix("memory://"), lines.replace("cat", "dog").encode())  # same size, other content
    with pytest.raises(DataError, match="pool"):
        curate(meta, [url], tmp_path / "run", **KW)


def test_failed_downloads_are_their_own_outcome_and_match_the_tars(meta, tmp_path):
    """img2dataset's Parquet lists every url (``status`` failed_to_download for some); its tars
    hold only the downloaded ones: both give the same kept set, and the failures are counted."""
    rows = flat_rows(7, 120, "d")
    failed = set(range(0, 120, 4))
    table = pa.table({
        "key": [f"{i:09d}" for i in range(len(rows))], "caption": [r["text"] for r in rows], "url": [r["url"] for r in rows],
        "status": ["failed_to_download" if i in failed else "success" for i in range(len(rows))],
        "error_message": ["timeout" if i in failed else None for i in range(len(rows))],
    })  # fmt: skip
    pq.write_table(table, tmp_path / "pool.parquet")
    tar_dir = tmp_path / "tars"
    tar_dir.mkdir()
    with tarfile.open(tar_dir / "00000.tar", "w") as tar:
        for i, r in enumerate(rows):
            if i not in failed:  # img2dataset writes no sample for a failed download
                key = f"{i:09d}"
                _add(tar, f"{key}.jpg", b"\xff\xd8\xff fake jpeg")
                _add(tar, f"{key}.txt", r["text"].encode())
                _add(tar, f"{key}.json", json.dumps({"url": r["url"], "caption": r["text"], "key": key, "status": "success"}).encode())
    a = curate(meta, [str(tmp_path / "pool.parquet")], tmp_path / "run-pq", output_format="parquet", **KW)
    b = curate(meta, [str(tar_dir / "00000.tar")], tmp_path / "run-tar", output_format="parquet", **KW)
    ta, tb = a.datacard["totals"], b.datacard["totals"]
    assert ta["pairs"] == 120 and ta["invalid_by_reason"] == {"not_downloaded": len(failed)}
    assert ta["pairs"] == ta["invalid"] + ta["no_metadata"] + ta["unmatched"] + ta["matched"]
    assert tb["pairs"] == 120 - len(failed) and tb["invalid"] == 0
    assert ta["kept"] == tb["kept"] > 0 and ta["matched"] == tb["matched"]
    kept = lambda res: sorted((r["key"], r["text_index"], r["url"]) for r in _subset(res))  # noqa: E731
    assert kept(a) == kept(b)
    assert not {r["key"] for r in _subset(a)} & {f"{i:09d}" for i in failed}
    # a tar sample whose .json says it failed is counted the same way
    with tarfile.open(tmp_path / "bad.tar", "w") as tar:
        _add(tar, "000000001.txt", b"a red dog")
        _add(tar, "000000001.json", json.dumps({"key": "000000001", "status": "failed_to_download"}).encode())
    (im,) = read_shard(tmp_path / "bad.tar")
    assert im.id is None and im.invalid == ["not_downloaded"]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_subset_directory_is_a_dataset(meta, tmp_path, fmt, monkeypatch):
    """RUN/subset holds the data files only: readers pointed at the directory load the kept rows."""
    import pyarrow.dataset as ds

    src = datacomp_parquet(tmp_path / "pool.parquet", flat_rows(3, 120, "s"))
    res = curate(meta, [str(src)], tmp_path / "run", output_format=fmt, keys_list=True, **KW)
    subset = res.out / "subset"
    assert sorted(p.name for p in subset.iterdir()) == [f"pool.{fmt}"]
    assert [p.parent for p in res.outputs] == [subset]
    assert sorted(p.name for p in (res.out / "keys").iterdir()) == ["pool.keys.txt"]
    assert sorted(p.name for p in (res.out / "stage3").iterdir()) == ["pool.examples.json", "pool.stats.json"]  # sidecars stay beside the accounting
    want = sorted((r["uid"] if "uid" in r else r["id"], r["text_index"]) for r in _subset(res))
    assert len(want) == res.datacard["totals"]["kept"] > 0
    key = lambda rows: sorted((r.get("uid", r.get("id")), r["text_index"]) for r in rows)  # noqa: E731
    if fmt == "parquet":
        assert key(ds.dataset(subset).to_table().to_pylist()) == want
        assert key(pq.read_table(subset).to_pylist()) == want
    else:
        assert key(ds.dataset(subset, format="json").to_table().to_pylist()) == want
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    loaded = datasets.load_dataset("parquet" if fmt == "parquet" else "json", data_dir=str(subset), split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))  # fmt: skip
    assert key(loaded.to_list()) == want


@pytest.mark.parametrize("reader", ["polars", "duckdb"])
def test_subset_directory_in_other_readers(meta, tmp_path, reader):
    mod = pytest.importorskip(reader, reason=f"{reader} is not installed")
    src = datacomp_parquet(tmp_path / "pool.parquet", flat_rows(3, 60, "o"))
    res = curate(meta, [str(src)], tmp_path / "run", output_format="parquet", **KW)
    glob = str(res.out / "subset" / "*.parquet")
    n = mod.read_parquet(glob).height if reader == "polars" else mod.sql(f"select count(*) from '{glob}'").fetchone()[0]
    assert n == res.datacard["totals"]["kept"] > 0


def test_columns_come_out_as_they_came(meta, tmp_path):
    """DataComp's uid stays uid; nested face_bboxes and float32/int32 columns keep their Arrow types."""
    rows = flat_rows(4, 120, "c")
    bboxes = pa.list_(pa.list_(pa.float32()))
    table = pa.table({
        "uid": pa.array([r["id"] for r in rows]), "text": pa.array([r["text"] for r in rows]), "url": [r["url"] for r in rows],
        "clip_l14_similarity_score": pa.array([0.25 + i / 1024 for i in range(len(rows))], pa.float32()),
        "original_width": pa.array(range(len(rows)), pa.int32()),
        "face_bboxes": pa.array([[[0.125, 0.25, 0.5, 0.75]] * (i % 3) for i in range(len(rows))], bboxes),
        "meta": pa.array([{"a": i, "b": [1.5]} for i in range(len(rows))]),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "pool.parquet")
    res = curate(meta, [str(tmp_path / "pool.parquet")], tmp_path / "run", output_format="parquet", keys_list=True, **KW)
    out = pq.read_table(res.out / "subset")
    assert out.num_rows == res.datacard["totals"]["kept"] > 0
    assert out.schema.names[0] == "uid" and "id" not in out.schema.names
    for name in ("clip_l14_similarity_score", "original_width", "face_bboxes", "meta"):
        assert out.schema.field(name).type == table.schema.field(name).type, name
    by_uid = {r["uid"]: r for r in table.to_pylist()}
    for r in out.to_pylist():  # the values too, bit for bit
        src = by_uid[r["uid"]]
        assert (r["clip_l14_similarity_score"], r["face_bboxes"], r["meta"]) == (src["clip_l14_similarity_score"], src["face_bboxes"], src["meta"])
    assert "carried_schema" not in res.datacard["shards"][0]["layout"]  # stage 3's business, not the datacard's
    # JSONL subset: the same values, nested ones as JSON
    res = curate(meta, [str(tmp_path / "pool.parquet")], tmp_path / "run-jsonl", output_format="jsonl", **KW)
    got = {r["uid"]: r for r in _subset(res)}
    assert got and all(got[u]["face_bboxes"] == by_uid[u]["face_bboxes"] for u in got)


def test_keep_keys_that_cannot_be_carried_are_an_error(meta, tmp_path):
    import datetime

    rows = flat_rows(5, 20, "t")
    table = pa.table({"uid": [r["id"] for r in rows], "text": [r["text"] for r in rows], "url": [r["url"] for r in rows],
                      "seen": [datetime.datetime(2024, 1, 1)] * len(rows)})  # fmt: skip
    pq.write_table(table, tmp_path / "pool.parquet")
    from metaclip2.core.errors import ParameterError

    with pytest.raises(ParameterError, match=r"--keep-keys seen: column seen of .*pool.parquet is timestamp\[us\]"):
        list(read_shard(tmp_path / "pool.parquet", spec=ReaderSpec(keep_keys="url,seen")))
    (first, *_) = read_shard(tmp_path / "pool.parquet")  # not named: not carried, as before
    assert set(first.fields(0)) == {"url"}
    # a JSONL field named in --keep-keys is carried even when it is a list or an object
    src = tmp_path / "x.jsonl"
    src.write_text(json.dumps({"id": "k", "text": "a cat", "boxes": [[1, 2]], "m": {"a": 1}, "n": {"b": 2}}) + "\n")
    (im,) = read_shard(src, spec=ReaderSpec(keep_keys="boxes,m"))
    assert im.fields(0) == {"boxes": [[1, 2]], "m": {"a": 1}}


def _delimited(path: Path, header: list[str], rows: list[list[str]], sep: str) -> Path:
    import csv
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=sep)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.mark.parametrize("name", ["urls.csv", "urls.tsv", "urls.csv.gz"])
def test_csv_and_tsv_url_lists(meta, tmp_path, name):
    """img2dataset's url lists: the same kept set as its Parquet of the same rows; named keys work too."""
    rows = flat_rows(6, 100, "v")
    sep = "\t" if ".tsv" in name else ","
    keyed = _delimited(tmp_path / name, ["key", "caption", "url"], [[f"{i:09d}", r["text"], r["url"]] for i, r in enumerate(rows)], sep)
    ref = curate(meta, [str(img2dataset_parquet(tmp_path / "pool.parquet", rows))], tmp_path / "ref", **KW)
    res = curate(meta, [str(keyed)], tmp_path / "run", **KW)
    assert res.datacard["shards"][0]["layout"]["layout"] == "img2dataset"
    kept = lambda r: sorted((x["key"], x["text"], x["url"]) for x in _subset(r))  # noqa: E731
    assert kept(res) == kept(ref) and res.datacard["totals"]["pairs"] == 100
    # no id column: rows are numbered <stem>:<row>; other key names with --id-key/--text-key
    (tmp_path / "b").mkdir()
    plain = _delimited(tmp_path / "b" / name, ["url", "caption"], [[r["url"], r["text"]] for r in rows], sep)
    ims = list(read_shard(plain))
    assert [im.id for im in ims[:2]] == ["urls:000000000", "urls:000000001"] and ims[0].fields(0) == {"url": rows[0]["url"]}
    (tmp_path / "c").mkdir()
    named = _delimited(tmp_path / "c" / name, ["uid", "alt", "n"], [[r["id"], r["text"], "1984"] for r in rows], sep)
    ims = list(read_shard(named, spec=ReaderSpec(id_key="uid", text_keys="alt")))
    assert [im.id for im in ims] == [r["id"] for r in rows] and ims[0].fields(0) == {"n": "1984"}  # every column a string


def test_csv_bad_rows_are_counted(tmp_path):
    src = tmp_path / "urls.csv"
    src.write_text('url,caption\nhttp://a/1,a red dog\nhttp://a/2,"a cat, with ""quotes""\nand a line break"\nbad,row,extra\nhttp://a/4,\n')
    ims = list(read_shard(src))
    assert [(im.id, im.texts, im.invalid) for im in ims if im.id] == [
        ("urls:000000000", ["a red dog"], [None]), ("urls:000000001", ['a cat, with "quotes"\nand a line break'], [None]),
        ("urls:000000002", [None], ["empty"])]  # fmt: skip
    assert [im.invalid for im in ims if im.id is None] == [["malformed"]]
    cut = tmp_path / "cut.csv.gz"
    import gzip

    cut.write_bytes(gzip.compress(src.read_bytes())[:-12])
    ims = list(read_shard(cut))
    assert any(im.invalid == ["damaged"] for im in ims)


def test_forks_inherit_output_options_and_write_their_datacard(meta, tmp_path, capsys):
    from metaclip2.cli.main import main

    src = datacomp_parquet(tmp_path / "pool.parquet", flat_rows(8, 100, "f"))
    run = tmp_path / "run"
    curate(meta, [str(src)], run, output_format="parquet", keys_list=True, **KW)
    # thresholds --out NEW, then sample NEW: the source's parquet and key lists
    assert main(["thresholds", str(run), "--out", str(tmp_path / "t4"), "--t-en", "4", "-q"]) == 0
    card = json.loads((tmp_path / "t4" / "datacard.json").read_text())
    assert card["complete"] is False and card["totals"]["pairs"] == 100
    assert main(["sample", str(tmp_path / "t4"), "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "t4" / "subset").iterdir()) == ["pool.parquet"]
    assert (tmp_path / "t4" / "keys" / "pool.keys.txt").exists()
    card = json.loads((tmp_path / "t4" / "datacard.json").read_text())
    assert card["complete"] and card["parameters"]["stage3"]["output_format"] == "parquet" and card["parameters"]["stage3"]["keys_list"]
    # sample RUN --out NEW --seed 1: inherited too; an option given here wins
    assert main(["sample", str(run), "--out", str(tmp_path / "s1"), "--seed", "1", "-q"]) == 0
    assert (tmp_path / "s1" / "subset" / "pool.parquet").exists() and (tmp_path / "s1" / "datacard.json").exists()
    assert main(["sample", str(run), "--out", str(tmp_path / "s2"), "--output-format", "jsonl", "-q"]) == 0
    assert (tmp_path / "s2" / "subset" / "pool.jsonl").exists() and (tmp_path / "s2" / "keys" / "pool.keys.txt").exists()
    capsys.readouterr()
    # from Python the same
    from metaclip2.pipeline.run.api import sample

    sample(tmp_path / "py", source=run, seed=2, progress=False)
    assert (tmp_path / "py" / "subset" / "pool.parquet").exists() and (tmp_path / "py" / "datacard.json").exists()
