"""Crafted or odd files end in one line naming the file, never a traceback or a wrong result (issue 21).

Every file here is made the way an attacker, a careless script or a mix-up would make it:
JSON nested 100,000 deep, index chunks whose checksum is recomputed over bad fields, an
array file holding two arrays of one name, a stats file with one digit edited, and a
directory, a named pipe or ``/dev/zero`` where a file is expected. Each must be refused
with a :class:`DataError` (or redone, where the run can redo it) whose message names it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

from metaclip2.core.arrayfile import load_arrays, load_header, save_arrays
from metaclip2.core.entries import read_metadata
from metaclip2.core.errors import DataError, MatcherFileError, Metaclip2Error
from metaclip2.core.jsonfile import read_json, seal
from metaclip2.curation.counts import EntryCounts
from metaclip2.curation.sampling import EntryProbabilities
from metaclip2.pipeline import curate
from metaclip2.pipeline.run.datacard import make_datacard
from metaclip2.pipeline.builds.demo import write_example_pool
from metaclip2.pipeline.io.index import encode_rows, iter_chunks
from metaclip2.pipeline.run.rundir import RunDir, load_json
from metaclip2.pipeline.stages.stats import Stage1Stats, Stage3Stats
from metaclip2.pipeline.run import verify

DEEP = b"[" * 100_000 + b"]" * 100_000
INDEX_MAGIC = b"MC2INDEX/2\n\x00"
HEAD = struct.Struct("<4sIQI")


def one_line_naming(e: BaseException, path) -> str:
    msg = str(e)
    assert Path(path).name in msg, msg
    assert "\n" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("pool")
    write_example_pool(d)
    result = curate(d / "metadata", d / "pool.jsonl", out=d / "run", t_en=2, progress=False)
    return {"dir": d, "out": result.out, "card": make_datacard(result.out)}


@pytest.fixture
def run(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference["out"], out)
    return out


def again(reference, out):
    d = reference["dir"]
    return curate(d / "metadata", d / "pool.jsonl", out=out, t_en=2, progress=False)


def redone(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "redone" in r.getMessage()]


# -- JSON nested 100,000 deep, in every kind of JSON the package reads back ---------------------


@pytest.mark.parametrize("name", ["run.json", "stage1/pool.stats.json", "stage3/pool.stats.json", "stage2/thresholds.json"])
def test_deeply_nested_json_record_is_one_data_error(run, name):
    path = run / name
    path.write_bytes(DEEP)
    with pytest.raises(DataError) as e:
        make_datacard(run)
    assert "nested 100000 deep" in one_line_naming(e.value, path)


def test_deeply_nested_run_json_is_refused_by_the_run(run):
    (run / "run.json").write_bytes(b'{"format": ' + DEEP + b"}")
    with pytest.raises(DataError) as e:
        RunDir(run).read()
    assert "restore it" in one_line_naming(e.value, run / "run.json")


def test_deeply_nested_stats_make_the_shard_redone(run):
    path = run / "stage1" / "pool.stats.json"
    path.write_bytes(DEEP)
    check = verify.stage1_shard(run / "stage1", "pool", str(run.parent / "pool.jsonl"))
    assert check.stats is None and "nested" in check.problem
    with pytest.raises(DataError) as e:
        Stage1Stats.from_json(load_json(path), str(path))
    one_line_naming(e.value, path)


def _array_file(path: Path, meta: bytes, body: bytes = b"") -> None:
    head = len(meta).to_bytes(8, "little") + meta
    path.write_bytes(b"MC2ARR02" + hashlib.sha256(head + body).digest() + head + body)


def test_deeply_nested_array_file_header(tmp_path):
    path = tmp_path / "probabilities.bin"
    _array_file(path, DEEP)  # a valid checksum: only the depth bound stops it
    for load in (load_arrays, load_header, EntryProbabilities.load):
        with pytest.raises(DataError) as e:
            load(path)
        assert "nested" in one_line_naming(e.value, path)


def test_deeply_nested_counts_footer(tmp_path):
    path = tmp_path / "counts.bin"
    EntryCounts.from_arrays({"en": [3, 0, 2]}, {"en": "e" * 64}).save(path)
    tail = b"MC2COUNTS-END\n"
    path.write_bytes(b"MC2COUNTS/2\n" + DEEP + len(DEEP).to_bytes(8, "little") + tail)
    with pytest.raises(DataError) as e:
        EntryCounts.load(path)
    assert "nested" in one_line_naming(e.value, path)


def test_depth_scan_skips_brackets_inside_strings_with_escapes():
    from metaclip2.core.jsonfile import json_depth, parse_json

    assert json_depth(rb'["\\", ["]]"]]') == 2  # an escaped backslash ends before the quote
    assert json_depth(rb'{"a": "\"[[[", "b": [[]]}') == 3  # an escaped quote does not end the string
    text = b'{"q": "' + b"[" * 100_000 + b'"}'  # deep only inside a string: fine
    assert parse_json(text, "run.json") == {"q": "[" * 100_000}


def test_json_record_with_a_duplicate_key_is_refused(run):
    path = run / "stage2" / "thresholds.json"
    path.write_text('{"t": {"en": 2}, "t": {"en": 3}}', encoding="utf-8")
    with pytest.raises(DataError) as e:
        make_datacard(run)
    assert "appears twice" in one_line_naming(e.value, path)


# -- stage-1 index chunks: the CRC is recomputed, so only the field checks stop them ------------


ROWS = [(0, "a", 0, "en", [0, 2], "a red dog", None), (0, "a", 1, "de", [1], "ein Hund", {"url": "u"}),
        (3, "c", 0, "en", [1], "a cat", None)]  # fmt: skip


def _parts() -> tuple[dict, bytes]:
    raw = encode_rows(ROWS)
    _, meta_len, payload_len, _ = HEAD.unpack(raw[: HEAD.size])
    meta = json.loads(raw[HEAD.size : HEAD.size + meta_len])
    return meta, raw[HEAD.size + meta_len :]


def _chunk(meta, payload: bytes, payload_len: int | None = None) -> bytes:
    meta_raw = meta if isinstance(meta, bytes) else json.dumps(meta, separators=(",", ":")).encode()
    crc = zlib.crc32(payload, zlib.crc32(meta_raw))
    n = len(payload) if payload_len is None else payload_len
    return HEAD.pack(b"CHNK", len(meta_raw), n, crc) + meta_raw + payload


def _column_at(meta: dict, name: str) -> tuple[int, np.dtype]:
    pos = 0
    for col, dtype, count in meta["arrays"]:
        if col == name:
            return pos, np.dtype(dtype)
        pos += np.dtype(dtype).itemsize * count
    raise KeyError(name)


def _bump(meta: dict, payload: bytes, name: str, value: int) -> bytes:
    pos, dtype = _column_at(meta, name)
    b = bytearray(payload)
    b[pos : pos + dtype.itemsize] = np.array([value], dtype=dtype).tobytes()
    return bytes(b)


def _crafted(kind: str) -> bytes:
    meta, payload = _parts()
    if kind == "missing key":
        del meta["langs"]
    elif kind == "lang code out of range":
        meta["langs"] = meta["langs"][:1]  # rows still use code 1
    elif kind == "rows of wrong type":
        meta["rows"] = "3"
    elif kind == "rows disagree":
        meta["rows"] = 4
    elif kind == "column renamed":
        meta["arrays"][0][0] = "m"
    elif kind == "array longer than payload":
        meta["arrays"][7][2] += 1_000_000
    elif kind == "blob longer than payload":
        meta["blobs"][2] = 1 << 61
    elif kind == "offsets past ids":
        payload = _bump(meta, payload, "n_ids", 9)
    elif kind == "ordinals out of order":
        payload = _bump(meta, payload, "n", 7)  # first image after the second
    elif kind == "empty image group":
        payload = _bump(meta, payload, "rows", 0)
    elif kind == "nested metadata":
        return INDEX_MAGIC + _chunk(DEEP, payload)
    elif kind == "payload_len 2**62":
        return INDEX_MAGIC + _chunk(meta, payload, payload_len=1 << 62)
    else:
        raise AssertionError(kind)
    return INDEX_MAGIC + _chunk(meta, payload)


CHUNK_KINDS = ["missing key", "lang code out of range", "rows of wrong type", "rows disagree", "column renamed",
               "array longer than payload", "blob longer than payload", "offsets past ids", "ordinals out of order",
               "empty image group", "nested metadata", "payload_len 2**62"]  # fmt: skip


def test_index_chunk_as_written_reads_back(tmp_path):
    meta, payload = _parts()
    path = tmp_path / "pool.index.bin"
    path.write_bytes(INDEX_MAGIC + _chunk(meta, payload))  # the helpers themselves change nothing
    [batch] = iter_chunks(path)
    assert batch.lang == ["en", "de", "en"] and batch.extra[1] == {"url": "u"} and batch.n.tolist() == [0, 0, 3]


@pytest.mark.parametrize("kind", CHUNK_KINDS)
def test_crafted_index_chunk_is_one_data_error(tmp_path, kind):
    path = tmp_path / "pool.index.bin"
    path.write_bytes(_crafted(kind))
    with pytest.raises(DataError) as e:
        list(iter_chunks(path))
    msg = one_line_naming(e.value, path)
    assert f"chunk at byte {len(INDEX_MAGIC)}" in msg and "run stage 1 again" in msg


def test_crafted_index_chunk_in_a_run_stops_stage_3_naming_it(run):
    from metaclip2.pipeline.run import sample

    index = run / "stage1" / "pool.index.bin"
    index.write_bytes(_crafted("lang code out of range"))
    (run / "stage3" / "pool.stats.json").unlink()
    with pytest.raises(DataError) as e:  # its digest no longer matches: named before it is read
        sample(run, progress=False)
    one_line_naming(e.value, index)


# -- array files ---------------------------------------------------------------------------------


def test_array_file_with_two_arrays_of_one_name(tmp_path):
    path = tmp_path / "probabilities.bin"
    arrays = [{"dtype": "<f8", "length": 1, "name": "en"}, {"dtype": "<f8", "length": 1, "name": "en"}]
    body = np.array([0.25, 1.0], dtype="<f8").tobytes()
    _array_file(path, json.dumps({"arrays": arrays, "header": {}}).encode(), body)
    with pytest.raises(DataError) as e:
        load_arrays(path)
    assert "two arrays named 'en'" in one_line_naming(e.value, path)


def test_array_file_lengths_checked_before_allocating(tmp_path):
    path = tmp_path / "counts.bin"
    arrays = [{"dtype": "<u8", "length": 1 << 60, "name": "en"}]
    _array_file(path, json.dumps({"arrays": arrays, "header": {}}).encode(), b"\0" * 8)
    with pytest.raises(DataError) as e:
        load_arrays(path)
    assert "declares" in one_line_naming(e.value, path)


def test_array_file_header_alone_is_checked_whole(tmp_path):
    path = tmp_path / "q.bin"
    save_arrays(path, {"t": {"en": 2}}, {"en": np.linspace(0, 1, 5000)})
    assert load_header(path) == {"t": {"en": 2}}
    data = bytearray(path.read_bytes())
    data[-3] ^= 4
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum"):
        load_header(path)


# -- records with one digit edited ----------------------------------------------------------------


def test_stats_with_one_digit_edited_is_refused_naming_it(run):
    path = run / "stage1" / "pool.stats.json"
    text = path.read_text(encoding="utf-8")
    assert '\n "matched": 6,' in text
    path.write_text(text.replace('\n "matched": 6,', '\n "matched": 7,'), encoding="utf-8")
    with pytest.raises(DataError) as e:
        Stage1Stats.from_json(load_json(path), str(path))
    assert "altered" in one_line_naming(e.value, path)
    with pytest.raises(DataError) as e:
        make_datacard(run)
    one_line_naming(e.value, path)


def test_stats_with_one_digit_edited_is_redone_with_a_warning(reference, run, caplog):
    for stage in ("stage1", "stage3"):
        path = run / stage / "pool.stats.json"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('"kept": 4', '"kept": 5').replace('"pairs": 4', '"pairs": 5'), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        again(reference, run)
    msgs = redone(caplog)
    assert any("stage 1" in m and "pool" in m and "altered" in m for m in msgs), msgs
    assert any("stage 3" in m and "pool" in m for m in msgs), msgs
    assert make_datacard(run) == reference["card"]


@pytest.mark.parametrize("edit, problem", [
    (lambda d: d["by_lang"]["en"].update(matched=5), "'en' has matched 5 > pairs 4"),
    (lambda d: d["by_lang"]["en"].update(pairs=5), "pairs sum to 7"),
    (lambda d: d.update(matched=5), "pairs 6 != invalid"),
    (lambda d: d.update(pairs=True), "not a count"),
])  # fmt: skip
def test_resealed_stats_that_do_not_add_up_are_refused(run, edit, problem):
    path = run / "stage1" / "pool.stats.json"
    d = json.loads(path.read_text(encoding="utf-8"))
    edit(d)
    path.write_text(json.dumps(seal(d)), encoding="utf-8")  # a valid seal: only the sums catch it
    with pytest.raises(DataError) as e:
        Stage1Stats.from_json(load_json(path), str(path))
    msg = one_line_naming(e.value, path)
    assert problem in msg and "run the stage again" in msg


def test_resealed_stage3_stats_that_do_not_add_up_are_refused(run):
    path = run / "stage3" / "pool.stats.json"
    d = json.loads(path.read_text(encoding="utf-8"))
    d["by_lang"]["de"]["kept"] = 3  # more kept than matched (2)
    path.write_text(json.dumps(seal(d)), encoding="utf-8")
    with pytest.raises(DataError) as e:
        Stage3Stats.from_json(load_json(path), str(path))
    assert "kept 3 > matched 2" in one_line_naming(e.value, path)


@pytest.mark.parametrize("resealed", [False, True])
def test_edited_thresholds_never_reach_the_datacard(reference, run, caplog, resealed):
    path = run / "stage2" / "thresholds.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    info["t"]["en"] = 3
    if resealed:  # a forger who recomputes the seal is still caught by probabilities.bin
        info = seal({k: v for k, v in info.items() if k != "record_sha256"})
    path.write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(DataError) as e:
        make_datacard(run)
    msg = one_line_naming(e.value, path)
    assert ("probabilities.bin was made with" in msg) if resealed else ("was altered after it was written" in msg)
    with caplog.at_level(logging.WARNING):
        again(reference, run)
    assert any("stage 2" in m and ("thresholds.json says t" in m or "altered" in m) for m in redone(caplog))
    assert make_datacard(run) == reference["card"]


def test_datacard_refuses_stage3_sampled_from_other_probabilities(run):
    path = run / "stage3" / "pool.stats.json"
    d = json.loads(path.read_text(encoding="utf-8"))
    d["sources"]["probabilities"] = "0" * 64
    path.write_text(json.dumps(seal(d)), encoding="utf-8")
    with pytest.raises(DataError, match="sampled with another probabilities.bin"):
        make_datacard(run)


def test_edited_run_json_is_refused(run):
    path = run / "run.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"t_en": 2', '"t_en": 3'), encoding="utf-8")
    with pytest.raises(DataError) as e:
        RunDir(run).read()
    assert "altered" in one_line_naming(e.value, path)


def test_cli_reports_a_crafted_stats_file_in_one_line(run, capsys):
    from metaclip2.cli import main

    (run / "stage3" / "pool.stats.json").write_bytes(DEEP)
    assert main(["report", str(run), "--no-plots"]) == 1
    err = capsys.readouterr().err.strip()
    assert "pool.stats.json is damaged" in err and len(err.splitlines()) == 1


# -- a directory, a named pipe or /dev/zero where a file is expected ------------------------------


def _odd(path: Path, kind: str) -> None:
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink to /dev/zero":
        if not os.path.exists("/dev/zero"):
            pytest.skip("no /dev/zero here")
        os.symlink("/dev/zero", path)


def _finishes(fn, path: Path, seconds: float = 2) -> BaseException | None:
    """Run `fn`; a pipe that blocks it is released after `seconds` and the test fails."""
    out: list = []

    def target():
        try:
            fn()
            out.append(None)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        if path.is_fifo():  # unblock the reader so the thread ends
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        t.join(5)
        pytest.fail(f"reading {path} blocked")
    return out[0]


READERS = {
    "metadata tsv": ("en.tsv", lambda p: read_metadata(p)),
    "json": ("stats.json", lambda p: read_json(p)),
    "run json": ("run.json", lambda p: load_json(p)),
    "array file": ("probabilities.bin", lambda p: load_arrays(p)),
    "array header": ("probabilities.bin", lambda p: load_header(p)),
    "counts": ("counts.bin", lambda p: EntryCounts.load(p)),
    "index": ("pool.index.bin", lambda p: list(iter_chunks(p))),
}


@pytest.mark.parametrize("kind", ["directory", "fifo", "symlink to /dev/zero"])
@pytest.mark.parametrize("reader", sorted(READERS))
def test_not_a_regular_file_is_refused_at_once(tmp_path, kind, reader):
    name, read = READERS[reader]
    path = tmp_path / name
    _odd(path, kind)
    error = _finishes(lambda: read(path), path)
    assert isinstance(error, DataError), repr(error)
    assert "not a regular file" in one_line_naming(error, path)


def test_fifo_in_place_of_a_run_json(tmp_path):
    os.mkfifo(tmp_path / "run.json")
    error = _finishes(lambda: RunDir(tmp_path).read(), tmp_path / "run.json")
    assert isinstance(error, DataError) and "named pipe" in one_line_naming(error, tmp_path / "run.json")


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/zero"])
def test_output_swapped_for_a_pipe_or_device_is_named_not_hashed(tmp_path, kind):
    from metaclip2.core.fingerprint import file_problem

    path = tmp_path / "pool.jsonl"
    _odd(path, kind)  # size 0, as the recorded empty output of a shard that kept nothing
    problem = _finishes(lambda: file_problem(path, {"bytes": 0, "sha256": hashlib.sha256(b"").hexdigest()}) or "", path)
    assert problem is None  # it returned, without blocking
    assert file_problem(path, {"bytes": 0, "sha256": "0" * 64}) == "pool.jsonl is not a regular file (a directory, pipe or device)"


def test_stage1_output_swapped_for_a_pipe_is_redone(reference, run, caplog):
    index = run / "stage1" / "pool.index.bin"
    index.unlink()
    os.mkfifo(index)
    with caplog.at_level(logging.WARNING):
        assert _finishes(lambda: again(reference, run), index, seconds=120) is None
    assert any("stage 1" in m and "pool.index.bin is not a regular file" in m for m in redone(caplog))
    assert index.is_file() and make_datacard(run) == reference["card"]


# -- .matcher files: --strict refuses, lenient rebuilds with a warning ----------------------------


@pytest.fixture
def store_dir(tmp_path):
    from metaclip2.core.entries import write_metadata
    from metaclip2.matching.matcher import Matcher

    write_metadata(tmp_path / "en.tsv", ["dog", "cat", "red car"], lang="en")
    Matcher(["dog", "cat", "red car"], lang="en").save(tmp_path / "en.matcher")
    return tmp_path


@pytest.mark.parametrize("damage", ["flip", "fifo", "directory", "nested header"])
def test_strict_store_refuses_an_unusable_matcher_and_lenient_rebuilds(store_dir, damage):
    from metaclip2.matching.store import MetadataStore

    path = store_dir / "en.matcher"
    data = path.read_bytes()
    path.unlink()
    if damage == "flip":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "nested header":
        path.write_bytes(data[:16] + DEEP)
    else:
        _odd(path, damage)
    error = _finishes(lambda: MetadataStore(store_dir, strict=True).matcher("en"), path)
    assert isinstance(error, MatcherFileError), repr(error)
    one_line_naming(error, path)
    with pytest.warns(UserWarning, match="building the matcher in memory"):
        store = MetadataStore(store_dir)
        assert _finishes(lambda: store.matcher("en"), path) is None
    assert store.matcher("en").match("a red car and a dog") == [0, 2]


def test_errors_here_are_the_package_own(tmp_path):
    # the root class lets the CLI print one line for each of them
    path = tmp_path / "x.bin"
    path.mkdir()
    with pytest.raises(Metaclip2Error):
        load_arrays(path)


def test_curate_strict_refuses_a_damaged_matcher(reference, tmp_path):
    from metaclip2.matching.matcher import Matcher
    from metaclip2.matching.store import MetadataStore

    meta = tmp_path / "metadata"
    shutil.copytree(reference["dir"] / "metadata", meta)
    Matcher(MetadataStore(meta).entries("en"), lang="en").save(meta / "en.matcher")
    data = (meta / "en.matcher").read_bytes()
    (meta / "en.matcher").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(MatcherFileError) as e:
        curate(meta, reference["dir"] / "pool.jsonl", out=tmp_path / "run", t_en=2, progress=False, strict=True)
    one_line_naming(e.value, meta / "en.matcher")


def test_metadata_file_not_utf8_is_one_line(tmp_path):
    from metaclip2.core.errors import MetadataError

    path = tmp_path / "en.tsv"
    path.write_bytes(b"\xff\xfe not a metadata file\n")
    with pytest.raises(MetadataError) as e:
        read_metadata(path)
    assert "not UTF-8" in one_line_naming(e.value, path)
