"""Curation at worldwide scale (issue 11): per-process peak RSS, matcher load time, stage-file
sizes and pairs/s per stage on a synthetic world, with 1 and 2 workers.

The world (seeded): one metadata list per Wikipedia of ``WIKIPEDIA_LANGUAGES`` (330 codes):
English 500k entries, 30 large Wikipedias 100k-250k, the rest 1k-50k (log-uniform), all
multiplied by ``--entries / 9M`` and by ``--scale``; merged per LID language with matchers
(:func:`build_lid_metadata`). Entries are syllable words and two-word phrases (CJK characters
for zh/ja/ko/yue). The pool: images whose language follows a Zipf law over the LID languages
(ranked by metadata size, English first), 1-3 alt-texts of 3-10 words of that language's
vocabulary (a few unknown words), the language given (no LID; the LID pass is the same in
every configuration).

Each configuration runs ``count``, ``compute_thresholds`` and ``sample`` in a fresh Python
process (``PYTHONPATH`` = the tree under test) while this script samples ``VmHWM`` (peak RSS)
of every process of its tree from ``/proc``. ``--baseline DIR`` also runs another checkout
(e.g. the main branch) on the same world for before/after ratios; outputs of every
configuration must be byte-identical (stage-1 files differ in format across trees, so those
are compared within a tree only).

Run::

    PYTHONPATH=. python benchmarks/bench_world.py --scale 0.1             # quick (~1M entries)
    PYTHONPATH=. python benchmarks/bench_world.py                         # 9M entries
    PYTHONPATH=. python benchmarks/bench_world.py --entries 27000000      # 27M (needs RAM)
    PYTHONPATH=. python benchmarks/bench_world.py --scale 0.1 --baseline ../../main
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAPER_ENTRIES = 27_000_000
PAPER_PAIRS = 29_000_000_000
BIG = ["de", "fr", "es", "ja", "ru", "it", "zh", "pt", "pl", "nl", "ar", "sv", "uk", "fa", "vi", "he", "id", "ko", "tr",
       "cs", "fi", "hu", "no", "ro", "ca", "sr", "ceb", "war", "arz", "hy"]  # fmt: skip
CJK = {"zh", "ja", "ko", "zh_yue", "zh_classical", "wuu", "gan"}
SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["a", "e", "i", "o", "u"]


# -- the world -----------------------------------------------------------------------------------


def wikipedia_sizes(entries: int, scale: float, seed: int) -> dict[str, int]:
    """Entries per Wikipedia code: English 500k, 30 large ones 100-250k, the rest 1-50k (x entries/9M x scale)."""
    from metaclip2.core.languages import WIKIPEDIA_LANGUAGES

    rnd = random.Random(seed)
    f = entries / 9_000_000 * scale
    sizes = {}
    for code in sorted(WIKIPEDIA_LANGUAGES):
        if code == "en":
            n = 500_000
        elif code in BIG:
            n = rnd.randint(100_000, 250_000)
        else:
            n = int(math.exp(rnd.uniform(math.log(1_000), math.log(50_000))))
        sizes[code] = max(20, int(n * f))
    return sizes


def _words(rnd: random.Random, n: int, cjk: bool, tag: str) -> list[str]:
    """`n` distinct words of a made-up script."""
    out: set[str] = set()
    while len(out) < n:
        if cjk:
            out.add("".join(chr(0x4E00 + rnd.randrange(20000)) for _ in range(rnd.randint(2, 4))))
        else:
            out.add("".join(rnd.choices(SYLLABLES, k=rnd.randint(2, 5))) + tag)
    return sorted(out)


def make_world(root: Path, entries: int, scale: float, images: int, shards: int, seed: int) -> dict:
    """Write ``root/wiki/<code>.tsv``, ``root/meta`` (LID metadata + matchers) and ``root/pool/*.jsonl``."""
    from metaclip2.core.entries import write_metadata
    from metaclip2.core.languages import wikipedia_to_lid_language
    from metaclip2.matching.lid_metadata import build_lid_metadata

    rnd = random.Random(seed)
    sizes = wikipedia_sizes(entries, scale, seed)
    lid_of = {code: wikipedia_to_lid_language(code) for code in sizes}
    lid_size: dict[str, int] = {}
    for code, n in sizes.items():
        lid_size[lid_of[code]] = lid_size.get(lid_of[code], 0) + n
    ranked = sorted(lid_size, key=lambda lang: (lang != "en", -lid_size[lang], lang))
    weights = [1 / (r + 1) for r in range(len(ranked))]  # Zipf over languages
    image_lang = rnd.choices(ranked, weights, k=images)
    image_n = [rnd.choice((1, 1, 2, 2, 3)) for _ in range(images)]
    by_lang: dict[str, list[int]] = {}
    for i, lang in enumerate(image_lang):
        by_lang.setdefault(lang, []).append(i)
    texts: list[list[str]] = [[] for _ in range(images)]
    (root / "wiki").mkdir(parents=True)
    t0 = time.perf_counter()
    for lang in sorted(lid_size):
        codes = [c for c in sorted(sizes) if lid_of[c] == lang]
        vocab: list[str] = []
        for code in codes:
            cjk = code in CJK
            n = sizes[code]
            words = _words(rnd, max(1, int(n * 0.6)), cjk, "" if code == codes[0] else code[:1])
            sep = "" if cjk else " "
            phrases = {words[rnd.randrange(len(words))] + sep + words[rnd.randrange(len(words))] for _ in range(n - len(words))}
            write_metadata(root / "wiki" / f"{code}.tsv", words + sorted(phrases), lang=code)
            vocab += words[: 20_000]
        sep = "" if codes[0] in CJK else " "
        cum = list(itertools.accumulate(1 / (r + 1) ** 0.8 for r in range(len(vocab))))  # Zipf-like over words
        for i in by_lang.get(lang, ()):
            for _ in range(image_n[i]):
                t = rnd.choices(vocab, cum_weights=cum, k=rnd.randint(3, 10))
                if rnd.random() < 0.3:
                    t[rnd.randrange(len(t))] = "zzq" + str(rnd.randrange(10**6))  # an unknown word
                texts[i].append(sep.join(t))
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_lid_metadata(root / "wiki", root / "meta", matchers=True, progress=False)
    t_build = time.perf_counter() - t0
    (root / "pool").mkdir()
    per = -(-images // shards)
    for s in range(shards):
        with open(root / "pool" / f"part-{s:04d}.jsonl", "w", encoding="utf-8") as f:
            for i in range(s * per, min(images, (s + 1) * per)):
                f.write(json.dumps({"id": f"img{i:09d}", "texts": [{"text": t, "lang": image_lang[i]} for t in texts[i]]},
                                   ensure_ascii=False) + "\n")  # fmt: skip
    return {
        "wikipedias": len(sizes), "wiki_entries": sum(sizes.values()), "lid_languages": len(lid_size),
        "lid_sizes": lid_size, "pairs": sum(image_n), "images": images, "t_generate": t_gen, "t_build": t_build,
    }  # fmt: skip


# -- measuring ---------------------------------------------------------------------------------------


RUNNER = r"""
import json, os, resource, sys, time

def tree_cpu():  # CPU seconds (user + system) of this process and every live descendant (the workers)
    ticks, kids = os.sysconf("SC_CLK_TCK"), {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
                kids.setdefault(int(f[1]), []).append((int(d), (int(f[11]) + int(f[12])) / ticks))
            except (OSError, ValueError, IndexError):
                pass
    total, todo = time.process_time(), [os.getpid()]
    while todo:
        for pid, cpu in kids.get(todo.pop(), ()):
            total += cpu
            todo.append(pid)
    return total
from metaclip2.execution import get_executor
from metaclip2.pipeline.run.api import compute_thresholds, count, sample
meta, pattern, out, workers, t_en, kw = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), json.loads(sys.argv[6])
ex = get_executor("local", workers)
ex.map(os.getpid, [{}] * workers)  # workers up before timing
c0 = time.process_time(); a0 = tree_cpu(); t0 = time.perf_counter(); count(meta, [pattern], out, executor=ex, progress=False, **kw)
c1 = time.process_time(); a1 = tree_cpu(); t1 = time.perf_counter(); compute_thresholds(out, t_en=t_en, progress=False)
c2 = time.process_time(); a2 = tree_cpu(); t2 = time.perf_counter(); sample(out, executor=ex, progress=False)
c3 = time.process_time(); a3 = tree_cpu(); t3 = time.perf_counter(); ex.close()
# c*: CPU seconds of this process (the whole work with 1 worker: tasks run in the calling process);
# a*: of every process of the run (driver + workers)
print(json.dumps({"t1": t1 - t0, "t2": t2 - t1, "t3": t3 - t2, "c1": c1 - c0, "c3": c3 - c2,
                  "a1": a1 - a0, "a2": a2 - a1, "a3": a3 - a2, "pid": os.getpid()}))
"""

STAGE2_RUNNER = r"""
import json, sys, time
from metaclip2.pipeline.stages.merge import compute_probabilities, merge_counts

def hwm():  # peak RSS of this process image (getrusage's ru_maxrss survives exec: it would show the parent's)
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024

paths, out = json.loads(sys.argv[1]), sys.argv[2]
rss0 = hwm()
t0 = time.perf_counter(); merge_counts(paths, out + "/counts.bin")
t1 = time.perf_counter(); rss1 = hwm()
compute_probabilities(out + "/counts.bin", out, t_en=float(sys.argv[3]))
t2 = time.perf_counter()
print(json.dumps({"merge_s": t1 - t0, "start_rss_mb": rss0, "merge_rss_mb": rss1, "probs_s": t2 - t1, "rss_mb": hwm()}))
"""

LOAD_RUNNER = r"""
import json, resource, sys, time
from pathlib import Path
from metaclip2.matching.matcher import Matcher
d = Path(sys.argv[1]); out = {}
for p in sorted(d.glob("*.matcher"), key=lambda p: -p.stat().st_size)[: int(sys.argv[2])]:
    before = int(open("/proc/self/statm").read().split()[1]) * 4096
    t0 = time.perf_counter(); m = Matcher.load(p); t = time.perf_counter() - t0
    after = int(open("/proc/self/statm").read().split()[1]) * 4096
    out[p.stem] = {"entries": len(m), "load_s": t, "rss_bytes": after - before}
    del m
print(json.dumps(out))
"""


VERIFY_RUNNER = r"""
import sys
from pathlib import Path
from metaclip2.matching.matcher import Matcher
for p in sorted(Path(sys.argv[1]).glob("*.matcher")):
    Matcher.load(p)
"""

# Loaded in every process of a run (a sitecustomize on PYTHONPATH) with --one-matcher: a store
# without a matcher_memory parameter keeps only the matcher (and entry list) last asked for, as
# a bounded cache smaller than one matcher does. Stage 1 asks again in every language phase.
ONE_MATCHER = r"""
import inspect
import metaclip2.matching.store as _store

if "matcher_memory" not in inspect.signature(_store.MetadataStore).parameters:
    _matcher = _store.MetadataStore.matcher

    def matcher(self, lang):
        with self._lock:
            for other in [x for x in self._matchers if x != lang]:
                del self._matchers[other]
            for other in [x for x in self._entries if x != lang]:
                del self._entries[other]  # today's store also keeps every entry list; a bounded one keeps digests
        return _matcher(self, lang)

    _store.MetadataStore.matcher = matcher
"""


def _children(pid: int) -> list[int]:
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def _hwm(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _rollup(pid: int) -> tuple[int, int, int] | None:
    """(PSS, private, anonymous bytes) of a process now, from /proc/PID/smaps_rollup (None if gone).

    PSS counts each shared page (a mapped matcher in the page cache, the forkserver's
    imports) divided by the processes that map it, so the PSS of a run's processes sums to
    the memory the run takes; private = Private_Clean + Private_Dirty (which includes pages
    of a mapped file that only this process maps); anonymous = the process's own heap, what
    no other process and no page cache can share.
    """
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            v = {}
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                    v[parts[0][:-1]] = int(parts[1]) * 1024
    except OSError:
        return None
    if "Pss" not in v:
        return None
    return v["Pss"], v.get("Private_Clean", 0) + v.get("Private_Dirty", 0), v.get("Anonymous", 0)


#: Peak PSS and private memory per process of the last run_measured call: {pid: (pss, private)}.
ROLLUPS: dict[int, tuple[int, int, int]] = {}
#: Peak of the PSS summed over the processes alive at one sample.
PSS_SUM = [0]


def run_measured(cmd: list[str], env: dict, cwd: Path) -> tuple[str, dict[int, int], int]:
    """Run `cmd` in `cwd`; returns (stdout, {pid: peak RSS bytes} of every process of its tree, root pid).

    Also samples PSS and private memory (:data:`ROLLUPS`, :data:`PSS_SUM`) every 50 ms.
    """
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, int] = {}
    ROLLUPS.clear()
    PSS_SUM[0] = 0
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            todo, seen = [proc.pid], set()
            while todo:
                p = todo.pop()
                if p in seen:
                    continue
                seen.add(p)
                h = _hwm(p)
                if h is not None:
                    peaks[p] = max(peaks.get(p, 0), h)
                todo += _children(p)
            total = 0
            for p in seen:
                r = _rollup(p)
                if r is not None:
                    old = ROLLUPS.get(p, (0, 0, 0))
                    ROLLUPS[p] = tuple(max(a, b) for a, b in zip(old, r))
                    total += r[0]
            PSS_SUM[0] = max(PSS_SUM[0], total)
            stop.wait(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    out, err = proc.communicate()
    stop.set()
    t.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{err[-3000:]}")
    return out, peaks, proc.pid


def _size(paths) -> int:
    return sum(p.stat().st_size for p in paths)


def _comparable(p: Path) -> bytes:
    if p.name != "thresholds.json":
        return p.read_bytes()
    # thresholds.json records digests of the counts files, whose format differs across trees
    d = json.loads(p.read_text())
    d.get("outputs", {}).pop("counts.bin", None)
    d.pop("inputs_sha256", None)
    return json.dumps(d, sort_keys=True).encode()


def outputs(run: Path, every: bool) -> dict[str, bytes]:
    """The run's files (`every`), or those every tree writes alike: probabilities, thresholds
    (but the counts file's digest), curated subset."""
    if every:
        return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != "run.json"}
    return {str(p.relative_to(run)): _comparable(p) for p in sorted(run.rglob("*"))
            if p.is_file() and (p.name in ("probabilities.bin", "thresholds.json") or p.name.endswith(".jsonl") and p.parent.name == "stage3")}  # fmt: skip


def print_memory_cpu(r: dict, pid: int) -> None:
    """Pairs per CPU second of every process of the run, and peak RSS/PSS/private memory per process."""
    pairs = r["pairs"]
    a = r["a1"] + r["a2"] + r["a3"]
    print(f"{'':30s} every process (driver + workers): stage 1 {r['a1']:.1f} CPU s = {pairs / r['a1']:,.0f} pairs/CPU-s; "
          f"whole run {a:.1f} CPU s = {pairs / a:,.0f} pairs/CPU-s", flush=True)  # fmt: skip
    rows = sorted(r["rollups"].items(), key=lambda kv: (kv[0] != pid, -kv[1][0]))
    cells = []
    for p, (pss, private, anon) in rows:
        role = "driver" if p == pid else "worker"
        rss = r["driver_mb"] if p == pid else None
        cells.append(f"{role} PSS {pss / 2**20:.0f} / private {private / 2**20:.0f} / anon {anon / 2**20:.0f}"
                     + (f" / RSS {rss:.0f}" if rss else ""))  # fmt: skip
    print(f"{'':30s} peak MB per process: {'; '.join(cells)}; PSS summed (peak) {r['pss_sum'] / 2**20:.0f}", flush=True)


def real_pool(root: Path, pairs: int) -> tuple[Path, str, int]:
    """bench_curate's generated real-pool-like pool (4 languages, 36k entries) of about `pairs` pairs, in 4 shards."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_curate import make_pool

    d = root / "real-pool"
    if (d / "pairs.json").exists():
        return d / "meta", str(d / "pool" / "*.jsonl"), json.loads((d / "pairs.json").read_text())
    d.mkdir(exist_ok=True)
    meta, pattern, n = make_pool(d, 4, max(1, pairs // 8), lid=False)
    (d / "pairs.json").write_text(json.dumps(n))
    return meta, pattern, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=9_000_000, help="world size before --scale (default 9M; 27M: the paper's)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every list size (e.g. 0.1 for a quick run)")
    ap.add_argument("--images", type=int, default=200_000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--matcher-memory", default="none", help="bytes of matchers per worker (trees that support it)")
    ap.add_argument("--baseline", help="another checkout to run on the same world (e.g. the main branch)")
    ap.add_argument("--one-matcher", action="store_true",
                    help="also run this tree keeping one matcher per worker (matcher_memory=1; stores without that "
                         "parameter are made to drop the others)")
    ap.add_argument("--compare-shards", type=int, help="run the baseline (and this tree again) on the first N shards only")
    ap.add_argument("--compare-workers", type=int, nargs="+", default=[1], help="worker counts of the baseline comparison")
    ap.add_argument("--load-languages", type=int, default=10, help="largest matchers to time loading")
    ap.add_argument("--keep", help="build the world in this directory (kept; reused when present)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--memory-per-worker", help="memory budget of each worker process, e.g. 1.5GiB (trees that support it)")
    ap.add_argument("--no-real-pool", action="store_true",
                    help="skip the run on a generated real-pool-like pool (bench_curate's: 4 languages) of as many pairs")
    args = ap.parse_args()
    if args.compare_shards is not None and not 1 <= args.compare_shards <= 10:
        ap.error("--compare-shards takes 1 to 10")

    tmp = tempfile.TemporaryDirectory(prefix="bench-world-") if not args.keep else None
    root = Path(args.keep or tmp.name)
    info_path = root / "world.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        print(f"reusing the world in {root}")
    else:
        root.mkdir(parents=True, exist_ok=True)
        info = make_world(root, args.entries, args.scale, args.images, args.shards, args.seed)
        info_path.write_text(json.dumps(info))
    meta, pattern = root / "meta", str(root / "pool" / "*.jsonl")
    lid_sizes = info["lid_sizes"]
    n_entries = sum(lid_sizes.values())
    largest = max(lid_sizes, key=lid_sizes.get)
    pool_bytes = _size((root / "pool").glob("*.jsonl"))
    print(f"world: {info['wikipedias']} Wikipedias, {info['wiki_entries']:,} entries -> {info['lid_languages']} LID languages, "
          f"{n_entries:,} entries (largest {largest}: {lid_sizes[largest]:,}, en: {lid_sizes.get('en', 0):,}); "
          f"generated in {info['t_generate']:.0f} s, merged + matchers built in {info['t_build']:.0f} s")  # fmt: skip
    print(f"pool: {info['images']:,} images, {info['pairs']:,} pairs in {args.shards} shards, {pool_bytes / 2**20:.1f} MB")

    # matcher load time and memory (largest languages), in a fresh process
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # (cwd: the world, so that `python -c` imports the tree of PYTHONPATH, not the working directory's)
    loads = json.loads(subprocess.run([sys.executable, "-c", LOAD_RUNNER, str(meta), str(args.load_languages)], env=env, cwd=root,
                                      capture_output=True, text=True, check=True).stdout)  # fmt: skip
    tot_e = sum(v["entries"] for v in loads.values())
    tot_t = sum(v["load_s"] for v in loads.values())
    tot_b = sum(v["rss_bytes"] for v in loads.values())
    print(f"\nmatcher load ({len(loads)} largest, this tree's format): {tot_t:.2f} s for {tot_e:,} entries "
          f"({tot_t / tot_e * 1e6:.2f} us/entry), {tot_b / tot_e:.0f} bytes/entry resident")  # fmt: skip
    for lang, v in list(loads.items())[:3]:
        print(f"  {lang:8s} {v['entries']:>10,} entries  {v['load_s']:6.2f} s  {v['rss_bytes'] / 2**20:8.1f} MB")
    # resident bytes per entry of the largest list (freed memory reused by the next load makes smaller ones read low)
    big = max(loads.values(), key=lambda v: v["entries"])
    bpe = max(tot_b / tot_e, big["rss_bytes"] / big["entries"])

    # a mapped matcher is verified (hashed) once per machine and file version: do it before any
    # timed run, as a machine does once, so that the first configuration does not pay it alone
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", VERIFY_RUNNER, str(meta)], env=env, cwd=root, check=True)
    print(f"every matcher verified (once per machine; the runs below reuse it) in {time.perf_counter() - t0:.1f} s")

    shards = sorted((root / "pool").glob("*.jsonl"))
    shard_pairs = [sum(len(json.loads(line)["texts"]) for line in open(p, encoding="utf-8")) for p in shards]
    configs = []  # (label, tree, extra PYTHONPATH, workers, shard subset size)
    for w in args.workers:
        configs.append(("this tree", ROOT, None, w, len(shards)))
    if args.one_matcher:
        site = root / "one-matcher-site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(ONE_MATCHER)
        configs.append(("one matcher", ROOT, site, max(args.workers), len(shards)))
    k = min(args.compare_shards or len(shards), len(shards))
    if args.baseline:
        for w in args.compare_workers:
            if k < len(shards):
                configs.append(("this tree", ROOT, None, w, k))
            configs.append(("baseline", Path(args.baseline).resolve(), None, w, k))
    results = []
    t_en = max(10, info["pairs"] // 400)
    print("\n(pairs/s: wall clock on a shared machine; with 1 worker also per CPU second of the process, which sharing"
          " disturbs less)")
    print(f"{'configuration':30s} {'st1 pairs/s':>11s} {'per CPU s':>9s} {'st2 s':>6s} {'st3 pairs/s':>11s} {'per CPU s':>9s} "
          f"{'driver MB':>9s} {'max worker MB':>13s} {'index/input':>11s} {'st1 counts':>10s} {'st2 counts':>10s}", flush=True)  # fmt: skip
    for label, tree, site, w, n_shards in configs:
        kw = {}
        if label == "one matcher":
            kw["matcher_memory"] = 1  # a budget below one matcher: one at a time
        elif args.matcher_memory != "none":
            kw["matcher_memory"] = int(args.matcher_memory)
        if args.memory_per_worker and label != "baseline":
            kw["memory_per_worker"] = args.memory_per_worker
        name = f"{label}, {w} worker(s)" + ("" if n_shards == len(shards) else f", {n_shards} shards")
        run = root / ("run-" + name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", ""))
        if run.exists():
            import shutil

            shutil.rmtree(run)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree)] + ([str(site)] if site else []))}
        subset = str(root / "pool" / "*.jsonl") if n_shards == len(shards) else str(root / "pool" / f"part-000[0-{n_shards - 1}].jsonl")
        out, peaks, pid = run_measured([sys.executable, "-c", RUNNER, str(meta), subset, str(run), str(w), str(t_en),
                                        json.dumps(kw)], env, root)  # fmt: skip
        times = json.loads(out.strip().splitlines()[-1])
        s1 = sorted((run / "stage1").glob("*"))
        r = {
            "name": name, "label": label, "workers": w, "shards": n_shards, **times,
            "pairs": sum(shard_pairs[:n_shards]), "input": _size(shards[:n_shards]),
            "driver_mb": peaks.pop(pid, 0) / 2**20,
            "procs_mb": sorted((v / 2**20 for v in peaks.values()), reverse=True),
            "index": _size(p for p in s1 if ".index." in p.name),
            "counts1": _size(p for p in s1 if p.name.endswith(".counts.bin")),
            "counts2": (run / "stage2" / "counts.bin").stat().st_size,
            "out": outputs(run, every=False), "out1": outputs(run, every=True),
            "rollups": dict(ROLLUPS), "pss_sum": PSS_SUM[0],
        }  # fmt: skip
        results.append(r)
        pairs = r["pairs"]
        worker = r["procs_mb"][0] if r["procs_mb"] and w > 1 else r["driver_mb"]
        c1, c3 = (f"{pairs / r['c1']:9,.0f}", f"{pairs / r['c3']:9,.0f}") if w == 1 else ("", "")
        print(f"{name:30s} {pairs / r['t1']:11,.0f} {c1:>9s} {r['t2']:6.2f} "
              f"{pairs / r['t3']:11,.0f} {c3:>9s} {r['driver_mb']:9.0f} {worker:13.0f} {r['index'] / r['input']:11.2f} "
              f"{r['counts1'] / 1e6:8.1f}MB {r['counts2'] / 1e6:8.1f}MB", flush=True)  # fmt: skip
        if w > 1:
            print(f"{'':30s} every process of the tree, peak RSS MB: {', '.join(f'{m:.0f}' for m in r['procs_mb'])}", flush=True)
        print_memory_cpu(r, pid)
    for r in results[1:]:
        ref = next(x for x in results if x["shards"] == r["shards"])
        if ref is r:
            continue
        same = r["out"] == ref["out"]
        same1 = r["out1"] == ref["out1"] if r["label"] != "baseline" else None
        print(f"{r['name']} vs {ref['name']}: probabilities, thresholds (but counts digests), curated subset byte-identical: {same}"
              + ("" if same1 is None else f"; every file: {same1}"))  # fmt: skip
    real = []
    if not args.no_real_pool:
        rmeta, rpattern, rpairs = real_pool(root, info["pairs"])
        print(f"\nreal-pool-like pool (bench_curate's generator: 4 languages, 36k entries), {rpairs:,} pairs in 4 shards:")
        for w in args.workers:
            run = root / f"run-real-pool-{w}"
            if run.exists():
                import shutil

                shutil.rmtree(run)
            kw = {"memory_per_worker": args.memory_per_worker} if args.memory_per_worker else {}
            out, peaks, pid = run_measured([sys.executable, "-c", RUNNER, str(rmeta), rpattern, str(run), str(w), "50", json.dumps(kw)],
                                           {**os.environ, "PYTHONPATH": str(ROOT)}, root)  # fmt: skip
            rr = {**json.loads(out.strip().splitlines()[-1]), "name": f"real pool, {w} worker(s)", "workers": w, "pairs": rpairs,
                  "driver_mb": peaks.pop(pid, 0) / 2**20, "rollups": dict(ROLLUPS), "pss_sum": PSS_SUM[0]}  # fmt: skip
            real.append(rr)
            print(f"{rr['name']:30s} stage 1 {rpairs / rr['t1']:,.0f} pairs/s wall", flush=True)
            print_memory_cpu(rr, pid)
        world1 = [r for r in results if r["label"] == "this tree" and r["shards"] == len(shards)]
        if world1 and real:
            w0, r0_ = world1[0], real[0]
            print(f"stage 1, pairs per CPU-second of every process, {w0['workers']} worker(s): world {w0['pairs'] / w0['a1']:,.0f} "
                  f"vs real-pool-like {r0_['pairs'] / r0_['a1']:,.0f} (x{(r0_['pairs'] / r0_['a1']) / (w0['pairs'] / w0['a1']):.1f})")  # fmt: skip
        for rs in (world1, real):
            one = [r for r in rs if r["workers"] == 1]
            two = [r for r in rs if r["workers"] == 2]
            if one and two:
                print(f"{two[0]['name']} / 1 worker: stage 1 x{one[0]['t1'] / two[0]['t1']:.2f}, stage 3 x{one[0]['t3'] / two[0]['t3']:.2f}, "
                      f"whole run x{(one[0]['t1'] + one[0]['t2'] + one[0]['t3']) / (two[0]['t1'] + two[0]['t2'] + two[0]['t3']):.2f} (wall)")  # fmt: skip
    for b in (r for r in results if r["label"] == "baseline"):
        a = next(r for r in results if r["label"] == "this tree" and r["shards"] == b["shards"] and r["workers"] == b["workers"])
        cpu = f" (per CPU second: stage 1 x{b['c1'] / a['c1']:.2f}, stage 3 x{b['c3'] / a['c3']:.2f})" if a["workers"] == 1 else ""
        print(f"{a['name']} / baseline: stage 1 x{b['t1'] / a['t1']:.2f}, stage 3 x{b['t3'] / a['t3']:.2f}{cpu}, "
              f"index {a['index'] / b['index']:.2f} of the baseline's bytes ({b['index'] / b['input']:.2f} x input), "
              f"stage-1 counts {a['counts1'] / b['counts1']:.3f} of the baseline's")  # fmt: skip
    pairs = info["pairs"]

    # stage 2 alone, in a fresh process: the merge holds one language at a time
    r0 = results[0]
    run0 = root / ("run-" + r0["name"].replace(" ", "_").replace(",", "").replace("(", "").replace(")", ""))
    s2dir = root / "stage2-alone"
    s2dir.mkdir(exist_ok=True)
    s2 = json.loads(subprocess.run([sys.executable, "-c", STAGE2_RUNNER, json.dumps([str(p) for p in sorted((run0 / "stage1").glob("*.counts.bin"))]),
                                    str(s2dir), str(t_en)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                                   cwd=root, capture_output=True, text=True, check=True).stdout)  # fmt: skip
    print(f"\nstage 2 alone: merge {s2['merge_s']:.2f} s, peak RSS after imports {s2['start_rss_mb']:.0f} MB, after merge {s2['merge_rss_mb']:.0f} MB "
          f"(largest language dense: {lid_sizes[largest] * 8 / 1e6:.0f} MB; all languages dense: {n_entries * 8 / 1e6:.0f} MB); "
          f"with probabilities {s2['rss_mb']:.0f} MB")  # fmt: skip

    # projection to the paper's scale
    two = [r for r in results if r["label"] == ("one matcher" if args.one_matcher else "this tree") and r["workers"] == 2
           and r["shards"] == len(shards)]
    worker_mb = (two[0]["procs_mb"][0] if two and two[0]["procs_mb"] else results[0]["driver_mb"])
    f = PAPER_ENTRIES / n_entries
    grow = (lid_sizes[largest] * f - lid_sizes[largest]) * bpe / 2**20
    print(f"\nprojection to {PAPER_ENTRIES:,} entries (x{f:.1f}) and {PAPER_PAIRS:,} pairs, {bpe:.0f} bytes/entry resident:")
    if bpe >= 1:  # matchers loaded into the heap (formats before the mapped one)
        print(f"  one matcher at a time (bounded cache{'' if args.one_matcher else ', NOT measured: pass --one-matcher'}): worker peak {worker_mb:.0f} MB + largest list growth "
              f"({lid_sizes[largest]:,} -> {lid_sizes[largest] * f:,.0f} entries) x {bpe:.0f} B = {worker_mb + grow:.0f} MB")
        print(f"  every matcher kept (unbounded cache): {PAPER_ENTRIES:,} x {bpe:.0f} B = {PAPER_ENTRIES * bpe / 2**30:.1f} GiB per worker")
    else:
        print(f"  matchers are mapped: loading one makes nothing resident ({bpe:.1f} B/entry); pages come in as matching reads them")
    print(f"  stage-1 counts: {r0['counts1'] / pairs:.2f} B/pair here -> at most 12 B x matches; "
          f"dense would be 8 B x {n_entries * f:,.0f} entries = {n_entries * f * 8 / 1e6:.0f} MB per shard")
    print(f"  stage-1 index: {r0['index'] / pool_bytes:.2f} x input; stage 3 at {pairs / r0['t3']:,.0f} pairs/s/worker: "
          f"{PAPER_PAIRS / (pairs / r0['t3']) / 3600:,.0f} worker-hours; stage 1 at {pairs / r0['t1']:,.0f}: "
          f"{PAPER_PAIRS / (pairs / r0['t1']) / 3600:,.0f} worker-hours")  # fmt: skip
    rate1 = r0["pairs"] / r0["a1"]
    rate = r0["pairs"] / (r0["a1"] + r0["a2"] + r0["a3"])
    print(f"  per CPU-second of every process ({r0['name']}): stage 1 {rate1:,.0f} pairs -> {PAPER_PAIRS / rate1 / 3600:,.0f} CPU-hours; "
          f"whole run {rate:,.0f} pairs -> {PAPER_PAIRS / rate / 3600:,.0f} CPU-hours for {PAPER_PAIRS:,} pairs (rates measured on "
          f"{n_entries:,} entries: a trie walk per word costs about the same in a larger list, but touches more pages)")  # fmt: skip
    plain2 = [r for r in results if r["label"] == "this tree" and r["workers"] == 2 and r["shards"] == len(shards)]
    if plain2 and plain2[0]["rollups"]:
        r2 = plain2[0]
        pid2 = max(r2["rollups"], key=lambda p: r2["rollups"][p][0])
        w_pss, _, w_anon = r2["rollups"][pid2]
        mapped = _size(meta.glob("*.matcher"))
        print(f"  2 workers, measured: peak PSS of one process {w_pss / 2**20:.0f} MB (anonymous {w_anon / 2**20:.0f} MB), "
              f"summed over the run {r2['pss_sum'] / 2**20:.0f} MB")  # fmt: skip
        print(f"  mapped matchers: {mapped / n_entries:.0f} B/entry on disk -> {mapped * f / 2**30:.2f} GiB at {PAPER_ENTRIES:,} entries, "
              f"held once by the machine's page cache; a worker's PSS at most its anonymous memory + that / workers "
              f"= {(w_anon + mapped * f / 2) / 2**20:,.0f} MB with 2 workers (its matcher cache, a share of "
              f"--memory-per-worker, unmaps beyond that share)")  # fmt: skip
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
