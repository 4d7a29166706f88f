"""Records as read: [`Image`][metaclip2.pipeline.io.records.Image], [`ReaderSpec`][metaclip2.pipeline.io.records.ReaderSpec], the known layouts and their
detection, the errors of bad input, and the validation and shaping of one decoded record into
images, shared by every format ([`metaclip2.pipeline.io.jsonl`][metaclip2.pipeline.io.jsonl], [`parquet`][metaclip2.pipeline.io.parquet],
[`tar`][metaclip2.pipeline.io.tar]).

Bad input is reported, per alt-text, with one of [`INVALID_REASONS`][metaclip2.pipeline.io.records.INVALID_REASONS] (see
[`metaclip2.pipeline.io.readers`][metaclip2.pipeline.io.readers] for the formats, layouts and accounting).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from metaclip2.core.errors import DataError, MissingExtraError, ParameterError

__all__ = [
    "DEFAULT_MAX_CHARS",
    "INVALID_REASONS",
    "LAYOUTS",
    "Image",
    "InvalidInputError",
    "LayoutError",
    "Numbering",
    "ParquetDependencyError",
    "ReaderSpec",
    "check_lang",
    "check_text",
]

#: Longest alt-text accepted, in characters (code points); longer ones are invalid (``too_long``).
DEFAULT_MAX_CHARS = 4096

#: Why an input pair is invalid.
INVALID_REASONS = (
    "malformed",     # line/row/member that does not parse (bad JSON, not an object, unreadable file)
    "undecodable",   # bytes that are not UTF-8, or a string with lone surrogates
    "missing_id",    # no id, or an id that is not a non-empty string / integer
    "missing_text",  # no text field, a "texts" that is not a list, or a text object without "text"
    "not_string",    # a text (or its language) that is not a string
    "empty",         # a text that is empty or only whitespace
    "too_long",      # a text longer than max_chars
    "damaged",       # records lost in a damaged container (see Image.damage)
    "bad_index",     # an alt-text index (text_index) that is not a whole number >= 0
    "duplicate_index",  # an (image id, alt-text index) already met earlier in the shard
    "not_downloaded",   # a record whose download status (img2dataset's "status") is not "success"
)  # fmt: skip

#: Field of a download's outcome (img2dataset's); a record whose value is a string other than
#: [`DOWNLOAD_SUCCESS`][metaclip2.pipeline.io.records.DOWNLOAD_SUCCESS] is not an image of the pool (``not_downloaded``).
STATUS_KEY = "status"
DOWNLOAD_SUCCESS = "success"

_PARQUET_HINT = "pip install 'metaclip2[parquet]'"


class InvalidInputError(DataError):
    """Bad input met in strict mode; the message names the file, line and reason."""

    def __init__(self, path: str, line: int | str, reason: str, detail: str = ""):
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{path}:{line}" if isinstance(line, int) else f"{path}[{line}]"
        self.detail = detail
        super().__init__(f"{where}: invalid input ({reason}){': ' + detail if detail else ''}")

    def __reduce__(self):  # survives the trip back from a worker process
        return (type(self), (self.path, self.line, self.reason, self.detail))


class LayoutError(DataError):
    """A shard's records fit several known layouts; the message names them and the flags to choose."""


class ParquetDependencyError(MissingExtraError):
    """Reading or writing Parquet needs pyarrow (the ``parquet`` extra)."""


def import_pyarrow():
    """Import ``pyarrow`` and ``pyarrow.parquet``, or raise [`ParquetDependencyError`][metaclip2.pipeline.io.records.ParquetDependencyError]."""
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ParquetDependencyError(f"Parquet needs pyarrow: {_PARQUET_HINT}") from err
    return pyarrow, pq


@dataclass
class Image:
    """One image and its alt-texts as read from a shard.

    Attributes
    ----------
    id : str or None
        None for a record that could not be read (then every slot is invalid).
    texts : list of (str or None)
        The image's alt-texts in the order read (None where invalid).
    indices : list of int
        The alt-text index of each slot (what names the alt-text everywhere downstream): the
        record's ``text_index`` where it has one, else the position among the id's alt-texts
        in the whole shard (see [`read_shard`][metaclip2.pipeline.io.readers.read_shard]).
    langs : list of (str or None)
        Language given with text ``k``, or None (language identification decides).
    invalid : list of (str or None)
        Reason text ``k`` is invalid (one of [`INVALID_REASONS`][metaclip2.pipeline.io.records.INVALID_REASONS]), or None.
    where : list of (int or str)
        Where text ``k`` came from: 1-based line (JSONL) or row (Parquet) number, tar member
        name, or for damage ``"offset N"`` / ``"row group G"``.
    extra : dict
        The record's other scalar fields (``url``, sizes, scores, …), carried into the curated
        subset.
    text_extra : list of dict
        Per alt-text scalar fields (a text object's ``source``; a flat record's own fields).
    damage : dict or None
        For a damaged container: ``where``, ``error`` and ``lost`` (records lost, or None
        when unknown).

    See Also
    --------
    - [`read_shard`][metaclip2.pipeline.io.readers.read_shard] : The images of a shard.

    Examples
    --------
    >>> import json, os, tempfile
    >>> from metaclip2.pipeline import read_shard
    >>> tmp = tempfile.TemporaryDirectory(); path = os.path.join(tmp.name, "shard.jsonl")
    >>> with open(path, "w") as f:
    ...     print(json.dumps({"id": "a", "texts": ["a red dog", {"text": "ein Hund", "lang": "de"}, ""]}), file=f)
    >>> image = next(read_shard(path))
    >>> image.id, image.texts, image.langs
    ('a', ['a red dog', 'ein Hund', None], [None, 'de', None])
    >>> image.invalid
    [None, None, 'empty']
    >>> tmp.cleanup()
    """

    id: str | None
    texts: list = field(default_factory=list)
    indices: list = field(default_factory=list)
    langs: list = field(default_factory=list)
    invalid: list = field(default_factory=list)
    where: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    text_extra: list = field(default_factory=list)
    damage: dict | None = None

    def add(self, text: str | None, lang: str | None, reason: str | None, where: int | str, extra: dict | None = None,
            index: int | None = -1) -> None:
        """Append a slot; `index` its alt-text index (default: its position; None: numbered by the shard)."""
        self.indices.append(len(self.texts) if index == -1 else index)
        self.texts.append(text if reason is None else None)
        self.langs.append(lang if reason is None else None)
        self.invalid.append(reason)
        self.where.append(where)
        self.text_extra.append(extra or {})

    def fields(self, k: int) -> dict:
        """Carried fields of alt-text `k`: the image's, then the text's own."""
        te = self.text_extra[k] if k < len(self.text_extra) else None
        return {**self.extra, **te} if te else dict(self.extra)


# -- reader spec and layouts -------------------------------------------------------------------


def _keys(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    out = tuple(str(v).strip() for v in value)
    if any(not v for v in out):
        raise ParameterError(f"{name} must name non-empty keys, got {value!r}")
    return out


@dataclass(frozen=True)
class ReaderSpec:
    """Which record keys hold the id, the alt-texts and their language, and which fields to carry.

    Parameters
    ----------
    id_key : str, optional
        Key of the image id. Default: from the detected layout (``id``, ``uid``, ``key``).
    text_keys : str or sequence of str, optional
        Key(s) of the alt-texts (a comma list is split): one key may hold a string or a list
        of texts; several keys give one alt-text each, in that order. Default: from the layout.
    lang_key : str, optional
        Key of a given language code (any ISO 639-1/639-3, ``xxx_Script`` or BCP-47 form).
    text_index_key : str, optional
        Key of the alt-text's index within its image, in flat (one pair per record) layouts.
        Default: ``text_index`` where records have it; otherwise an image's records are numbered
        in the order they stand.
    keep_keys : str or sequence of str, optional
        Carry only these other fields into the curated subset (default: every scalar field).
    drop_keys : str or sequence of str, optional
        Do not carry these fields.

    Examples
    --------
    >>> ReaderSpec(id_key="uid", text_keys="caption").text_keys
    ('caption',)
    """

    id_key: str | None = None
    text_keys: tuple = ()
    lang_key: str | None = None
    keep_keys: tuple | None = None
    drop_keys: tuple = ()
    text_index_key: str | None = None

    def __post_init__(self) -> None:
        for name in ("id_key", "lang_key", "text_index_key"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ParameterError(f"{name} must be a non-empty key name, got {v!r}")
        object.__setattr__(self, "text_keys", _keys(self.text_keys, "text_keys"))
        object.__setattr__(self, "keep_keys", None if self.keep_keys is None else _keys(self.keep_keys, "keep_keys"))
        object.__setattr__(self, "drop_keys", _keys(self.drop_keys, "drop_keys"))

    def carries(self, key: str) -> bool:
        """Whether field `key` is carried into the output."""
        return (self.keep_keys is None or key in self.keep_keys) and key not in self.drop_keys


@dataclass(frozen=True)
class _Layout:
    name: str
    id_key: str
    text_keys: tuple
    lang_key: str | None


#: Known layouts: name → (id key, text keys, language key). ``metaclip2`` also accepts ``text``.
LAYOUTS = {
    "metaclip2": ("id", ("texts",), "lang"),
    "datacomp": ("uid", ("text",), None),
    "img2dataset": ("key", ("caption",), None),
}


def _candidates(fields: set, spec: ReaderSpec) -> list[_Layout]:
    """Layouts whose keys (with the spec's named keys applied) are all in `fields`."""
    if spec.id_key and spec.text_keys:
        return [_Layout("named keys", spec.id_key, spec.text_keys, spec.lang_key)]
    out: dict[tuple, _Layout] = {}
    for name, (id_key, text_keys, lang_key) in LAYOUTS.items():
        id_key = spec.id_key or id_key
        if spec.text_keys:
            text_keys = spec.text_keys
        elif name == "metaclip2" and "texts" not in fields:
            text_keys = ("text",)  # the flat form
        lay = _Layout(name, id_key, text_keys, spec.lang_key or lang_key)
        if id_key in fields and all(k in fields for k in text_keys):
            out.setdefault((lay.id_key, lay.text_keys), lay)
    return list(out.values())


def _expected(spec: ReaderSpec) -> str:
    if spec.id_key and spec.text_keys:
        return f"{spec.id_key} + {'/'.join(spec.text_keys)}"
    return "; ".join(f"{name}: {spec.id_key or i} + {'/'.join(spec.text_keys or t)}" for name, (i, t, _) in LAYOUTS.items())


def _layout_error(path: str, fields: set, found: list[_Layout]) -> LayoutError:
    names = ", ".join(f"{c.name} ({c.id_key} + {'/'.join(c.text_keys)})" for c in found)
    return LayoutError(f"{path}: records fit several layouts: {names}; fields: {', '.join(sorted(fields))}. "
                       "Name the keys with --id-key and --text-key (ReaderSpec(id_key=..., text_keys=...))")  # fmt: skip


class _Resolver:
    """Fixes a shard's layout at the first record that fits one, and reports it."""

    def __init__(self, path: str, spec: ReaderSpec, report: dict | None):
        self.path, self.spec, self.layout = path, spec, None
        self.skip: dict = {}  # layout -> keys that are not carried fields
        # fields whose lists and objects are carried too: the ones named in keep_keys (never a
        # silent drop), and a Parquet file's typed nested columns
        self.nested = frozenset(spec.keep_keys or ())
        self.report = report if report is not None else {}
        self.report.update(layout=None, id_key=None, text_keys=None, lang_key=None, fields=None, expected=_expected(spec))
        # the shard's Numbering, set by read_shard; a reader that numbers the images it yields
        # itself (in bulk where it can) takes it, leaving None
        self.numbering: Numbering | None = None

    def resolve(self, fields: set) -> _Layout | None:
        if self.layout is None:
            found = _candidates(fields, self.spec)
            if self.report["fields"] is None:
                self.report["fields"] = sorted(map(str, fields))
            if len(found) > 1:
                raise _layout_error(self.path, fields, found)
            if found:
                lay = self.layout = found[0]
                self.report.update(layout=lay.name, id_key=lay.id_key, text_keys=list(lay.text_keys),
                                   lang_key=lay.lang_key, fields=sorted(map(str, fields)))  # fmt: skip
        return self.layout

    def fix(self, layout: _Layout | None, fields: set) -> None:
        """Report `layout` (the first one found) for a format that detects per record (tar)."""
        if self.report["fields"] is None:
            self.report["fields"] = sorted(map(str, fields))
        if layout is not None and self.report["layout"] is None:
            self.report.update(layout=layout.name, id_key=layout.id_key, text_keys=list(layout.text_keys),
                               lang_key=layout.lang_key, fields=sorted(map(str, fields)))  # fmt: skip

    def fallback(self) -> _Layout:
        """The layout used for records before (or without) detection: the spec's keys over metaclip2's."""
        s = self.spec
        return _Layout("metaclip2", s.id_key or "id", s.text_keys or ("texts",), s.lang_key or "lang")


# -- record validation (shared by all formats) ------------------------------------------


try:  # a faster JSON parser where installed (the frameworks extra); json decides whatever it rejects
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is installed with the test extras
    _orjson = None

# orjson parses integers past 64 bits as floats (json: ints); lines with such a digit run go to json
_LONG_DIGITS = re.compile(rb"\d{19}")

#: Off: every line through the digit-run test first (the reference the tests compare with).
_FAST = True

_PLAIN = frozenset((str, int, bool, type(None)))


def _no_float(values) -> bool:
    """Whether no float is among `values` (a list or a dict's values) nor inside them."""
    types = set(map(type, values))
    if types <= _PLAIN:  # the common case: one C pass
        return True
    if float in types:
        return False
    for v in values:
        if (type(v) is list and not _no_float(v)) or (type(v) is dict and not _no_float(v.values())):
            return False
    return True


def _loads_fast(raw: bytes) -> Any:
    """`raw` (UTF-8 JSON) parsed by orjson, or ``_SLOW`` where json must decide (invalid UTF-8,
    lone surrogates, NaN, blank lines, big integers, nesting past orjson's depth: its result or its error).

    An integer past 64 bits is a float in orjson's result: a result without floats needs no
    look at the digit runs (the common case), one with floats does (as every line did)."""
    if _orjson is None or (not _FAST and _LONG_DIGITS.search(raw)):
        return _SLOW
    try:
        obj = _orjson.loads(raw)
    except ValueError:
        return _SLOW
    if _FAST:
        try:
            plain = _no_float(obj.values()) if type(obj) is dict else _no_float((obj,))
        except RecursionError:  # nesting deeper than Python's stack: the digit runs decide
            plain = False
        if not plain and _LONG_DIGITS.search(raw):
            return _SLOW
    return obj


_SLOW = object()


def _decode(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return _UNDECODABLE
    return value


_UNDECODABLE = object()


def _is_utf8(s: str) -> bool:
    if s.isascii():  # constant time: most strings, never a lone surrogate
        return True
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:  # lone surrogates, e.g. from a "\ud800" JSON escape
        return False


def check_text(text: Any, max_chars: int) -> str | None:
    """Reason `text` is invalid (one of [`INVALID_REASONS`][metaclip2.pipeline.io.records.INVALID_REASONS]), or None.

    See Also
    --------
    - [`check_lang`][metaclip2.pipeline.io.records.check_lang] : The same for a text's language.

    Examples
    --------
    >>> from metaclip2.pipeline.io.records import check_text
    >>> [check_text(t, 10) for t in ("a red dog", "  ", 7, None, "x" * 11)]
    [None, 'empty', 'not_string', 'missing_text', 'too_long']
    """
    if type(text) is str and text.isascii():  # the common case: no UTF-8 check needed
        return "empty" if not text or text.isspace() else ("too_long" if len(text) > max_chars else None)
    if text is _UNDECODABLE:
        return "undecodable"
    if text is None:
        return "missing_text"
    if not isinstance(text, str):
        return "not_string"
    if not _is_utf8(text):
        return "undecodable"
    if not text.strip():
        return "empty"
    if len(text) > max_chars:
        return "too_long"
    return None


def check_lang(lang: Any) -> tuple[str | None, str | None]:
    """``(language or None, reason or None)`` of a text's language field; a missing one is not invalid.

    See Also
    --------
    - [`check_text`][metaclip2.pipeline.io.records.check_text] : The same for the text.

    Examples
    --------
    >>> from metaclip2.pipeline.io.records import check_lang
    >>> [check_lang(v) for v in (" de ", None, "", 3)]
    [('de', None), (None, None), (None, None), (None, 'not_string')]
    """
    if lang is None:
        return None, None
    lang = _decode(lang)
    if lang is None or (isinstance(lang, float) and math.isnan(lang)):
        return None, None
    if lang is _UNDECODABLE:
        return None, "undecodable"
    if not isinstance(lang, str):
        return None, "not_string"
    lang = lang.strip()
    if lang and not _is_utf8(lang):
        return None, "undecodable"
    return (lang or None), None


def _check_id(value: Any) -> tuple[str | None, str | None]:
    if type(value) is str and value and value.isascii():
        return value, None
    value = _decode(value)
    if value is _UNDECODABLE:
        return None, "undecodable"
    if isinstance(value, bool):
        return None, "missing_id"
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, str) and value:
        return (value, None) if _is_utf8(value) else (None, "undecodable")
    return None, "missing_id"


def _scalar(value: Any) -> tuple[bool, Any]:
    """(carried?, JSON-able value) of a field: strings, numbers, booleans and nulls are carried."""
    if value is None or isinstance(value, (bool, int, str)):
        return (not isinstance(value, str) or _is_utf8(value)), value
    if isinstance(value, float):
        return True, (None if not math.isfinite(value) else value)
    return False, None


def _jsonable(value: Any) -> Any:
    """A nested field's value as JSON can hold it (non-finite floats and non-UTF-8 strings: null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if _is_utf8(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if value is None or isinstance(value, (bool, int)) else None


def _extra(obj: dict, skip: tuple, spec: ReaderSpec, nested: frozenset = frozenset()) -> dict:
    out = {}
    everything = spec.keep_keys is None and not spec.drop_keys
    for k, v in obj.items():
        if k in skip or not (everything or spec.carries(k)):
            continue
        if type(v) is str:  # the common case, checked like the texts
            if _is_utf8(v):
                out[k] = v
            continue
        if v is None or type(v) is int or type(v) is bool:
            out[k] = v
            continue
        if type(v) is float:
            out[k] = v if math.isfinite(v) else None
            continue
        ok, value = _scalar(v)
        if ok:
            out[k] = value
        elif k in nested and isinstance(v, (list, tuple, dict)):
            out[k] = _jsonable(v)
    return out


def _text_item(item: Any, max_chars: int, lang: str | None, spec: ReaderSpec, nested: frozenset = frozenset()) -> tuple:
    """(text, lang, reason, extra) of one element of a texts list."""
    item = _decode(item)
    extra = None
    lang_reason = None
    if isinstance(item, dict):
        lang, lang_reason = check_lang(item.get("lang", lang))
        text = _decode(item.get("text"))
        extra = _extra(item, ("text", "lang"), spec, nested)
    else:
        text = item
    reason = check_text(text, max_chars) or lang_reason
    return (text, lang, None, extra) if reason is None else (None, None, reason, None)


class _Bad:
    """A record that could not be read, why, and the alt-texts it visibly holds (never confused
    with a record that is a string)."""

    __slots__ = ("reason", "n")

    def __init__(self, reason: str, n: int = 1):
        self.reason, self.n = reason, n


def record_cap(max_chars: int) -> int:
    """Longest record (a JSONL line, a tar ``.json`` member) read, in bytes; longer ones are
    ``too_long``, skipped without being held."""
    return max(1 << 20, 64 * max_chars)


def _visible_texts(obj: Any, resolver: "_Resolver") -> int:
    """Alt-texts a record that cannot be used whole visibly holds (at least one)."""
    if not isinstance(obj, dict):
        return 1
    lay = resolver.layout or resolver.fallback()
    shape = _shape(obj, lay, resolver.spec)
    return max(len(shape[1]), 1) if shape[0] == "image" and isinstance(shape[1], list) else 1


class _Damage:
    """A damaged stretch of a container: where, the error, records lost (None: unknown)."""

    __slots__ = ("where", "error", "lost", "final")

    def __init__(self, where: str, error: str, lost: int | None = None, final: bool = False):
        self.where, self.error, self.lost, self.final = where, error, lost, final


def _one(image_id: str | None, text: Any, lang: Any, reason: str | None, where: int | str, extra: dict | None, index: int | None) -> Image:
    """``Image(image_id)`` with one ``add(text, lang, reason, where, extra, index=index)`` (`index`
    not -1), built without the dataclass's default factories."""
    image = object.__new__(Image)
    ok = reason is None
    image.id = image_id  # one store per field: no tuple to build and unpack
    image.texts = [text if ok else None]
    image.indices = [index]
    image.langs = [lang if ok else None]
    image.invalid = [reason]
    image.where = [where]
    image.extra = {}
    image.text_extra = [extra or {}]
    image.damage = None
    return image


def _unreadable(reason: str, where: int | str, n: int = 1) -> Image:
    image = Image(None)
    for _ in range(max(n, 1)):
        image.add(None, None, reason, where)
    return image


def _damaged(d: _Damage) -> Image:
    image = _unreadable("damaged", d.where, d.lost or 1)
    image.damage = {"where": d.where, "error": d.error, "lost": d.lost}
    return image


def _shape(obj: dict, lay: _Layout, spec: ReaderSpec):
    """``("flat", text, lang_value)``, ``("image", items, lang_value)`` or ``("missing", n)`` of a record."""
    if lay.name == "metaclip2" and not spec.text_keys:
        if "texts" in obj:
            return ("image", obj["texts"], obj.get(lay.lang_key)) if isinstance(obj["texts"], list) else ("missing", 1)
        if "text" in obj:
            return ("flat", obj["text"], obj.get(lay.lang_key))
        return ("missing", 1)
    lang = obj.get(lay.lang_key) if lay.lang_key else None
    if len(lay.text_keys) == 1:
        k = lay.text_keys[0]
        if k not in obj:
            return ("missing", 1)
        v = obj[k]
        return ("image", v, lang) if isinstance(v, list) else ("flat", v, lang)
    return ("image", [obj.get(k) for k in lay.text_keys], lang)


def _record_keys(lay: _Layout, spec: ReaderSpec) -> tuple:
    keys = (lay.id_key, *lay.text_keys) + ((lay.lang_key,) if lay.lang_key else ())
    if lay.name == "metaclip2" and not spec.text_keys:
        keys += ("texts", "text")
    return keys + (spec.text_index_key or "text_index",)


_NOT_GIVEN = object()


def _not_downloaded(obj: dict) -> bool:
    """Whether `obj` says its image failed to download (img2dataset's ``status``)."""
    status = obj.get(STATUS_KEY)
    return isinstance(status, str) and status != DOWNLOAD_SUCCESS


def _text_index(value: Any) -> tuple[int | None, str | None]:
    """``(index or None, reason or None)`` of a flat record's alt-text index; None: none given."""
    if value is None or value is _NOT_GIVEN or (isinstance(value, float) and math.isnan(value)):
        return None, None
    if isinstance(value, bool):
        return None, "bad_index"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 <= value < 1 << 31:
        return value, None
    return None, "bad_index"


class Numbering:
    """Alt-text indices across a whole shard: what makes an image *all* records with its id.

    A slot whose index the data gives keeps it; the others are numbered per id, ``0, 1, 2, …``
    in the order they stand in the shard, after every index the id already used (so the same id
    further down continues its image instead of starting another). An ``(id, index)`` met a
    second time is invalid (``duplicate_index``), never a second row with one key.

    Examples
    --------
    >>> from metaclip2.pipeline.io.records import Image, Numbering
    >>> numbering, a, b = Numbering(), Image("x"), Image("x")
    >>> a.add("one", None, None, 1, index=None); b.add("two", None, None, 3, index=None)
    >>> b.add("three", None, None, 4, index=0)
    >>> numbering.apply(a); numbering.apply(b)
    >>> a.indices, b.indices, b.invalid
    ([0], [1, 0], [None, 'duplicate_index'])
    >>> numbering.slots("x")
    2
    """

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._used: dict[str, Any] = {}  # id -> the one index used, or the set of them (absent: 0)
        self._given: set = set()  # ids with an index the data gave

    def ids(self) -> Iterator[tuple[str, int, bool]]:
        """``(id, slots, numbered)`` of every id met: [`slots`][metaclip2.pipeline.io.records.Numbering.slots], and whether all its indices
        were numbered here (none given by the data)."""
        given = self._given
        for image_id, n in self._next.items():
            yield image_id, n, image_id not in given

    def slots(self, image_id: str) -> int:
        """One past the largest index `image_id` used so far (0 if unseen)."""
        return self._next.get(image_id, 0)

    def _fresh(self, ids: list, *unnumbered: str) -> bool:
        """Number `ids`, each the id of one image of one unnumbered slot, in this order, as
        [`apply`][metaclip2.pipeline.io.records.Numbering.apply] would, if they are distinct,
        none met before and none among `unnumbered` (ids of images yet to be numbered): True;
        else False and nothing changed (then apply them one by one)."""
        new = dict.fromkeys(ids, 1)
        if len(new) != len(ids) or any(i in new for i in unnumbered):
            return False
        nxt = self._next
        before = len(nxt)
        nxt.update(new)  # one pass over the large dict; met ids are rare, and undone below
        added = len(nxt) - before
        if added == len(new):
            return True
        # Undo: the ids added are the last ones (a dict keeps insertion order); a met id's value
        # was overwritten, and is one past the largest index it used (0 where _used has none).
        fresh = set(itertools.islice(reversed(nxt.keys()), added))
        for i in fresh:
            del nxt[i]
        used = self._used
        for i in new:
            if i not in fresh:
                u = used.get(i, 0)
                nxt[i] = (u if isinstance(u, int) else max(u)) + 1
        return False

    def apply(self, image: Image) -> None:
        """Give `image`'s unnumbered slots their indices and mark duplicates invalid."""
        image_id, indices = image.id, image.indices
        nxt = self._next
        if image_id not in nxt and len(indices) == 1 and indices[0] is None and image_id is not None:
            # the common case: a new id, one slot; its one used index 0 is implied (not stored)
            indices[0] = 0
            nxt[image_id] = 1
            return
        if image_id is None:
            image.indices = list(range(len(image.texts)))
            return
        n = nxt.get(image_id, 0)
        used = self._used.get(image_id, 0 if image_id in nxt else None)
        for s, k in enumerate(indices):
            if k is None:
                k = indices[s] = n
            else:  # given by the data (text_index, or a position in an image-form record)
                self._given.add(image_id)
            if used is None:
                used = k
            elif (k == used) if isinstance(used, int) else (k in used):
                if image.invalid[s] is None:
                    image.invalid[s] = "duplicate_index"
                    image.texts[s] = image.langs[s] = None
                continue
            elif isinstance(used, int):
                used = {used, k}
            else:
                used.add(k)
            n = max(n, k + 1)
        if used is not None:
            self._used[image_id] = used
            nxt[image_id] = n


def _flat_image(obj: dict, where: int | str, lay: _Layout, resolver: _Resolver, max_chars: int, default_id: str | None = None) -> Image | None:
    """The image of record `obj` read alone, as ``_records`` makes a flat record's, under layout
    `lay`; None where it is not a flat record (then ``_records`` decides)."""
    spec = resolver.spec
    shape = _shape(obj, lay, spec)
    if shape[0] != "flat":
        return None
    image_id = obj.get(lay.id_key, default_id)
    if type(image_id) is str and image_id and image_id.isascii():
        id_reason = None
    else:
        image_id, id_reason = _check_id(image_id)
    if id_reason is None and STATUS_KEY in obj and _not_downloaded(obj):
        id_reason = "not_downloaded"
    if id_reason is not None:
        return _unreadable(id_reason, where)
    lang, lang_reason = check_lang(shape[2]) if shape[2] is not None else (None, None)
    text = shape[1]
    if type(text) is not str:
        text = _decode(text)
    index_key = spec.text_index_key or "text_index"
    index, index_reason = _text_index(obj[index_key]) if index_key in obj else (None, None)
    reason = check_text(text, max_chars) or lang_reason or index_reason
    if reason is not None:
        return _one(image_id, text, lang, reason, where, None, index)
    skip = resolver.skip.get(lay)
    if skip is None:
        skip = resolver.skip[lay] = frozenset(_record_keys(lay, spec))
    return _one(image_id, text, lang, None, where, _extra(obj, skip, spec, resolver.nested), index)


def _records(objs: Iterator[tuple[Any, int | str]], resolver: _Resolver, max_chars: int, default_id: str | None = None) -> Iterator[Image]:
    """Images from ``(decoded object, _Bad or _Damage, where)`` in order, grouping flat records."""
    spec = resolver.spec
    index_key = spec.text_index_key or "text_index"
    group: Image | None = None  # the open group of consecutive flat records
    last_lay = skip = None
    for obj, where in objs:
        if type(obj) is not dict:  # the common case (a plain dict) skips these checks
            if isinstance(obj, (_Bad, _Damage)):
                # It cannot be tied to an id, so it does not interrupt a flat group.
                yield _damaged(obj) if isinstance(obj, _Damage) else _unreadable(obj.reason, where, obj.n)
                continue
            if not isinstance(obj, dict):
                if group is not None:
                    yield group
                    group = None
                yield _unreadable("malformed", where)
                continue
        lay = resolver.layout or resolver.resolve(set(obj)) or resolver.fallback()
        if lay is not last_lay:
            skip = resolver.skip.get(lay)
            if skip is None:
                skip = resolver.skip[lay] = frozenset(_record_keys(lay, spec))  # looked up per field
            last_lay = lay
        shape = _shape(obj, lay, spec)
        image_id = obj.get(lay.id_key, default_id)
        if type(image_id) is str and image_id and image_id.isascii():  # the common case, as _check_id
            id_reason = None
        else:
            image_id, id_reason = _check_id(image_id)
        if id_reason is None and STATUS_KEY in obj and _not_downloaded(obj):
            id_reason = "not_downloaded"  # never an image: counted with its alt-texts, never matched
        if shape[0] == "flat":
            if id_reason is not None:
                yield _unreadable(id_reason, where)
                continue
            lang, lang_reason = check_lang(shape[2]) if shape[2] is not None else (None, None)
            text = shape[1]
            if type(text) is not str:
                text = _decode(text)
            index, index_reason = _text_index(obj[index_key]) if index_key in obj else (None, None)
            reason = check_text(text, max_chars) or lang_reason or index_reason
            extra = _extra(obj, skip, spec, resolver.nested) if reason is None else None
            if group is not None:
                if group.id == image_id:
                    group.add(text, lang, reason, where, extra, index=index)
                    continue
                yield group
            group = _one(image_id, text, lang, reason, where, extra, index)
            continue
        if group is not None:
            yield group
            group = None
        if id_reason is not None:
            yield _unreadable(id_reason, where, len(shape[1]) if shape[0] == "image" else 1)
            continue
        if shape[0] == "missing":
            yield _unreadable("missing_text", where)
            continue
        lang, lang_reason = check_lang(shape[2])
        image = Image(image_id, extra=_extra(obj, skip, spec, resolver.nested))
        for item in shape[1]:
            text, tlang, reason, extra = _text_item(item, max_chars, lang, spec, resolver.nested)
            image.add(text, tlang, reason or lang_reason, where, extra)
        yield image
    if group is not None:
        yield group
