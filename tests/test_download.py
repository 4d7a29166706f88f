"""The source downloader against a local fake mirror (127.0.0.1): resume, checksums, missing files, skip."""

from __future__ import annotations

import argparse
import bz2
import datetime as dt
import gzip
import hashlib
import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from metaclip2.metadata.download import (
    DownloadError,
    FileTask,
    download_files,
    download_sources,
    pageview_hours,
    resolve_languages,
    wiki_name,
)

DATE = "20240501"


class FakeMirror:
    """A dump site on 127.0.0.1 serving files from a directory, with Range support.

    Paths in ``interrupt`` are cut off after half their bytes on their first request
    (the server closes the connection); every request's path and Range header is logged.
    """

    def __init__(self, root: Path):
        self.root = root
        self.interrupt: set[str] = set()
        self.ignore_range = False
        self.log: list[tuple[str, str | None]] = []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # keep test output quiet
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                rng = self.headers.get("Range")
                mirror.log.append((path, rng))
                f = mirror.root / path.lstrip("/")
                if ".." in path or not f.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = f.read_bytes()
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and not mirror.ignore_range:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path in mirror.interrupt:
                    mirror.interrupt.discard(path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def data_requests(self, name: str) -> list[str | None]:
        return [r for p, r in self.log if p.endswith("/" + name)]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _put(root: Path, rel: str, data: bytes) -> bytes:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return data


def _status(files: dict[str, bytes], sha1: dict[str, str] | None = None) -> bytes:
    sha1 = sha1 or {}
    jobs = {
        "articlesdump": {
            "status": "done",
            "files": {
                n: {"size": len(d), "url": f"/x/{n}", "sha1": sha1.get(n, hashlib.sha1(d).hexdigest()), "md5": hashlib.md5(d).hexdigest()}
                for n, d in files.items()
            },
        }
    }
    return json.dumps({"jobs": jobs, "version": "0.8"}).encode()


HOURS = dict(n_dates=3, seed=7, start="20240401", end="20240430", hours_per_date=2)


@pytest.fixture()
def mirror_tree(tmp_path):
    """en: dumpstatus.json, cut off once; de: sha1sums.txt only; fr: wrong sha1; ja: no checksums;
    zh: nothing at all (404); page views with the month's md5sums.txt."""
    root = tmp_path / "site"
    rnd = random.Random(0)
    files = {}
    for code in ("en", "de", "fr", "ja"):
        w = wiki_name(code)
        name = f"{w}-{DATE}-pages-articles.xml.bz2"
        files[code] = _put(root, f"{w}/{DATE}/{name}", bz2.compress(rnd.randbytes(150_000 + 1000 * len(files))))
    en = f"enwiki-{DATE}-pages-articles.xml.bz2"
    _put(root, f"enwiki/{DATE}/dumpstatus.json", _status({en: files["en"], "enwiki-x-stub.gz": b"x"}))
    de = f"dewiki-{DATE}-pages-articles.xml.bz2"
    _put(root, f"dewiki/{DATE}/dewiki-{DATE}-sha1sums.txt", f"{hashlib.sha1(files['de']).hexdigest()}  {de}\n".encode())
    fr = f"frwiki-{DATE}-pages-articles.xml.bz2"
    _put(root, f"frwiki/{DATE}/dumpstatus.json", _status({fr: files["fr"]}, sha1={fr: "0" * 40}))
    sums = {}
    for h in pageview_hours(**HOURS):
        name = f"pageviews-{h:%Y%m%d-%H}0000.gz"
        data = _put(root, f"other/pageviews/{h:%Y}/{h:%Y-%m}/{name}", gzip.compress(rnd.randbytes(5000), mtime=0))
        sums[name] = hashlib.md5(data).hexdigest()
    _put(root, "other/pageviews/2024/2024-04/md5sums.txt", "".join(f"{v}  {k}\n" for k, v in sums.items()).encode())
    return root, files


def test_pageview_hours_are_seeded_distinct_and_in_range():
    a = pageview_hours(**HOURS)
    assert a == pageview_hours(**HOURS) and a != pageview_hours(**{**HOURS, "seed": 8})
    assert len(a) == 6 and a == sorted(a) and len(set(a)) == 6
    assert len({h.date() for h in a}) == 3
    assert all(dt.datetime(2024, 4, 1) <= h < dt.datetime(2024, 5, 1) for h in a)
    assert len(pageview_hours(40, seed=1)) == 40  # default range: the year before the paper's dumps
    assert all(h.hour in range(24) for h in pageview_hours(5, seed=2, hours_per_date=24))
    for bad in (dict(n_dates=31, start="20240401", end="20240430"), dict(n_dates=1, hours_per_date=25), dict(n_dates=1, start="2024-13-01")):
        with pytest.raises(ValueError):
            pageview_hours(**bad)


def test_resolve_languages():
    assert resolve_languages("de, en") == ["de", "en"]
    assert resolve_languages(["zh-yue", "be_x_old"]) == ["be_tarask", "zh_yue"]
    assert len(resolve_languages("all")) > 300
    with pytest.raises(ValueError, match="xx_nope"):
        resolve_languages("en,xx_nope")


def test_download_resume_checksums_missing_and_skip(mirror_tree, tmp_path):
    root, files = mirror_tree
    out = tmp_path / "tree"
    with FakeMirror(root) as m:
        en_path = f"/enwiki/{DATE}/enwiki-{DATE}-pages-articles.xml.bz2"
        m.interrupt.add(en_path)
        rec = download_sources(out, "en,de,fr,ja,zh", date=DATE, pageview_dates=HOURS["n_dates"], hours_per_date=2, seed=7,
                               pageviews_from="20240401", pageviews_to="20240430", base_url=m.url, connections=3, retries=3,
                               timeout=10, progress=False)  # fmt: skip
        by = {(f["kind"], f["lang"] or Path(f["dest"]).name): f for f in rec["files"]}
        # Interrupted mid-file, then resumed with a Range request from where it stopped.
        en = by["dump", "en"]
        assert en["status"] == "downloaded" and en["verified"] == "sha1"
        half = len(files["en"]) // 2
        assert m.data_requests(Path(en_path).name) == [None, f"bytes={half}-"]
        assert (out / en_path.lstrip("/")).read_bytes() == files["en"]
        assert by["dump", "de"]["status"] == "downloaded" and by["dump", "de"]["verified"] == "sha1"
        # Nothing published for ja: it was decompressed whole, and the record says exactly that.
        assert by["dump", "ja"]["status"] == "downloaded" and by["dump", "ja"]["verified"] == "decompressed"
        assert by["dump", "ja"]["message"] == "decompressed whole" and en["message"] == "sha1 checked"
        # Checksum mismatch: fetched twice (once fresh), then removed, no final file left.
        fr = by["dump", "fr"]
        assert fr["status"] == "checksum_mismatch" and "sha1" in fr["message"]
        assert not list((out / "frwiki" / DATE).iterdir())
        assert by["dump", "zh"]["status"] == "missing"
        assert not (out / "zhwiki").exists() or not any((out / "zhwiki").rglob("*.bz2"))
        pv = [f for f in rec["files"] if f["kind"] == "pageviews"]
        assert len(pv) == 6 and all(f["status"] == "downloaded" and f["verified"] == "md5" for f in pv)
        assert all((out / "other" / "pageviews" / "2024" / "2024-04" / Path(f["dest"]).name).exists() for f in pv)
        assert rec["pageview_hours"] == [f"{h:%Y%m%d-%H}" for h in pageview_hours(**HOURS)]
        assert json.loads((out / "download.json").read_text()) == rec

        # A re-run skips every complete file (no data request), and retries the failed ones.
        m.log.clear()
        rec2 = download_sources(out, "en,de,ja", date=DATE, pageview_dates=3, hours_per_date=2, seed=7, pageviews_from="20240401",
                                pageviews_to="20240430", base_url=m.url, progress=False)  # fmt: skip
        assert {f["status"] for f in rec2["files"]} == {"skipped"}
        assert not [p for p, _ in m.log if p.endswith(".bz2") or p.endswith("0000.gz")]


def test_resume_of_a_part_file_left_by_a_killed_run(mirror_tree, tmp_path):
    root, files = mirror_tree
    name = f"dewiki-{DATE}-pages-articles.xml.bz2"
    dest = tmp_path / "dl" / name
    dest.parent.mkdir()
    (dest.parent / (name + ".part")).write_bytes(files["de"][:12345])
    sha1 = hashlib.sha1(files["de"]).hexdigest()
    with FakeMirror(root) as m:
        task = FileTask(url=f"{m.url}/dewiki/{DATE}/{name}", dest=str(dest), kind="dump", lang="de", checksums={"sha1": sha1})
        (r,) = download_files([task], progress=False)
        assert r.status == "downloaded" and r.resumed_from == 12345 and r.bytes == len(files["de"]) - 12345
        assert m.data_requests(name) == ["bytes=12345-"]
        assert dest.read_bytes() == files["de"]
        # A corrupt .part (right magic, wrong bytes) fails the checksum, is restarted from zero and then passes.
        dest.unlink()
        (dest.parent / (name + ".part")).write_bytes(b"BZh" + b"\0" * 997)
        m.log.clear()
        (r,) = download_files([task], progress=False)
        assert r.status == "downloaded" and m.data_requests(name) == ["bytes=1000-", None]
        assert dest.read_bytes() == files["de"]
        # A .part that is not bz2 at all is not resumed: fetched from zero at once.
        dest.unlink()
        (dest.parent / (name + ".part")).write_bytes(b"\0" * 1000)
        m.log.clear()
        (r,) = download_files([task], progress=False)
        assert r.status == "downloaded" and m.data_requests(name) == [None]
        assert dest.read_bytes() == files["de"]
        # A server that ignores Range: the partial file is replaced by the full response.
        dest.unlink()
        (dest.parent / (name + ".part")).write_bytes(files["de"][:500])
        m.ignore_range = True
        (r,) = download_files([task], progress=False)
        assert r.status == "downloaded" and dest.read_bytes() == files["de"]


@pytest.mark.slow
def test_unreachable_mirror_and_bad_parameters(tmp_path):
    with pytest.raises(DownloadError, match="127.0.0.1:9"):
        download_sources(tmp_path / "x", "en", base_url="http://127.0.0.1:9", pageview_dates=0, progress=False, timeout=2)
    with pytest.raises(ValueError):
        download_sources(tmp_path, "en", connections=0, pageview_dates=0, progress=False)
    with pytest.raises(ValueError, match="date"):
        download_sources(tmp_path / "x", "en", date="May 2024", pageview_dates=0, progress=False)
    with pytest.raises(ValueError, match="n_dates"):
        download_sources(tmp_path / "x", "en", pageview_dates=400, progress=False)
    assert not (tmp_path / "x").exists()


def _run(argv):
    from metaclip2.cli.metadata import add_subcommands

    parser = argparse.ArgumentParser(prog="metaclip2")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli(mirror_tree, tmp_path, capsys):
    root, files = mirror_tree
    with FakeMirror(root) as m:
        argv = ["metadata", "download", "--languages", "en,de", "-o", str(tmp_path / "t"), "--date", DATE, "--base-url", m.url,
                "--pageview-dates", "3", "--hours-per-date", "2", "--seed", "7", "--pageviews-from", "2024-04-01",
                "--pageviews-to", "2024-04-30", "-q"]  # fmt: skip
        assert _run(argv) == 0
        assert "8 files" in capsys.readouterr().out
        assert _run([*argv[:3], "en,zh", *argv[4:]]) == 1  # zh is missing on the mirror
        out = capsys.readouterr().out
        assert "missing" in out and "zhwiki" in out


def test_mirror_with_another_layout(tmp_path):
    root = tmp_path / "archive"
    name = f"enwiki-{DATE}-pages-articles.xml.bz2"
    data = _put(root, f"enwiki-{DATE}/{name}", bz2.compress(b"dump bytes" * 1000))
    _put(root, f"enwiki-{DATE}/enwiki-{DATE}-md5sums.txt", f"{hashlib.md5(data).hexdigest()}  {name}\n".encode())
    with FakeMirror(root) as m:
        rec = download_sources(tmp_path / "t", "en", date=DATE, pageview_dates=0, base_url=m.url + "/", dump_path="{wiki}-{date}/{name}", progress=False)
    (f,) = rec["files"]
    assert f["status"] == "downloaded" and f["verified"] == "md5"
    assert (tmp_path / "t" / "enwiki" / DATE / name).read_bytes() == data  # the local tree keeps the dump site's layout
    with pytest.raises(ValueError, match="dump_path"):
        download_sources(tmp_path / "t2", "en", pageview_dates=0, dump_path="{lang}/{name}", progress=False)
    assert not (tmp_path / "t2").exists()
