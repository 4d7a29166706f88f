"""Matcher load time and memory: the previous format (version 2, checked and built on every load)
against the mapped one (version 3, verified once per machine, then used in place).

    python benchmarks/bench_matcher_load.py [--entries 500000] [--captions 20000] [--languages 40]

For one synthetic list (bench_matching's generator) saved in both formats, in this process:
the old load, the mapped load's first (verifying) and later loads (best and median of
--repeat), their ratio, and match_many on the same captions (results checked identical).
Then, in fresh processes (the verification record on disk, as for a machine's workers): the
time of a mapped load and RSS/PSS (/proc/self/smaps_rollup) after loading, after matching
the captions, and after decoding the entries. Last, a store of --languages smaller lists:
a fresh process loads every language's matcher and matches a few captions with each; its
RSS/PSS growth is printed beside the files' total size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from bench_matching import make_data  # noqa: E402
from metaclip2.core.atomic import write_json  # noqa: E402
from metaclip2.core.entries import write_metadata  # noqa: E402
from metaclip2.matching import Matcher  # noqa: E402
from metaclip2.matching import matcher as matcher_module  # noqa: E402

_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])

def mem():
    out = {}
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Shared_Clean"):
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out

from metaclip2.matching import Matcher, MetadataStore
mode, path = sys.argv[2], sys.argv[3]
captions = json.loads(open(sys.argv[4], encoding="utf-8").read())
report = {"start": mem()}
t = time.perf_counter()
if mode == "one":
    m = Matcher.load(path)
    report["load_s"] = time.perf_counter() - t
    report["loaded"] = mem()
    m.match_many(captions)
    report["matched"] = mem()
    len(m.entries)
    report["decoded"] = mem()
else:
    store = MetadataStore(path)
    matchers = [store.matcher(lang) for lang in store.languages]
    report["load_s"] = time.perf_counter() - t
    report["loaded"] = mem()
    for m in matchers:
        m.match_many(captions)
    report["matched"] = mem()
print(json.dumps(report))
"""


def _child(mode: str, path: Path, captions_path: Path, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), mode, str(path), str(captions_path)],
                         env=env, capture_output=True, text=True)  # fmt: skip
    if out.returncode:
        sys.exit(f"the measuring process failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mb(n: int) -> str:
    return f"{n / 2**20:8.1f} MB"


def _timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=500_000)
    ap.add_argument("--captions", type=int, default=20_000)
    ap.add_argument("--languages", type=int, default=40, help="languages of the store part (0: skip it)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, METACLIP2_CACHE=str(tmp / "cache"))
        os.environ["METACLIP2_CACHE"] = env["METACLIP2_CACHE"]
        entries, captions = make_data(args.entries, args.captions)
        captions_path = tmp / "captions.json"
        captions_path.write_text(json.dumps(captions), encoding="utf-8")
        old, new = tmp / "v2.matcher", tmp / "v3.matcher"
        built = Matcher(entries)
        built.save(old, version=2)
        t = time.perf_counter()
        built.save(new)
        save_s = time.perf_counter() - t
        print(f"{len(entries):,} entries; files: version 2 {_mb(old.stat().st_size)}, version 3 (mapped) {_mb(new.stat().st_size)}"
              f" (written in {save_s:.2f} s)")  # fmt: skip

        old_times = _timed(lambda: Matcher.load(old), max(1, args.repeat // 2))
        before = matcher_module._VERIFICATIONS[0]
        first = _timed(lambda: Matcher.load(new), 1)[0]
        assert matcher_module._VERIFICATIONS[0] == before + 1
        mapped = _timed(lambda: Matcher.load(new), args.repeat * 4)
        assert matcher_module._VERIFICATIONS[0] == before + 1, "a verified file was verified again"
        best_old, best_new = min(old_times), min(mapped)
        print(f"load, version 2 (check + build):        best {best_old * 1e3:9.1f} ms")
        print(f"load, version 3, first (verification):  {first * 1e3:15.1f} ms  (once per machine and file version)")
        print(f"load, version 3, verified (mapped):     best {best_new * 1e3:9.3f} ms, median {statistics.median(mapped) * 1e3:.3f} ms")
        print(f"ratio old / mapped load: {best_old / best_new:,.0f}x")

        m_old, m_new = Matcher.load(old), Matcher.load(new)
        a, b = m_old.match_many(captions), m_new.match_many(captions)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), "different matches"
        t_old = min(_timed(lambda: m_old.match_many(captions), 3))
        t_new = min(_timed(lambda: m_new.match_many(captions), 3))
        print(f"match_many of {len(captions):,} captions: built {t_old:.3f} s, mapped {t_new:.3f} s (identical results, {len(a[1]):,} matches)")

        r = _child("one", new, captions_path, env)
        print(f"fresh process, verified on disk: load {r['load_s'] * 1e3:.3f} ms")
        for stage in ("loaded", "matched", "decoded"):
            if r.get(stage):
                print(f"  after {stage:8s} RSS +{_mb(r[stage]['Rss'] - r['start']['Rss'])}  PSS +{_mb(r[stage]['Pss'] - r['start']['Pss'])}"
                      f"  shared clean +{_mb(r[stage]['Shared_Clean'] - r['start']['Shared_Clean'])}")  # fmt: skip

        if args.languages:
            store = tmp / "store"
            per = max(1, args.entries // args.languages)
            index, total = {}, 0
            for k in range(args.languages):
                lang = f"l{k:03d}"
                sub, _ = make_data(per, 0, seed=k + 1)
                index[lang] = {"entries": len(sub), "digest": write_metadata(store / f"{lang}.tsv", sub, lang=lang), "matcher": f"{lang}.matcher"}
                Matcher(sub, lang=lang).save(store / f"{lang}.matcher")
                total += (store / f"{lang}.matcher").stat().st_size
            write_json(store / "index.json", index)
            few = tmp / "few.json"
            few.write_text(json.dumps(captions[:200]), encoding="utf-8")
            _child("store", store, few, env)  # verifies every file once (the machine's first worker)
            r = _child("store", store, few, env)
            print(f"store of {args.languages} languages ({_mb(total)} of matcher files), a fresh process:")
            print(f"  loads every matcher in {r['load_s'] * 1e3:.1f} ms: RSS +{_mb(r['loaded']['Rss'] - r['start']['Rss'])}, "
                  f"PSS +{_mb(r['loaded']['Pss'] - r['start']['Pss'])}")
            print(f"  then matches 200 captions with each: RSS +{_mb(r['matched']['Rss'] - r['start']['Rss'])}, "
                  f"PSS +{_mb(r['matched']['Pss'] - r['start']['Pss'])} (the pages read, and numpy's temporaries)")


if __name__ == "__main__":
    main()
