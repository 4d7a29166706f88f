"""The downloader against a hostile server on 127.0.0.1: error pages with 200, files that change
between Range requests, lying 206 answers, endless and trickling bodies, wrong magic bytes, and
files with nothing published (verified by decompressing them whole).

Every server loop is bounded and ends by itself when the client hangs up.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from metaclip2.metadata.download import DownloadError, FileTask, download_files, download_sources, dump_tasks, pageview_hours

DATE = "20240501"
NAME = f"enwiki-{DATE}-pages-articles.xml.bz2"
DUMP = f"/enwiki/{DATE}/{NAME}"
STATUS = f"/enwiki/{DATE}/dumpstatus.json"
HTML = b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head><body>try later</body></html>\n"


def _bz2(seed: int, n: int = 120_000) -> bytes:
    return bz2.compress(random.Random(seed).randbytes(n))


class Hostile:
    """A threaded HTTP server on 127.0.0.1 whose answer per path is a function of the request.

    ``routes[path](h)`` writes the whole response through the handler `h`; a path without a
    route is a 404. Every request's path and headers are logged.
    """

    def __init__(self):
        self.routes: dict = {}
        self.log: list[tuple[str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                server.log.append((path, dict(self.headers)))
                self.close_connection = True
                route = server.routes.get(path)
                if route is None:
                    send(self, 404, b"")
                    return
                try:
                    route(self)
                except OSError:  # the client hung up: that is what these tests want
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def requests(self, path: str) -> list[dict]:
        return [h for p, h in self.log if p == path]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def send(h, status: int, body: bytes, headers: dict | None = None, length: bool = True) -> None:
    h.send_response(status)
    for k, v in {"Content-Type": "application/octet-stream", **(headers or {})}.items():
        h.send_header(k, v)
    if length:
        h.send_header("Content-Length", str(len(body)))
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(body)


def file_route(data: bytes, headers: dict | None = None, ranges: bool = True, cut_first: bool = False):
    """Serves `data` with Range support; the first answer is cut after half its bytes when `cut_first`."""
    state = {"cut": cut_first}

    def route(h):
        m = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range") or "")
        if m and ranges:
            start = int(m.group(1))
            send(h, 206, data[start:], {**(headers or {}), "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
            return
        if state["cut"]:
            state["cut"] = False
            h.send_response(200)
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.connection.shutdown(2)
            return
        send(h, 200, data, headers)

    return route


def status_json(data: bytes, sha1: bool = True) -> bytes:
    info = {"size": len(data), **({"sha1": hashlib.sha1(data).hexdigest()} if sha1 else {})}
    return json.dumps({"jobs": {"articlesdump": {"files": {NAME: info}}}}).encode()


def fetch(server: Hostile, out: Path, **kw) -> dict:
    rec = download_sources(out, "en", date=DATE, pageview_dates=0, base_url=server.url, progress=False, **{"retries": 1, "timeout": 5, **kw})
    (f,) = rec["files"]
    return f


def final(out: Path) -> Path:
    return out / DUMP.lstrip("/")


def leftovers(out: Path) -> list[str]:
    d = out / "enwiki" / DATE
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def _run(argv) -> int:
    from metaclip2.cli.metadata import add_subcommands

    parser = argparse.ArgumentParser(prog="metaclip2")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


# --- error pages and wrong kinds of data ---------------------------------------------------------


def test_html_error_page_with_status_200_is_never_final(tmp_path, capsys):
    with Hostile() as s:
        s.routes[DUMP] = lambda h: send(h, 200, HTML, {"Content-Type": "text/html; charset=utf-8"})
        f = fetch(s, tmp_path / "t")
        assert f["status"] == "invalid" and "text/html" in f["message"] and f["verified"] is None
        assert leftovers(tmp_path / "t") == []  # neither a final file nor a .part
        # The same page labelled as binary is refused by its first bytes.
        s.routes[DUMP] = lambda h: send(h, 200, HTML)
        f = fetch(s, tmp_path / "t")
        assert f["status"] == "invalid" and "not bz2 data" in f["message"] and "DOCTYPE" in f["message"]
        assert leftovers(tmp_path / "t") == []
        # The CLI: one line naming the URL and the reason, exit 1; a re-run asks the server again.
        n = len(s.requests(DUMP))
        argv = ["metadata", "download", "--languages", "en", "-o", str(tmp_path / "t"), "--date", DATE, "--base-url", s.url,
                "--pageview-dates", "0", "--retries", "0", "-q"]  # fmt: skip
        assert _run(argv) == 1
        lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  invalid:")]
        assert len(lines) == 1 and f"{s.url}{DUMP}" in lines[0] and "not bz2 data" in lines[0]
        assert len(s.requests(DUMP)) > n
        # A final file that is an HTML page (left by an older downloader) is not skipped but fetched again.
        good = _bz2(1)
        final(tmp_path / "t").write_bytes(HTML)
        s.routes[DUMP] = file_route(good)
        f = fetch(s, tmp_path / "t")
        assert f["status"] == "downloaded" and f["verified"] == "decompressed" and final(tmp_path / "t").read_bytes() == good


def test_magic_bytes_must_match_the_file_name(tmp_path):
    data_bz2, data_gz = _bz2(2, 5000), gzip.compress(b"en Dog 3 0\n" * 500, mtime=0)
    with Hostile() as s:
        s.routes["/a.gz"] = file_route(data_bz2)
        s.routes["/b.bz2"] = file_route(data_gz)
        tasks = [
            # Even a published checksum of the wrong bytes does not make them a gzip file.
            FileTask(f"{s.url}/a.gz", str(tmp_path / "a.gz"), "pageviews", checksums={"md5": hashlib.md5(data_bz2).hexdigest()}),
            FileTask(f"{s.url}/b.bz2", str(tmp_path / "b.bz2"), "dump", size=len(data_gz)),
        ]
        a, b = download_files(tasks, retries=0, timeout=5, progress=False)
    assert a.status == "invalid" and "not gz data" in a.message and a.message.count("\n") == 0
    assert b.status == "invalid" and "not bz2 data" in b.message
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- Range answers that are not the rest of the same file ------------------------------------


@pytest.mark.parametrize("honours_if_range", [True, False])
def test_file_changed_between_range_requests_restarts_from_zero(tmp_path, honours_if_range):
    v1, v2 = _bz2(3), _bz2(4)
    served = {"data": v1, "etag": '"v1"'}

    def route(h):
        data, etag = served["data"], served["etag"]
        rng = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range") or "")
        stale = h.headers.get("If-Range") not in (None, etag)
        if rng and not (honours_if_range and stale):
            start = int(rng.group(1))
            send(h, 206, data[start:], {"ETag": etag, "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
            return
        if data is v1:  # the first answer is cut after half, then the file changes on the server
            h.send_response(200)
            h.send_header("ETag", etag)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            served.update(data=v2, etag='"v2"')
            h.connection.shutdown(2)
            return
        send(h, 200, data, {"ETag": etag})

    with Hostile() as s:
        s.routes[DUMP] = route
        f = fetch(s, tmp_path / "t")  # nothing published: decompressing decides
        reqs = s.requests(DUMP)
    assert f["status"] == "downloaded" and f["verified"] == "decompressed"
    assert final(tmp_path / "t").read_bytes() == v2  # never half of v1 and half of v2
    assert reqs[1]["Range"] == f"bytes={len(v1) // 2}-" and reqs[1]["If-Range"] == '"v1"'
    # A server that honours If-Range sends v2 whole at once; one that ignores it sends a 206
    # with another ETag, which the downloader drops before asking again from byte 0.
    assert len(reqs) == (2 if honours_if_range else 3)
    if not honours_if_range:
        assert "Range" not in reqs[2]
    assert leftovers(tmp_path / "t") == [NAME]  # the .part and its version record are gone


def test_if_range_falls_back_to_last_modified(tmp_path):
    data, stamp = _bz2(5), "Wed, 01 May 2024 00:00:00 GMT"
    with Hostile() as s:
        s.routes[DUMP] = file_route(data, {"Last-Modified": stamp, "ETag": 'W/"weak"'}, cut_first=True)
        f = fetch(s, tmp_path / "t")
        reqs = s.requests(DUMP)
    assert f["status"] == "downloaded" and f["resumed_from"] == len(data) // 2 and final(tmp_path / "t").read_bytes() == data
    assert reqs[1]["If-Range"] == stamp  # weak ETags may not be used in If-Range


def test_206_that_starts_at_byte_0_restarts_the_file(tmp_path):
    data = _bz2(6)

    def lying(h, honest: bool):
        if h.headers.get("Range"):
            # Answers the resume with the whole file; honest says so in Content-Range, the liar
            # claims to start where it was asked to.
            first = 0 if honest else int(h.headers["Range"][6:-1])
            send(h, 206, data, {"Content-Range": f"bytes {first}-{first + len(data) - 1}/{first + len(data)}"})
        else:
            send(h, 200, data)

    for honest in (True, False):
        out = tmp_path / f"t{honest}"
        part = final(out).with_name(NAME + ".part")
        part.parent.mkdir(parents=True)
        part.write_bytes(data[:5000])  # left by an earlier run
        with Hostile() as s:
            s.routes[DUMP] = lambda h: lying(h, honest)
            f = fetch(s, out)
            reqs = [r.get("Range") for r in s.requests(DUMP)]
        assert f["status"] == "downloaded" and final(out).read_bytes() == data
        # Honest: the Content-Range shows the mismatch at once. Liar: the file is not whole bz2
        # (the start twice), so it is fetched once more from zero.
        assert reqs == ["bytes=5000-", None]


def test_200_answer_to_a_range_request_replaces_the_part(tmp_path):
    data = _bz2(7)
    out = tmp_path / "t"
    part = final(out).with_name(NAME + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:5000])
    with Hostile() as s:
        s.routes[DUMP] = file_route(data, ranges=False)
        s.routes[STATUS] = lambda h: send(h, 200, status_json(data), {"Content-Type": "application/json"})
        f = fetch(s, out)
    assert f["status"] == "downloaded" and f["verified"] == "sha1" and final(out).read_bytes() == data


# --- bodies bounded in bytes -------------------------------------------------------------------


def endless(h, head: bytes, ctype: str = "application/octet-stream", limit: int = 64 << 20) -> None:
    """Sends `head` then filler until `limit` bytes or until the client hangs up."""
    h.send_response(200)
    h.send_header("Content-Type", ctype)
    h.send_header("Connection", "close")
    h.end_headers()
    h.wfile.write(head)
    sent = len(head)
    while sent < limit:
        h.wfile.write(b"0," * 32768)
        sent += 65536


def test_endless_dumpstatus_json_is_cut_off(tmp_path):
    with Hostile() as s:
        s.routes[STATUS] = lambda h: endless(h, b'{"jobs": [', "application/json")
        with pytest.raises(DownloadError, match=r"dumpstatus.json: the server sent more than 4 MiB"):
            dump_tasks(["en"], DATE, tmp_path, s.url, timeout=5)
        # The CLI's error is that one line (DownloadError is a data error: exit 1).
        from metaclip2.cli.main import main

        assert main(["metadata", "download", "--languages", "en", "-o", str(tmp_path / "t"), "--base-url", s.url, "--pageview-dates", "0"]) == 1
    assert not (tmp_path / "t").exists()


def test_endless_body_stops_at_the_published_size(tmp_path):
    data = _bz2(8, 20_000)
    with Hostile() as s:
        s.routes[STATUS] = lambda h: send(h, 200, status_json(data), {"Content-Type": "application/json"})
        s.routes[DUMP] = lambda h: endless(h, data)
        f = fetch(s, tmp_path / "t")
        assert f["status"] == "invalid" and f"more than the {len(data)} bytes published" in f["message"]
        assert leftovers(tmp_path / "t") == []
        # A Content-Length other than the published size is refused before the body is read.
        s.routes[DUMP] = lambda h: send(h, 200, data + b"x" * 100)
        f = fetch(s, tmp_path / "t")
        assert f["status"] == "invalid" and f"announces {len(data) + 100} bytes, {len(data)} are published" in f["message"]
        assert leftovers(tmp_path / "t") == []
        # With nothing published the announced length bounds the body.
        s.routes[STATUS] = lambda h: send(h, 404, b"")
        s.routes[DUMP] = lambda h: send(h, 200, data)
        assert fetch(s, tmp_path / "t")["verified"] == "decompressed"


# --- bodies bounded in time --------------------------------------------------------------------


def trickle(h, data: bytes, every: float = 0.6, limit: int = 20) -> None:
    """One byte every `every` seconds, at most `limit` bytes (then the connection ends)."""
    h.send_response(200)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    for b in data[:limit]:
        h.wfile.write(bytes([b]))
        h.wfile.flush()
        time.sleep(every)


def test_trickle_cannot_defeat_the_timeout(tmp_path):
    data = _bz2(9, 5000)
    with Hostile() as s:
        s.routes[DUMP] = lambda h: trickle(h, data)
        # Each byte comes well within --timeout 1, but a second brings far less than 1 KiB.
        f = fetch(s, tmp_path / "t", retries=0, timeout=1)
        assert f["status"] == "error" and "slower than 1024 bytes/s" in f["message"]
        assert not final(tmp_path / "t").exists()
        # The whole-file deadline stops it too, and keeps the .part for a re-run.
        f = fetch(s, tmp_path / "t2", retries=0, timeout=5, file_deadline=0.5)
        assert f["status"] == "error" and "not complete within 0.5 s" in f["message"]
        assert leftovers(tmp_path / "t2") == [NAME + ".part", NAME + ".part.json"]
    with pytest.raises(ValueError, match="positive"):
        download_files([], timeout=0, progress=False)


# --- nothing published: decompressed whole ---------------------------------------------------


def test_no_checksum_no_size_is_decompressed_whole(tmp_path, capsys):
    good, pv = _bz2(10), gzip.compress(b"en Dog 3 0\n" * 1000, mtime=0)
    corrupt = bytearray(good)
    corrupt[len(good) // 2] ^= 0xFF
    with Hostile() as s:
        s.routes[DUMP] = file_route(bytes(corrupt))
        f = fetch(s, tmp_path / "t")
        assert f["status"] == "invalid" and "does not decompress" in f["message"] and leftovers(tmp_path / "t") == []
        assert len(s.requests(DUMP)) == 2  # fetched once more from zero before giving up
        truncated = good[: len(good) - 1000]  # close-delimited: no length says it is short
        s.routes[DUMP] = lambda h: send(h, 200, truncated, length=False)
        f = fetch(s, tmp_path / "t")
        assert f["status"] == "invalid" and "truncated" in f["message"] and leftovers(tmp_path / "t") == []
        s.routes[DUMP] = file_route(good)
        (hour,) = pageview_hours(1, seed=0, start="20240405", end="20240405")
        s.routes[f"/other/pageviews/2024/2024-04/pageviews-{hour:%Y%m%d-%H}0000.gz"] = file_route(pv)
        argv = ["metadata", "download", "--languages", "en", "-o", str(tmp_path / "t"), "--date", DATE, "--base-url", s.url,
                "--pageview-dates", "1", "--pageviews-from", "20240405", "--pageviews-to", "20240405", "--seed", "0", "-q"]  # fmt: skip
        assert _run(argv) == 0
        out = capsys.readouterr().out
    assert final(tmp_path / "t").read_bytes() == good
    assert (tmp_path / "t" / "other" / "pageviews" / "2024" / "2024-04" / f"pageviews-{hour:%Y%m%d-%H}0000.gz").read_bytes() == pv
    # The summary says exactly what was checked, and never a size check without a size.
    assert "downloaded: 2 decompressed whole" in out and "size checked" not in out
