"""A small, deterministic, self-checking file format for named numpy arrays with a JSON header.

``np.savez`` writes zip members with timestamps and pickles object arrays;
this format is byte-identical for equal inputs, needs no pickle, and is
written atomically (a temporary file renamed into place), so a reader never
sees a half-written file. Layout (integers little-endian)::

    b"MC2ARR02"  sha256 (32 bytes) of everything after it
    meta length (u64)  meta (JSON: {"header": ..., "arrays": [{"name", "dtype", "length"}]})
    the arrays' bytes, in the order of "arrays"

[`load_arrays`][metaclip2.core.arrayfile.load_arrays] checks the declared lengths against the file size before it allocates
anything and the checksum before it returns, so a damaged file (a flipped bit, a cut, a
garbage length, two arrays of one name, a header nested too deep, a directory or pipe in its
place) raises [`DataError`][metaclip2.core.errors.DataError] naming it. Files of the
first version (``MC2ARR01``, no checksum) are still read, with the length checks only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from metaclip2.core.errors import DataError, ParameterError
from metaclip2.core.atomic import AtomicFile
from metaclip2.core.jsonfile import parse_json
from metaclip2.core.regularfile import open_regular

import numpy as np

__all__ = ["save_arrays", "load_arrays", "load_header"]

_MAGIC = b"MC2ARR02"
_MAGIC_V1 = b"MC2ARR01"
_DIGEST = 32
_BLOCK = 1 << 24  # bytes read (and hashed) at a time
_REPAIR = "delete it and run the stage that writes it again"


def save_arrays(path: str | os.PathLike, header: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write `header` (JSON-serialisable) and `arrays` (1-D numeric) to `path`, atomically.

    See Also
    --------
    - [`load_arrays`][metaclip2.core.arrayfile.load_arrays] : Reads the file back, checked.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from metaclip2.core.arrayfile import load_arrays, save_arrays
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "q.bin")
    ...     save_arrays(path, {"format": "demo"}, {"en": np.array([0.5, 1.0]), "de": np.array([3, 1])})
    ...     header, arrays = load_arrays(path)
    >>> header, arrays["en"], arrays["de"]
    ({'format': 'demo'}, array([0.5, 1. ]), array([3, 1]))
    """
    path = Path(path)
    names = sorted(arrays)
    layout, blobs = [], []
    for name in names:
        a = np.ascontiguousarray(arrays[name])
        if a.ndim != 1 or a.dtype.kind not in "biuf":
            raise ParameterError(f"array {name!r} must be 1-D numeric, got shape {a.shape} dtype {a.dtype}")
        dtype = a.dtype.newbyteorder("<").str
        layout.append({"name": name, "dtype": dtype, "length": int(a.shape[0])})
        blobs.append(np.ascontiguousarray(a, dtype=dtype))
    meta = json.dumps({"header": header, "arrays": layout}, sort_keys=True, ensure_ascii=False).encode()
    head = len(meta).to_bytes(8, "little") + meta
    h = hashlib.sha256(head)
    for b in blobs:
        h.update(memoryview(b).cast("B"))
    with AtomicFile(path) as f:
        f.write(_MAGIC)
        f.write(h.digest())
        f.write(head)
        for b in blobs:
            f.write(memoryview(b).cast("B"))


def _read_layout(f, path: Path, size: int, repair: str):
    """Magic, checksum and metadata of an open array file: ``(expected digest or None, hasher, header, specs)``.

    Every declared length is checked against the file's size before anything is allocated.
    """
    magic = f.read(len(_MAGIC))
    if magic not in (_MAGIC, _MAGIC_V1):
        raise DataError(f"{path} is not a metaclip2 array file")
    expected = f.read(_DIGEST) if magic == _MAGIC else None
    raw_n = f.read(8)
    if len(raw_n) < 8 or (expected is not None and len(expected) < _DIGEST):
        raise DataError(f"{path} is truncated (header): {repair}")
    n = int.from_bytes(raw_n, "little")
    if n > size - f.tell():
        raise DataError(f"{path} is damaged: its header declares {n} bytes of metadata, more than the file holds; {repair}")
    raw_meta = f.read(n)
    h = hashlib.sha256(raw_n + raw_meta) if expected is not None else None
    meta = parse_json(raw_meta, f"{path} (header)", repair)
    try:
        specs = [(s["name"], np.dtype(s["dtype"]), s["length"]) for s in meta["arrays"]]
        header = meta["header"]
    except (ValueError, TypeError, KeyError) as e:
        raise DataError(f"{path} is damaged (unreadable metadata: {e}); {repair}") from None
    for name, dtype, length in specs:
        if not isinstance(name, str) or not isinstance(length, int) or isinstance(length, bool):
            raise DataError(f"{path} is damaged (an array name or length of the wrong type); {repair}")
        if length < 0 or dtype.kind not in "biuf":
            raise DataError(f"{path} is damaged (an array of negative length or non-numeric type); {repair}")
    names = [name for name, _, _ in specs]
    if len(set(names)) != len(names):
        dup = sorted({x for x in names if names.count(x) > 1})[0]
        raise DataError(f"{path} is damaged: it holds two arrays named {dup!r}; {repair}")
    declared = sum(dtype.itemsize * length for _, dtype, length in specs)
    held = size - f.tell()
    if declared > held:
        raise DataError(f"{path} is truncated: it declares {declared} bytes of arrays but holds {held}; {repair}")
    if declared < held:
        raise DataError(f"{path} is damaged: {held - declared} bytes follow its last array; {repair}")
    return expected, h, header, specs


def load_arrays(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a file written by [`save_arrays`][metaclip2.core.arrayfile.save_arrays]; returns ``(header, arrays)``.

    Raises
    ------
    MissingInputError
        The file does not exist.
    DataError
        Not an array file, or a damaged one: truncated, lengths that do not fit the file,
        two arrays of one name, metadata nested too deep, or content that does not match its
        checksum; or not a regular file (a directory, pipe, device). The message names the file.

    See Also
    --------
    - [`save_arrays`][metaclip2.core.arrayfile.save_arrays] : Writes such a file.
    - [`load_header`][metaclip2.core.arrayfile.load_header] : The header alone, checked the same way.

    Examples
    --------
    A flipped bit anywhere in the file is caught before the arrays are used:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from metaclip2.core.arrayfile import load_arrays, save_arrays
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "q.bin")
    ...     save_arrays(path, {}, {"en": np.array([0.5, 1.0])})
    ...     data = bytearray(open(path, "rb").read())
    ...     data[-1] ^= 1
    ...     _ = open(path, "wb").write(bytes(data))
    ...     load_arrays(path)
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: .../q.bin ...
    """
    path = Path(path)
    with open_regular(path, _REPAIR) as f:
        expected, h, header, specs = _read_layout(f, path, os.fstat(f.fileno()).st_size, _REPAIR)
        arrays = {}
        for name, dtype, length in specs:
            buf = bytearray(dtype.itemsize * length)
            view = memoryview(buf)
            got = 0
            while got < len(buf):
                k = f.readinto(view[got : got + _BLOCK])
                if not k:
                    raise DataError(f"{path} is truncated (array {name!r}); {_REPAIR}")
                if h is not None:
                    h.update(view[got : got + k])
                got += k
            arrays[name] = np.frombuffer(buf, dtype=dtype).astype(dtype.newbyteorder("="), copy=False)
    if expected is not None and h.digest() != expected:
        raise DataError(f"{path} is damaged: its content does not match its checksum; {_REPAIR}")
    return header, arrays


def load_header(path: str | os.PathLike) -> dict:
    """The header of a file written by [`save_arrays`][metaclip2.core.arrayfile.save_arrays], after checking the whole file.

    The arrays are streamed through the checksum, never held: memory does not depend on the
    file's size.

    Raises
    ------
    DataError
        As [`load_arrays`][metaclip2.core.arrayfile.load_arrays].

    See Also
    --------
    - [`load_arrays`][metaclip2.core.arrayfile.load_arrays] : Header and arrays.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from metaclip2.core.arrayfile import load_header, save_arrays
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_arrays(os.path.join(tmp, "q.bin"), {"t": {"en": 2}}, {"en": np.zeros(1000)})
    ...     load_header(os.path.join(tmp, "q.bin"))
    {'t': {'en': 2}}
    """
    path = Path(path)
    with open_regular(path, _REPAIR) as f:
        expected, h, header, _ = _read_layout(f, path, os.fstat(f.fileno()).st_size, _REPAIR)
        if h is not None:
            while True:
                block = f.read(_BLOCK)
                if not block:
                    break
                h.update(block)
    if expected is not None and h.digest() != expected:
        raise DataError(f"{path} is damaged: its content does not match its checksum; {_REPAIR}")
    return header
