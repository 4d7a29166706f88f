"""Input shards → images with alt-texts, with every bad input counted, never fatal by default.

Formats (chosen by file name, or ``format=``):

``jsonl`` (``.jsonl``, ``.json``, ``.jsonl.gz``, ``.ndjson``)
    One image per line, ``{"id": str, "texts": [str | {"text": str, "lang"?: str, "source"?: str}]}``,
    or the *flat* form, one pair per line, ``{"id": str, "text": str, "lang"?: str}``.
    Consecutive flat lines with the same id form one image (their alt-text indices are 0, 1, …
    in line order); the same id further down the shard starts another image. Both forms may
    be mixed. Blank lines are skipped.
``parquet`` (``.parquet``, ``.pq``)
    The same columns: ``id`` and ``texts`` (list of strings or of structs with ``text``,
    ``lang``), or ``id``, ``text`` and optionally ``lang`` (flat, grouped as above). Needs
    pyarrow (``pip install 'metaclip2[parquet]'``).
``tar`` (``.tar``, ``.tar.gz``, ``.tgz``)
    WebDataset shards: members grouped by key (the member path up to the first dot of its
    file name). Per key a ``.json`` holding the texts (an object like a JSONL line, whose
    ``id`` defaults to the key; or a list of texts; or one string) or else a ``.txt`` holding
    one alt-text. Other members (images) are ignored.

Image ids are strings; integer ids are accepted and written in decimal. A text given with a
``lang`` skips language identification.

Bad input is reported, per alt-text, with one of :data:`INVALID_REASONS`; the unit of
accounting is the pair: a record that cannot be read at all (a malformed line, a record
without id) counts as one invalid pair per alt-text it visibly holds, at least one.
"""

from __future__ import annotations

import gzip
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from metaclip2.core.errors import DataError, MissingExtraError, ParameterError

__all__ = [
    "DEFAULT_MAX_CHARS",
    "FORMATS",
    "INVALID_REASONS",
    "Image",
    "InvalidInputError",
    "ParquetDependencyError",
    "detect_format",
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
    "missing_text",  # no "texts"/"text" field, "texts" not a list, or a text object without "text"
    "not_string",    # a text (or its "lang") that is not a string
    "empty",         # a text that is empty or only whitespace
    "too_long",      # a text longer than max_chars
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
        Where text ``k`` came from: 1-based line (JSONL) or row (Parquet) number, or tar member name.
    extra : dict
        The record's other scalar fields (``url``, sizes, scores, …), carried into the curated
        subset.
    """

    id: str | None
    texts: list = field(default_factory=list)
    langs: list = field(default_factory=list)
    invalid: list = field(default_factory=list)
    where: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def add(self, text: str | None, lang: str | None, reason: str | None, where: int | str) -> None:
        self.texts.append(text if reason is None else None)
        self.langs.append(lang if reason is None else None)
        self.invalid.append(reason)
        self.where.append(where)


def detect_format(path: str | os.PathLike) -> str:
    """Input format of `path` from its name: one of :data:`FORMATS`."""
    name = Path(path).name.lower()
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
    format: str | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    strict: bool = False,
) -> Iterator[Image]:
    """Images of one input shard, in file order.

    Parameters
    ----------
    path : path
        The shard.
    format : {"jsonl", "parquet", "tar"}, optional
        Default: from the file name (:func:`detect_format`).
    max_chars : int
        Texts longer than this many characters are invalid (``too_long``).
    strict : bool
        Raise :class:`InvalidInputError` at the first invalid pair instead of reporting it.

    Yields
    ------
    Image
        Including unreadable records (``id`` None) so that they can be counted.
    """
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise ParameterError(f"format must be one of {FORMATS}, got {fmt!r}")
    if max_chars < 1:
        raise ParameterError(f"max_chars must be positive, got {max_chars}")
    reader = {"jsonl": _read_jsonl, "parquet": _read_parquet, "tar": _read_tar}[fmt]
    for image in reader(Path(path), max_chars):
        if strict:
            for reason, where in zip(image.invalid, image.where):
                if reason is not None:
                    raise InvalidInputError(str(path), where, reason)
        yield image


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
    if lang is None:
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


def _text_item(item: Any, max_chars: int) -> tuple[str | None, str | None, str | None]:
    """(text, lang, reason) of one element of a ``texts`` list."""
    item = _decode(item)
    lang = None
    if isinstance(item, dict):
        lang, lang_reason = _check_lang(item.get("lang"))
        text = _decode(item.get("text"))
        reason = _check_text(text, max_chars) or lang_reason
    else:
        text = item
        reason = _check_text(text, max_chars)
    return (text, lang, None) if reason is None else (None, None, reason)


def _unreadable(reason: str, where: int | str, n: int = 1) -> Image:
    image = Image(None)
    for _ in range(max(n, 1)):
        image.add(None, None, reason, where)
    return image


def _image_record(obj: dict, where: int | str, max_chars: int, default_id: str | None = None) -> Image:
    """An image from an image-form record (``texts`` list)."""
    texts = obj.get("texts")
    image_id, reason = _check_id(obj.get("id", default_id))
    if reason is not None:
        return _unreadable(reason, where, len(texts) if isinstance(texts, list) else 1)
    if not isinstance(texts, list):
        return _unreadable("missing_text", where)
    image = Image(image_id)
    for item in texts:
        text, lang, reason = _text_item(item, max_chars)
        image.add(text, lang, reason, where)
    return image


def _flat_text(image: Image, obj: dict, where: int | str, max_chars: int) -> None:
    lang, lang_reason = _check_lang(obj.get("lang"))
    text = _decode(obj.get("text"))
    reason = _check_text(text, max_chars) or lang_reason
    image.add(text, lang, reason, where)


def _records(objs: Iterator[tuple[Any, int | str]], max_chars: int) -> Iterator[Image]:
    """Images from ``(decoded object or reason, where)`` in order, grouping flat records."""
    group: Image | None = None  # the open group of consecutive flat records
    for obj, where in objs:
        if isinstance(obj, str):  # a reason: the record could not be read
            # It cannot be tied to an id, so it does not interrupt a flat group.
            yield _unreadable(obj, where)
            continue
        if isinstance(obj, dict) and "text" in obj and "texts" not in obj:
            image_id, reason = _check_id(obj.get("id"))
            if reason is not None:
                yield _unreadable(reason, where)
                continue
            if group is not None and group.id != image_id:
                yield group
                group = None
            if group is None:
                group = Image(image_id)
            _flat_text(group, obj, where, max_chars)
            continue
        if group is not None:
            yield group
            group = None
        yield _image_record(obj, where, max_chars) if isinstance(obj, dict) else _unreadable("malformed", where)
    if group is not None:
        yield group


# -- JSONL ----------------------------------------------------------------------------------


def _jsonl_objects(path: Path) -> Iterator[tuple[Any, int]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        lineno = 0
        try:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield "undecodable", lineno
                    continue
                if not line.strip():
                    continue
                try:
                    yield json.loads(line), lineno
                except (ValueError, RecursionError):
                    yield "malformed", lineno
        except (OSError, EOFError):  # e.g. a truncated .gz
            yield "malformed", lineno + 1


def _read_jsonl(path: Path, max_chars: int) -> Iterator[Image]:
    return _records(_jsonl_objects(path), max_chars)


# -- Parquet --------------------------------------------------------------------------------


def _parquet_objects(path: Path) -> Iterator[tuple[Any, int]]:
    _, pq = import_pyarrow()
    row = 0
    try:
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
        columns = [c for c in ("id", "texts", "text", "lang") if c in names]
        for batch in pf.iter_batches(batch_size=8192, columns=columns or None):
            for obj in batch.to_pylist():
                row += 1
                yield obj, row
    except Exception:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
        yield "malformed", row + 1


def _read_parquet(path: Path, max_chars: int) -> Iterator[Image]:
    return _records(_parquet_objects(path), max_chars)


# -- WebDataset tar -------------------------------------------------------------------------


def _split_key(name: str) -> tuple[str, str]:
    """WebDataset key and extension of a member name (split at the first dot of the file name)."""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), ext.lower() if dot else ""


def _tar_sample(key: str, files: dict[str, bytes], max_chars: int) -> Image:
    if "json" in files:
        where = f"{key}.json"
        try:
            obj = json.loads(files["json"].decode("utf-8"))
        except UnicodeDecodeError:
            return _unreadable("undecodable", where)
        except (ValueError, RecursionError):
            return _unreadable("malformed", where)
        if isinstance(obj, dict):
            if "texts" not in obj and "text" in obj:
                obj = {"id": obj.get("id", key), "texts": [{"text": obj["text"], "lang": obj.get("lang")}]}
            return _image_record(obj, where, max_chars, default_id=key)
        if isinstance(obj, (list, str)):
            return _image_record({"texts": obj if isinstance(obj, list) else [obj]}, where, max_chars, default_id=key)
        return _unreadable("malformed", where)
    if "txt" in files:
        where = f"{key}.txt"
        text = _decode(files["txt"])
        if isinstance(text, str):
            text = text.rstrip("\r\n")
        image = Image(key)
        reason = _check_text(text, max_chars)
        image.add(text, None, reason, where)
        return image
    return _unreadable("missing_text", key)


def _read_tar(path: Path, max_chars: int) -> Iterator[Image]:
    key, files, last = None, {}, str(path)
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                last = member.name
                k, ext = _split_key(member.name)
                if k != key:
                    if key is not None:
                        yield _tar_sample(key, files, max_chars)
                    key, files = k, {}
                if ext in ("json", "txt"):
                    f = tar.extractfile(member)
                    files[ext] = f.read() if f is not None else b""
    except (tarfile.TarError, OSError, EOFError):
        # The sample being read when the archive broke is incomplete: one malformed pair.
        key = None
        yield _unreadable("malformed", last)
    if key is not None:
        yield _tar_sample(key, files, max_chars)
