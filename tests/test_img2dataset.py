"""img2dataset itself downloads a url list from a local HTTP server (real JPEGs, some urls 404);
its Parquet output (every url, failures with their ``status``) and its tars (the downloaded
images only) of that one download curate to the same kept set."""

from __future__ import annotations

import functools
import importlib.util
import http.server
import io
import threading
from pathlib import Path

import pytest

from metaclip2 import curate

from fixtures import make_images, make_metadata

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
ds = pytest.importorskip("pyarrow.dataset")
Image = pytest.importorskip("PIL.Image")
if importlib.util.find_spec("img2dataset") is None:  # imported in the test, once the environment below is set
    pytest.skip("img2dataset is not installed (the test extra)", allow_module_level=True)

N_IMAGES, MISSING = 40, (3, 11, 19, 28, 36)  # rows whose url the server answers with 404
KW = dict(t_en=8, progress=False, max_chars=100)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


def _jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24 + i % 5, 16 + i % 7), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _download(url_list: Path, out: Path, fmt: str) -> None:
    from img2dataset import download

    download(
        url_list=str(url_list), input_format="parquet", url_col="url", caption_col="caption",
        output_folder=str(out), output_format=fmt, processes_count=1, thread_count=4,
        distributor="multiprocessing", resize_mode="no", disable_all_reencoding=True,
        enable_wandb=False, timeout=5, retries=0, number_sample_per_shard=1000,
    )  # fmt: skip


@pytest.mark.slow
def test_img2dataset_parquet_and_tars_curate_alike(tmp_path, monkeypatch):
    # nothing beyond 127.0.0.1: no wandb, no albumentations update check (it asks PyPI on import)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy in the environment must not see the local server
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    served = tmp_path / "served"
    served.mkdir()
    captions = [im["texts"][0]["text"] for im in make_images(23, N_IMAGES, "i")]
    for i in range(N_IMAGES):
        if i not in MISSING:
            (served / f"{i}.jpg").write_bytes(_jpeg(i))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        urls = [f"{base}/{i}.jpg" for i in range(N_IMAGES)]
        pq.write_table(pa.table({"url": urls, "caption": captions}), tmp_path / "urls.parquet")
        _download(tmp_path / "urls.parquet", tmp_path / "i2d-parquet", "parquet")
        _download(tmp_path / "urls.parquet", tmp_path / "i2d-tar", "webdataset")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    written = pq.read_table(tmp_path / "i2d-parquet" / "00000.parquet").to_pylist()
    row_of = lambda r: int(r["url"].rsplit("/", 1)[1].split(".")[0])  # noqa: E731
    assert sorted(map(row_of, written)) == list(range(N_IMAGES))  # the 404s are rows too
    failed_keys = {r["key"] for r in written if r["status"] != "success"}
    assert {r["key"] for r in written if row_of(r) in MISSING} == failed_keys and len(failed_keys) == len(MISSING)
    assert all(r["jpg"] == _jpeg(row_of(r)) for r in written if r["status"] == "success")  # real bytes, not re-encoded
    tars = sorted((tmp_path / "i2d-tar").glob("*.tar"))
    assert [t.name for t in tars] == ["00000.tar"]

    meta = make_metadata(tmp_path / "meta")
    a = curate(meta, [str(p) for p in sorted((tmp_path / "i2d-parquet").glob("*.parquet"))], tmp_path / "run-pq", output_format="parquet", **KW)
    b = curate(meta, [str(t) for t in tars], tmp_path / "run-tar", output_format="parquet", **KW)
    ta, tb = a.datacard["totals"], b.datacard["totals"]
    assert a.datacard["layouts"] == b.datacard["layouts"] == {"img2dataset": 1}
    assert ta["pairs"] == N_IMAGES and ta["invalid_by_reason"] == {"not_downloaded": len(MISSING)}
    assert tb["pairs"] == N_IMAGES - len(MISSING) and tb["invalid"] == 0  # the tars hold no failed sample

    def kept(res) -> list[tuple]:
        table = ds.dataset(res.out / "subset", format="parquet").to_table()  # RUN/subset loads as a dataset
        assert table.num_rows == res.datacard["totals"]["kept"]
        return sorted(zip(table.column("key").to_pylist(), table.column("text_index").to_pylist(), table.column("url").to_pylist()))

    ka, kb = kept(a), kept(b)
    assert ka == kb and 0 < len(ka) < N_IMAGES - len(MISSING)  # t_en=8 drops some of the common "the"/"a" matches
    assert not {k for k, _, _ in ka} & failed_keys
