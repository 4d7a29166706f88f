"""Reading JSONL shards (``.jsonl``, ``.json``, ``.ndjson``, optionally gzip-compressed): one
record per line, a UTF-8 byte-order mark ignored, blank lines skipped.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Iterator

from metaclip2.pipeline.io.inputs import _open_maybe_gzip
from metaclip2.pipeline.io.records import Image, _Bad, _Damage, _records, _Resolver

__all__: list[str] = []


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
