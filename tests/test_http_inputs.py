"""HTTP inputs from real local servers: with Range, without Range (``python -m http.server``),
and one that drops the connection mid-body; a URL that does not exist."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from metaclip2.core.errors import DataError, MissingInputError
from metaclip2.pipeline.io.readers import read_shard
from metaclip2.pipeline.run.api import curate

from fixtures import make_images, make_metadata

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp", reason="fsspec's HTTP filesystem needs aiohttp")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

KW = dict(t_en=8, progress=False, max_chars=100)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _NoRange(_Quiet):
    """``python -m http.server``: Range headers are ignored, the whole body comes with 200."""


class _Range(_Quiet):
    """Honours ``Range: bytes=a-b`` with 206, as object stores do."""

    def send_head(self):
        rng = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not rng or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        a, _, b = rng.removeprefix("bytes=").partition("-")
        start, end = int(a or 0), min(int(b) if b else size - 1, size - 1)
        if start >= size:
            self.send_error(416)
            return None
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Window(f, end - start + 1)


class _Window:
    def __init__(self, f, n):
        self.f, self.n = f, n

    def read(self, k=-1):
        k = self.n if k < 0 else min(k, self.n)
        data = self.f.read(k)
        self.n -= len(data)
        return data

    def close(self):
        self.f.close()


class _Drop(_Quiet):
    """Announces the whole file, sends a third of it, then closes the connection."""

    def do_GET(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            return self.send_error(404)
        data = Path(path).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 3])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a dropped connection is the point of some tests
        pass


@contextlib.contextmanager
def serve(directory: Path, handler):
    server = _Server(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    meta = make_metadata(root / "meta")
    www = root / "www"
    www.mkdir()
    rows = [{"id": im["id"], "text": im["texts"][0]["text"], "lang": im["texts"][0]["lang"], "url": f"u/{im['id']}"}
            for im in make_images(21, 400, "w")]  # fmt: skip
    (www / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), www / "pool.parquet", row_group_size=50)
    return meta, www


@pytest.mark.parametrize("handler", [_Range, _NoRange], ids=["range", "no-range"])
@pytest.mark.parametrize("name", ["pool.jsonl", "pool.parquet"])
def test_http_inputs_with_and_without_range(pool, tmp_path, handler, name):
    meta, www = pool
    local = curate(meta, [str(www / name)], tmp_path / "local", **KW)
    with serve(www, handler) as base:
        remote = curate(meta, [f"{base}/{name}"], tmp_path / "remote", **KW)
    assert remote.datacard["totals"]["pairs"] == 400 and remote.datacard["totals"]["invalid"] == 0
    assert remote.outputs[0].read_bytes() == local.outputs[0].read_bytes()


@pytest.mark.parametrize("name", ["pool.jsonl", "pool.parquet"])
def test_dropped_connection_and_missing_url_are_one_line(pool, tmp_path, name, capsys):
    from metaclip2.cli.main import main

    meta, www = pool
    with serve(www, _Drop) as base:
        url = f"{base}/{name}"
        with pytest.raises(DataError, match=f"input {url}: the download failed after \\d+ bytes"):
            list(read_shard(url))
        assert main(["curate", "--metadata", str(meta), "--input", url, "--out", str(tmp_path / "run"), "--t-en", "8", "-q"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and url in err[0] and "Traceback" not in err[0]
    with serve(www, _NoRange) as base:
        url = f"{base}/missing-{name}"
        with pytest.raises(MissingInputError, match=f"input {url} does not exist"):
            list(read_shard(url))
        assert main(["curate", "--metadata", str(meta), "--input", url, "--out", str(tmp_path / "run2"), "--t-en", "8", "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and url in err[0]
