"""Matcher.match_many against the naive per-caption loop, in one process on the same data.

    python benchmarks/bench_matching.py [--entries 100000] [--captions 100000]

The baseline is what a straightforward implementation does: for each caption,
call pyahocorasick's ``iter`` on the spaced caption and collect ids in a set.
Data is generated (Zipf-distributed words, bigrams, CJK strings) with a fixed seed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from metaclip2.matching import Matcher, pad_entry, spacing


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


def naive_automaton(entries):
    """One automaton of every padded entry: what a straightforward implementation builds."""
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--captions", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    entries, captions = make_data(args.entries, args.captions)
    t0 = time.perf_counter()
    matcher = Matcher(entries)
    automaton = naive_automaton(entries)
    print(f"{len(entries):,} entries, {len(captions):,} captions; automaton built in {time.perf_counter() - t0:.2f} s")

    best = {"naive": float("inf"), "match_many": float("inf")}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ref = naive(automaton, captions)
        best["naive"] = min(best["naive"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        offsets, ids = matcher.match_many(captions)
        best["match_many"] = min(best["match_many"], time.perf_counter() - t0)
    got = [ids[offsets[k] : offsets[k + 1]].tolist() for k in range(len(captions))]
    assert got == ref, "match_many disagrees with the naive loop"
    hits = int(offsets[-1])
    for name, sec in best.items():
        print(f"{name:>11}: {len(captions) / sec:>12,.0f} captions/s  ({sec:.3f} s, best of {args.repeat})")
    print(f"matched ids per caption: {hits / len(captions):.2f}")
    print(f"ratio match_many / naive: {best['naive'] / best['match_many']:.2f}x")


if __name__ == "__main__":
    main()
