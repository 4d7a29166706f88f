"""Input shards → images with alt-texts, with every bad input and every damaged container counted.

Formats (chosen by file name, or ``format=``):

``jsonl`` (``.jsonl``, ``.json``, ``.jsonl.gz``, ``.ndjson``)
    One record per line (a UTF-8 byte-order mark is ignored). Blank lines are skipped.
``parquet`` (``.parquet``, ``.pq``)
    One record per row, read row group by row group. Needs pyarrow
    (``pip install 'metaclip2[parquet]'``).
``csv``, ``tsv`` (``.csv``, ``.tsv``, ``.csv.gz``, ``.tsv.gz``)
    img2dataset's url lists: a header row, one record per row, every column a string; a list
    without an id column has its rows numbered (``<file stem>:<row as 9 digits>``, see
    [`metaclip2.pipeline.io.delimited`][metaclip2.pipeline.io.delimited]). Needs pyarrow.
``tar`` (``.tar``, ``.tar.gz``, ``.tgz``)
    WebDataset shards: members grouped by key (the member path up to the first dot of its
    file name); concatenated archives are read through. Per key a ``.json`` record and/or a
    ``.txt`` alt-text; other members (images) are never read.

Layouts (the record's keys; detected per shard, or named with a [`ReaderSpec`][metaclip2.pipeline.io.records.ReaderSpec]):

``metaclip2``
    ``{"id", "texts": [str | {"text", "lang"?, "source"?, …}]}`` (image form) or the *flat*
    form, one pair per record, ``{"id", "text", "lang"?, "text_index"?}``. All records with
    one id form one image, wherever they stand in the shard. An alt-text's index is the
    record's ``text_index`` (or the key named by ``text_index_key``) where it has one;
    otherwise the id's records are numbered 0, 1, … in the order they stand in the whole
    shard, after the indices the id already used (an image-form record's texts keep their
    positions). An ``(id, index)`` met twice is invalid (``duplicate_index``), an index that
    is not a whole number ``>= 0`` too (``bad_index``); see [`Numbering`][metaclip2.pipeline.io.records.Numbering].
    Both forms may be mixed. In a tar, ``id`` defaults to the key.
``datacomp``
    DataComp metadata: ``uid``, ``text`` (plus ``url``, sizes, CLIP scores, …), flat.
``img2dataset``
    img2dataset Parquet (``key``, ``caption``, ``url``, …) and tars (``key.txt`` caption and/or
    ``key.json`` with ``caption``, ``url``, ``key``, ``status``, …); the image id is the key.
    A record whose ``status`` is a string other than ``"success"`` (img2dataset's
    ``failed_to_download``, in its Parquet and ``.json`` files, whatever the layout) is not an
    image of the pool: its alt-texts are invalid, ``not_downloaded``, never matched or kept.

Detection looks at a shard's Parquet schema, its first JSONL record with a known layout, or
its tar samples; a record that fits two layouts is an error naming them (name the keys with
``ReaderSpec(id_key=..., text_keys=...)`` / ``--id-key``, ``--text-key``). A record's other
fields (``url``, sizes, scores; per-text ones such as ``source``) are carried in
[`Image.extra`][metaclip2.pipeline.io.records.Image.extra] / [`Image.text_extra`][metaclip2.pipeline.io.records.Image.text_extra], chosen with ``keep_keys`` / ``drop_keys``:
scalars always; a Parquet column of any type that survives JSON (numbers, strings, booleans,
lists and structs of them), whose Arrow type stage 1 records (``carried_schema`` in the
report) so that the subset has it; a JSON field's list or object when ``keep_keys`` names it.
A ``keep_keys`` column that cannot be carried (a timestamp, binary) is a
[`ParameterError`][metaclip2.core.errors.ParameterError] naming it. The subset's id column keeps the
layout's id key (``uid``, ``key``, ``id``).

Paths may be fsspec URLs (``s3://…``, ``memory://…``, ``https://…``); local paths are opened
directly.

Image ids are strings; integer ids are accepted and written in decimal. A text given with a
language skips language identification.

Bad input is reported, per alt-text, with one of [`INVALID_REASONS`][metaclip2.pipeline.io.records.INVALID_REASONS]; the unit of
accounting is the pair: a record that cannot be read at all (a malformed line, a record
without id, a line that is not UTF-8) counts as one invalid pair per alt-text it visibly holds,
at least one. A JSONL line (or tar ``.json`` member) longer than 1 MiB or ``64 * max_chars``
bytes is one ``too_long`` pair, skipped in bounded pieces, never held whole. A damaged tar
stretch counts one pair, and the sample it cut the text from is that pair (not also
``missing_text``). A damaged
container (a corrupt tar header or compressed stream, a corrupt Parquet row group, a gzip CRC
or truncation error) yields an [`Image`][metaclip2.pipeline.io.records.Image] with reason ``"damaged"``, ``where`` the byte
offset or row group, and [`Image.damage`][metaclip2.pipeline.io.records.Image.damage] saying the error and the records lost where
known (a Parquet row group's rows; one pair where unknown).
"""

from __future__ import annotations

import functools
import os
from typing import Iterator

from metaclip2.core.errors import ParameterError
from metaclip2.pipeline.io.delimited import _read_delimited
from metaclip2.pipeline.io.inputs import FORMATS, detect_format
from metaclip2.pipeline.io.jsonl import _read_jsonl
from metaclip2.pipeline.io.parquet import _read_parquet
from metaclip2.pipeline.io.records import DEFAULT_MAX_CHARS, Image, InvalidInputError, Numbering, ReaderSpec, _Resolver
from metaclip2.pipeline.io.tar import _read_tar

__all__ = ["read_shard"]


def read_shard(
    path: str | os.PathLike,
    *,
    input_format: str | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    strict: bool = False,
    spec: ReaderSpec | None = None,
    report: dict | None = None,
    numbering: Numbering | None = None,
    piece: tuple[int, int] | None = None,
) -> Iterator[Image]:
    """Images of one input shard, in file order.

    Parameters
    ----------
    path : path or URL
        The shard (a local path or an fsspec URL).
    input_format : {"jsonl", "parquet", "tar", "csv", "tsv"}, optional
        Default: from the file name ([`detect_format`][metaclip2.pipeline.io.inputs.detect_format]).
    max_chars : int
        Texts longer than this many characters are invalid (``too_long``).
    strict : bool
        Raise [`InvalidInputError`][metaclip2.pipeline.io.records.InvalidInputError] at the first invalid pair or damage instead of
        reporting it.
    spec : ReaderSpec, optional
        Named keys and carried fields; default: detect the layout.
    report : dict, optional
        Filled with the layout used: ``layout``, ``id_key``, ``text_keys``, ``lang_key``,
        ``fields`` (of the first record), ``expected`` (the keys looked for).
    numbering : Numbering, optional
        Numbers the alt-texts across the shard (default: a new one); pass one to read its
        per-id slot counts once the shard is read through (a reader may number a batch of
        images ahead of yielding them).
    piece : (int, int), optional
        Read only part of the shard (stage 1 reads a big shard in pieces): bytes
        ``[start, stop)`` of an uncompressed local JSONL file, ``start`` at a line start (lines
        numbered from 1 there), or row groups ``[first, stop)`` of a Parquet file (rows numbered
        as in the whole file).

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
    - [`Image`][metaclip2.pipeline.io.records.Image] : One image and its alt-texts, as read.
    - [`curate`][metaclip2.pipeline.run.api.curate] : All three stages and the datacard in one call.

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
    reader = {"jsonl": _read_jsonl, "parquet": _read_parquet, "tar": _read_tar, "csv": _read_delimited("csv"),
              "tsv": _read_delimited("tsv")}[fmt]  # fmt: skip
    numbering = Numbering() if numbering is None else numbering
    if piece is not None:
        if fmt not in ("jsonl", "parquet"):
            raise ParameterError(f"{path}: only JSONL and Parquet shards are read in pieces, not {fmt}")
        reader = functools.partial(reader, piece=tuple(piece))
    apply = numbering.apply
    if not strict:
        resolver.numbering = numbering  # a reader may take it (then it numbers what it yields)
        images = reader(path, max_chars, resolver)
        for image in images:
            if resolver.numbering is None:  # taken (before its first image)
                yield image
                yield from images
                return
            apply(image)
            yield image
        return
    for image in reader(path, max_chars, resolver):
        apply(image)
        for reason, where in zip(image.invalid, image.where):
            if reason is not None:
                raise InvalidInputError(path, where, reason, image.damage["error"] if image.damage else "")
        yield image
