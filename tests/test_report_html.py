"""The HTML report (`metaclip2 report`): its examples files, its checks, its bounds, and the page
in a real headless Chromium (skipped outside CI when none is installed; a failure under CI)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from metaclip2.core.atomic import write_json
from metaclip2.core.errors import DataError
from metaclip2.pipeline import curate
from metaclip2.pipeline.builds.demo import write_example_pool
from metaclip2.pipeline.report.browse import report_data
from metaclip2.pipeline.report.card import write_html_report
from metaclip2.pipeline.report.sweep import sweep
from metaclip2.pipeline.run.rundir import load_json
from metaclip2.pipeline.stages.examples import HEAD, K, TAIL, merge_examples
from metaclip2.pipeline.stages.stats import Stage1Stats

WORDS_EN = ["dog", "cat", "red", "sofa", "black"]
WORDS_DE = ["Hund", "Katze"]


def _pool(directory: Path, shards: int, n: int = 240) -> list[Path]:
    """A pool of `n` images split over `shards` JSONL files (the example metadata's words, some unmatched)."""
    paths = [directory / f"part-{i}.jsonl" for i in range(shards)]
    files = [p.open("w", encoding="utf-8") for p in paths]
    for i in range(n):
        if i % 3 == 0:
            texts, lang = [f"ein {WORDS_DE[i % 2]} Nummer {i}", f"Bild {i}"], "de"
        else:
            texts, lang = [f"a {WORDS_EN[i % 5]} and a {WORDS_EN[(i * 7) % 5]} no {i}", f"photo {i}"], "en"
        files[i % shards].write(json.dumps({"id": f"img-{i:04d}", "texts": texts, "lang": lang}) + "\n")
    for f in files:
        f.close()
    return paths


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    """The same pool curated as one shard (1 worker) and as three shards (2 workers)."""
    d = tmp_path_factory.mktemp("report")
    write_example_pool(d)
    (d / "one").mkdir()
    (d / "three").mkdir()
    one = _pool(d / "one", 1)
    three = _pool(d / "three", 3)
    curate(d / "metadata", [str(p) for p in one], out=d / "run1", t_en=5, workers=1)
    curate(d / "metadata", [str(p) for p in three], out=d / "run3", t_en=5, workers=2)
    curate(d / "metadata", [str(p) for p in three], out=d / "run3b", t_en=5, workers=1)
    return d


def _docs(run: Path, stage: str) -> list[dict]:
    return [load_json(p) for p in sorted((run / stage).glob("*.examples.json"))]


def test_examples_are_recorded_and_worker_independent(pools):
    for stage in ("stage1", "stage3"):
        a = sorted((pools / "run3" / stage).glob("*.examples.json"))
        b = sorted((pools / "run3b" / stage).glob("*.examples.json"))
        assert [p.name for p in a] == [p.name for p in b] and len(a) == 3
        for pa, pb in zip(a, b):
            assert pa.read_bytes() == pb.read_bytes(), pa
        for p in a:  # recorded like the other outputs, so they are verified like them
            stats = load_json(p.with_name(p.name.replace(".examples.json", ".stats.json")))
            assert p.name in stats["outputs"] or f"{stage}/{p.name}" in stats["outputs"]  # stage 3 names them from the run


def test_shard_samples_merge_to_the_whole_pools_sample(pools):
    """Bottom-k samples: the three shards' merged equal the one shard's (order- and split-independent)."""
    for stage in ("stage1", "stage3"):
        [whole] = _docs(pools / "run1", stage)
        assert merge_examples(_docs(pools / "run3", stage)) == whole
    [s1] = _docs(pools / "run1", "stage1")
    assert all(len(v) == K for v in s1["unmatched"].values())  # "photo 3", "Bild 3": many, K kept
    [s3] = _docs(pools / "run1", "stage3")
    assert 0 < len(s3["head"]["en"]) <= HEAD and len(s3["tail"].get("en", {})) <= TAIL


def test_report_data_shows_every_language_entry_and_sweep_value(pools):
    data = report_data(pools / "run3")
    card = data["card"]
    assert set(data["languages"]) == set(card["languages"]) == {"de", "en"}
    assert data["notes"] == []
    dog = next(e for e in data["entries"] if e["lang"] == "en" and e["text"] == "dog")
    assert dog["head"] and dog["count"] > 5 and 0 < dog["q"] < 1 and dog["kept"] and dog["not_kept"]
    assert all("dog" in t for t in dog["kept"] + dog["not_kept"])
    table = sweep(pools / "run3", [5], unit="image")
    row = next(r for r in data["sweep"]["rows"] if r["t_en"] == 5)
    assert row["pairs"] == pytest.approx(table.rows[0]["pairs"])
    assert row["languages"]["de"]["pairs"] == pytest.approx(table.rows[0]["languages"]["de"]["pairs"])


def test_page_is_self_contained_and_bounded(pools, tmp_path):
    page = write_html_report(pools / "run3", tmp_path / "r.html")
    text = page.read_text(encoding="utf-8")
    # nothing to fetch: no URL but the SVG namespace, no external src/href
    assert not re.search(r"""(src|href)=["'](?!#)""", text)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text)
    assert "default-src 'none'" in text
    for lang in ("de", "en"):
        assert f'<tr data-lang="{lang}">' in text  # the static table, readable without JS
    assert "<svg" in text and "</svg>" in text
    assert len(text.encode()) < 200_000


def test_damaged_examples_file_is_refused(pools, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(pools / "run1", run, symlinks=True)
    ex = run / "stage3" / "part-0.examples.json"
    ex.write_text(ex.read_text(encoding="utf-8").replace("dog", "cow"), encoding="utf-8")
    with pytest.raises(DataError, match="part-0.examples.json is not the file its stage wrote"):
        report_data(run)


def test_run_without_examples_says_what_it_lacks(pools, tmp_path):
    """A run made before the examples files: the page says so and still shows the rest."""
    run = tmp_path / "run"
    shutil.copytree(pools / "run1", run, symlinks=True)
    path = run / "stage1" / "part-0.stats.json"
    stats = Stage1Stats.from_json(load_json(path))
    stats.outputs.pop("part-0.examples.json")
    write_json(path, stats.to_json())
    (run / "stage1" / "part-0.examples.json").unlink()
    data = report_data(run)
    assert any("stage 1: no examples" in n for n in data["notes"])
    assert data["languages"]["en"]["unmatched"] == [] and data["entries"]
    assert "What this report lacks" in write_html_report(run).read_text(encoding="utf-8")


def test_report_after_stage_1_alone_says_what_it_lacks(tmp_path):
    from metaclip2.pipeline import count

    write_example_pool(tmp_path)
    count(tmp_path / "metadata", [str(tmp_path / "pool.jsonl")], out=tmp_path / "run")
    data = report_data(tmp_path / "run")
    assert [n.split(":")[0] for n in data["notes"]] == ["stage 3 has not run", "stage 2 has not run"]
    assert data["entries"] == [] and data["sweep"] is None
    assert data["languages"]["en"]["matched"]  # stage 1's samples are there
    text = write_html_report(tmp_path / "run").read_text(encoding="utf-8")
    assert "stage 2 has not run" in text and '<tr data-lang="de">' in text


def test_cli_report_writes_html_where_asked(pools, tmp_path, capsys):
    from metaclip2.cli import main

    out = tmp_path / "elsewhere.html"
    assert main(["report", str(pools / "run1"), "--no-plots", "--html", str(out)]) == 0
    assert out.exists() and f"report:   {out}" in capsys.readouterr().out
    assert main(["report", str(pools / "run1"), "--no-plots"]) == 0
    assert (pools / "run1" / "report.html").exists()


# -- in a real browser ------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from the system packages, driven by selenium (never a downloaded browser)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = f"needs {', '.join(missing)} (apt-get install chromium chromium-driver; pip install 'selenium>=4.20')"
        if os.environ.get("CI") == "true":
            pytest.fail(f"under CI the browser tests cannot skip: {reason}")
        pytest.skip(reason)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", "--window-size=1280,1700"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # the driver's path: selenium-manager never runs
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from metaclip2.pipeline.builds.demo import run_demo

    return run_demo(tmp_path_factory.mktemp("demo"), progress=False, n_images=600)


def _requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.mark.slow
def test_report_in_headless_chromium(browser, demo_run):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run, page = demo_run["run"], demo_run["report"]
    browser.get_log("performance")  # drop what came before
    browser.get(page.resolve().as_uri())
    assert browser.get_log("browser") == []  # no console error or warning
    urls = _requested_urls(browser)
    assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls

    # the language table lists every language of the datacard
    card = demo_run["summary"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#language-table tbody tr")
    assert sorted(r.get_attribute("data-lang") for r in rows) == sorted(card["languages"])
    # it sorts: click "kept" twice (descending)
    header = browser.find_elements(By.CSS_SELECTOR, "#language-table th")[3]
    header.click()
    header.click()
    kept = [_number(r.find_elements(By.TAG_NAME, "td")[3].text) for r in browser.find_elements(By.CSS_SELECTOR, "#language-table tbody tr")]
    assert kept == sorted(kept, reverse=True)

    # searching an entry shows its examples
    data = report_data(run)
    entry = next(e for e in sorted(data["entries"], key=lambda e: (e["lang"] != "en", len(e["text"]) < 3)) if e["head"] and e["kept"] and e["not_kept"])
    box = browser.find_element(By.ID, "entry-search")
    box.send_keys(entry["text"])
    browser.find_element(By.ID, "entry-lang").send_keys(entry["lang"])
    detail = browser.find_element(By.ID, "entry-detail")
    assert entry["text"] in detail.find_element(By.TAG_NAME, "h3").text
    shown = [li.text for li in detail.find_elements(By.CSS_SELECTOR, "ul.kept li")]
    assert shown == entry["kept"]
    assert [li.text for li in detail.find_elements(By.CSS_SELECTOR, "ul.notkept li")] == entry["not_kept"]

    # moving t_en shows the sweep's value for that t_en
    slider = browser.find_element(By.ID, "t-range")
    start = int(slider.get_attribute("value"))
    slider.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    t_en = _number(browser.find_element(By.ID, "t-value").text)
    assert t_en == data["sweep"]["grid"][start - 2]
    expected = sweep(run, [t_en], unit=card["parameters"]["stage3"]["unit"]).rows[0]
    assert _number(browser.find_element(By.ID, "t-pairs").text) == pytest.approx(expected["pairs"], abs=0.051)
    assert _number(browser.find_element(By.ID, "t-images").text) == pytest.approx(expected["images"], abs=0.051)
    en = browser.find_element(By.CSS_SELECTOR, '#t-langs tr[data-lang="en"]').find_elements(By.TAG_NAME, "td")
    assert _number(en[2].text) == pytest.approx(expected["languages"]["en"]["pairs"], abs=0.051)
    assert browser.get_log("browser") == []

    # the README's screenshot: the top of the page, an entry picked
    shot = os.environ.get("METACLIP2_REPORT_SCREENSHOT")
    browser.execute_script("document.querySelector('details.lang').open = true; document.getElementById('sweep').scrollIntoView()")
    path = browser.save_screenshot(shot) if shot else None
    assert path in (None, True)
