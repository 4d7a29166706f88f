"""Matcher: match_many against the authors' per-caption loop, load time and memory, in one process.

    python benchmarks/bench_matching.py [--entries 100000] [--captions 100000]
    python benchmarks/bench_matching.py --data english --entries 500000 --captions 150000 \\
        --shared-data /work/shared/data [--cache /tmp/bench-en.json]
    python benchmarks/bench_matching.py --data zh|ja|th --entries 200000 --shared-data /work/shared/data

The baseline is the authors' loop: for each caption, pyahocorasick's ``iter`` over the
spaced caption with one automaton of every padded entry, ids collected in a set. It and
``match_many`` of each engine (``--engines``, default: trie and aho-corasick) run on the same
data in this process (best of --repeat); results are checked to be identical.

Data:

* ``synthetic`` (default): Zipf-distributed random words, word pairs and CJK strings (seeded).
* ``english``: a real English list: every WordNet 3.0 lemma name, then the unigrams, bigrams
  and trigrams of the shared English Wikipedia sample (most frequent first), then real-looking
  multi-word strings (WordNet modifier + noun pairs) up to --entries. Captions are the sample's
  article sentences cut to 4-25 words, plus the demo corpus ``en.txt.gz``, repeated up to
  --captions. Needs the shared data (WordNet via NLTK_DATA, the Wikipedia dump).
* ``zh``/``ja``/``th``: the demo WordNet list and n-grams of that language, the OMW lemmas when
  installed (Chinese), character n-grams of its demo corpus, then random strings of its script
  up to --entries; captions are the demo corpus lines.

Besides the ratios it prints, per engine, the matcher's build time, file size, load time (best
of 3, wall and CPU: the machine may be shared), bytes per entry held after loading
(tracemalloc, the RSS growth of a fresh process loading it, and ``Matcher.nbytes``) and the
peak RSS of a fresh process that loads it and matches every caption.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import itertools
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from metaclip2.matching import Matcher, pad_entry, spacing  # noqa: E402
from metaclip2.matching.matcher import MATCHER_ENGINES  # noqa: E402

DEMO = ROOT / "metaclip2" / "data" / "demo"
ENWIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def make_data(n_entries: int, n_captions: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = sorted({"".join(rng.choice(letters, rng.integers(2, 9))) for _ in range(int(n_entries * 1.2))})
    cjk = ["".join(chr(0x4E00 + int(c)) for c in rng.integers(0, 3000, rng.integers(2, 4))) for _ in range(n_entries // 10)]
    words = np.array(vocab)
    zipf = 1.0 / np.arange(1, len(words) + 1)
    zipf /= zipf.sum()
    # ~80% single words, ~10% two-word entries, ~10% CJK strings, like a real mixed list.
    entries = list(dict.fromkeys(vocab[: int(n_entries * 0.8)] + [f"{a} {b}" for a, b in zip(vocab[::7], vocab[3::7])] + cjk))
    entries = entries[:n_entries]
    captions = []
    for _ in range(n_captions):
        k = int(rng.integers(4, 16))
        ws = list(words[rng.choice(len(words), k, p=zipf)])
        if rng.random() < 0.2:
            ws.insert(int(rng.integers(0, k)), cjk[int(rng.integers(0, len(cjk)))] + "の写真")
        if rng.random() < 0.5:
            ws[-1] += rng.choice([".", ",", "!", "?"])
        captions.append(" ".join(ws))
    return entries, captions


def _ranked(counter: Counter) -> list[str]:
    return [" ".join(k) if isinstance(k, tuple) else k for k, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def make_english(shared: Path, n_entries: int, n_captions: int, seed: int = 0):
    """A ~500k real English list and real English captions (see the module docstring)."""
    os.environ.setdefault("NLTK_DATA", str(shared / "nltk_data"))
    from metaclip2.metadata.build import clean_source
    from metaclip2.metadata.tokenizer import tokenize
    from metaclip2.metadata.wikitext import iter_article_texts
    from metaclip2.metadata.wordnet import wordnet_entries

    t0 = time.perf_counter()
    wordnet = wordnet_entries("en")
    articles = list(iter_article_texts(shared / "wikipedia" / ENWIKI))
    uni, bi, tri = Counter(), Counter(), Counter()
    for text in articles:
        for chain in tokenize(text, "en"):
            uni.update(chain)
            bi.update(zip(chain, chain[1:]))
            tri.update(zip(chain, chain[1:], chain[2:]))
    entries: dict[str, None] = {}
    for source in (wordnet, _ranked(uni), _ranked(bi), _ranked(tri)):
        entries.update(dict.fromkeys(clean_source(source)[0]))
    # Pad with real-looking multi-word strings: a WordNet/Wikipedia modifier and a noun.
    rng = random.Random(seed)
    heads = [w for w in wordnet if " " not in w and w.isalpha() and w.islower()]
    mods = [w for w, c in uni.most_common(20000) if w.isalpha()] + heads[:20000]
    while len(entries) < n_entries:
        entries[f"{rng.choice(mods)} {rng.choice(heads)}"] = None
    entries_list = list(entries)[:n_entries]

    captions = []
    for text in articles:
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            words = sentence.split()
            while len(words) >= 4:
                k = rng.randint(4, 25)
                captions.append(" ".join(words[:k]))
                words = words[k:]
    with gzip.open(DEMO / "corpus" / "en.txt.gz", "rt", encoding="utf-8") as f:
        captions += f.read().splitlines()
    rng.shuffle(captions)
    captions = list(itertools.islice(itertools.cycle(captions), n_captions))
    print(f"english data built in {time.perf_counter() - t0:.1f} s ({len(wordnet):,} WordNet lemmas, {len(articles)} articles)")
    return entries_list, captions


_SCRIPTS = {"zh": (0x4E00, 0x9FFF), "ja": (0x3041, 0x30FF), "th": (0x0E01, 0x0E3A)}


def make_cjk(lang: str, shared: Path | None, n_entries: int, n_captions: int, seed: int = 0):
    """Entries and captions of a language written without spaces (see the module docstring)."""
    rng = random.Random(seed)
    with gzip.open(DEMO / "corpus" / f"{lang}.txt.gz", "rt", encoding="utf-8") as f:
        corpus = f.read().splitlines()
    entries: dict[str, None] = dict.fromkeys(str(i) for i in range(100))
    entries.update(dict.fromkeys(w for w in (DEMO / "wordnet" / f"{lang}.txt").read_text(encoding="utf-8").splitlines() if w.strip()))
    with gzip.open(DEMO / "ngrams" / f"{lang}.ngrams.gz", "rt", encoding="utf-8") as f:
        entries.update(dict.fromkeys(line.split("\t")[1] for line in f if line[:2] in ("U\t", "B\t")))
    if shared is not None and lang == "zh":
        import warnings

        os.environ.setdefault("NLTK_DATA", str(shared / "nltk_data"))
        from metaclip2.metadata.wordnet import wordnet_entries

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            entries.update(dict.fromkeys(wordnet_entries(lang)))
    for line in corpus:
        for k in (2, 3, 4):
            entries.update(dict.fromkeys(line[i : i + k] for i in range(len(line) - k + 1)))
    lo, hi = _SCRIPTS[lang]
    while len(entries) < n_entries:
        entries["".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(2, 5)))] = None
    entries_list = [e for e in entries if e.strip() and "\t" not in e][:n_entries]
    captions = list(itertools.islice(itertools.cycle(corpus), n_captions))
    return entries_list, captions


def naive_automaton(entries):
    """One automaton of every padded entry: what the authors' code builds."""
    import ahocorasick

    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for i, e in enumerate(entries):
        automaton.add_word(pad_entry(e), i)
    automaton.make_automaton()
    return automaton


def naive(automaton, captions):
    out = []
    for c in captions:
        out.append(sorted({i for _, i in automaton.iter(spacing(c))}))
    return out


def measure_load(path: Path, n_entries: int, engine: str, captions_path: Path) -> dict:
    """Best-of-3 load time (wall and CPU), bytes per entry still allocated after one load
    (tracemalloc), and, in a fresh process, the RSS growth of loading it and the peak RSS of
    loading it and matching every caption."""
    best, cpu = float("inf"), float("inf")
    for _ in range(3):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        m = Matcher.load(path, engine=engine)
        best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
        del m
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    m = Matcher.load(path, engine=engine)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del m
    code = (
        "import gc, json, sys; from metaclip2 import Matcher\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "captions = json.load(open(sys.argv[3], encoding='utf-8'))\n"
        "Matcher(['a b', 'c', '東'], engine=sys.argv[2]).match_many(['a b c 東']); gc.collect(); r0 = rss()\n"
        "m = Matcher.load(sys.argv[1], engine=sys.argv[2]); gc.collect(); print(rss() - r0)\n"
        # VmHWM, not ru_maxrss: the latter keeps the high-water mark of the forked parent across exec.
        "m.match_many(captions); print(int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) * 1024)"
    )
    rss = peak = None
    if Path("/proc/self/statm").exists():
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        out = subprocess.run([sys.executable, "-c", code, str(path), engine, str(captions_path)], capture_output=True, text=True, env=env)
        if out.returncode == 0:
            grown, peak = map(int, out.stdout.split()[-2:])
            rss = grown / max(n_entries, 1)
    return {"wall": best, "cpu": cpu, "traced": held / max(n_entries, 1), "rss": rss, "peak": peak}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=["synthetic", "english", "zh", "ja", "th"], default="synthetic")
    ap.add_argument("--entries", type=int, default=None, help="default: 100,000 (synthetic), 500,000 (english), 200,000 (zh/ja/th)")
    ap.add_argument("--captions", type=int, default=None, help="default: 100,000 (150,000 for english)")
    ap.add_argument("--engines", nargs="+", choices=MATCHER_ENGINES, default=list(MATCHER_ENGINES), help="matcher engines to measure (default: all)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shared-data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared test data (WordNet, Wikipedia samples)")
    ap.add_argument("--cache", type=Path, help="JSON file keeping the generated entries and captions between runs")
    args = ap.parse_args(argv)
    n_entries = args.entries or {"synthetic": 100_000, "english": 500_000}.get(args.data, 200_000)
    n_captions = args.captions or (150_000 if args.data == "english" else 100_000)

    key = [args.data, n_entries, n_captions]
    if args.cache and args.cache.exists() and json.loads(args.cache.read_text())["key"] == key:
        cached = json.loads(args.cache.read_text())
        entries, captions = cached["entries"], cached["captions"]
    else:
        if args.data == "synthetic":
            entries, captions = make_data(n_entries, n_captions)
        elif args.data == "english":
            if not (args.shared_data / "wikipedia" / ENWIKI).is_file():
                sys.exit(f"--data english needs the shared data at {args.shared_data} (pass --shared-data)")
            entries, captions = make_english(args.shared_data, n_entries, n_captions)
        else:
            entries, captions = make_cjk(args.data, args.shared_data if args.shared_data.is_dir() else None, n_entries, n_captions)
        if args.cache:
            args.cache.write_text(json.dumps({"key": key, "entries": entries, "captions": captions}, ensure_ascii=False))

    chars = sum(map(len, captions)) / max(len(captions), 1)
    print(f"{args.data}: {len(entries):,} entries, {len(captions):,} captions ({chars:.0f} chars on average)")
    matchers = {}
    with tempfile.TemporaryDirectory() as tmp:
        captions_path = Path(tmp) / "captions.json"
        captions_path.write_text(json.dumps(captions, ensure_ascii=False), encoding="utf-8")
        for engine in args.engines:
            gc.collect()
            t0 = time.perf_counter()
            matchers[engine] = matcher = Matcher(entries, engine=engine)
            build = time.perf_counter() - t0
            path = Path(tmp) / f"{engine}.matcher"
            matcher.save(path)  # the same bytes whatever the engine
            load = measure_load(path, len(entries), engine, captions_path)
            rss = f"{load['rss']:.0f}" if load["rss"] is not None else "n/a"
            peak = f"{load['peak'] / 2**20:.0f} MB" if load["peak"] is not None else "n/a"
            print(f"[{engine}] built in {build:.2f} s, file {path.stat().st_size / 2**20:.1f} MB; load {load['wall']:.3f} s wall, "
                  f"{load['cpu']:.3f} s CPU (best of 3); bytes/entry after load: {load['traced']:.0f} (tracemalloc), {rss} "
                  f"(RSS growth of a fresh process loading it), {matcher.nbytes / max(len(entries), 1):.0f} (Matcher.nbytes); "
                  f"peak RSS of a fresh process loading it and matching the captions: {peak}")  # fmt: skip
    skipped = matchers[args.engines[0]].unmatchable
    if skipped:
        print(f"unmatchable entries skipped: {len(skipped):,} (e.g. {', '.join(repr(entries[i]) for i in skipped[:4])})")

    automaton = naive_automaton(entries)
    best = dict.fromkeys(["naive", *args.engines], float("inf"))
    results = {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ref = naive(automaton, captions)
        best["naive"] = min(best["naive"], time.perf_counter() - t0)
        for engine, matcher in matchers.items():
            t0 = time.perf_counter()
            results[engine] = matcher.match_many(captions)
            best[engine] = min(best[engine], time.perf_counter() - t0)
    for engine, (offsets, ids) in results.items():
        got = [ids[offsets[k] : offsets[k + 1]].tolist() for k in range(len(captions))]
        assert got == ref, f"match_many ({engine}) disagrees with the naive loop"
    hits = sum(map(len, ref))
    for name, sec in best.items():
        label = "naive loop" if name == "naive" else f"{name} match_many"
        print(f"{label:>25}: {len(captions) / sec:>12,.0f} captions/s  ({sec:.3f} s, best of {args.repeat})")
    print(f"matched ids per caption: {hits / len(captions):.2f}; every engine's result equals the naive loop's")
    for engine in args.engines:
        print(f"ratio {engine} match_many / naive: {best['naive'] / best[engine]:.2f}x")
    print(f"peak RSS of this process (everything above): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
