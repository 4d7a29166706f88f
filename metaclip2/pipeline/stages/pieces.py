"""Stage 1 of a big shard in pieces that run in parallel, merged into the shard's usual files.

When a run has fewer shards than its workers can keep busy, the driver reads a big shard as
several *pieces* (byte ranges of an uncompressed local JSONL file, cut at line starts; row-group
ranges of a local Parquet file), each a [`PieceTask`][metaclip2.pipeline.stages.pieces.PieceTask]
that runs stage 1 on its part into a temporary folder (``.pieces/<shard>/`` in the run's
``stage1`` folder). The last piece of a shard to finish (or else the shard's
[`MergeTask`][metaclip2.pipeline.stages.pieces.MergeTask], which the driver runs after all
pieces) merges them: it writes the shard's ``index.bin``, ``counts.bin``, ``images.bin``,
``examples.json`` and ``stats.json``, byte for byte what one whole-shard task
([`match_shard`][metaclip2.pipeline.stages.match.match_shard]) writes, and removes the pieces.

Pieces are exact because an image is all records with one id: cuts are moved past records of
the id before them, and the merge checks that no id (hash) is in two pieces. Counts add, image
ordinals are offset by the earlier pieces' images, the examples are bottom-k samples (their
union's sample is the sample of the union), line numbers are offset by the earlier pieces'
lines. Whatever the merge cannot prove identical (an id in two pieces, pieces read with other
layouts, a piece that failed) is done again as one whole-shard task: slower, the same result.

Outputs never depend on the pieces, so the plan may depend on the number of workers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from metaclip2.core.atomic import write_json
from metaclip2.core.errors import Metaclip2Error
from metaclip2.core.fingerprint import file_digest, input_fingerprint
from metaclip2.core.jsonfile import read_json
from metaclip2.curation.counts import EntryCounts
from metaclip2.pipeline.io.index import IndexWriter, iter_index
from metaclip2.pipeline.io.inputs import detect_format
from metaclip2.pipeline.io.jsonl import _lines
from metaclip2.pipeline.io.records import _candidates, import_pyarrow, record_cap
from metaclip2.pipeline.io.remote import is_url
from metaclip2.pipeline.stages.examples import _write as _write_examples
from metaclip2.pipeline.stages.examples import merge_examples
from metaclip2.pipeline.stages.files import stage1_paths
from metaclip2.pipeline.stages.match import _match, match_shard
from metaclip2.pipeline.stages.options import MatchOptions
from metaclip2.pipeline.stages.split import _write_image_arrays, read_images
from metaclip2.pipeline.stages.stats import MAX_EXAMPLES, Stage1Stats

__all__ = ["PIECES_DIR", "MergeTask", "PieceTask", "input_size", "piece_dir", "plan_pieces", "remove_pieces", "shard_pieces"]

log = logging.getLogger(__name__)

#: Folder of a run's ``stage1`` that holds the pieces being read (removed once merged).
PIECES_DIR = ".pieces"

# Smallest piece, in bytes of the input: below it a piece's fixed costs (a worker's matchers,
# the merge) outweigh what it gains. Tests lower it to cut small files.
_PIECE_BYTES = 8 << 20
# How far past a cut the planner looks for the end of an image (lines / row groups).
_ALIGN_LINES = 100_000
_ALIGN_GROUPS = 64
_GZIP_MAGIC = b"\x1f\x8b"
_ID_KEYS = ("id", "uid", "key")  # the known layouts' id keys


def piece_dir(stage1: str | os.PathLike, shard: str) -> Path:
    """Where the pieces of `shard` are read to (in a run's `stage1` folder).

    Examples
    --------
    >>> from metaclip2.pipeline.stages.pieces import piece_dir
    >>> piece_dir("run/stage1", "pool").as_posix()
    'run/stage1/.pieces/pool'
    """
    return Path(stage1) / PIECES_DIR / shard


def remove_pieces(stage1: str | os.PathLike, shards: Sequence[str]) -> None:
    """Remove what pieces of `shards` a stopped run left (never a shard's own files).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from metaclip2.pipeline.stages.pieces import piece_dir, remove_pieces
    >>> tmp = tempfile.TemporaryDirectory(); stage1 = Path(tmp.name)
    >>> piece_dir(stage1, "pool").mkdir(parents=True); (piece_dir(stage1, "pool") / "0.index.bin").write_bytes(b"cut")
    3
    >>> remove_pieces(stage1, ["pool"]); sorted(p.name for p in stage1.iterdir())
    []
    >>> tmp.cleanup()
    """
    if not (Path(stage1) / PIECES_DIR).exists():  # the common case: one look for all shards
        return
    for shard in shards:
        d = piece_dir(stage1, shard)
        if d.exists():
            shutil.rmtree(d, ignore_errors=True)
    try:
        (Path(stage1) / PIECES_DIR).rmdir()  # the last one out removes .pieces/ (others may still be in it)
    except OSError:
        pass


def _format(path: str, options: MatchOptions) -> str | None:
    """``"jsonl"`` or ``"parquet"`` if `path` can be read in pieces with `options`, else None."""
    if options.strict or is_url(path) or not os.path.isfile(path):
        return None
    try:
        fmt = options.input_format or detect_format(path)
    except Metaclip2Error:
        return None
    if fmt == "jsonl":
        if path.lower().endswith((".gz", ".tgz")):
            return None
        with open(path, "rb") as f:
            if f.read(2) == _GZIP_MAGIC:
                return None
        return fmt
    return fmt if fmt == "parquet" else None


def plan_pieces(path: str, options: MatchOptions, target: int) -> list[tuple[tuple[int, int], int]] | None:
    """Pieces of the shard at `path` of about `target` bytes (at least the minimum piece size):
    ``[((start, stop), bytes)]`` (byte ranges of JSONL, row-group ranges of Parquet), or None
    when it is read whole (one piece, or a format that cannot be cut).

    Examples
    --------
    >>> import json, os, tempfile
    >>> from metaclip2.pipeline.stages import pieces
    >>> from metaclip2.pipeline.stages.options import MatchOptions
    >>> tmp = tempfile.TemporaryDirectory(); path = os.path.join(tmp.name, "pool.jsonl")
    >>> with open(path, "w") as f:  # image b has two alt-texts: never cut between them
    ...     for i, t in [("a", "x"), ("b", "y"), ("b", "z"), ("c", "w")]:
    ...         print(json.dumps({"id": i, "text": t}), file=f)
    >>> pieces._PIECE_BYTES, old = 1, pieces._PIECE_BYTES
    >>> [r for r, _ in pieces.plan_pieces(path, MatchOptions(), target=20)]
    [(0, 25), (25, 75), (75, 100)]
    >>> pieces._PIECE_BYTES = old; tmp.cleanup()
    """
    fmt = _format(path, options)
    if fmt is None:
        return None
    target = max(int(target), _PIECE_BYTES)
    size = os.path.getsize(path)
    if size < 2 * target:
        return None
    if fmt == "jsonl":
        cuts = _jsonl_cuts(path, size, target, options)
        bounds = [0, *cuts, size]
        out = [((a, b), b - a) for a, b in zip(bounds, bounds[1:])]
    else:
        out = _parquet_pieces(path, size, target, options)
    return out if out is not None and len(out) > 1 else None


def _id_of(raw: bytes | None, id_keys: tuple) -> Any:
    """The id values of a JSONL line (None: not a record with an id), to compare neighbours."""
    if raw is None:
        return None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    ids = tuple(obj.get(k) for k in id_keys)
    return None if all(v is None for v in ids) else ids


def _jsonl_cuts(path: str, size: int, target: int, options: MatchOptions) -> list[int]:
    """Line starts near every `target` bytes, each moved past the records of the id before it."""
    spec = options.reader_spec()
    id_keys = (spec.id_key,) if spec.id_key else _ID_KEYS
    cap = record_cap(options.max_chars)
    cuts: list[int] = []
    with open(path, "rb") as f:
        at = target
        while at < size - target // 2:
            f.seek(at - 1)
            f.readline()  # the rest of the line that holds byte `at - 1`: a cut starts a line
            here = f.tell()
            cut, prev = None, _ids_before(f, here, id_keys, cap)
            f.seek(here)
            lines = _lines(f, cap)  # reads lazily: f.tell() is the next line's start
            for _ in range(_ALIGN_LINES):
                pos = f.tell()
                if pos >= size or (line := next(lines, None)) is None:
                    break
                ids = _id_of(line[0], id_keys)
                if ids is None:  # not a record of an id: stays with the lines before it
                    continue
                if prev is not None and ids != prev:
                    cut = pos
                    break
                prev = ids
            if cut is None or cut >= size or (cuts and cut <= cuts[-1]):
                break
            cuts.append(cut)
            at = cut + target
    return cuts


def _line_start(f, end: int, cap: int) -> int | None:
    """Start of the line that ends at byte `end` (its newline included), None if longer than `cap`."""
    pos = end - 1  # the line's own newline
    while pos > 0 and end - pos <= cap + 1:
        step = min(pos, 1 << 16)
        f.seek(pos - step)
        i = f.read(step).rfind(b"\n")
        if i >= 0:
            return pos - step + i + 1
        pos -= step
    return 0 if pos <= 0 and end <= cap + 1 else None


def _ids_before(f, end: int, id_keys: tuple, cap: int, lines: int = 64) -> Any:
    """The id of the last record with one among the (up to `lines`) lines before byte `end`."""
    for _ in range(lines):
        if end <= 0:
            return None
        start = _line_start(f, end, cap)
        if start is None:
            return None
        f.seek(start)
        ids = _id_of(f.read(end - start), id_keys)
        if ids is not None:
            return ids
        end = start
    return None


def _parquet_pieces(path: str, size: int, target: int, options: MatchOptions) -> list | None:
    _, pq = import_pyarrow()
    try:
        pf = pq.ParquetFile(path)
        meta = pf.metadata
        weights = [max(meta.row_group(g).total_byte_size, 1) for g in range(meta.num_row_groups)]
    except Exception:  # noqa: BLE001 - a damaged footer: the whole-shard task reports it
        return None
    if len(weights) < 2:
        return None
    spec = options.reader_spec()
    names = set(pf.schema_arrow.names)
    id_cols = [k for k in ((spec.id_key,) if spec.id_key else _ID_KEYS) if k in names]
    scale = size / sum(weights)
    out, start, acc = [], 0, 0.0
    g = 0
    while g < len(weights):
        acc += weights[g] * scale
        g += 1
        if acc >= target and g < len(weights) and sum(weights[g:]) * scale >= target // 2:
            stop = g
            # the next row group may continue the last image: move the cut past it
            for _ in range(_ALIGN_GROUPS):
                if stop >= len(weights) or not _continues(pf, stop, id_cols):
                    break
                stop += 1
            if stop >= len(weights):
                break
            out.append(((start, stop), int(sum(weights[start:stop]) * scale)))
            start, acc, g = stop, 0.0, stop
    out.append(((start, len(weights)), int(sum(weights[start:]) * scale)))
    return out


def _continues(pf, g: int, id_cols: list) -> bool:
    """Whether row group `g` starts with the id row group ``g - 1`` ends with."""
    if not id_cols:
        return False
    try:
        last = pf.read_row_group(g - 1, columns=id_cols).slice(pf.metadata.row_group(g - 1).num_rows - 1).to_pylist()
        first = pf.read_row_group(g, columns=id_cols).slice(0, 1).to_pylist()
    except Exception:  # noqa: BLE001 - unreadable: the pieces report it as the whole shard would
        return False
    return bool(last and first) and any(last[0][k] is not None and last[0][k] == first[0][k] for k in id_cols)


# -- the piece task --------------------------------------------------------------------------


def _count_newlines(path: str, start: int, stop: int) -> int:
    n = 0
    with open(path, "rb") as f:
        f.seek(start)
        left = stop - start
        while left > 0:
            b = f.read(min(left, 8 << 20))
            if not b:
                break
            n += b.count(b"\n")
            left -= len(b)
    return n


def _first_fields(path: str, start: int, stop: int, cap: int) -> list | None:
    """Fields of the first JSONL record (an object) in bytes ``[start, stop)``, as the reader meets it."""
    with open(path, "rb") as f:
        f.seek(start)
        lines = _lines(f, cap)
        while f.tell() < stop and (line := next(lines, None)) is not None:
            raw = line[0]
            if raw is None:  # too long: skipped, as the reader skips it
                continue
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict):
                return sorted(map(str, obj))
    return None


@dataclass(frozen=True)
class PieceTask:
    """Stage 1 of one piece of a shard (see [`plan_pieces`][metaclip2.pipeline.stages.pieces.plan_pieces]), into its temporary folder.

    A piece that fails is recorded, not raised: its shard's merge then reads the whole shard
    (which raises whatever is wrong with it, as a run without pieces would). With `n_pieces`,
    the piece that finds all ``n_pieces`` done merges them at once (one claims the merge), so
    that the merge overlaps the run's other tasks; the shard's
    [`MergeTask`][metaclip2.pipeline.stages.pieces.MergeTask] then only reads its stats.

    Examples
    --------
    >>> import copy
    >>> from metaclip2.pipeline.stages.pieces import PieceTask
    >>> task = PieceTask("pool.jsonl", "metadata", "run/stage1", "pool", 0, (0, 1 << 20), "jsonl")
    >>> copy.deepcopy(task) == task
    True
    """

    input_path: str
    metadata: str
    out_dir: str
    shard: str
    k: int
    piece: tuple
    fmt: str
    options: MatchOptions = MatchOptions()
    n_pieces: int = 0

    def __call__(self) -> Stage1Stats:
        stats = self._read()
        self._merge_if_last()
        return stats  # the piece's own: its pairs count once in the progress

    def _merge_if_last(self) -> None:
        d = piece_dir(self.out_dir, self.shard)
        if not self.n_pieces or not all((d / f"{k}.piece.json").exists() for k in range(self.n_pieces)):
            return
        try:  # each piece checks after its own is written: the last to finish sees all, maybe more than one
            os.close(os.open(d / "merge.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        MergeTask(self.input_path, self.metadata, self.out_dir, self.shard, self.n_pieces, self.fmt, self.options)()

    def _read(self) -> Stage1Stats:
        d = piece_dir(self.out_dir, self.shard)
        for _ in range(3):  # another shard's merge may remove an empty .pieces/ between the two mkdirs
            try:
                d.mkdir(parents=True, exist_ok=True)
                break
            except FileNotFoundError:
                continue
        info: dict = {"piece": list(self.piece), "fmt": self.fmt}
        try:
            stats = _match(self.input_path, self.metadata, d, self.shard, str(self.k), self.options, tuple(self.piece))
        except Exception as e:  # noqa: BLE001 - the merge reads the whole shard, which raises it
            log.debug("stage 1: piece %d of shard %s failed (%s: %s); the shard is read whole", self.k, self.shard, type(e).__name__, e)
            write_json(d / f"{self.k}.piece.json", {**info, "failed": f"{type(e).__name__}: {e}"})
            return Stage1Stats(input=self.input_path, shard=self.shard)
        if self.fmt == "jsonl":
            info["lines"] = _count_newlines(self.input_path, *self.piece)
            info["first_fields"] = _first_fields(self.input_path, *self.piece, record_cap(self.options.max_chars))
        write_json(d / f"{self.k}.piece.json", info)  # last: the piece is done
        return stats


class _CannotMerge(Exception):
    """The pieces do not prove the whole shard's outputs: read it whole."""


@dataclass(frozen=True)
class MergeTask:
    """The shard's stage-1 files from its pieces' (then the pieces are removed).

    Writes what [`match_shard`][metaclip2.pipeline.stages.match.match_shard] on the whole shard
    writes, byte for byte; where the pieces cannot prove that, it runs
    [`match_shard`][metaclip2.pipeline.stages.match.match_shard] itself.

    Examples
    --------
    >>> import copy
    >>> from metaclip2.pipeline.stages.pieces import MergeTask
    >>> task = MergeTask("pool.jsonl", "metadata", "run/stage1", "pool", 3, "jsonl")
    >>> copy.deepcopy(task) == task
    True
    """

    input_path: str
    metadata: str
    out_dir: str
    shard: str
    n_pieces: int
    fmt: str
    options: MatchOptions = MatchOptions()

    def __call__(self) -> Stage1Stats:
        paths = stage1_paths(self.out_dir, self.shard)
        if not piece_dir(self.out_dir, self.shard).exists() and paths["stats"].exists():
            try:  # merged by its last piece (the driver removed any older stats before the pieces ran)
                return Stage1Stats.from_json(read_json(paths["stats"]), str(paths["stats"]))
            except (OSError, ValueError, Metaclip2Error):
                pass
        try:
            stats = self._merge()
        except _CannotMerge as e:
            log.debug("stage 1: shard %s is read whole: its pieces cannot be merged (%s)", self.shard, e)
            stats = match_shard(self.input_path, self.metadata, self.out_dir, self.shard, self.options)
        remove_pieces(self.out_dir, [self.shard])
        return stats

    def _merge(self) -> Stage1Stats:
        d = piece_dir(self.out_dir, self.shard)
        names = [str(k) for k in range(self.n_pieces)]
        infos, parts = [], []
        for name in names:
            try:
                info = read_json(d / f"{name}.piece.json")
                if "failed" in info:
                    raise _CannotMerge(f"piece {name} failed: {info['failed']}")
                parts.append(Stage1Stats.from_json(read_json(stage1_paths(d, name)["stats"])))
            except (OSError, ValueError, Metaclip2Error) as e:
                raise _CannotMerge(f"piece {name}: {e}") from None
            infos.append(info)
        if any(p.damaged for p in parts) and self.fmt == "jsonl":
            raise _CannotMerge("a piece met damage")
        fingerprint = input_fingerprint(self.input_path)
        if any((p.fingerprint or {}).get("bytes") != fingerprint["bytes"] or (p.fingerprint or {}).get("mtime_ns") != fingerprint["mtime_ns"]
               for p in parts):  # fmt: skip
            raise _CannotMerge("the input changed while its pieces were read")
        layout = self._layout([p.layout or {} for p in parts], infos)
        images = [read_images(stage1_paths(d, name)["images"]) for name in names]
        h = np.concatenate([a[0] for a in images])
        order = np.argsort(h, kind="stable")
        hs = h[order]
        if len(hs) > 1 and bool((hs[1:] == hs[:-1]).any()):
            raise _CannotMerge("an image id (hash) is in two pieces")
        paths = stage1_paths(self.out_dir, self.shard)
        # the files in match_shard's order; stats.json last (the "done" marker)
        with IndexWriter(paths["index"]) as index:
            offset = 0
            for name, part in zip(names, parts):
                for batch in iter_index(stage1_paths(d, name)["index"]):
                    for n, id_, k, lang, ids, text, extra in batch.rows():
                        index.write(n + offset, id_, k, lang, ids, text, extra)
                offset += part.images
        _write_image_arrays(paths["images"], hs, np.concatenate([a[1] for a in images])[order], np.concatenate([a[2] for a in images])[order])
        EntryCounts.sum(EntryCounts.load(stage1_paths(d, name)["counts"]) for name in names).save(paths["counts"])
        try:
            docs = [read_json(stage1_paths(d, name)["examples"]) for name in names]
        except Metaclip2Error as e:
            raise _CannotMerge(str(e)) from None
        _write_examples(paths["examples"], merge_examples(docs))
        stats = self._stats(parts, infos)
        stats.layout = layout
        stats.fingerprint = fingerprint
        stats.outputs = {p.name: file_digest(p) for key, p in sorted(paths.items()) if key != "stats"}
        write_json(paths["stats"], stats.to_json())
        return stats

    def _stats(self, parts: Sequence[Stage1Stats], infos: Sequence[dict]) -> Stage1Stats:
        out = Stage1Stats(input=self.input_path, shard=self.shard)
        lines = 0
        for part, info in zip(parts, infos):
            for name in ("pairs", "images", "no_metadata", "unmatched", "matched"):
                setattr(out, name, getattr(out, name) + getattr(part, name))
            for name in ("invalid", "no_metadata_labels", "unknown_lang_codes", "lid_changes", "by_lang"):
                setattr(out, name, _add(getattr(out, name), getattr(part, name)))
            for ex in part.invalid_examples:
                if len(out.invalid_examples) < MAX_EXAMPLES:
                    line = ex.get("line")
                    out.invalid_examples.append({**ex, "line": line + lines} if self.fmt == "jsonl" and isinstance(line, int) else ex)
            out.damaged.extend(part.damaged)
            lines += info.get("lines", 0)
        return out

    def _layout(self, reports: list[dict], infos: list[dict]) -> dict:
        """The whole shard's layout report, or _CannotMerge if a piece read its records otherwise."""
        keys = ("layout", "id_key", "text_keys", "lang_key")
        found = [i for i, r in enumerate(reports) if r.get("layout")]
        if not found:  # every record read with the fallback keys, as in the whole shard
            return next((r for r in reports if r.get("fields") is not None), reports[0])
        j = found[0]
        spec = self.options.reader_spec()
        # metaclip2's form (texts or text) is decided per record unless text keys are named
        same = keys[:2] + keys[3:] if reports[j]["layout"] == "metaclip2" and not spec.text_keys else keys
        lay = tuple(reports[j].get(k) for k in keys)
        # the fallback keys read records as these layouts do: records before detection are read alike
        like_fallback = lay[0] in ("metaclip2", "named keys")
        for i in range(j + 1, len(reports)):
            r = reports[i]
            if r.get("layout") is None:
                if not like_fallback:
                    raise _CannotMerge(f"piece {i} found no layout")
                continue
            if any(r.get(k) != reports[j].get(k) for k in same):
                raise _CannotMerge(f"piece {i} was read with layout {r.get('layout')}, not {lay[0]}")
            if not like_fallback and self.fmt == "jsonl":  # detected at its first record, or it read some otherwise
                first = infos[i].get("first_fields")
                fits = _candidates(set(first or ()), spec)
                if len(fits) != 1 or (fits[0].name, fits[0].id_key, list(fits[0].text_keys), fits[0].lang_key) != lay:
                    raise _CannotMerge(f"piece {i} does not start with a record of layout {lay[0]}")
        return reports[j]


def _add(a: dict, b: dict) -> dict:
    """Key-wise sum of (nested) counters."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in a.items()}
    for k, v in b.items():
        out[k] = _add(out.get(k, {}), v) if isinstance(v, dict) else out.get(k, 0) + v
    return out


def shard_pieces(input_path: str, metadata: str, out_dir: str, shard: str, options: MatchOptions,
                 target: int) -> tuple[list[tuple[int, PieceTask]], MergeTask] | None:  # fmt: skip
    """The tasks that read shard `shard` in pieces of about `target` bytes: ``([(bytes, PieceTask)], MergeTask)``,
    or None when it is read whole (what a driver's ``ShardStage.pieces`` returns).

    Examples
    --------
    >>> from metaclip2.pipeline.stages.options import MatchOptions
    >>> from metaclip2.pipeline.stages.pieces import shard_pieces
    >>> shard_pieces("s3://bucket/pool.jsonl", "metadata", "run/stage1", "pool", MatchOptions(), 1 << 30) is None  # remote: whole
    True
    """
    cut = plan_pieces(input_path, options, target)
    if cut is None:
        return None
    fmt = _format(input_path, options)
    tasks = [(size, PieceTask(input_path, str(metadata), str(out_dir), shard, k, piece, fmt, options, len(cut)))
             for k, (piece, size) in enumerate(cut)]  # fmt: skip
    return tasks, MergeTask(input_path, str(metadata), str(out_dir), shard, len(cut), fmt, options)


def input_size(path: str) -> int:
    """Bytes of a local input (0 for a URL or a missing file): what orders stage 1's tasks.

    Examples
    --------
    >>> from metaclip2.pipeline.stages.pieces import input_size
    >>> input_size("s3://bucket/pool.jsonl")
    0
    """
    if is_url(path):
        return 0
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
