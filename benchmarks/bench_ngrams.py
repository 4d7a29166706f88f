"""N-gram counting at scale: bounded memory, worker throughput, and a full-English projection.

Usage::

    python benchmarks/bench_ngrams.py [--copies 30] [--share 0.13] [--memory-limit 128MB] [--keep DIR]

Builds a synthetic multistream dump (100 pages per bz2 stream, as Wikipedia's
``…-multistream.xml.bz2``) from ``--copies`` copies of the shared English sample; in copy
``k > 0`` a ``--share`` of the word types (chosen by a stable hash) of the running text get a
copy-specific suffix, so every copy brings new vocabulary and new bigrams. Then runs the real
CLI, ``metaclip2 metadata ngrams``, as a subprocess:

1. one counter over the whole dump, no memory limit (`write_dump_ngrams` with one part: the
   baseline file, and the peak RSS per distinct bigram),
2. ``--workers 1 --memory-limit M``,
3. ``--workers 2 --memory-limit M``,

and prints MB/s of bz2, the peak RSS of every process of each run (``VmHWM`` polled from
``/proc``, and ``ru_maxrss`` of the waited-for children), whether the three files are
byte-identical, and the projection to full English Wikipedia (~4.5e9 tokens, ~20 GB bz2).
"""

from __future__ import annotations

import argparse
import bz2
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT = ROOT.parent / "shared" / "data" / "wikipedia" / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
# Running-text words only (a space before, a space or punctuation after), so tag names,
# link prefixes and template keywords keep working.
_WORD_RE = re.compile(r"(?<= )([A-Za-z]{3,})(?=[ ,.;:])")
FULL_EN_TOKENS = 4.5e9
FULL_EN_BZ2 = 20e9
PAGES_PER_STREAM = 100


def _suffix(k: int) -> str:
    s = ""
    while True:
        s = "abcdefghijklmnopqrstuvwxyz"[k % 26] + s
        k //= 26
        if k == 0:
            return "qx" + s


def make_dump(src: Path, dst: Path, copies: int, share: float) -> int:
    """Write the synthetic multistream dump; return its size in bytes."""
    head, pages, cur = [], [], []
    with bz2.open(src, "rt", encoding="utf-8") as f:
        in_pages = False
        for line in f:
            s = line.strip()
            if not in_pages and s.startswith("<page"):
                in_pages = True
            if not in_pages:
                head.append(line)
            elif s != "</mediawiki>":
                cur.append(line)
                if s == "</page>":
                    pages.append("".join(cur))
                    cur = []
    limit = int(share * 1000)
    with open(dst, "wb") as out:
        out.write(bz2.compress("".join(head).encode("utf-8")))
        batch: list[str] = []
        for k in range(copies):
            suf = _suffix(k)

            def rename(m: re.Match) -> str:
                w = m.group(1)
                return w + suf if zlib.crc32(w.encode()) % 1000 < limit else w

            for page in pages:
                batch.append(page if k == 0 else _WORD_RE.sub(rename, page))
                if len(batch) == PAGES_PER_STREAM:
                    out.write(bz2.compress("".join(batch).encode("utf-8")))
                    batch = []
        if batch:
            out.write(bz2.compress("".join(batch).encode("utf-8")))
        out.write(bz2.compress(b"</mediawiki>\n"))
    return dst.stat().st_size


def growth(src: Path) -> tuple[float, float, float, float]:
    """Fit distinct = K * N**beta for unigrams and bigrams on prefixes of the real sample.

    Returns (K_uni, beta_uni, K_bi, beta_bi). A 0.5 M-token sample extrapolated 10^4-fold:
    a rough guide, not a measurement.
    """
    import numpy as np

    from metaclip2.metadata.tokenizer import tokenize
    from metaclip2.metadata.wikitext import iter_article_texts

    uni, bi, points = set(), set(), []
    n, next_mark = 0, 25_000
    for text in iter_article_texts(src):
        for chain in tokenize(text, "en"):
            uni.update(chain)
            bi.update(zip(chain, chain[1:]))
            n += len(chain)
        if n >= next_mark:
            points.append((n, len(uni), len(bi)))
            next_mark *= 2
    points.append((n, len(uni), len(bi)))
    x = np.log([p[0] for p in points])
    bu, ku = np.polyfit(x, np.log([p[1] for p in points]), 1)
    bb, kb = np.polyfit(x, np.log([p[2] for p in points]), 1)
    return float(np.exp(ku)), float(bu), float(np.exp(kb)), float(bb)


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _hwm_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# One counter over the whole dump (one part, one run, no limit): what the Counter version held.
_ONE_COUNTER = """
import sys
from metaclip2.metadata.ngrams import write_dump_ngrams
s = write_dump_ngrams(sys.argv[1], "en", sys.argv[2], workers=1, parts_per_worker=1, min_part_bytes=1 << 40)
print(f"en: {s['articles']} articles, {s['n_tokens']} tokens, {s['unigrams']} unigrams, {s['bigrams']} bigrams "
      f"({s['parts']} parts, {s['runs']} runs; counting {s['count_seconds']:.1f} s, merge {s['merge_seconds']:.1f} s)", file=sys.stderr)
"""


def run_cli(argv: list[str], env: dict, one_counter: bool = False) -> dict:
    """Run the CLI (or `_ONE_COUNTER`), polling the peak RSS of each process of its tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    cmd = [sys.executable, "-c", _ONE_COUNTER, *argv] if one_counter else [sys.executable, "-m", "metaclip2", *argv]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, int] = {}
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        for pid in _tree(proc.pid):
            kb = _hwm_kb(pid)
            if kb is not None:
                peaks[pid] = max(peaks.get(pid, 0), kb)
            c = _cpu_s(pid)
            if c is not None:
                cpu[pid] = c
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"metaclip2 {' '.join(argv)} failed ({proc.returncode}):\n{err}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    stats = re.search(r"(\d+) tokens, (\d+) unigrams, (\d+) bigrams \((\d+) parts, (\d+) runs; counting ([\d.]+) s, merge ([\d.]+) s\)", err)
    if stats is None:
        raise SystemExit(f"unexpected CLI output:\n{err}")
    tokens, uni, bi, parts, runs = (int(stats.group(i)) for i in range(1, 6))
    return {
        "seconds": seconds,
        "peaks_mb": sorted((kb / 1024 for kb in peaks.values()), reverse=True),
        "parent_cpu_s": cpu.get(proc.pid, 0.0),
        "workers_cpu_s": sum(v for k, v in cpu.items() if k != proc.pid),
        "ru_maxrss_mb": max(after, before) / 1024 if after > before else None,
        "tokens": tokens,
        "unigrams": uni,
        "bigrams": bi,
        "parts": parts,
        "runs": runs,
        "count_s": float(stats.group(6)),
        "merge_s": float(stats.group(7)),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dump", default=str(DEFAULT), help="source dump (default: the shared English sample)")
    p.add_argument("--copies", type=int, default=30)
    p.add_argument("--share", type=float, default=0.13, help="share of word types renamed per copy")
    p.add_argument("--memory-limit", default="128MB")
    p.add_argument("--spill-limit", default="24MB", help="a limit small enough to make the workers spill (4th run)")
    p.add_argument("--keep", help="work in this directory and keep the files")
    args = p.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-ngrams-"))
    work.mkdir(parents=True, exist_ok=True)
    dump = work / "enwiki-synthetic-pages-articles-multistream.xml.bz2"
    if not dump.exists():
        t = time.perf_counter()
        make_dump(Path(args.dump), dump, args.copies, args.share)
        print(f"synthetic dump: {args.copies} copies, share {args.share}: {dump.stat().st_size / 2**20:.1f} MB bz2 ({time.perf_counter() - t:.0f} s to build)")
    mb = dump.stat().st_size / 2**20
    common = ["metadata", "ngrams", str(dump), "--lang", "en", "-q"]

    small = Path(args.dump).with_name("enwiki-table-markup.xml.bz2")  # 5 pages: the fixed-cost baseline
    tiny = run_cli([str(small), str(work / "tiny.ngrams")], env, one_counter=True)
    runs = {
        "1 process, no limit": (None, work / "unlimited.ngrams"),
        f"1 process, --memory-limit {args.memory_limit}": (["--workers", "1", "--memory-limit", args.memory_limit], work / "limit1.ngrams"),
        f"2 processes, --memory-limit {args.memory_limit}": (["--workers", "2", "--memory-limit", args.memory_limit], work / "limit2.ngrams"),
        f"2 processes, --memory-limit {args.spill_limit}": (["--workers", "2", "--memory-limit", args.spill_limit], work / "spill2.ngrams"),
    }
    results = {}
    for name, (extra, out) in runs.items():
        if extra is None:
            r = results[name] = run_cli([str(dump), str(out)], env, one_counter=True)
        else:
            r = results[name] = run_cli([*common, "-o", str(out), *extra], env)
        print(
            f"{name:34s} {r['seconds']:6.1f} s  {mb / r['seconds']:5.2f} MB/s bz2  (count {r['count_s']:.1f} s = {mb / r['count_s']:.2f} MB/s, "
            f"merge {r['merge_s']:.1f} s)  parts {r['parts']}, runs {r['runs']}  peak RSS per process (MB): "
            + ", ".join(f"{x:.0f}" for x in r["peaks_mb"])
            + (f"  [ru_maxrss {r['ru_maxrss_mb']:.0f} MB]" if r["ru_maxrss_mb"] else "")
            + f"  CPU s: parent {r['parent_cpu_s']:.1f}, other processes {r['workers_cpu_s']:.1f}"
        )
    files = [out.read_bytes() for _, out in runs.values()]
    same = all(f == files[0] for f in files)
    base = results["1 process, no limit"]
    print(f"tokens {base['tokens']:,}, distinct unigrams {base['unigrams']:,}, distinct bigrams {base['bigrams']:,}")
    print(f"files byte-identical (one counter / limits with 1 and 2 processes / spilling): {same}")

    # Memory per distinct bigram: peak RSS of the one-counter run above that of the same
    # command on a 5-page dump (interpreter, libraries, tokenizer tables).
    per_bigram = (base["peaks_mb"][0] - tiny["peaks_mb"][0]) * 2**20 / base["bigrams"]
    print(f"unlimited run: {per_bigram:.0f} bytes of peak RSS per distinct bigram (vocabulary included; the Counter version: ~225-260)")

    lim2 = results[f"2 processes, --memory-limit {args.memory_limit}"]
    lim1 = results[f"1 process, --memory-limit {args.memory_limit}"]
    print(f"throughput (wall clock, shared machine: load average {os.getloadavg()[0]:.1f}): 1 process {mb / lim1['seconds']:.2f} MB/s, "
          f"2 processes {mb / lim2['seconds']:.2f} MB/s (x{lim1['seconds'] / lim2['seconds']:.2f})")
    busy = lim2["workers_cpu_s"] + lim2["parent_cpu_s"]
    per_cpu = mb / busy
    print(f"per busy core (CPU time, load-independent): {mb / (lim1['parent_cpu_s'] + lim1['workers_cpu_s']):.2f} MB/s with 1 process, "
          f"{per_cpu:.2f} MB/s per core with 2; the parent used {100 * lim2['parent_cpu_s'] / busy:.1f} % of the 2-process run's CPU "
          f"(bound on the speed-up from the parent: x{busy / max(lim2['parent_cpu_s'], 1e-9):.0f})")
    worst = max(max(r["peaks_mb"]) for name, r in results.items() if "limit" in name)
    print(f"largest process of the limited runs: {worst:.0f} MB (target < 450 MB)")
    sp = results[f"2 processes, --memory-limit {args.spill_limit}"]
    print(f"spilling run ({args.spill_limit}): {sp['runs']} runs from {sp['parts']} parts, largest process {max(sp['peaks_mb']):.0f} MB "
          f"(fixed part of a worker: ~{tiny['peaks_mb'][0]:.0f} MB)")

    # Projection to full English Wikipedia.
    per_proc_mb = per_cpu
    merge_rate = base["bigrams"] / max(lim2["merge_s"], 1e-9)  # distinct bigrams written per second
    bigrams_full = (5e8, 7e8)  # the extrapolation (N^0.85-0.89)
    from metaclip2.metadata.ngram_runs import parse_memory

    # At full scale every worker fills its budget: fixed part + the limit.
    worker_mb = max(max(lim2["peaks_mb"]), tiny["peaks_mb"][0] + parse_memory(args.memory_limit) / 2**20)
    ku, bu, kb, bb = growth(Path(args.dump))
    unigrams_full = ku * FULL_EN_TOKENS**bu
    print(f"growth on prefixes of the real sample: distinct unigrams ~ {ku:.2f} N^{bu:.3f}, distinct bigrams ~ {kb:.2f} N^{bb:.3f}")
    print(f"  at 4.5e9 tokens: ~{unigrams_full:.2e} distinct unigrams, ~{kb * FULL_EN_TOKENS**bb:.2e} distinct bigrams")
    # Merge: string blob (~10 B) + offset (8 B) per distinct unigram, chunk buffers, interpreter.
    # Ranking (NgramFile): 8 B hash + 8 B count + 8 B argsort per distinct unigram.
    parent_mb = unigrams_full * (10 + 8) / 2**20 + 150
    rank_mb = unigrams_full * 24 / 2**20 + 150
    print("projection, full English (~4.5e9 tokens, ~20 GB bz2):")
    for workers in (2, 8, 16):
        hours = FULL_EN_BZ2 / 2**20 / (per_proc_mb * workers) / 3600
        peak_gb = (workers * worker_mb + parent_mb) / 1024
        print(f"  {workers:2d} workers x {args.memory_limit} on {workers} free cores: counting ~{hours:.1f} h, peak RAM ~{peak_gb:.1f} GB "
              f"({workers} x {worker_mb:.0f} MB workers + ~{parent_mb:.0f} MB merge)")
    lo, hi = (b / merge_rate / 3600 for b in bigrams_full)
    print(f"  merge of {bigrams_full[0]:.0e}-{bigrams_full[1]:.0e} distinct bigrams at {merge_rate:,.0f}/s: ~{lo:.1f}-{hi:.1f} h (one process); "
          f"runs on disk ~{16 * bigrams_full[1] * 2 / 1e9:.0f} GB")
    print(f"  ranking from the merged file (NgramFile): ~{rank_mb / 1024:.1f} GB (PMI); 'corrected' adds 8 B per bigram: "
          f"~{8 * bigrams_full[1] / 2**30:.1f} GB")
    print("  the Counter version needed 110-190 GB in one process")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
