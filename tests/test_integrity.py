"""A run never trusts what it cannot verify (issue 10, points 3, 4 and 6).

Each test damages a run directory, or its inputs, the way a careless user, a full disk or bit
rot would, and checks that the damage is named and redone (or refused), and that the run
then ends with the same bytes as an undamaged one.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metaclip2.core.arrayfile import load_arrays, save_arrays
from metaclip2.core.entries import write_metadata
from metaclip2.core.errors import DataError, RunMismatchError
from metaclip2.curation.sampling import EntryProbabilities
from metaclip2.pipeline.run.api import compute_thresholds, count, curate, sample
from metaclip2.pipeline.run.verify import InputChangedError

import fixtures
from fixtures import make_metadata, random_texts, tree

ROOT = Path(__file__).resolve().parent.parent

META = {lang: entries for lang, entries in fixtures.META.items() if lang != "zh"}
WORDS = {lang: words for lang, words in fixtures.WORDS.items() if lang != "zh"}
KW = dict(t_en=8, progress=False, max_chars=100)


def write_shard(path: Path, seed: int, n: int = 150) -> Path:
    rnd = random.Random(seed)
    lines = [json.dumps({"id": f"{path.stem}-{i}", "texts": random_texts(rnd, WORDS)}) + "\n" for i in range(n)]
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    d = tmp_path_factory.mktemp("pool")
    meta = make_metadata(d / "meta", META)
    (d / "in").mkdir()
    for s in range(3):
        write_shard(d / "in" / f"part-{s}.jsonl", s)
    return {"meta": meta, "glob": str(d / "in" / "*.jsonl"), "dir": d}


@pytest.fixture(scope="module")
def reference(pool, tmp_path_factory):
    return curate(pool["meta"], [pool["glob"]], tmp_path_factory.mktemp("ref") / "run", **KW)


@pytest.fixture
def run(pool, reference, tmp_path):
    """A finished run, a copy of the reference (inputs shared with it)."""
    out = tmp_path / "run"
    shutil.copytree(reference.out, out)
    return out


def again(pool, out, **kw):
    return curate(pool["meta"], [pool["glob"]], out, **{**KW, **kw})


def redone(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "redone" in r.getMessage()]


# -- point 3: resume verifies contents, not names ------------------------------------------------


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip", "extend"])
def test_damaged_stage3_output_is_named_and_redone(pool, reference, run, caplog, damage):
    out = run / "stage3" / "part-1.jsonl"
    data = out.read_bytes()
    if damage == "delete":
        out.unlink()
    elif damage == "truncate":
        out.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # same size, one bit changed
        out.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    else:
        out.write_bytes(data + data[:50])
    res = again(pool, run)
    assert [m for m in redone(caplog) if "part-1" in m and "part-1.jsonl" in m and "stage 3" in m]
    assert len(redone(caplog)) == 1
    assert tree(run) == tree(reference.out)
    assert res.datacard["complete"]


@pytest.mark.parametrize("what", ["index", "counts"])
def test_damaged_stage1_output_is_redone(pool, reference, run, caplog, what):
    name = "part-0.index.bin" if what == "index" else "part-0.counts.bin"
    path = run / "stage1" / name
    data = path.read_bytes()
    if what == "index":  # cut short
        path.write_bytes(data[:-50])
    else:  # a flipped bit in the payload
        path.write_bytes(data[:-9] + bytes([data[-9] ^ 0x10]) + data[-8:])
    again(pool, run)
    msgs = redone(caplog)
    assert len(msgs) == 1 and "stage 1" in msgs[0] and "part-0" in msgs[0] and name in msgs[0]
    assert tree(run) == tree(reference.out)


def test_sample_alone_refuses_a_cut_index(pool, tmp_path):
    out = tmp_path / "run"
    count(pool["meta"], [pool["glob"]], out, **{k: v for k, v in KW.items() if k != "t_en"})
    compute_thresholds(out, t_en=8, progress=False)
    index = out / "stage1" / "part-2.index.bin"
    index.write_bytes(index.read_bytes()[:-50])
    with pytest.raises(DataError, match=r"part-2\.index\.bin.*stage-1 index.*run that stage again"):
        sample(out, progress=False)
    assert not (out / "stage3" / "part-2.stats.json").exists()


def test_damaged_stats_files_are_redone(pool, reference, run, caplog):
    (run / "stage1" / "part-2.stats.json").write_text('{"format": "metaclip2-stage1-st')
    (run / "stage3" / "part-0.stats.json").write_text("")
    th = run / "stage2" / "thresholds.json"
    th.write_text(th.read_text()[:20])
    again(pool, run)
    msgs = redone(caplog)
    assert any("stage 1" in m and "part-2" in m and "stats file is damaged" in m for m in msgs)
    assert any("stage 3" in m and "part-0" in m for m in msgs)
    assert any("stage 2" in m and "thresholds.json is damaged" in m for m in msgs)
    assert tree(run) == tree(reference.out)


def test_stage2_files_are_verified(pool, reference, run, caplog, tmp_path):
    # probabilities.bin of another t_en: named and redone by curate, refused by sample alone
    other = curate(pool["meta"], [pool["glob"]], tmp_path / "other", **{**KW, "t_en": 3})
    shutil.copy(other.probabilities, run / "stage2" / "probabilities.bin")
    with pytest.raises(DataError, match="probabilities.bin"):
        sample(run, progress=False)
    again(pool, run)
    assert any("stage 2" in m and "probabilities.bin" in m for m in redone(caplog))
    assert tree(run) == tree(reference.out)
    # both stage-2 files of the other run (they agree with each other, not with run.json)
    for name in ("probabilities.bin", "thresholds.json", "counts.bin"):
        shutil.copy(other.out / "stage2" / name, run / "stage2" / name)
    with pytest.raises(DataError, match="t_en = 3"):
        sample(run, progress=False)
    again(pool, run)
    assert tree(run) == tree(reference.out)
    # a bit flip in the merged counts
    counts = run / "stage2" / "counts.bin"
    data = counts.read_bytes()
    counts.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    caplog.clear()
    again(pool, run)
    assert any("stage 2" in m and "counts.bin" in m for m in redone(caplog))
    assert tree(run) == tree(reference.out)


def test_changed_input_is_refused_or_redone(pool, tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(pool["dir"] / "in", inputs)
    out = tmp_path / "run"
    kw = dict(KW)
    curate(pool["meta"], [str(inputs / "*.jsonl")], out, **kw)
    before = tree(out)
    # touched, content unchanged: still the same input
    os.utime(inputs / "part-1.jsonl", ns=(1, 1))
    curate(pool["meta"], [str(inputs / "*.jsonl")], out, **kw)
    assert tree(out) == before
    # replaced: refused, naming the shard, and the directory is left as it was
    write_shard(inputs / "part-1.jsonl", seed=99)
    with pytest.raises(InputChangedError, match=r"part-1\.jsonl \(shard part-1\) changed since stage 1.*--redo-changed"):
        curate(pool["meta"], [str(inputs / "*.jsonl")], out, **kw)
    with pytest.raises(InputChangedError):
        sample(out, progress=False)
    assert tree(out) == before
    # redone on request: the same bytes as a fresh run over the new inputs
    curate(pool["meta"], [str(inputs / "*.jsonl")], out, redo_changed=True, **kw)
    fresh = tmp_path / "fresh"
    curate(pool["meta"], [str(inputs / "*.jsonl")], fresh, **kw)
    assert tree(out) == tree(fresh)
    assert tree(out) != before
    assert "redo_changed" not in (out / "run.json").read_text()


def test_cli_redo_changed(pool, tmp_path, capsys):
    from metaclip2.cli import main

    inputs = tmp_path / "in"
    shutil.copytree(pool["dir"] / "in", inputs)
    base = ["curate", "--metadata", str(pool["meta"]), "--input", str(inputs / "*.jsonl"), "--out", str(tmp_path / "run"),
            "--t-en", "8", "--max-chars", "100", "--quiet"]  # fmt: skip
    assert main(base) == 0
    write_shard(inputs / "part-0.jsonl", seed=7)
    capsys.readouterr()
    assert main(base) == 1
    err = capsys.readouterr().err
    assert "part-0" in err and "--redo-changed" in err and len(err.strip().splitlines()) == 1
    assert main([*base, "--redo-changed"]) == 0


# -- stage files checked on load -----------------------------------------------------------------


def test_arrayfile_detects_flips_cuts_and_garbage_lengths(tmp_path):
    path = tmp_path / "a.bin"
    save_arrays(path, {"format": "x", "n": 1}, {"a": np.arange(1000, dtype=np.float64), "b": np.arange(7, dtype=np.int32)})
    data = path.read_bytes()
    header, arrays = load_arrays(path)
    assert header == {"format": "x", "n": 1} and arrays["a"][999] == 999.0
    for i in (8, 50, len(data) // 2, len(data) - 1):  # checksum, header, payload, last byte
        (tmp_path / "f.bin").write_bytes(data[:i] + bytes([data[i] ^ 4]) + data[i + 1 :])
        with pytest.raises(DataError, match="f.bin"):
            load_arrays(tmp_path / "f.bin")
    (tmp_path / "cut.bin").write_bytes(data[:-3])
    with pytest.raises(DataError, match="cut.bin is truncated"):
        load_arrays(tmp_path / "cut.bin")
    # a garbage length is compared with the file size before anything is allocated
    n = int.from_bytes(data[40:48], "little")
    meta = json.loads(data[48 : 48 + n])
    meta["arrays"][0]["length"] = 1 << 60
    raw = json.dumps(meta).encode()
    (tmp_path / "len.bin").write_bytes(data[:40] + len(raw).to_bytes(8, "little") + raw + data[48 + n :])
    with pytest.raises(DataError, match="len.bin is truncated: it declares"):
        load_arrays(tmp_path / "len.bin")
    (tmp_path / "meta.bin").write_bytes(data[:40] + (1 << 62).to_bytes(8, "little") + data[48:])
    with pytest.raises(DataError, match="meta.bin is damaged"):
        load_arrays(tmp_path / "meta.bin")


@pytest.mark.parametrize("bad", [float("nan"), -0.25, 1.5, float("inf")])
def test_probabilities_out_of_range_are_refused_on_load(tmp_path, bad):
    q = np.array([0.5, 1.0, bad, 0.0])
    EntryProbabilities({"en": np.array([1.0]), "de": q}, {"en": 8, "de": 3}, {"en": "a" * 64, "de": "b" * 64}, {"t_en": 8}).save(tmp_path / "p.bin")
    with pytest.raises(DataError, match=r"p\.bin is damaged: 1 probabilities of 'de' are not in \[0, 1\] \(entry 2"):
        EntryProbabilities.load(tmp_path / "p.bin")


# -- point 4: validate, then claim ---------------------------------------------------------------


def test_refused_commands_leave_the_directory_as_it_was(pool, reference, tmp_path, capsys):
    from metaclip2.cli import main

    (tmp_path / "notes.txt").write_text("not a shard")
    (tmp_path / "model.ftz").write_text("not a model")
    (tmp_path / "empty_meta").mkdir()
    good = ["--metadata", str(pool["meta"]), "--input", pool["glob"], "--t-en", "8", "--max-chars", "100", "--quiet"]
    bad_options = [
        ["--t-en", "-5"], ["--max-chars", "0"], ["--p", "5"], ["--lid-model", str(tmp_path / "missing.ftz")],
        ["--lid-model", str(tmp_path / "model.ftz")], ["--input", str(tmp_path / "notes.txt")],
        ["--metadata", str(tmp_path / "no_meta")], ["--metadata", str(tmp_path / "empty_meta")],
        ["--input", str(tmp_path / "none-*.jsonl")],
    ]  # fmt: skip
    for existing in (False, True):
        out = tmp_path / ("existing" if existing else "new")
        if existing:
            shutil.copytree(reference.out, out)
        before = tree(out) if existing else None
        for bad in bad_options:
            for cmd in ("curate", "count"):
                argv = [cmd, *good, *bad, "--out", str(out)] if cmd == "curate" else [cmd, *good[:4], *bad, "--out", str(out)]
                if cmd == "count" and bad[0] in ("--t-en", "--p"):
                    continue
                code = main(argv)
                err = capsys.readouterr().err
                assert code in (1, 2) and "Traceback" not in err and len(err.strip().splitlines()) == 1, (bad, err)
                if existing:
                    assert tree(out) == before, bad
                else:
                    assert not out.exists(), bad
        assert main(["curate", *good, "--out", str(out)]) == 0
        capsys.readouterr()  # its warnings (t_en = 8 leaves a tail share under 1 %) are not under test here
        assert tree(out / "stage3") == tree(reference.out / "stage3")


def test_failed_stage2_is_not_claimed_and_a_retry_with_p_works(tmp_path):
    meta = make_metadata(tmp_path / "meta", {"de": META["de"], "other": META["other"]})
    shard = write_shard(tmp_path / "a.jsonl", seed=1)
    out = tmp_path / "run"
    with pytest.raises(DataError, match="no 'en' .*--p"):
        curate(meta, [str(shard)], out, **KW)  # refused before stage 1 (a sample of the pool has no English)
    assert not out.exists()
    count(meta, [str(shard)], out, **KW)  # stage 1 alone only warns
    with pytest.raises(DataError, match="no 'en' .*--p"):
        compute_thresholds(out, **KW)
    assert "stage2" not in json.loads((out / "run.json").read_text())
    res = curate(meta, [str(shard)], out, **{**KW, "p": 0.5})
    assert res.datacard["complete"] and res.datacard["p"] == 0.5


def test_metadata_refusal_names_the_languages(pool, run, tmp_path):
    meta = tmp_path / "meta"
    shutil.copytree(pool["meta"], meta)
    write_metadata(meta / "de.tsv", META["de"] + ["Sonne"], lang="de")
    write_metadata(meta / "fr.tsv", ["chat"], lang="fr")
    with pytest.raises(RunMismatchError, match=r"metadata_digests: de changed; fr added"):
        curate(meta, [pool["glob"]], run, **KW)


# -- point 5: one run per directory --------------------------------------------------------------

_HOLD = """
import sys, time
from metaclip2.pipeline.run.rundir import RunDir
with RunDir(sys.argv[1]).lock(exclusive=sys.argv[2] == "ex"):
    print("locked", flush=True)
    sys.stdin.read()
"""


def _holder(out: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-c", _HOLD, str(out), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert p.stdout.readline() == b"locked\n"
    return p


def test_a_second_run_is_refused_naming_the_holder(pool, run, reference, capsys):
    from metaclip2.cli import main
    from metaclip2.pipeline.run.rundir import RunBusyError

    holder = _holder(run, "ex")
    try:
        with pytest.raises(RunBusyError, match=rf"in use by another metaclip2 run \(pid {holder.pid} on "):
            again(pool, run)
        with pytest.raises(RunBusyError):
            count(pool["meta"], [pool["glob"]], run, shards=[0], progress=False, max_chars=100)
        assert main(["report", str(run), "--no-plots"]) == 1
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and len(err.strip().splitlines()) == 1
    finally:
        holder.communicate(b"")
    # jobs of an array share the directory; a whole-run command is refused while they run
    holder = _holder(run, "sh")
    try:
        assert len(count(pool["meta"], [pool["glob"]], run, shards=[1], progress=False, max_chars=100)) == 1
        with pytest.raises(RunBusyError, match=rf"shared lock.*pid {holder.pid}"):
            again(pool, run)
    finally:
        holder.communicate(b"")
    again(pool, run)
    assert tree(run) == tree(reference.out)  # the lock file is empty again
    assert (run / "run.lock").read_bytes() == b""


_DRIVER = """
import functools, sys, time
from metaclip2.execution.local import LocalExecutor
if __name__ == "__main__":
    ex = LocalExecutor(2)
    if sys.argv[1] == "idle":
        ex.run([functools.partial(time.sleep, 0.2)] * 2)
        print("ready", flush=True)
        time.sleep(300)
    else:
        print("ready", flush=True)
        ex.run([functools.partial(time.sleep, 300)] * 2)
"""


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                kids.setdefault(int(fields[1]), []).append(int(d))
    return kids


def _descendants(pid: int) -> set[int]:
    kids, out, todo = _children(), set(), [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(pid)
        except OSError:
            pass
    return alive


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc (Linux)")
@pytest.mark.parametrize("state", ["idle", "busy"])
def test_workers_exit_when_the_driver_is_killed(tmp_path, state):
    import time

    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen([sys.executable, str(script), state], stdout=subprocess.PIPE, env=env)
    try:
        assert driver.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 30
        while len(_descendants(driver.pid)) < 3 and time.monotonic() < deadline:  # forkserver + 2 workers (+ tracker)
            time.sleep(0.05)
        time.sleep(0.5)
        pool = _descendants(driver.pid)
        assert len(pool) >= 3
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 10
    while _alive(pool) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _alive(pool)
    for pid in left:  # do not leave them behind if the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left


# -- point 6 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kill_at", ["run/datacard.json", "plots/pairs_per_language.png"])
def test_temporary_files_of_a_killed_report_are_removed_on_resume(pool, tmp_path, kill_at):
    pytest.importorskip("matplotlib")
    from metaclip2.cli import main

    out = tmp_path / "run"
    argv = ["curate", "--metadata", str(pool["meta"]), "--input", pool["glob"], "--out", str(out), "--t-en", "8",
            "--max-chars", "100", "--quiet"]  # fmt: skip
    env = {**os.environ, "METACLIP2_KILL_BEFORE_COMMIT": kill_at, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "faults"), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "metaclip2", *argv], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert [p for p in out.rglob("*") if ".tmp" in p.name]
    assert main(argv) == 0
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_temporary_file_of_a_retried_task_is_removed_when_the_run_ends(tmp_path):
    """A task lost with its Ray node and run again elsewhere left its first attempt's temporary
    file mid-run; the whole-run command removes it when it ends, not after an error."""
    from metaclip2.core.atomic import make_directory, temporary_name
    from metaclip2.pipeline.run.rundir import RunDir

    run = RunDir(tmp_path / "run")
    left = temporary_name(run.stage3 / "part-0.jsonl")
    with run.lock(exclusive=True):
        make_directory(run.stage3)
        left.write_bytes(b"half a shard")  # the killed attempt's, written while the run holds the lock
        assert left.exists()
    assert not left.exists()
    with pytest.raises(RuntimeError, match="stage failed"):
        with run.lock(exclusive=True):
            left.write_bytes(b"half a shard")
            raise RuntimeError("stage failed")  # a cancelled Ray task may still be writing: left for the next run
    assert left.exists()
    with run.lock(exclusive=False):  # an array job's shared lock never removes others' files
        pass
    assert left.exists()
    with run.lock(exclusive=True):  # the next whole-run command
        assert not left.exists()


def test_json_files_cut_short_give_one_line_naming_them(pool, run, capsys):
    from metaclip2.cli import main

    (run / "stage3" / "part-1.stats.json").write_text('{"format": ')
    assert main(["report", str(run), "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert "part-1.stats.json is damaged" in err and len(err.strip().splitlines()) == 1
    (run / "run.json").write_text('{"format": "metaclip2-run/1", "sta')
    assert main(["curate", "--metadata", str(pool["meta"]), "--input", pool["glob"], "--out", str(run), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "run.json is damaged" in err and "restore it" in err and len(err.strip().splitlines()) == 1


def test_out_that_is_a_file_or_inside_one(pool, tmp_path, capsys):
    from metaclip2.cli import main

    f = tmp_path / "file"
    f.write_text("x")
    for out in (f, f / "sub"):
        code = main(["curate", "--metadata", str(pool["meta"]), "--input", pool["glob"], "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and str(f) in err
    assert f.read_text() == "x"


def _in_namespace(tmp_path: Path, mount: str, argv: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI in a user+mount namespace over a fresh tmpfs (options `mount`) at tmp_path/mnt."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small or read-only tmpfs without privileges")
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o {mount} tmpfs {mnt}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.decode().strip()}")
    cmd = f"mount -t tmpfs -o {mount} tmpfs {mnt} && exec {sys.executable} -m metaclip2 " + " ".join(f"'{a}'" for a in argv)
    return subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip


@pytest.mark.parametrize("mount, cause", [("size=96k", "the disk is full"), ("ro", "read-only")])
def test_full_or_read_only_disk_gives_one_line(pool, tmp_path, mount, cause):
    argv = ["curate", "--metadata", str(pool["meta"]), "--input", pool["glob"], "--out", str(tmp_path / "mnt" / "run"),
            "--t-en", "8", "--max-chars", "100", "--quiet"]  # fmt: skip
    proc = _in_namespace(tmp_path, mount, argv)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    # one error line (warnings from the stages the run finished before the disk filled aside)
    errors = [line for line in err.strip().splitlines() if not line.startswith("metaclip2: warning:")]
    assert "Traceback" not in err and len(errors) == 1, err
    assert cause in err and str(tmp_path / "mnt" / "run") in err
