"""A small, deterministic file format for named numpy arrays with a JSON header.

``np.savez`` writes zip members with timestamps and pickles object arrays;
this format is byte-identical for equal inputs, needs no pickle, and is
written atomically (a temporary file renamed into place), so a reader never
sees a half-written file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from metaclip2.core.errors import DataError, ParameterError
from metaclip2.core.atomic import AtomicFile

import numpy as np

__all__ = ["save_arrays", "load_arrays"]

_MAGIC = b"MC2ARR01"


def save_arrays(path: str | os.PathLike, header: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write `header` (JSON-serialisable) and `arrays` (1-D numeric) to `path`, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(arrays)
    layout = []
    for name in names:
        a = np.ascontiguousarray(arrays[name])
        if a.ndim != 1 or a.dtype.kind not in "biuf":
            raise ParameterError(f"array {name!r} must be 1-D numeric, got shape {a.shape} dtype {a.dtype}")
        layout.append({"name": name, "dtype": a.dtype.newbyteorder("<").str, "length": int(a.shape[0])})
    meta = json.dumps({"header": header, "arrays": layout}, sort_keys=True, ensure_ascii=False).encode()
    with AtomicFile(path) as f:
        f.write(_MAGIC)
        f.write(len(meta).to_bytes(8, "little"))
        f.write(meta)
        for name, spec in zip(names, layout):
            f.write(np.ascontiguousarray(arrays[name], dtype=spec["dtype"]).tobytes())


def load_arrays(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a file written by :func:`save_arrays`; returns ``(header, arrays)``."""
    path = Path(path)
    with open(path, "rb") as f:
        if f.read(len(_MAGIC)) != _MAGIC:
            raise DataError(f"{path} is not a metaclip2 array file")
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))
        arrays = {}
        for spec in meta["arrays"]:
            dtype = np.dtype(spec["dtype"])
            buf = f.read(dtype.itemsize * spec["length"])
            if len(buf) != dtype.itemsize * spec["length"]:
                raise DataError(f"{path} is truncated (array {spec['name']!r})")
            arrays[spec["name"]] = np.frombuffer(buf, dtype=dtype).astype(dtype.newbyteorder("="))
    return meta["header"], arrays
