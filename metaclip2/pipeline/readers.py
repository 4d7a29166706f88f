"""Input shards → images with alt-texts, with every bad input and every damaged container counted.

Formats (chosen by file name, or ``format=``):

``jsonl`` (``.jsonl``, ``.json``, ``.jsonl.gz``, ``.ndjson``)
    One record per line (a UTF-8 byte-order mark is ignored). Blank lines are skipped.
``parquet`` (``.parquet``, ``.pq``)
    One record per row, read row group by row group. Needs pyarrow
    (``pip install 'metaclip2[parquet]'``).
``tar`` (``.tar``, ``.tar.gz``, ``.tgz``)
    WebDataset shards: members grouped by key (the member path up to the first dot of its
    file name); concatenated archives are read through. Per key a ``.json`` record and/or a
    ``.txt`` alt-text; other members (images) are never read.

Layouts (the record's keys; detected per shard, or named with a :class:`ReaderSpec`):

``metaclip2``
    ``{"id", "texts": [str | {"text", "lang"?, "source"?, …}]}`` (image form) or the *flat*
    form, one pair per record, ``{"id", "text", "lang"?}``. Consecutive flat records with the
    same id form one image (alt-text indices 0, 1, … in record order); the same id further
    down starts another image. Both forms may be mixed. In a tar, ``id`` defaults to the key.
``datacomp``
    DataComp metadata: ``uid``, ``text`` (plus ``url``, sizes, CLIP scores, …), flat.
``img2dataset``
    img2dataset Parquet (``key``, ``caption``, ``url``, …) and tars (``key.txt`` caption and/or
    ``key.json`` with ``caption``, ``url``, ``key``, ``status``, …); the image id is the key.

Detection looks at a shard's Parquet schema, its first JSONL record with a known layout, or
its tar samples; a record that fits two layouts is an error naming them (name the keys with
``ReaderSpec(id_key=..., text_keys=...)`` / ``--id-key``, ``--text-key``). A record's other
scalar fields (``url``, sizes, scores; per-text ones such as ``source``) are carried in
:attr:`Image.extra` / :attr:`Image.text_extra`, chosen with ``keep_keys`` / ``drop_keys``.

Paths may be fsspec URLs (``s3://…``, ``memory://…``, ``https://…``); local paths are opened
directly.

Image ids are strings; integer ids are accepted and written in decimal. A text given with a
language skips language identification.

Bad input is reported, per alt-text, with one of :data:`INVALID_REASONS`; the unit of
accounting is the pair: a record that cannot be read at all (a malformed line, a record
without id) counts as one invalid pair per alt-text it visibly holds, at least one. A damaged
container (a corrupt tar header or compressed stream, a corrupt Parquet row group, a gzip CRC
or truncation error) yields an :class:`Image` with reason ``"damaged"``, ``where`` the byte
offset or row group, and :attr:`Image.damage` saying the error and the records lost where
known (a Parquet row group's rows; one pair where unknown).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import posixpath
import tarfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterator

from metaclip2.core.errors import DataError, MissingExtraError, ParameterError

__all__ = [
    "DEFAULT_MAX_CHARS",
    "FORMATS",
    "INVALID_REASONS",
    "LAYOUTS",
    "Image",
    "InvalidInputError",
    "LayoutError",
    "ParquetDependencyError",
    "ReaderSpec",
    "detect_format",
    "open_input",
    "read_shard",
]

#: Longest alt-text accepted, in characters (code points); longer ones are invalid (``too_long``).
DEFAULT_MAX_CHARS = 4096

FORMATS = ("jsonl", "parquet", "tar")

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
)  # fmt: skip

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
    """Import ``pyarrow`` and ``pyarrow.parquet``, or raise :class:`ParquetDependencyError`."""
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
        Alt-text ``k`` (None where invalid); ``k`` is the alt-text index used everywhere downstream.
    langs : list of (str or None)
        Language given with text ``k``, or None (language identification decides).
    invalid : list of (str or None)
        Reason text ``k`` is invalid (one of :data:`INVALID_REASONS`), or None.
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
    - [`read_shard`][metaclip2.pipeline.readers.read_shard] : The images of a shard.

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
    langs: list = field(default_factory=list)
    invalid: list = field(default_factory=list)
    where: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    text_extra: list = field(default_factory=list)
    damage: dict | None = None

    def add(self, text: str | None, lang: str | None, reason: str | None, where: int | str, extra: dict | None = None) -> None:
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

    def __post_init__(self) -> None:
        for name in ("id_key", "lang_key"):
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
        self.report = report if report is not None else {}
        self.report.update(layout=None, id_key=None, text_keys=None, lang_key=None, fields=None, expected=_expected(spec))

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


def _decode(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return _UNDECODABLE
    return value


_UNDECODABLE = object()


def _is_utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:  # lone surrogates, e.g. from a "\ud800" JSON escape
        return False


def _check_text(text: Any, max_chars: int) -> str | None:
    """Reason `text` is invalid, or None."""
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


def _check_lang(lang: Any) -> tuple[str | None, str | None]:
    """(language or None, reason or None)."""
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


def _extra(obj: dict, skip: tuple, spec: ReaderSpec) -> dict:
    out = {}
    everything = spec.keep_keys is None and not spec.drop_keys
    for k, v in obj.items():
        if k in skip or not (everything or spec.carries(k)):
            continue
        if type(v) is str:  # the common case, checked like the texts
            if _is_utf8(v):
                out[k] = v
            continue
        ok, v = _scalar(v)
        if ok:
            out[k] = v
    return out


def _text_item(item: Any, max_chars: int, lang: str | None, spec: ReaderSpec) -> tuple:
    """(text, lang, reason, extra) of one element of a texts list."""
    item = _decode(item)
    extra = None
    lang_reason = None
    if isinstance(item, dict):
        lang, lang_reason = _check_lang(item.get("lang", lang))
        text = _decode(item.get("text"))
        extra = _extra(item, ("text", "lang"), spec)
    else:
        text = item
    reason = _check_text(text, max_chars) or lang_reason
    return (text, lang, None, extra) if reason is None else (None, None, reason, None)


class _Bad:
    """A record that could not be read, and why (never confused with a record that is a string)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


class _Damage:
    """A damaged stretch of a container: where, the error, records lost (None: unknown)."""

    __slots__ = ("where", "error", "lost", "final")

    def __init__(self, where: str, error: str, lost: int | None = None, final: bool = False):
        self.where, self.error, self.lost, self.final = where, error, lost, final


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
    return keys


def _records(objs: Iterator[tuple[Any, int | str]], resolver: _Resolver, max_chars: int, default_id: str | None = None) -> Iterator[Image]:
    """Images from ``(decoded object, _Bad or _Damage, where)`` in order, grouping flat records."""
    spec = resolver.spec
    group: Image | None = None  # the open group of consecutive flat records
    for obj, where in objs:
        if isinstance(obj, (_Bad, _Damage)):
            # It cannot be tied to an id, so it does not interrupt a flat group.
            yield _damaged(obj) if isinstance(obj, _Damage) else _unreadable(obj.reason, where)
            continue
        if not isinstance(obj, dict):
            if group is not None:
                yield group
                group = None
            yield _unreadable("malformed", where)
            continue
        lay = resolver.layout or resolver.resolve(set(obj)) or resolver.fallback()
        skip = resolver.skip.get(lay)
        if skip is None:
            skip = resolver.skip[lay] = _record_keys(lay, spec)
        shape = _shape(obj, lay, spec)
        image_id, id_reason = _check_id(obj.get(lay.id_key, default_id))
        if shape[0] == "flat":
            if id_reason is not None:
                yield _unreadable(id_reason, where)
                continue
            if group is not None and group.id != image_id:
                yield group
                group = None
            if group is None:
                group = Image(image_id)
            lang, lang_reason = _check_lang(shape[2])
            text = _decode(shape[1])
            reason = _check_text(text, max_chars) or lang_reason
            group.add(text, lang, reason, where, _extra(obj, skip, spec) if reason is None else None)
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
        lang, lang_reason = _check_lang(shape[2])
        image = Image(image_id, extra=_extra(obj, skip, spec))
        for item in shape[1]:
            text, tlang, reason, extra = _text_item(item, max_chars, lang, spec)
            image.add(text, tlang, reason or lang_reason, where, extra)
        yield image
    if group is not None:
        yield group


# -- opening files (local or fsspec) ------------------------------------------------------------


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def open_input(path: str | os.PathLike):
    """A binary file object for `path`: local, or any fsspec URL (``s3://``, ``memory://``, ``https://``).

    Raises
    ------
    MissingExtraError
        A URL without fsspec installed (``pip install fsspec``, plus the protocol's package).

    See Also
    --------
    - [`read_shard`][metaclip2.pipeline.readers.read_shard] : The images of a shard, read through this.
    - [`detect_format`][metaclip2.pipeline.readers.detect_format] : A shard's format from its name.

    Examples
    --------
    >>> import json, tempfile
    >>> from metaclip2.pipeline.readers import open_input
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> with open(f"{d}/part-0.jsonl", "w") as f:
    ...     print(json.dumps({"id": "a", "text": "a red dog", "lang": "en"}), file=f)
    >>> with open_input(f"file://{d}/part-0.jsonl") as f:     # a URL's file object reads the same way
    ...     json.loads(f.readline())
    {'id': 'a', 'text': 'a red dog', 'lang': 'en'}
    >>> tmp.cleanup()
    """
    path = os.fspath(path)
    if not _is_url(path):
        return open(path.removeprefix("file://"), "rb")
    try:
        import fsspec
    except ImportError as err:
        raise MissingExtraError(f"reading {path} needs fsspec: pip install 'metaclip2[fsspec]'") from err
    return fsspec.open(path, "rb").open()


def detect_format(path: str | os.PathLike) -> str:
    """Input format of `path` from its name: one of :data:`FORMATS`.

    Raises
    ------
    ParameterError
        The name ends in no known extension.

    See Also
    --------
    - [`read_shard`][metaclip2.pipeline.readers.read_shard] : Reads a shard in the detected format.

    Examples
    --------
    >>> from metaclip2.pipeline.readers import detect_format
    >>> [detect_format(p) for p in ("pool/part-0.jsonl.gz", "s3://bucket/part-1.parquet", "shards/00000.tar")]
    ['jsonl', 'parquet', 'tar']
    >>> detect_format("pool/notes.txt")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.ParameterError: cannot tell the format of pool/notes.txt from its name; expected .jsonl, .parquet or .tar
    """
    name = os.fspath(path).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    if name.endswith((".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    raise ParameterError(f"cannot tell the format of {path} from its name; expected .jsonl, .parquet or .tar")


def read_shard(
    path: str | os.PathLike,
    *,
    input_format: str | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    strict: bool = False,
    spec: ReaderSpec | None = None,
    report: dict | None = None,
) -> Iterator[Image]:
    """Images of one input shard, in file order.

    Parameters
    ----------
    path : path or URL
        The shard (a local path or an fsspec URL).
    input_format : {"jsonl", "parquet", "tar"}, optional
        Default: from the file name (:func:`detect_format`).
    max_chars : int
        Texts longer than this many characters are invalid (``too_long``).
    strict : bool
        Raise :class:`InvalidInputError` at the first invalid pair or damage instead of
        reporting it.
    spec : ReaderSpec, optional
        Named keys and carried fields; default: detect the layout.
    report : dict, optional
        Filled with the layout used: ``layout``, ``id_key``, ``text_keys``, ``lang_key``,
        ``fields`` (of the first record), ``expected`` (the keys looked for).

    Yields
    ------
    Image
        Including unreadable records and damage (``id`` None) so that they can be counted.

    Raises
    ------
    LayoutError
        A record fits several known layouts.

    See Also
    --------
    - [`Image`][metaclip2.pipeline.readers.Image] : One image and its alt-texts, as read.
    - [`curate`][metaclip2.pipeline.run.curate] : All three stages and the datacard in one call.

    Examples
    --------
    >>> import json, os, tempfile
    >>> from metaclip2.pipeline import read_shard
    >>> tmp = tempfile.TemporaryDirectory(); path = os.path.join(tmp.name, "shard.jsonl")
    >>> with open(path, "w") as f:
    ...     print(json.dumps({"key": "0001", "caption": "a red dog"}), file=f)
    ...     print(json.dumps({"key": "0002", "caption": 7}), file=f)
    >>> report = {}
    >>> [(im.id, im.texts, im.invalid) for im in read_shard(path, report=report)]
    [('0001', ['a red dog'], [None]), ('0002', [None], ['not_string'])]
    >>> report["layout"], report["id_key"], report["text_keys"]
    ('img2dataset', 'key', ['caption'])
    >>> tmp.cleanup()
    """
    fmt = input_format or detect_format(path)
    if fmt not in FORMATS:
        raise ParameterError(f"input_format must be one of {FORMATS}, got {fmt!r}")
    if max_chars < 1:
        raise ParameterError(f"max_chars must be positive, got {max_chars}")
    spec = spec or ReaderSpec()
    path = os.fspath(path)
    resolver = _Resolver(path, spec, report)
    reader = {"jsonl": _read_jsonl, "parquet": _read_parquet, "tar": _read_tar}[fmt]
    for image in reader(path, max_chars, resolver):
        if strict:
            for reason, where in zip(image.invalid, image.where):
                if reason is not None:
                    raise InvalidInputError(path, where, reason, image.damage["error"] if image.damage else "")
        yield image


# -- gzip ---------------------------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"


def _gzip_check(path: str) -> _Damage | None:
    """Damage of a gzip file found by decompressing it once (CRC, corrupt data, not gzip), or None.

    A truncated file is not reported here: what precedes the cut is intact, so it is read
    and the cut reported where the reading stops.
    """
    with open_input(path) as raw:
        if raw.read(2) != _GZIP_MAGIC:
            return _Damage("offset 0", "not gzip data although the name ends in .gz: decompress nothing, rename the file without .gz or compress it")
    done = 0
    try:
        with open_input(path) as raw, gzip.GzipFile(fileobj=raw) as f:
            while chunk := f.read(1 << 20):
                done += len(chunk)
    except EOFError:
        return None
    except (OSError, zlib.error) as e:  # BadGzipFile (CRC, length), corrupt deflate data
        return _Damage(f"offset {done}", f"gzip: {e}; the whole file is unverified, none of it is used")
    return None


def _open_maybe_gzip(path: str, name: str):
    """(file object, damage or None): gzip (by name or content) is checked first, not read at all if damaged."""
    if not name.endswith((".gz", ".tgz")):
        f = open_input(path)
        if f.read(2) != _GZIP_MAGIC:
            f.seek(0)
            return f, None
        f.close()
    damage = _gzip_check(path)
    if damage is not None:
        return None, damage
    raw = open_input(path)
    return gzip.GzipFile(fileobj=raw), None


# -- JSONL ----------------------------------------------------------------------------------


def _jsonl_objects(path: str) -> Iterator[tuple[Any, int | str]]:
    f, damage = _open_maybe_gzip(path, path.lower())
    if damage is not None:
        yield damage, damage.where
        return
    with f:
        lineno = done = 0
        try:
            for lineno, raw in enumerate(f, 1):
                done += len(raw)
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]  # a UTF-8 byte-order mark
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield _Bad("undecodable"), lineno
                    continue
                if not line.strip():
                    continue
                try:
                    yield json.loads(line), lineno
                except (ValueError, RecursionError):
                    yield _Bad("malformed"), lineno
        except (OSError, EOFError, zlib.error) as e:  # a truncated .gz
            d = _Damage(f"offset {done}", f"{type(e).__name__}: {e} (after line {lineno})")
            yield d, d.where


def _read_jsonl(path: str, max_chars: int, resolver: _Resolver) -> Iterator[Image]:
    return _records(_jsonl_objects(path), resolver, max_chars)


# -- Parquet --------------------------------------------------------------------------------


def _parquet_columns(schema, resolver: _Resolver) -> list[str]:
    """Columns to read: the layout's keys and every carried scalar column."""
    pa, _ = import_pyarrow()
    names = list(schema.names)
    lay = resolver.resolve(set(names)) or resolver.fallback()
    keys = set(_record_keys(lay, resolver.spec))
    scalar = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_null)
    out = []
    for name in names:
        t = schema.field(name).type
        if name in keys or (resolver.spec.carries(name) and any(f(t) for f in scalar)):
            out.append(name)
    return out


def _parquet_objects(path: str, resolver: _Resolver) -> Iterator[tuple[Any, int | str]]:
    _, pq = import_pyarrow()
    try:
        f = open_input(path)
    except OSError as e:
        yield _Damage("file", f"{type(e).__name__}: {e}"), "file"
        return
    with f:
        try:
            pf = pq.ParquetFile(f)
            columns = _parquet_columns(pf.schema_arrow, resolver)
        except LayoutError:
            raise
        except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
            yield _Damage("footer", f"{type(e).__name__}: {e}"), "footer"
            return
        row = 0
        for g in range(pf.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            done = 0
            try:
                for batch in pf.iter_batches(batch_size=8192, row_groups=[g], columns=columns):
                    for obj in batch.to_pylist():
                        done += 1
                        yield obj, row + done
            except Exception as e:  # noqa: BLE001
                d = _Damage(f"row group {g}", f"{type(e).__name__}: {e}", n - done)
                yield d, d.where
            row += n


def _read_parquet(path: str, max_chars: int, resolver: _Resolver) -> Iterator[Image]:
    return _records(_parquet_objects(path, resolver), resolver, max_chars)


# -- WebDataset tar -------------------------------------------------------------------------


def _split_key(name: str) -> tuple[str, str]:
    """WebDataset key and extension of a member name (split at the first dot of the file name)."""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), ext.lower() if dot else ""


def _member_text(data: bytes) -> Any:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return _decode(data)


def _tar_layout(fields: set, resolver: _Resolver) -> _Layout | None:
    """Layout of a tar sample's ``.json`` record (its id defaults to the key), or None (no text in it)."""
    spec = resolver.spec
    if spec.text_keys:
        ok = all(k in fields for k in spec.text_keys)
        return _Layout("named keys", spec.id_key or "id", spec.text_keys, spec.lang_key) if ok else None
    found = []
    if "texts" in fields or "text" in fields:
        found.append(_Layout("metaclip2", spec.id_key or "id", ("texts",) if "texts" in fields else ("text",), spec.lang_key or "lang"))
    if "caption" in fields:
        found.append(_Layout("img2dataset", spec.id_key or "key", ("caption",), spec.lang_key))
    if len(found) > 1:
        raise _layout_error(resolver.path, fields, found)
    return found[0] if found else None


def _tar_sample(key: str, files: dict, max_chars: int, resolver: _Resolver) -> Image:
    spec = resolver.spec
    obj = None
    if "json" in files:
        where = f"{key}.json"
        if files["json"] is None:
            return _unreadable("too_long", where)
        raw = _member_text(files["json"])
        if raw is _UNDECODABLE:
            return _unreadable("undecodable", where)
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            return _unreadable("malformed", where)
        if isinstance(obj, (list, str)):
            obj = {"texts": obj if isinstance(obj, list) else [obj]}
        if not isinstance(obj, dict):
            return _unreadable("malformed", where)
        lay = _tar_layout(set(obj), resolver)
        if lay is not None:
            resolver.fix(lay, set(obj) | ({".txt"} if "txt" in files else set()))
            saved, resolver.layout = resolver.layout, lay
            try:
                return next(_records(iter([(obj, where)]), resolver, max_chars, default_id=None if spec.id_key else key))
            finally:
                resolver.layout = saved
    if "txt" in files:
        where = f"{key}.txt"
        lay = _Layout("webdataset-txt" if obj is None else "img2dataset", spec.id_key or "key", (".txt",), None)
        resolver.fix(lay, (set(obj) if obj else set()) | {".txt"})
        data = files["txt"]
        if data is None:
            return _unreadable("too_long", where)
        text = _member_text(data)
        if isinstance(text, str):
            text = text.rstrip("\r\n")
        image_id = key
        if obj is not None and spec.id_key:
            image_id, reason = _check_id(obj.get(spec.id_key))
            if reason is not None:
                return _unreadable(reason, where)
        image = Image(image_id, extra=_extra(obj, (lay.id_key, "key", "id", "caption", "text", "texts"), spec) if obj else {})
        image.add(text, None, _check_text(text, max_chars), where)
        return image
    if obj is not None:
        resolver.fix(None, set(obj))
        return _unreadable("missing_text", f"{key}.json")
    return _unreadable("missing_text", key)


class _TarFile(tarfile.TarFile):
    """Records the header blocks ``ignore_zeros`` skips (damage), not the zero blocks between archives."""

    def _dbg(self, level, msg):  # next() reports "0x<offset>: <header error>" for each skipped block
        offset, _, error = str(msg).partition(": ")
        if "end of file header" in error:
            return
        try:
            self.__dict__.setdefault("damage_events", []).append((int(offset, 16), error))
        except ValueError:
            pass


_LINK_MEMORY = 1024  # text members remembered for hard links to them


def _skipped(tar: _TarFile) -> _Damage | None:
    """The header blocks skipped since the last member, as one damage, or None."""
    events = tar.__dict__.pop("damage_events", None)
    if not events:
        return None
    (first, error), n = events[0], len(events)
    return _Damage(f"offset {first}", f"tar header: {error} ({n} block{'s' * (n > 1)} skipped before the next valid header)")


def _tar_members(path: str, max_chars: int):
    """``(key, ext, bytes or None)`` of the members, and damage as ``_Damage``; bounded memory.

    Text members are read up to a cap (longer ones give None: too long), other members not at all.
    """
    caps = {"txt": 4 * max_chars + 8, "json": max(1 << 20, 64 * max_chars)}
    f, damage = _open_maybe_gzip(path, path.lower())
    if damage is not None:
        yield damage
        return
    recent: OrderedDict = OrderedDict()
    tar = None
    try:
        with f:
            tar = _TarFile.open(fileobj=f, mode="r|", ignore_zeros=True)
            while (member := tar.next()) is not None:
                tar.members.clear()  # the stream reader would keep every header otherwise
                if (d := _skipped(tar)) is not None:
                    yield d
                k, ext = _split_key(member.name)
                if ext not in caps:
                    if member.isfile() or member.islnk() or member.issym():
                        yield (k, ext, b"")  # the key is present (an image without text counts)
                    continue
                if member.islnk() or member.issym():
                    # a hard link names an earlier member; a symbolic one is relative to its directory
                    target = member.linkname if member.islnk() else posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
                    if target not in recent:
                        kind = "hard" if member.islnk() else "symbolic"
                        yield _Damage(member.name, f"{kind} link to {member.linkname}, which is not among the last {_LINK_MEMORY} text members read")
                        continue
                    data = recent[target]
                elif member.isfile():
                    fh = tar.extractfile(member)
                    data = fh.read(caps[ext] + 1) if fh is not None else b""
                    if len(data) > caps[ext]:
                        data = None  # too long: the rest is skipped by the tar reader, never held
                    recent[member.name] = data
                    if len(recent) > _LINK_MEMORY:
                        recent.popitem(last=False)
                else:
                    continue
                yield (k, ext, data)
            if (d := _skipped(tar)) is not None:
                yield d
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        offset = getattr(tar, "offset", 0) if tar is not None else 0
        yield _Damage(f"offset {offset}", f"{type(e).__name__}: {e}; the rest of the archive is lost", final=True)


def _read_tar(path: str, max_chars: int, resolver: _Resolver) -> Iterator[Image]:
    key, files = None, {}
    for item in _tar_members(path, max_chars):
        if isinstance(item, _Damage):
            if item.final and key is not None:  # the sample read so far is complete
                yield _tar_sample(key, files, max_chars, resolver)
                key = None
            yield _damaged(item)
            continue
        k, ext, data = item
        if k != key:
            if key is not None:
                yield _tar_sample(key, files, max_chars, resolver)
            key, files = k, {}
        if ext in ("json", "txt"):
            files[ext] = data
    if key is not None:
        yield _tar_sample(key, files, max_chars, resolver)
