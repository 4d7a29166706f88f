"""Opening input files, local or fsspec URLs, gzip-compressed or not, and telling a shard's
format from its name ([`FORMATS`][metaclip2.pipeline.io.inputs.FORMATS]).
"""

from __future__ import annotations

import gzip
import os
import zlib

from metaclip2.core.errors import MissingExtraError, ParameterError
from metaclip2.core.fingerprint import is_url
from metaclip2.core.httpstream import is_http, open_http_seekable, open_http_stream
from metaclip2.pipeline.io.records import _Damage

__all__ = ["FORMATS", "detect_format", "open_input"]

FORMATS = ("jsonl", "parquet", "tar", "csv", "tsv")


# -- opening files (local or fsspec) ------------------------------------------------------------


def open_input(path: str | os.PathLike, *, seekable: bool = False):
    """A binary file object for `path`: local, or any fsspec URL (``s3://``, ``memory://``, ``https://``).

    An ``http(s)://`` URL is read as a stream, one GET from the first byte, so that servers
    without ``Range`` support serve it too; with `seekable` (Parquet) it is read with ranges
    where the server honours them, else spooled into a bounded temporary file
    ([`metaclip2.core.httpstream`][metaclip2.core.httpstream]).

    Raises
    ------
    MissingExtraError
        A URL without fsspec installed (``pip install fsspec``, plus the protocol's package).
    MissingInputError
        An http(s) URL that does not exist.
    DataError
        An http(s) connection refused or dropped, or a bad response.

    See Also
    --------
    - [`read_shard`][metaclip2.pipeline.io.readers.read_shard] : The images of a shard, read through this.
    - [`detect_format`][metaclip2.pipeline.io.inputs.detect_format] : A shard's format from its name.

    Examples
    --------
    >>> import json, tempfile
    >>> from metaclip2.pipeline.io.inputs import open_input
    >>> tmp = tempfile.TemporaryDirectory(); d = tmp.name
    >>> with open(f"{d}/part-0.jsonl", "w") as f:
    ...     print(json.dumps({"id": "a", "text": "a red dog", "lang": "en"}), file=f)
    >>> with open_input(f"file://{d}/part-0.jsonl") as f:     # a URL's file object reads the same way
    ...     json.loads(f.readline())
    {'id': 'a', 'text': 'a red dog', 'lang': 'en'}
    >>> tmp.cleanup()
    """
    path = os.fspath(path)
    if not is_url(path):
        return open(path.removeprefix("file://"), "rb")
    if is_http(path):
        return open_http_seekable(path) if seekable else open_http_stream(path)
    try:
        import fsspec
    except ImportError as err:
        raise MissingExtraError(f"reading {path} needs fsspec: pip install 'metaclip2[fsspec]'") from err
    return fsspec.open(path, "rb").open()


def detect_format(path: str | os.PathLike) -> str:
    """Input format of `path` from its name: one of [`FORMATS`][metaclip2.pipeline.io.inputs.FORMATS].

    Raises
    ------
    ParameterError
        The name ends in no known extension.

    See Also
    --------
    - [`read_shard`][metaclip2.pipeline.io.readers.read_shard] : Reads a shard in the detected format.

    Examples
    --------
    >>> from metaclip2.pipeline.io.inputs import detect_format
    >>> [detect_format(p) for p in ("pool/part-0.jsonl.gz", "s3://bucket/part-1.parquet", "shards/00000.tar", "urls.tsv.gz")]
    ['jsonl', 'parquet', 'tar', 'tsv']
    >>> detect_format("pool/notes.txt")
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.ParameterError: cannot tell the format of pool/notes.txt from its name; expected .jsonl, .parquet, .tar, .csv or .tsv
    """
    name = os.fspath(path).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    if name.endswith((".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".tsv", ".tsv.gz")):
        return "tsv"
    raise ParameterError(f"cannot tell the format of {path} from its name; expected .jsonl, .parquet, .tar, .csv or .tsv")


# -- gzip ---------------------------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"


def _gzip_check(path: str) -> _Damage | None:
    """Damage of a gzip file found by decompressing it once (CRC, corrupt data, not gzip), or None.

    A truncated file is not reported here: what precedes the cut is intact, so it is read
    and the cut reported where the reading stops.
    """
    with open_input(path) as raw:
        if raw.read(2) != _GZIP_MAGIC:
            return _Damage("offset 0", "not gzip data although the name ends in .gz: decompress nothing, rename the file without .gz or compress it")
    done = 0
    try:
        with open_input(path) as raw, gzip.GzipFile(fileobj=raw) as f:
            while chunk := f.read(1 << 20):
                done += len(chunk)
    except EOFError:
        return None
    except (OSError, zlib.error) as e:  # BadGzipFile (CRC, length), corrupt deflate data
        return _Damage(f"offset {done}", f"gzip: {e}; the whole file is unverified, none of it is used")
    return None


def _open_maybe_gzip(path: str, name: str):
    """(file object, damage or None): gzip (by name or content) is checked first, not read at all if damaged."""
    if not name.endswith((".gz", ".tgz")):
        f = open_input(path)
        if hasattr(f, "peek"):  # a local file or an HTTP stream, which cannot seek back
            if f.peek(2)[:2] != _GZIP_MAGIC:
                return f, None
        elif f.read(2) != _GZIP_MAGIC:
            f.seek(0)
            return f, None
        f.close()
    damage = _gzip_check(path)
    if damage is not None:
        return None, damage
    raw = open_input(path)
    return gzip.GzipFile(fileobj=raw), None
