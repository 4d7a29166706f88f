"""Damaged containers are never silent: tar, Parquet and gzip damage is counted with where it is."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from metaclip2.pipeline.io.readers import read_shard
from metaclip2.pipeline.io.records import InvalidInputError
from metaclip2.pipeline.run.api import curate

from fixtures import make_metadata


def _tar_bytes(keys, start=0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i in keys:
            for ext, data in (("jpg", b"\xff\xd8" * 40), ("txt", f"the cat {i}".encode())):
                info = tarfile.TarInfo(f"{i:05d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _count(images):
    ok = sum(1 for im in images for r in im.invalid if r is None)
    damage = [im.damage for im in images if im.damage]
    return ok, damage


def test_concatenated_tars_are_read_through(tmp_path):
    path = tmp_path / "cat.tar"
    path.write_bytes(_tar_bytes(range(500)) + _tar_bytes(range(500, 1000)))
    ok, damage = _count(list(read_shard(path)))
    assert ok == 1000 and damage == []


def test_corrupt_header_mid_archive_is_damage_and_the_rest_is_read(tmp_path):
    data = bytearray(_tar_bytes(range(1000)))
    off = 500 * 2 * 1024  # header of sample 500's jpg (each member: one header + one data block)
    assert data[off : off + 9] == b"00500.jpg"
    data[off + 148 : off + 156] = b"garbage!"  # the checksum field
    path = tmp_path / "bad.tar"
    path.write_bytes(bytes(data))
    images = list(read_shard(path))
    ok, damage = _count(images)
    assert ok == 1000  # the sample's .txt follows the damaged .jpg: nothing is lost but the image
    assert len(damage) == 1 and damage[0]["where"] == f"offset {off}" and "header" in damage[0]["error"]
    with pytest.raises(InvalidInputError, match=rf"bad.tar\[offset {off}\].*damaged"):
        list(read_shard(path, strict=True))


def test_corrupt_tar_gz_is_damage(tmp_path):
    raw = gzip.compress(_tar_bytes(range(1000)), mtime=0)
    bad = bytearray(raw)
    bad[len(bad) // 2 : len(bad) // 2 + 16] = b"\x00" * 16
    path = tmp_path / "x.tar.gz"
    path.write_bytes(bytes(bad))
    ok, damage = _count(list(read_shard(path)))
    assert ok == 0 and len(damage) == 1 and "gzip" in damage[0]["error"]


def test_truncated_tar_gz_keeps_what_precedes_the_cut(tmp_path):
    raw = gzip.compress(_tar_bytes(range(1000)), mtime=0)
    path = tmp_path / "x.tgz"
    path.write_bytes(raw[: len(raw) // 2])
    ok, damage = _count(list(read_shard(path)))
    assert 0 < ok < 1000 and len(damage) == 1 and "lost" in damage[0]["error"]


def test_hard_linked_member_is_read(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("a.txt")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"the cat"))
        link = tarfile.TarInfo("b.txt")
        link.type, link.linkname = tarfile.LNKTYPE, "a.txt"
        tar.addfile(link)
        link = tarfile.TarInfo("c.txt")
        link.type, link.linkname = tarfile.LNKTYPE, "nowhere.txt"
        tar.addfile(link)
        link = tarfile.TarInfo("d.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "./a.txt"
        tar.addfile(link)
    path = tmp_path / "l.tar"
    path.write_bytes(buf.getvalue())
    images = list(read_shard(path))
    assert [(im.id, im.texts) for im in images if im.id] == [("a", ["the cat"]), ("b", ["the cat"]), ("d", ["the cat"])]
    (bad,) = [im for im in images if im.damage]
    assert bad.damage["where"] == "c.txt" and "hard link" in bad.damage["error"]


def test_huge_tar_member_is_not_held_in_memory(tmp_path):
    import resource

    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = b"x" * n
            self.left -= n
            return n

    size = 300 << 20
    path = tmp_path / "big.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("big.txt")
        info.size = size
        tar.addfile(info, io.BufferedReader(Zeros(size), 1 << 20))
        info = tarfile.TarInfo("small.txt")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"the dog"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    images = list(read_shard(path, max_chars=100))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert [im.invalid for im in images] == [["too_long"], [None]]
    assert grown_mib < 100, f"reading a {size >> 20} MiB member grew the peak RSS by {grown_mib:.0f} MiB"


def test_parquet_corrupt_row_group_loses_only_its_rows(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 20_000
    table = pa.table({"id": [f"i{i}" for i in range(n)], "text": [f"the cat number {i} " * 3 for i in range(n)]})
    path = tmp_path / "p.parquet"
    pq.write_table(table, path, row_group_size=4096, compression="zstd")
    meta = pq.ParquetFile(path).metadata
    col = meta.row_group(2).column(1)
    start = col.dictionary_page_offset or col.data_page_offset
    middle = start + col.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    for j in range(middle - 50, middle + 50):
        data[j] ^= 0x5A
    path.write_bytes(bytes(data))
    images = list(read_shard(path))
    ok, damage = _count(images)
    assert len(damage) == 1 and damage[0]["where"] == "row group 2" and damage[0]["lost"] is not None
    assert ok + damage[0]["lost"] == n and ok >= n - 4096
    assert sum(len(im.invalid) for im in images) == n  # every row accounted


def test_gzip_crc_error_uses_nothing_and_not_gzip_gets_a_hint(tmp_path):
    lines = "".join(json.dumps({"id": f"i{i}", "text": f"the cat {i}"}) + "\n" for i in range(100)).encode()
    raw = bytearray(gzip.compress(lines, mtime=0))
    raw[-8] ^= 0xFF  # the CRC
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(bytes(raw))
    ok, damage = _count(list(read_shard(path)))
    assert ok == 0 and "CRC" in damage[0]["error"]
    plain = tmp_path / "y.jsonl.gz"
    plain.write_bytes(lines)
    ok, damage = _count(list(read_shard(plain)))
    assert ok == 0 and "not gzip" in damage[0]["error"]
    cut = tmp_path / "z.jsonl.gz"
    cut.write_bytes(bytes(gzip.compress(lines, mtime=0))[:-30])
    ok, damage = _count(list(read_shard(cut)))
    assert 0 < ok < 100 and damage[0]["where"].startswith("offset ")


def test_bom_and_json_string_lines(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "the cat"}\n"just a string"\n')
    images = list(read_shard(path))
    assert images[0].texts == ["the cat"] and images[1].invalid == ["malformed"]


def test_damage_in_stats_datacard_and_warning(tmp_path, caplog):
    meta = make_metadata(tmp_path / "meta")
    data = bytearray(_tar_bytes(range(50)))
    off = 20 * 2 * 1024
    data[off + 148 : off + 156] = b"garbage!"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.tar").write_bytes(bytes(data))
    res = curate(meta, [str(tmp_path / "in" / "a.tar")], tmp_path / "run", t_en=8, progress=False)
    card = res.datacard
    assert card["damaged"] == [{"shard": "a", "input": str(tmp_path / "in" / "a.tar"), "where": f"offset {off}",
                                "error": card["damaged"][0]["error"], "lost": None}]  # fmt: skip
    assert card["totals"]["invalid_by_reason"] == {"damaged": 1}
    assert f"damaged at offset {off}" in caplog.text
    with pytest.raises(InvalidInputError, match="damaged"):
        curate(meta, [str(tmp_path / "in" / "a.tar")], tmp_path / "strict", t_en=8, progress=False, strict=True)


def test_damaged_text_member_counts_its_sample_once(tmp_path):
    """The header of sample 500's .txt is damaged: the sample is one damaged pair, not also
    missing_text (1,000 pairs for 1,000 samples)."""
    data = bytearray(_tar_bytes(range(1000)))
    off = 500 * 2 * 1024 + 1024  # header of sample 500's txt
    assert data[off : off + 9] == b"00500.txt"
    data[off + 148 : off + 156] = b"garbage!"
    path = tmp_path / "bad.tar"
    path.write_bytes(bytes(data))
    images = list(read_shard(path))
    reasons = [r for im in images for r in im.invalid]
    assert len(reasons) == 1000 and reasons.count(None) == 999 and reasons.count("damaged") == 1
    assert "missing_text" not in reasons


def test_truncated_tar_counts_the_cut_sample_once(tmp_path):
    data = _tar_bytes(range(100))
    cut = 50 * 2 * 1024 + 1024 + 512 + 5  # inside the data of sample 50's txt
    path = tmp_path / "cut.tar"
    path.write_bytes(data[:cut])
    reasons = [r for im in read_shard(path) for r in im.invalid]
    assert reasons.count(None) == 50 and reasons.count("damaged") == 1 and "missing_text" not in reasons
