"""Index rows partitioned by language, in memory up to a budget, then in temporary files.

Stage 1 groups a shard's pairs by language so that each language's matcher is used in one
phase per shard ([`match_shard`][metaclip2.pipeline.stages.match.match_shard]); [`LanguageRuns`][metaclip2.pipeline.io.partition.LanguageRuns]
holds the groups. Rows keep the order they were added in within a language; their memory is
bounded by ``budget`` bytes (estimated), beyond which every language's rows go to a
temporary file beside the outputs, named ``*.tmp<pid>`` so that a killed worker's leftovers
are removed with the other temporaries ([`remove_temporaries`][metaclip2.core.atomic.remove_temporaries]).
"""

from __future__ import annotations

import heapq
import operator
import os
from pathlib import Path
from typing import Iterator

from metaclip2.core.atomic import temporary_name
from metaclip2.pipeline.io.index import append_rows, iter_chunks

__all__ = ["LanguageRuns"]

_SPILL_CHUNK = 1024  # rows per chunk of a temporary run: the merge back to input order decodes one per language


def _row_bytes(row: tuple) -> int:
    # rough Python footprint of a row tuple: object headers, the strings, the ids
    return 300 + 2 * len(row[5]) + 8 * len(row[4])


_ORDER = operator.itemgetter(0, 2)  # (n, k): input order


class LanguageRuns:
    """Rows ``(n, id, k, lang, ids, text, extra)`` grouped by ``lang``.

    Parameters
    ----------
    directory : path
        Where temporary runs go.
    prefix : str
        Their name prefix (e.g. the shard name).
    budget : int
        Estimated bytes of rows kept in memory before all of them are written out.

    Notes
    -----
    Use as a context manager: the temporary files are removed at the end.
    """

    def __init__(self, directory: str | os.PathLike, prefix: str, budget: int):
        self._dir = Path(directory)
        self._prefix = prefix
        self._budget = int(budget)
        self._mem: dict[str, list[tuple]] = {}
        self._mem_bytes: dict[str, int] = {}
        self._files: dict[str, Path] = {}
        self._bytes = 0
        self.spills = 0  # how many times rows went to disk (for tests and notes)

    def add(self, row: tuple) -> None:
        """Append a row to its language's run."""
        lang = row[3]
        size = _row_bytes(row)
        rows = self._mem.get(lang)
        if rows is None:
            rows = self._mem[lang] = []
            self._mem_bytes[lang] = 0
        rows.append(row)
        self._mem_bytes[lang] += size
        self._bytes += size
        if self._bytes > self._budget:
            self._spill()

    def languages(self) -> list[str]:
        """Sorted languages that have rows."""
        return sorted(set(self._mem) | set(self._files))

    def rows(self, lang: str) -> Iterator[tuple]:
        """`lang`'s rows in the order they were added."""
        path = self._files.get(lang)
        if path is not None:
            for chunk in iter_chunks(path):
                yield from chunk.rows()
        yield from self._mem.get(lang, ())

    def release(self, lang: str) -> None:
        """Forget `lang`'s rows (memory and file)."""
        self._mem.pop(lang, None)
        self._bytes -= self._mem_bytes.pop(lang, 0)
        path = self._files.pop(lang, None)
        if path is not None:
            path.unlink(missing_ok=True)

    def _spill(self) -> None:
        for lang in sorted(self._mem):
            path = self._files.get(lang)
            if path is None:
                path = self._files[lang] = temporary_name(self._dir / f"{self._prefix}.run-{len(self._files)}")
                path.unlink(missing_ok=True)  # a leftover of a killed process with the same pid
            append_rows(path, self._mem[lang], _SPILL_CHUNK)
        self._mem.clear()
        self._mem_bytes.clear()
        self._bytes = 0
        self.spills += 1

    def close(self) -> None:
        """Remove every temporary file."""
        for path in self._files.values():
            path.unlink(missing_ok=True)
        self._files.clear()
        self._mem.clear()
        self._mem_bytes.clear()
        self._bytes = 0

    def __enter__(self) -> "LanguageRuns":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def in_order(self) -> Iterator[tuple]:
        """Every row, ordered by ``(n, k)`` (each language's run must already be in that order)."""
        if not self._files:  # all in memory: one sort of the concatenated runs (timsort merges them)
            rows = [row for lang in sorted(self._mem) for row in self._mem[lang]]
            rows.sort(key=_ORDER)
            return iter(rows)
        return heapq.merge(*(self.rows(lang) for lang in self.languages()), key=_ORDER)
