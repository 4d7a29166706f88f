"""Reading back the package's own JSON, bounded, and sealing the records a later run trusts.

Everything metaclip2 parses from its own files goes through [`parse_json`][metaclip2.core.jsonfile.parse_json] (bytes already
read, e.g. a header inside a binary file) or [`read_json`][metaclip2.core.jsonfile.read_json] (a whole file): the size is
capped, the nesting depth is measured before `json.loads` runs (a file of 100,000
``[`` would otherwise end in a ``RecursionError``), duplicate keys and non-UTF-8 bytes are
refused, and every refusal is one [`DataError`][metaclip2.core.errors.DataError] naming the file.

A *record* (a shard's ``stats.json``, ``thresholds.json``, ``run.json``) also carries its own
digest: [`seal`][metaclip2.core.jsonfile.seal] adds ``record_sha256``, the sha256 of the canonical JSON of the rest, and
[`unseal`][metaclip2.core.jsonfile.unseal] checks and removes it. One edited digit is then a refusal naming the file,
never a number that reaches the datacard. The digest is over the parsed value, not the
bytes, so indentation or key order does not matter.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

import numpy as np

from metaclip2.core.errors import DataError
from metaclip2.core.regularfile import open_regular

__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "SEAL_KEY", "json_depth", "parse_json", "read_json", "seal", "unseal"]

#: Largest JSON file [`read_json`][metaclip2.core.jsonfile.read_json] reads (bytes).
MAX_JSON_BYTES = 256 << 20
#: Deepest nesting of arrays and objects accepted; the package's own files nest a few levels.
MAX_JSON_DEPTH = 64
#: The key [`seal`][metaclip2.core.jsonfile.seal] adds to a record.
SEAL_KEY = "record_sha256"

_REDO = "delete it and run the stage that writes it again"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a JSON string, escapes included
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BLOCK = 1 << 20


def json_depth(raw: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in the JSON text `raw` (brackets inside strings do not count).

    Runs in C and numpy, blockwise, so a crafted file costs linear time and bounded memory.

    Examples
    --------
    >>> from metaclip2.core.jsonfile import json_depth
    >>> json_depth(b'{"a": [1, [2]], "b": "[[[["}'), json_depth(b"3"), json_depth(b"[" * 100_000)
    (3, 0, 100000)
    """
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    deepest, level = 0, 0
    for a in range(0, len(brackets), _BLOCK):
        b = np.frombuffer(brackets, dtype=np.uint8, count=min(_BLOCK, len(brackets) - a), offset=a)
        steps = np.where((b == ord("[")) | (b == ord("{")), 1, -1).astype(np.int64)
        levels = np.cumsum(steps) + level
        deepest = max(deepest, int(levels.max()))
        level = int(levels[-1])
    return deepest


def _no_duplicates(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {dup!r} appears twice in one object")
    return d


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates)  # one instance: made once, not per call


def parse_json(raw: bytes | str, source: str, hint: str = _REDO, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of `raw`, or one [`DataError`][metaclip2.core.errors.DataError] naming `source`.

    Parameters
    ----------
    raw : bytes or str
        UTF-8 JSON text.
    source : str
        What to name in errors (the file, and where in it).
    hint : str
        What to do about a refused file.
    max_depth : int
        Deepest nesting accepted.

    Examples
    --------
    >>> from metaclip2.core.jsonfile import parse_json
    >>> parse_json(b'{"t": {"en": 2}}', "thresholds.json")
    {'t': {'en': 2}}
    >>> parse_json(b"[" * 100_000, "counts.bin (header)")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: counts.bin (header) is damaged (JSON nested 100000 deep, more than 64): ...
    >>> parse_json(b'{"t": 1, "t": 2}', "run.json", hint="restore it")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: run.json is damaged (key 't' appears twice in one object): restore it
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    # the common small record cannot nest deeper than its count of openings: no scan needed
    opening = raw.count(b"[") + raw.count(b"{")
    depth = json_depth(raw) if opening > max_depth else opening
    if depth > max_depth:
        raise DataError(f"{source} is damaged (JSON nested {depth} deep, more than {max_depth}): {hint}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{source} is damaged (not UTF-8: {e.reason} at byte {e.start}): {hint}") from None
    try:
        return _DECODER.decode(text)
    except RecursionError:  # cannot happen after the depth check; kept so it never becomes a traceback
        raise DataError(f"{source} is damaged (JSON nested too deep): {hint}") from None
    except ValueError as e:
        raise DataError(f"{source} is damaged ({e}): {hint}") from None


def read_json(path: str | os.PathLike, hint: str = _REDO, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of the regular file `path`, read bounded (see [`parse_json`][metaclip2.core.jsonfile.parse_json]).

    Raises
    ------
    MissingInputError
        The file does not exist.
    DataError
        Not a regular file (a directory, pipe, device), larger than `max_bytes`, nested
        deeper than `max_depth`, not UTF-8 JSON, or unreadable; the message names it.

    Examples
    --------
    >>> import tempfile
    >>> from metaclip2.core.atomic import write_json
    >>> from metaclip2.core.jsonfile import read_json
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> _ = write_json(f"{d}/run.json", {"format": "demo", "seed": 0})
    >>> read_json(f"{d}/run.json")
    {'format': 'demo', 'seed': 0}
    >>> read_json(d, hint="give the file, not its directory")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: ... is a directory, not a regular file: give the file, not its directory
    >>> tmp.cleanup()
    """
    with open_regular(path, hint) as f:
        try:
            raw = f.read(max_bytes + 1)
        except OSError as e:
            raise DataError(f"{path} cannot be read ({e.strerror or e})") from None
    if len(raw) > max_bytes:
        raise DataError(f"{path} is larger than {max_bytes} bytes, too large for a metaclip2 JSON file: {hint}")
    return parse_json(raw, str(path), hint, max_depth)


def _digest(obj: dict) -> str:
    # normalised first (tuples -> lists, int keys -> str), so the value read back digests alike
    value = json.loads(json.dumps(obj))
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def seal(record: dict) -> dict:
    """`record` with its own digest added (``SEAL_KEY``), for [`unseal`][metaclip2.core.jsonfile.unseal] to check when read back.

    Examples
    --------
    >>> from metaclip2.core.jsonfile import seal, unseal
    >>> sealed = seal({"pairs": 74, "matched": 74})
    >>> sorted(sealed)
    ['matched', 'pairs', 'record_sha256']
    >>> unseal(sealed, "s0.stats.json")
    {'pairs': 74, 'matched': 74}
    >>> sealed["matched"] = 75  # one edited digit
    >>> unseal(sealed, "s0.stats.json", hint="run stage 1 of the shard again")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: s0.stats.json was altered after it was written (its content does not match its record_sha256): run stage 1 of the shard again
    """
    body = {k: v for k, v in record.items() if k != SEAL_KEY}
    return {**body, SEAL_KEY: _digest(body)}


def unseal(record: Any, source: str, hint: str = _REDO, required: bool = True) -> dict:
    """`record` (a JSON object read back) without its seal, after checking it.

    Parameters
    ----------
    record : Any
        The parsed JSON.
    source : str
        The file, named in errors.
    hint : str
        What to do about a refused file.
    required : bool
        Refuse a record with no seal (else it is returned as it is: a file of an older version).

    Raises
    ------
    DataError
        Not a JSON object, no seal (with `required`), or a seal that does not match.

    See Also
    --------
    - [`seal`][metaclip2.core.jsonfile.seal] : Adds the seal.

    Examples
    --------
    >>> from metaclip2.core.jsonfile import unseal
    >>> unseal({"seed": 0}, "run.json", required=False)
    {'seed': 0}
    >>> unseal({"seed": 0}, "run.json", hint="run the stage again")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: run.json carries no record_sha256 (damaged, or written by an older metaclip2): run the stage again
    """
    if not isinstance(record, dict):
        raise DataError(f"{source} is damaged (not a JSON object): {hint}")
    if SEAL_KEY not in record:
        if required:
            raise DataError(f"{source} carries no {SEAL_KEY} (damaged, or written by an older metaclip2): {hint}")
        return record
    body = {k: v for k, v in record.items() if k != SEAL_KEY}
    if record[SEAL_KEY] != _digest(body):
        raise DataError(f"{source} was altered after it was written (its content does not match its {SEAL_KEY}): {hint}")
    return body
