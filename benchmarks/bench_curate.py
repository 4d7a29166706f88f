"""Curation throughput: pairs/s of stage 1 (LID + matching + counts) and stage 3 (sampling +
writing), with 1 and 2 local worker processes (and Ray with --ray).

Run:  python benchmarks/bench_curate.py [--shards 8] [--images 10000] [--lid] [--no-matchers]
      python benchmarks/bench_curate.py --uneven 1,1,2,6 [--images 10000] [--lid] [--code DIR]

The pool is generated: per language a synthetic vocabulary (entries = its first words and
word pairs), alt-texts of 1-8 words drawn from it, 1-3 alt-texts per image, languages given
(no LID) unless --lid drops them for half the texts (then the bundled lid.176 runs on those;
the generated words are not real language, so most land in ``other``). Each configuration
runs in a fresh run directory; the worker pool is started before timing. Baseline: the
1-worker local executor in this process; ratios are against it. Outputs of all
configurations are checked to be byte-identical. CPU seconds of the driver and of the workers are
measured per stage (from /proc): on a shared machine the wall clock says little about scaling,
while the driver's CPU (serial) against the workers' (divided among them) bounds the speed-up.

With --uneven the generated shards are concatenated into a few shards of unequal sizes (the
weights, in input order; ``1,1,2,6``: the biggest last), and the whole command line
``metaclip2 curate`` (of this checkout, or of --code: another branch's, to compare) is timed
with --workers 1 and 2, each in a fresh run directory. Stage 1's time is from the command's
start to its first stage-2 log line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metaclip2.execution import get_executor  # noqa: E402
from metaclip2.pipeline.run.api import compute_thresholds, count, sample  # noqa: E402
from metaclip2.core.entries import write_metadata  # noqa: E402

LANGS = {"en": 20000, "de": 8000, "zh": 5000, "other": 3000}


def save_matchers(meta: Path) -> None:
    """``<lang>.matcher`` beside each list and ``index.json`` (the lists' digests), as ``metaclip2
    metadata lid`` writes them for real metadata (without them, every worker builds every matcher
    again from its ``.tsv`` and hashes every list)."""
    from metaclip2.core.entries import entries_digest, read_metadata
    from metaclip2.matching.matcher import Matcher

    index = {}
    for tsv in sorted(meta.glob("*.tsv")):
        entries = read_metadata(tsv)
        Matcher(entries, lang=tsv.stem).save(meta / f"{tsv.stem}.matcher")
        index[tsv.stem] = {"entries": len(entries), "digest": entries_digest(entries), "matcher": f"{tsv.stem}.matcher"}
    (meta / "index.json").write_text(json.dumps(index, sort_keys=True, indent=2) + "\n")


def make_pool(root: Path, shards: int, images: int, lid: bool, seed: int = 0) -> tuple[Path, str, int]:
    rnd = random.Random(seed)
    vocab = {}
    for lang, n in LANGS.items():
        if lang == "zh":
            words = list({"".join(chr(0x4E00 + rnd.randrange(3000)) for _ in range(rnd.randint(1, 3))) for _ in range(n)})
        else:
            letters = "abcdefghijklmnopqrstuvwxyz" + ("äöüß" if lang == "de" else "")
            words = list({"".join(rnd.choices(letters, k=rnd.randint(3, 9))) for _ in range(n)})
        words.sort()
        entries = words[: n // 2] + [f"{a} {b}" for a, b in zip(words[: n // 4], words[n // 4 : n // 2])]
        write_metadata(root / "meta" / f"{lang}.tsv", sorted(set(entries)), lang=lang)
        vocab[lang] = words
    (root / "pool").mkdir()
    n_pairs = 0
    for s in range(shards):
        with open(root / "pool" / f"part-{s:04d}.jsonl", "w", encoding="utf-8") as f:
            for i in range(images):
                texts = []
                for _ in range(rnd.randint(1, 3)):
                    lang = rnd.choice(list(LANGS))
                    sep = "" if lang == "zh" else " "
                    text = sep.join(rnd.choices(vocab[lang], k=rnd.randint(1, 8)))
                    texts.append({"text": text} if lid and rnd.random() < 0.5 else {"text": text, "lang": lang})
                n_pairs += len(texts)
                f.write(json.dumps({"id": f"{s}-{i}", "texts": texts}, ensure_ascii=False) + "\n")
    return root / "meta", str(root / "pool" / "*.jsonl"), n_pairs


def processes() -> dict[int, tuple[int, float]]:
    """``pid -> (parent pid, CPU seconds user + system)`` of every live process (from /proc)."""
    ticks, procs = os.sysconf("SC_CLK_TCK"), {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
                procs[int(d)] = (int(f[1]), (int(f[11]) + int(f[12])) / ticks)
            except (OSError, ValueError, IndexError):
                pass
    return procs


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's live descendants (the worker pool)."""
    kids: dict[int, list] = {}
    for pid, (ppid, cpu) in processes().items():
        kids.setdefault(ppid, []).append((pid, cpu))
    total, todo = 0.0, [os.getpid()]
    while todo:
        for pid, cpu in kids.get(todo.pop(), ()):
            total += cpu
            todo.append(pid)
    return total


def cpu() -> tuple[float, float, float]:
    """(wall, CPU of this process = the driver, CPU of its workers), now."""
    return time.perf_counter(), time.process_time(), children_cpu()


def _spin(n: int) -> float:
    c = time.process_time()
    x = 0
    for i in range(n):
        x += i * i
    return time.process_time() - c


def machine_ceiling(n: int = 5_000_000) -> float:
    """Speed-up of 2 processes over 1 on pure Python arithmetic, now: what the machine (its cores
    and whatever else runs on it) allows any 2-worker run at best."""
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    t = time.perf_counter()
    _spin(n)
    one = time.perf_counter() - t
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as ex:
        list(ex.map(_spin, [1, 1]))
        t = time.perf_counter()
        list(ex.map(_spin, [n, n]))
        two = time.perf_counter() - t
    return 2 * one / two


def outputs(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != "run.json"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--whole", nargs="?", const=str(ROOT), metavar="CHECKOUT",
                   help="time the whole command line `metaclip2 curate` (of this checkout, or of CHECKOUT) with --workers 1 "
                        "and 2, alternating, and the driver's serial phases (see whole())")  # fmt: skip
    p.add_argument("--rounds", type=int, default=5, help="with --whole: timed runs per worker count (after a warm-up run)")
    p.add_argument("--t-en", type=float, default=6, help="with --whole: the command's --t-en")
    p.add_argument("--bytecode", action="store_true",
                   help="with --whole: let the command's processes cache their bytecode (in a temporary folder), as an "
                        "installed package has it, even where PYTHONDONTWRITEBYTECODE is set")  # fmt: skip
    p.add_argument("--others-max", type=float, default=0.5,
                   help="with --whole: medians leave out runs during which other processes used more CPU seconds than this")  # fmt: skip
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--images", type=int, default=10000, help="images per shard")
    p.add_argument("--lid", action="store_true", help="half of the texts without a language (LID runs)")
    p.add_argument("--ray", action="store_true", help="also the Ray executor (2 CPUs, local instance)")
    p.add_argument("--no-matchers", action="store_true", help="metadata without saved .matcher files (each worker builds its own)")
    p.add_argument("--uneven", metavar="W,W,...", help="shards of these relative sizes (the generated ones concatenated): "
                   "time the command line `metaclip2 curate` with 1 and 2 workers")  # fmt: skip
    p.add_argument("--code", default=str(ROOT), help="with --uneven: the checkout whose command line is timed")
    args = p.parse_args()
    if args.uneven:
        return uneven(args)

    configs = [("local, 1 worker", lambda: get_executor("local", 1)), ("local, 2 workers", lambda: get_executor("local", 2))]
    if args.whole:
        return whole(args)
    if args.ray:  # hook: the Ray executor implements the same map interface
        configs.append(("ray, 2 CPUs", lambda: get_executor("ray", 2)))

    with tempfile.TemporaryDirectory(prefix="bench-curate-") as tmp:
        tmp = Path(tmp)
        meta, pattern, n_pairs = make_pool(tmp, args.shards, args.images, args.lid)
        if not args.no_matchers:
            save_matchers(meta)
        print(f"pool: {args.shards} shards, {args.shards * args.images} images, {n_pairs} pairs; "
              f"metadata {sum(LANGS.values())} words -> {sum(1 for _ in meta.glob('*.tsv'))} languages; lid={args.lid}")  # fmt: skip
        results, reference = [], None
        ceiling = [machine_ceiling()]
        for label, make in configs:
            run = tmp / f"run-{len(results)}"
            ex = make()
            try:
                ex.map(os.getpid, [{}] * 2)  # start the workers before timing
                m0 = cpu()
                count(meta, [pattern], run, executor=ex, progress=False)
                m1 = cpu()
                compute_thresholds(run, t_en=50, progress=False)
                m2 = cpu()
                sample(run, executor=ex, progress=False)
                m3 = cpu()
            finally:
                ex.close()
            out = outputs(run)
            same = reference is None or out == reference
            reference = reference or out
            # per stage: (wall, driver CPU, workers' CPU)
            st = [tuple(b[k] - a[k] for k in range(3)) for a, b in ((m0, m1), (m1, m2), (m2, m3))]
            results.append((label, st, ex.workers if hasattr(ex, "workers") else 1, same))
        ceiling.append(machine_ceiling())
        print(f"machine ceiling (2 processes of pure arithmetic / 1, before and after the runs): "
              f"x{ceiling[0]:.2f}, x{ceiling[1]:.2f} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
        print(f"{'executor':18s} {'stage 1 pairs/s':>16s} {'ratio':>6s} {'stage 3 pairs/s':>16s} {'ratio':>6s} {'stage 2 s':>9s}  same bytes")
        b1, b3 = results[0][1][0][0], results[0][1][2][0]
        for label, st, w, same in results:
            print(f"{label:18s} {n_pairs / st[0][0]:16,.0f} {b1 / st[0][0]:6.2f} {n_pairs / st[2][0]:16,.0f} {b3 / st[2][0]:6.2f} "
                  f"{st[1][0]:9.3f}  {same}")  # fmt: skip
        # Wall clock on a shared machine says little about scaling; CPU seconds do: the driver's
        # are serial, the workers' divide among them. Bound = (1-worker CPU) / (driver + workers / N).
        print("\nCPU seconds per stage, driver + workers (wall); 'bound': the speed-up the CPU split allows")
        one = sum(d + c for _, d, c in results[0][1])
        for label, st, w, same in results:
            cells = "  ".join(f"st{i + 1} {d:.2f}+{c:.2f} ({t:.2f})" for i, (t, d, c) in enumerate(st))
            drv, wrk = sum(d for _, d, _ in st), sum(c for _, _, c in st)
            print(f"{label:18s} {cells}  total {drv + wrk:.2f} CPU s, {n_pairs / (drv + wrk):,.0f} pairs/CPU-s; "
                  f"bound x{one / (drv + wrk / w):.2f}")  # fmt: skip
    return 0


def _log_seconds(log: Path) -> float | None:
    """Seconds from a command's first log line to its first stage-2 line (stage 1 and its start-up)."""
    from datetime import datetime

    stamps = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            t = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        except ValueError:
            continue
        if not stamps or "stage 2" in line:
            stamps.append(t)
        if len(stamps) == 2:
            return (stamps[1] - stamps[0]).total_seconds()
    return None


def _descendants_cpu(root: int) -> dict[int, tuple[int, float]]:
    """``pid -> (parent, CPU seconds)`` of `root` and its live descendants (from /proc)."""
    procs = processes()
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            out[pid] = procs[pid]
            todo += [c for c, (parent, _) in procs.items() if parent == pid]
    return out


def _watch(proc, log: Path) -> tuple[dict, dict]:
    """Poll the command's processes until it ends: their last CPU seconds, and those when its log
    first names stage 2 (the end of stage 1)."""
    seen: dict[int, tuple[int, float]] = {}
    at_stage2: dict = {}
    while proc.poll() is None:
        seen.update(_descendants_cpu(proc.pid))
        if not at_stage2 and log.exists() and "stage 2" in log.read_text(encoding="utf-8", errors="replace"):
            at_stage2 = dict(seen)
        time.sleep(0.2)
    return seen, at_stage2 or dict(seen)


def _critical(cpu: dict, root: int, total: float | None = None) -> tuple[float, float]:
    """(total CPU seconds, the driver's plus the busiest worker's) of a polled process tree;
    `total`: the children's CPU seconds from getrusage (exact for the driver, which the polls see
    only until their last look; workers reaped by a forkserver are not in it)."""
    workers = [c for pid, (_, c) in cpu.items() if pid != root]
    driver = cpu.get(root, (0, 0.0))[1]
    if total is not None:
        driver = max(driver, total - sum(workers))
    return driver + sum(workers), driver + max(workers, default=0.0)


def uneven(args) -> int:
    import subprocess

    weights = [int(w) for w in args.uneven.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-curate-") as tmp:
        tmp = Path(tmp)
        meta, _, n_pairs = make_pool(tmp, sum(weights), args.images, args.lid)
        if not args.no_matchers:
            save_matchers(meta)
        parts = sorted((tmp / "pool").glob("part-*.jsonl"))
        shards, at = [], 0
        for j, w in enumerate(weights):  # concatenated in order: ids stay unique
            path = tmp / "pool" / f"uneven-{j}.jsonl"
            with open(path, "wb") as out:
                for part in parts[at : at + w]:
                    out.write(part.read_bytes())
                    part.unlink()
            at += w
            shards.append(path)
        sizes = ", ".join(f"{p.stat().st_size / 2**20:.1f}" for p in shards)
        print(f"pool: {len(shards)} shards of {sizes} MiB ({args.uneven}), {n_pairs} pairs; lid={args.lid}; code: {args.code}")
        env = {**os.environ, "PYTHONPATH": args.code}
        rows, reference = [], None
        for workers in (1, 2):
            run = tmp / f"run-{workers}"
            cmd = [sys.executable, "-m", "metaclip2", "curate", "--metadata", str(meta), "--input", str(tmp / "pool" / "*.jsonl"),
                   "--out", str(run), "--workers", str(workers), "--t-en", "50", "-q"]  # fmt: skip
            t, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            seen, at_stage2 = _watch(proc, run / "metaclip2.log")
            wall, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
            total = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)  # exact, whatever the polls missed
            if proc.returncode:
                print(proc.stderr.read(), file=sys.stderr)
                return proc.returncode
            out = {k: v for k, v in outputs(run).items() if k.split("/")[0] in ("subset", "stage1", "stage2", "stage3")}
            same = reference is None or out == reference
            reference = reference or out
            rows.append((workers, _log_seconds(run / "metaclip2.log"), wall, same, _critical(seen, proc.pid, total), _critical(at_stage2, proc.pid)))
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"{'workers':>7s} {'stage 1 s':>9s} {'ratio':>6s} {'curate s':>9s} {'ratio':>6s}  same bytes   "
              "CPU s: stage 1 total / critical path (balance, bound)   whole run total / critical path (balance, bound)")  # fmt: skip
        for workers, s1, wall, same, whole, first in rows:
            print(f"{workers:7d} {s1:9.2f} {rows[0][1] / s1:6.2f} {wall:9.2f} {rows[0][2] / wall:6.2f}  {str(same):5s}        "
                  f"{first[0]:7.1f} / {first[1]:6.1f} (x{first[0] / first[1]:.2f}, x{rows[0][5][0] / first[1]:.2f})"
                  f"              {whole[0]:7.1f} / {whole[1]:6.1f} (x{whole[0] / whole[1]:.2f}, x{rows[0][4][0] / whole[1]:.2f})")  # fmt: skip
        print("critical path: the driver's CPU seconds plus the busiest worker's; balance: the run's own total over it "
              "(how evenly its work was divided); bound: 1 worker's total over it, the speed-up on otherwise idle cores "
              "(wall clocks on a shared machine say little)")  # fmt: skip
    return 0


# -- the whole command line ----------------------------------------------------------------------

_STAGE_LINE = re.compile(r"(stage [13]): [^:]+: \d+/\d+ shards, ([\d,]+) pairs \(([\d,]+) pairs/s\)")


def _phases(log: Path, start: float, end: float) -> dict[str, float]:
    """Wall seconds of a command's phases, from its run log's stage lines (their time stamps, and
    pairs / rate for the stage's own length) and the command's start and end (epoch seconds):
    ``before`` stage 1 (start-up, checks, language sample; the pool start when it is not under
    way already), stage 1, ``between`` (stage 2), stage 3, ``after`` (datacard, report, exit)."""
    from datetime import datetime

    ends, lengths = {}, {}
    for line in log.read_text(encoding="utf-8").splitlines():
        m = _STAGE_LINE.search(line)
        if m:
            stage = m.group(1)
            ends[stage] = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            lengths[stage] = int(m.group(2).replace(",", "")) / int(m.group(3).replace(",", ""))
    s1, s3 = ends["stage 1"] - lengths["stage 1"], ends["stage 3"] - lengths["stage 3"]
    return {"before": s1 - start, "stage 1": lengths["stage 1"], "between": s3 - ends["stage 1"], "stage 3": lengths["stage 3"],
            "after": end - ends["stage 3"], "total": end - start}  # fmt: skip


class _OthersCPU:
    """CPU seconds used by processes other than this one and its descendants while a block runs
    (sampled from /proc twice a second): on a shared machine, how much the other tenants
    took; runs during which they took much are left out of the medians."""

    def __enter__(self) -> "_OthersCPU":
        import threading

        self.seen: dict[int, tuple[float, float]] = {}  # pid -> (first, last) CPU seconds of others
        self.stop = threading.Event()
        self._sample(first=True)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stop.wait(0.5):
            self._sample()

    def _sample(self, first: bool = False) -> None:
        procs = processes()
        mine, todo = {os.getpid()}, [os.getpid()]
        kids: dict[int, list[int]] = {}
        for pid, (ppid, _) in procs.items():
            kids.setdefault(ppid, []).append(pid)
        while todo:
            for k in kids.get(todo.pop(), ()):
                mine.add(k)
                todo.append(k)
        for pid, (_, cpu) in procs.items():
            if pid not in mine:
                start = self.seen.get(pid, (cpu if first else 0.0, 0.0))[0]
                self.seen[pid] = (start, cpu)

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()
        self.seconds = sum(last - first for first, last in self.seen.values())


def whole(args) -> int:
    """--whole: the command line ``metaclip2 curate`` as a user runs it, timed end to end.

    One warm-up run, then ``--rounds`` runs with ``--workers 1`` and as many with ``--workers 2``,
    alternating (1, 2, 2, 1, 1, 2, ...) so that a change in the machine's load hits both alike;
    each in a fresh run directory at the same path (so every output file, report.html and the
    PNG plots included, is compared byte for byte with the warm-up's). Prints the median wall
    seconds of each worker count and their ratio, and the medians of the phases
    ([`_phases`]: the serial ones, before, between and after the stages, bound the ratio).
    """
    import statistics
    import subprocess

    with tempfile.TemporaryDirectory(prefix="bench-curate-") as tmp:
        tmp = Path(tmp)
        meta, pattern, n_pairs = make_pool(tmp, args.shards, args.images, args.lid)
        if not args.no_matchers:
            save_matchers(meta)
        print(f"pool: {args.shards} shards, {args.shards * args.images} images, {n_pairs} pairs; lid={args.lid}; "
              f"code: {args.whole}; bytecode cached: {args.bytecode or not os.environ.get('PYTHONDONTWRITEBYTECODE')}")  # fmt: skip
        env = {**os.environ, "PYTHONPATH": args.whole, "METACLIP2_PROGRESS_INTERVAL": "3600"}
        if args.bytecode:  # compiled once (by the warm-up run) into a folder of its own, as an installed package has it
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        run = tmp / "run"

        def once(workers: int) -> tuple[dict, dict]:
            import shutil

            shutil.rmtree(run, ignore_errors=True)
            cmd = [sys.executable, "-m", "metaclip2", "curate", "--metadata", str(meta), "--input", pattern, "--out", str(run),
                   "--workers", str(workers), "--t-en", f"{args.t_en:g}", "--log-level", "info"]  # fmt: skip
            with _OthersCPU() as others:
                start = time.time()
                done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                end = time.time()
            if done.returncode:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
            files = {k: v for k, v in outputs(run).items() if k not in ("metaclip2.log", "run.lock")}
            return {**_phases(run / "metaclip2.log", start, end), "others": others.seconds}, files

        _, reference = once(2)
        times: dict[int, list[dict]] = {1: [], 2: []}
        same = True
        for r in range(args.rounds):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                phases, files = once(workers)
                times[workers].append(phases)
                same = same and files == reference
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.rounds} rounds; same bytes (every file, "
              f"plots and report.html included): {same}")  # fmt: skip
        # a run during which other processes took more than --others-max CPU seconds is left out
        quiet = {w: [p for p in times[w] if p["others"] <= args.others_max] for w in times}
        if all(quiet.values()):
            print(f"medians of the runs during which other processes used at most {args.others_max:g} CPU s: "
                  f"{len(quiet[1])} and {len(quiet[2])} of {args.rounds}")  # fmt: skip
            times = quiet
        else:
            print(f"every run of one worker count shared the machine (other processes used more than {args.others_max:g} CPU s): "
                  "medians of all runs, not of a quiet machine")  # fmt: skip
        keys = ["total", "before", "stage 1", "between", "stage 3", "after"]
        med = {w: {k: statistics.median(p[k] for p in times[w]) for k in keys} for w in times}
        print(f"{'workers':>7s} " + " ".join(f"{k:>8s}" for k in keys) + f" {'serial':>8s}   (median wall seconds)")
        for w in (1, 2):
            serial = med[w]["before"] + med[w]["between"] + med[w]["after"]
            print(f"{w:7d} " + " ".join(f"{med[w][k]:8.2f}" for k in keys) + f" {serial:8.2f}")
        print(f"whole-run ratio (median 1 worker / median 2 workers): x{med[1]['total'] / med[2]['total']:.2f}; "
              f"stage 1 x{med[1]['stage 1'] / med[2]['stage 1']:.2f}, stage 3 x{med[1]['stage 3'] / med[2]['stage 3']:.2f}")  # fmt: skip
        for w in (1, 2):
            print(f"  {w} worker(s), totals (others' CPU s): " + " ".join(f"{p['total']:.2f} ({p['others']:.1f})" for p in times[w]))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
