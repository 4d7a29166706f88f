"""N-gram counting in bounded memory: sorted runs on disk, merged k-way into one counts file.

A worker counts with `RunCounter`: tokens become integer ids (a dict local to the current
run), unigram counts live in a numpy array indexed by id and bigram counts in a sorted numpy
table of ``id1 << 32 | id2`` keys. When the estimated size of these structures reaches the
memory budget, the run is *spilled*: its vocabulary is sorted by string, the bigram keys are
renumbered to those ranks and sorted, and both are written to a run directory; everything is
then cleared. A run is therefore sorted by string, whatever the order tokens arrived in.

`merge_runs` merges any number of runs into the counts file of
`metaclip2.metadata.ngrams.NgramCounts.save`: unigram runs are merged by string (which
assigns global ids, kept as per-run id maps on disk and the strings as one compact byte
blob), then the bigram tables are merged chunk by chunk in numpy and written out as they are
merged. The file only depends on the summed counts, so it is byte-identical whatever the
memory budget, the number of runs or the way the input was split.
"""

from __future__ import annotations

import gzip
import heapq
import itertools
import os
from array import array
from pathlib import Path
from typing import Iterable, Iterator, Sequence
from metaclip2.core.errors import ParameterError
from metaclip2.core.sizes import parse_bytes
from metaclip2.core.atomic import AtomicFile

import numpy as np

__all__ = ["RunCounter", "merge_runs", "parse_memory", "CountsWriter", "COUNTS_FORMAT"]

COUNTS_FORMAT = "metaclip2-ngrams\t1"
_MASK = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)
_MAX_IDS = 1 << 32
# Approximate bytes held per distinct token: str object (~49 + length), dict slot and
# index (~40), int object (~28) and its unigram count (8).
_TOKEN_OVERHEAD = 125
_BLOCK = 1 << 20


def parse_memory(value: str | int | None) -> int | None:
    """Bytes from ``"128MB"``, ``"2GiB"``, ``"500k"`` or an int; None/"none" for no limit.

    Raises
    ------
    ValueError
        Unreadable, or below 1 MB.

    Examples
    --------
    >>> from metaclip2.metadata.ngram_runs import parse_memory
    >>> parse_memory("128MB"), parse_memory("2GiB"), parse_memory(None)
    (134217728, 2147483648, None)
    """
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in ("none", "0", "inf", "unlimited"):
        return None
    n = parse_bytes(value, "memory limit")
    if n < 1 << 20:
        raise ParameterError(f"memory limit {value!r} is below 1 MB; give e.g. 128MB (or none for no limit)")
    return n


class RunCounter:
    """Unigram and bigram counter whose tables stay under a memory budget.

    Parameters
    ----------
    run_dir : path
        Directory receiving the runs (``<prefix>-<k>.uni`` / ``.keys.npy`` / ``.counts.npy``).
    prefix : str
        Unique per counter (e.g. the task index), so several counters share `run_dir`.
    memory_limit : int, optional
        Budget in bytes for the counting structures (vocabulary, unigram and bigram tables,
        the pending-pairs buffer, and the transient copies of a table merge). None: one run
        at `close` whatever the size.

    Notes
    -----
    The process also holds the interpreter, the libraries and the text being tokenised;
    the budget covers what grows with the data.

    See Also
    --------
    - [`merge_runs`][metaclip2.metadata.ngram_runs.merge_runs] : Merges the runs into a counts file.
    - [`write_dump_ngrams`][metaclip2.metadata.ngrams.write_dump_ngrams] : Runs counters in workers over a dump.

    Examples
    --------
    >>> import os, tempfile
    >>> from metaclip2.metadata import NgramCounts, tokenize
    >>> from metaclip2.metadata.ngram_runs import RunCounter, merge_runs
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     counter = RunCounter(tmp, "task0", memory_limit=None)
    ...     counter.add_chains(tokenize("A dog in New York. A dog park.", "en"))
    ...     runs = counter.close()
    ...     print(merge_runs(runs, os.path.join(tmp, "en.ngrams"), n_tokens=8, work_dir=tmp))
    ...     counts = NgramCounts.load(os.path.join(tmp, "en.ngrams"))
    {'unigrams': 6, 'bigrams': 5}
    >>> counts.bigrams.most_common(2)
    [(('A', 'dog'), 2), (('New', 'York'), 1)]
    """

    def __init__(self, run_dir: str | os.PathLike, prefix: str, memory_limit: int | None = None):
        self.run_dir = Path(run_dir)
        self.prefix = prefix
        self.memory_limit = memory_limit
        # Pending raw pair keys before they are folded into the sorted table.
        self._buffer_cap = 1 << 20 if memory_limit is None else max(1 << 12, memory_limit // 512)
        self.runs: list[str] = []
        self.n_tokens = 0
        self.peak_bytes = 0
        self._reset()

    def _reset(self) -> None:
        self._vocab: dict[str, int] = {}
        self._vocab_chars = 0
        self._uni = np.zeros(1024, dtype=np.int64)
        self._keys = np.zeros(0, dtype=np.uint64)
        self._counts = np.zeros(0, dtype=np.int64)
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._ids: list[int] = []

    def estimated_bytes(self) -> int:
        """Current size estimate of the counting structures."""
        return len(self._vocab) * _TOKEN_OVERHEAD + self._vocab_chars + self._uni.nbytes + self._keys.nbytes + self._counts.nbytes + 8 * self._pending_n + 8 * len(self._ids)

    def _merge_peak(self) -> int:
        # Worst case before the next check: up to two buffers of pending pairs (one more
        # `flush` of ids) folded at once, np.unique's copies of them (~24 B each), the
        # enlarged table (16 B per key) next to the old one, and one flush of new tokens.
        cap = self._buffer_cap
        return self.estimated_bytes() + self._keys.nbytes + self._counts.nbytes + 16 * self._pending_n + (2 * 40 + 150) * cap

    def add_chains(self, chains: Iterable[Sequence[str]]) -> None:
        """Count the tokens and in-chain adjacent pairs of `chains` (see `tokenize`)."""
        vocab = self._vocab
        setdefault = vocab.setdefault
        ids = self._ids
        extend = ids.extend
        before = len(vocab)
        for chain in chains:
            # setdefault with len(vocab) gives a new token the next id.
            extend([setdefault(w, len(vocab)) for w in chain])
            ids.append(-1)  # chain break
        if len(vocab) != before:
            self._vocab_chars += sum(len(w) for w in itertools.islice(reversed(vocab), len(vocab) - before))
            if len(vocab) > _MAX_IDS:
                raise ParameterError("more than 2**32 distinct tokens in one run; give a smaller memory limit")
        if len(ids) >= self._buffer_cap:
            self.flush()

    def flush(self, check: bool = True) -> None:
        """Move the token ids gathered by `add_chains` into the numpy tables."""
        if not self._ids:
            return
        arr = np.array(self._ids, dtype=np.int64)
        self._ids.clear()
        tok = arr[arr >= 0]
        self.n_tokens += int(tok.size)
        n = len(self._vocab)
        if n > self._uni.size:
            grown = np.zeros(max(n, 2 * self._uni.size), dtype=np.int64)
            grown[: self._uni.size] = self._uni
            self._uni = grown
        u, c = np.unique(tok, return_counts=True)
        self._uni[u] += c
        a, b = arr[:-1], arr[1:]
        ok = (a >= 0) & (b >= 0)
        if ok.any():
            pairs = (a[ok].astype(np.uint64) << _SHIFT) | b[ok].astype(np.uint64)
            self._pending.append(pairs)
            self._pending_n += pairs.size
            if self._pending_n >= self._buffer_cap:
                self._fold()
        if check and self.memory_limit is not None and self._merge_peak() >= self.memory_limit:
            self.spill()

    def _fold(self) -> None:
        """Fold the pending pairs into the sorted bigram table."""
        if not self._pending:
            return
        raw = np.concatenate(self._pending)
        self._pending, self._pending_n = [], 0
        before = self.estimated_bytes() + raw.nbytes
        keys, counts = np.unique(raw, return_counts=True)
        self.peak_bytes = max(self.peak_bytes, before + 2 * raw.nbytes)
        del raw
        counts = counts.astype(np.int64)
        if self._keys.size:
            pos = np.searchsorted(self._keys, keys)
            hit = pos < self._keys.size
            hit[hit] = self._keys[pos[hit]] == keys[hit]
            self._counts[pos[hit]] += counts[hit]  # table keys are unique
            new = ~hit
            if new.any():
                grown = self._keys.nbytes + self._counts.nbytes + 16 * int(new.sum())
                self.peak_bytes = max(self.peak_bytes, self.estimated_bytes() + keys.nbytes + counts.nbytes + grown)
                self._keys = np.insert(self._keys, pos[new], keys[new])
                self._counts = np.insert(self._counts, pos[new], counts[new])
        else:
            self._keys, self._counts = keys, counts
        self.peak_bytes = max(self.peak_bytes, self.estimated_bytes())

    def spill(self) -> None:
        """Write the current counts as a sorted run and start an empty one."""
        self.flush(check=False)
        self._fold()
        n = len(self._vocab)
        if n == 0:
            return
        self.peak_bytes = max(self.peak_bytes, self.estimated_bytes())
        tokens = list(self._vocab)  # id order
        del self._vocab
        order = sorted(range(n), key=tokens.__getitem__)
        rank = np.empty(n, dtype=np.uint64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(n, dtype=np.uint64)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        base = self.run_dir / f"{self.prefix}-{len(self.runs):05d}"
        uni = self._uni
        with open(f"{base}.uni", "w", encoding="utf-8", newline="\n") as f:
            for i in range(0, n, 65536):
                part = order[i : i + 65536]
                f.write("".join(f"{tokens[j]}\t{c}\n" for j, c in zip(part, uni[part].tolist())))
        del tokens, order
        keys = (rank[self._keys >> _SHIFT] << _SHIFT) | rank[self._keys & _MASK]
        self._keys = np.zeros(0, dtype=np.uint64)
        srt = np.argsort(keys, kind="stable")
        np.save(f"{base}.keys.npy", keys[srt])
        del keys
        np.save(f"{base}.counts.npy", self._counts[srt])
        self.runs.append(str(base))
        self._reset()

    def close(self) -> list[str]:
        """Spill what is left; return the run prefixes (paths without suffix)."""
        self.spill()
        return list(self.runs)


class CountsWriter:
    """Gzip text writer that compresses in fixed 1 MiB blocks (mtime 0).

    Fixed blocks make the bytes independent of how the caller splits its writes.

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> from metaclip2.metadata.ngram_runs import CountsWriter
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     writer = CountsWriter(os.path.join(tmp, "en.ngrams"))
    ...     writer.write("U\\tdog\\t2\\n")
    ...     writer.close()
    ...     gzip.open(os.path.join(tmp, "en.ngrams"), "rt").read()
    'U\\tdog\\t2\\n'
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = AtomicFile(self.path)
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._file.stream, mtime=0, compresslevel=6)
        self._buf = bytearray()

    def write(self, text: str) -> None:
        self._buf += text.encode("utf-8")
        if len(self._buf) >= _BLOCK:
            n = len(self._buf) - len(self._buf) % _BLOCK
            self._gz.write(bytes(self._buf[:n]))
            del self._buf[:n]

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._buf:
            self._gz.write(bytes(self._buf))
        self._gz.close()
        self._file.commit()

    def abort(self) -> None:
        self._gz.close()
        self._file.abort()


def check_token(w: str) -> None:
    if not w or "\t" in w or "\n" in w:
        raise ParameterError(f"token {w!r} cannot be stored (empty, or holds a tab/newline)")


def _read_uni(path: str, run: int) -> Iterator[tuple[str, int, int]]:
    """(token, run, count) rows of a run's vocabulary, in string order."""
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f:
            w, _, c = line.rstrip("\n").rpartition("\t")
            yield w, run, int(c)


def merge_runs(runs: Sequence[str], out: str | os.PathLike, n_tokens: int, work_dir: str | os.PathLike, memory_limit: int | None = None) -> dict:
    """Merge sorted runs into one n-gram counts file, streaming.

    Parameters
    ----------
    runs : sequence of str
        Run prefixes from `RunCounter.close`.
    out : path
        Counts file to write (the format of `NgramCounts.save`).
    n_tokens : int
        Total tokens of all runs (the header's ``n_tokens``).
    work_dir : path
        Receives the per-run id maps (deleted by the caller with the runs).
    memory_limit : int, optional
        Sizes the chunks read from each run (None: 65,536 bigrams per run).

    Returns
    -------
    dict
        ``unigrams`` and ``bigrams`` (distinct counts written).

    See Also
    --------
    - [`RunCounter`][metaclip2.metadata.ngram_runs.RunCounter] : Writes the runs.

    Examples
    --------
    Two counters (two workers' parts) merged into one file:

    >>> import os, tempfile
    >>> from metaclip2.metadata import NgramCounts, tokenize
    >>> from metaclip2.metadata.ngram_runs import RunCounter, merge_runs
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     runs = []
    ...     for i, text in enumerate(["A dog in New York.", "A dog park."]):
    ...         counter = RunCounter(tmp, f"task{i}")
    ...         counter.add_chains(tokenize(text, "en"))
    ...         runs += counter.close()
    ...     _ = merge_runs(runs, os.path.join(tmp, "en.ngrams"), n_tokens=8, work_dir=tmp)
    ...     counts = NgramCounts.load(os.path.join(tmp, "en.ngrams"))
    >>> counts.n_tokens, counts.unigrams["dog"], counts.bigrams[("A", "dog")]
    (8, 2, 2)
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    writer = CountsWriter(out)
    try:
        writer.write(f"{COUNTS_FORMAT}\tn_tokens={n_tokens}\n")
        blob, offsets, maps = _merge_unigrams(runs, writer, work)
        n_bi = _merge_bigrams(runs, maps, blob, offsets, writer, memory_limit)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return {"unigrams": len(offsets) - 1, "bigrams": n_bi}


def _merge_unigrams(runs: Sequence[str], writer: CountsWriter, work: Path):
    """Merge the runs' vocabularies by string; write U rows; return strings and id maps."""
    blob = bytearray()
    offsets = array("q", [0])
    map_files = [open(work / f"map-{i:05d}.u32", "wb") for i in range(len(runs))]
    map_bufs = [array("I") for _ in runs]
    streams = [_read_uni(f"{r}.uni", i) for i, r in enumerate(runs)]
    gid = -1
    prev = None
    total = 0
    out: list[str] = []
    for w, i, c in heapq.merge(*streams):  # ties: run order, which does not affect sums
        if w != prev:
            if prev is not None:
                out.append(f"U\t{prev}\t{total}\n")
                if len(out) >= 65536:
                    writer.write("".join(out))
                    out.clear()
            check_token(w)
            gid += 1
            if gid >= _MAX_IDS:
                raise ParameterError("more than 2**32 distinct tokens: not supported")
            blob += w.encode("utf-8")
            offsets.append(len(blob))
            prev, total = w, 0
        total += c
        buf = map_bufs[i]
        buf.append(gid)
        if len(buf) >= 1 << 18:
            buf.tofile(map_files[i])
            del buf[:]
    if prev is not None:
        out.append(f"U\t{prev}\t{total}\n")
    writer.write("".join(out))
    for buf, f in zip(map_bufs, map_files):
        buf.tofile(f)
        f.close()
    return bytes(blob), np.frombuffer(offsets, dtype=np.int64), [work / f"map-{i:05d}.u32" for i in range(len(runs))]


class _RunReader:
    """Chunks of one run's bigrams, renumbered to global ids (still sorted)."""

    def __init__(self, prefix: str, map_path: Path, chunk: int):
        self.keys = np.load(f"{prefix}.keys.npy", mmap_mode="r", allow_pickle=False)
        self.counts = np.load(f"{prefix}.counts.npy", mmap_mode="r", allow_pickle=False)
        size = os.path.getsize(map_path)
        self.gmap = np.memmap(map_path, dtype=np.uint32, mode="r") if size else np.zeros(0, dtype=np.uint32)
        self.pos = 0
        self.chunk = chunk
        self.buf_keys = np.zeros(0, dtype=np.uint64)
        self.buf_counts = np.zeros(0, dtype=np.int64)

    @property
    def done(self) -> bool:
        return self.pos >= self.keys.size and self.buf_keys.size == 0

    def fill(self) -> None:
        if self.buf_keys.size or self.pos >= self.keys.size:
            return
        k = np.asarray(self.keys[self.pos : self.pos + self.chunk])
        c = np.asarray(self.counts[self.pos : self.pos + self.chunk])
        self.pos += k.size
        g1 = self.gmap[(k >> _SHIFT).astype(np.int64)].astype(np.uint64)
        g2 = self.gmap[(k & _MASK).astype(np.int64)].astype(np.uint64)
        self.buf_keys = (g1 << _SHIFT) | g2
        self.buf_counts = c.astype(np.int64)

    def take(self, bound: np.uint64) -> tuple[np.ndarray, np.ndarray]:
        n = int(np.searchsorted(self.buf_keys, bound, side="right"))
        k, c = self.buf_keys[:n], self.buf_counts[:n]
        self.buf_keys, self.buf_counts = self.buf_keys[n:], self.buf_counts[n:]
        return k, c


def _merge_bigrams(runs, maps, blob: bytes, offsets: np.ndarray, writer: CountsWriter, memory_limit: int | None) -> int:
    # Each reader holds a chunk of keys, counts and renumbered keys, and a merge step about
    # as much again (~100 B per bigram of a chunk); a quarter of the budget goes to them.
    per_run = 1 << 16 if memory_limit is None else min(1 << 18, max(1024, memory_limit // (4 * 100 * max(1, len(runs)))))
    readers = [_RunReader(r, m, per_run) for r, m in zip(runs, maps)]
    written = 0
    while True:
        live = []
        for r in readers:
            r.fill()
            if not r.done:
                live.append(r)
        if not live:
            break
        bound = min(r.buf_keys[-1] for r in live)
        parts = [r.take(bound) for r in live]
        keys = np.concatenate([k for k, _ in parts])
        counts = np.concatenate([c for _, c in parts])
        if len(parts) > 1:
            srt = np.argsort(keys, kind="stable")
            keys, counts = keys[srt], counts[srt]
            first = np.ones(keys.size, dtype=bool)
            first[1:] = keys[1:] != keys[:-1]
            starts = np.flatnonzero(first)
            keys, counts = keys[starts], np.add.reduceat(counts, starts)
        written += keys.size
        _write_bigrams(keys, counts, blob, offsets, writer)
    return written


def _write_bigrams(keys: np.ndarray, counts: np.ndarray, blob: bytes, offsets: np.ndarray, writer: CountsWriter) -> None:
    g1 = (keys >> _SHIFT).astype(np.int64)
    g2 = (keys & _MASK).astype(np.int64)
    ids = np.unique(np.concatenate([g1, g2]))
    starts, ends = offsets[ids].tolist(), offsets[ids + 1].tolist()
    words = dict(zip(ids.tolist(), (blob[s:e].decode("utf-8") for s, e in zip(starts, ends))))
    step = 65536
    a_all, b_all, c_all = g1.tolist(), g2.tolist(), counts.tolist()
    for i in range(0, len(a_all), step):
        writer.write("".join(f"B\t{words[a]}\t{words[b]}\t{c}\n" for a, b, c in zip(a_all[i : i + step], b_all[i : i + step], c_all[i : i + step])))
