"""HTTP(S) inputs read as streams: one GET from the first byte, so that a server without
``Range`` support (``python -m http.server``, many static hosts) serves them as well as one
with it; and a seekable copy, spooled to a bounded temporary file, where a reader needs random
access (Parquet) and the server cannot give it.

Every failure is one line naming the URL: a URL that does not exist raises
[`MissingInputError`][metaclip2.core.errors.MissingInputError]; a refused or dropped connection, a bad
response or a body cut short raises [`DataError`][metaclip2.core.errors.DataError] (never a part of
the file taken for the whole).
"""

from __future__ import annotations

import io
import os
import tempfile

from metaclip2.core.errors import DataError, Metaclip2Error, MissingExtraError, MissingInputError

__all__ = ["is_http", "open_http_stream", "open_http_seekable"]

#: Bytes of a spooled copy held in memory; the rest goes to a temporary file on disk.
SPOOL_MEMORY = 64 << 20
_CHUNK = 1 << 20


def is_http(path: str | os.PathLike) -> bool:
    """Whether `path` is an ``http://`` or ``https://`` URL.

    Examples
    --------
    >>> from metaclip2.core.httpstream import is_http
    >>> is_http("https://example.org/a.jsonl"), is_http("s3://bucket/a.jsonl"), is_http("a.jsonl")
    (True, False, False)
    """
    return os.fspath(path).lower().startswith(("http://", "https://"))


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


def _failure(url: str, e: BaseException, done: int | None = None) -> Metaclip2Error:
    if isinstance(e, Metaclip2Error):
        return e
    cause = e.__cause__
    if isinstance(e, FileNotFoundError) and cause is not None and getattr(cause, "status", None) not in (404, 410):
        e = cause  # fsspec says "not found" for a refused connection too: the cause tells
    elif isinstance(e, FileNotFoundError) or getattr(e, "status", None) in (404, 410):
        return MissingInputError(f"input {url} does not exist (HTTP 404): check the URL")
    where = "" if done is None else f" after {done} bytes"
    return DataError(f"input {url}: the download failed{where} ({_one_line(e)}): read it again once the server serves it whole")


def _fsspec():
    try:
        import fsspec
    except ImportError as err:
        raise MissingExtraError("reading http(s) inputs needs fsspec and aiohttp: pip install 'metaclip2[fsspec]' aiohttp") from err
    return fsspec


class _Stream(io.RawIOBase):
    """An fsspec streaming HTTP file whose failures are one-line errors naming the URL."""

    def __init__(self, url: str):
        self.url, self.done = url, 0
        try:
            self._f = _fsspec().open(url, "rb", block_size=0).open()
        except Exception as e:  # noqa: BLE001 - aiohttp and fsspec raise many types
            raise _failure(url, e) from None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._f.read(len(buffer))
        except Exception as e:  # noqa: BLE001
            raise _failure(self.url, e, self.done) from None
        n = len(data)
        buffer[:n] = data
        self.done += n
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                self._f.close()
            except Exception:  # noqa: BLE001 - closing a dropped connection may fail too
                pass
        super().close()


def open_http_stream(url: str) -> io.BufferedReader:
    """A sequential binary file reading `url` from its first byte in one GET (no ``Range`` needed).

    Raises
    ------
    MissingInputError
        The URL does not exist.
    DataError
        The connection is refused or dropped, or the response is bad (when opened or read).

    See Also
    --------
    - [`open_http_seekable`][metaclip2.core.httpstream.open_http_seekable] : A seekable file for the same URL.

    Examples
    --------
    >>> from metaclip2.core.httpstream import open_http_stream
    >>> open_http_stream("http://127.0.0.1:9/pool.jsonl")  # nothing listens on port 9
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: input http://127.0.0.1:9/pool.jsonl: the download failed (...): read it again once the server serves it whole
    """
    return io.BufferedReader(_Stream(url), buffer_size=_CHUNK)


def open_http_seekable(url: str):
    """A seekable binary file for `url`: fsspec's random access where the server honours
    ``Range``, else the whole body spooled into a temporary file (`SPOOL_MEMORY` bytes
    in memory at most).

    Raises
    ------
    MissingInputError
        The URL does not exist.
    DataError
        The connection is refused or dropped, or the response is bad.

    See Also
    --------
    - [`open_http_stream`][metaclip2.core.httpstream.open_http_stream] : The sequential read, one GET.

    Examples
    --------
    >>> from metaclip2.core.httpstream import open_http_seekable
    >>> open_http_seekable("http://127.0.0.1:9/pool.parquet")  # nothing listens on port 9
    Traceback (most recent call last):
    ...
    metaclip2.core.errors.DataError: input http://127.0.0.1:9/pool.parquet: the download failed (...): read it again once the server serves it whole
    """
    fsspec = _fsspec()
    f = None
    try:
        f = fsspec.open(url, "rb").open()
        size = f.size
        if size and size > 1:  # a Range request away from the start: refused by a server without Range
            f.seek(size - 1)
            f.read(1)
            f.seek(0)
            return f
    except ValueError:  # fsspec: "The HTTP server doesn't appear to support range requests"
        pass
    except Exception as e:  # noqa: BLE001
        if f is not None:
            f.close()
        raise _failure(url, e) from None
    if f is not None:
        f.close()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
    try:
        with open_http_stream(url) as src:
            while chunk := src.read(_CHUNK):
                spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool
