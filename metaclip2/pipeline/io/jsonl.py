"""Reading JSONL shards (``.jsonl``, ``.json``, ``.ndjson``, optionally gzip-compressed): one
record per line, a UTF-8 byte-order mark ignored, blank lines skipped.

Lines are read in bounded pieces: a line longer than `record_cap`
bytes is one ``too_long`` pair, skipped without ever being held whole. A line that is not
UTF-8 counts one ``undecodable`` pair per alt-text it visibly holds (it is parsed with the bad
bytes replaced, only to count them).

Lines are parsed by orjson where it is installed (the ``frameworks`` extra), else by json;
json decides every line orjson rejects or would read differently, so the records are the same.
"""

from __future__ import annotations

import io
import json
import zlib
from typing import Any, Iterator

from metaclip2.pipeline.io.inputs import _open_maybe_gzip
from metaclip2.pipeline.io.records import _SLOW, Image, _Bad, _Damage, _records, _Resolver, _visible_texts, _loads_fast, record_cap

__all__: list[str] = []

_SKIP = 1 << 20  # bytes read at a time while skipping the rest of a too long line


def _lines(f, cap: int) -> Iterator[tuple[bytes | None, int]]:
    """``(line, bytes)`` of the file's lines; None for a line longer than `cap` bytes (skipped in pieces)."""
    while True:
        raw = f.readline(cap + 1)
        if not raw:
            return
        if len(raw) > cap and not raw.endswith(b"\n"):
            size = len(raw)
            del raw
            while rest := f.readline(_SKIP):
                size += len(rest)
                if rest.endswith(b"\n"):
                    break
            yield None, size
            continue
        yield raw, len(raw)


def _jsonl_objects(path: str, resolver: _Resolver, cap: int, piece: tuple[int, int] | None = None) -> Iterator[tuple[Any, int | str]]:
    if piece is not None:  # bytes [start, stop) of an uncompressed local file, from a line start; lines numbered from 1 there
        f, damage = _window(path, *piece), None
    else:
        f, damage = _open_maybe_gzip(path, path.lower())
    if damage is not None:
        yield damage, damage.where
        return
    if not isinstance(f, (io.BufferedReader, io.BufferedIOBase)):  # e.g. an fsspec file: readline(size) bounded
        f = io.BufferedReader(f)
    with f:
        lineno = done = 0
        try:
            for lineno, (raw, size) in enumerate(_lines(f, cap), 1):
                done += size
                if raw is None:
                    yield _Bad("too_long"), lineno
                    continue
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf") and not (piece and piece[0]):
                    raw = raw[3:]  # a UTF-8 byte-order mark
                obj = _loads_fast(raw)
                if obj is not _SLOW:
                    yield obj, lineno
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    try:
                        n = _visible_texts(json.loads(raw.decode("utf-8", "replace")), resolver)
                    except (ValueError, RecursionError):
                        n = 1
                    yield _Bad("undecodable", n), lineno
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


def _read_jsonl(path: str, max_chars: int, resolver: _Resolver, cap: int | None = None, piece: tuple[int, int] | None = None) -> Iterator[Image]:
    return _records(_jsonl_objects(path, resolver, record_cap(max_chars) if cap is None else cap, piece), resolver, max_chars)


class _Range(io.RawIOBase):
    """Bytes ``[start, stop)`` of a local file, as a raw stream (a stage-1 piece of a shard)."""

    def __init__(self, path: str, start: int, stop: int):
        self._f = open(path, "rb", buffering=0)
        self._f.seek(start)
        self._left = stop - start

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._left <= 0:
            return 0
        n = self._f.readinto(memoryview(b)[: min(len(b), self._left)])
        self._left -= n or 0
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def _window(path: str, start: int, stop: int) -> io.BufferedReader:
    return io.BufferedReader(_Range(path, start, stop), buffer_size=1 << 20)
